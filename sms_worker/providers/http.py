"""The HTTP plumbing every adapter shares: one pooled client per process, one error mapping."""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from typing import Any, Iterator

import httpx

from sms_worker.providers.base import ErrorKind, ProviderError

_clients: dict[tuple[int, float, int], httpx.Client] = {}
_lock = threading.Lock()


def shared_client(timeout: float, max_connections: int) -> httpx.Client:
    """Connection pooling across every adapter in a process; a forked child gets its own."""
    key = (os.getpid(), timeout, max_connections)
    with _lock:
        client = _clients.get(key)
        if client is None:
            limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
            client = httpx.Client(timeout=httpx.Timeout(timeout), limits=limits)
            _clients[key] = client
        return client


@contextmanager
def transport_errors() -> Iterator[None]:
    """Network failures are transient whatever the provider: the request may be retried."""
    try:
        yield
    except httpx.TimeoutException as exc:
        raise ProviderError(ErrorKind.TRANSIENT, "TIMEOUT", f"no answer in time ({type(exc).__name__})") from None
    except httpx.TransportError as exc:
        raise ProviderError(ErrorKind.TRANSIENT, "CONNECTION", f"{type(exc).__name__}: {exc}") from None


def raise_for_http_status(response: httpx.Response) -> None:
    """5xx and 429 are worth retrying. 401, 403, 404 and 405 mean the account or its URL is
    wrong, for every message alike: account-wide, so the account pauses instead of failing its
    whole backlog. Other 4xx answers are this message's fault."""
    code = response.status_code
    if code < 400:
        return
    detail = response.text[:200]
    if code >= 500 or code == 429:
        raise ProviderError(ErrorKind.TRANSIENT, f"HTTP_{code}", detail or response.reason_phrase)
    raise ProviderError(ErrorKind.PERMANENT, f"HTTP_{code}", detail or response.reason_phrase, account_wide=code in (401, 403, 404, 405))


def json_object(response: httpx.Response) -> dict[str, Any]:
    """The answer as a JSON object; anything else is a provider hiccup worth retrying."""
    try:
        body = response.json()
    except ValueError:
        raise ProviderError(ErrorKind.TRANSIENT, "BAD_RESPONSE", f"not JSON: {response.text[:100]!r}") from None
    if not isinstance(body, dict):
        raise ProviderError(ErrorKind.TRANSIENT, "BAD_RESPONSE", f"not a JSON object: {response.text[:100]!r}")
    return body
