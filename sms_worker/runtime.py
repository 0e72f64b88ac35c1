"""Everything a pipeline step needs, built once per process and passed explicitly.

Domain functions take a :class:`Runtime` instead of reaching for globals, so tests can hand them
a fake clock, a test database and a test Redis, and Celery tasks stay a few lines long.
"""

from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

import redis
from sqlalchemy import Engine

from sms_worker.clock import SYSTEM_CLOCK, Clock
from sms_worker.config import Settings, get_settings
from sms_worker.db.engine import get_engine
from sms_worker.embedded import ensure_embedded_redis
from sms_worker.providers.http import shared_client
from sms_worker.providers.accounts import load_providers
from sms_worker.providers.registry import Account, build_accounts
from sms_worker.routing import Breaker, Router


class Waker(Protocol):
    """Tells workers that pointers are waiting (Celery wake-up tasks in production)."""

    def wake(self, batches_by_priority: dict[int, int]) -> None: ...

    def declare_queues(self) -> None: ...


class NoWaker:
    """For callers that drain the queues themselves (tests, benchmarks' producers)."""

    def wake(self, batches_by_priority: dict[int, int]) -> None:
        return None

    def declare_queues(self) -> None:
        return None


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    redis: redis.Redis
    accounts: dict[str, Account]
    router: Router
    waker: Waker
    clock: Clock = SYSTEM_CLOCK
    _pool: ThreadPoolExecutor | None = field(default=None, repr=False)

    @property
    def http_pool(self) -> ThreadPoolExecutor:
        """Concurrent provider calls within one worker process (DESIGN-NOTES trap 5)."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.settings.http_concurrency, thread_name_prefix="sms-http")
        return self._pool

    def breaker(self, account: str) -> Breaker:
        return Breaker.for_account(self.redis, account, self.settings)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        self.redis.close()


def redis_url(settings: Settings) -> str:
    return settings.redis_url or ensure_embedded_redis(settings.home)


def build_runtime(settings: Settings | None = None, *, waker: Waker | None = None, clock: Clock = SYSTEM_CLOCK) -> Runtime:
    settings = settings or get_settings()
    client = shared_client(settings.http_timeout_seconds, settings.http_concurrency)
    providers = load_providers(settings)
    return Runtime(
        settings=settings,
        engine=get_engine(settings.resolved_database_url),
        redis=redis.Redis.from_url(redis_url(settings)),
        accounts=build_accounts(providers, client),
        router=Router(providers),
        waker=waker or NoWaker(),
        clock=clock,
    )


_runtime: tuple[int, Runtime] | None = None
_lock = threading.Lock()


def process_runtime() -> Runtime:
    """The runtime of this process, with Celery wake-ups; rebuilt after a fork."""
    global _runtime
    with _lock:
        if _runtime is None or _runtime[0] != os.getpid():
            from sms_worker.tasks.app import CeleryWaker

            settings = get_settings()
            _runtime = (os.getpid(), build_runtime(settings, waker=CeleryWaker(max_pending=settings.max_pending_wakeups)))
        return _runtime[1]


def open_accounts() -> None:
    """Open every provider account of this process; a failure is logged, not raised: the
    dispatcher meets the same fault on the first message and classifies it there."""
    from sms_worker.providers.base import ProviderError

    for name, account in process_runtime().accounts.items():
        try:
            account.provider.open()
        except ProviderError as error:
            logging.getLogger("sms_worker.accounts").warning("could not open account %s: %s", name, error)
