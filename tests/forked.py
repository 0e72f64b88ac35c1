"""``python -m MODULE ARGS`` and ``python -c PROGRAM ARGS`` as processes of their own, forked from
a process that has already imported the libraries sms_worker uses (SQLAlchemy, SQLModel, pydantic,
httpx, redis, kombu, Celery, alembic, phonenumbers, uvicorn): their import is most of a short
command's CPU, about a second, paid once per test worker rather than once per command.

What a test sees is what a user does: a process with its own pid, environment, working
directory, stdout, stderr and exit code (a signal's as ``-SIGNAL``, as :mod:`subprocess` gives
it), that finalizes and runs its exit handlers as any other. None of sms_worker's own modules is
imported before the fork, so each process imports them and reads its settings afresh, from the
environment it is given. A test of a process's life (signals, a server it leaves running, a
worker), or of what a process imports, starts it with :mod:`subprocess` instead.

Run as a script, this module is that process (:func:`serve`): on a Unix socket, one request at a
time, it takes the command line, environment and working directory as JSON and the child's
stdin, stdout and stderr as file descriptors, answers the child's pid, then its wait status. What
it has imported is frozen out of the garbage collector's sight before each fork
(:func:`gc.freeze`): otherwise a child's collections and its exit touch every object, copying the
memory pages the two processes share.
"""

from __future__ import annotations

import atexit
import gc
import json
import locale
import os
import runpy
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import types
from pathlib import Path

PRELOADED = (
    "alembic.command",
    "celery.app.base",
    "celery.beat",
    "celery.worker",
    "defusedxml.ElementTree",
    "httpcore",
    "httpx",
    "kombu.pools",
    "kombu.transport.redis",
    "phonenumbers",
    "platformdirs",
    "psycopg",
    "pycountry",
    "pydantic_settings",
    "redis",
    "sqlalchemy.dialects.postgresql.psycopg",
    "sqlalchemy.dialects.sqlite",
    "sqlalchemy.orm",
    "sqlmodel",
    "starlette.applications",
    "unidecode",
    "uvicorn.main",
)
"""What the forking process imports: third-party libraries only, none of which reads the
environment or starts a thread when imported."""
REQUEST_LIMIT = 1 << 20
"""The largest request in bytes (the environment is most of it)."""


def serve(path: str) -> None:
    """Listen on the Unix socket ``path`` and run each request in a child, until stdin ends (the
    test worker closed it, or died)."""
    for module in PRELOADED:
        __import__(module)
    assert threading.active_count() == 1, "a fork copies no thread but this one: none may run before it"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen()
    print("ready", flush=True)
    while True:
        readable, _, _ = select.select([listener, sys.stdin], [], [])
        if sys.stdin in readable:
            return
        connection, _ = listener.accept()
        with connection:
            message, fds, _, _ = socket.recv_fds(connection, REQUEST_LIMIT, 3)
            while chunk := connection.recv(REQUEST_LIMIT):
                message += chunk
            request = json.loads(message)
            sys.stdout.flush()
            sys.stderr.flush()
            gc.freeze()
            pid = os.fork()
            if pid == 0:
                listener.close()
                connection.close()
                _become(request["argv"], request["env"], request["cwd"], fds)
            for fd in fds:
                os.close(fd)
            try:
                connection.sendall(f"{pid}\n".encode())
                _, status = os.waitpid(pid, 0)
                connection.sendall(f"{status}\n".encode())
            except OSError:
                continue


def _become(argv: list[str], env: dict[str, str], cwd: str, fds: list[int]) -> None:
    """In the child: take ``fds`` as stdin, stdout and stderr, then run ``python ARGV`` (``-m
    MODULE ARGS`` or ``-c PROGRAM ARGS``) in ``cwd`` with ``env``, as the interpreter would."""
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    option, code, *args = argv
    sys.argv = [option, *args]
    if option == "-m":
        sys.path[0] = cwd
        runpy.run_module(code, run_name="__main__", alter_sys=True)
    else:
        sys.path[0] = ""
        main = sys.modules["__main__"] = types.ModuleType("__main__")
        exec(compile(code, "<string>", "exec"), main.__dict__)
    sys.exit(0)


class _Server:
    """The forking process of this test worker, started on first use and ended at exit."""

    def __init__(self) -> None:
        self.directory = tempfile.mkdtemp(prefix="sms-worker-forked-")
        self.path = os.path.join(self.directory, "socket")
        self.process = subprocess.Popen([sys.executable, __file__, self.path], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        assert self.process.stdout.readline() == "ready\n", "the forking process did not start"
        atexit.register(self.close)

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait()
        os.unlink(self.path)
        os.rmdir(self.directory)


_server: _Server | None = None


def run_python(*argv: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run ``python ARGV`` (``-m MODULE ARGS`` or ``-c PROGRAM ARGS``) as :func:`subprocess.run`
    with ``capture_output`` and ``text`` would, with stdin empty, in ``cwd`` (default: this one)
    with ``env`` (default: this process's). A process still running after ``timeout`` seconds is
    killed and raises :class:`subprocess.TimeoutExpired`."""
    assert argv[0] in ("-m", "-c"), f"not a module or a program to run: {argv[0]!r}"
    global _server
    if _server is None:
        _server = _Server()
    request = {"argv": list(argv), "env": dict(os.environ if env is None else env), "cwd": str(cwd or os.getcwd())}
    with (
        open(os.devnull, "rb") as stdin,
        tempfile.TemporaryFile() as stdout,
        tempfile.TemporaryFile() as stderr,
        socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection,
    ):
        connection.settimeout(timeout)
        connection.connect(_server.path)
        socket.send_fds(connection, [json.dumps(request).encode()], [stdin.fileno(), stdout.fileno(), stderr.fileno()])
        connection.shutdown(socket.SHUT_WR)
        with connection.makefile("r") as answer:
            started = answer.readline()
            assert started, "the forking process ended"
            pid = int(started)
            try:
                status = int(answer.readline())
            except TimeoutError:
                os.kill(pid, signal.SIGKILL)
                raise subprocess.TimeoutExpired([sys.executable, *argv], timeout) from None
        stdout.seek(0)
        stderr.seek(0)
        return subprocess.CompletedProcess([sys.executable, *argv], os.waitstatus_to_exitcode(status), _text(stdout.read()), _text(stderr.read()))


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """``python -m sms_worker.cli ARGS`` (``sms-worker ARGS``), as :func:`run_python` runs it."""
    return run_python("-m", "sms_worker.cli", *args, env=env, cwd=cwd)


def _text(output: bytes) -> str:
    """``output`` decoded as :func:`subprocess.run` with ``text=True`` does: the locale's encoding, universal newlines."""
    return output.decode(locale.getpreferredencoding(False)).replace("\r\n", "\n").replace("\r", "\n")


if __name__ == "__main__":
    serve(sys.argv[1])
