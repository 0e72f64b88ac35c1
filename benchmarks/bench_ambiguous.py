"""Row 8: 1,000 messages, 10 % of their sends held past the client's timeout: doubles per provider and per policy.

Five accounts, one per API (Telekom SK, DT A2P, Dexatel, the session-key gateway, Telefoon).
Each gets 200 messages, 100 with ``on_ambiguous="resend"`` and 100 with ``"give-up"``; every
tenth message's number has a sandbox rule that holds its first send ``HOLD`` seconds, past the
workers' ``SMS_WORKER_HTTP_TIMEOUT_SECONDS`` (the sandbox takes the message, then answers too
late: a provider that has the message while the client saw a timeout). Two worker processes and
the scheduler run as in production, until every message is final.

Counted per message, against the sandbox's submission log (every text is unique):

- *ambiguous attempts*: the message's failure events with an ambiguous code (timeout, lost
  connection, unreadable answer, worker lost, adapter crash), from its history;
- *doubles*: messages the sandbox accepted more than once;
- *flagged*: messages whose row says ``possible_duplicate`` (their history says so too).

Expected: Telefoon, which can be asked, 0 doubles under either policy; ``give-up`` 0 doubles
anywhere (those messages end ``unknown``); ``resend`` on the others, one double per held
message, each one flagged; no double without an ambiguous attempt; nothing lost.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter

import httpx

from benchmarks.harness import Options, Row, Stack, chunks, log, max_in_window, recipient, sandbox_providers, standalone, verdict

HOLD = 3.0
"""Seconds the sandbox holds a held send before answering."""
TIMEOUT = 1.0
"""The workers' deadline for one provider exchange."""
SEND_ENDPOINTS = {"telekom-sk": "send_message", "dt-a2p": "send", "dexatel": "send", "session-key": "sms", "telefoon": "send"}
POLICIES = ("resend", "give-up")


def ambiguous_attempts(rt) -> Counter:
    """Failure events with an ambiguous code, per message id."""
    from sqlalchemy import func, select

    from sms_worker.dispatch.stages.requests import ADAPTER_CRASH
    from sms_worker.lifecycle.status import Status
    from sms_worker.lifecycle.tables import EVENTS
    from sms_worker.providers.plumbing import BAD_RESPONSE, CONNECTION_LOST
    from sms_worker.providers.plumbing import TIMEOUT as TIMED_OUT
    from sms_worker.recovery import WORKER_LOST

    codes = [TIMED_OUT, CONNECTION_LOST, BAD_RESPONSE, WORKER_LOST, ADAPTER_CRASH]
    statement = (
        select(EVENTS.c.message_id, func.count())
        .where(EVENTS.c.code.in_(codes), EVENTS.c.status != Status.CALLING.value)
        .group_by(EVENTS.c.message_id)
    )
    with rt.engine.connect() as conn:
        return Counter(dict(conn.execute(statement).all()))


def rows(rt) -> list:
    from sqlalchemy import select

    from sms_worker.lifecycle.tables import MESSAGES

    with rt.engine.connect() as conn:
        return list(conn.execute(select(MESSAGES.c.id, MESSAGES.c.text, MESSAGES.c.status, MESSAGES.c.possible_duplicate)))


