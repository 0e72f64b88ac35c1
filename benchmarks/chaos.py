"""Chaos: break the pipeline the way operators do, then check the promise message by message.

    .venv/bin/python -m benchmarks.chaos --kind kills --runs 5            # 1,000 messages each
    .venv/bin/python -m benchmarks.chaos --kind outage --runs 5           # a 30 s database outage
    .venv/bin/python -m benchmarks.chaos --kind kills --messages 300 --json out.json   # the suite's run
    .venv/bin/python -m benchmarks.chaos --kind kills --latency-ms 200 --messages 5000  # slow providers

Every run: its own Redis, sandbox, scheduler and two worker process groups (``-c 2``), three
accounts (Telekom SK, Dexatel, Telefoon) sharing the default route, and about 10 % faults on
every account's send: HTTP 503, the provider's own transient error, and answers that never
come in time, after the sandbox accepted the message: held past the call's deadline (a
timeout), trickled a byte at a time (a drip), or replaced by an HTML page (garbage).

- ``kills``: two ``kill -9`` of a whole worker process group at random moments of the run, a
  replacement started after each, and a Redis ``FLUSHALL`` just after the first kill, while the
  killed worker's lease still runs. SQLite by default, or ``--database-url``.
- ``outage``: first Redis alone is killed and restarted empty 2 s later; then a PostgreSQL
  cluster of the run's own (``initdb``) is stopped with ``pg_ctl stop -m immediate`` for
  ``--outage`` seconds while messages are being sent, Redis killed and restarted empty in the
  middle of it; no worker killed. How soon sending resumes after each comes back is measured.

Checked per message against the sandbox's submission log, never in aggregate:

- lost: a message that did not reach a final status (0);
- unexplained copies: a provider accepted it more often than 1 + its ambiguous attempts (0);
- unflagged copies: a provider accepted it more than once and its row does not say
  ``possible_duplicate`` (0);
- unknown outcomes: attempts recorded ``WORKER_LOST`` (at most the calls in flight at the kills,
  counted in the database the instant each kill lands; 0 without kills);
- over six attempts: submissions at the sandbox, or attempts in the row, above 1 + 5 retries (0);
- sent after final: a submission that reached the sandbox after the message's final status (0);
- false finals: a final status other than delivered for a message the sandbox accepted, with no
  ambiguous attempt to explain why we could not know (0).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.harness import Options, Proc, SandboxWatch, Stack, log

PROVIDERS = """
[accounts.telekom-sk]
type = "telekom-sk"
base_url = "{sandbox}/telekom-sk"
token = "sandbox-token"
rate = 400

[accounts.dexatel]
type = "dexatel"
base_url = "{sandbox}/dexatel"
api_key = "sandbox-dexatel-key"
default_sender = "ACME"
rate = 400

[accounts.telefoon]
type = "telefoon"
base_url = "{sandbox}/telefoon/v1/sms"
api_key = "sandbox-telefoon-key"
default_sender = "ACME"
rate = 400

