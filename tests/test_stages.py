"""Each dispatch stage on its own, and the driver: no Celery, no HTTP.

A stage whose decision needs no database or Redis (validity window, route, decide) is tested
with the values it needs and neither: a clock, the accounts' availability, the retry policy, as
dramatiq tests its rate limiters on a stub backend. The others run on a real Redis and database;
where a stage calls a provider (submit), an in-memory adapter stands in for the provider, and
records what the database said about each message at the moment it was called.
"""

from __future__ import annotations

import threading
import time
import tomllib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import timedelta

import pytest
from conftest import ShutsDownAfter, fresh_database
from sqlalchemy import select, update

from sms_worker.clock import FakeClock
from sms_worker.config import Settings
from sms_worker.db.migrate import upgrade
from sms_worker.dispatch.batch import Batch, Defer, Finish, Item, NotDecided, NotSent, ReadRow, Routed, Skip, Started
from sms_worker.dispatch.ledger import Ledger
from sms_worker.dispatch.pipeline import DISPATCH_STOPPED, Pipeline, Stage
from sms_worker.dispatch.policy import RetryPolicy
from sms_worker.dispatch.service import load
from sms_worker.dispatch.stages.claim import Claim
from sms_worker.dispatch.stages.decide import Decide
from sms_worker.dispatch.stages.health import Health
from sms_worker.dispatch.stages.pace import Pace
from sms_worker.dispatch.stages.requests import Departures, units_of
from sms_worker.dispatch.stages.route import NO_ROUTE, Route
from sms_worker.dispatch.stages.submit import Submit
from sms_worker.dispatch.stages.validity import ValidityWindow
from sms_worker.lifecycle.status import Delivery, Status
from sms_worker.lifecycle.tables import MESSAGES
from sms_worker.priority import Priority
from sms_worker.producer import send_many
from sms_worker.providers.accounts import parse_providers
from sms_worker.providers.base import Accepted, OutboundMessage, SendOutcome
from sms_worker.providers.failures import ErrorKind, Failure
from sms_worker.providers.registry import Account
from sms_worker.queues import keys
from sms_worker.queues.pointers import Pointer
from sms_worker.ratelimit import SendWindow, TokenBucket
from sms_worker.routing import Router
from sms_worker.routing.breaker import UNLIMITED, breaker_key
from sms_worker.runtime import NoWaker, build_runtime
from sms_worker.views import message_history

RECIPIENT = "+421900123456"
OFFLINE = "http://127.0.0.1:9"
PROVIDERS = f"""
[accounts.first]
type = "telekom-sk"
base_url = "{OFFLINE}/telekom-sk"
token = "t"
rate = 1000

[accounts.second]
type = "telekom-sk"
base_url = "{OFFLINE}/telekom-sk"
token = "t"
rate = 1000

[routing]
default = {{ first = 1000, second = 1 }}
"""


@pytest.fixture
def sqlite_url(tmp_path):
    """The stages run on SQLite here; the lifecycle's writes are tested on both databases
    (tests/test_lifecycle.py)."""
    with fresh_database("sqlite", tmp_path) as url:
        upgrade(url)
        yield url


@pytest.fixture
def rt(redis_url, redis_client, sqlite_url, tmp_path, clock):
    providers = tmp_path / "providers.toml"
    providers.write_text(PROVIDERS)
    settings = Settings(
        home=tmp_path / "home",
        database_url=sqlite_url,
        redis_url=redis_url,
        providers_file=providers,
        retry_backoff_seconds=(30, 120, 300, 900, 1800),
        rate_limit_headroom_seconds=0,
    )
    runtime = build_runtime(settings, waker=NoWaker(), clock=clock)
    yield runtime
    runtime.close()


def batch_of(rt, *requests: dict) -> Batch:
    ids = send_many([{"to": RECIPIENT, "text": "hello", **request} for request in requests], runtime=rt)
    return load(rt, [Pointer(Priority.STANDARD, message_id) for message_id in ids])


