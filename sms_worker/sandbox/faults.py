"""Failures on demand, shared by every emulated provider.

A test or benchmark posts a rule ("the next 3 send requests to this number get HTTP 503") and
the provider emulations ask :meth:`FaultEngine.take` once per request. The transport-level
kinds (``latency``, ``timeout``, ``http_status``, ``garbage``, ``drip``) mean the same for every provider
and are acted on here and in :mod:`.answers`; the others (``session_loss``, ``error_code``, ``final_status``,
``spelling``) are interpreted by each provider in its own vocabulary. A ``spelling`` rule is drawn
only where a status word is written (a status answer, a callback as it is posted: endpoint
``callback``), never used up by another request. An ``error_code`` rule may name the HTTP
status to answer its error body with (``http_status``; 200 for a provider that wraps an error in
a success answer), in place of the one the provider's table gives the code, and may write its code
in another ``case`` with ``pad`` around it, as a ``spelling`` rule writes a status word (the code
is given upper-case and means what it means upper-case). A rule that matches but loses its
probability roll is skipped (not consumed), and the next rule in insertion order gets its chance.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from http import HTTPStatus
from typing import Any, Final

from starlette.responses import PlainTextResponse, Response

from sms_worker.errors import SmsWorkerError
from sms_worker.sandbox.states import State


class FaultKind(StrEnum):
    LATENCY = "latency"
    HTTP_STATUS = "http_status"
    TIMEOUT = "timeout"
    SESSION_LOSS = "session_loss"
    ERROR_CODE = "error_code"
    FINAL_STATUS = "final_status"
    GARBAGE = "garbage"
    """The request is carried out (a send is accepted), then answered ``200`` with a body that is
    not the API's: an HTML page, as a misconfigured proxy sends."""
    DRIP = "drip"
    """The request is carried out, then its answer is sent one byte every ``ms`` milliseconds,
    its ``Content-Length`` announced up front."""
    SPELLING = "spelling"
    """The status word of a status answer, or of a callback, is written in another letter
    ``case`` (``upper``, ``lower`` or ``title``), with ``pad`` (whitespace) around it: a provider
    whose words differ from its document's in case (Dexatel's webhook ``"Delivered"``)."""


WORDED: Final = frozenset({FaultKind.SPELLING})
"""The kinds only an answer or callback that writes a status word acts on."""
REQUEST_KINDS: Final = frozenset(FaultKind) - WORDED
"""The kinds any request may act on: an endpoint that writes a status word adds :data:`WORDED`."""
CALLBACK: Final = "callback"
"""The endpoint name of the callbacks a provider posts (for ``spelling`` rules)."""
CASES: Final[dict[str, Callable[[str], str]]] = {"upper": str.upper, "lower": str.lower, "title": str.title}


class FaultRuleError(SmsWorkerError, ValueError):
    """A rule posted to ``/_sandbox/faults`` that cannot be applied; the message says why."""


@dataclass(slots=True)
class FaultRule:
    """One posted rule; ``times`` counts down as requests use it, and at zero the rule is gone."""

    id: int
    provider: str
    fault: FaultKind
    endpoint: str | None
    to: str | None
    times: int | None
    probability: float
    params: dict[str, Any]

    @property
    def delay(self) -> float:
        """Seconds to hold the answer back: ``latency`` and ``timeout`` differ only in scale."""
        if self.fault is FaultKind.LATENCY:
            return float(self.params["ms"]) / 1000
        if self.fault is FaultKind.TIMEOUT:
            return float(self.params["seconds"])
        return 0.0

    def answer_status(self, status: int) -> int:
        """The HTTP status an ``error_code`` rule's error body goes out with: its ``http_status``
        if it names one, else ``status``, the provider's own for that code."""
        return int(self.params.get("http_status", status))

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "provider": self.provider,
            "endpoint": self.endpoint,
            "to": self.to,
            "fault": self.fault.value,
            "times": self.times,
            "probability": self.probability,
            **self.params,
        }


class FaultEngine:
    """The active rules, in insertion order; ``known`` maps each provider to its endpoints.

    Every request an emulator serves asks :meth:`take` for its rule, once per endpoint it
    reaches (a session-key order once more per recipient), and so does every callback it posts
    (endpoint ``callback``): ``seen`` is told of each, provider and endpoint, whatever the rules
    (the recorder counts them, :meth:`~sms_worker.sandbox.recorder.Recorder.count`)."""

    def __init__(self, known: Mapping[str, frozenset[str]], seen: Callable[[str, str], None] | None = None) -> None:
        self._known = known
        self._seen = seen
        self._ids = itertools.count(1)
        self._rules: list[FaultRule] = []

    def add(self, body: Any) -> FaultRule:
        rule = _parse_rule(body, self._known, next(self._ids))
        self._rules.append(rule)
        return rule

    def rules(self) -> list[FaultRule]:
        return list(self._rules)

    def clear(self) -> None:
        self._rules.clear()

    def take(self, provider: str, endpoint: str, to: Any = None, kinds: frozenset[FaultKind] = REQUEST_KINDS) -> FaultRule | None:
        """The first rule that applies to this request, with one of its ``times`` used up.

        ``kinds`` lets an endpoint ignore rules that mean nothing to it (a ``final_status`` on
        an auth call), so such a rule is not wasted there.
        """
        if self._seen is not None:
            self._seen(provider, endpoint)
        if not self._rules:
            return None
        recipient = _normalize_number(to)
        for rule in self._rules:
            if (
                rule.provider != provider
                or rule.fault not in kinds
                or (rule.endpoint is not None and rule.endpoint != endpoint)
                or (rule.to is not None and rule.to != recipient)
                or (rule.probability < 1 and random.random() >= rule.probability)
            ):
                continue
            if rule.times is not None:
                rule.times -= 1
                if rule.times == 0:
                    self._rules.remove(rule)
            return rule
        return None


