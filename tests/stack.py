"""A stack as a user starts it: ``honcho start`` on the repository's Procfile, a fresh home and
free ports, and the processes that run for a home; for the tests of the Procfile and of the
documents' examples."""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import alive

from sms_worker.embedded import free_port

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
HONCHO = shutil.which("honcho", path=str(BIN)) or shutil.which("honcho")


def stack_env(home: Path) -> dict[str, str]:
    """The environment of a user's shell on a fresh ``home`` with free ports: none of the
    caller's SMS_WORKER_* settings, this interpreter's ``bin`` first on PATH."""
    sandbox_port = free_port()
    return {k: v for k, v in os.environ.items() if not k.startswith("SMS_WORKER_")} | {
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "SMS_WORKER_HOME": str(home),
        "SMS_WORKER_SANDBOX_PORT": str(sandbox_port),
        "SMS_WORKER_TELEKOM_SK_URL": f"http://127.0.0.1:{sandbox_port}/telekom-sk",
        "SMS_WORKER_FLOWER_PORT": str(free_port()),
        "SMS_WORKER_CALLBACK_PORT": str(free_port()),
    }


def kill_home(home: Path) -> None:
    """Kill whatever still runs for ``home``."""
    for pid in processes_of(home):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def processes_of(home: Path) -> set[int]:
    """Live processes whose environment names ``home`` (every process honcho started, and theirs),
    and the redis-server in ``home/redis.pid`` (it overwrites its environment with its title)."""
    marker = f"SMS_WORKER_HOME={home}".encode()
    found = set()
    with contextlib.suppress(OSError, ValueError):
        found.add(int((home / "redis.pid").read_text()))
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            with contextlib.suppress(OSError):
                if marker in (entry / "environ").read_bytes().split(b"\0"):
                    found.add(int(entry.name))
    return {pid for pid in found if alive(pid)}


def spawn(command: list[str] | str, env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    """``command`` (a shell line when text) started in a session of its own, as a terminal runs
    it, its output and errors together on a pipe."""
    return subprocess.Popen(
        command,
        env=env,
        cwd=cwd,
        shell=isinstance(command, str),
        executable="/bin/bash" if isinstance(command, str) else None,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


class Running:
    """A started process (see :func:`spawn`), its output collected line by line."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: list[str] = []
        self._new: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)
            self._new.put(line)

    def wait_for(self, *texts: str, timeout: float) -> None:
        """Until a line holds each of ``texts``; fails naming what is missing."""
        missing = [text for text in texts if not any(text in line for line in self.lines)]
        deadline = time.monotonic() + timeout
        while missing:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.process.poll() is not None:
                pytest.fail(f"{self.process.args} never printed {missing}:\n{self.output}")
            with contextlib.suppress(queue.Empty):
                line = self._new.get(timeout=min(remaining, 0.5))
                missing = [text for text in missing if text not in line]

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def ctrl_c(self) -> None:
        os.killpg(self.process.pid, signal.SIGINT)

    def kill(self) -> None:
        """SIGKILL to its whole session, and wait for it."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


def honcho(env: dict[str, str], env_file: Path) -> Running:
    """``honcho start`` on the repository's Procfile with ``env`` and ``env_file``."""
    command = [str(HONCHO), "-f", str(REPO / "Procfile"), "-d", str(REPO), "-e", str(env_file), "start"]
    return Running(spawn(command, env=env, cwd=REPO))