def run(opts: Options) -> list[Row]:
    from sms_worker.lifecycle.status import FINAL_VALUES
    from sms_worker.producer import send_many

    per_cell = opts.pick(100, 20)
    messages, held = [], []
    for a, account in enumerate(SEND_ENDPOINTS):
        for p, policy in enumerate(POLICIES):
            for j in range(per_cell):
                i = (a * len(POLICIES) + p) * per_cell + j
                messages.append({"to": recipient(i), "text": f"ambiguous {account} {policy} {j:03d}", "account": account, "on_ambiguous": policy})
                if j % 10 == 0:
                    held.append((account, recipient(i)))
    n = len(messages)
    with Stack("ambiguous", opts) as stack:
        sandbox = stack.start_sandbox()
        side = stack.ours(
            providers_file=sandbox_providers(stack.dir, sandbox, SEND_ENDPOINTS, rate=200, default=["telekom-sk"]),
            http_timeout_seconds=TIMEOUT,
            retry_backoff_seconds=f"[{HOLD + 2},{HOLD + 2},{HOLD + 2},{HOLD + 2},{HOLD + 2}]",
            status_check_delays_seconds="[0.5,1,2,5]",
        )
        rt = side.runtime
        stack.reset_sandbox()
        with httpx.Client(timeout=10) as client:
            for account, number in held:
                rule = {"provider": account, "endpoint": SEND_ENDPOINTS[account], "to": number, "fault": "timeout", "seconds": HOLD, "times": 1}
                client.post(f"{sandbox}/_sandbox/faults", json=rule).raise_for_status()
        started = time.perf_counter()
        for chunk in chunks(messages, 500):
            send_many(chunk, runtime=rt)
        log(f"ambiguous: enqueued {n} ({len(held)} with a held send); starting 2 worker processes")
        workers = stack.start_workers(side.env, 2)
        deadline = time.monotonic() + opts.pick(420, 240)
        while time.monotonic() < deadline:
            if sum(row.status in FINAL_VALUES for row in rows(rt)) >= n:
                break
            stack.check_alive(workers, side.scheduler)
            time.sleep(1)
        elapsed = time.perf_counter() - started
        found, attempts = rows(rt), ambiguous_attempts(rt)
        submissions = httpx.get(f"{sandbox}/_sandbox/submissions", timeout=60).json()["submissions"]
        stack.stop(workers)
        stack.stop(side.scheduler)
        rt.close()

    accepted = Counter(s["text"] for s in submissions if s["accepted"])
    cells: dict[tuple[str, str], Counter] = {}
    for row in found:
        _, account, policy, _ = row.text.split(" ")
        cell = cells.setdefault((account, policy), Counter())
        copies = accepted[row.text]
        cell["messages"] += 1
        cell["ambiguous"] += attempts[row.id]
        cell["with_ambiguous"] += attempts[row.id] > 0
        cell["doubles"] += copies > 1
        cell["flagged"] += bool(row.possible_duplicate)
        cell["unflagged_doubles"] += copies > 1 and not row.possible_duplicate
        cell["doubles_without_ambiguous"] += copies > 1 and attempts[row.id] == 0
        cell["never_accepted"] += copies == 0
        cell["final"] += row.status in FINAL_VALUES
        cell[f"status:{row.status}"] += 1
    total = sum(cells.values(), Counter())
    asked_clean = all(cells[("telefoon", policy)]["doubles"] == 0 for policy in POLICIES)
    give_up_clean = all(cells[(account, "give-up")]["doubles"] == 0 for account in SEND_ENDPOINTS)
    ok = (
        total["final"] == n
        and asked_clean
        and give_up_clean
        and total["unflagged_doubles"] == 0
        and total["doubles_without_ambiguous"] == 0
        and total["never_accepted"] == 0
    )
    notes = [f"{'account':<12} {'policy':<8} {'msgs':>5} {'ambiguous attempts':>19} {'doubles':>8} {'flagged':>8}  final statuses"]
    for (account, policy), cell in sorted(cells.items()):
        statuses = ", ".join(f"{k.split(':', 1)[1]} {v}" for k, v in sorted(cell.items()) if k.startswith("status:"))
        notes.append(f"{account:<12} {policy:<8} {cell['messages']:>5} {cell['ambiguous']:>19} {cell['doubles']:>8} {cell['flagged']:>8}  {statuses}")
    notes.append(
        f"doubles not flagged: {total['unflagged_doubles']}; doubles without an ambiguous attempt: {total['doubles_without_ambiguous']}; "
        f"never accepted: {total['never_accepted']}; {total['final']}/{n} final in {elapsed:.0f}s"
    )
    row = Row(
        "8",
        f"ambiguous sends: {n:,} msgs, 10% held {HOLD:.0f}s past a {TIMEOUT:.0f}s timeout",
        f"{total['doubles']} doubles / {total['ambiguous']} ambiguous attempts",
        "-",
        "-",
        "0 doubles where the API can be asked or the policy is give-up; every double flagged",
        verdict(ok),
        notes,
    )
    return [row]


def events_with(rt, words: str) -> Counter:
    """Events whose reason contains ``words``, per message id."""
    from sqlalchemy import func, select

    from sms_worker.lifecycle.tables import EVENTS

    statement = select(EVENTS.c.message_id, func.count()).where(EVENTS.c.reason.contains(words)).group_by(EVENTS.c.message_id)
    with rt.engine.connect() as conn:
        return Counter(dict(conn.execute(statement).all()))