def row(rt, item: Item):
    with rt.engine.connect() as conn:
        return conn.execute(select(MESSAGES).where(MESSAGES.c.id == item.id)).one()


def no_downstream(piece: list[Item]) -> None:
    raise AssertionError("this stage hands nothing downstream")


class Collecting:
    """Downstream for a stage tested alone: remembers each piece."""

    def __init__(self, rt) -> None:
        self.pieces: list[list[Item]] = []

    def __call__(self, piece: list[Item]) -> None:
        self.pieces.append(list(piece))


def prepared(rt, *requests: dict) -> Batch:
    """Routed, paced and claimed, as submit receives a batch."""
    batch = batch_of(rt, *requests)
    for stage in (Route.of(rt), Pace(rt), Claim(rt)):
        stage.process(batch, no_downstream)
    return batch


# -- decisions with no database and no Redis -----------------------------------------------

NOW = FakeClock().now()


def item_of(**row) -> Item:
    """A message in play as the batch reads its row: queued, due now, valid for an hour."""
    waiting = ReadRow(
        status=Status.QUEUED,
        recipient=RECIPIENT,
        sender=None,
        text="hello",
        segments=1,
        attempts=0,
        send_after=NOW,
        valid_until=NOW + timedelta(hours=1),
        first_attempt_at=None,
        pinned_account=None,
        unsure_since=None,
        on_ambiguous=None,
        possible_duplicate=False,
    )
    return Item(uuid.uuid4(), Priority.STANDARD, replace(waiting, **row))


def called(outcome, account: str = "first", **row) -> Item:
    """A message whose first call, on ``account``, answered ``outcome``."""
    item = item_of(**row)
    item.routed, item.started, item.request, item.outcome = Routed(account), Started(1, NOW, NOW), 1, outcome
    return item


def test_validity_window_expires_what_ran_out_and_defers_what_is_not_due():
    clock = FakeClock(NOW)
    expired = item_of(valid_until=NOW - timedelta(seconds=1))
    window_over = item_of(status=Status.RETRYING, attempts=1, first_attempt_at=NOW - timedelta(hours=2))
    unsure = item_of(status=Status.RETRYING, attempts=1, first_attempt_at=NOW - timedelta(hours=2), unsure_since=NOW - timedelta(hours=2))
    later = item_of(send_after=NOW + timedelta(hours=1))
    due = item_of(send_after=NOW + timedelta(seconds=0.05))
    batch = Batch([expired, window_over, unsure, later, due])

    ValidityWindow(clock, timedelta(hours=1)).process(batch, no_downstream)

    assert expired.disposition == Finish(Status.EXPIRED, "validity ended before it could be sent; never sent", "VALIDITY_EXPIRED")
    assert (window_over.disposition.status, window_over.disposition.code) == (Status.UNDELIVERABLE, "RETRY_WINDOW_OVER")
    assert unsure.disposition.status is Status.UNKNOWN, "it may have been delivered: unknown, never undeliverable"
    assert later.disposition == Defer(later.row.send_after, "not due yet")
    assert batch.in_play() == [due], "due within the promoter's tolerance: sent now"


class StubAvailability:
    """The accounts' availability as a test sets it: how many messages each account admits
    (unlimited unless named), and the probes given back."""

    def __init__(self, **admits: int) -> None:
        self.admits = admits
        self.released: list[str] = []

    def admit(self, account: str) -> int:
        return self.admits.get(account, UNLIMITED)

    def release_probe(self, account: str) -> None:
        self.released.append(account)


def route_with(availability: StubAvailability) -> Route:
    providers = parse_providers(tomllib.loads(PROVIDERS), {})
    return Route(Router(providers), list(providers.accounts), availability, FakeClock(NOW), timedelta(seconds=30))


def test_route_rejects_a_message_naming_an_account_no_longer_configured():
    item = item_of(pinned_account="gone")

    route_with(StubAvailability()).process(Batch([item]), no_downstream)

    assert (item.disposition.status, item.disposition.code) == (Status.REJECTED, NO_ROUTE)
    assert "'gone', which is not configured" in item.disposition.reason


