"""``sms-worker demo`` leaves nothing running behind it, however it is stopped."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest


def alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "zombie" not in next(line for line in status.splitlines() if line.startswith("State:"))


def demo_processes(home: Path) -> set[int]:
    """The live processes whose environment names the demo's home (its children inherit it), and
    its Redis (which overwrites its environment for its process title) from its pid file."""
    marker = f"SMS_WORKER_HOME={home / 'demo'}".encode()
    pid_file = home / "demo" / "redis.pid"
    found = {int(pid_file.read_text())} if pid_file.exists() else set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if marker in (entry / "environ").read_bytes().split(b"\0"):
                    found.add(int(entry.name))
            except OSError:
                continue
    return {pid for pid in found if alive(pid)}


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc to find the demo's processes")
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGHUP], ids=["kill", "closed-terminal"])
def test_a_stopped_demo_stops_its_workers_scheduler_sandbox_flower_and_redis(tmp_path, stop):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMS_WORKER_")} | {"SMS_WORKER_HOME": str(tmp_path)}
    demo = subprocess.Popen([sys.executable, "-m", "sms_worker.cli", "demo"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    children: set[int] = set()
    try:
        deadline = time.monotonic() + 60
        for line in demo.stdout:
            if "logs in" in line or time.monotonic() > deadline:
                break
        children = demo_processes(tmp_path) - {demo.pid}
        assert len(children) >= 5, "sandbox, worker, scheduler, Flower and Redis should be running"
        demo.send_signal(stop)
        assert demo.wait(30) == 0
        deadline = time.monotonic() + 15
        while (left := {pid for pid in children if alive(pid)} | demo_processes(tmp_path)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert left == set()
    finally:
        demo.kill()
        for pid in children | demo_processes(tmp_path):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
