"""Everything a pipeline step needs, built once per process and passed explicitly.

Domain functions take a :class:`Runtime` instead of reaching for globals, so tests can hand them
a fake clock, a test database and a test Redis, and Celery tasks stay a few lines long.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

import httpx
import redis
from sqlalchemy import Engine

from sms_worker.clock import SYSTEM_CLOCK, Clock
from sms_worker.config import Settings, get_settings
from sms_worker.db.engine import get_engine, get_lease_engine
from sms_worker.embedded import ensure_embedded_redis
from sms_worker.outages import first_line
from sms_worker.priority import Priority
from sms_worker.providers.accounts import load_providers
from sms_worker.providers.registry import Account, AccountSettings, build_accounts
from sms_worker.providers.transport import guarded_client
from sms_worker.queues.pointers import Waker
from sms_worker.queues.wakeups import CeleryWaker
from sms_worker.routing import Breaker, Router
from sms_worker.workers.lease import Keeper, Lease, renew_every, renewal_timeout
from sms_worker.workers.write_behind import Flusher, WriteBehind


class Closes(Protocol):
    def close(self) -> None: ...


class NoWaker:
    """For callers that drain the queues themselves (tests, benchmarks' producers)."""

    def wake(self, batches_by_priority: Mapping[Priority, int]) -> None:
        return None

    def declare_queues(self) -> None:
        return None


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    redis: redis.Redis
    http_client: httpx.Client
    """Every adapter's calls go through it: one connection pool per process."""
    accounts: dict[str, Account]
    router: Router
    waker: Waker
    write_behind: WriteBehind
    lease: Lease
    clock: Clock = SYSTEM_CLOCK
    dispatch_pipeline: Closes | None = field(default=None, repr=False)
    """Built by :func:`sms_worker.dispatch.service.pipeline_of` on first use, closed with the runtime."""
    _pool: ThreadPoolExecutor | None = field(default=None, repr=False)
    _keeper: Keeper | None = field(default=None, repr=False)
    _flusher: Flusher | None = field(default=None, repr=False)

    @property
    def http_pool(self) -> ThreadPoolExecutor:
        """Concurrent provider calls within one worker process (DESIGN-NOTES trap 5)."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.settings.http_concurrency, thread_name_prefix="sms-http")
        return self._pool

    def breaker(self, account: str) -> Breaker:
        return Breaker.for_account(self.redis, account, self.settings)

    def start_keeper(self) -> None:
        """Renew this process's lease and write held outcomes in the background (a worker): two
        threads, so a flush that waits never holds up a renewal."""
        if self._keeper is None:
            self._keeper = Keeper(self.lease)
            self._keeper.start()
        if self._flusher is None:
            self._flusher = Flusher(self.write_behind, renew_every(self.lease.seconds))
            self._flusher.start()

    def close(self) -> None:
        """Stop calling, close the accounts' adapters and the HTTP client, write what is held if
        the servers allow, and end the lease."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        if self.dispatch_pipeline is not None:
            self.dispatch_pipeline.close()
        for account in self.accounts.values():
            account.adapter.close()
        self.http_client.close()
        if self._flusher is not None:
            self._flusher.stop()
        if self._keeper is not None:
            self._keeper.stop()
        try:
            if self.write_behind.flush() == 0:
                self.lease.end()
        except Exception as error:  # noqa: BLE001 - a lease left behind is taken back by the reclaimer
            logging.getLogger("sms_worker.lease").warning(
                "could not end the lease of %s (%s); the scheduler's reclaimer removes it once it has stood still for %g s",
                self.lease.id,
                first_line(error),
                self.lease.seconds,
            )
        self.redis.close()


@dataclass
class Deployment:
    """What a command that dispatches nothing needs (``sms-worker stats``, ``accounts``,
    ``accounts resume``): the settings, each configured account's settings by name, the database
    and Redis. No lease, write-behind, HTTP client or adapter: it registers no dispatcher, so it has no
    lease to end on a database that may be away, and leaves nothing for the reclaimer."""

    settings: Settings
    accounts: dict[str, AccountSettings]
    engine: Engine
    redis: redis.Redis

    def breaker(self, account: str) -> Breaker:
        return Breaker.for_account(self.redis, account, self.settings)

    def close(self) -> None:
        self.redis.close()


def redis_url(settings: Settings) -> str:
    return settings.redis_url or ensure_embedded_redis(settings.home)


def build_deployment(settings: Settings | None = None) -> Deployment:
    """The :class:`Deployment` of ``settings`` (default: this process's): the providers file read
    (:class:`~sms_worker.providers.accounts.ProvidersFileError`) before Redis is reached or an
    embedded one started."""
    settings = settings or get_settings()
    accounts = load_providers(settings).accounts
    return Deployment(settings, accounts, get_engine(settings.resolved_database_url), redis.Redis.from_url(redis_url(settings)))


def build_runtime(settings: Settings | None = None, *, waker: Waker | None = None, clock: Clock = SYSTEM_CLOCK) -> Runtime:
    settings = settings or get_settings()
    providers = load_providers(settings)
    client = guarded_client(settings.http_timeout_seconds, settings.max_response_bytes)
    engine = get_engine(settings.resolved_database_url)
    connection = redis.Redis.from_url(redis_url(settings))
    return Runtime(
        settings=settings,
        engine=engine,
        redis=connection,
        http_client=client,
        accounts=build_accounts(providers, client),
        router=Router(providers),
        waker=waker or NoWaker(),
        write_behind=WriteBehind(engine, connection, clock),
        lease=Lease(get_lease_engine(settings.resolved_database_url, renewal_timeout(settings.lease_seconds)), clock, settings.lease_seconds),
        clock=clock,
    )


_runtime: Runtime | None = None
_lock = threading.Lock()
_inherited: list[Runtime] = []
"""Runtimes a forked child inherited: kept, never closed nor collected, for their connections
are still the parent's."""


def _forget_inherited_runtime() -> None:
    global _runtime, _lock
    _lock = threading.Lock()
    if _runtime is not None:
        _inherited.append(_runtime)
    _runtime = None


os.register_at_fork(after_in_child=_forget_inherited_runtime)


def process_runtime() -> Runtime:
    """The runtime of this process, waking Celery's workers (:class:`~sms_worker.queues.wakeups.CeleryWaker`,
    which needs neither Celery nor the task modules), built on first use. Producers, the
    scheduler and each worker process share it; a forked child builds its own (Celery's
    ``worker_process_init`` does it as a pool process starts: ``sms_worker.tasks.process``)."""
    global _runtime
    with _lock:
        if _runtime is None:
            settings = get_settings()
            _runtime = build_runtime(settings, waker=CeleryWaker(redis_url(settings), max_pending=settings.max_pending_wakeups))
        return _runtime