def test_route_passes_an_unavailable_account_over_and_a_message_pinned_to_it_waits():
    free, pinned = item_of(), item_of(pinned_account="first")

    route_with(StubAvailability(first=0)).process(Batch([free, pinned]), no_downstream)

    assert (free.account, free.disposition) == ("second", None)
    assert pinned.disposition == Defer(NOW + timedelta(seconds=30), "no account available (first): paused, or circuit breaker open")
    with pytest.raises(NotDecided, match="no account chosen"):
        pinned.account  # noqa: B018 - a later stage reading it is a bug, said so


def test_route_lets_one_probe_through_and_gives_it_back_if_unused():
    probe, waits, other = item_of(pinned_account="first"), item_of(pinned_account="first"), item_of()
    batch = Batch([probe, waits, other])
    availability = StubAvailability(first=1)
    route = route_with(availability)

    route.process(batch, no_downstream)
    route.after(batch)

    assert (probe.routed, other.routed) == (Routed("first", probe=True), Routed("second"))
    assert isinstance(waits.disposition, Defer)
    assert availability.released == ["first"], "the probe was not called: given back"


def test_route_starts_each_retry_one_account_further_down_its_order():
    first_try, retry = item_of(), item_of(status=Status.RETRYING, attempts=1)
    retry = Item(first_try.id, retry.priority, retry.row)

    route_with(StubAvailability()).process(Batch([first_try, retry]), no_downstream)

    assert first_try.account != retry.account


class StubPauses:
    def __init__(self) -> None:
        self.paused: dict[str, str] = {}

    def pause(self, account: str, failure: Failure) -> None:
        self.paused[account] = str(failure)


def test_decide_turns_each_outcome_into_the_next_status():
    pauses = StubPauses()
    items = {
        "accepted": called(Accepted("p1", "QUEUED", Delivery.QUEUED)),
        "delivered at once": called(Accepted("p2", "DELIVERED", Delivery.DELIVERED)),
        "resent unasked": called(Accepted("p3", "QUEUED", Delivery.QUEUED), unsure_since=NOW - timedelta(minutes=1)),
        "transient": called(Failure(ErrorKind.TRANSIENT, "HTTP_503", "down")),
        "ambiguous": called(Failure(ErrorKind.AMBIGUOUS, "TIMEOUT", "no answer in time")),
        "ambiguous, give-up": called(Failure(ErrorKind.AMBIGUOUS, "TIMEOUT", "no answer in time"), on_ambiguous="give-up"),
        "permanent": called(Failure(ErrorKind.PERMANENT, "DENIED", "no", status=Status.REJECTED)),
        "account-wide": called(Failure(ErrorKind.PERMANENT, "INVALID_TOKEN", "bad key", account_wide=True), account="second"),
        "not sent": called(NotSent("not sent: window full", NOW + timedelta(seconds=1))),
    }

    Decide(RetryPolicy(), FakeClock(NOW), pauses).process(Batch(list(items.values())), no_downstream)

    d = {name: item.disposition for name, item in items.items()}
    assert (d["accepted"].status, d["accepted"].possible_duplicate, d["delivered at once"].status) == (Status.SUBMITTED, False, Status.DELIVERED)
    assert d["resent unasked"].possible_duplicate, "accepted again after an ambiguous attempt no one could ask about"
    assert (d["transient"].status, d["transient"].until, d["transient"].unsure_since) == (Status.RETRYING, NOW + timedelta(seconds=30), None)
    assert (d["ambiguous"].status, d["ambiguous"].unsure_since) == (Status.RETRYING, NOW), "unsure since the call began: pinned to its account"
    assert d["ambiguous, give-up"].status is Status.UNKNOWN
    assert (d["permanent"].status, d["permanent"].code) == (Status.REJECTED, "DENIED")
    assert (d["account-wide"].status, d["account-wide"].counted, pauses.paused) == (Status.QUEUED, False, {"second": "INVALID_TOKEN: bad key"})
    assert (d["not sent"].counted, d["not sent"].until) == (False, NOW + timedelta(seconds=1))


