"""Delivery callbacks: providers post delivery receipts here, and they are written like polled ones.

``POST /callbacks/<account>`` takes whatever the account's provider posts; its adapter parses
it (:meth:`~sms_worker.providers.base.Adapter.parse_callback`) and the receipts go through the same code as the poller's
(:func:`sms_worker.dispatch.receipts.apply_receipts`), so a callback and a poll that race cannot
move a message backwards or out of a final status. A report for a message we do not know is
counted and ignored. With ``SMS_WORKER_CALLBACK_TOKEN`` set, a request must carry it as
``?token=``, so only a provider given the URL can post.
"""

from __future__ import annotations

import hmac

import uvicorn
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from sms_worker.dispatch.receipts import apply_receipts
from sms_worker.dispatch.sql import MESSAGES
from sms_worker.logs import get_logger
from sms_worker.providers.base import DeliveryReceipt
from sms_worker.runtime import Runtime, build_runtime

log = get_logger("callbacks")
MAX_BODY = 1 << 20


def apply_callback(rt: Runtime, account: str, receipts: list[DeliveryReceipt]) -> dict[str, int]:
    """Write the receipts of one callback; returns how many were applied and how many were unknown."""
    by_id = {receipt.provider_message_id: receipt for receipt in receipts}
    columns = (MESSAGES.c.id, MESSAGES.c.account, MESSAGES.c.provider_message_id, MESSAGES.c.last_attempt_at, MESSAGES.c.valid_until)
    with rt.engine.connect() as conn:
        rows = conn.execute(select(*columns).where(MESSAGES.c.account == account, MESSAGES.c.provider_message_id.in_(list(by_id)))).all()
    result = apply_receipts(rt, [(row, by_id[row.provider_message_id]) for row in rows])
    return {"received": len(receipts), "matched": len(rows), "changed": result.changed, "unknown": len(by_id) - len(rows)}


def create_callback_app(rt: Runtime) -> Starlette:
    async def receive(request: Request) -> JSONResponse:
        account = request.path_params["account"]
        token = rt.settings.callback_token
        if token is not None and not hmac.compare_digest(request.query_params.get("token", "").encode(), token.get_secret_value().encode()):
            return _error(403, "token", "missing or wrong")
        if account not in rt.accounts:
            return _error(404, "account", f"{account!r} is not a configured account")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                return _error(413, "body", f"larger than {MAX_BODY} bytes")
        try:
            receipts = rt.accounts[account].adapter.parse_callback(bytes(body), request.headers.get("content-type", ""))
        except ValueError as error:
            return _error(400, "body", str(error))
        if not receipts:
            return JSONResponse({"received": 0, "matched": 0, "changed": 0, "unknown": 0})
        outcome = await run_in_threadpool(apply_callback, rt, account, receipts)
        if outcome["unknown"]:
            log.warning("callback from %s named %d message(s) we do not know", account, outcome["unknown"])
        return JSONResponse(outcome)

    return Starlette(routes=[Route("/callbacks/{account}", receive, methods=["POST"])])


def _error(status: int, field: str, reason: str) -> JSONResponse:
    return JSONResponse({"error": {"field": field, "reason": reason}}, status_code=status)


def serve_callbacks(host: str, port: int) -> None:
    """Serve :func:`create_callback_app` on ``host``:``port`` until stopped, on a runtime of its
    own that is closed on the way out."""
    rt = build_runtime()
    try:
        uvicorn.run(create_callback_app(rt), host=host, port=port, log_level="warning")
    finally:
        rt.close()