[routing]
default = {{ telekom-sk = 1, dexatel = 1, telefoon = 1 }}
"""

HTTP_TIMEOUT = 1.0
# Per account: (send endpoint, the provider's own transient error code). Each rule rolls its own
# probability: 1 - 0.96 * 0.97 * 0.99 * 0.99 * 0.99 = 9.6 % of sends meet one.
ACCOUNTS = {"telekom-sk": ("send_message", "ERROR"), "dexatel": ("send", "INTERNAL_ERROR"), "telefoon": ("send", "20500")}
SETTINGS = {
    "http_timeout_seconds": HTTP_TIMEOUT,
    "lease_seconds": 4,
    "retry_backoff_seconds": "[0.5,1,2,4,8]",
    "breaker_cooldown_seconds": 2,
    "poll_interval_seconds": 0.5,
    "sweep_interval_seconds": 2,
    "stale_queued_seconds": 5,
    "status_check_delays_seconds": "[1,1,2,5]",
}


@dataclass
class Verdict:
    kind: str
    messages: int
    seconds: float = 0.0
    statuses: dict[str, int] = field(default_factory=dict)
    lost: int = 0
    accepted_more_than_once: int = 0
    unexplained_copies: int = 0
    unflagged_copies: int = 0
    ambiguous_attempts: int = 0
    unknown_outcomes: int = 0
    in_flight_at_kills: int = 0
    over_six_attempts: int = 0
    sent_after_final: int = 0
    false_finals: int = 0
    refused: int = 0
    submissions: int = 0
    resumed_after_database: float | None = None
    resumed_after_redis: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            self.lost == self.unexplained_copies == self.unflagged_copies == self.over_six_attempts == self.sent_after_final == self.false_finals == 0
            and self.unknown_outcomes <= self.in_flight_at_kills
        )

    def line(self) -> str:
        resumed = "".join(
            f", resumed {value:.2f} s after {what} came back"
            for what, value in (("Redis", self.resumed_after_redis), ("the database", self.resumed_after_database))
            if value is not None
        )
        return (
            f"{self.kind}: {self.messages} messages in {self.seconds:.0f} s, {self.statuses}; lost {self.lost}, "
            f"accepted twice {self.accepted_more_than_once} (unexplained {self.unexplained_copies}, unflagged {self.unflagged_copies}), ambiguous attempts "
            f"{self.ambiguous_attempts}, unknown outcomes {self.unknown_outcomes} <= in flight at kills {self.in_flight_at_kills}, "
            f"over 6 attempts {self.over_six_attempts}, sent after final {self.sent_after_final}, false finals {self.false_finals}, "
            f"{self.submissions} submissions ({self.refused} refused){resumed}: {'OK' if self.ok else 'BROKEN'}"
        )


class PostgresCluster:
    """A PostgreSQL cluster of the run's own, so it can be stopped the hard way."""

    def __init__(self) -> None:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        binaries = Path(found[-1]).parent if found else Path(shutil.which("initdb") or "initdb").parent
        self.bin = binaries
        self.dir = Path(tempfile.mkdtemp(prefix="smsw-pg-"))
        self.data = self.dir / "data"
        from sms_worker.embedded import free_port

        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")

    def _run(self, tool: str, *args: str) -> None:
        owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*owner, str(self.bin / tool), *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.dir}"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.dir / "log"), "-w", "start")

    def crash(self) -> None:
        """``pg_ctl stop -m immediate``: no shutdown checkpoint, clients cut off mid-transaction."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def remove(self) -> None:
        try:
            self.crash()
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)


def group_pids(group: int) -> list[int]:
    """The processes of a process group (a worker and its pool), read from /proc."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                raw = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(raw[raw.rindex(")") + 2 :].split()[2]) == group:
                pids.append(int(entry))
    return pids


def calling_held_by(rt, pids: list[int]) -> int:
    """Messages recorded as calling by the worker processes ``pids``: the calls they had in flight
    (or answered, unwritten yet), as the database knows them the instant they die."""
    from sqlalchemy import func, select

    from sms_worker.lifecycle.tables import MESSAGES
    from sms_worker.workers.lease import DISPATCHERS

    statement = (
        select(func.count())
        .select_from(MESSAGES.join(DISPATCHERS, DISPATCHERS.c.id == MESSAGES.c.dispatcher))
        .where(MESSAGES.c.status == "calling", DISPATCHERS.c.pid.in_(pids))
    )
    with rt.engine.connect() as conn:
        return conn.execute(statement).scalar_one()


def _add_faults(sandbox: str, latency_ms: int) -> None:
    """The faults above on every account's send, and with ``latency_ms`` every other answer held
    that long. The sandbox applies the first rule that a request draws, so the latency rule
    comes last: a request that draws none of the faults is held ``latency_ms``."""
    with httpx.Client(timeout=10) as client:
        for provider, (endpoint, code) in ACCOUNTS.items():
            latency = [{"fault": "latency", "ms": latency_ms}] if latency_ms else []
            for rule in (
                {"fault": "http_status", "status": 503, "probability": 0.04},
                {"fault": "error_code", "code": code, "probability": 0.03},
                {"fault": "timeout", "seconds": HTTP_TIMEOUT * 2, "probability": 0.01},
                {"fault": "drip", "ms": 100, "probability": 0.01},
                {"fault": "garbage", "probability": 0.01},
                *latency,
            ):
                client.post(f"{sandbox}/_sandbox/faults", json={"provider": provider, "endpoint": endpoint, **rule}).raise_for_status()


UNFLAGGED_SHOWN = 5
"""Unflagged copies whose history a run prints, to tell how the promise broke."""


