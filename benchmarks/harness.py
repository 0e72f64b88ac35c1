"""What every benchmark shares: its own servers and processes, a sandbox watcher, the table.

A :class:`Stack` owns everything one benchmark starts (redis-server, the sandbox, workers, the
scheduler, the naive Celery worker, databases) and stops it on the way out, failure or not.
Children run in their own process groups and are stopped by group id; their pids are also
written to ``--pidfile`` so that ``run.py`` can stop what a killed benchmark left behind.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
RUN_ID_ENV = "SMSW_BENCH_RUN_ID"
SANDBOX_NICE = -10
"""The sandbox's scheduling priority: it stands for a provider's own hosts, so it records each
request as it comes, not when our workers leave it a moment of CPU (see the README)."""


# --------------------------------------------------------------------------- options, rows, table


@dataclass
class Options:
    quick: bool = False
    database_url: str | None = None
    """Base PostgreSQL URL; each database gets a fresh schema in it. None: SQLite files."""
    keep: bool = False
    pidfile: str | None = None
    settings: dict[str, str] = field(default_factory=dict)
    """Extra SMS_WORKER_* settings for every sms_worker process (``--set http_concurrency=8``)."""
    burn: int = 0
    """CPU-burning processes to run beside the benchmark, as a busy host would (``--burn 1``)."""
    params: dict[str, Any] = field(default_factory=dict)
    """A benchmark's own options, by their argparse names (see :func:`standalone`)."""

    def pick(self, full: Any, quick: Any) -> Any:
        return quick if self.quick else full


@dataclass
class Row:
    key: str
    name: str
    ours: str
    naive: str
    ratio: str
    target: str
    result: str
    notes: list[str] = field(default_factory=list)


HEADERS = ("#", "benchmark", "sms_worker", "naive baseline", "ratio", "target", "result")


def format_table(rows: Iterable[Row], *, notes: bool = True) -> str:
    rows = list(rows)
    cells = [HEADERS] + [(r.key, r.name, r.ours, r.naive, r.ratio, r.target, r.result) for r in rows]
    widths = [max(len(str(row[i])) for row in cells) for i in range(len(HEADERS))]

    def line(values: Iterable[str]) -> str:
        return "| " + " | ".join(str(v).ljust(w) for v, w in zip(values, widths)) + " |"

    out = [line(HEADERS), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(c) for c in cells[1:]]
    if notes:
        extra = [f"  {r.key}: {n}" for r in rows for n in r.notes]
        if extra:
            out += ["", "notes:", *extra]
    return "\n".join(out)


def failed_row(key: str, name: str, reason: str) -> Row:
    return Row(key, name, "-", "-", "-", "-", "FAILED", [reason])


def verdict(ok: bool) -> str:
    return "pass" if ok else "MISS"


def fmt_rate(value: float) -> str:
    return f"{value:,.0f} msg/s" if value >= 10 else f"{value:.1f} msg/s"


def fmt_ms(seconds: float) -> str:
    ms = seconds * 1000
    if ms >= 10_000:
        return f"{seconds:.1f} s"
    return f"{ms:.0f} ms"


def ratio(a: float, b: float) -> str:
    return f"{a / b:.1f}x" if b > 0 else "-"


# --------------------------------------------------------------------------- small helpers


_start = time.monotonic()


def log(message: str) -> None:
    print(f"[{time.monotonic() - _start:7.1f}s] {message}", file=sys.stderr, flush=True)


def recipient(i: int) -> str:
    return f"+4219001{i % 100000:05d}"


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def max_in_window(timestamps: list[float], width: float = 1.0) -> int:
    """The largest number of timestamps in any half-open interval of ``width`` seconds."""
    ts = sorted(timestamps)
    best, lo = 0, 0
    for hi, t in enumerate(ts):
        while t - ts[lo] >= width:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


