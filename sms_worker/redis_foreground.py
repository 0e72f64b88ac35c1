"""``sms-worker redis``: the home's embedded Redis as a process of its own, for a process manager.

It runs redis-server as its child in its own process group, so that what stops the group stops
both (honcho sends SIGTERM to each process's group, then SIGKILL after 5 s; Ctrl-C in a terminal
reaches the foreground group), publishes ``<home>/redis.url`` and ``redis.pid`` once the server
answers, and withdraws them when it stops. One per home (:class:`RedisAlreadyRun`). A Redis that a
one-off command started earlier for this home is stopped first and started again here, on the
same append-only file, so its queues carry over and stopping this process leaves no Redis behind.
With SMS_WORKER_REDIS_URL set there is nothing to run: it says so and waits to be stopped, so the
same Procfile serves a deployment on a Redis of its own.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import redis

from sms_worker.config import Settings
from sms_worker.embedded import STOP_SECONDS, answers, embedded_binary, file_lock, free_port, running_embedded_redis, start_redis_server, stop_process
from sms_worker.errors import SmsWorkerError
from sms_worker.logs import get_logger
from sms_worker.stopping import StopSignals

log = get_logger("redis")


class RedisAlreadyRun(SmsWorkerError):
    """Another ``sms-worker redis`` runs this home's embedded Redis; ``str()`` gives its pid."""


def run_embedded_redis(settings: Settings) -> int:
    """Run the embedded Redis of ``settings.home`` until SIGINT, SIGTERM or SIGHUP, or until it
    exits by itself. Returns 0 when stopped by a signal, else non-zero (its exit code, or 1), so
    that a process manager stops the processes that need it."""
    with StopSignals() as stop:
        if settings.redis_url:
            log.info("SMS_WORKER_REDIS_URL is set: this deployment uses that Redis, there is nothing to run here; waiting to be stopped")
            while not stop.wait(3600):
                pass
            return 0
        home = settings.home.resolve()
        with _one_per_home(home):
            server = _start(home)
            try:
                log.info("embedded Redis of %s running (pid %d; data and log in %s)", home, server.pid, home / "redis")
                while server.poll() is None and not stop.wait(0.5):
                    pass
            finally:
                _withdraw(home, server)
        if stop.received is not None:
            log.info("embedded Redis stopped (%s)", stop.received.name)
            return 0
        log.error("redis-server exited by itself with code %s; see %s", server.returncode, home / "redis" / "redis.log")
        return server.returncode or 1


@contextmanager
def _one_per_home(home: Path) -> Iterator[None]:
    """Hold ``<home>/redis.owner`` (flock, released when this process ends however it ends)."""
    home.mkdir(parents=True, exist_ok=True)
    with open(home / "redis.owner", "a+") as owner:
        try:
            fcntl.flock(owner, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner.seek(0)
            raise RedisAlreadyRun(f"the embedded Redis of {home} is already run by another 'sms-worker redis' (pid {owner.read().strip()})") from None
        owner.truncate(0)
        owner.write(str(os.getpid()))
        owner.flush()
        yield


def _start(home: Path) -> subprocess.Popen:
    """Under the home's start lock: stop a Redis left running for this home, start ours, publish it."""
    with file_lock(home / "redis.lock"):
        if running_embedded_redis(home) is not None:
            _stop_left_running(home)
        port = free_port()
        server = start_redis_server(embedded_binary(), port, home / "redis", persist=True, own_session=False)
        (home / "redis.pid").write_text(str(server.pid))
        (home / "redis.url").write_text(f"redis://127.0.0.1:{port}/0")
        return server


def _stop_left_running(home: Path) -> None:
    """Stop the Redis ``<home>/redis.url`` names: by its pid file, else by SHUTDOWN (which writes
    its append-only file first); returns once it no longer answers."""
    pid_file, url = home / "redis.pid", (home / "redis.url").read_text().strip()
    log.info("stopping the embedded Redis that a command left running for %s; its data carries over", home)
    if pid_file.exists():
        stop_process(int(pid_file.read_text()))
    else:
        redis.Redis.from_url(url).shutdown()
    deadline = time.monotonic() + STOP_SECONDS
    while answers(url):
        if time.monotonic() > deadline:
            raise RedisAlreadyRun(f"the embedded Redis that a command left running for {home} did not stop within {STOP_SECONDS:g} s")
        time.sleep(0.05)
    pid_file.unlink(missing_ok=True)


def _withdraw(home: Path, server: subprocess.Popen) -> None:
    """Unpublish ``server`` (if the files still name it), then stop it and reap it."""
    with file_lock(home / "redis.lock"):
        pid_file = home / "redis.pid"
        if pid_file.exists() and pid_file.read_text().strip() == str(server.pid):
            pid_file.unlink()
            (home / "redis.url").unlink(missing_ok=True)
    if server.poll() is None:
        server.terminate()
        try:
            server.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                server.kill()
            server.wait()