def _unflagged(row: Any, history: list[Any], submissions: list[dict[str, Any]]) -> str:
    """One unflagged copy: its account, each event (time, status, code, reason) and each
    submission (arrival time, accepted) at the sandbox."""
    shown = "; ".join(f"{event.at.isoformat(timespec='milliseconds')} {event.status} {event.code or '-'}: {event.reason}" for event in history)
    arrived = ", ".join(
        f"{datetime.fromtimestamp(record['received_ts'], UTC).isoformat(timespec='milliseconds')} {'accepted' if record['accepted'] else 'refused'}"
        for record in submissions
    )
    return f"unflagged copy on {row.account}, {row.attempts} attempt(s): events [{shown}]; at the sandbox [{arrived}]"


def _wait_accepted(sandbox: str, share: float, messages: int, timeout: float = 60) -> None:
    """Until the sandbox has accepted ``share`` of ``messages``, or ``timeout`` seconds. The log
    is read incrementally: a read of the whole of it costs the sandbox tens of milliseconds of
    the event loop that also answers the sends, and twenty a second stalled it for seconds, so
    that requests our workers had written (and given up on) reached it long after."""
    watch = SandboxWatch(sandbox)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        watch.poll()
        if len(watch.accepted) >= share * messages:
            return
        time.sleep(0.05)


def _restart_redis(stack: Stack, proc: Proc, url: str) -> Proc:
    """Kill redis-server and start an empty one on the same port, as a restart without persistence does."""
    from sms_worker.embedded import redis_server_binary, start_redis_server

    if proc.alive():
        os.killpg(proc.pid, signal.SIGKILL)
    proc.popen.wait(10)
    stack._procs.remove(proc)
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    popen = start_redis_server(redis_server_binary(), port, stack.dir / "redis-restarted", persist=False)
    restarted = Proc("redis", popen, stack.dir / "redis-restarted" / "redis.log")
    stack._remember(restarted)
    return restarted


def run(kind: str, messages: int, outage: float, opts: Options, seed: int, latency_ms: int = 0) -> Verdict:
    chance = random.Random(seed)
    verdict = Verdict(kind, messages)
    cluster = PostgresCluster() if kind == "outage" else None
    with Stack(f"chaos-{kind}", opts) as stack:
        try:
            sandbox = stack.start_sandbox()
            if cluster is not None:
                cluster.start()
                from sms_worker.db.migrate import upgrade

                database_url = cluster.url
                upgrade(database_url)
            else:
                database_url = stack.fresh_database("chaos")
            redis_url = stack.start_redis("redis-chaos")
            redis_proc = stack._procs[-1]
            providers = stack.dir / "providers.toml"
            providers.write_text(PROVIDERS.format(sandbox=sandbox))
            settings = {"redis_url": redis_url, "database_url": database_url, "providers_file": providers, **SETTINGS}
            env = stack.child_env(**settings)
            stack.start_scheduler(env, redis_url)
            rt = stack.runtime(**settings)
            stack.reset_sandbox()
            _add_faults(sandbox, latency_ms)
            workers = [stack.start_workers(env, 2, name=f"worker{n}") for n in range(2)]
            started = time.monotonic()
            from sms_worker.producer import send_many

            texts = [f"chaos {seed} {n:05d}" for n in range(messages)]
            for start in range(0, messages, 500):
                send_many([{"to": f"+4219001{n % 100000:05d}", "text": texts[n]} for n in range(start, min(messages, start + 500))], runtime=rt)
            if kind == "kills":
                verdict.in_flight_at_kills = _kill_twice(stack, rt, sandbox, env, workers, messages, chance, verdict)
            else:
                redis_proc = _redis_restart(stack, sandbox, redis_proc, redis_url, messages, verdict)
                verdict.resumed_after_database = _outage(stack, cluster, sandbox, redis_proc, redis_url, messages, outage, verdict)
            _wait_final(rt, messages, timeout=180 + outage)
            verdict.seconds = time.monotonic() - started
            time.sleep(HTTP_TIMEOUT * 2 + 0.5)
            _judge(rt, sandbox, texts, verdict)
            rt.close()
        finally:
            if cluster is not None:
                stack.close()
                cluster.remove()
    return verdict


