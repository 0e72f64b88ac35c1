"""A live worker keeps its lease whatever else it waits for (issue 15, kind 1).

The lease is renewed by a thread that waits for nothing else the worker does: not a flush of
held outcomes (held up by a row lock, or by a Redis that does not answer), not the shared
connection pool (taken by other threads). Each test runs a worker's real runtime with its
keeper threads, on the system clock, against real Redis and the real database, and reads the
lease's heartbeat from the database as the reclaimer does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import datetime
from functools import partial

import pytest
from conftest import wait_until
from sqlalchemy import Engine, create_engine, select, text
from sqlalchemy.pool import NullPool

from sms_worker.db.engine import POOL_OVERFLOW, POOL_SIZE
from sms_worker.dispatch.service import dispatch_batch
from sms_worker.embedded import free_port
from sms_worker.lifecycle.tables import MESSAGES
from sms_worker.priority import Priority
from sms_worker.producer import send_sms
from sms_worker.queues.pointers import Pointer, is_scheduled
from sms_worker.runtime import NoWaker, Runtime, build_runtime
from sms_worker.workers.lease import DISPATCHERS

RECIPIENT = "+421900123456"
LEASE = 2.0
"""Seconds: renewed every 0.4 s; a lease not renewed for this long is lost."""


@pytest.fixture
def worker(settings_for, redis_client) -> Iterator[Callable[..., Runtime]]:
    """A worker process's runtime on the system clock (its keeper threads not started yet)."""
    made: list[Runtime] = []

    def make(**overrides: object) -> Runtime:
        rt = build_runtime(settings_for(lease_seconds=LEASE, **overrides), waker=NoWaker())
        made.append(rt)
        return rt

    yield make
    for rt in made:
        rt.close()


@pytest.fixture
def reader(database_url) -> Iterator[Engine]:
    """The test's own way into the database, sharing nothing with the worker's."""
    url = database_url.replace("postgresql://", "postgresql+psycopg://", 1)
    engine = create_engine(url, poolclass=NullPool)
    yield engine
    engine.dispose()


def heartbeat(reader: Engine, rt: Runtime) -> datetime | None:
    with reader.connect() as conn:
        return conn.execute(select(DISPATCHERS.c.heartbeat_at).where(DISPATCHERS.c.id == rt.lease.id)).scalar()


def assert_renewed_throughout(reader: Engine, rt: Runtime, renewals: int = 5) -> None:
    """The heartbeat moves ``renewals`` times within ``renewals`` leases: every renewal no later
    than a lease after the one before, so a reclaimer never sees it a lease old."""
    seen = {heartbeat(reader, rt)}

    def renewed(before: int) -> bool:
        seen.add(heartbeat(reader, rt))
        return len(seen) > before

    for n in range(renewals):
        wait_until(partial(renewed, len(seen)), LEASE, 0.02, f"renewal {n + 1} within a lease of the last")


def hold_an_outcome(rt: Runtime, sandbox) -> object:
    """Send one message, refused for now (HTTP 503: retried later), while the database is away
    for the write-behind: the outcome (the row and its pointer to the retry) is held, not written."""
    sandbox.add_fault(endpoint="send_message", fault="http_status", status=503)
    message_id = send_sms(RECIPIENT, "outcome held", runtime=rt)
    away = create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/none", connect_args={"connect_timeout": 2})
    here, rt.write_behind._engine = rt.write_behind._engine, away
    try:
        dispatch_batch(rt)
    finally:
        rt.write_behind._engine = here
    assert rt.write_behind.holding == 1
    return message_id


def status_of(reader: Engine, message_id: object) -> str:
    with reader.connect() as conn:
        return conn.execute(select(MESSAGES.c.status).where(MESSAGES.c.id == message_id)).scalar_one()