def test_decide_ends_an_unsure_message_out_of_retries_unknown_not_undeliverable():
    item = called(Failure(ErrorKind.TRANSIENT, "HTTP_503", "down"), unsure_since=NOW - timedelta(minutes=1))
    item.started = Started(6, NOW, NOW - timedelta(minutes=10))

    Decide(RetryPolicy(max_retries=5), FakeClock(NOW), StubPauses()).process(Batch([item]), no_downstream)

    assert (item.disposition.status, item.disposition.code) == (Status.UNKNOWN, "HTTP_503")


def test_a_stage_reading_a_call_submit_did_not_record_is_told_so():
    item = called(Failure(ErrorKind.TRANSIENT, "HTTP_503", "down"))
    item.started = None

    with pytest.raises(NotDecided, match="no call recorded as started"):
        Decide(RetryPolicy(), FakeClock(NOW), StubPauses()).process(Batch([item]), no_downstream)


# -- route, on Redis ----------------------------------------------------------------------------


def test_route_in_a_worker_asks_the_breaker_in_redis_for_one_probe_and_gives_it_back_if_unused(rt):
    breaker = rt.breaker("first")
    breaker.record([True] * rt.settings.breaker_consecutive_failures)
    rt.redis.hset(breaker_key("first"), "until", "0")
    batch = batch_of(rt, {"account": "first"}, {"account": "first"}, {})
    probe, waits, other = batch.items
    route = Route.of(rt)

    route.process(batch, no_downstream)
    assert (probe.account, probe.probe) == ("first", True)
    assert isinstance(waits.disposition, Defer)
    assert (other.account, other.probe) == ("second", False)
    assert breaker.admit() == 0, "the probe is out"

    route.after(batch)
    assert breaker.admit() == 1, "the probe was not called: the next message may probe at once"


# -- pace -------------------------------------------------------------------------------------


def test_pace_grants_what_the_bucket_allows_defers_the_rest_and_gives_back_unused_tokens(rt, clock):
    rt.accounts["first"] = Account(rt.accounts["first"].adapter, rt.accounts["first"].spec.model_copy(update={"rate": 10.0, "burst": 3}))
    batch = batch_of(rt, *[{"account": "first"}] * 5)
    Route.of(rt).process(batch, no_downstream)
    pace = Pace(rt)

    pace.process(batch, no_downstream)

    granted = [item for item in batch if item.cost]
    deferred = [item.disposition for item in batch if item.disposition]
    assert len(granted) == 3 and len(deferred) == 2
    assert deferred[0].until < deferred[1].until and all(d.reason == "rate limit of account first" for d in deferred)
    bucket = TokenBucket(rt.redis, "first", 10.0, 3)
    assert bucket.acquire([1]).granted == 0
    pace.after(batch)
    assert bucket.acquire([1, 1, 1]).granted == 3, "none of the granted messages was called: their tokens are back"


# -- claim ------------------------------------------------------------------------------------


def test_claim_takes_waiting_rows_once_and_gives_back_the_ones_left_unused(rt):
    batch = batch_of(rt, {}, {})
    mine, theirs = batch.items
    Route.of(rt).process(batch, no_downstream)
    with rt.engine.begin() as conn:
        conn.execute(update(MESSAGES).where(MESSAGES.c.id == theirs.id).values(status="claimed", dispatcher="someone-else"))
    claim = Claim(rt)

    claim.process(batch, no_downstream)

    assert theirs.disposition == Skip("another worker holds it, or it is no longer waiting")
    held = row(rt, mine)
    assert (held.status, held.dispatcher, held.claim_id) == ("claimed", rt.lease.id, mine.claim_id)
    assert mine.message.text == "hello" and mine.message.message_id == mine.id
    claim.after(batch)
    Ledger.of(rt).write(batch)
    released = row(rt, mine)
    assert (released.status, released.claim_id, released.dispatcher) == ("queued", None, None)
    assert rt.redis.zscore(keys.DUE, f"2{mine.id.hex}") is not None, "it comes back by its pointer"