def _kill_twice(stack: Stack, rt, sandbox: str, env: dict, workers: list[Proc], messages: int, chance: random.Random, verdict: Verdict) -> int:
    in_flight = 0
    for kill in range(2):
        target = chance.uniform(0.15, 0.35) + 0.35 * kill
        _wait_accepted(sandbox, target, messages)
        time.sleep(chance.uniform(0, 0.3))
        doomed = workers.pop(chance.randrange(len(workers)))
        pids = group_pids(doomed.pid)
        os.killpg(doomed.pid, signal.SIGKILL)
        doomed.popen.wait(10)
        held = calling_held_by(rt, pids)
        in_flight += held
        verdict.notes.append(f"kill {kill + 1} at {target:.0%} accepted: {held} call(s) in flight")
        if kill == 0:
            rt.redis.flushall()
            verdict.notes.append("FLUSHALL inside the killed worker's lease")
        stack._procs.remove(doomed)
        workers.append(stack.start_workers(env, 2, name=f"worker-after-kill{kill + 1}"))
    return in_flight


def _first_after(sandbox: str, moment: float, timeout: float = 30) -> float | None:
    """Seconds from ``moment`` to the first submission the sandbox received after it."""
    watch = SandboxWatch(sandbox)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        records = [r for r in watch.poll() if r["received_ts"] > moment]
        if records:
            return min(r["received_ts"] for r in records) - moment
        time.sleep(0.05)
    return None


def _redis_restart(stack: Stack, sandbox: str, redis_proc: Proc, redis_url: str, messages: int, verdict: Verdict) -> Proc:
    _wait_accepted(sandbox, 0.1, messages)
    os.killpg(redis_proc.pid, signal.SIGKILL)
    time.sleep(2)
    restarted = _restart_redis(stack, redis_proc, redis_url)
    verdict.resumed_after_redis = _first_after(sandbox, time.time())
    verdict.notes.append("Redis killed, restarted empty 2 s later")
    return restarted


def _outage(
    stack: Stack, cluster: PostgresCluster, sandbox: str, redis_proc: Proc, redis_url: str, messages: int, seconds: float, verdict: Verdict
) -> float | None:
    _wait_accepted(sandbox, 0.3, messages)
    cluster.crash()
    down = time.time()
    time.sleep(seconds / 2)
    _restart_redis(stack, redis_proc, redis_url)
    verdict.notes.append(f"database down {seconds:.0f} s, Redis restarted empty after {seconds / 2:.0f} s")
    time.sleep(seconds / 2)
    cluster.start()
    up = time.time()
    resumed = _first_after(sandbox, up)
    during = [r for r in httpx.get(f"{sandbox}/_sandbox/submissions", timeout=30).json()["submissions"] if down + 2 < r["received_ts"] < up]
    verdict.notes.append(f"{len(during)} submission(s) reached the sandbox while the database was down (after the first 2 s)")
    return resumed


def _wait_final(rt, messages: int, timeout: float) -> None:
    from sqlalchemy import func, select

    from sms_worker.lifecycle.status import FINAL_VALUES
    from sms_worker.lifecycle.tables import MESSAGES

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with rt.engine.connect() as conn:
                final = conn.execute(select(func.count()).where(MESSAGES.c.status.in_(FINAL_VALUES))).scalar_one()
        except Exception:  # noqa: BLE001 - the database may be coming back
            final = 0
        if final >= messages:
            return
        time.sleep(0.5)
    log(f"chaos: not every message was final after {timeout:.0f} s")


