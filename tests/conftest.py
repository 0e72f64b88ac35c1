"""Real servers for the tests: a redis-server of their own (or SMS_WORKER_TEST_REDIS_URL), SQLite
and PostgreSQL (SMS_WORKER_TEST_DATABASE_URL), and the sandbox over real HTTP."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import redis
import uvicorn
from sqlalchemy import create_engine, text

from sms_worker.clock import FakeClock
from sms_worker.config import Settings
from sms_worker.db.engine import dispose_engines
from sms_worker.db.migrate import upgrade
from sms_worker.embedded import free_port, redis_server_binary, start_redis_server
from sms_worker.priority import Priority
from sms_worker.providers.accounts import parse_providers
from sms_worker.providers.base import Accepted, Adapter, OutboundMessage
from sms_worker.providers.failures import Failure
from sms_worker.providers.registry import AccountSettings
from sms_worker.queues.pointers import promote
from sms_worker.routing.breaker import Breaker
from sms_worker.runtime import NoWaker, Runtime, build_runtime
from sms_worker.sandbox.app import create_app
from sms_worker.sandbox.settings import SandboxSettings

PG_URL = os.environ.get("SMS_WORKER_TEST_DATABASE_URL")
DATABASES = ["sqlite", "postgresql"]


def pytest_report_header(config: pytest.Config) -> list[str]:
    lines = [f"redis-server: {os.environ.get('SMS_WORKER_TEST_REDIS_URL') or redis_server_binary()}"]
    lines.append(f"postgresql: {PG_URL or 'not configured: PostgreSQL cases are skipped (set SMS_WORKER_TEST_DATABASE_URL)'}")
    return lines


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    configured = os.environ.get("SMS_WORKER_TEST_REDIS_URL")
    if configured:
        yield configured
        return
    directory = Path(tempfile.mkdtemp(prefix="sms-worker-redis-"))
    port = free_port()
    process = start_redis_server(redis_server_binary(), port, directory, persist=False)
    yield f"redis://127.0.0.1:{port}/0"
    process.terminate()
    process.wait(10)
    shutil.rmtree(directory, ignore_errors=True)


class OwnRedis:
    """A redis-server of one test's own, on a port of its own: the test may stop it (SIGSTOP: it
    accepts and never answers), kill it and start it again empty on the same port, as a restart
    without persistence does, without touching the other tests' server."""

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="sms-worker-own-redis-"))
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = start_redis_server(redis_server_binary(), self.port, self.directory, persist=False)

    def pause(self) -> None:
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.process.pid, signal.SIGCONT)

    def restart(self, down_for: float = 0.0) -> None:
        """``kill -9``, then a new empty server on the same port ``down_for`` seconds later."""
        self.process.kill()
        self.process.wait(10)
        time.sleep(down_for)
        self.process = start_redis_server(redis_server_binary(), self.port, self.directory, persist=False)

    def close(self) -> None:
        self.resume()
        self.process.terminate()
        self.process.wait(10)
        shutil.rmtree(self.directory, ignore_errors=True)


@pytest.fixture
def own_redis() -> Iterator[OwnRedis]:
    server = OwnRedis()
    yield server
    server.close()


class CommitCutter:
    """A TCP proxy in front of PostgreSQL that can cut a connection right after the server
    committed a transaction, before its answer reaches the client: the in-doubt commit of a
    network cut or a server crash at that instant, on demand. ``arm(marker)``: on the next
    connection that sends ``marker`` (bytes of its SQL), the server answers the next
    ``answer_to`` (its ``COMMIT``; the marker itself for a statement in autocommit), and the
    client sees the connection lost instead."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.marker: bytes | None = None
        self.answer_to = b"COMMIT\x00"
        self.cut = threading.Event()
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def arm(self, marker: bytes, answer_to: bytes = b"COMMIT\x00") -> None:
        self.marker, self.answer_to, self.cut = marker, answer_to, threading.Event()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target_port))
            self._sockets += [client, server]
            state = {"marked": False, "committing": False}
            threading.Thread(target=self._upstream, args=(client, server, state), daemon=True).start()
            threading.Thread(target=self._downstream, args=(server, client, state), daemon=True).start()

    def _upstream(self, client: socket.socket, server: socket.socket, state: dict) -> None:
        try:
            while data := client.recv(65536):
                if self.marker is not None and self.marker in data:
                    state["marked"] = True
                if state["marked"] and self.answer_to in data:
                    self.marker, state["committing"] = None, True
                server.sendall(data)
        except OSError:
            pass

    def _downstream(self, server: socket.socket, client: socket.socket, state: dict) -> None:
        try:
            while data := server.recv(65536):
                if state["committing"]:
                    for end in (client, server):
                        end.shutdown(socket.SHUT_RDWR)  # wakes the other pump, blocked reading
                        end.close()
                    self.cut.set()
                    return
                client.sendall(data)
        except OSError:
            pass

    def drop_all(self) -> None:
        """Cut every connection open through the proxy, as a restart of the server does."""
        for end in self._sockets:
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._sockets.clear()

    def close(self) -> None:
        self.drop_all()
        self.listener.close()


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of the test's own at the latest revision: a SQLite file, or a schema of its
    own in SMS_WORKER_TEST_DATABASE_URL's database (chosen by the URL's search_path)."""
    with fresh_database(request.param, tmp_path) as url:
        upgrade(url)
        yield url


