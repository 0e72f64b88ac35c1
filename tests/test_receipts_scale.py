"""Receipts at the same scale as sending: an account whose provider posts receipts is checked only
once a receipt is overdue, Telefoon's listing answers many checks in one request, and each
account's checks keep to a budget of their own without holding up another account's.

Real Redis, a real database, the sandbox over HTTP; the worker's clock is a FakeClock, moved by
hand, and the sandbox counts the status requests it served (``/_sandbox/requests``)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from accounts import ACCOUNTS, drain, message_row
from conftest import parse_account, wait_until
from sqlalchemy import select
from starlette.testclient import TestClient

from sms_worker.callbacks import create_callback_app
from sms_worker.clock import FakeClock
from sms_worker.dispatch.receipts import poll_statuses
from sms_worker.errors import ProvidersFileError
from sms_worker.lifecycle.tables import MESSAGES
from sms_worker.producer import send_many
from sms_worker.runtime import NoWaker, build_runtime
from sms_worker.sandbox.settings import SandboxSettings

RECIPIENT = "+421900123456"


@pytest.fixture
def deployment(settings_for, redis_client, sandbox, tmp_path):
    """A runtime on a FakeClock set to now, over accounts given as ``{name: extra TOML lines}``."""
    runtimes = []

    def make(accounts: dict[str, str], **settings):
        tables = "".join(
            f"\n[accounts.{name}]\n{ACCOUNTS[name].format(url=sandbox.url, dt_key='sandbox-dt-key')}\nrate = 1000\nburst = 1000\n{extra}\n"
            for name, extra in accounts.items()
        )
        path = tmp_path / "providers.toml"
        path.write_text(tables)
        rt = build_runtime(settings_for(providers_file=path, **settings), waker=NoWaker(), clock=FakeClock(datetime.now(UTC)))
        runtimes.append(rt)
        return rt

    yield make
    for rt in runtimes:
        rt.close()


def checks(sandbox) -> dict[str, int]:
    """Status-check requests each provider of the sandbox served so far."""
    return httpx.get(f"{sandbox.url}/_sandbox/requests").json()["checks"]


def requests(sandbox, provider: str = "telefoon") -> dict[str, int]:
    """Requests the sandbox served so far for ``provider``, by endpoint."""
    return httpx.get(f"{sandbox.url}/_sandbox/requests").json()["requests"].get(provider, {})


def sent(rt, account: str, count: int) -> list:
    ids = send_many([{"to": RECIPIENT, "text": f"receipt {n}", "account": account} for n in range(count)], runtime=rt)
    drain(rt)
    return ids


def delivered_at_provider(sandbox, count: int) -> None:
    """Wait until the sandbox (on the system clock) has delivered the last of the ``count``
    messages sent to it."""
    delivered_after = SandboxSettings().delivered_after

    def done() -> bool:
        submissions = sandbox.submissions()
        return len(submissions) >= count and submissions[-1]["received_ts"] + delivered_after < time.time()

    wait_until(done, timeout=10, message=f"{count} messages delivered at the sandbox")


def sent_and_delivered(rt, sandbox, counts: dict[str, int], then: float) -> dict[str, list]:
    """Send ``counts`` messages through each account, wait until the sandbox delivered them all,
    then move the worker's clock ``then`` seconds on; their ids by account."""
    ids = {account: sent(rt, account, count) for account, count in counts.items()}
    delivered_at_provider(sandbox, sum(counts.values()))
    rt.clock.advance(then)
    return ids


def test_an_account_that_posts_receipts_is_not_checked_before_its_receipt_is_overdue(deployment, sandbox):
    rt = deployment({"dexatel": "receipt_callbacks = true", "dt-a2p": ""}, receipt_overdue_seconds=300)
    ids = sent_and_delivered(rt, sandbox, {"dexatel": 3, "dt-a2p": 1}, then=5)
    by_callback, polled = ids["dexatel"], ids["dt-a2p"]
    before = checks(sandbox)

    report = poll_statuses(rt)

    after = checks(sandbox)
    assert after["dexatel"] == before["dexatel"], "a message whose receipt comes by callback is not checked within its overdue time"
    assert after["dt-a2p"] == before["dt-a2p"] + 1
    assert (report.checked, report.final) == (1, 1)
    assert message_row(rt, polled[0]).status == "delivered"
    assert {message_row(rt, message_id).status for message_id in by_callback} == {"submitted"}

    rt.clock.advance(300)
    report = poll_statuses(rt)

    assert checks(sandbox)["dexatel"] == before["dexatel"] + 3, "overdue: checked after all, once each"
    assert {message_row(rt, message_id).status for message_id in by_callback} == {"delivered"}


