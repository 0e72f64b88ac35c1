"""Engines and sessions, one engine per process and URL.

SQLite runs in WAL mode with a busy timeout so several worker processes can share the file;
PostgreSQL is used as it is. A forked child (a Celery pool process) forgets the engines it
inherited without closing their connections, which still belong to its parent (SQLAlchemy's
advice for ``os.fork``: ``dispose(close=False)``), and builds its own on first use.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url

_engines: dict[tuple[str, float | None], Engine] = {}
_lock = threading.Lock()


def _forget_inherited_engines() -> None:
    global _lock
    _lock = threading.Lock()
    for engine in _engines.values():
        engine.dispose(close=False)
    _engines.clear()


os.register_at_fork(after_in_child=_forget_inherited_engines)


SQLITE_BUSY_SECONDS = 30.0
POOL_SIZE = 10
POOL_OVERFLOW = 20
"""The shared pool of each engine: connections kept, and opened beyond them at busy moments."""


def _configure_sqlite(busy_seconds: float) -> Callable[[Any, object], None]:
    def configure(dbapi_connection: Any, _record: object) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={round(busy_seconds * 1000)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return configure


def get_engine(url: str) -> Engine:
    """One engine per URL and per process: a forked worker must not reuse its parent's sockets."""
    return _engine_of(url, None)


def get_lease_engine(url: str, timeout: float) -> Engine:
    """The engine a worker's lease is renewed on, apart from every other use of the database:
    one connection of its own, so a renewal never waits for the shared pool (taken by HTTP
    threads' look-ups, a flush of held outcomes, a rebuild), and every step bounded by
    ``timeout`` seconds (PostgreSQL: connect, statement, lock wait and unacknowledged sends;
    SQLite: the wait for the write lock), so a renewal that hangs is abandoned in time for the
    next one. One per URL and timeout and per process, like :func:`get_engine`."""
    return _engine_of(url, timeout)


def _engine_of(url: str, timeout: float | None) -> Engine:
    with _lock:
        engine = _engines.get((url, timeout))
        if engine is None:
            engine = _engines[(url, timeout)] = _create_engine(url, timeout)
        return engine


def _create_engine(url: str, timeout: float | None) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        busy = SQLITE_BUSY_SECONDS if timeout is None else timeout
        own = _pool_options(timeout) if path and path != ":memory:" else {}
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": busy}, **own)
        event.listen(engine, "connect", _configure_sqlite(busy))
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if timeout is None:
        return create_engine(url, pool_pre_ping=True, **_pool_options(timeout))
    milliseconds = max(1, round(timeout * 1000))
    given = make_url(url).query.get("options", ())
    options = [given] if isinstance(given, str) else list(given)
    bounded = {
        # libpq counts whole seconds and takes less than 2 as 2.
        "connect_timeout": max(2, math.ceil(timeout)),
        # After the URL's own options (a search_path), which this argument would otherwise replace.
        "options": " ".join([*options, f"-c statement_timeout={milliseconds} -c lock_timeout={milliseconds}"]),
        "tcp_user_timeout": milliseconds,
        "keepalives_idle": max(1, math.ceil(timeout)),
        "keepalives_interval": 1,
        "keepalives_count": 2,
    }
    return create_engine(url, connect_args=bounded, pool_pre_ping=True, **_pool_options(timeout))


def _pool_options(timeout: float | None) -> dict[str, Any]:
    """The shared pool, or for a bounded engine a single connection and a checkout that waits no
    longer than the engine's timeout."""
    if timeout is None:
        return {"pool_size": POOL_SIZE, "max_overflow": POOL_OVERFLOW}
    return {"pool_size": 1, "max_overflow": 0, "pool_timeout": timeout}


def dispose_engines() -> None:
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()
