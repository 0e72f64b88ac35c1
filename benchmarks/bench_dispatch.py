"""Row 2: end-to-end dispatch rate with two worker processes, rate limit out of the way.

Both systems get the same procedure: the messages are enqueued first with no worker running
(sms_worker: ``send_many`` in chunks of 1,000 with Celery wake-ups, the scheduler already up;
naive: insert + ``.delay()`` per message), then the workers start (``sms-worker worker -c 2``;
``celery -A benchmarks.naive worker -c 2``) and the rate is

    accepted messages / (last accepted ``received_ts`` - first accepted ``received_ts``)

read from the sandbox, so producer speed and worker start-up are not part of it. Duplicate and
refused submissions are counted and reported.
"""

from __future__ import annotations

import time

from benchmarks import naive
from benchmarks.harness import Options, Row, SandboxWatch, Stack, chunks, fmt_rate, log, ratio, recipient, standalone, verdict

HIGH_RATE = dict(telekom_sk_rate=1_000_000, telekom_sk_burst=1_000_000)


def drain_stats(watch: SandboxWatch, expected: int) -> dict:
    ts = watch.accepted_ts()
    span = ts[-1] - ts[0] if len(ts) > 1 else 0.0
    return {
        "accepted": len(ts),
        "expected": expected,
        "seconds": span,
        "rate": (len(ts) - 1) / span if span > 0 else 0.0,
        "refused": len(watch.refused()),
        "duplicates": watch.duplicates(),
    }


def measure_ours(stack: Stack, n: int, timeout: float) -> dict:
    from sms_worker.producer import send_many

    side = stack.ours(**HIGH_RATE)
    env, scheduler, rt = side.env, side.scheduler, side.runtime
    watch = stack.watch()
    messages = [{"to": recipient(i), "text": f"bench {i:06d} hello"} for i in range(n)]
    started = time.perf_counter()
    for chunk in chunks(messages, 1000):
        send_many(chunk, runtime=rt)
    log(f"dispatch/sms_worker: enqueued {n} in {time.perf_counter() - started:.1f}s; starting 2 worker processes")
    meter, wall = stack.cpu(), time.perf_counter()
    workers = stack.start_workers(env, 2)
    watch.wait_until(lambda w: len(w.accepted) >= n, timeout, f"{n} accepted")
    stack.check_alive(workers, scheduler)
    stats = drain_stats(watch, n)
    stats["cpu"] = meter.describe(meter.stop(), time.perf_counter() - wall)
    log(f"dispatch/sms_worker: {stats}")
    stack.stop(workers)
    stack.stop(scheduler)
    rt.close()
    return stats


def measure_naive(stack: Stack, n: int, timeout: float) -> dict:
    _, env = stack.naive_side()
    watch = stack.watch()
    started = time.perf_counter()
    for i in range(n):
        naive.enqueue(recipient(i), f"naive {i:06d} hello")
    log(f"dispatch/naive: enqueued {n} in {time.perf_counter() - started:.1f}s; starting celery worker -c 2")
    meter, wall = stack.cpu(), time.perf_counter()
    worker = stack.start_naive_worker(env, 2)
    watch.wait_until(lambda w: len(w.accepted) >= n, timeout, f"{n} accepted")
    stack.check_alive(worker)
    stats = drain_stats(watch, n)
    stats["cpu"] = meter.describe(meter.stop(), time.perf_counter() - wall)
    log(f"dispatch/naive: {stats}")
    stack.stop(worker)
    return stats


def run(opts: Options) -> list[Row]:
    n, n_naive = opts.pick(20_000, 3_000), opts.pick(4_000, 1_000)
    with Stack("dispatch", opts) as stack:
        stack.start_sandbox()
        ours = measure_ours(stack, n, timeout=opts.pick(150, 60))
        base = measure_naive(stack, n_naive, timeout=opts.pick(90, 40))
    factor = ours["rate"] / base["rate"] if base["rate"] else 0.0
    notes = [
        f"sms_worker: {ours['accepted']:,}/{n:,} accepted in {ours['seconds']:.1f}s (first to last accepted), "
        f"{ours['duplicates']} duplicate, {ours['refused']} refused; enqueued before the workers started",
        f"naive: {base['accepted']:,}/{n_naive:,} accepted in {base['seconds']:.1f}s, {base['duplicates']} duplicate, {base['refused']} refused",
    ]
    complete = ours["accepted"] >= n and ours["duplicates"] == 0 and ours["refused"] == 0
    if not complete:
        notes.append("sms_worker did not deliver every message exactly once within the time bound")
    return [
        Row(
            "2",
            f"dispatch rate, 2 processes (N={n:,} / naive {n_naive:,})",
            fmt_rate(ours["rate"]),
            fmt_rate(base["rate"]),
            ratio(ours["rate"], base["rate"]),
            ">= 5x",
            verdict(factor >= 5 and complete),
            notes,
        )
    ]


if __name__ == "__main__":
    standalone(run, __doc__.splitlines()[0])