def _judge(rt, sandbox: str, texts: list[str], verdict: Verdict) -> None:
    from sqlalchemy import select

    from sms_worker.dispatch.stages.requests import ADAPTER_CRASH
    from sms_worker.lifecycle.status import FINAL_VALUES
    from sms_worker.lifecycle.tables import EVENTS, MESSAGES
    from sms_worker.providers.plumbing import BAD_RESPONSE, CONNECTION_LOST, TIMEOUT
    from sms_worker.recovery import WORKER_LOST

    # The history keeps each attempt's code, not its kind: these are the codes of ambiguous failures.
    ambiguous_codes = {TIMEOUT, CONNECTION_LOST, BAD_RESPONSE, ADAPTER_CRASH, WORKER_LOST}

    records = httpx.get(f"{sandbox}/_sandbox/submissions", timeout=60).json()["submissions"]
    with rt.engine.connect() as conn:
        rows = {
            row.text: row
            for row in conn.execute(
                select(MESSAGES.c.id, MESSAGES.c.text, MESSAGES.c.status, MESSAGES.c.attempts, MESSAGES.c.possible_duplicate, MESSAGES.c.account)
            )
        }
        events = defaultdict(list)
        for event in conn.execute(select(EVENTS.c.message_id, EVENTS.c.at, EVENTS.c.status, EVENTS.c.code, EVENTS.c.reason).order_by(EVENTS.c.id)):
            events[event.message_id].append(event)
    sent = defaultdict(list)
    for record in records:
        sent[record["text"]].append(record)
    verdict.submissions = len(records)
    verdict.refused = sum(1 for record in records if not record["accepted"])
    verdict.statuses = dict(Counter(row.status for row in rows.values()))
    codes = Counter(event.code for history in events.values() for event in history if event.code in ambiguous_codes)
    verdict.notes.append(f"ambiguous attempts by code: {dict(codes)}")
    for text in texts:
        row = rows[text]
        history = events[row.id]
        ambiguous = sum(1 for event in history if event.code in ambiguous_codes)
        verdict.ambiguous_attempts += ambiguous
        verdict.unknown_outcomes += sum(1 for event in history if event.code == WORKER_LOST)
        accepted = sum(1 for record in sent[text] if record["accepted"])
        verdict.lost += row.status not in FINAL_VALUES
        verdict.accepted_more_than_once += accepted > 1
        verdict.unexplained_copies += max(0, accepted - 1 - ambiguous) > 0
        verdict.unflagged_copies += accepted > 1 and not row.possible_duplicate
        if accepted > 1 and not row.possible_duplicate and verdict.unflagged_copies <= UNFLAGGED_SHOWN:
            verdict.notes.append(_unflagged(row, history, sent[text]))
        verdict.over_six_attempts += len(sent[text]) > 6 or row.attempts > 6
        final_at = next((event.at.timestamp() for event in history if event.status in FINAL_VALUES), None)
        verdict.sent_after_final += final_at is not None and any(record["received_ts"] > final_at + 0.001 for record in sent[text])
        verdict.false_finals += row.status in FINAL_VALUES and row.status != "delivered" and accepted > 0 and ambiguous == 0
        verdict.false_finals += row.status == "delivered" and accepted == 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=("kills", "outage"), required=True)
    parser.add_argument("--runs", type=int, default=1, help="each in a process of its own")
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--outage", type=float, default=30.0, help="seconds the database is down (outage runs)")
    parser.add_argument("--latency-ms", type=int, default=0, help="every send answered this late (a slow provider)")
    parser.add_argument("--database-url", help="base PostgreSQL URL for kills runs (default: SQLite)")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--json", help="write the verdicts here")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    first = args.seed if args.seed is not None else random.randrange(1 << 30)
    if args.runs == 1:
        opts = Options(database_url=args.database_url, keep=args.keep)
        verdicts = [run(args.kind, args.messages, args.outage if args.kind == "outage" else 0.0, opts, first, args.latency_ms)]
        print(f"seed {first}: {verdicts[0].line()}", flush=True)
        for note in verdicts[0].notes:
            print(f"    {note}", flush=True)
    else:
        verdicts = [_run_apart(args, first + n) for n in range(args.runs)]
    if args.json:
        Path(args.json).write_text(json.dumps([{**asdict(v), "ok": v.ok} for v in verdicts]))
    return 0 if all(v.ok for v in verdicts) else 1


def _run_apart(args: argparse.Namespace, seed: int) -> Verdict:
    """One run in a child process: a Celery app and its settings are per process."""
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        argv = [
            sys.executable,
            "-m",
            "benchmarks.chaos",
            "--kind",
            args.kind,
            "--messages",
            str(args.messages),
            "--outage",
            str(args.outage),
            "--latency-ms",
            str(args.latency_ms),
            "--seed",
            str(seed),
            "--json",
            out.name,
            *(["--database-url", args.database_url] if args.database_url else []),
            *(["--keep"] if args.keep else []),
        ]
        subprocess.run(argv, cwd=Path(__file__).resolve().parent.parent)
        found = json.loads(Path(out.name).read_text() or "[]")
    if not found:
        return Verdict(args.kind, args.messages, notes=[f"run with seed {seed} produced no verdict"], lost=args.messages)
    found[0].pop("ok")
    return Verdict(**found[0])


if __name__ == "__main__":
    sys.exit(main())