@pytest.fixture(params=DATABASES)
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """As :func:`database_url`, never migrated: no table at all."""
    with fresh_database(request.param, tmp_path) as url:
        yield url


@contextmanager
def fresh_database(kind: str, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database of ``kind`` (``sqlite`` or ``postgresql``), dropped after."""
    if kind == "sqlite":
        try:
            yield f"sqlite:///{tmp_path / 'test.db'}"
        finally:
            dispose_engines()
        return
    if not PG_URL:
        pytest.skip("PostgreSQL not configured: set SMS_WORKER_TEST_DATABASE_URL (CI does)")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1))
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield schema_url(schema)
    finally:
        dispose_engines()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def schema_url(schema: str) -> str:
    """SMS_WORKER_TEST_DATABASE_URL with ``schema`` as its search_path, and commits that do not
    wait for the write-ahead log to reach the disk (``synchronous_commit=off``): a commit is as
    atomic and as visible to every other connection as with the default, only a crash of the
    PostgreSQL server itself (which no test here causes; ``make chaos`` runs a cluster of its
    own) could lose the last ones. It spares each commit of the tests a disk flush."""
    assert PG_URL is not None
    separator = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{separator}options=-csearch_path%3D{schema}%20-csynchronous_commit%3Doff"


class ThreadedSandbox:
    """The sandbox served by uvicorn in a thread: real HTTP, state reachable for assertions."""

    def __init__(self, clock: FakeClock | None = None, settings: SandboxSettings | None = None, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        app = create_app(clock=clock, settings=settings)
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False, date_header=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ThreadedSandbox:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("sandbox did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)

    def submissions(self, **filters: object) -> list[dict]:
        return httpx.get(f"{self.url}/_sandbox/submissions", params=filters).json()["submissions"]

    def add_fault(self, **rule: object) -> dict:
        response = httpx.post(f"{self.url}/_sandbox/faults", json={"provider": "telekom-sk", **rule})
        response.raise_for_status()
        return response.json()


@pytest.fixture
def sandbox() -> Iterator[ThreadedSandbox]:
    with ThreadedSandbox() as server:
        yield server


@pytest.fixture
def sandbox_clock() -> FakeClock:
    """The sandbox's own clock, for sessions and status progression driven by hand."""
    return FakeClock(datetime.now(UTC))


@pytest.fixture
def fake_sandbox(sandbox_clock: FakeClock) -> Iterator[ThreadedSandbox]:
    with ThreadedSandbox(clock=sandbox_clock) as server:
        yield server


@pytest.fixture
def adapter_client() -> Iterator[Callable[..., httpx.Client]]:
    """Makes httpx clients for an adapter under test, whose event hooks see every request
    (``on_request``) and answer (``on_response``); each one is closed when the test ends."""
    clients: list[httpx.Client] = []

    def make(
        *,
        on_request: Callable[[httpx.Request], None] | None = None,
        on_response: Callable[[httpx.Response], None] | None = None,
        timeout: float = 5.0,
    ) -> httpx.Client:
        hooks = {"request": [on_request] if on_request else [], "response": [on_response] if on_response else []}
        client = httpx.Client(timeout=timeout, event_hooks=hooks)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def settings_for(redis_url: str, database_url: str, sandbox: ThreadedSandbox, tmp_path: Path) -> Callable[..., Settings]:
    def make(**overrides: object) -> Settings:
        values = {
            "home": tmp_path / "home",
            "database_url": database_url,
            "redis_url": redis_url,
            "telekom_sk_url": f"{sandbox.url}/telekom-sk",
            "telekom_sk_rate": 10_000.0,
            "telekom_sk_burst": 10_000,
            "retry_backoff_seconds": (30, 120, 300, 900, 1800),
        }
        return Settings(**{**values, **overrides})

    return make


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def runtime(settings_for: Callable[..., Settings], redis_client: redis.Redis, clock: FakeClock) -> Iterator[Runtime]:
    rt = build_runtime(settings_for(), waker=NoWaker(), clock=clock)
    yield rt
    rt.close()


def parse_account(table: dict, name: str = "acct", environ: dict[str, str] | None = None) -> AccountSettings:
    """One ``[accounts.NAME]`` table, checked as in a providers file (ProvidersFileError if it is wrong)."""
    return parse_providers({"accounts": {name: table}}, environ or {}).accounts[name]


def sent_alone(adapter: Adapter, message: OutboundMessage) -> Accepted:
    """``message`` through the adapter's ``send`` on its own; the test fails unless it was accepted."""
    [outcome] = adapter.send([message])
    assert isinstance(outcome, Accepted), f"not accepted: {outcome}"
    return outcome


def failed_alone(adapter: Adapter, message: OutboundMessage) -> Failure:
    """``message`` through the adapter's ``send`` on its own; the test fails unless it failed."""
    [outcome] = adapter.send([message])
    assert isinstance(outcome, Failure), f"not a failure: {outcome}"
    return outcome


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.1, message: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def alive(pid: int) -> bool:
    """Whether process ``pid`` is running (a zombie counts as gone), read from /proc."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "zombie" not in next(line for line in status.splitlines() if line.startswith("State:"))


def wait_out_cooldown(client: redis.Redis, breaker: Breaker) -> None:
    """Waits until ``breaker``'s cooldown is over on the clock it reads (Redis ``TIME``)."""
    until = breaker.state().until
    assert until is not None, "the breaker is not open"

    def over() -> bool:
        seconds, micros = client.time()
        return seconds + micros / 1e6 >= until

    wait_until(over, 10, 0.02, "the breaker's cooldown to end")


def process_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment a worker or scheduler subprocess reads its settings from."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMS_WORKER_")}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        if isinstance(value, tuple):
            value = "[" + ",".join(str(v) for v in value) + "]"
        env[f"SMS_WORKER_{name.upper()}"] = str(value)
    env.update(extra)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    return env