# -- submit -----------------------------------------------------------------------------------


@dataclass
class InMemoryAdapter:
    """Stands in for a provider's adapter: answers from a script, remembering each message's row
    status at the moment it was called."""

    rt: object
    answers: dict
    seen: list

    name = "in-memory"
    max_recipients = 1

    def send(self, messages: Sequence[OutboundMessage]) -> list[SendOutcome]:
        outcomes = []
        for message in messages:
            with self.rt.engine.connect() as conn:
                status = conn.execute(select(MESSAGES.c.status).where(MESSAGES.c.id == message.message_id)).scalar_one()
            self.seen.append((message.text, status))
            outcomes.append(self.answers.get(message.text, Accepted(f"p-{message.text}", "QUEUED", Delivery.QUEUED)))
        return outcomes

    def group_key(self, message: OutboundMessage) -> str:
        return message.message_id

    def close(self) -> None:
        """Nothing to let go: the runtime's end calls it all the same."""


def with_in_memory(rt, answers: dict | None = None) -> list:
    seen: list = []
    for name, account in list(rt.accounts.items()):
        rt.accounts[name] = Account(InMemoryAdapter(rt, answers or {}, seen), account.spec)
    return seen


def test_submit_records_each_call_as_calling_before_it_starts_and_hands_outcomes_downstream(rt):
    seen = with_in_memory(rt, {"refused": Failure(ErrorKind.PERMANENT, "DENIED", "no")})
    batch = prepared(rt, {"text": "a"}, {"text": "refused"})
    downstream = Collecting(rt)

    Submit(rt, lambda n, any_priority: []).process(batch, downstream)

    assert sorted(seen) == [("a", "calling"), ("refused", "calling")], "the database knew the call may start before it did"
    outcomes = {item.message.text: item.outcome for piece in downstream.pieces for item in piece}
    assert isinstance(outcomes["a"], Accepted) and outcomes["refused"].code == "DENIED"
    assert all(item.call.attempt == 1 for item in batch)


def test_submit_does_not_call_a_message_whose_claim_was_taken_back(rt):
    seen = with_in_memory(rt)
    batch = prepared(rt, {"text": "taken back"})
    with rt.engine.begin() as conn:
        conn.execute(update(MESSAGES).values(status="queued", claim_id=None, dispatcher=None))

    Submit(rt, lambda n, any_priority: []).process(batch, Collecting(rt))

    assert seen == []
    assert batch.items[0].disposition == Skip("the claim was taken back before the call")


def test_submit_takes_high_arrivals_into_a_running_batch(rt):
    seen = with_in_memory(rt)
    batch = prepared(rt, {"text": "low", "priority": "low"})
    arrived = prepared(rt, {"text": "urgent", "priority": "high"}).items
    asked: list[tuple[int, bool]] = []

    def arrivals(limit: int, any_priority: bool) -> list[Item]:
        asked.append((limit, any_priority))
        return arrived if len(asked) == 1 else []

    Submit(rt, arrivals).process(batch, Collecting(rt))

    assert asked[0] == (rt.settings.batch_size, False), "a batch without high messages looks for high ones"
    assert sorted(text for text, _ in seen) == ["low", "urgent"]
    assert arrived[0].request < batch.items[0].request, "the high arrival was started first"
    assert arrived[0] in batch.items


