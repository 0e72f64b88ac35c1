"""``sms-worker demo``: the whole system on embedded defaults, watched live.

It starts the sandbox, a bundled Redis, two worker processes, the scheduler and Flower, sends a
mix that exercises every path (three priorities, a scheduled message, Unicode and its GSM-7
downgrade, transient faults that clear, a permanent refusal, a message that runs out of
validity, routing by country across the five provider APIs, a multi-recipient order, a
failover past two failing accounts), and shows a table until every message is final.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from rich.console import Console
from rich.live import Live
from rich.table import Table

from sms_worker.clock import SYSTEM_CLOCK
from sms_worker.config import get_settings, reset_settings
from sms_worker.embedded import STOP_SECONDS, ensure_embedded_redis, free_port, stop_embedded_redis
from sms_worker.errors import SmsWorkerError
from sms_worker.lifecycle.status import FINAL
from sms_worker.stopping import StopRequested, StopSignals

if TYPE_CHECKING:
    from sms_worker.views import MessageHistory

PROVIDERS = """
[accounts.telekom-sk]
type = "telekom-sk"
base_url = "{sandbox}/telekom-sk"
token = "sandbox-token"
rate = 50

[accounts.dt-a2p]
type = "dt-a2p"
base_url = "{sandbox}/dt-a2p"
api_key = "sandbox-dt-key"
default_sender = "+4915112345678"
rate = 20

[accounts.session-key]
type = "session-key"
base_url = "{sandbox}/session-key"
username = "sandbox-user"
password = "sandbox-pass"
rate = 50

[accounts.telefoon]
type = "telefoon"
base_url = "{sandbox}/telefoon/v1/sms"
api_key = "sandbox-telefoon-key"
default_sender = "Telefoon"
rate = 20

[accounts.dexatel]
type = "dexatel"
base_url = "{sandbox}/dexatel"
api_key = "sandbox-dexatel-key"
default_sender = "ACME"
rate = 20

[[routes]]
countries = ["SK"]
accounts = {{ telekom-sk = 1 }}

[[routes]]
countries = ["DE"]
accounts = {{ dt-a2p = 1, dexatel = 1 }}

[[routes]]
prefixes = ["+31", "+32"]
accounts = {{ telefoon = 1 }}