PYTHON = sys.executable


def promote_once(rt: Runtime) -> dict[Priority, int]:
    """What one tick of the scheduler's promoter does: due pointers to ready, and wake-ups."""
    return promote(rt.redis, rt.waker, rt.clock.now(), rt.settings.batch_size)


@pytest.fixture
def multi_runtime(settings_for, redis_client, sandbox, tmp_path):
    """A runtime on the system clock (the breaker's cooldown runs on Redis time) with fast retries."""
    import accounts  # here, not at the top: accounts imports this module

    runtimes = []

    def make(names: list[str], settings: dict | None = None, **options):
        path = accounts.write_providers(tmp_path / "providers.toml", sandbox.url, names, **options)
        fast = {"retry_backoff_seconds": (0.05, 0.1, 0.2, 0.4, 0.8), "breaker_cooldown_seconds": 0.5}
        settings = settings_for(providers_file=path, **{**fast, **(settings or {})})
        runtimes.append(build_runtime(settings, waker=NoWaker()))
        return runtimes[-1]

    yield make
    for rt in runtimes:
        rt.close()


class ShutsDownAfter:
    """The worker's HTTP pool, shut down (as at the worker's end) after ``calls`` calls were
    handed to it: handing it one more raises as a shut-down pool does."""

    def __init__(self, pool, calls: int) -> None:
        self._pool, self._left = pool, calls

    def submit(self, fn, *args):
        if self._left == 0:
            raise RuntimeError("cannot schedule new futures after shutdown")
        self._left -= 1
        return self._pool.submit(fn, *args)

    def shutdown(self, wait: bool = True) -> None:
        self._pool.shutdown(wait=wait)