SANDBOX_ACCOUNTS = {
    "telekom-sk": 'type = "telekom-sk"\nbase_url = "{sandbox}/telekom-sk"\ntoken = "sandbox-token"',
    "dt-a2p": 'type = "dt-a2p"\nbase_url = "{sandbox}/dt-a2p"\napi_key = "sandbox-dt-key"\ndefault_sender = "+4915112345678"',
    "dexatel": 'type = "dexatel"\nbase_url = "{sandbox}/dexatel"\napi_key = "sandbox-dexatel-key"\ndefault_sender = "ACME"',
    "session-key": 'type = "session-key"\nbase_url = "{sandbox}/session-key"\nusername = "sandbox-user"\npassword = "sandbox-pass"',
    "telefoon": 'type = "telefoon"\nbase_url = "{sandbox}/telefoon/v1/sms"\napi_key = "sandbox-telefoon-key"\ndefault_sender = "Telefoon"',
}
"""Each sandbox emulation as an account of the providers file, named by its type."""


def sandbox_providers(directory: Path, sandbox: str, names: Iterable[str], *, rate: float, default: Iterable[str]) -> Path:
    """A providers file of the sandbox's accounts ``names``, each at ``rate`` messages per second,
    routed by default to the accounts ``default`` with equal weights."""
    tables = "".join(f"\n[accounts.{name}]\n{SANDBOX_ACCOUNTS[name].format(sandbox=sandbox)}\nrate = {rate}\n" for name in names)
    weights = ", ".join(f"{name} = 1" for name in default)
    path = directory / "providers.toml"
    path.write_text(f"{tables}\n[routing]\ndefault = {{ {weights} }}\n")
    return path


def sms_worker_cmd(*args: str) -> list[str]:
    script = BIN / "sms-worker"
    return [str(script), *args] if script.exists() else [sys.executable, "-m", "sms_worker.cli", *args]


def celery_cmd(*args: str) -> list[str]:
    script = BIN / "celery"
    return [str(script), *args] if script.exists() else [sys.executable, "-m", "celery", *args]


# --------------------------------------------------------------------------- the sandbox watcher


class SandboxWatch:
    """Reads ``/_sandbox/submissions`` incrementally (``since``) and keeps what arrived."""

    def __init__(self, base: str, since: int = 0) -> None:
        self.base = base
        self.since = since
        self.records: list[dict[str, Any]] = []
        self._client = httpx.Client(timeout=30)

    def poll(self) -> list[dict[str, Any]]:
        response = self._client.get(f"{self.base}/_sandbox/submissions", params={"since": self.since})
        response.raise_for_status()
        new = response.json()["submissions"]
        if new:
            self.since = new[-1]["seq"]
            self.records.extend(new)
        return new

    @property
    def accepted(self) -> list[dict[str, Any]]:
        return [r for r in self.records if r["accepted"]]

    def refused(self) -> list[dict[str, Any]]:
        return [r for r in self.records if not r["accepted"]]

    def wait_until(self, done: Callable[[SandboxWatch], bool], timeout: float, what: str, interval: float = 0.25) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            self.poll()
            if done(self):
                return True
            if time.monotonic() > deadline:
                log(f"timed out after {timeout:.0f}s waiting for {what} ({len(self.accepted)} accepted so far)")
                return False
            time.sleep(interval)

    def accepted_ts(self) -> list[float]:
        return sorted(r["received_ts"] for r in self.accepted)

    def duplicates(self) -> int:
        """Accepted requests whose text was accepted before (every benchmark text is unique)."""
        seen: set[str] = set()
        dup = 0
        for r in self.accepted:
            if r["text"] in seen:
                dup += 1
            seen.add(r["text"])
        return dup

    def close(self) -> None:
        self._client.close()


# --------------------------------------------------------------------------- the stack


class Proc:
    def __init__(self, name: str, popen: subprocess.Popen, logfile: Path) -> None:
        self.name, self.popen, self.logfile = name, popen, logfile

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class Ours:
    redis_url: str
    env: dict[str, str]
    scheduler: Any
    runtime: Any


