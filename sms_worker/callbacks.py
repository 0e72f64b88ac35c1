"""Delivery callbacks: providers post delivery receipts here, and they are written like polled ones.

``POST /callbacks/<account>?token=<secret>`` takes whatever the account's provider posts; its
adapter parses it (:meth:`~sms_worker.providers.base.Adapter.parse_callback`) and the receipts
go through the same code as the poller's (:func:`sms_worker.dispatch.receipts.apply_receipts`),
so a callback and a poll that race cannot move a message backwards or out of a final status.

**Authentication, on by default.** None of the five provider documents describes a signed
callback: Telekom SK posts to "the callback URL defined in API key settings", Dexatel to the
account's webhook URL, Telefoon to each message's ``status_callback`` (DT A2P and the
session-key gateway document no callback at all). So the secret is a token in the URL given to
the provider, per account: its ``callback_token`` in the providers file, else
``SMS_WORKER_CALLBACK_TOKEN``; it is compared in constant time (:func:`hmac.compare_digest`). An
account with neither refuses every callback (403) unless ``SMS_WORKER_CALLBACKS_TRUSTED_NETWORK``
says that only the providers can reach the receiver. When no account has a token at all, the
receiver (:func:`serve_callbacks`) uses the deployment's generated one,
``<home>/callback_token`` (:mod:`sms_worker.callback_token`); an app built without any
(:func:`create_callback_app`) refuses to exist (:class:`CallbacksUnauthenticated`).

**Bodies.** A body the adapter cannot read (not JSON, not UTF-8, another content type, nested
deeper than a parser goes, a field of the wrong type) answers 400, one longer than
:data:`MAX_BODY` bytes or with more than :data:`MAX_RECEIPTS` receipts 413, each with
``{"error": {"field", "reason"}}``; nothing is written. A receipt whose message id or status
word the database cannot hold (longer than its column, a control character, a lone surrogate)
refuses the whole body the same way.

**Refusals are logged.** Each refused callback is a warning naming the account, the cause (no
token, wrong token, the account has no callback token, unknown account, bad body, too large)
and the peer, never a token: ``refused a callback for account 'telekom-sk' from
203.0.113.5:41234: wrong token, answered 403``. So an operator whose provider was given the URL
without its token learns it from the first callback, not from the poller's slower reports. A
flood is one line a minute per account and cause, counting the others (:data:`REFUSALS_LOGGED_EVERY`).

**Matching.** Every receipt counts: several for one message in one body are applied in order of
progress (:func:`~sms_worker.dispatch.receipts.apply_receipts`), so ``delivered`` then ``sent``
ends delivered. A provider's message id names one message of the account only for a time: a
provider that restarts its numbering (the sandbox does) gives a new message an id an older one
had. A receipt goes to the account's message with that id whose attempt started last
(``last_attempt_at``), as the provider reports on the message it holds under that id now; the
older ones are left alone, and the match is logged as a warning naming the id. The rule is the
status poller's and the adoption's too (:mod:`sms_worker.dispatch.holders`). A receipt for a message we do not know is counted and ignored. The answer,
:class:`CallbackOutcome`, never counts below zero.
"""

from __future__ import annotations

import hmac
from dataclasses import asdict, dataclass
from typing import Final

import uvicorn
from pydantic import SecretStr
from sqlalchemy import String
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from sms_worker.callback_token import generated_callback_token
from sms_worker.dispatch.held import hold
from sms_worker.dispatch.holders import holders
from sms_worker.dispatch.receipts import Report, apply_receipts
from sms_worker.errors import SmsWorkerError
from sms_worker.lifecycle.tables import MESSAGES
from sms_worker.logs import RepeatedWarnings, get_logger
from sms_worker.providers.base import MAX_RECIPIENTS_LIMIT, DeliveryReceipt
from sms_worker.runtime import Runtime, build_runtime

log = get_logger("callbacks")
MAX_BODY: Final = 1 << 20
"""Bytes of a callback body, at most."""
MAX_RECEIPTS: Final = MAX_RECIPIENTS_LIMIT
"""Receipts in one callback body, at most: as many as the largest order an adapter sends."""
TRUSTED_NETWORK: Final = "SMS_WORKER_CALLBACKS_TRUSTED_NETWORK"
REFUSALS_LOGGED_EVERY: Final = 60.0
"""Seconds between two log lines about refused callbacks of one account and cause: the first is
logged at once, the others counted into the next line (:class:`~sms_worker.logs.RepeatedWarnings`),
so a provider posting every callback with a wrong token does not drown the log."""


