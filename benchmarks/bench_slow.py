"""Row 9: one account at its rate limit whatever its API's latency (issue 18).

The sandbox holds every Telekom SK send 20 ms, 200 ms and 1 s in turn (its ``latency`` fault:
the send is recorded on arrival, then the answer waits). One account allowed 500 msg/s with a
burst of 50; two worker processes with default settings (``sms-worker worker -c 2``, started
afresh for each latency, so each learns the latency from nothing). For each latency a backlog
of ``500 × (warm-up + 30 s + 4 s)`` messages is enqueued before the workers start, and from the
sandbox's log of arrivals:

- the mean rate at arrival over 30 s of steady sending (after a warm-up of ``WARM_UP`` s from
  the first arrival): aim at least 95 % of 500;
- the busiest sliding second over the whole phase: never over 550 (the rate and its burst);
- the worker processes' CPU per message accepted;
- the status checks the sandbox served per second while sending (the receipt poller's, read
  from ``/_sandbox/requests``; the account has no callbacks, so it is polled, within its check
  budget).

The naive baseline (one Celery task per message, one blocking call; ``celery worker -c 2``) is
measured at 200 ms in the same run.
"""

from __future__ import annotations

import httpx

from benchmarks import naive
from benchmarks.checks import checks_per_second, read_checks
from benchmarks.harness import Options, Row, Stack, chunks, fmt_rate, log, max_in_window, recipient, standalone, verdict

RATE, BURST = 500, 50
LATENCIES_MS = (20, 200, 1000)
WARM_UP = 3.0
STEADY = 30.0


def hold_sends(stack: Stack, ms: int) -> None:
    """Every Telekom SK send answered ``ms`` milliseconds after it arrived."""
    rule = {"provider": "telekom-sk", "endpoint": "send_message", "fault": "latency", "ms": ms}
    httpx.post(f"{stack.sandbox_url}/_sandbox/faults", json=rule, timeout=10).raise_for_status()


def steady(ts: list[float], warm_up: float, span: float) -> tuple[float, int]:
    """Mean rate at arrival over ``span`` seconds from ``warm_up`` after the first arrival, and
    the busiest sliding second of all of ``ts``."""
    start = ts[0] + warm_up
    inside = sum(1 for t in ts if start <= t < start + span)
    return inside / span, max_in_window(ts)


def measure_ours(stack: Stack, ms: int, warm_up: float, span: float, timeout: float) -> dict:
    from sms_worker.producer import send_many

    side = stack.ours(telekom_sk_rate=RATE, telekom_sk_burst=BURST)
    watch = stack.watch()
    hold_sends(stack, ms)
    n = int(RATE * (warm_up + span + 4))
    messages = [{"to": recipient(i), "text": f"slow {ms} {i:06d}"} for i in range(n)]
    for chunk in chunks(messages, 1000):
        send_many(chunk, runtime=side.runtime)
    log(f"slow/sms_worker {ms} ms: enqueued {n}; starting 2 worker processes")
    meter = stack.cpu()
    workers = stack.start_workers(side.env, 2)
    watch.wait_until(lambda w: len(w.accepted) >= warm_up * RATE, timeout, f"the warm-up at {ms} ms")
    checks_before = read_checks(stack.sandbox_url)
    watch.wait_until(lambda w: len(w.accepted) >= n, timeout, f"{n} accepted at {ms} ms")
    checks = checks_per_second(checks_before, read_checks(stack.sandbox_url))["total"]
    stack.check_alive(workers, side.scheduler)
    used = meter.stop()
    ts = watch.accepted_ts()
    rate, busiest = steady(ts, warm_up, span)
    stats = {
        "ms": ms,
        "accepted": len(ts),
        "expected": n,
        "rate": rate,
        "busiest": busiest,
        "duplicates": watch.duplicates(),
        "refused": len(watch.refused()),
        "cpu_ms": 1000 * used.get("worker", 0.0) / max(1, len(ts)),
        "checks": checks,
    }
    log(f"slow/sms_worker {ms} ms: {stats}")
    stack.stop(workers)
    stack.stop(side.scheduler)
    side.runtime.close()
    return stats


def measure_naive(stack: Stack, ms: int, n: int, timeout: float) -> dict:
    _, env = stack.naive_side(f"naive-{ms}")
    watch = stack.watch()
    hold_sends(stack, ms)
    for i in range(n):
        naive.enqueue(recipient(i), f"naive {i:06d}")
    meter = stack.cpu()
    worker = stack.start_naive_worker(env, 2)
    watch.wait_until(lambda w: len(w.accepted) >= n, timeout, f"{n} naive accepted")
    stack.check_alive(worker)
    used = meter.stop()
    ts = watch.accepted_ts()
    stats = {"ms": ms, "accepted": len(ts), "rate": (len(ts) - 1) / (ts[-1] - ts[0]), "cpu_ms": 1000 * used.get("naive", 0.0) / max(1, len(ts))}
    log(f"slow/naive {ms} ms: {stats}")
    stack.stop(worker)
    return stats


def run(opts: Options) -> list[Row]:
    span, warm_up = opts.pick(STEADY, 10.0), WARM_UP
    rows = []
    with Stack("slow", opts) as stack:
        stack.start_sandbox()
        ours = [measure_ours(stack, ms, warm_up, span, timeout=span + 60) for ms in LATENCIES_MS]
        base = measure_naive(stack, 200, opts.pick(200, 60), timeout=120)
    for stats in ours:
        ok = stats["rate"] >= 0.95 * RATE and stats["busiest"] <= RATE + BURST and stats["duplicates"] == 0 and stats["accepted"] >= stats["expected"]
        naive_cell = fmt_rate(base["rate"]) if stats["ms"] == 200 else "-"
        rows.append(
            Row(
                f"9{'abc'[LATENCIES_MS.index(stats['ms'])]}",
                f"one account at 500/s, answers in {stats['ms']} ms, 2 processes",
                fmt_rate(stats["rate"]),
                naive_cell,
                f"{stats['rate'] / base['rate']:.0f}x" if stats["ms"] == 200 and base["rate"] else "-",
                ">= 475/s, max 550 in 1 s",
                verdict(ok),
                [
                    f"mean at arrival over {span:.0f} s of steady sending; busiest sliding second {stats['busiest']}; "
                    f"{stats['accepted']:,}/{stats['expected']:,} accepted, {stats['duplicates']} duplicate, {stats['refused']} refused",
                    f"status checks {stats['checks']:.0f}/s while sending (polled; the account's check budget is a quarter of its rate)",
                    f"worker CPU {stats['cpu_ms']:.2f} ms per message"
                    + (f"; naive ({base['accepted']} messages) {base['cpu_ms']:.2f} ms per message" if stats["ms"] == 200 else ""),
                ],
            )
        )
    return rows


if __name__ == "__main__":
    standalone(run, __doc__.splitlines()[0])