class Stack:
    """Everything one benchmark runs, stopped on exit. Use as a context manager."""

    def __init__(self, name: str, opts: Options) -> None:
        self.name = name
        self.opts = opts
        self.dir = Path(tempfile.mkdtemp(prefix=f"smsw-bench-{name}-"))
        self.run_id = os.environ.setdefault(RUN_ID_ENV, uuid.uuid4().hex)
        self._procs: list[Proc] = []
        self._schemas: list[str] = []
        self._failed = False
        self.sandbox_url: str | None = None

    # ---- lifecycle

    def __enter__(self) -> Stack:
        for n in range(self.opts.burn):
            self.spawn(f"burn{n}", [sys.executable, "-c", "while True: pass"])
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self._failed = exc_type is not None
        if self._failed:
            for proc in self._procs:
                if proc.name != "redis" and proc.logfile.exists():
                    log(f"--- last lines of {proc.name} ({proc.logfile}):\n{proc.tail()}")
        self.close()

    def close(self) -> None:
        for proc in reversed(list(self._procs)):
            self.stop(proc)
        try:
            from sms_worker.db.engine import dispose_engines

            dispose_engines()
        except Exception:  # noqa: BLE001 - cleanup goes on regardless
            pass
        for schema in self._schemas:
            try:
                self._drop_schema(schema)
            except Exception as error:  # noqa: BLE001
                log(f"could not drop schema {schema}: {error}")
        if self.opts.keep or self._failed:
            log(f"kept {self.dir} (logs, databases)")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    def _remember(self, proc: Proc) -> None:
        self._procs.append(proc)
        self._write_pidfile()

    def _write_pidfile(self) -> None:
        if self.opts.pidfile:
            Path(self.opts.pidfile).write_text("".join(f"{p.pid}\n" for p in self._procs))

    def spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Proc:
        logfile = self.dir / f"{name}.log"
        handle = open(logfile, "ab")
        popen = subprocess.Popen(
            argv, env=env, cwd=self.dir, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
        handle.close()
        proc = Proc(name, popen, logfile)
        self._remember(proc)
        return proc

    def stop(self, proc: Proc, timeout: float = 20.0) -> None:
        """SIGTERM the process group of ``proc`` (it leads it), then SIGKILL if it lingers."""
        if proc not in self._procs:
            return
        if proc.alive():
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                log(f"{proc.name} did not stop in {timeout:.0f}s: SIGKILL")
        # Pool children may outlive their parent for a moment; the group is ours either way.
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.popen.wait(5)
        except subprocess.TimeoutExpired:
            pass
        self._procs.remove(proc)
        self._write_pidfile()

    # ---- servers

    def start_redis(self, label: str = "redis") -> str:
        from sms_worker.embedded import free_port, redis_server_binary, start_redis_server

        port = free_port()
        popen = start_redis_server(redis_server_binary(), port, self.dir / label, persist=False)
        self._remember(Proc("redis", popen, self.dir / label / "redis.log"))
        return f"redis://127.0.0.1:{port}/0"

    def start_sandbox(self, *options: str) -> str:
        """``sms-worker sandbox`` with ``options`` (``--telekom-sk-callback-url URL``...); its base URL."""
        from sms_worker.embedded import free_port

        port = free_port()
        proc = self.spawn("sandbox", sms_worker_cmd("sandbox", "--host", "127.0.0.1", "--port", str(port), *options), self.child_env())
        try:
            os.setpriority(os.PRIO_PROCESS, proc.pid, SANDBOX_NICE)
        except PermissionError:
            log(
                f"the sandbox runs at normal priority (nice {SANDBOX_NICE} needs root or CAP_SYS_NICE): on a busy host it may record arrivals late, in bunches"
            )
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{base}/_sandbox/submissions", params={"since": 1 << 60}, timeout=2).raise_for_status()
                break
            except httpx.HTTPError:
                if not proc.alive():
                    raise RuntimeError(f"sandbox exited:\n{proc.tail()}") from None
                if time.monotonic() > deadline:
                    raise RuntimeError("sandbox did not answer within 30s") from None
                time.sleep(0.1)
        self.sandbox_url = base
        return base

    def reset_sandbox(self) -> None:
        httpx.post(f"{self.sandbox_url}/_sandbox/reset", timeout=30).raise_for_status()

    def watch(self) -> SandboxWatch:
        """Clear the sandbox (its state and log) and watch the submissions from now on."""
        self.reset_sandbox()
        return SandboxWatch(self.sandbox_url)

    def fresh_database(self, label: str) -> str:
        """A new empty database at the latest migration: a SQLite file, or a PostgreSQL schema."""
        from sms_worker.db.migrate import upgrade

        if self.opts.database_url:
            from sqlalchemy import create_engine, text

            base = self.opts.database_url
            schema = f"bench_{label}_{uuid.uuid4().hex[:10]}"
            admin = create_engine(base.replace("postgresql://", "postgresql+psycopg://", 1))
            with admin.begin() as conn:
                conn.execute(text(f'CREATE SCHEMA "{schema}"'))
            admin.dispose()
            self._schemas.append(schema)
            url = f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"
        else:
            url = f"sqlite:///{self.dir / f'{label}.db'}"
        upgrade(url)
        return url

    def _drop_schema(self, schema: str) -> None:
        from sqlalchemy import create_engine, text

        admin = create_engine(self.opts.database_url.replace("postgresql://", "postgresql+psycopg://", 1))
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()

    # ---- environments and processes

    def child_env(self, **settings: Any) -> dict[str, str]:
        """This process's environment without any SMS_WORKER_*, plus the given settings."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("SMS_WORKER_")}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        env[RUN_ID_ENV] = self.run_id
        env["SMS_WORKER_HOME"] = str(self.dir / "home")
        if self.sandbox_url:
            env["SMS_WORKER_TELEKOM_SK_URL"] = f"{self.sandbox_url}/telekom-sk"
        for key, value in {**settings, **self.opts.settings}.items():
            env[f"SMS_WORKER_{key.upper()}"] = str(value)
        return env

    def use_in_process(self, **settings: Any) -> None:
        """Point this process's sms_worker settings (and its Celery app) at this stack."""
        env = self.child_env(**settings)
        for key in [k for k in os.environ if k.startswith("SMS_WORKER_")]:
            del os.environ[key]
        os.environ.update({k: v for k, v in env.items() if k.startswith("SMS_WORKER_")})
        from sms_worker.config import reset_settings

        reset_settings()
        if "sms_worker.tasks.app" in sys.modules:
            from sms_worker.config import get_settings
            from sms_worker.tasks.app import celery_app

            wanted = get_settings().redis_url
            if celery_app.conf.broker_url != wanted:
                raise RuntimeError("sms_worker.tasks.app was imported for another Redis; one stack per process")

    def ours(self, *, scheduler: bool = True, **settings: Any) -> Ours:
        """A fresh sms_worker side: its own Redis and database, the scheduler, a producer runtime."""
        redis_url = self.start_redis("redis-ours")
        settings = dict(redis_url=redis_url, database_url=self.fresh_database("ours"), **settings)
        env = self.child_env(**settings)
        started = self.start_scheduler(env, redis_url) if scheduler else None
        return Ours(redis_url, env, started, self.runtime(**settings))

    def naive_side(self, label: str = "naive", **extra_env: str) -> tuple[str, dict[str, str]]:
        """A fresh naive side: its own Redis and database, the baseline app configured for them,
        and the environment its workers start with. Returns (redis_url, env)."""
        from benchmarks import naive

        redis_url = self.start_redis(f"redis-{label}")
        database_url = self.fresh_database(label.replace("-", "_"))
        naive.configure(redis_url, database_url, self.sandbox_url or "http://127.0.0.1:9")
        return redis_url, {**self.child_env(redis_url=redis_url, database_url=database_url), **extra_env}

    def runtime(self, **settings: Any):
        """An in-process runtime with Celery wake-ups, as a producer in production has."""
        self.use_in_process(**settings)
        from sms_worker.config import get_settings
        from sms_worker.queues.wakeups import CeleryWaker
        from sms_worker.runtime import build_runtime, redis_url

        settings = get_settings()
        return build_runtime(settings, waker=CeleryWaker(redis_url(settings)))

    def start_scheduler(self, env: dict[str, str], redis_url: str, timeout: float = 30) -> Proc:
        """``sms-worker scheduler``; returns once it has initialised Redis (the epoch key)."""
        import redis

        proc = self.spawn("scheduler", sms_worker_cmd("scheduler", "--loglevel", "warning"), env)
        client = redis.Redis.from_url(redis_url)
        deadline = time.monotonic() + timeout
        try:
            while not client.exists("smsw:epoch"):
                if not proc.alive():
                    raise RuntimeError(f"scheduler exited:\n{proc.tail()}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"scheduler did not initialise Redis within {timeout:.0f}s:\n{proc.tail()}")
                time.sleep(0.1)
        finally:
            client.close()
        return proc

    def start_workers(self, env: dict[str, str], concurrency: int, name: str = "worker") -> Proc:
        argv = sms_worker_cmd("worker", "-c", str(concurrency), "--loglevel", "warning", "-n", f"{name}-{self.run_id[:6]}@%h")
        return self.spawn(name, argv, env)

    def start_naive_worker(self, env: dict[str, str], concurrency: int, name: str = "naive") -> Proc:
        argv = celery_cmd("-A", "benchmarks.naive", "worker", "-c", str(concurrency), "-l", "warning", "-n", f"{name}-{self.run_id[:6]}@%h")
        return self.spawn(name, argv, env)

    def cpu(self) -> CpuMeter:
        return CpuMeter(self)

    def check_alive(self, *procs: Proc) -> None:
        for proc in procs:
            if not proc.alive():
                raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}:\n{proc.tail()}")


def _group_cpu() -> dict[int, float]:
    """CPU seconds per process group, over every live process (plus reaped children)."""
    tick = os.sysconf("SC_CLK_TCK")
    totals: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2 :].split()
        pgrp = int(fields[2])
        utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
        totals[pgrp] = totals.get(pgrp, 0.0) + (utime + stime + cutime + cstime) / tick
    return totals


