"""Logging helpers: phone numbers are masked wherever they reach a log line."""

from __future__ import annotations

import logging


def mask_phone(number: str | None) -> str:
    """Keep the country and network prefix and the last three digits: enough to debug, not to dial."""
    if not number:
        return "-"
    if len(number) <= 7:
        return "*" * len(number)
    return f"{number[:6]}{'*' * (len(number) - 9)}{number[-3:]}"


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(f"sms_worker.{name}")