def run_busy(opts: Options) -> list[Row]:
    """Row 8b (``--telefoon-rate R --telefoon-seconds S``): Telefoon alone, sending at its full
    rate for S seconds (R x S messages, half ``resend`` and half ``give-up``), every
    ``--held-every``-th send held past the timeout, so every question about a lost attempt is
    asked while the account's listing grows by R messages a second. Expected: every unsure
    message adopted or flagged ``possible_duplicate``, none ``unknown``, no double unflagged,
    Telefoon's breaker never opened (questions never count against it)."""
    from sms_worker.lifecycle.status import FINAL_VALUES
    from sms_worker.producer import send_many

    rate, seconds, every = float(opts.params["telefoon_rate"]), float(opts.params["telefoon_seconds"]), int(opts.params["held_every"])
    n = int(rate * seconds)
    messages, held = [], []
    for i in range(n):
        policy = POLICIES[i % 2]
        messages.append({"to": recipient(i), "text": f"busy telefoon {policy} {i:06d}", "account": "telefoon", "on_ambiguous": policy})
        if i % every == every // 2:
            held.append(recipient(i))
    with Stack("ambiguous-busy", opts) as stack:
        sandbox = stack.start_sandbox()
        side = stack.ours(
            providers_file=sandbox_providers(stack.dir, sandbox, ["telefoon"], rate=rate, default=["telefoon"]),
            http_timeout_seconds=TIMEOUT,
            retry_backoff_seconds=f"[{HOLD + 2},{HOLD + 2},{HOLD + 2},{HOLD + 2},{HOLD + 2}]",
            status_check_delays_seconds="[5,30,60]",
        )
        rt = side.runtime
        stack.reset_sandbox()
        with httpx.Client(timeout=10) as client:
            for number in held:
                rule = {"provider": "telefoon", "endpoint": "send", "to": number, "fault": "timeout", "seconds": HOLD, "times": 1}
                client.post(f"{sandbox}/_sandbox/faults", json=rule).raise_for_status()
        for chunk in chunks(messages, 1000):
            send_many(chunk, runtime=rt)
        log(f"ambiguous-busy: enqueued {n} for Telefoon at {rate:.0f}/s ({len(held)} with a held send); starting 2 worker processes")
        started = time.perf_counter()
        workers = stack.start_workers(side.env, 2)
        deadline = time.monotonic() + seconds * 3 + 300
        while time.monotonic() < deadline:
            if sum(row.status in FINAL_VALUES for row in rows(rt)) >= n:
                break
            stack.check_alive(workers, side.scheduler)
            time.sleep(2)
        elapsed = time.perf_counter() - started
        found, attempts = rows(rt), ambiguous_attempts(rt)
        adopted, failed_questions = events_with(rt, "adopted as"), events_with(rt, "whether it has the message failed")
        submissions = httpx.get(f"{sandbox}/_sandbox/submissions", timeout=120).json()["submissions"]
        stack.stop(workers)
        stack.stop(side.scheduler)
        opened = workers.logfile.read_text(errors="replace").count("circuit breaker OPEN for account telefoon")
        rt.close()

    accepted = [s for s in submissions if s["accepted"]]
    copies = Counter(s["text"] for s in accepted)
    peak = max_in_window([s["received_ts"] for s in accepted])
    count = Counter()
    for row in found:
        copies_of = copies[row.text]
        count["final"] += row.status in FINAL_VALUES
        count["never_accepted"] += copies_of == 0
        count["unflagged_doubles"] += copies_of > 1 and not row.possible_duplicate
        if not attempts[row.id]:
            count["doubles_without_ambiguous"] += copies_of > 1
            continue
        count["unsure"] += 1
        count["adopted"] += adopted[row.id] > 0
        count["flagged"] += bool(row.possible_duplicate)
        count["unknown"] += row.status == "unknown"
        count["doubles"] += copies_of > 1
    settled = count["adopted"] + count["flagged"]
    ok = (
        count["final"] == n
        and count["unsure"] >= len(held)
        and count["unknown"] == 0
        and settled >= count["unsure"]
        and count["unflagged_doubles"] == 0
        and count["doubles_without_ambiguous"] == 0
        and count["never_accepted"] == 0
        and opened == 0
    )
    notes = [
        f"Telefoon sent {len(accepted):,} requests accepted, peak {peak} in one second (rate {rate:.0f}/s); {n:,}/{n:,} messages, "
        f"{count['final']:,} final in {elapsed:.0f}s",
        f"unsure (an ambiguous attempt): {count['unsure']}; adopted: {count['adopted']}; flagged possible_duplicate: {count['flagged']}; "
        f"unknown: {count['unknown']}; doubles: {count['doubles']} (unflagged {count['unflagged_doubles']})",
        f"questions that failed: {sum(failed_questions.values())}; Telefoon breaker opened: {opened} time(s); "
        f"doubles without an ambiguous attempt: {count['doubles_without_ambiguous']}; never accepted: {count['never_accepted']}",
    ]
    return [
        Row(
            "8b",
            f"busy Telefoon: {n:,} msgs at {rate:.0f}/s, every {every}th send held {HOLD:.0f}s past a {TIMEOUT:.0f}s timeout",
            f"{count['adopted']} adopted + {count['flagged']} flagged / {count['unsure']} unsure",
            "-",
            "-",
            "every unsure message adopted or flagged, 0 unknown, breaker never opened",
            verdict(ok),
            notes,
        )
    ]


def main(opts: Options) -> list[Row]:
    """Row 8, or row 8b with ``--telefoon-seconds``."""
    return run_busy(opts) if opts.params.get("telefoon_seconds") else run(opts)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--telefoon-rate", type=float, default=200, help="row 8b: Telefoon's rate, messages a second (default 200)")
    parser.add_argument("--telefoon-seconds", type=float, default=0, help="row 8b instead of row 8: seconds of sending at that rate")
    parser.add_argument("--held-every", type=int, default=100, help="row 8b: one send in this many held past the timeout (default 100)")


if __name__ == "__main__":
    standalone(main, __doc__.splitlines()[0], add_arguments)