def test_the_lease_is_renewed_while_a_flush_of_held_outcomes_waits_on_a_row_lock(worker, reader, sandbox, database_url):
    """The cause found for the chaos run's 28 ``unknown``: one thread renewed the lease and then
    flushed the outcomes held during the outage, so while a flush waited (here on a row lock,
    there behind the dispatch thread's own flush after the database came back), no renewal came,
    and the reclaimer took the claims of a live worker."""
    if database_url.startswith("sqlite"):
        pytest.skip("SQLite has one writer: a lock on a row is a lock on every write, the lease's too")
    rt = worker()
    message_id = hold_an_outcome(rt, sandbox)
    with reader.connect() as locker:
        locker.execute(select(MESSAGES.c.id).where(MESSAGES.c.id == message_id).with_for_update())
        rt.start_keeper()
        blocked = text("SELECT count(*) FROM pg_stat_activity WHERE :locker = ANY(pg_blocking_pids(pid))").bindparams(
            locker=locker.execute(text("SELECT pg_backend_pid()")).scalar_one()
        )

        def flush_waits() -> bool:
            with reader.connect() as conn:
                return conn.execute(blocked).scalar_one() >= 1

        wait_until(flush_waits, 10, 0.02, "the flush to wait on the row lock")

        assert_renewed_throughout(reader, rt)

        assert flush_waits(), "the flush waited all along"
        locker.rollback()
    wait_until(lambda: rt.write_behind.holding == 0, 10, 0.05, "the held outcome to be written once the lock is gone")
    assert status_of(reader, message_id) == "retrying"


def test_the_lease_is_renewed_while_a_flush_waits_on_a_redis_that_does_not_answer(worker, reader, sandbox, own_redis):
    """The sibling on Redis: a server that accepts and never answers (stopped, or a full network
    path) holds a flush for as long as it lasts; the lease goes on being renewed meanwhile."""
    rt = worker(redis_url=own_redis.url)
    message_id = hold_an_outcome(rt, sandbox)
    own_redis.pause()
    try:
        rt.start_keeper()
        wait_until(lambda: status_of(reader, message_id) == "retrying", 10, 0.02, "the flush to write the row and wait on Redis for its pointer")

        assert_renewed_throughout(reader, rt)
    finally:
        own_redis.resume()
    wait_until(lambda: rt.write_behind.holding == 0, 10, 0.05, "the pointer to be written once Redis answers")
    assert is_scheduled(rt.redis, Pointer(Priority.STANDARD, message_id))


def test_the_lease_is_renewed_while_other_threads_hold_every_pooled_connection(worker, reader):
    """A provider look-up in each HTTP thread, a dispatch batch, a rebuild: however many
    connections the rest of the worker holds from the shared pool, renewal needs none of them."""
    rt = worker()
    held = [rt.engine.connect() for _ in range(POOL_SIZE + POOL_OVERFLOW)]
    try:
        rt.start_keeper()

        assert_renewed_throughout(reader, rt)
    finally:
        for conn in held:
            conn.close()


def close_with_the_database_away(rt, caplog) -> None:
    """Close ``rt`` while its lease's database refuses connections, its warnings captured."""
    here, rt.lease._engine = rt.lease._engine, create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/none")
    try:
        with caplog.at_level(logging.WARNING, logger="sms_worker.lease"):
            rt.close()
    finally:
        rt.lease._engine = here


def test_a_worker_that_cannot_end_its_lease_says_why_and_who_takes_it_back(worker, reader, caplog):
    """The warning used to stop mid-sentence ("...; the sweep will") and give no reason."""
    rt = worker()
    rt.lease.renew()
    close_with_the_database_away(rt, caplog)

    [said] = [record.getMessage() for record in caplog.records if record.name == "sms_worker.lease"]
    assert said.startswith(f"could not end the lease of {rt.lease.id} (connection failed: "), said
    assert said.endswith("Connection refused); the scheduler's reclaimer removes it once it has stood still for 2 s"), said
    assert heartbeat(reader, rt) is not None, "the lease is left for the reclaimer"


def test_a_runtime_that_claimed_nothing_has_no_lease_to_end(worker, caplog):
    """A producer's or the callback receiver's runtime never registers a lease: closing it asks
    nothing of the database, which may be away."""
    rt = worker()
    close_with_the_database_away(rt, caplog)

    assert [record.getMessage() for record in caplog.records if record.name == "sms_worker.lease"] == []
