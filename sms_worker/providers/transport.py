"""An httpx transport no provider can hold: a wall-clock deadline per exchange and a cap on answers.

httpx's timeouts are per operation: a read timeout starts again with every byte, so a server
that answers ``200`` and then sends its body one byte a second keeps a caller for as long as it
likes, and one that sends a 100 MB body has it read into memory. This transport keeps httpx's
two-method contract (``handle_request``, ``close``) and adds two rules:

- **A deadline for the whole exchange**: connecting, writing, waiting for the pool and every
  read share one moment by which the exchange is over. The socket operations underneath are
  given only the time left (a network backend that clamps their timeouts), so the deadline
  holds even while an answer trickles in a byte at a time. Past it, the read in progress fails
  with httpx's ``ReadTimeout`` (``ConnectTimeout`` before the request went out), which the
  adapters already classify. A caller may set a tighter deadline for several requests at once
  with :func:`deadline` (the dispatcher does, around one adapter call and its re-login).
- **A cap on the answer's size** (``max_body`` bytes, as sent, before any decoding): a longer
  body is cut off at the cap and :class:`ResponseTooLarge` is raised, so memory does not grow
  with what a provider sends. Clients built here ask for ``Accept-Encoding: identity``, so the
  bytes counted are the bytes decoded.

Clients built here keep no cookies (:class:`_NoCookies`): every API here takes its credentials
or session in the request itself, and one client serves every account of a process, so a
cookie one account's answer set would otherwise ride along on another account's requests to
the same host. Reading ``Set-Cookie`` was also a tenth of the CPU of a call. URLs an adapter
calls again and again are parsed once (:func:`parsed_url`).
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import httpcore
import httpx

from sms_worker.errors import SmsWorkerError

_local = threading.local()


class ResponseTooLarge(SmsWorkerError, httpx.TransportError):
    """The provider's answer went past the size cap; it was cut off unread. ``str()``: ``longer
    than <cap> bytes; cut off``; its ``request`` says whose answer it was."""


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Every HTTP exchange made by this thread inside the block ends within ``seconds`` from
    now (or sooner, by the transport's own per-request deadline)."""
    outer = getattr(_local, "deadline", None)
    mine = time.monotonic() + seconds
    _local.deadline = mine if outer is None else min(outer, mine)
    try:
        yield
    finally:
        _local.deadline = outer


def _time_left(timeout: float | None, expired: type[Exception]) -> float | None:
    """``timeout`` shortened to what the current deadline leaves; ``expired`` once it has passed."""
    until = getattr(_local, "deadline", None)
    if until is None:
        return timeout
    left = until - time.monotonic()
    if left <= 0:
        raise expired("the exchange's deadline has passed")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _time_left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _time_left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None) -> httpcore.NetworkStream:
        return _DeadlineStream(self._inner.start_tls(ssl_context, server_hostname, _time_left(timeout, httpcore.ConnectTimeout)))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's own socket backend, each operation given no more than the deadline leaves."""

    def __init__(self) -> None:
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self, host: str, port: int, timeout: float | None = None, local_address: str | None = None, socket_options: Any = None
    ) -> httpcore.NetworkStream:
        timeout = _time_left(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._inner.connect_tcp(host, port, timeout, local_address, socket_options))

    def connect_unix_socket(self, path: str, timeout: float | None = None, socket_options: Any = None) -> httpcore.NetworkStream:
        return _DeadlineStream(self._inner.connect_unix_socket(path, _time_left(timeout, httpcore.ConnectTimeout), socket_options))


class _BoundedBody(httpx.SyncByteStream):
    """The answer's body, read under its exchange's deadline and cut off past ``limit`` bytes."""

    def __init__(self, inner: httpx.SyncByteStream, until: float, limit: int, request: httpx.Request) -> None:
        self._inner, self._until, self._limit, self._request = inner, until, limit, request

    def __iter__(self) -> Iterator[bytes]:
        received = 0
        chunks = iter(self._inner)
        while True:
            outer = getattr(_local, "deadline", None)
            _local.deadline = self._until
            try:
                chunk = next(chunks, None)
            finally:
                _local.deadline = outer
            if chunk is None:
                return
            received += len(chunk)
            if received > self._limit:
                self._inner.close()
                raise ResponseTooLarge(f"longer than {self._limit} bytes; cut off", request=self._request)
            yield chunk

    def close(self) -> None:
        self._inner.close()


