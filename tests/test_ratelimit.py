"""The global token bucket, hammered from many threads against a real Redis."""

from __future__ import annotations

import threading
import time

from sms_worker.ratelimit import TokenBucket


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
