"""Calls in flight sized by the work, per account (issue 18): an account gets what its rate
limit and its measured latency need, and a slow account never takes the slots a fast one needs."""

from __future__ import annotations

import pytest

from sms_worker.dispatch.service import dispatch_batch
from sms_worker.dispatch.stages.slots import FLOOR, LATE_HAND_OVER, LOWEST, Slots
from sms_worker.producer import send_many
from sms_worker.runtime import NoWaker, build_runtime

TWO_ACCOUNTS = """
[accounts.fast]
type = "telekom-sk"
base_url = "{url}/telekom-sk"
token = "sandbox-token"
rate = 60
burst = 70

[accounts.slow]
type = "dt-a2p"
base_url = "{url}/dt-a2p"
api_key = "sandbox-dt-key"
default_sender = "+4915112345678"
rate = 50
burst = 50
"""


def test_an_account_gets_the_calls_its_rate_and_latency_need():
    slots = Slots({"short-code": 500.0}, ceiling=2048)
    for latency in (0.02, 0.2, 2.0):
        slots.latency.clear()
        for _ in range(50):
            slots.observe("short-code", latency)
        assert slots.need("short-code") >= 500 * latency, f"at {latency} s it reaches its rate"
        assert slots.need("short-code") <= 2 * 500 * latency + FLOOR, "and takes no more than it needs, with headroom"


def test_the_ceiling_bounds_every_account_together_and_the_fast_one_keeps_its_need():
    slots = Slots({"fast": 100.0, "slow": 100.0}, ceiling=64)
    for _ in range(50):
        slots.observe("fast", 0.05)
        slots.observe("slow", 2.0)

    shares = slots.shares(["fast", "slow"])

    assert shares["fast"] == slots.need("fast"), "the fast account needs few slots, and has them"
    assert shares["slow"] == 64 - shares["fast"], "the slow one has the rest, not more"


def test_accounts_without_work_keep_at_most_half_the_ceiling_from_one_with_work():
    slots = Slots({"a": 500.0, "b": 100.0, "c": 50.0}, ceiling=8)
    slots.observe("a", 0.2)

    assert slots.shares(["a"])["a"] == 4, "two idle accounts would keep all 8; they keep half"


def test_an_overloaded_process_carries_fewer_calls_until_its_threads_start_on_time_again():
    """More calls than the host's CPU carries only slow every call (and jitter the departures
    past what the burst absorbs): late hand-overs to threads cut the ceiling in use, hand-overs
    on time win it back. One late hand-over among many on time (a moment the host ran another
    process) is not overload."""
    slots = Slots({"short-code": 500.0}, ceiling=512)
    for n in range(100):
        slots.handed_over(0.002 if n % 50 else LATE_HAND_OVER * 4, now=n * 0.01)
    assert slots.limit == 512, "one late hand-over in fifty"

    for n in range(40):
        slots.handed_over(LATE_HAND_OVER * 4, now=n * 0.1)
    assert slots.limit == LOWEST
    assert slots.need("short-code") <= LOWEST, "an account's share is within it"

    for _ in range(10_000):
        slots.handed_over(0.001, now=10.0)
    assert slots.limit == 512


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_slow_account_does_not_lower_a_fast_accounts_rate(settings_for, sandbox, clock, tmp_path):
    """The slow account answers after 2 s and would take every slot of the process (50 msg/s
    for 2 s is a hundred calls, the ceiling is 12); its messages come first. The fast account's
    60 messages (its rate, within its burst) still leave within one slow answer's time: not one of them
    waited for a slot a slow call held. (Before: both shared 8 slots first come, first served,
    and the fast messages waited for the slow answers.) Messages the rate limits defer stay in
    the due set: no scheduler runs here."""
    path = tmp_path / "providers.toml"
    path.write_text(TWO_ACCOUNTS.format(url=sandbox.url))
    rt = build_runtime(settings_for(providers_file=path, http_concurrency=12, batch_seconds=3), waker=NoWaker(), clock=clock)
    sandbox.add_fault(provider="dt-a2p", endpoint="send", fault="latency", ms=2000)
    send_many([{"to": f"+4915112{n:06d}", "text": f"slow {n}", "account": "slow"} for n in range(100)], runtime=rt)
    send_many([{"to": f"+4219001{n:05d}", "text": f"fast {n}", "account": "fast"} for n in range(60)], runtime=rt)

    dispatch_batch(rt)

    arrivals = sandbox.submissions()
    fast = sorted(s["received_ts"] for s in arrivals if s["text"].startswith("fast"))
    slow = sorted(s["received_ts"] for s in arrivals if s["text"].startswith("slow"))
    assert len(fast) == 60
    assert len([t for t in slow if t < fast[-1]]) >= 12 - FLOOR, "the slow account had every slot not kept for others meanwhile"
    assert fast[-1] - fast[0] < 2.0, f"the fast account's messages took {fast[-1] - fast[0]:.1f} s: they waited for slow answers"
    rt.close()