class GuardedTransport(httpx.HTTPTransport):
    """httpx's own transport over a connection pool whose sockets obey the exchange's deadline.

    ``timeout`` is the deadline of one request (seconds, from the moment it is handed over);
    ``max_body`` the largest answer read (bytes); ``ssl_context`` may be shared by several
    transports (building one reads the system's certificates: milliseconds of CPU)."""

    def __init__(self, *, timeout: float, max_body: int, limits: httpx.Limits, ssl_context: ssl.SSLContext | None = None) -> None:
        ssl_context = ssl_context or httpx.create_ssl_context()
        super().__init__(verify=ssl_context, limits=limits)
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_DeadlineBackend(),
        )
        self._timeout = timeout
        self._max_body = max_body

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        outer = getattr(_local, "deadline", None)
        until = time.monotonic() + self._timeout
        until = until if outer is None else min(outer, until)
        _local.deadline = until
        left = max(0.0, until - time.monotonic())
        request.extensions["timeout"] = {
            name: left if value is None else min(value, left) for name, value in request.extensions.get("timeout", {}).items()
        }
        try:
            response = super().handle_request(request)
        finally:
            _local.deadline = outer
        assert isinstance(response.stream, httpx.SyncByteStream)
        response.stream = _BoundedBody(response.stream, until, self._max_body, request)
        return response


class PoolPerThread(httpx.BaseTransport):
    """httpx's two-method transport contract over one small connection pool per thread.

    httpcore's connection pool looks at every connection it holds for each request it assigns
    (and, for each idle connection, at every connection again): its cost grows with the square
    of its connections, and with a few hundred calls in flight one shared pool costs more CPU
    than the calls. A thread makes one exchange at a time, so a pool of its own needs only a
    few connections (:data:`CONNECTIONS_PER_THREAD`), one kept alive for its next call. ``make`` builds a thread's transport on its first request; :meth:`close` closes them
    all."""

    def __init__(self, make: Callable[[], httpx.BaseTransport]) -> None:
        self._make = make
        self._local = threading.local()
        self._lock = threading.Lock()
        self._transports: list[httpx.BaseTransport] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        transport = getattr(self._local, "transport", None)
        if transport is None:
            transport = self._local.transport = self._make()
            with self._lock:
                self._transports.append(transport)
        return transport.handle_request(request)

    def close(self) -> None:
        with self._lock:
            transports, self._transports = self._transports, []
        for transport in transports:
            transport.close()


CONNECTIONS_PER_THREAD = 4
"""Connections a thread may hold (a call and its re-login to different hosts); it keeps one
alive between calls, so the process holds about as many sockets as threads, whatever the
number of providers."""


class _NoCookies(httpx.Cookies):
    """A cookie store that keeps none: a response's ``Set-Cookie`` is not read (see the module
    docstring) and setting one raises ValueError. Always empty, so no request carries a
    ``Cookie`` header."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None

    def set(self, name: str, value: str, domain: str = "", path: str = "/") -> None:
        raise ValueError("this client keeps no cookies")


class _CookielessClient(httpx.Client):
    """httpx's client with :class:`_NoCookies` for its cookie store; it refuses cookies given to it."""

    _no_cookies = _NoCookies()

    @property
    def cookies(self) -> httpx.Cookies:
        return self._no_cookies

    @cookies.setter
    def cookies(self, cookies: object) -> None:
        if cookies:
            raise ValueError("this client keeps no cookies")


@lru_cache(maxsize=1024)
def parsed_url(url: str) -> httpx.URL:
    """``url`` parsed once: httpx parses a URL given as text on every request (a twentieth of
    the CPU of a call). Immutable, so shared by every thread; the most recent 1024 are kept."""
    return httpx.URL(url)


def guarded_client(timeout: float, max_body: int) -> httpx.Client:
    """A pooled client whose every exchange ends within ``timeout`` seconds and reads at most
    ``max_body`` bytes of answer, and which keeps no cookies; each thread has its own pool
    (:class:`PoolPerThread`)."""
    limits = httpx.Limits(max_connections=CONNECTIONS_PER_THREAD, max_keepalive_connections=1)
    shared = httpx.create_ssl_context()
    return _CookielessClient(
        transport=PoolPerThread(lambda: GuardedTransport(timeout=timeout, max_body=max_body, limits=limits, ssl_context=shared)),
        timeout=httpx.Timeout(timeout),
        headers={"Accept-Encoding": "identity"},
    )
