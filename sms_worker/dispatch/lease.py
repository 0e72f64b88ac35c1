"""The lease a worker process holds while it may hold claims, and the thread that keeps it.

Each process that dispatches is a row of ``sms_dispatcher`` (host, pid, a random suffix) whose
``heartbeat_at`` it renews every ``lease_seconds / 5`` (between 0.2 s and 2 s). The messages it
claims name it. When the heartbeat is older than ``lease_seconds``, the scheduler's reclaimer
takes those claims back (:class:`sms_worker.recovery.Reclaimer`): within seconds of a
``kill -9``, not minutes.

The :class:`Keeper` thread renews the lease and writes the outcomes the ledger holds while the
database is away; both resume the moment it is back.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, insert, update

from sms_worker.clock import Clock
from sms_worker.db.models import Dispatcher, table_of
from sms_worker.dispatch.ledger import Ledger
from sms_worker.logs import get_logger
from sms_worker.outages import describe_outage

log = get_logger("lease")
DISPATCHERS = table_of(Dispatcher)


class Lease:
    """This process's entry in ``sms_dispatcher``; :attr:`id` goes into the rows it claims."""

    def __init__(self, engine: Engine, clock: Clock, seconds: float) -> None:
        self.id = f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.seconds = seconds
        self._engine = engine
        self._clock = clock
        self._renewed: datetime | None = None
        self._lock = threading.Lock()

    def ensure(self) -> None:
        """Make sure the lease is current before claiming: registered, and renewed within a fifth
        of its length (a worker without a keeper thread, in tests, renews here)."""
        with self._lock:
            if self._renewed is not None and self._clock.now() - self._renewed < timedelta(seconds=self.seconds / 5):
                return
        self.renew()

    def renew(self) -> None:
        now = self._clock.now()
        with self._lock, self._engine.begin() as conn:
            if self._renewed is None or not conn.execute(update(DISPATCHERS).where(DISPATCHERS.c.id == self.id).values(heartbeat_at=now)).rowcount:
                conn.execute(
                    insert(DISPATCHERS).values(id=self.id, host=socket.gethostname()[:255], pid=os.getpid(), started_at=now, heartbeat_at=now)
                )
            self._renewed = now

    def end(self) -> None:
        """A clean exit: the lease goes, so whatever is still held is taken back at once."""
        with self._lock, self._engine.begin() as conn:
            conn.execute(delete(DISPATCHERS).where(DISPATCHERS.c.id == self.id))
            self._renewed = None


class Keeper:
    """Renews the lease and flushes the ledger's held writes, every ``lease / 5`` seconds."""

    def __init__(self, lease: Lease, ledger: Ledger) -> None:
        self._lease = lease
        self._ledger = ledger
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sms-keeper", daemon=True)
        self._away = False

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)

    def _run(self) -> None:
        interval = max(0.2, min(2.0, self._lease.seconds / 5))
        while not self._stop.wait(interval):
            self.tick()

    def tick(self) -> None:
        try:
            self._lease.renew()
        except Exception as error:  # noqa: BLE001 - the database may be away; try again next tick
            if not self._away:
                log.warning("could not renew the lease of %s: %s", self._lease.id, describe_outage(error) or error)
            self._away = True
            return
        if self._away:
            log.warning("lease of %s renewed again", self._lease.id)
        self._away = False
        self._ledger.flush_held()