def test_a_callback_that_leaves_a_message_on_its_way_does_not_bring_its_check_forward(deployment, sandbox):
    rt = deployment({"dexatel": "receipt_callbacks = true"}, receipt_overdue_seconds=300, callback_token="receipts-token")
    [message_id] = sent(rt, "dexatel", 1)
    submitted = message_row(rt, message_id)
    rt.clock.advance(5)
    body = json.dumps({"message_id": submitted.provider_message_id, "status": "sent"})

    with TestClient(create_callback_app(rt)) as client:
        answer = client.post("/callbacks/dexatel", content=body, params={"token": "receipts-token"}, headers={"content-type": "application/json"})

    assert answer.json()["changed"] == 1
    reported = message_row(rt, message_id)
    assert (reported.status, reported.delivery) == ("submitted", "sent")
    assert reported.next_check_at >= submitted.last_attempt_at + timedelta(seconds=300), "still checked only once overdue"


def test_one_listing_request_answers_many_telefoon_checks_and_each_message_gets_its_receipt(deployment, sandbox):
    rt = deployment({"telefoon": ""})
    ids = sent_and_delivered(rt, sandbox, {"telefoon": 30}, then=2)["telefoon"]
    before = checks(sandbox)["telefoon"]

    report = poll_statuses(rt)

    assert (report.checked, report.final, report.errors) == (30, 30, 0)
    assert checks(sandbox)["telefoon"] - before == 2, "the listing's total, then its last page: two requests for thirty messages"
    for message_id in ids:
        row = message_row(rt, message_id)
        assert (row.status, row.provider_status) == ("delivered", "delivered")


def test_what_the_listing_does_not_show_is_checked_alone_and_none_is_lost(deployment, sandbox):
    rt = deployment({"telefoon": ""})
    ids = sent(rt, "telefoon", 5)
    delivered_at_provider(sandbox, 5)
    httpx.post(f"{sandbox.url}/telefoon/_sandbox/traffic", json={"count": 600}).raise_for_status()
    rt.clock.advance(2)
    before = requests(sandbox)

    first = poll_statuses(rt)
    rt.clock.advance(1)
    second = poll_statuses(rt)

    served = {endpoint: count - before.get(endpoint, 0) for endpoint, count in requests(sandbox).items()}
    assert served["list"] == 2, "the total and the newest page, at most half the five checks' budget: none of ours there"
    assert served["get"] == 5, "then each one alone, three in the first round and two in the next"
    assert (first.checked, first.deferred, second.checked) == (3, 2, 2)
    assert {message_row(rt, message_id).status for message_id in ids} == {"delivered"}


def test_the_check_budget_limits_one_account_without_starving_another(deployment, sandbox):
    rt = deployment({"dt-a2p": "check_rate = 0.001", "dexatel": ""})
    ids = sent_and_delivered(rt, sandbox, {"dt-a2p": 4, "dexatel": 4}, then=2)
    slow, fast = ids["dt-a2p"], ids["dexatel"]
    before = checks(sandbox)

    report = poll_statuses(rt)

    after = checks(sandbox)
    assert after["dt-a2p"] - before["dt-a2p"] == 1, "a budget of 0.001 checks/s holds one check"
    assert after["dexatel"] - before["dexatel"] == 4, "the other account's checks all went"
    assert (report.checked, report.deferred) == (5, 3)
    assert {message_row(rt, message_id).status for message_id in fast} == {"delivered"}

    rt.clock.advance(60)
    poll_statuses(rt)

    assert checks(sandbox)["dt-a2p"] == after["dt-a2p"], "what waits for the budget is not checked before its turn"
    waiting = [message_row(rt, message_id) for message_id in slow if message_row(rt, message_id).status == "submitted"]
    assert len(waiting) == 3, "never dropped: still submitted"
    assert all(row.next_check_at > rt.clock.now() for row in waiting), "each one's next check moved to when the budget has room"
    with rt.engine.connect() as conn:
        moved = sorted(conn.execute(select(MESSAGES.c.next_check_at).where(MESSAGES.c.id.in_(slow), MESSAGES.c.status == "submitted")).scalars())
    assert len(set(moved)) == 3, "one after another at the budget's pace, not all at once"


def test_the_providers_file_says_what_a_check_rate_or_receipt_callbacks_must_be():
    table = {"type": "dexatel", "base_url": "http://127.0.0.1:8025/dexatel", "api_key": "k", "default_sender": "ACME"}

    with pytest.raises(ProvidersFileError) as refused:
        parse_account({**table, "check_rate": 0, "receipt_callbacks": "yes"})

    assert str(refused.value).splitlines() == [
        "providers file: accounts.acct.receipt_callbacks: must be true or false",
        "providers file: accounts.acct.check_rate: must be a positive number of status checks per second",
    ]
    assert parse_account({**table, "check_rate": 2.5, "receipt_callbacks": True}).check_rate == 2.5


def test_a_message_of_an_account_gone_from_the_providers_file_holds_up_no_other_receipt(deployment, sandbox):
    before = deployment({"dt-a2p": "", "dexatel": ""})
    ids = sent_and_delivered(before, sandbox, {"dt-a2p": 1, "dexatel": 1}, then=0)
    after = deployment({"dexatel": ""})
    after.clock.advance(5)

    report = poll_statuses(after)

    assert (report.checked, report.final, report.errors) == (2, 1, 1)
    assert message_row(after, ids["dexatel"][0]).status == "delivered"
    gone = message_row(after, ids["dt-a2p"][0])
    assert gone.status == "submitted", "not dropped: checked again should the account come back"