def test_a_slow_calling_statement_is_not_a_late_hand_over(rt, monkeypatch):
    """The wait for a thread is measured from the hand-over, not from the top of the loop: a
    database slow to record the call does not make the process cut its calls in flight."""
    with_in_memory(rt)
    batch = prepared(rt, {"text": "a"})
    submit = Submit(rt, lambda n, any_priority: [])
    record = submit._calls.start

    def slow_record(started):
        time.sleep(0.1)
        return record(started)

    monkeypatch.setattr(submit._calls, "start", slow_record)

    submit.process(batch, Collecting(rt))

    assert submit._slots.limit == rt.settings.http_concurrency


# -- health and record ------------------------------------------------------------------------


def test_health_feeds_each_requests_outcome_to_its_accounts_breaker(rt):
    faults = [called(Failure(ErrorKind.TRANSIENT, "HTTP_503", "down")) for _ in range(rt.settings.breaker_consecutive_failures - 1)]
    faults.append(called(Failure(ErrorKind.AMBIGUOUS, "TIMEOUT", "no answer in time")))  # a fault of the account's too
    for n, item in enumerate(faults):
        item.request = n

    Health(rt).process(Batch(faults), no_downstream)

    assert rt.breaker("first").state().state == "open"
    assert all(item.disposition is None for item in faults), "health only looks"


# -- the driver and the ledger ----------------------------------------------------------------


class Takes(Stage):
    """Takes something for every item and writes down when it gives it back."""

    def __init__(self, name: str, log: list) -> None:
        self.name, self.log = name, log

    def process(self, batch, downstream) -> None:
        self.log.append(f"process {self.name}")

    def after(self, batch) -> None:
        self.log.append(f"after {self.name}")


class Breaks(Stage):
    def process(self, batch, downstream) -> None:
        raise RuntimeError("a bug")


def test_after_steps_run_in_reverse_and_a_failing_stage_loses_no_pointer(rt, clock):
    log: list = []
    batch = batch_of(rt, {}, {})
    pipeline = Pipeline([Takes("one", log), Takes("two", log), Breaks()], Ledger.of(rt), rt.clock)

    pipeline.run(batch)

    assert log == ["process one", "process two", "after two", "after one"]
    assert all(isinstance(item.disposition, Defer) and item.disposition.until == clock.now() + timedelta(seconds=1) for item in batch)
    assert rt.redis.zcard(keys.DUE) == 2


def full_pipeline(rt, *stages: Stage) -> Pipeline:
    """Every stage as a worker runs them, ``stages`` put between submit and health."""
    before = [ValidityWindow.of(rt), Route.of(rt), Pace(rt), Claim(rt), Submit(rt, lambda n, any_priority: [])]
    return Pipeline([*before, *stages, Health(rt), Decide.of(rt)], Ledger.of(rt), rt.clock)


def test_a_stage_failing_after_the_calls_records_what_the_provider_answered(rt, clock):
    with_in_memory(rt, {"refused": Failure(ErrorKind.TRANSIENT, "HTTP_503", "down")})
    batch = batch_of(rt, {"text": "accepted"}, {"text": "refused"})
    accepted, refused = batch.items

    full_pipeline(rt, Breaks()).run(batch)

    taken = row(rt, accepted)
    assert (taken.status, taken.provider_message_id, taken.attempts) == ("submitted", "p-accepted", 1), "the provider has it: never sent again"
    retried = row(rt, refused)
    assert (retried.status, retried.error_code, retried.unsure_since) == ("retrying", "HTTP_503", None), "a clear failure, retried by the policy"


def test_a_batch_stopping_mid_calls_waits_for_the_calls_in_flight_and_counts_none_that_never_left(rt, clock):
    with_in_memory(rt)
    batch = batch_of(rt, {"text": "left"}, {"text": "never left"})
    rt._pool = ShutsDownAfter(rt.http_pool, calls=1)

    full_pipeline(rt).run(batch)

    left, never_left = (row(rt, item) for item in batch.items)
    assert (left.status, left.provider_message_id, left.attempts) == ("submitted", "p-left", 1), "its answer was waited for, not guessed"
    assert (never_left.status, never_left.attempts, never_left.unsure_since, never_left.pinned_account) == ("queued", 0, None, None), (
        "never handed to a thread: not sent, not counted, not unsure"
    )