[routing]
default = {{ session-key = 1, telefoon = 1, dexatel = 1 }}
"""


@dataclass(frozen=True)
class DemoMessage:
    label: str
    expected: str
    request: dict[str, Any] = field(default_factory=dict)


def demo_messages() -> list[DemoMessage]:
    soon = SYSTEM_CLOCK.now() + timedelta(seconds=15)
    return [
        DemoMessage("high: login code", "delivered", {"to": "+421900000001", "text": "Your login code is 482193", "priority": "high"}),
        DemoMessage(
            "standard: parcel", "delivered", {"to": "+421900000010", "text": "Your parcel arrives today between 10:00 and 12:00", "sender": "PARCELS"}
        ),
        DemoMessage(
            "low: newsletter", "delivered", {"to": "+421900000011", "text": "Weekly news: " + "all the things that happened. " * 8, "priority": "low"}
        ),
        DemoMessage("scheduled in 15 s", "delivered", {"to": "+421900000012", "text": "Reminder: your appointment is in one hour", "send_at": soon}),
        DemoMessage("unicode (UCS-2)", "delivered", {"to": "+421900000013", "text": "Ďakujeme za objednávku! 😀"}),
        DemoMessage(
            "unicode=false (GSM-7)", "delivered", {"to": "+421900000014", "text": "Ďakujeme za objednávku, čoskoro ju doručíme.", "unicode": False}
        ),
        DemoMessage("pinned: 2 faults, then ok", "delivered", {"to": "+421900000002", "text": "Third time lucky", "account": "telekom-sk"}),
        DemoMessage("permanent: DENIED", "rejected", {"to": "+421900000003", "text": "The provider refuses this one"}),
        DemoMessage(
            "pinned: expires retrying",
            "expired",
            {"to": "+421900000004", "text": "Valid for one minute only", "validity": 1, "account": "telekom-sk"},
        ),
        DemoMessage("DE: dt-a2p or dexatel", "delivered", {"to": "+4915112340001", "text": "Ihr Paket kommt heute"}),
        DemoMessage("NL: telefoon", "delivered", {"to": "+31612345678", "text": "Uw pakket komt vandaag"}),
        *(
            DemoMessage(
                f"campaign {n}/3: one order", "delivered", {"to": f"+3934912345{n:02d}", "text": "Saldi: -30% oggi", "account": "session-key"}
            )
            for n in (1, 2, 3)
        ),
        DemoMessage("DE: 2 accounts fail, fails over", "delivered", {"to": "+4915100000099", "text": "Third account lucky"}),
    ]


DEMO_FAULTS = [
    {"provider": "telekom-sk", "to": "421900000002", "endpoint": "send_message", "fault": "http_status", "status": 503, "times": 2},
    {"provider": "telekom-sk", "to": "421900000003", "endpoint": "send_message", "fault": "error_code", "code": "DENIED"},
    {"provider": "telekom-sk", "to": "421900000004", "endpoint": "send_message", "fault": "http_status", "status": 503},
    {"provider": "dt-a2p", "to": "4915100000099", "endpoint": "send", "fault": "http_status", "status": 503},
    {"provider": "dexatel", "to": "4915100000099", "endpoint": "send", "fault": "http_status", "status": 503},
]


class DemoFailed(SmsWorkerError):
    """The demo cannot go on (a child process exited, the sandbox did not start); ``str()`` says
    why and which log to read."""


class Processes:
    """The demo's child processes, each in a process group of its own and logging to a file, all
    stopped together."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.children: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, *args: str) -> None:
        log = open(self.log_dir / f"{name}.log", "w")
        command = [sys.executable, "-m", "sms_worker.cli", *args]
        self.children.append((name, subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)))

    def check_alive(self) -> None:
        for name, child in self.children:
            if child.poll() is not None:
                raise DemoFailed(f"{name} exited with code {child.returncode}; see {self.log_dir / (name + '.log')}")

    def stop(self) -> None:
        """SIGTERM to every child's group, SIGKILL to the groups of those still running after
        :data:`~sms_worker.embedded.STOP_SECONDS`, and SIGKILL once more to every group, for a
        process a child forked (a Celery pool process) that its parent left behind."""
        for _, child in self.children:
            if child.poll() is None:
                _signal_group(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_SECONDS
        for _, child in self.children:
            try:
                child.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(child.pid, signal.SIGKILL)
                child.wait()
        for _, child in self.children:
            _signal_group(child.pid, signal.SIGKILL)


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        pass


def run_demo(*, exit_when_done: bool, timeout: float = 180.0) -> int:
    """Run the demo. Exit codes: 0 when every message reached its expected status, or when it is
    stopped without ``exit_when_done``; 1 when a message did not, or the demo could not go on
    (:class:`DemoFailed`); 130 when it is stopped with ``exit_when_done`` before every message is
    final. Ctrl-C (SIGINT), ``kill`` (SIGTERM) and a closed terminal (SIGHUP) stop it at any
    point of its start, run or stop (:mod:`sms_worker.stopping`): every child process and the
    bundled Redis have exited when it returns, and a second signal changes nothing."""
    console = Console(width=max(Console().width, 130))
    home = (get_settings().home / "demo").resolve()
    processes = Processes(home / "logs")
    with StopSignals() as stop:
        try:
            return _run(console, home, processes, stop, exit_when_done=exit_when_done, timeout=timeout)
        except StopRequested as stopped:
            console.print(f"Stopping the demo ({stopped.signal.name}): its workers, scheduler, sandbox, Flower and Redis.")
            return 130 if exit_when_done else 0
        except DemoFailed as error:
            console.print(f"[red]The demo stopped: {error}[/red]")
            return 1
        finally:
            processes.stop()
            stop_embedded_redis(home)
            if stop.received is not None:
                console.print("Stopped: every process the demo started has exited.")


def _run(console: Console, home: Path, processes: Processes, stop: StopSignals, *, exit_when_done: bool, timeout: float) -> int:
    """The demo's start, run and wait, each step begun only while no stop was asked for."""
    stop_embedded_redis(home)
    shutil.rmtree(home, ignore_errors=True)
    (home / "logs").mkdir(parents=True)
    sandbox_port, flower_port = free_port(), free_port()
    providers_file = home / "providers.toml"
    providers_file.write_text(PROVIDERS.format(sandbox=f"http://127.0.0.1:{sandbox_port}"))
    os.environ.update(
        {
            "SMS_WORKER_PROVIDERS_FILE": str(providers_file),
            "SMS_WORKER_HOME": str(home),
            "SMS_WORKER_DATABASE_URL": f"sqlite:///{home / 'demo.db'}",
            "SMS_WORKER_RETRY_BACKOFF_SECONDS": "[5,10,60,120,240]",
            "SMS_WORKER_POLL_INTERVAL_SECONDS": "1",
            "SMS_WORKER_SWEEP_INTERVAL_SECONDS": "5",
            "SMS_WORKER_STATUS_CHECK_DELAYS_SECONDS": "[1,1,2,5,15]",
        }
    )
    for inherited in ("SMS_WORKER_REDIS_URL",):
        os.environ.pop(inherited, None)
    reset_settings()
    stop.check()
    os.environ["SMS_WORKER_REDIS_URL"] = ensure_embedded_redis(home)
    reset_settings()
    stop.check()
    from sms_worker.db.migrate import upgrade

    upgrade(get_settings().resolved_database_url)
    for name, *args in (
        ("sandbox", "sandbox", "--port", str(sandbox_port)),
        ("worker", "worker", "--concurrency", "2"),
        ("scheduler", "scheduler"),
        ("flower", "flower", "--port", str(flower_port)),
    ):
        stop.check()
        processes.start(name, *args)
    _wait_for_sandbox(sandbox_port, processes, stop)
    for rule in DEMO_FAULTS:
        httpx.post(f"http://127.0.0.1:{sandbox_port}/_sandbox/faults", json=rule).raise_for_status()
    console.print(f"[bold]sms_worker demo[/bold]: state in {home}, logs in {home / 'logs'}")
    ok = _send_and_watch(console, processes, stop, timeout)
    flower_url = f"http://127.0.0.1:{flower_port}"
    console.print(f"Flower (workers, tasks, queues): [link={flower_url}]{flower_url}[/link]")
    if exit_when_done:
        return 0 if ok else 1
    console.print("Press Ctrl-C to stop the demo.")
    while True:
        processes.check_alive()
        stop.wait(1)
        stop.check()


def _wait_for_sandbox(port: int, processes: Processes, stop: StopSignals) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        stop.check()
        processes.check_alive()
        try:
            httpx.get(f"http://127.0.0.1:{port}/_sandbox/faults", timeout=1).raise_for_status()
            return
        except httpx.HTTPError:
            stop.wait(0.2)
    raise DemoFailed(f"the sandbox did not start within 30 s; see {processes.log_dir / 'sandbox.log'}")


def _send_and_watch(console: Console, processes: Processes, stop: StopSignals, timeout: float) -> bool:
    from sms_worker.producer import send_sms
    from sms_worker.views import message_history

    sent = []
    for item in demo_messages():
        stop.check()
        sent.append((item, send_sms(**item.request)))
    final = {s.value for s in FINAL}
    deadline = time.monotonic() + timeout
    with Live(console=console, refresh_per_second=4) as live:
        while True:
            processes.check_alive()
            rows = [(item, _history_of(message_history, message_id)) for item, message_id in sent]
            live.update(_table(rows))
            if all(found.message["status"] in final for _, found in rows) or time.monotonic() > deadline:
                break
            stop.wait(0.5)
            stop.check()
    console.print()
    wrong = [(item.label, found.message["status"], item.expected) for item, found in rows if found.message["status"] != item.expected]
    for label, status, expected in wrong:
        console.print(f"[red]{label}: ended {status}, expected {expected}[/red]")
    if not wrong:
        console.print(f"[green]All {len(rows)} messages reached their expected final status.[/green]")
    return not wrong


def _history_of(read: Callable[[uuid.UUID], MessageHistory | None], message_id: uuid.UUID) -> MessageHistory:
    found = read(message_id)
    if found is None:
        raise RuntimeError(f"message {message_id} the demo sent is not in the database")
    return found


def _table(rows: list[tuple[DemoMessage, MessageHistory]]) -> Table:
    table = Table(title="sms_worker demo: live message status")
    for column in ("message", "priority", "encoding", "status", "attempts", "via", "provider id", "last event"):
        table.add_column(column)
    for item, found in rows:
        message, last = found.message, found.events[-1]
        colour = {"delivered": "green", "rejected": "red", "expired": "yellow", "undeliverable": "red", "unknown": "red"}.get(
            message["status"], "cyan"
        )
        table.add_row(
            item.label,
            message["priority"],
            f"{message['encoding']} x{message['segments']}",
            f"[{colour}]{message['status']}[/{colour}]",
            str(message["attempts"]),
            message["account"],
            message["provider_message_id"] or "-",
            last["reason"],
        )
    return table
