"""Row 1: producer enqueue rate, ``send_many`` against insert + ``.delay()`` per message.

sms_worker: ``send_many`` of 100,000 messages (quick: 20,000) in chunks of 10,000, with the
Celery wake-ups a production producer publishes (``CeleryWaker``), on a fresh database and a
fresh Redis, no worker running. Everything ``send_many`` does is timed: validation (phone
numbers, text encoding), the bulk INSERT of rows and events, the pointer RPUSH, the wake-ups.
Naive: 5,000 messages (quick: 1,000), each one ORM insert + commit and one ``.delay()``.
Both sides first send a small untimed warm-up batch (imports, metadata, statement caches).
"""

from __future__ import annotations

import time

from benchmarks import naive
from benchmarks.harness import Options, Row, Stack, chunks, fmt_rate, log, ratio, recipient, standalone, verdict


def measure_ours(stack: Stack, n: int, chunk: int) -> dict:
    from sms_worker.producer import send_many

    side = stack.ours(scheduler=False)
    rt = side.runtime
    send_many([{"to": recipient(i), "text": f"warm {i}"} for i in range(100)], runtime=rt)
    messages = [{"to": recipient(i), "text": f"bench {i:06d} hello"} for i in range(n)]
    started = time.perf_counter()
    cpu = time.process_time()
    for part in chunks(messages, chunk):
        send_many(part, runtime=rt)
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu
    queued = sum(rt.redis.llen(f"smsw:ready:{p}") for p in (1, 2, 3))
    rt.close()
    stats = {"n": n, "seconds": seconds, "rate": n / seconds, "cpu_share": cpu / seconds, "pointers": queued}
    log(f"enqueue/sms_worker: {stats}")
    return stats


def measure_naive(stack: Stack, n: int) -> dict:
    stack.naive_side()
    for i in range(20):
        naive.enqueue(recipient(i), f"warm {i}")
    started = time.perf_counter()
    for i in range(n):
        naive.enqueue(recipient(i), f"naive {i:06d} hello")
    seconds = time.perf_counter() - started
    stats = {"n": n, "seconds": seconds, "rate": n / seconds}
    log(f"enqueue/naive: {stats}")
    return stats


def run(opts: Options) -> list[Row]:
    n, n_naive, chunk = opts.pick(100_000, 20_000), opts.pick(5_000, 1_000), 10_000
    with Stack("enqueue", opts) as stack:
        ours = measure_ours(stack, n, chunk)
        base = measure_naive(stack, n_naive)
    factor = ours["rate"] / base["rate"]
    notes = [
        f"sms_worker: {n:,} in {ours['seconds']:.1f}s ({chunk:,} per send_many call, {ours['pointers']:,} pointers queued); "
        f"naive: {n_naive:,} in {base['seconds']:.1f}s",
    ]
    return [
        Row(
            "1",
            f"enqueue rate ({n:,} send_many / naive {n_naive:,})",
            fmt_rate(ours["rate"]),
            fmt_rate(base["rate"]),
            ratio(ours["rate"], base["rate"]),
            ">= 50x",
            verdict(factor >= 50 and ours["pointers"] == n + 100),
            notes,
        )
    ]


if __name__ == "__main__":
    standalone(run, __doc__.splitlines()[0])
