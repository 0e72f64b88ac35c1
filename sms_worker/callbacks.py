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
from sms_worker.dispatch.holders import holders
from sms_worker.dispatch.receipts import Report, apply_receipts
from sms_worker.errors import SmsWorkerError
from sms_worker.lifecycle.tables import MESSAGES
from sms_worker.logs import get_logger
from sms_worker.providers.base import DeliveryReceipt
from sms_worker.providers.session_key import MAX_RECIPIENTS_LIMIT
from sms_worker.runtime import Runtime, build_runtime

log = get_logger("callbacks")
MAX_BODY: Final = 1 << 20
"""Bytes of a callback body, at most."""
MAX_RECEIPTS: Final = MAX_RECIPIENTS_LIMIT
"""Receipts in one callback body, at most: as many as the largest order an adapter sends."""
TRUSTED_NETWORK: Final = "SMS_WORKER_CALLBACKS_TRUSTED_NETWORK"


class CallbacksUnauthenticated(SmsWorkerError):
    """No account has a callback token and the network is not declared trusted: an app built so
    would refuse every callback, so it is not built (:func:`serve_callbacks` uses the generated
    token instead). ``str()`` says what to set."""


@dataclass(frozen=True, slots=True)
class CallbackOutcome:
    """What one callback did: ``received`` receipts, ``matched`` of them naming a message of the
    account and ``unknown`` naming none (``matched + unknown == received``), ``changed`` of
    them moving a message on."""

    received: int
    matched: int
    changed: int
    unknown: int


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
    one attempted last, when the provider reused the id: :mod:`sms_worker.dispatch.holders`)."""
    with rt.engine.connect() as conn:
        named = holders(conn, account, (receipt.provider_message_id for receipt in receipts), seen_in="callback")
    pairs = [Report(named[receipt.provider_message_id], receipt) for receipt in receipts if receipt.provider_message_id in named]
    report = apply_receipts(rt, pairs)
    return CallbackOutcome(received=len(receipts), matched=len(pairs), changed=report.changed, unknown=len(receipts) - len(pairs))


def create_callback_app(rt: Runtime) -> Starlette:
    """The receiver's app; raises :class:`CallbacksUnauthenticated` rather than serve callbacks
    no account could take."""
    for account in unauthenticated_accounts(rt):
        if rt.settings.callbacks_trusted_network:
            log.warning("callbacks for %s are taken without a token: %s is set", account, TRUSTED_NETWORK)
        else:
            log.warning("callbacks for %s will be refused: it has no callback token", account)

    async def receive(request: Request) -> JSONResponse:
        account = request.path_params["account"]
        if account not in rt.accounts:
            return _error(404, "account", f"{account!r} is not a configured account")
        refusal = _authentication_refusal(rt, account, request.query_params.get("token"))
        if refusal is not None:
            return _error(403, "token", refusal)
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                return _error(413, "body", f"larger than {MAX_BODY} bytes")
        try:
            receipts = rt.accounts[account].adapter.parse_callback(bytes(body), request.headers.get("content-type", ""))
        except ValueError as error:
            return _error(400, "body", str(error))
        except Exception:
            log.exception("the %s adapter could not read a callback", account)
            return _error(400, "body", "not a callback this account's adapter can read")
        if len(receipts) > MAX_RECEIPTS:
            return _error(413, "body", f"{len(receipts)} delivery receipts, more than {MAX_RECEIPTS}")
        refusal = _storage_refusal(receipts)
        if refusal is not None:
            return _error(400, "body", refusal)
        outcome = await run_in_threadpool(apply_callback, rt, account, receipts) if receipts else CallbackOutcome(0, 0, 0, 0)
        if outcome.unknown:
            log.warning("callback from %s named %d message(s) we do not know", account, outcome.unknown)
        return JSONResponse(asdict(outcome))

    return Starlette(routes=[Route("/callbacks/{account}", receive, methods=["POST"])])


def _authentication_refusal(rt: Runtime, account: str, given: str | None) -> str | None:
    """Why a callback for ``account`` carrying ``given`` as its token is refused; None: taken."""
    token = callback_token(rt, account)
    if token is None:
        if rt.settings.callbacks_trusted_network:
            return None
        return f"account {account!r} has no callback token, so its callbacks are refused (or set {TRUSTED_NETWORK}=true)"
    if given is None or not hmac.compare_digest(given.encode("utf-8", "surrogatepass"), token.get_secret_value().encode("utf-8", "surrogatepass")):
        return "missing or wrong"
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


def _error(status: int, field: str, reason: str) -> JSONResponse:
    return JSONResponse({"error": {"field": field, "reason": reason}}, status_code=status)


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