class CannotDecide(Stage):
    decides_outcomes = True

    def process(self, batch, downstream) -> None:
        raise RuntimeError("a bug")


def test_calls_of_a_failing_batch_whose_outcomes_cannot_be_decided_are_recorded_as_truly_as_known(rt, clock):
    with_in_memory(rt, {"refused": Failure(ErrorKind.TRANSIENT, "HTTP_503", "down")})
    batch = batch_of(rt, {"text": "accepted"}, {"text": "refused"})
    stages = [ValidityWindow.of(rt), Route.of(rt), Pace(rt), Claim(rt), Submit(rt, lambda n, any_priority: []), Breaks(), CannotDecide()]

    Pipeline(stages, Ledger.of(rt), rt.clock).run(batch)

    accepted, refused = (row(rt, item) for item in batch.items)
    assert (accepted.status, accepted.provider_message_id, accepted.possible_duplicate) == ("submitted", "p-accepted", False)
    assert (refused.status, refused.error_code, refused.attempts) == ("unknown", DISPATCH_STOPPED, 1), "undecided: never sent again"


def test_the_ledger_writes_only_while_the_row_still_names_the_claim(rt):
    batch = prepared(rt, {"text": "fenced"})
    item = batch.items[0]
    item.started = Started(1, rt.clock.now(), rt.clock.now())
    with rt.engine.begin() as conn:
        conn.execute(update(MESSAGES).values(status="calling", claim_id=uuid.uuid4()))
    item.disposition = Finish(Status.SUBMITTED, "accepted", accepted=Accepted("p", "QUEUED", Delivery.QUEUED))

    Ledger.of(rt).write(batch)

    assert row(rt, item).status == "calling", "another claim holds the row now"
    [late] = [e for e in message_history(item.id, rt.settings.resolved_database_url).events if e["reason"].startswith("late answer")]
    assert "not applied" in late["reason"]


def test_a_worker_that_runs_two_batches_at_once_keeps_them_apart(rt):
    """Two batches of one process (an urgent look-out beside the main one) claim under different names."""
    first, second = batch_of(rt, {"text": "one"}), batch_of(rt, {"text": "two"})
    threads = [
        threading.Thread(target=lambda b=b: [s.process(b, no_downstream) for s in (Route.of(rt), Pace(rt), Claim(rt))]) for b in (first, second)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert first.items[0].claim_id != second.items[0].claim_id


def test_departures_spend_places_taken_ahead_without_asking_redis_each_time(rt, redis_client):
    batch = prepared(rt, *[{"text": f"d{n}", "account": "first"} for n in range(10)])
    departures = Departures(rt)
    evals = lambda: redis_client.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0)  # noqa: E731
    SendWindow(redis_client, "warm-up", 1.0).admit([1])
    before = evals()

    for unit in units_of(rt, batch.in_play()):
        departures.add([unit])
        leaving, dropped = departures.ready(8)
        assert (len(leaving), dropped) == (1, [])

    assert evals() - before == 1, "one round trip took places for the next nine too"
    assert redis_client.zcard("smsw:window:first") == 1 + min(64, int(1000 * min(0.5, rt.accounts["first"].burst / 2000)))


def test_departures_ask_for_every_group_when_the_account_is_at_its_limit(rt, redis_client):
    batch = prepared(rt, *[{"text": f"d{n}", "account": "first"} for n in range(6)])
    rt.accounts["first"] = Account(rt.accounts["first"].adapter, rt.accounts["first"].spec.model_copy(update={"rate": 4.0, "burst": 1}))
    departures = Departures(rt)
    left: list = []

    for unit in units_of(rt, batch.in_play()):
        departures.add([unit])
        leaving, _ = departures.ready(8)
        left += leaving

    assert len(left) == 4, "four fit the window of one second"
    assert len(departures.departing) == 2 and all(entry.not_before > 0 for entry in departures.departing)
