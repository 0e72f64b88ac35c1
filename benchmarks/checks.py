"""Status checks per second at steady state: what the receipt poller asks of a provider while
sms_worker sends at full rate, with the provider posting receipts by callback and without.

The sandbox counts the requests each status endpoint served (``GET /_sandbox/requests``,
``checks`` by provider); :func:`read_checks` reads it and :func:`checks_per_second` divides two
reads. :func:`measure` runs one case: a Telekom SK account at ``rate`` messages per second (its
check budget ``rate * SMS_WORKER_STATUS_CHECK_SHARE``), ``n`` messages enqueued, then two worker
processes and the scheduler (its poller); with ``callbacks`` the sandbox posts every receipt to
``sms-worker callbacks`` and the account says ``receipt_callbacks = true``. Steady state is the
window from the 20th to the 80th percent of the messages accepted by the sandbox; the checks
counted in it, over its length, are the figure. ``python -m benchmarks.checks`` runs both cases.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import httpx

from benchmarks.harness import Options, Row, Stack, chunks, log, recipient, sms_worker_cmd, standalone

ACCOUNT = "telekom-sk"
CASES = ("polled", "callbacks")
TOKEN = "bench-checks-token"
TAIL_SECONDS = 10
"""How long the run goes on after the last message was accepted, for the total's late checks."""
READ_TIMEOUT = 120.0
"""A sandbox posting thousands of callbacks to a receiver that cannot keep up answers slowly."""


@dataclass(frozen=True, slots=True)
class CheckSample:
    """The sandbox's status-check requests so far, by provider, read at ``at`` (epoch seconds)."""

    at: float
    checks: dict[str, int]


def read_checks(sandbox_url: str) -> CheckSample:
    """One read of ``/_sandbox/requests``."""
    body = httpx.get(f"{sandbox_url}/_sandbox/requests", timeout=READ_TIMEOUT).json()
    return CheckSample(body["at"], body["checks"])


def checks_per_second(before: CheckSample, after: CheckSample) -> dict[str, float]:
    """Status-check requests per second between two reads, by provider, and ``total``."""
    span = after.at - before.at
    if span <= 0:
        raise ValueError("the second read must come after the first")
    rates = {name: (after.checks.get(name, 0) - before.checks.get(name, 0)) / span for name in after.checks}
    return {**rates, "total": sum(rates.values())}


@dataclass(frozen=True, slots=True)
class Measured:
    accepted: int
    send_rate: float
    checks_rate: float
    checks: int
    """Status checks over the whole run, :data:`TAIL_SECONDS` after the last send included."""
    pending: int
    """Messages still without a final receipt at the end."""


def measure(stack: Stack, n: int, *, rate: float, callback_port: int | None, timeout: float) -> Measured:
    """One case (see the module docstring) on a stack with no sandbox yet; with ``callback_port``
    its sandbox posts every receipt to a receiver listening there."""
    from sqlalchemy import func, select

    from sms_worker.lifecycle.tables import MESSAGES
    from sms_worker.producer import send_many

    callbacks = callback_port is not None
    posting = ("--telekom-sk-callback-url", f"http://127.0.0.1:{callback_port}/callbacks/{ACCOUNT}?token={TOKEN}") if callbacks else ()
    stack.start_sandbox(*posting)
    providers = stack.dir / "providers.toml"
    providers.write_text(
        f'[accounts.{ACCOUNT}]\ntype = "telekom-sk"\nbase_url = "{stack.sandbox_url}/telekom-sk"\ntoken = "sandbox-token"\n'
        f'rate = {rate}\nburst = {int(rate)}\ncallback_token = "{TOKEN}"\nreceipt_callbacks = {"true" if callbacks else "false"}\n'
    )
    side = stack.ours(providers_file=providers, **({"callback_port": callback_port} if callbacks else {}))
    receiver = stack.spawn("callbacks", sms_worker_cmd("callbacks"), side.env) if callbacks else None
    watch = stack.watch()
    for chunk in chunks([{"to": recipient(i), "text": f"checks {i:06d}"} for i in range(n)], 1000):
        send_many(chunk, runtime=side.runtime)
    workers = stack.start_workers(side.env, 2)
    deadline = time.monotonic() + timeout
    start: CheckSample | None = None
    end: CheckSample | None = None
    while len(watch.accepted) < n and time.monotonic() < deadline:
        watch.poll()
        if start is None and len(watch.accepted) >= n * 0.2:
            start = read_checks(stack.sandbox_url)
        if end is None and start is not None and len(watch.accepted) >= n * 0.8:
            end = read_checks(stack.sandbox_url)
            log(f"checks ({'callbacks' if callbacks else 'polled'}): {checks_per_second(start, end)[ACCOUNT]:.1f}/s at steady state")
        time.sleep(0.2)
    stack.check_alive(workers, *(proc for proc in (side.scheduler, receiver) if proc is not None))
    time.sleep(TAIL_SECONDS)
    total = read_checks(stack.sandbox_url)
    ts = watch.accepted_ts()
    with side.runtime.engine.connect() as conn:
        pending = conn.execute(select(func.count()).where(MESSAGES.c.status == "submitted")).scalar_one()
    side.runtime.close()
    if start is None or end is None:
        raise RuntimeError(f"only {len(watch.accepted)} of {n} accepted within {timeout:.0f}s")
    measured = Measured(len(ts), (len(ts) - 1) / (ts[-1] - ts[0]), checks_per_second(start, end)[ACCOUNT], total.checks[ACCOUNT], pending)
    log(f"checks ({'callbacks' if callbacks else 'polled'}): {measured}")
    return measured


def run(opts: Options) -> list[Row]:
    n, rate = opts.pick(20_000, 5_000), float(opts.params.get("rate") or 500)
    from sms_worker.embedded import free_port

    timeout = opts.pick(600, 120)
    measured: dict[str, Measured] = {}
    for case in opts.params.get("cases") or CASES:
        with Stack(f"checks-{case}", opts) as stack:
            measured[case] = measure(stack, n, rate=rate, callback_port=free_port() if case == "callbacks" else None, timeout=timeout)
    polled, posted = measured.get("polled"), measured.get("callbacks")
    return [
        Row(
            "checks",
            f"status checks/s at steady state (N={n:,}, rate {rate:g}/s, check budget {rate / 4:g}/s)",
            f"{posted.checks_rate:.1f}/s with callbacks" if posted else "not run",
            f"{polled.checks_rate:.1f}/s polled" if polled else "not run",
            "",
            "~0 with callbacks",
            "",
            [
                f"{case}: {m.accepted:,} sent at {m.send_rate:.0f}/s, {m.checks:,} checks in all, {m.pending:,} still without a final receipt "
                f"{TAIL_SECONDS}s after the last send"
                for case, m in measured.items()
            ],
        )
    ]


if __name__ == "__main__":

    def arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--rate", type=float, help="the account's rate (500)")
        parser.add_argument("--cases", nargs="+", choices=CASES, help="run only these cases")

    standalone(run, __doc__.splitlines()[0], arguments)
