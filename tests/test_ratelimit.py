"""The global token bucket, hammered from many threads against a real Redis."""

from __future__ import annotations

import threading
import time

from sms_worker.ratelimit import SendWindow, TokenBucket


def test_concurrent_takers_never_get_more_than_rate_plus_burst(redis_client):
    rate, burst, seconds = 200.0, 10, 1.5
    granted_at: list[float] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def taker() -> None:
        bucket = TokenBucket(redis_client, "acct", rate, burst)
        while time.monotonic() < stop:
            grant = bucket.acquire([1])
            if grant.granted:
                with lock:
                    granted_at.append(grant.at)

    threads = [threading.Thread(target=taker) for _ in range(8)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started

    assert len(granted_at) <= burst + rate * elapsed
    assert max(granted_at) - min(granted_at) <= elapsed
    assert len(granted_at) >= 0.8 * rate * seconds
    granted_at.sort()
    busiest_second = max(sum(1 for t in granted_at[i:] if t - start < 1.0) for i, start in enumerate(granted_at))
    assert busiest_second <= rate + burst


def test_a_batch_gets_the_prefix_that_fits_and_the_wait_for_the_rest(redis_client):
    bucket = TokenBucket(redis_client, "parts", rate=10.0, burst=5)

    grant = bucket.acquire([2, 2, 2, 1])

    assert grant.granted == 2
    assert 0.09 <= grant.retry_after <= 0.21


def test_a_message_dearer_than_the_burst_goes_once_the_bucket_is_full_and_leaves_debt(redis_client):
    bucket = TokenBucket(redis_client, "long", rate=10.0, burst=3)

    assert bucket.acquire([5]).granted == 1
    follow_up = bucket.acquire([1])
    assert follow_up.granted == 0
    assert 0.25 <= follow_up.retry_after <= 0.31


def test_accounts_have_separate_buckets(redis_client):
    assert TokenBucket(redis_client, "a", 1.0, 1).acquire([1, 1]).granted == 1
    assert TokenBucket(redis_client, "b", 1.0, 1).acquire([1]).granted == 1


def test_tokens_given_back_are_taken_again_but_never_above_the_burst(redis_client):
    bucket = TokenBucket(redis_client, "refund", rate=1.0, burst=3)
    assert bucket.acquire([1, 1, 1, 1]).granted == 3

    bucket.refund(2)
    assert bucket.acquire([1, 1, 1]).granted == 2
    bucket.refund(10)
    assert bucket.acquire([1, 1, 1, 1]).granted == 3, "a refund fills the bucket, no further"


def test_the_send_window_admits_what_fits_in_the_last_second_and_says_when_the_rest_would(redis_client):
    window = SendWindow(redis_client, "w", rate=5.0)
    assert window.limit == 5

    first = window.admit([2, 2, 2])
    assert (first.granted, 0.95 <= first.retry_after <= 1.0) == (2, True)
    assert window.admit([1]).granted == 1
    assert window.admit([1]).granted == 0
    time.sleep(first.retry_after)
    assert window.admit([2]).granted == 1, "the first departures have left the window"


def test_a_request_dearer_than_the_window_departs_into_an_empty_one(redis_client):
    window = SendWindow(redis_client, "dear", rate=2.0)
    assert window.admit([10]).granted == 1
    assert window.admit([1]).granted == 0


def test_many_takers_depart_at_the_rate_and_never_past_rate_plus_burst_in_any_second(redis_client):
    rate, burst, seconds = 100.0, 10, 2.0
    departures: list[float] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def taker() -> None:
        window = SendWindow(redis_client, "busy", rate)
        while time.monotonic() < stop:
            grant = window.admit([1])
            if grant.granted:
                with lock:
                    departures.append(time.time())
            else:
                time.sleep(grant.retry_after)

    threads = [threading.Thread(target=taker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    departures.sort()
    busiest = max(sum(1 for t in departures[i:] if t - start < 1.0) for i, start in enumerate(departures))
    assert busiest <= rate + burst, "seen after the admission, as the provider would: jitter included"
    assert len(departures) >= 0.9 * rate * (seconds - 1)


def test_places_are_taken_ahead_only_while_the_window_is_at_most_half_full(redis_client):
    window = SendWindow(redis_client, "ahead", rate=10.0)

    first = window.admit([1, 1], ahead=3)
    assert (first.granted, first.ahead) == (2, 3)
    assert redis_client.zcard("smsw:window:ahead") == 5, "places taken ahead count as departed"
    assert window.admit([1], ahead=3).ahead == 0, "6 + 3 would pass half the limit of 10"
    assert window.admit([1, 1, 1, 1], ahead=3).granted == 4
    refused = window.admit([1], ahead=3)
    assert (refused.granted, refused.ahead) == (0, 0)
