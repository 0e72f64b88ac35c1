"""Run the benchmarks, each in its own process with its own servers, and print one table.

    .venv/bin/python benchmarks/run.py                      # everything, about 4-5 minutes
    .venv/bin/python benchmarks/run.py --quick              # smaller counts, about 2 minutes
    .venv/bin/python benchmarks/run.py --only enqueue,memory
    .venv/bin/python benchmarks/run.py --database-url postgresql://postgres@127.0.0.1:5432/test
    .venv/bin/python benchmarks/run.py --only ratelimit --burn 1    # beside a CPU-burning process

Each benchmark module runs as ``python -m benchmarks.bench_<name>`` under a time bound; one that
fails or overruns gets a FAILED row and the others still run. Whatever a benchmark started is
stopped by the benchmark itself, and what a killed benchmark left behind is stopped here (by
the pids it recorded, checked against this run's id).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.harness import ROOT, RUN_ID_ENV, Row, add_set_option, failed_row, format_table

# name -> (row keys, title, time bound in seconds: full, quick)
BENCHMARKS = {
    "enqueue": (["1"], "enqueue rate", 180, 90),
    "dispatch": (["2"], "dispatch rate", 300, 120),
    "latency": (["3"], "high latency under backlog", 300, 120),
    "ratelimit": (["4a", "4b"], "rate-limit accuracy", 300, 150),
    "memory": (["5"], "Redis memory per message", 180, 90),
    "failover": (["6"], "failover across three providers", 660, 330),
    "multirecipient": (["7"], "session-key multi-recipient gain", 300, 150),
    "ambiguous": (["8"], "doubles after sends held past the timeout", 480, 240),
    "slow": (["9a", "9b", "9c"], "one account at its rate limit at 20 ms, 200 ms and 1 s", 600, 300),
}
ALIASES = {
    "1": "enqueue",
    "2": "dispatch",
    "3": "latency",
    "4": "ratelimit",
    "5": "memory",
    "6": "failover",
    "7": "multirecipient",
    "8": "ambiguous",
    "9": "slow",
    "rate": "ratelimit",
    "mem": "memory",
}


def _selected(only: str | None) -> list[str]:
    if not only:
        return list(BENCHMARKS)
    names = []
    for item in only.split(","):
        name = ALIASES.get(item.strip().lower(), item.strip().lower())
        if name not in BENCHMARKS:
            raise SystemExit(f"unknown benchmark {item!r}; choose from {', '.join(BENCHMARKS)}")
        names.append(name)
    return [name for name in BENCHMARKS if name in names]


def _ours(pid: int, run_id: str) -> bool:
    """Whether ``pid`` is a process this run started (its environment carries the run id)."""
    try:
        return f"{RUN_ID_ENV}={run_id}".encode() in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False


def _stop_leftovers(pidfile: Path, run_id: str) -> None:
    try:
        pids = [int(line) for line in pidfile.read_text().split()]
    except (OSError, ValueError):
        return
    for pid in pids:
        if _ours(pid, run_id):
            print(f"stopping leftover process group {pid}", file=sys.stderr)
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(pid, sig)
                except (ProcessLookupError, PermissionError):
                    break
                time.sleep(2)


def run_one(name: str, args: argparse.Namespace, run_id: str, workdir: Path) -> list[Row]:
    keys, title, full_bound, quick_bound = BENCHMARKS[name]
    bound = quick_bound if args.quick else full_bound
    out, pidfile = workdir / f"{name}.json", workdir / f"{name}.pids"
    argv = [sys.executable, "-m", f"benchmarks.bench_{name}", "--json", str(out), "--pidfile", str(pidfile)]
    argv += ["--quick"] if args.quick else []
    argv += ["--keep"] if args.keep else []
    argv += ["--burn", str(args.burn)] if args.burn else []
    argv += ["--database-url", args.database_url] if args.database_url else []
    for item in args.set:
        argv += ["--set", item]
    env = {**os.environ, RUN_ID_ENV: run_id, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    print(f"=== {name}: {title} (bound {bound}s)", file=sys.stderr, flush=True)
    started = time.monotonic()
    child = subprocess.Popen(argv, cwd=ROOT, env=env, start_new_session=True)
    reason = None
    try:
        code = child.wait(bound)
        if code != 0:
            reason = f"exited with code {code} (see the log above)"
    except subprocess.TimeoutExpired:
        reason = f"did not finish within {bound}s"
        child.terminate()  # the benchmark's own SIGTERM handler stops what it started
        try:
            child.wait(45)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
    except BaseException:
        child.terminate()
        try:
            child.wait(45)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
        raise
    finally:
        _stop_leftovers(pidfile, run_id)
    print(f"=== {name}: {time.monotonic() - started:.0f}s", file=sys.stderr, flush=True)
    if reason is None:
        try:
            return [Row(**row) for row in json.loads(out.read_text())]
        except (OSError, ValueError, TypeError) as error:
            reason = f"no result: {error}"
    return [failed_row(keys[0], title, f"{name} {reason}")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help=f"comma-separated subset of: {', '.join(BENCHMARKS)} (or 1-5)")
    parser.add_argument("--quick", action="store_true", help="smaller counts and windows")
    parser.add_argument("--database-url", help="base PostgreSQL URL, e.g. postgresql://postgres@127.0.0.1:5432/test (a fresh schema per database)")
    parser.add_argument("--keep", action="store_true", help="keep each benchmark's temp directory (logs, databases)")
    parser.add_argument("--burn", type=int, default=0, help="CPU-burning processes beside each benchmark (a busy host)")
    add_set_option(parser)
    args = parser.parse_args()
    try:
        import sms_worker  # noqa: F401
    except ImportError:
        raise SystemExit("sms_worker is not importable: run this with the project's venv, e.g. .venv/bin/python benchmarks/run.py") from None
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    run_id = uuid.uuid4().hex
    rows: list[Row] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="smsw-bench-run-") as tmp:
        for name in _selected(args.only):
            rows += run_one(name, args, run_id, Path(tmp))
    mode = "quick" if args.quick else "full"
    database = "PostgreSQL" if args.database_url else "SQLite"
    print(f"\nsms_worker benchmarks ({mode}, {database}, {os.cpu_count()} CPUs, {time.monotonic() - started:.0f}s)\n")
    print(format_table(rows))
    return 0 if all(r.result != "FAILED" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