class CpuMeter:
    """CPU seconds used by each of a stack's processes (and this one) between start and stop."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.start = self._sample()

    def _sample(self) -> dict[str, float]:
        groups = _group_cpu()
        sample: dict[str, float] = {}
        for proc in self.stack._procs:
            sample[proc.name] = sample.get(proc.name, 0.0) + groups.get(proc.pid, 0.0)
        times = os.times()
        sample["benchmark"] = times.user + times.system
        return sample

    def stop(self) -> dict[str, float]:
        end = self._sample()
        return {name: round(end[name] - self.start.get(name, 0.0), 1) for name in end}

    @staticmethod
    def describe(used: dict[str, float], wall: float) -> str:
        parts = ", ".join(f"{name} {sec:.1f}" for name, sec in sorted(used.items(), key=lambda kv: -kv[1]) if sec >= 0.05)
        return f"CPU s over {wall:.1f}s wall: {parts}"


def used_memory(url: str) -> int:
    import redis

    client = redis.Redis.from_url(url)
    try:
        return int(client.info("memory")["used_memory"])
    finally:
        client.close()


# --------------------------------------------------------------------------- running one module


def add_set_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra sms_worker setting for its processes, e.g. http_concurrency=8 (overrides the benchmark's own)",
    )


def parse_sets(items: list[str]) -> dict[str, str]:
    settings = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set wants NAME=VALUE, not {item!r}")
        settings[name.strip().lower().removeprefix("sms_worker_")] = value
    return settings


def standalone(run: Callable[[Options], list[Row]], description: str, add_arguments: Callable[[argparse.ArgumentParser], None] | None = None) -> None:
    """``python -m benchmarks.<module>``: run one benchmark and print its rows as the table.
    ``add_arguments`` adds the benchmark's own options; their values reach it as ``opts.params``."""
    parser = argparse.ArgumentParser(description=description)
    before = {action.dest for action in parser._actions}
    if add_arguments is not None:
        add_arguments(parser)
    own_names = {action.dest for action in parser._actions} - before
    parser.add_argument("--quick", action="store_true", help="smaller counts")
    parser.add_argument("--database-url", help="base PostgreSQL URL (a fresh schema per database); default SQLite files")
    parser.add_argument("--keep", action="store_true", help="keep the temp directory (logs, databases)")
    parser.add_argument("--burn", type=int, default=0, help="CPU-burning processes beside the benchmark")
    parser.add_argument("--json", help="also write the rows to this file (used by run.py)")
    parser.add_argument("--pidfile", help="record child pids here (used by run.py)")
    add_set_option(parser)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    own = {name: value for name, value in vars(args).items() if name in own_names}
    opts = Options(
        quick=args.quick,
        database_url=args.database_url,
        keep=args.keep,
        pidfile=args.pidfile,
        settings=parse_sets(args.set),
        burn=args.burn,
        params=own,
    )
    rows = run(opts)
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(r) for r in rows]))
    else:
        print(format_table(rows))
