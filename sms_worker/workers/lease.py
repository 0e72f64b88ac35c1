"""The lease a worker process holds while it may hold claims, and the thread that keeps it.

Each process that dispatches is a row of ``sms_dispatcher`` (host, pid, a random suffix) whose
``heartbeat_at`` it renews every ``lease_seconds / 5`` (between 0.2 s and 2 s). The messages it
claims name it. Once the scheduler's reclaimer has watched a heartbeat stand still for
``lease_seconds`` it takes those claims back (:class:`sms_worker.recovery.Reclaimer`): within
seconds of a ``kill -9``, not minutes.

**Renewal waits for nothing else the worker does.** The :class:`Keeper` thread does nothing but
renew, on a database connection of its own (:func:`sms_worker.db.engine.get_lease_engine`),
every step bounded by half a lease, so neither the shared pool (HTTP threads' look-ups, a
dispatch batch), nor the write-behind's lock (a flush of held outcomes waiting on a row lock or
on a Redis that does not answer), nor a connection that hangs after an outage can hold it up: a
renewal that fails or is abandoned is tried again a fifth of a lease later. Held outcomes are
flushed by a thread of their own (:class:`sms_worker.workers.write_behind.Flusher`). Before, one
thread renewed and then flushed, and a flush that waited held every later renewal with it.
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
from sms_worker.logs import get_logger
from sms_worker.outages import describe_outage
from sms_worker.workers.ticker import Ticker

log = get_logger("lease")
DISPATCHERS = table_of(Dispatcher)


def renew_every(lease_seconds: float) -> float:
    """Seconds between renewals: a fifth of the lease, at least 0.2 s and at most 2 s."""
    return max(0.2, min(2.0, lease_seconds / 5))


def renewal_timeout(lease_seconds: float) -> float:
    """The longest one renewal may take (connect, statement, lock wait): half the lease, so one
    that hangs is abandoned with time left for another before the lease runs out."""
    return lease_seconds / 2


class Lease:
    """This process's entry in ``sms_dispatcher``; :attr:`id` goes into the rows it claims.

    ``engine`` should be the lease's own (:func:`~sms_worker.db.engine.get_lease_engine`): it is
    used for nothing else."""

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
        """Write a new heartbeat (registering the lease if it has no row, as after the reclaimer
        removed a lease it judged lost); raises if the database is away or too slow."""
        with self._lock, self._engine.begin() as conn:
            now = self._clock.now()
            if self._renewed is None or not conn.execute(update(DISPATCHERS).where(DISPATCHERS.c.id == self.id).values(heartbeat_at=now)).rowcount:
                conn.execute(
                    insert(DISPATCHERS).values(id=self.id, host=socket.gethostname()[:255], pid=os.getpid(), started_at=now, heartbeat_at=now)
                )
            self._renewed = now

    def end(self) -> None:
        """A clean exit, once nothing is held: the lease goes (were anything still held, the
        reclaimer would take it back a lease later, as from a lost worker). A lease never
        registered (a process that claimed nothing: a producer, the callback receiver) has no
        row, and nothing is asked of the database."""
        with self._lock:
            if self._renewed is None:
                return
        with self._lock, self._engine.begin() as conn:
            conn.execute(delete(DISPATCHERS).where(DISPATCHERS.c.id == self.id))
            self._renewed = None


class Keeper(Ticker):
    """Renews the lease every :func:`renew_every` seconds (thread ``sms-lease``), and does nothing else."""

    def __init__(self, lease: Lease) -> None:
        super().__init__("sms-lease", renew_every(lease.seconds))
        self._lease = lease
        self._away = False

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
