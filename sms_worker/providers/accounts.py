"""Provider accounts and routing rules: the TOML file ``SMS_WORKER_PROVIDERS_FILE`` declares them.

Without a file, the deployment has one account, ``telekom-sk``, described by the
``SMS_WORKER_TELEKOM_SK_*`` variables, and every message goes to it. A file looks like
``providers.example.toml``: one ``[accounts.NAME]`` table per account, then ``[[routes]]`` rules
(by destination country or number prefix, the first that matches wins) and ``[routing]
default``. Each rule and the default map account names to weights.

Credentials are given inline (``api_key = "..."``) or, better, by the name of the environment
variable holding them (``api_key_env = "DEXATEL_KEY"``). Errors name the file and the field.
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sms_worker.config import Settings
from sms_worker.errors import SmsWorkerError
from sms_worker.providers.base import AccountConfig

CREDENTIAL_KEYS = ("token", "api_key", "username", "password")
_ACCOUNT_KEYS = frozenset({"type", "base_url", "rate", "burst", "senders", "alphanumeric_countries"})
_ROUTE_KEYS = frozenset({"countries", "prefixes", "accounts"})


class ProvidersFileError(SmsWorkerError, ValueError):
    """The providers file cannot be used; the message names the file, the field and the reason."""


@dataclass(frozen=True, slots=True)
class AccountSpec:
    """One account: how to build its adapter, and the limits routing and dispatch apply to it."""

    config: AccountConfig
    rate: float
    burst: int
    senders: frozenset[str] | None = None
    """Sender IDs this account may use; None: any."""
    alphanumeric_countries: frozenset[str] | None = None
    """Destination countries that accept an alphanumeric sender from this account; None: all."""


@dataclass(frozen=True, slots=True)
class RouteRule:
    countries: frozenset[str]
    prefixes: tuple[str, ...]
    weights: Mapping[str, float]

    def matches(self, recipient: str, country: str | None) -> bool:
        return (country is not None and country in self.countries) or recipient.startswith(self.prefixes)


@dataclass(frozen=True, slots=True)
class ProvidersConfig:
    accounts: Mapping[str, AccountSpec]
    rules: tuple[RouteRule, ...]
    default: Mapping[str, float]


def load_providers(settings: Settings, environ: Mapping[str, str] = os.environ) -> ProvidersConfig:
    if settings.providers_file is None:
        return _single_telekom_sk(settings)
    path = Path(settings.providers_file)
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ProvidersFileError(f"providers file {path}: cannot be read ({error.strerror})") from None
    except tomllib.TOMLDecodeError as error:
        raise ProvidersFileError(f"providers file {path}: not valid TOML ({error})") from None
    return parse_providers(document, environ, source=str(path))


def parse_providers(document: Mapping[str, Any], environ: Mapping[str, str], source: str = "providers file") -> ProvidersConfig:
    reader = _Reader(source)
    tables = document.get("accounts")
    if not isinstance(tables, dict) or not tables:
        raise reader.error("accounts", "at least one [accounts.NAME] table is required")
    accounts = {name: _account(reader, name, table, environ) for name, table in tables.items()}
    unknown = set(document) - {"accounts", "routes", "routing"}
    if unknown:
        raise reader.error(sorted(unknown)[0], "is not a section of the providers file")
    routes = document.get("routes", [])
    if not isinstance(routes, list):
        raise reader.error("routes", "must be an array of tables ([[routes]])")
    rules = tuple(_rule(reader, f"routes[{n}]", route, accounts) for n, route in enumerate(routes))
    routing = document.get("routing", {})
    if not isinstance(routing, dict) or set(routing) - {"default"}:
        raise reader.error("routing", "may hold only `default`")
    default = _weights(reader, "routing.default", routing.get("default", dict.fromkeys(accounts, 1.0)), accounts)
    return ProvidersConfig(accounts, rules, default)


class _Reader:
    def __init__(self, source: str) -> None:
        self.source = source

    def error(self, field: str, reason: str) -> ProvidersFileError:
        return ProvidersFileError(f"{self.source}: {field}: {reason}")


def _account(reader: _Reader, name: str, table: Any, environ: Mapping[str, str]) -> AccountSpec:
    where = f"accounts.{name}"
    if not isinstance(table, dict):
        raise reader.error(where, "must be a table")
    for required in ("type", "base_url"):
        if not isinstance(table.get(required), str) or not table[required]:
            raise reader.error(f"{where}.{required}", "is required (a non-empty string)")
    rate = table.get("rate", 10)
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 < rate < math.inf:
        raise reader.error(f"{where}.rate", "must be a positive number of messages per second")
    burst = table.get("burst", max(1, math.ceil(rate)))
    if isinstance(burst, bool) or not isinstance(burst, int) or burst < 1:
        raise reader.error(f"{where}.burst", "must be a positive integer")
    credentials: dict[str, str] = {}
    options: dict[str, Any] = {}
    for key, value in table.items():
        if key in _ACCOUNT_KEYS - {"senders", "alphanumeric_countries"}:
            continue
        if key.endswith("_env") and key.removesuffix("_env") in CREDENTIAL_KEYS:
            if not isinstance(value, str) or value not in environ:
                raise reader.error(f"{where}.{key}", f"names the environment variable {value!r}, which is not set")
            credentials[key.removesuffix("_env")] = environ[value]
        elif key in CREDENTIAL_KEYS:
            if not isinstance(value, str):
                raise reader.error(f"{where}.{key}", "must be a string")
            credentials[key] = value
        else:
            options[key] = value
    config = AccountConfig(name, table["type"], table["base_url"], credentials, options)
    return AccountSpec(
        config,
        float(rate),
        burst,
        _string_set(reader, f"{where}.senders", table.get("senders")),
        _string_set(reader, f"{where}.alphanumeric_countries", table.get("alphanumeric_countries"), upper=True),
    )


def _string_set(reader: _Reader, where: str, value: Any, *, upper: bool = False) -> frozenset[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise reader.error(where, "must be a list of non-empty strings")
    return frozenset(item.upper() if upper else item for item in value)


def _rule(reader: _Reader, where: str, route: Any, accounts: Mapping[str, AccountSpec]) -> RouteRule:
    if not isinstance(route, dict):
        raise reader.error(where, "must be a table")
    unknown = set(route) - _ROUTE_KEYS
    if unknown:
        raise reader.error(f"{where}.{sorted(unknown)[0]}", "is not a route field (countries, prefixes, accounts)")
    countries = _string_set(reader, f"{where}.countries", route.get("countries")) or frozenset()
    prefixes = _string_set(reader, f"{where}.prefixes", route.get("prefixes")) or frozenset()
    if not countries and not prefixes:
        raise reader.error(where, "needs `countries` or `prefixes` to match on")
    if any(not prefix.startswith("+") or not prefix[1:].isdigit() for prefix in prefixes):
        raise reader.error(f"{where}.prefixes", "must be E.164 prefixes such as \"+421\"")
    if "accounts" not in route:
        raise reader.error(f"{where}.accounts", "is required: account names with weights")
    return RouteRule(frozenset(c.upper() for c in countries), tuple(sorted(prefixes)), _weights(reader, f"{where}.accounts", route["accounts"], accounts))


def _weights(reader: _Reader, where: str, value: Any, accounts: Mapping[str, AccountSpec]) -> dict[str, float]:
    if isinstance(value, list):
        value = dict.fromkeys(value, 1.0)
    if not isinstance(value, dict) or not value:
        raise reader.error(where, "must map account names to weights, e.g. { dexatel = 3, telefoon = 1 }")
    for name, weight in value.items():
        if name not in accounts:
            raise reader.error(where, f"{name!r} is not an account ({', '.join(sorted(accounts))})")
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not 0 < weight < math.inf:
            raise reader.error(f"{where}.{name}", "weight must be a positive number")
    return {name: float(weight) for name, weight in value.items()}


def _single_telekom_sk(settings: Settings) -> ProvidersConfig:
    config = AccountConfig(
        "telekom-sk",
        "telekom-sk",
        settings.telekom_sk_url,
        {"token": settings.telekom_sk_token.get_secret_value()},
        {"transport": settings.telekom_sk_transport, "use_session": settings.telekom_sk_use_session},
    )
    spec = AccountSpec(config, settings.telekom_sk_rate, settings.telekom_sk_burst)
    return ProvidersConfig({"telekom-sk": spec}, (), {"telekom-sk": 1.0})
