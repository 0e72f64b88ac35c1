"""Row 5: Redis memory per queued message, with a 100,000-message backlog and no worker.

sms_worker: a fresh redis-server; Celery's queues declared (as the scheduler does on start);
``INFO memory`` ``used_memory`` before and after ``send_many`` of 100,000 messages (quick:
20,000) in chunks of 10,000, with Celery wake-ups; the difference divided by the count. This
counts the pointers and the wake-up task messages (one per 100-message batch) alike.
Naive: a fresh redis-server, one warm-up ``.delay()``, then 20,000 (quick: 5,000) ``.delay()``
calls with the naive task's arguments (message id, recipient, text); the database insert is
left out, as it does not touch Redis.
"""

from __future__ import annotations

import time

from benchmarks import naive
from benchmarks.harness import Options, Row, Stack, chunks, log, ratio, recipient, standalone, used_memory, verdict


def measure_ours(stack: Stack, n: int) -> dict:
    from sms_worker.producer import send_many

    side = stack.ours(scheduler=False)
    redis_url, rt = side.redis_url, side.runtime
    rt.waker.declare_queues()
    before = used_memory(redis_url)
    messages = [{"to": recipient(i), "text": f"mem {i:06d} hello"} for i in range(n)]
    for chunk in chunks(messages, 10_000):
        send_many(chunk, runtime=rt)
    time.sleep(0.2)
    after = used_memory(redis_url)
    pointers = sum(rt.redis.llen(f"smsw:ready:{p}") for p in (1, 2, 3))
    pointer_bytes = sum(rt.redis.memory_usage(f"smsw:ready:{p}") or 0 for p in (1, 2, 3))
    wake_ups = sum(rt.redis.llen(q) for q in ("high", "standard", "low"))
    wake_bytes = sum(rt.redis.memory_usage(q) or 0 for q in ("high", "standard", "low"))
    rt.close()
    stats = {
        "n": n,
        "bytes": after - before,
        "per_msg": (after - before) / n,
        "pointers": pointers,
        "pointer_bytes": pointer_bytes,
        "wake_ups": wake_ups,
        "wake_bytes": wake_bytes,
    }
    log(f"memory/sms_worker: {stats}")
    return stats


def measure_naive(stack: Stack, n: int) -> dict:
    redis_url = stack.start_redis("redis-naive")
    naive.configure(redis_url, "sqlite://", stack.sandbox_url or "http://127.0.0.1:9")
    naive.send.delay("0" * 32, recipient(0), "warm-up")
    before = used_memory(redis_url)
    for i in range(n):
        naive.send.delay(f"{i:032x}", recipient(i), f"naive {i:06d} hello")
    time.sleep(0.2)
    after = used_memory(redis_url)
    stats = {"n": n, "bytes": after - before, "per_msg": (after - before) / n}
    log(f"memory/naive: {stats}")
    return stats


def run(opts: Options) -> list[Row]:
    n, n_naive = opts.pick(100_000, 20_000), opts.pick(20_000, 5_000)
    with Stack("memory", opts) as stack:
        ours = measure_ours(stack, n)
        base = measure_naive(stack, n_naive)
    notes = [
        f"sms_worker: {ours['bytes'] / 1e6:.1f} MB for {n:,}: {ours['pointers']:,} pointers (MEMORY USAGE "
        f"{ours['pointer_bytes'] / ours['pointers']:.0f} B each) + {ours['wake_ups']:,} wake-up tasks "
        f"({ours['wake_bytes'] / max(1, ours['wake_ups']):.0f} B each); naive: {base['bytes'] / 1e6:.1f} MB for {n_naive:,} tasks",
    ]
    return [
        Row(
            "5",
            f"Redis bytes per queued message ({n:,} / naive {n_naive:,})",
            f"{ours['per_msg']:.0f} B",
            f"{base['per_msg']:,.0f} B",
            ratio(base["per_msg"], ours["per_msg"]) + " less",
            "<= 128 B",
            verdict(ours["per_msg"] <= 128 and ours["pointers"] == n),
            notes,
        )
    ]


if __name__ == "__main__":
    standalone(run, __doc__.splitlines()[0])