def final_status(rule: FaultRule | None) -> State:
    """Where an accepted message ends: a ``final_status`` rule's status, else DELIVERED."""
    if rule is not None and rule.fault is FaultKind.FINAL_STATUS:
        return State(rule.params["status"])
    return State.DELIVERED


def spelled(rule: FaultRule | None, word: str) -> str:
    """A status word as a ``spelling`` rule writes it, or an error code as an ``error_code`` rule
    with a ``case`` does; as it is without one."""
    if rule is None or "case" not in rule.params:
        return word
    pad = str(rule.params.get("pad", ""))
    return pad + CASES[rule.params["case"]](word) + pad


def http_error(status: int) -> Response:
    """The bare answer of an ``http_status`` rule: no provider body, as a proxy would send."""
    return PlainTextResponse(f"{status} {HTTPStatus(status).phrase}", status_code=status)


def _normalize_number(value: Any) -> str | None:
    """``+421...`` and ``421...`` name the same phone, so a rule matches either spelling."""
    if value is None or isinstance(value, bool) or not isinstance(value, str | int):
        return None
    return str(value).strip().lstrip("+")


def _number(low: float, high: float | None = None) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise FaultRuleError("must be a number")
        if value < low or (high is not None and value > high):
            raise FaultRuleError(f"must be between {low} and {high}" if high is not None else f"must be at least {low}")
        return value

    return check


def _http_status(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 400 <= value <= 599:
        raise FaultRuleError("must be an HTTP error status from 400 to 599")
    HTTPStatus(value)  # an unassigned code has no phrase to answer with
    return value


def _answer_status(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not (200 <= value <= 299 or 400 <= value <= 599):
        raise FaultRuleError("must be a success (2xx) or error (4xx, 5xx) HTTP status")
    HTTPStatus(value)
    return value


def _code(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise FaultRuleError("must be a non-empty string")
    return value.strip().upper()


def _case(value: Any) -> str:
    if value not in CASES:
        raise FaultRuleError(f"must be one of {', '.join(CASES)}")
    return str(value)


def _pad(value: Any) -> str:
    if not isinstance(value, str) or value.strip():
        raise FaultRuleError("must be a string of whitespace")
    return value


def _status(value: Any) -> str:
    code = _code(value)
    if code not in State.__members__:
        raise FaultRuleError(f"must be one of {', '.join(State)}")
    return code


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise FaultRuleError("must be a string")
    return value


# Per kind: parameter -> (validator, required).
_KIND_PARAMS: dict[FaultKind, dict[str, tuple[Callable[[Any], Any], bool]]] = {
    FaultKind.LATENCY: {"ms": (_number(0), True)},
    FaultKind.TIMEOUT: {"seconds": (_number(0), True)},
    FaultKind.HTTP_STATUS: {"status": (_http_status, True)},
    FaultKind.SESSION_LOSS: {},
    FaultKind.ERROR_CODE: {
        "code": (_code, True),
        "description": (_text, False),
        "http_status": (_answer_status, False),
        "case": (_case, False),
        "pad": (_pad, False),
    },
    FaultKind.FINAL_STATUS: {"status": (_status, True)},
    FaultKind.GARBAGE: {},
    FaultKind.DRIP: {"ms": (_number(0), True)},
    FaultKind.SPELLING: {"case": (_case, True), "pad": (_pad, False)},
}
_COMMON = frozenset({"provider", "endpoint", "to", "fault", "times", "probability"})


def _parse_rule(body: Any, known: Mapping[str, frozenset[str]], rule_id: int) -> FaultRule:
    if not isinstance(body, dict):
        raise FaultRuleError("body must be a JSON object")
    provider = body.get("provider")
    if not isinstance(provider, str) or provider not in known:
        raise FaultRuleError(f"provider must be one of {', '.join(sorted(known))}")
    try:
        kind = FaultKind(str(body.get("fault")))
    except ValueError:
        raise FaultRuleError(f"fault must be one of {', '.join(FaultKind)}") from None
    endpoint = body.get("endpoint")
    if endpoint is not None and endpoint not in known[provider]:
        raise FaultRuleError(f"endpoint must be one of {', '.join(sorted(known[provider]))}")
    to = body.get("to")
    if to is not None and _normalize_number(to) is None:
        raise FaultRuleError("to must be a phone number")
    times = body.get("times")
    if times is not None and (isinstance(times, bool) or not isinstance(times, int) or times < 1):
        raise FaultRuleError("times must be a positive integer, or null for unlimited")
    probability = _checked("probability", body.get("probability", 1), _number(0, 1))

    spec = _KIND_PARAMS[kind]
    unknown = set(body) - _COMMON - set(spec)
    if unknown:
        raise FaultRuleError(f"unknown parameter(s) for {kind.value}: {', '.join(sorted(unknown))}")
    params: dict[str, Any] = {}
    for name, (check, required) in spec.items():
        if name in body:
            params[name] = _checked(name, body[name], check)
        elif required:
            raise FaultRuleError(f"{name} is required for {kind.value}")
    return FaultRule(rule_id, provider, kind, endpoint, _normalize_number(to), times, probability, params)


def _checked(name: str, value: Any, check: Callable[[Any], Any]) -> Any:
    try:
        return check(value)
    except FaultRuleError as exc:
        raise FaultRuleError(f"{name} {exc}") from None
