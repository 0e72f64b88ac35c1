"""Row 7: what the session-key gateway's multi-recipient orders save.

One run, one pipeline (two worker processes, the scheduler), two accounts on the same sandbox
gateway that differ only in ``max_recipients``: 100 (messages with the same text, sender and
quality travel in one ``POST /sms``) and 1 (one request per message). Each phase sends the
same campaign, N messages made of 10 texts to N/10 recipients each, pinned to its account.
The sandbox holds every answer 20 ms, as a provider across the internet would. Measured from
the sandbox's log: HTTP requests per 1,000 messages (distinct orders) and accepted messages
per second (first to last acceptance).
"""

from __future__ import annotations

from pathlib import Path

import httpx

from benchmarks.harness import Options, Row, SandboxWatch, Stack, chunks, fmt_rate, log, ratio, recipient, standalone, verdict

LATENCY_MS = 20


def providers_file(directory: Path, sandbox: str) -> Path:
    accounts = "".join(
        f"""
[accounts.{name}]
type = "session-key"
base_url = "{sandbox}/session-key"
username = "sandbox-user"
password = "sandbox-pass"
max_recipients = {size}
rate = 100000
burst = 100000
"""
        for name, size in (("grouped", 100), ("single", 1))
    )
    path = directory / "providers.toml"
    path.write_text(accounts + "\n[routing]\ndefault = { grouped = 1 }\n")
    return path


def phase(stack: Stack, rt, account: str, n: int, timeout: float) -> dict:
    from sms_worker.producer import send_many

    watch = stack.watch()
    httpx.post(
        f"{stack.sandbox_url}/_sandbox/faults", json={"provider": "session-key", "endpoint": "sms", "fault": "latency", "ms": LATENCY_MS}, timeout=10
    ).raise_for_status()
    messages = [{"to": recipient(i), "text": f"campaign text {i * 10 // n}", "account": account} for i in range(n)]
    for chunk in chunks(messages, 1000):
        send_many(chunk, runtime=rt)
    watch.wait_until(lambda w: len(w.accepted) >= n, timeout, f"{n} accepted via {account}")
    return stats(watch, n)


def stats(watch: SandboxWatch, n: int) -> dict:
    accepted = watch.accepted
    orders = {entry["params"]["order_id"] for entry in accepted}
    ts = sorted(entry["received_ts"] for entry in accepted)
    span = ts[-1] - ts[0] if len(ts) > 1 else 0.0
    return {
        "accepted": len(accepted),
        "requests": len(orders),
        "requests_per_1000": len(orders) * 1000 / max(1, len(accepted)),
        "rate": len(accepted) / span if span else 0.0,
        "duplicates": len(accepted) - len({(entry["to"], entry["text"]) for entry in accepted}),
        "expected": n,
    }


def run(opts: Options) -> list[Row]:
    n = opts.pick(5_000, 2_000)
    with Stack("multirecipient", opts) as stack:
        sandbox = stack.start_sandbox()
        side = stack.ours(providers_file=providers_file(stack.dir, sandbox))
        workers = stack.start_workers(side.env, 2)
        grouped = phase(stack, side.runtime, "grouped", n, opts.pick(240, 120))
        log(f"multirecipient/grouped: {grouped}")
        single = phase(stack, side.runtime, "single", n, opts.pick(240, 120))
        log(f"multirecipient/single: {single}")
        stack.check_alive(workers, side.scheduler)
        stack.stop(workers)
        stack.stop(side.scheduler)
        side.runtime.close()
    ok = grouped["accepted"] == single["accepted"] == n and grouped["duplicates"] == single["duplicates"] == 0
    return [
        Row(
            "7",
            f"session-key: requests per 1,000 msgs ({n:,} msgs, 10 texts)",
            f"{grouped['requests_per_1000']:.0f} req, {fmt_rate(grouped['rate'])}",
            f"{single['requests_per_1000']:.0f} req, {fmt_rate(single['rate'])}",
            f"{ratio(single['requests_per_1000'], grouped['requests_per_1000'])} fewer req, {ratio(grouped['rate'], single['rate'])} msg/s",
            "fewer requests, faster",
            verdict(ok and grouped["requests"] < single["requests"]),
            [
                f"ours = orders of up to 100 recipients; baseline = the same pipeline with max_recipients 1; "
                f"the sandbox holds each answer {LATENCY_MS} ms",
                f"grouped: {grouped}",
                f"one per message: {single}",
            ],
        )
    ]


if __name__ == "__main__":
    standalone(run, __doc__.splitlines()[0])
