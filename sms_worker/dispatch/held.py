"""Delivery receipts that came before their message's provider id was written.

A provider's callback can overtake its own answer to the send: the worker writes the id the
answer gave within :data:`~sms_worker.dispatch.stages.submit.FLUSH_EVERY` of it, and a provider
that rejects a message at once (an unknown number, a barred one) may post its receipt in less.
SMPP users know it as the delivery receipt that arrives before ``submit_sm_resp``. Such a receipt
names no message yet: the callback receiver holds it (:func:`hold`), and each round of the
receipts poller applies the held receipts whose message has that id by then (:func:`apply_held`).

Held receipts live in Redis, one hash per account (``smsw:held:<account>``: the provider's
message id to the receipt, as JSON), for :data:`HOLD_SECONDS` at most, and at most
:data:`MOST_HELD` per account: an id that never comes is dropped then, and so is a receipt held
when Redis loses its data. Either way the message is not lost: it is polled once its receipt is
overdue (``SMS_WORKER_RECEIPT_OVERDUE_SECONDS``).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sms_worker.dispatch.holders import holders
from sms_worker.dispatch.receipts import Report, apply_receipts
from sms_worker.lifecycle.status import Delivery
from sms_worker.logs import get_logger
from sms_worker.providers.base import DeliveryReceipt
from sms_worker.redis_keys import key
from sms_worker.runtime import Runtime

log = get_logger("callbacks")
HOLD_SECONDS: Final = 600.0
"""The longest a receipt is held for its message's id to be written (wall-clock seconds): far
more than a send's answer takes to be written, far less than a receipt is overdue."""
MOST_HELD: Final = 10_000
"""Receipts held per account at most: a provider posting ids we never gave it cannot fill Redis."""


@dataclass(frozen=True, slots=True)
class Held:
    """Receipts a round applied, and those it dropped (held longer than :data:`HOLD_SECONDS`)."""

    applied: int = 0
    dropped: int = 0


def hold(rt: Runtime, account: str, receipts: list[DeliveryReceipt]) -> int:
    """Hold ``account``'s receipts that name no message yet; returns how many were held (those
    beyond :data:`MOST_HELD` are not, and are logged). A later receipt for an id held already
    replaces it."""
    if not receipts:
        return 0
    name = key("held", account)
    room = MOST_HELD - int(rt.redis.hlen(name))
    kept = receipts[: max(0, room)]
    if len(kept) < len(receipts):
        log.warning(
            "%d delivery receipt(s) of %s naming no message were not held: %d are held already", len(receipts) - len(kept), account, MOST_HELD
        )
    if kept:
        now = time.time()
        with rt.redis.pipeline(transaction=False) as pipe:
            pipe.hset(name, mapping={receipt.provider_message_id: _dumps(receipt, now) for receipt in kept})
            pipe.expire(name, int(HOLD_SECONDS))
            pipe.execute()
    return len(kept)


def apply_held(rt: Runtime) -> Held:
    """Apply every held receipt whose message has its provider id now, and drop those held
    longer than :data:`HOLD_SECONDS`; one Redis round trip when none is held."""
    accounts = sorted(rt.accounts)
    with rt.redis.pipeline(transaction=False) as pipe:
        for account in accounts:
            pipe.hgetall(key("held", account))
        found = pipe.execute()
    applied = dropped = 0
    for account, entries in zip(accounts, found):
        if not entries:
            continue
        now = time.time()
        receipts: dict[str, DeliveryReceipt] = {}
        stale: list[str] = []
        for raw_id, raw in entries.items():
            provider_id = raw_id.decode() if isinstance(raw_id, bytes) else raw_id
            receipt, held_at = _loads(provider_id, raw)
            if now - held_at > HOLD_SECONDS:
                stale.append(provider_id)
            else:
                receipts[provider_id] = receipt
        with rt.engine.connect() as conn:
            named = holders(conn, account, receipts, seen_in="callback")
        apply_receipts(rt, [Report(named[provider_id], receipt) for provider_id, receipt in receipts.items() if provider_id in named])
        done = [*named, *stale]
        if done:
            rt.redis.hdel(key("held", account), *done)
        if stale:
            log.warning(
                "dropped %d delivery receipt(s) of %s held %.0f s without their message's id being written", len(stale), account, HOLD_SECONDS
            )
        applied += len(named)
        dropped += len(stale)
    return Held(applied, dropped)


def _dumps(receipt: DeliveryReceipt, held_at: float) -> str:
    return json.dumps(
        {
            "status": receipt.provider_status,
            "delivery": receipt.delivery.value if receipt.delivery is not None else None,
            "delivered_at": receipt.delivered_at.isoformat() if receipt.delivered_at is not None else None,
            "error": receipt.provider_error,
            "held_at": held_at,
        }
    )


def _loads(provider_id: str, raw: bytes | str) -> tuple[DeliveryReceipt, float]:
    """A held receipt and when it was held (epoch seconds)."""
    data = json.loads(raw)
    receipt = DeliveryReceipt(
        provider_message_id=provider_id,
        provider_status=data["status"],
        delivery=Delivery(data["delivery"]) if data["delivery"] is not None else None,
        delivered_at=datetime.fromisoformat(data["delivered_at"]) if data["delivered_at"] is not None else None,
        provider_error=data["error"],
    )
    return receipt, float(data["held_at"])
