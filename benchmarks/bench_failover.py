"""Row 6: 10,000 messages across three providers while one of them fails half its requests.

Three accounts (Telekom SK, Telefoon, Dexatel) share the default route with equal weights, so
about a third of the messages prefer Dexatel, whose sandbox answers HTTP 503 to half of its
send requests. Two worker processes and the scheduler run as in production. The run ends when
every message has a final status in the database (the poller reads the receipts). Shown:

- every message final, and how (delivered or not);
- the Dexatel breaker opening (its state sampled every 100 ms, and the workers' log lines);
- the load the other two carried;
- no message accepted twice: each text is unique, and the sandboxes' submission logs are
  counted per text across all three providers.

Retry backoffs are shortened to 1, 2, 4, 8, 16 s (still within the 60-minute window) so the
run takes a minute, not an hour; the breaker opens after 5 faults in a row or half of the last
20 calls, and cools down for 5 s.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

import httpx

from benchmarks.harness import Options, Row, Stack, chunks, fmt_rate, log, recipient, sandbox_providers, standalone, verdict

ACCOUNTS = ("telekom-sk", "telefoon", "dexatel")
FAILING = "dexatel"


class BreakerWatch:
    """Samples the failing account's breaker state every 100 ms in a thread."""

    def __init__(self, redis_url: str, account: str) -> None:
        import redis

        self._client = redis.Redis.from_url(redis_url)
        self._account = account
        self.states: Counter[str] = Counter()
        self.openings = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        from sms_worker.routing import Breaker

        breaker = Breaker(self._client, self._account, consecutive_failures=1, window=2, failure_ratio=1, cooldown=1)
        last = "closed"
        while not self._stop.wait(0.1):
            state = breaker.state().state
            self.states[state] += 1
            self.openings += state == "open" and last != "open"
            last = state

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self._client.close()


def final_counts(rt) -> Counter[str]:
    from sqlalchemy import func, select

    from sms_worker.lifecycle.tables import MESSAGES

    with rt.engine.connect() as conn:
        return Counter(dict(conn.execute(select(MESSAGES.c.status, func.count()).group_by(MESSAGES.c.status)).all()))


def run(opts: Options) -> list[Row]:
    from sms_worker.lifecycle.status import FINAL_VALUES
    from sms_worker.producer import send_many

    n = opts.pick(10_000, 2_000)
    with Stack("failover", opts) as stack:
        sandbox = stack.start_sandbox()
        path = sandbox_providers(stack.dir, sandbox, ACCOUNTS, rate=500, default=ACCOUNTS)
        side = stack.ours(
            providers_file=path,
            retry_backoff_seconds="[1,2,4,8,16]",
            breaker_cooldown_seconds=5,
            status_check_delays_seconds="[0.5,1,2,5]",
        )
        rt = side.runtime
        stack.reset_sandbox()
        httpx.post(
            f"{sandbox}/_sandbox/faults",
            json={"provider": FAILING, "endpoint": "send", "fault": "http_status", "status": 503, "probability": 0.5},
            timeout=10,
        ).raise_for_status()
        started = time.perf_counter()
        for chunk in chunks([{"to": recipient(i), "text": f"failover {i:06d}"} for i in range(n)], 1000):
            send_many(chunk, runtime=rt)
        log(f"failover: enqueued {n}; starting 2 worker processes")
        breaker = BreakerWatch(side.redis_url, FAILING)
        workers = stack.start_workers(side.env, 2)
        deadline = time.monotonic() + opts.pick(600, 300)
        while time.monotonic() < deadline:
            counts = final_counts(rt)
            final = sum(count for status, count in counts.items() if status in FINAL_VALUES)
            if final >= n:
                break
            stack.check_alive(workers, side.scheduler)
            time.sleep(1)
        elapsed = time.perf_counter() - started
        breaker.stop()
        counts = final_counts(rt)
        submissions = httpx.get(f"{sandbox}/_sandbox/submissions", timeout=60).json()["submissions"]
        stack.stop(workers)
        stack.stop(side.scheduler)
        opened_logs = (stack.dir / "worker.log").read_text(errors="replace").count(f"circuit breaker OPEN for account {FAILING}")
        rt.close()

    accepted = [s for s in submissions if s["accepted"]]
    per_text = Counter(s["text"] for s in accepted)
    duplicates = sum(1 for count in per_text.values() if count > 1)
    missing = n - len(per_text)
    by_provider = Counter(s["provider"] for s in accepted)
    refused = Counter(s["provider"] for s in submissions if not s["accepted"])
    final = sum(count for status, count in counts.items() if status in FINAL_VALUES)
    ok = final == n and duplicates == 0 and missing == 0 and breaker.openings > 0
    share = ", ".join(f"{name} {by_provider[name]}" for name in ACCOUNTS)
    row = Row(
        "6",
        f"failover: {n:,} msgs, 3 providers, {FAILING} failing 50%",
        f"{final}/{n} final in {elapsed:.0f}s; 0 dup" if duplicates == 0 else f"{duplicates} DUPLICATES",
        "-",
        "-",
        "all final, breaker opens, no duplicates",
        verdict(ok),
        [
            f"final statuses: {dict(counts)}",
            f"accepted by provider: {share}; refused (HTTP 503) by {FAILING}: {refused[FAILING]}",
            f"{FAILING} breaker: opened {breaker.openings} time(s) (sampled every 100 ms; {opened_logs} 'OPEN' log line(s)), "
            f"sampled states {dict(breaker.states)}",
            f"texts accepted more than once: {duplicates}; never accepted: {missing}; overall {fmt_rate(n / elapsed)} end to end",
        ],
    )
    return [row]


if __name__ == "__main__":
    standalone(run, __doc__.splitlines()[0])
