"""Lua scripts shipped as package files, registered once per client."""

from __future__ import annotations

import threading
import weakref
from functools import cache
from importlib.resources import files

import redis
from redis.commands.core import Script

_registered: weakref.WeakKeyDictionary[redis.Redis, dict[tuple[str, str], Script]] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


@cache
def _source(package: str, name: str) -> str:
    return files(package).joinpath(name).read_text()


def load_script(client: redis.Redis, package: str, name: str) -> Script:
    """The script bound to ``client``; hot paths call this per message, so it is made once."""
    with _lock:
        scripts = _registered.setdefault(client, {})
        script = scripts.get((package, name))
        if script is None:
            script = scripts[(package, name)] = client.register_script(_source(package, name))
        return script


def text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
