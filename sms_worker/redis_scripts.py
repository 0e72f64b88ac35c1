"""Lua scripts shipped as package files, registered once per client."""

from __future__ import annotations

from functools import cache
from importlib.resources import files

import redis
from redis.commands.core import Script


@cache
def _source(package: str, name: str) -> str:
    return files(package).joinpath(name).read_text()


def load_script(client: redis.Redis, package: str, name: str) -> Script:
    return client.register_script(_source(package, name))


def text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