class CallbacksUnauthenticated(SmsWorkerError):
    """No account has a callback token and the network is not declared trusted: an app built so
    would refuse every callback, so it is not built (:func:`serve_callbacks` uses the generated
    token instead). ``str()`` says what to set."""


@dataclass(frozen=True, slots=True)
class CallbackOutcome:
    """What one callback did: ``received`` receipts, ``matched`` of them naming a message of the
    account and ``unknown`` naming none (``matched + unknown == received``), ``changed`` of
    them moving a message on, and ``held`` of the unknown kept until their message's id is
    written (a callback may overtake the send's answer: :mod:`~sms_worker.dispatch.held`)."""

    received: int
    matched: int
    changed: int
    unknown: int
    held: int


@dataclass(frozen=True, slots=True)
class Refusal:
    """A callback refused: answered ``status`` with ``{"error": {"field": field, "reason":
    reason}}`` and logged with its ``cause`` (``no token ...``, ``wrong token``, ``the account has
    no callback token``, ``unknown account``, ``bad body``, ``too large``)."""

    status: int
    field: str
    reason: str
    cause: str


def callback_token(rt: Runtime, account: str) -> SecretStr | None:
    """The token a callback for ``account`` must carry: its own, else the deployment's."""
    return rt.accounts[account].spec.callback_token or rt.settings.callback_token


def unauthenticated_accounts(rt: Runtime) -> list[str]:
    """The accounts without a callback token: with a trusted network they take callbacks as they
    come, otherwise none. Raises :class:`CallbacksUnauthenticated` when that is every account and
    the network is not trusted."""
    missing = sorted(name for name in rt.accounts if callback_token(rt, name) is None)
    if missing and len(missing) == len(rt.accounts) and not rt.settings.callbacks_trusted_network:
        raise CallbacksUnauthenticated(
            "no account has a callback token, so every callback would be refused: set SMS_WORKER_CALLBACK_TOKEN (or "
            f"callback_token in an account of the providers file) and put it in the callback URL as ?token=, or set {TRUSTED_NETWORK}=true "
            "if only the providers can reach this receiver"
        )
    return missing


def apply_callback(rt: Runtime, account: str, receipts: list[DeliveryReceipt]) -> CallbackOutcome:
    """Write the receipts of one callback of ``account``, each to the message its id names (the
    one attempted last, when the provider reused the id: :mod:`sms_worker.dispatch.holders`);
    the receipts naming none are held for the receipts poller (:func:`~sms_worker.dispatch.held.hold`)."""
    with rt.engine.connect() as conn:
        named = holders(conn, account, (receipt.provider_message_id for receipt in receipts), seen_in="callback")
    pairs = [Report(named[receipt.provider_message_id], receipt) for receipt in receipts if receipt.provider_message_id in named]
    report = apply_receipts(rt, pairs)
    held = hold(rt, account, [receipt for receipt in receipts if receipt.provider_message_id not in named])
    return CallbackOutcome(received=len(receipts), matched=len(pairs), changed=report.changed, unknown=len(receipts) - len(pairs), held=held)


