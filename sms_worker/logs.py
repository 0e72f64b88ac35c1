"""Logging helpers: phone numbers are masked wherever they reach a log line, and a URL is named
by its origin (never its credentials or query)."""

from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit

_PHONE_LIKE = re.compile(r"\+?\d{8,15}")


def mask_phone(number: str | None) -> str:
    """Keep the country and network prefix and the last three digits: enough to debug, not to dial."""
    if not number:
        return "-"
    if len(number) <= 7:
        return "*" * len(number)
    return f"{number[:6]}{'*' * (len(number) - 9)}{number[-3:]}"


def mask_numbers(text: str) -> str:
    """Mask every phone-like run of digits in free text (a provider's error message may quote the number)."""
    return _PHONE_LIKE.sub(lambda match: mask_phone(match.group()), text)


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(f"sms_worker.{name}")


def origin(url: str) -> str:
    """Where ``url`` points, as a text a user may read: its origin (RFC 6454),
    ``scheme://host[:port]`` as written, without its user info, path, query or fragment, where
    credentials and tokens travel (a session-key login's password, a callback's token)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
