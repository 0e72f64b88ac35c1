"""The forms of URL and listening address sms_worker takes: what the settings, the providers file
and the command line check, so that a wrong one is refused when it is read, naming its field,
instead of failing at the first connection.

Each ``*_problem`` function returns why a value cannot be used (a sentence to follow its field's
name, without repeating the value: a URL may hold a password), or None when it can.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

HOST_NAME = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*\.?")
"""A host name: dot-separated labels of letters, digits and hyphens, none beginning or ending
with a hyphen (RFC 1123, section 2.1)."""


def http_url_problem(value: str) -> str | None:
    """An absolute ``http`` or ``https`` URL with a host (RFC 3986 scheme and authority), as a
    provider's API is reached at: ``127.0.0.1:8025/dexatel`` (no scheme) is refused."""
    url = urlsplit(value)
    if url.scheme not in ("http", "https") or not url.netloc:
        return "must be an http(s) URL such as 'https://api.example.com/v1'"
    return None


def redis_url_problem(value: str) -> str | None:
    """A URL redis-py connects with (:func:`redis.connection.parse_url`): ``redis://``,
    ``rediss://`` (TLS) or ``unix://``, with a numeric port and database if any."""
    import redis.connection  # not at the top: the command line checks listening addresses without redis

    try:
        redis.connection.parse_url(value)
    except ValueError:
        return "must be a Redis URL: redis://HOST:6379/0, rediss://HOST:6379/0 (TLS) or unix:///PATH/redis.sock"
    return None


def listen_address_problem(value: str) -> str | None:
    """An IP address (v4 or v6) or a host name for a server to listen on, such as ``127.0.0.1``
    or ``0.0.0.0`` (every interface): no scheme, port or path, which have settings of their own."""
    try:
        ipaddress.ip_address(value)
    except ValueError:
        if len(value) > 253 or not HOST_NAME.fullmatch(value):
            return "must be an IP address or a host name to listen on, such as 127.0.0.1 or 0.0.0.0 (no scheme, port or path)"
    return None