def create_callback_app(rt: Runtime) -> Starlette:
    """The receiver's app; raises :class:`CallbacksUnauthenticated` rather than serve callbacks
    no account could take. Every callback refused is logged as a warning naming the account, the
    peer and the cause, never a token (:class:`Refusal`), at most one line every
    :data:`REFUSALS_LOGGED_EVERY` seconds per account and cause, counting those left out."""
    for account in unauthenticated_accounts(rt):
        if rt.settings.callbacks_trusted_network:
            log.warning("callbacks for %s are taken without a token: %s is set", account, TRUSTED_NETWORK)
        else:
            log.warning("callbacks for %s will be refused: it has no callback token", account)
    refusals = RepeatedWarnings(log, rt.clock, REFUSALS_LOGGED_EVERY)

    async def receive(request: Request) -> JSONResponse:
        account = request.path_params["account"]
        answer = await take(request, account)
        if isinstance(answer, CallbackOutcome):
            return JSONResponse(asdict(answer))
        client = request.client
        peer = f"{client.host}:{client.port}" if client is not None else "an unknown address"
        detail = f": {answer.reason}" if answer.field == "body" else ""
        refusals.warn(
            (account if account in rt.accounts else None, answer.cause),
            f"refused a callback for account {account[:80]!r} from {peer}: {answer.cause}, answered {answer.status}{detail}",
        )
        return JSONResponse({"error": {"field": answer.field, "reason": answer.reason}}, status_code=answer.status)

    async def take(request: Request, account: str) -> CallbackOutcome | Refusal:
        if account not in rt.accounts:
            return Refusal(404, "account", f"{account!r} is not a configured account", "unknown account")
        refusal = _authentication_refusal(rt, account, request.query_params.get("token"))
        if refusal is not None:
            return refusal
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                return Refusal(413, "body", f"larger than {MAX_BODY} bytes", "too large")
        try:
            receipts = rt.accounts[account].adapter.parse_callback(bytes(body), request.headers.get("content-type", ""))
        except ValueError as error:
            return Refusal(400, "body", str(error), "bad body")
        except Exception:
            log.exception("the %s adapter could not read a callback", account)
            return Refusal(400, "body", "not a callback this account's adapter can read", "bad body")
        if len(receipts) > MAX_RECEIPTS:
            return Refusal(413, "body", f"{len(receipts)} delivery receipts, more than {MAX_RECEIPTS}", "too large")
        unstorable = _storage_refusal(receipts)
        if unstorable is not None:
            return Refusal(400, "body", unstorable, "bad body")
        outcome = await run_in_threadpool(apply_callback, rt, account, receipts) if receipts else CallbackOutcome(0, 0, 0, 0, 0)
        if outcome.unknown:
            log.info("callback from %s named %d message(s) we do not know yet; %d held for their id", account, outcome.unknown, outcome.held)
        return outcome

    return Starlette(routes=[Route("/callbacks/{account}", receive, methods=["POST"])])


def _authentication_refusal(rt: Runtime, account: str, given: str | None) -> Refusal | None:
    """Why a callback for ``account`` carrying ``given`` as its token is refused; None: taken.
    The answer says ``missing or wrong`` either way; the log tells them apart."""
    token = callback_token(rt, account)
    if token is None:
        if rt.settings.callbacks_trusted_network:
            return None
        reason = f"account {account!r} has no callback token, so its callbacks are refused (or set {TRUSTED_NETWORK}=true)"
        return Refusal(403, "token", reason, "the account has no callback token")
    if not given:
        return Refusal(403, "token", "missing or wrong", "no token (the URL given to the provider lacks ?token=)")
    if not hmac.compare_digest(given.encode("utf-8", "surrogatepass"), token.get_secret_value().encode("utf-8", "surrogatepass")):
        return Refusal(403, "token", "missing or wrong", "wrong token")
    return None


def _storage_refusal(receipts: list[DeliveryReceipt]) -> str | None:
    """Why the database cannot hold one of the receipts' message ids or status words (its column's
    length, a control character or a lone surrogate); None when it can hold them all."""
    for number, receipt in enumerate(receipts, 1):
        for what, value, length in (
            ("message id", receipt.provider_message_id, _length_of("provider_message_id")),
            ("status", receipt.provider_status, _length_of("provider_status")),
        ):
            if not value:
                return f"delivery receipt {number}: its {what} is empty"
            if len(value) > length:
                return f"delivery receipt {number}: its {what} is {len(value)} characters long, longer than {length}"
            if not value.isprintable():
                return f"delivery receipt {number}: its {what} has a control character or an invalid one: {value[:40]!r}"
    return None


def _length_of(column: str) -> int:
    """The characters the ``sms_message`` column holds."""
    kind = MESSAGES.c[column].type
    assert isinstance(kind, String) and kind.length is not None, f"{column} is a String of a set length"
    return kind.length


def serve_callbacks(host: str, port: int) -> None:
    """Serve :func:`create_callback_app` on ``host``:``port`` until stopped, on a runtime of its
    own that is closed on the way out. With no callback token configured anywhere and no trusted
    network, the deployment's generated token stands for SMS_WORKER_CALLBACK_TOKEN, and the log
    says where it is kept (never the token)."""
    rt = build_runtime()
    try:
        if not rt.settings.callbacks_trusted_network and all(callback_token(rt, name) is None for name in rt.accounts):
            generated = generated_callback_token(rt.settings.home)
            rt.settings = rt.settings.model_copy(update={"callback_token": generated.token})
            log.warning(
                "no callback token is configured: using the one %s %s (mode 0600); give each provider the callback URL "
                "http://%s:%d/callbacks/<account>?token=<that file's contents>, or set SMS_WORKER_CALLBACK_TOKEN to choose your own",
                "generated in" if generated.created else "kept in",
                generated.path,
                host,
                port,
            )
        uvicorn.run(create_callback_app(rt), host=host, port=port, log_level="info", access_log=False)
    finally:
        rt.close()
