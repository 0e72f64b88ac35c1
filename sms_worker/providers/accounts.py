"""Provider accounts and routing rules: the TOML file ``SMS_WORKER_PROVIDERS_FILE`` declares them.

Without a file, the deployment has one account, ``telekom-sk``, described by the
``SMS_WORKER_TELEKOM_SK_*`` variables, and every message goes to it. A file looks like
``providers.example.toml``: one ``[accounts.NAME]`` table per account, then ``[[routes]]`` rules
(by destination country or number prefix, the first that matches wins) and ``[routing]
default``. Each rule and the default map account names to weights.

The file is checked by the pydantic models below and each adapter type's account model
(:mod:`.schema` says how they are declared); credentials are given inline (``api_key = "..."``)
or, better, by the name of the environment variable holding them (``api_key_env =
"DEXATEL_KEY"``). Every problem is reported at once, one line each, naming the file, the field
(``accounts.dexatel.rate``, ``routes[0].accounts``) and the reason, as :class:`ProvidersFileError`.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, ValidationInfo, model_validator
from pydantic_core import ErrorDetails

from sms_worker.config import Settings
from sms_worker.errors import ProvidersFileError
from sms_worker.providers.registry import ACCOUNT_TYPES, AccountSettings
from sms_worker.providers.schema import ENVIRONMENT_SUFFIX, CountryCodes, fits, reason


def _listed_names_weigh_one(value: Any) -> Any:
    """``["a", "b"]`` is ``{ a = 1, b = 1 }``."""
    if isinstance(value, list):
        value = dict.fromkeys(value, 1.0)
    if not isinstance(value, dict) or not value:
        raise ValueError("must map account names to weights, e.g. { dexatel = 3, telefoon = 1 }")
    return value


def _known_accounts(weights: dict[str, float], info: ValidationInfo) -> dict[str, float]:
    """Every name is an ``[accounts.NAME]`` of the file (the context's ``accounts``; none: the
    file lacks accounts, which is its own error)."""
    accounts = sorted((info.context or {}).get("accounts", ()))
    unknown = [name for name in weights if name not in accounts]
    if accounts and unknown:
        raise ValueError(f"{unknown[0]!r} is not an account ({', '.join(accounts)})")
    return weights


Weight = Annotated[float, Field(gt=0, allow_inf_nan=False), reason("weight must be a positive number")]
Weights = Annotated[dict[str, Weight], BeforeValidator(_listed_names_weigh_one), AfterValidator(_known_accounts)]
Prefixes = Annotated[
    tuple[Annotated[str, fits(re.compile(r"\+[0-9]+").fullmatch, "an E.164 prefix")], ...],
    Field(strict=False),
    reason('must be E.164 prefixes such as "+421"'),
    AfterValidator(lambda prefixes: tuple(sorted(set(prefixes)))),
]


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Route(_Table):
    """A ``[[routes]]`` rule: recipients in ``countries`` (ISO 3166) or starting with one of
    ``prefixes`` go to ``accounts``, by weight."""

    countries: CountryCodes = frozenset()
    prefixes: Prefixes = ()
    accounts: Weights

    @model_validator(mode="after")
    def _matches_something(self) -> Route:
        if not self.countries and not self.prefixes:
            raise ValueError("needs `countries` or `prefixes` to match on")
        return self

    def matches(self, recipient: str, country: str | None) -> bool:
        return (country is not None and country in self.countries) or recipient.startswith(self.prefixes)


class Routing(_Table):
    default: Weights | None = None
    """The fallback for every message; None: every account, weight 1."""


def _at_least_one(accounts: dict[str, AccountSettings]) -> dict[str, AccountSettings]:
    if not accounts:
        raise ValueError("at least one [accounts.NAME] table is required")
    return accounts


class ProvidersConfig(_Table):
    """The providers file, checked: accounts by name, routing rules in order, the default."""

    accounts: Annotated[dict[str, AccountSettings], AfterValidator(_at_least_one)] = Field(default_factory=dict, validate_default=True)
    routes: tuple[Route, ...] = Field((), strict=False)
    routing: Routing = Routing()

    @property
    def default(self) -> Mapping[str, float]:
        """The default rule's weights by account name."""
        return self.routing.default or dict.fromkeys(self.accounts, 1.0)


def load_providers(settings: Settings, environ: Mapping[str, str] = os.environ) -> ProvidersConfig:
    if settings.providers_file is None:
        return _single_telekom_sk(settings)
    path = Path(settings.providers_file)
    return parse_providers(_read(path), environ, source=str(path))


