"""``sms-worker demo`` leaves nothing running behind it, however and whenever it is stopped."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import alive

pytestmark = pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc to find the demo's processes")


def demo_processes(home: Path) -> set[int]:
    """The live processes whose environment names the demo's home (its children inherit it), and
    its Redis (which overwrites its environment for its process title) from its pid file."""
    marker = f"SMS_WORKER_HOME={home / 'demo'}".encode()
    pid_file = home / "demo" / "redis.pid"
    found = set()
    with contextlib.suppress(OSError, ValueError):
        found.add(int(pid_file.read_text()))
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if marker in (entry / "environ").read_bytes().split(b"\0"):
                    found.add(int(entry.name))
            except OSError:
                continue
    return {pid for pid in found if alive(pid)}


class Demo:
    """``sms-worker demo`` in a home of its own, its output read line by line."""

    def __init__(self, home: Path) -> None:
        self.home = home
        env = {k: v for k, v in os.environ.items() if not k.startswith("SMS_WORKER_")} | {"SMS_WORKER_HOME": str(home)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "sms_worker.cli", "demo"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self.output: list[str] = []
        self.seen: set[int] = set()
        """Every process of the demo seen so far (the demo itself excluded)."""

    def read_until(self, text: str) -> None:
        """Read the output until a line holds ``text``; fails if the demo ends first."""
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)
            if text in line:
                return
        pytest.fail(f"the demo ended without printing {text!r}:\n{''.join(self.output)}")

    def note_processes(self) -> set[int]:
        self.seen |= demo_processes(self.home) - {self.process.pid}
        return self.seen

    def finish(self, timeout: float = 60) -> int:
        """Wait for the demo to exit and read the rest of its output; its exit code."""
        code = self.process.wait(timeout)
        assert self.process.stdout is not None
        self.output.append(self.process.stdout.read())
        return code

    def left_running(self) -> set[int]:
        """The demo's processes still alive, once given 15 s to be gone."""
        deadline = time.monotonic() + 15
        while (left := {pid for pid in self.seen if alive(pid)} | demo_processes(self.home)) and time.monotonic() < deadline:
            time.sleep(0.2)
        return left


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    started = Demo(tmp_path)
    try:
        yield started
    finally:
        started.process.kill()
        started.process.wait()
        for pid in started.seen | demo_processes(tmp_path):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def wait_for_file(path: Path, demo: Demo, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert demo.process.poll() is None, f"the demo exited before {path.name} appeared"
        assert time.monotonic() < deadline, f"{path} did not appear within {timeout} s"
        time.sleep(0.01)


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGHUP], ids=["kill", "closed-terminal"])
def test_a_stopped_demo_stops_its_workers_scheduler_sandbox_flower_and_redis(demo, stop):
    demo.read_until("logs in")
    assert len(demo.note_processes()) >= 5, "sandbox, worker, scheduler, Flower and Redis should be running"

    demo.process.send_signal(stop)

    assert demo.finish() == 0, "".join(demo.output)
    assert demo.left_running() == set()
    assert "Traceback" not in "".join(demo.output)


@pytest.mark.parametrize(
    ("moment", "stop"),
    [("redis.pid", signal.SIGTERM), ("logs/flower.log", signal.SIGINT)],
    ids=["redis-up-no-child-yet", "children-starting"],
)
def test_a_demo_stopped_while_it_starts_stops_what_it_had_started(demo, moment, stop):
    """A sibling: the signal lands during start-up, before every child is up (right after the
    bundled Redis answers, or once the last child was started and none is ready yet)."""
    wait_for_file(demo.home / "demo" / moment, demo)
    demo.note_processes()

    demo.process.send_signal(stop)

    assert demo.finish() == 0, "".join(demo.output)
    demo.note_processes()
    assert demo.left_running() == set()
    output = "".join(demo.output)
    assert f"Stopping the demo ({stop.name})" in output
    assert "Traceback" not in output


def test_a_second_signal_while_the_demo_stops_changes_nothing(demo):
    """A sibling: a second Ctrl-C while the demo stops its children neither interrupts that nor
    changes the exit code."""
    demo.read_until("logs in")
    demo.note_processes()
    demo.process.send_signal(signal.SIGTERM)
    demo.read_until("Stopping the demo (SIGTERM)")

    demo.process.send_signal(signal.SIGINT)

    assert demo.finish() == 0, "".join(demo.output)
    assert demo.left_running() == set()
    output = "".join(demo.output)
    assert "Stopped: every process the demo started has exited." in output
    assert "Traceback" not in output
