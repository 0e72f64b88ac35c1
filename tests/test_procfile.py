"""The Procfile as a new user runs it: ``honcho start`` on a fresh home comes up whole, stays up,
delivers a message, and Ctrl-C leaves no process behind."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import alive
from stack import BIN, HONCHO, REPO, Running, kill_home, processes_of
from stack import honcho as start_honcho
from stack import stack_env as fresh_env

from sms_worker.embedded import answers

pytestmark = [
    pytest.mark.skipif(HONCHO is None, reason="honcho is not installed (pip install -e '.[test]')"),
    pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc to find the stack's processes"),
]


@pytest.fixture
def stack_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A fresh home and free ports, nothing else of the caller's SMS_WORKER_* settings; whatever
    still runs for that home at the end is killed."""
    env = fresh_env(tmp_path / "home")
    yield env
    kill_home(Path(env["SMS_WORKER_HOME"]))


@pytest.fixture
def honcho(stack_env: dict[str, str], tmp_path: Path) -> Iterator[Running]:
    env_file = tmp_path / "empty.env"
    env_file.touch()
    started = start_honcho(stack_env, env_file)
    try:
        yield started
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(started.process.pid, signal.SIGKILL)
        started.process.wait()


def sms_worker(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "sms-worker"), *args], capture_output=True, text=True, env=env, cwd=REPO, timeout=60)


def test_honcho_start_on_a_fresh_home_comes_up_whole_delivers_a_message_and_ctrl_c_leaves_nothing(honcho, stack_env):
    home = Path(stack_env["SMS_WORKER_HOME"])
    honcho.wait_for("embedded Redis of", "celery@", " ready.", "scheduler running", "Visit me at", "callback token", timeout=120)

    sent = sms_worker("send", "+421900123456", "Hello from honcho start", "--json", env=stack_env)
    assert sent.returncode == 0, sent.stdout + sent.stderr
    message_id = json.loads(sent.stdout)["id"]
    deadline = time.monotonic() + 60
    while (status := json.loads(sms_worker("status", message_id, "--json", env=stack_env).stdout)["message"]["status"]) != "delivered":
        assert time.monotonic() < deadline, f"the message is {status} after 60 s:\n{honcho.output}"
        time.sleep(0.5)

    assert "stopped (rc=" not in honcho.output, f"a process stopped while the stack was up:\n{honcho.output}"
    token_file = home / "callback_token"
    assert token_file.stat().st_mode & 0o777 == 0o600
    assert token_file.read_text().strip() not in honcho.output, "the callback token must never be logged"
    redis_url = (home / "redis.url").read_text().strip()
    ours = processes_of(home)
    assert len(ours) >= 7, "redis-server, sandbox, worker and its pool, scheduler, Flower and the callback receiver"

    honcho.ctrl_c()

    assert honcho.process.wait(30) == 130, honcho.output
    deadline = time.monotonic() + 15
    while (left := {pid for pid in ours if alive(pid)} | processes_of(home)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert left == set(), f"left running: {[Path(f'/proc/{pid}/cmdline').read_bytes() for pid in left]}"
    assert not answers(redis_url)
    assert "Traceback" not in honcho.output


def start(*args: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([str(BIN / "sms-worker"), *args], env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def read_until(process: subprocess.Popen, text: str) -> str:
    """The process's output up to the first line holding ``text``; fails if it ends first."""
    assert process.stdout is not None
    seen = []
    for line in process.stdout:
        seen.append(line)
        if text in line:
            return "".join(seen)
    pytest.fail(f"{process.args} ended without printing {text!r}:\n{''.join(seen)}")


def test_a_long_running_process_waits_for_the_redis_line_and_never_starts_a_redis_of_its_own(stack_env):
    """A sibling: the scheduler started before `sms-worker redis` waits for it, then uses it, so
    stopping `sms-worker redis` leaves no Redis; with none coming it exits 3 saying what to run."""
    home = Path(stack_env["SMS_WORKER_HOME"])
    env = stack_env | {"SMS_WORKER_REDIS_WAIT_SECONDS": "120"}
    assert sms_worker("db", "upgrade", env=env).returncode == 0
    scheduler = start("scheduler", env=env)
    redis_line = None
    try:
        read_until(scheduler, "waiting for Redis: the embedded Redis of")
        assert not (home / "redis.url").exists()

        redis_line = start("redis", env=env)
        read_until(redis_line, "embedded Redis of")
        read_until(scheduler, "scheduler running")
        server = int((home / "redis.pid").read_text())
        url = (home / "redis.url").read_text().strip()
        assert processes_of(home) >= {scheduler.pid, redis_line.pid, server}

        redis_line.send_signal(signal.SIGTERM)
        assert redis_line.wait(30) == 0
        assert not alive(server) and not answers(url)
        assert not (home / "redis.url").exists() and not (home / "redis.pid").exists()
    finally:
        for process in (scheduler, redis_line):
            if process is not None:
                process.kill()
                process.wait()

    alone = sms_worker("worker", env=stack_env | {"SMS_WORKER_REDIS_WAIT_SECONDS": "1"})
    assert alone.returncode == 3, "exit 3: a server is unavailable"
    assert "error: redis: the embedded Redis of" in alone.stderr
    assert "start it with 'sms-worker redis'" in alone.stderr
    assert "Traceback" not in alone.stderr
    assert not (home / "redis.url").exists()


def test_the_redis_line_runs_what_a_one_off_command_queued_before_the_stack_was_up(stack_env):
    """A sibling: `sms-worker send` with no stack up starts an embedded Redis for itself and stops
    it when done (a short command leaves no server behind); `sms-worker redis` then runs the
    same data as its own child, so the message stays queued, and stopping the line leaves no
    Redis behind."""
    home = Path(stack_env["SMS_WORKER_HOME"])
    assert sms_worker("db", "upgrade", env=stack_env).returncode == 0
    assert sms_worker("send", "+421900123456", "queued before the stack", env=stack_env).returncode == 0
    assert not (home / "redis.pid").exists(), "send left its Redis running"
    redis_line = start("redis", env=stack_env)
    try:
        read_until(redis_line, "embedded Redis of")
        server = int((home / "redis.pid").read_text())
        stats = json.loads(sms_worker("stats", "--json", env=stack_env).stdout)
        assert stats["ready"]["standard"] == 1, stats

        redis_line.send_signal(signal.SIGINT)
        assert redis_line.wait(30) == 0
        assert not alive(server)
    finally:
        redis_line.kill()
        redis_line.wait()
