"""Row 3: latency of high-priority messages while a low-priority backlog drains.

sms_worker: 50,000 low messages (quick: 15,000) are enqueued with ``send_many`` (Celery
wake-ups included) while the scheduler runs and no worker does; then ``sms-worker worker -c 2``
starts, and once the sandbox has seen the backlog draining, 200 high messages (quick: 100) are
sent one at a time with ``send_many([one], runtime=<runtime with CeleryWaker>)``, one every
20 ms. Latency = the sandbox's ``received_ts`` of that message (matched by a unique tag in its
text) - ``time.time()`` taken just before the ``send_many`` call. The low backlog must still be
non-empty when the last high message is sent, or the run says so.

Naive: one queue, so a high message waits behind every low message queued before it. Measured
with a smaller backlog (2,000; quick 600) and 5 high messages; the figure for a 50,000 backlog is
then computed as 50,000 / the naive drain rate measured in the same run, and labelled so.
"""

from __future__ import annotations

import time
import uuid

from benchmarks import naive
from benchmarks.bench_dispatch import HIGH_RATE
from benchmarks.harness import Options, Row, SandboxWatch, Stack, chunks, fmt_ms, log, percentile, recipient, standalone, verdict

SPACING = 0.020


def _send_spaced(count: int, send_one) -> dict[str, float]:
    """Send ``count`` messages ``SPACING`` apart (start to start); returns text -> send time."""
    sent: dict[str, float] = {}
    tag = uuid.uuid4().hex[:8]
    next_at = time.time()
    for i in range(count):
        delay = next_at - time.time()
        if delay > 0:
            time.sleep(delay)
        text = f"HIGH {tag} {i:04d}"
        sent[text] = time.time()
        send_one(i, text)
        next_at += SPACING
    return sent


def _latencies(watch: SandboxWatch, sent: dict[str, float]) -> list[float]:
    received = {r["text"]: r["received_ts"] for r in watch.accepted if r["text"] in sent}
    return [received[text] - t0 for text, t0 in sent.items() if text in received]


def measure_ours(stack: Stack, backlog: int, highs: int) -> dict:
    from sms_worker.producer import send_many

    side = stack.ours(**HIGH_RATE)
    env, scheduler, rt = side.env, side.scheduler, side.runtime
    watch = stack.watch()
    lows = [{"to": recipient(i), "text": f"low {i:06d} hello", "priority": "low"} for i in range(backlog)]
    for chunk in chunks(lows, 10_000):
        send_many(chunk, runtime=rt)
    send_many([{"to": recipient(1), "text": "warm-up high", "priority": "high"}], runtime=rt)
    log(f"latency/sms_worker: {backlog} low queued; starting 2 worker processes")
    workers = stack.start_workers(env, 2)
    if not watch.wait_until(lambda w: len(w.accepted) >= 1000, 60, "the backlog to start draining"):
        raise RuntimeError("the low backlog did not start draining")
    call_times: list[float] = []

    def send_one(i: int, text: str) -> None:
        start = time.perf_counter()
        send_many([{"to": recipient(50_000 + i), "text": text, "priority": "high"}], runtime=rt)
        call_times.append(time.perf_counter() - start)

    sent = _send_spaced(highs, send_one)
    low_left = sum(rt.redis.llen(f"smsw:ready:{p}") for p in (1, 2)) + rt.redis.zcard("smsw:due")
    low_done = sum(1 for r in watch.accepted if r["text"].startswith("low "))
    log(f"latency/sms_worker: {highs} high sent; low pointers still queued: {low_left}")
    watch.wait_until(lambda w: len(_latencies(w, sent)) >= highs, 30, f"{highs} high messages")
    stack.check_alive(workers, scheduler)
    lat = _latencies(watch, sent)
    stack.stop(workers)
    stack.stop(scheduler)
    rt.close()
    stats = {
        "received": len(lat),
        "sent": highs,
        "p50": percentile(lat, 50) if lat else float("nan"),
        "p99": percentile(lat, 99) if lat else float("nan"),
        "max": max(lat) if lat else float("nan"),
        "call_p50": percentile(call_times, 50),
        "low_left": low_left,
        "low_done_before": low_done,
    }
    log(f"latency/sms_worker: {stats}")
    return stats


def measure_naive(stack: Stack, backlog: int, highs: int, timeout: float) -> dict:
    _, env = stack.naive_side()
    watch = stack.watch()
    for i in range(backlog):
        naive.enqueue(recipient(i), f"low {i:06d} hello", priority=1)
    worker = stack.start_naive_worker(env, 2)
    if not watch.wait_until(lambda w: len(w.accepted) >= min(200, backlog // 4), 60, "the backlog to start draining"):
        raise RuntimeError("the naive backlog did not start draining")
    sent = _send_spaced(highs, lambda i, text: naive.enqueue(recipient(50_000 + i), text, priority=3))
    watch.wait_until(lambda w: len(_latencies(w, sent)) >= highs, timeout, f"{highs} naive high messages")
    stack.check_alive(worker)
    lat = _latencies(watch, sent)
    lows = sorted(r["received_ts"] for r in watch.accepted if r["text"].startswith("low "))
    rate = (len(lows) - 1) / (lows[-1] - lows[0]) if len(lows) > 1 else 0.0
    stack.stop(worker)
    stats = {
        "received": len(lat),
        "sent": highs,
        "p50": percentile(lat, 50) if lat else float("nan"),
        "max": max(lat) if lat else float("nan"),
        "drain_rate": rate,
    }
    log(f"latency/naive: {stats}")
    return stats


def run(opts: Options) -> list[Row]:
    backlog, highs = opts.pick(50_000, 15_000), opts.pick(200, 100)
    naive_backlog, naive_highs = opts.pick(2_000, 600), 5
    with Stack("latency", opts) as stack:
        stack.start_sandbox()
        ours = measure_ours(stack, backlog, highs)
        base = measure_naive(stack, naive_backlog, naive_highs, timeout=opts.pick(60, 30))
    computed = backlog / base["drain_rate"] if base["drain_rate"] else float("nan")
    notes = [
        f"sms_worker: {ours['received']}/{highs} high received, max {fmt_ms(ours['max'])}; send_many([one]) call p50 "
        f"{fmt_ms(ours['call_p50'])}; {ours['low_left']:,} low pointers still queued after the last high was sent",
        f"naive: measured p50 {fmt_ms(base['p50'])} for {naive_highs} high behind a {naive_backlog:,} backlog "
        f"({base['received']}/{naive_highs} received); {backlog:,} / {base['drain_rate']:.0f} msg/s drain = {computed:.0f} s computed",
    ]
    complete = ours["received"] == highs and ours["low_left"] > 0
    if ours["low_left"] == 0:
        notes.append("the low backlog had drained before the last high message was sent: not a backlogged measurement")
    return [
        Row(
            "3",
            f"high latency behind {backlog:,} low (p50 / p99)",
            f"{fmt_ms(ours['p50'])} / {fmt_ms(ours['p99'])}",
            f"backlog-bound: ~{computed:.0f} s (computed)",
            f"{computed / ours['p99']:,.0f}x" if ours["p99"] > 0 else "-",
            "p99 < 250 ms",
            verdict(complete and ours["p99"] < 0.250),
            notes,
        )
    ]


if __name__ == "__main__":
    standalone(run, __doc__.splitlines()[0])