def _read(path: Path) -> dict[str, Any]:
    """The TOML file at ``path`` as a dict; ProvidersFileError if it cannot be read or is not TOML."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ProvidersFileError(f"providers file {path}: cannot be read ({error.strerror})") from None
    except UnicodeDecodeError:
        raise ProvidersFileError(f"providers file {path}: not UTF-8 text (TOML is)") from None
    except tomllib.TOMLDecodeError as error:
        raise ProvidersFileError(f"providers file {path}: not valid TOML ({error})") from None


def parse_providers(document: Mapping[str, Any], environ: Mapping[str, str], source: str = "providers file") -> ProvidersConfig:
    """``document`` (the TOML file as a dict) checked, its ``*_env`` credentials read from
    ``environ``; ProvidersFileError lists every problem, one line each."""
    tables = document.get("accounts")
    context = {"environ": environ, "accounts": frozenset(tables) if isinstance(tables, dict) else frozenset()}
    try:
        return ProvidersConfig.model_validate(document, context=context)
    except ValidationError as error:
        lines = [
            f"{source}: {field}: {why}" if field else f"{source}: {why}"
            for field, why in (_problem(detail) for detail in error.errors(include_url=False))
            if why
        ]
        raise ProvidersFileError("\n".join(lines)) from None


_REASONS = {
    "missing": "is required",
    "string_type": "must be a string",
    "bool_type": "must be true or false",
    "int_type": "must be an integer",
    "float_type": "must be a number",
    "list_type": "must be a list",
    "tuple_type": "must be a list",
    "frozen_set_type": "must be a list",
    "dict_type": "must be a table",
    "model_type": "must be a table",
    "model_attributes_type": "must be a table",
    "literal_error": "must be {expected}",
    "string_too_short": "must not be empty",
    "too_short": "must not be empty",
    "greater_than": "must be greater than {gt}",
    "greater_than_equal": "must be at least {ge}",
    "less_than_equal": "must be at most {le}",
    "finite_number": "must be a finite number",
}
"""Pydantic's error types in the file's words; any other keeps pydantic's own message."""


def _problem(detail: ErrorDetails) -> tuple[str, str]:
    """One of pydantic's errors as (field, reason): the field as a dotted path without the
    account type pydantic puts after an account's name; an empty reason for an error that only
    follows from another one."""
    kind, ctx = detail["type"], detail.get("ctx", {})
    loc = list(detail["loc"])
    account_type = str(loc.pop(2)) if len(loc) > 2 and loc[0] == "accounts" and loc[2] in ACCOUNT_TYPES else None
    if kind in ("environment_variable_not_set", "credential_twice"):
        loc.append(ctx["key"])
    field = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc).lstrip(".")
    if kind == "default_factory_not_called":
        return field, ""
    if kind == "union_tag_not_found":
        return f"{field}.type", f"is required: one of {', '.join(ACCOUNT_TYPES)}"
    if kind == "union_tag_invalid":
        return f"{field}.type", f"{ctx['tag']!r} is not an adapter type ({', '.join(ACCOUNT_TYPES)})"
    if kind == "extra_forbidden":
        return field, _unknown_key(loc, account_type)
    if kind == "value_error":
        return field, str(ctx["error"])
    return field, _REASONS.get(kind, detail["msg"]).format(**ctx)


def _unknown_key(loc: list[str | int], account_type: str | None) -> str:
    """Why ``loc``'s last key is refused: what the table takes instead and, when one is close,
    the key meant (``did you mean 'rate'?``, by :func:`difflib.get_close_matches`)."""
    key = str(loc[-1])
    if account_type is not None:
        model = ACCOUNT_TYPES[account_type]
        credentials = model.credentials()
        if key.removesuffix(ENVIRONMENT_SUFFIX) in {name for other in ACCOUNT_TYPES.values() for name in other.credentials()}:
            return f"type {account_type} authenticates with {', '.join(credentials)}"
        secrets = [name + ENVIRONMENT_SUFFIX for name in model.secrets()]
        return _not_one_of(key, f"an option of type {account_type}", sorted({*model.model_fields, *secrets} - {"type"}), "known: ")
    if len(loc) == 1:
        return _not_one_of(key, "a section of the providers file", list(ProvidersConfig.model_fields))
    if loc[0] == "routes":
        return _not_one_of(key, "a route field", list(Route.model_fields))
    return _not_one_of(key, f"a field of [{loc[0]}]", list(Routing.model_fields))


def _not_one_of(key: str, what: str, known: list[str], lead: str = "") -> str:
    """``is not WHAT (KNOWN, ...)``, then ``: did you mean 'K'?`` for a known key close to ``key``."""
    meant = difflib.get_close_matches(key, known, n=1)
    return f"is not {what} ({lead}{', '.join(known)})" + (f": did you mean {meant[0]!r}?" if meant else "")


def _single_telekom_sk(settings: Settings) -> ProvidersConfig:
    account = {
        "type": "telekom-sk",
        "base_url": settings.telekom_sk_url,
        "token": settings.telekom_sk_token.get_secret_value(),
        "transport": settings.telekom_sk_transport,
        "use_session": settings.telekom_sk_use_session,
        "rate": settings.telekom_sk_rate,
        "burst": settings.telekom_sk_burst,
    }
    return parse_providers({"accounts": {"telekom-sk": account}}, {}, source="SMS_WORKER_TELEKOM_SK_* settings")
