"""The producer API: validate, persist, then enqueue, and hand back ids.

The row is written before any queue entry exists (Notify's rule), so a Redis outage between the
two loses nothing: the recovery sweep finds the row and queues it. A send either writes nothing
and raises, or returns the ids of what it wrote; never both:

- invalid input: :class:`InvalidField` / :class:`BatchRejected`, nothing written;
- a database whose schema is behind this version (never migrated, or migrated by an earlier
  release): :class:`NotMigrated`, saying to run ``sms-worker db upgrade``, nothing written;
- the database failing before the COMMIT (unreachable, connection lost, locked):
  :class:`StoreUnavailable`, nothing written, the same request may be sent again;
- the COMMIT itself failing: the database is asked on a fresh connection whether it committed
  (:mod:`sms_worker.db.commit`); committed: the ids, as if nothing had happened; rolled back:
  :class:`StoreUnavailable`; still unknown after ``SMS_WORKER_COMMIT_RECHECK_SECONDS``:
  :class:`OutcomeUnknown`, with the ids that may have been written;
- Redis failing once the rows are committed: not an error. The ids are returned, the messages
  are queued by the sweep, and the :class:`SendResult` says so (:func:`send_sms` and
  :func:`send_many`, which return ids only, log it as a warning).

No idempotency key is made up for a message that has none: only the caller can present a key
again, so a generated one would protect nothing unless the caller kept it, and every keyless
message would pay for a unique index entry. The ids in :class:`OutcomeUnknown` serve a caller
without keys (``sms-worker status ID`` once the database answers); a caller that must retry
blindly gives keys.
"""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.exc import DBAPIError

from sms_worker.db.commit import CommitOutcome, CommitProbe, commit_outcome, commit_probe
from sms_worker.db.failures import is_unavailable, not_migrated, reaching_the_database, unavailable
from sms_worker.errors import OutcomeUnknown
from sms_worker.lifecycle.changes import Created
from sms_worker.lifecycle.status import Status
from sms_worker.lifecycle.tables import MESSAGES
from sms_worker.lifecycle.write import insert
from sms_worker.logs import get_logger
from sms_worker.outages import first_line
from sms_worker.priority import Priority
from sms_worker.queues.pointers import Due, Pointer, enqueue
from sms_worker.runtime import Runtime, process_runtime
from sms_worker.send_result import QueueDeferral, SendResult
from sms_worker.text import analyze, downgrade
from sms_worker.validation import (
    BatchRejected,
    InvalidField,
    normalize_recipient,
    require_unicode,
    validate_on_ambiguous,
    validate_send_at,
    validate_sender,
    validate_validity,
)

log = get_logger("producer")


@dataclass(frozen=True, slots=True)
class MessageRequest:
    to: str
    text: str
    sender: str | None = None
    priority: Priority | str | int = Priority.STANDARD
    """``high|standard|low`` (or 3/2/1): see :class:`~sms_worker.priority.Priority`."""
    validity: int | None = None
    """Minutes the message may wait before it is sent (1-1440); counted from ``send_at`` if set."""
    send_at: datetime | None = None
    idempotency_key: str | None = None
    campaign_id: str | None = None
    account: str | None = None
    """A configured account to send through, bypassing routing and failover; None: the routing rules choose."""
    unicode: bool | None = None
    """None detects the encoding; False folds the text into GSM-7 (diacritics stripped) before it
    is priced, stored and sent, on every account; True asks for UCS-2 and is priced so (only
    Telekom SK has the switch: other accounts pick the encoding from the text)."""
    flash: bool = False
    region: str | None = None
    """ISO country for numbers written in national form."""
    on_ambiguous: str | None = None
    """After an ambiguous attempt, where the account's API cannot be asked whether it has the
    message: ``resend`` (at least once) or ``give-up`` (at most once, ``unknown``); None: the
    account's policy (:mod:`sms_worker.lifecycle.ambiguity`)."""


_REQUEST_FIELDS = {f.name for f in fields(MessageRequest)}
_DEPRECATED_ACCOUNT = "provider"


def send_sms(to: str, text: str, *, runtime: Runtime | None = None, **options: Any) -> uuid.UUID:
    """Queue one message and return its id (:func:`send_sms_result` says more).

    Raises :class:`InvalidField` naming the field and the reason, :class:`NotMigrated` or
    :class:`StoreUnavailable` (nothing written) or :class:`OutcomeUnknown`. When Redis cannot take the pointer, the id is
    returned all the same and a warning logged: the sweep queues the message."""
    if _DEPRECATED_ACCOUNT in options:
        options = _renamed_account(options, stacklevel=3)
    return _logged(send_sms_result(to, text, runtime=runtime, **options)).ids[0]


def send_many(messages: Iterable[MessageRequest | Mapping[str, Any]], *, runtime: Runtime | None = None) -> list[uuid.UUID]:
    """Queue a batch, all or nothing, and return the ids in the order given
    (:func:`send_many_result` says more); a Redis that cannot take the pointers is a
    warning logged, not an error."""
    return _logged(send_many_result(messages, runtime=runtime)).ids


def send_sms_result(to: str, text: str, *, runtime: Runtime | None = None, **options: Any) -> SendResult:
    """Queue one message: :func:`send_many_result` of one, whose refusal is the
    :class:`InvalidField` of its one message."""
    if _DEPRECATED_ACCOUNT in options:
        options = _renamed_account(options, stacklevel=3)
    try:
        return send_many_result([{"to": to, "text": text, **options}], runtime=runtime)
    except BatchRejected as rejected:
        error = rejected.errors[0]
        raise InvalidField(error.field, error.reason) from None


def send_many_result(messages: Iterable[MessageRequest | Mapping[str, Any]], *, runtime: Runtime | None = None) -> SendResult:
    """Queue a batch, all or nothing: one invalid message rejects the batch and writes nothing.

    The same idempotency key twice yields the id of the first message, not a second message;
    the same key for a different message is refused (``idempotency_key``), and so is the batch.
    Returns a :class:`SendResult`: the ids, and whether the messages were queued now or are
    left to the sweep (Redis unreachable after the commit: ``result.deferral``). Raises
    :class:`BatchRejected`, :class:`NotMigrated`, :class:`StoreUnavailable` (nothing written) or
    :class:`OutcomeUnknown` (see the module's docstring); nothing else once the rows are written.
    """
    rt = runtime or process_runtime()
    now = rt.clock.now()
    rows, errors = [], []
    for index, item in enumerate(messages):
        try:
            rows.append(_row(_as_request(item), now, rt))
        except InvalidField as error:
            errors.append(error.at(index))
    if errors:
        raise BatchRejected(errors)
    written = _write(rt, rows)
    return SendResult(written.ids, _enqueue(rt, written.to_queue, now))


def _logged(result: SendResult) -> SendResult:
    """The result, its deferral logged for callers that see only ids."""
    if result.deferral is not None:
        log.warning("%d message(s) written but not queued now: %s", len(result.ids), result.deferral)
    return result


@dataclass(frozen=True, slots=True)
class _Written:
    ids: list[uuid.UUID]
    """The ids to hand back, in the order given."""
    inserted: set[uuid.UUID]
    """The rows this send wrote (the others' keys named messages already written)."""
    to_queue: list[Due]
    """What to point at (each message's pointer, due at its ``send_after``): the rows inserted, and those the
    keys named that still wait for their first attempt. A send whose outcome was unknown queued
    nothing, so its retry queues the message now; a second pointer to a queued message is
    harmless (the claim sends it once)."""


def _write(rt: Runtime, rows: list[Created]) -> _Written:
    """Insert the rows and their events in one transaction and commit it, or raise: see the
    module's docstring for what each failure of the database becomes."""
    with reaching_the_database():
        conn = rt.engine.connect()
    with conn:
        try:
            transaction = conn.begin()
            written = _resolve_idempotent(conn, rows, insert(conn, rows))
            probe = commit_probe(conn, select(MESSAGES.c.id).where(MESSAGES.c.id == min(written.inserted))) if written.inserted else None
        except DBAPIError as error:
            if (behind := not_migrated(rt.engine, error)) is not None:
                raise behind from error
            if not is_unavailable(error):
                raise
            raise unavailable(error) from error
        try:
            transaction.commit()
            return written
        except DBAPIError as error:
            lost = error
    return _settle(rt, rows, written, probe, lost)


def _settle(rt: Runtime, rows: list[Created], written: _Written, probe: CommitProbe | None, lost: DBAPIError) -> _Written:
    """After a COMMIT that raised: the rows as written if the database says it committed (or
    there was nothing of ours in it), else :class:`StoreUnavailable` or :class:`OutcomeUnknown`."""
    if probe is None:
        return written
    outcome = commit_outcome(rt.engine, probe, rt.settings.commit_recheck_seconds)
    if outcome is CommitOutcome.COMMITTED:
        log.warning(
            "the database's answer to a COMMIT was lost (%s); asked again, it had committed %d message(s)", first_line(lost), len(written.inserted)
        )
        return written
    if outcome is CommitOutcome.ROLLED_BACK:
        raise unavailable(lost, "the commit failed, and asked again the database had rolled it back") from lost
    raise OutcomeUnknown(unavailable(lost).detail, written.ids, [row.idempotency_key for row in rows]) from lost


def _as_request(item: MessageRequest | Mapping[str, Any]) -> MessageRequest:
    if isinstance(item, MessageRequest):
        return item
    if _DEPRECATED_ACCOUNT in item:
        item = _renamed_account(item, stacklevel=4)
    unknown = set(item) - _REQUEST_FIELDS
    if unknown:
        raise InvalidField(sorted(unknown)[0], "is not a message field")
    for required in ("to", "text"):
        if required not in item:
            raise InvalidField(required, "is required")
    return MessageRequest(**item)


def _renamed_account(item: Mapping[str, Any], stacklevel: int) -> dict[str, Any]:
    """``provider`` is the name 0.1 gave ``account``; it works until 0.3, with a warning that
    names the caller's line (``stacklevel`` counts from here to the caller of the public function)."""
    warnings.warn("the message field 'provider' is deprecated, use 'account' (it will be removed in 0.3)", FutureWarning, stacklevel=stacklevel)
    if "account" in item:
        raise InvalidField(_DEPRECATED_ACCOUNT, "give 'account' only ('provider' is its deprecated name)")
    renamed = {key: value for key, value in item.items() if key != _DEPRECATED_ACCOUNT}
    renamed["account"] = item[_DEPRECATED_ACCOUNT]
    return renamed


def _row(request: MessageRequest, now: datetime, rt: Runtime) -> Created:
    recipient = normalize_recipient(request.to, request.region)
    if not isinstance(request.text, str) or not request.text.strip():
        raise InvalidField("text", "must not be empty")
    require_unicode(request.text, "text")
    if request.unicode not in (None, True, False):
        raise InvalidField("unicode", "must be true, false or absent")
    text = _wire_text(request.text, request.unicode)
    analysis = analyze(text, ucs2=request.unicode is True)
    if analysis.segments > rt.settings.max_segments:
        raise InvalidField("text", f"needs {analysis.segments} {analysis.encoding} segments, more than the limit of {rt.settings.max_segments}")
    sender = validate_sender(request.sender)
    if request.account is not None and request.account not in rt.accounts:
        raise InvalidField("account", f"{request.account!r} is not a configured account ({', '.join(sorted(rt.accounts))})")
    message_id = uuid.uuid4()
    account = _eligible_account(rt, request, recipient, sender, text, message_id)
    validity = validate_validity(request.validity if request.validity is not None else rt.settings.default_validity_minutes)
    send_at = validate_send_at(request.send_at, now)
    start = send_at or now
    return Created(
        id=message_id,
        recipient=recipient,
        sender=sender,
        text=text,
        encoding=analysis.encoding,
        segments=analysis.segments,
        priority=Priority.parse(request.priority),
        account=account,
        requested_account=request.account,
        status=Status.SCHEDULED if send_at else Status.QUEUED,
        unicode=request.unicode,
        flash=bool(request.flash),
        on_ambiguous=validate_on_ambiguous(request.on_ambiguous),
        send_after=start,
        valid_until=start + timedelta(minutes=validity),
        idempotency_key=_optional_text(request.idempotency_key, "idempotency_key", 128),
        campaign_id=_optional_text(request.campaign_id, "campaign_id", 64),
        created_at=now,
    )


def _eligible_account(rt: Runtime, request: MessageRequest, recipient: str, sender: str | None, text: str, message_id: uuid.UUID) -> str:
    """The account to try first: the one the message names, or the first in its routing order
    that can carry it (:meth:`~sms_worker.routing.Router.eligible`: sender-ID rules, the
    characters of the wire format). When none can, :class:`InvalidField` names the field, the
    rule and each account's reason, so what is known at enqueue fails at enqueue. ``text`` is
    the text as it goes on the wire (:func:`_wire_text`)."""
    names = [request.account] if request.account is not None else rt.router.candidates(recipient, message_id)
    eligible = rt.router.eligible(names, recipient, sender, text)
    if eligible.accounts:
        return eligible.accounts[0]
    field = eligible.refusals[0].field
    if request.account is not None:
        raise InvalidField(field, str(eligible.refusals[0]))
    raise InvalidField(field, f"no account can carry it: {eligible.reason()}")


def _wire_text(text: str, unicode: bool | None) -> str:
    """The text exactly as every account will send it, priced and stored so: with ``unicode``
    false, folded into GSM-7 here (:func:`~sms_worker.text.downgrade`), not by one provider
    later. A character with no GSM-7 form is refused rather than sent as ``?``."""
    if unicode is not False:
        return text
    folded = downgrade(text)
    if folded.unmapped:
        named = ", ".join(f"{char!r} (U+{ord(char):04X})" for char in folded.unmapped)
        raise InvalidField(
            "text", f"has {named} with no GSM-7 form, so it cannot be sent with unicode=false; leave unicode unset to send it in UCS-2"
        )
    return folded.text


def _optional_text(value: object, field: str, limit: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > limit:
        raise InvalidField(field, f"must be a non-empty string of at most {limit} characters")
    return require_unicode(value, field)


_NOT_YET_ATTEMPTED = (Status.QUEUED.value, Status.SCHEDULED.value)
_SAME_MESSAGE = ("recipient", "text", "sender", "requested_account", "priority", "unicode", "flash", "on_ambiguous", "campaign_id")
"""What must match for a reused idempotency key to name the same message: who gets what, from
whom, through which account if one was named, how urgent, how encoded. Times are left out: a
retried request is made later, and its validity counts from then."""


def _resolve_idempotent(conn: Connection, rows: list[Created], inserted: set[uuid.UUID]) -> _Written:
    """Replace the ids of rows that lost to an existing idempotency key with the winner's id.

    A key reused for a different message is a conflict, not a retry: :class:`BatchRejected`
    names each such message's key and the message that holds it, and the batch's transaction
    (the caller's) is rolled back."""
    to_queue = [_due(row.id, row.priority, row.send_after) for row in rows if row.id in inserted]
    lost = {row.idempotency_key for row in rows if row.id not in inserted}
    if not lost:
        return _Written([row.id for row in rows], inserted, to_queue)
    columns = [MESSAGES.c[name] for name in ("idempotency_key", "id", "status", "send_after", *_SAME_MESSAGE)]
    winners = {row.idempotency_key: row for row in conn.execute(select(*columns).where(MESSAGES.c.idempotency_key.in_(lost)))}
    conflicts = []
    for index, row in enumerate(rows):
        if row.id in inserted:
            continue
        winner = winners[row.idempotency_key]
        if any(_differs(row, winner, name) for name in _SAME_MESSAGE):
            reason = f"{row.idempotency_key!r} already names a different message ({winner.id}); use a new key for a new message"
            conflicts.append(InvalidField("idempotency_key", reason, index))
    if conflicts:
        raise BatchRejected(conflicts)
    unsent = [w for w in winners.values() if w.status in _NOT_YET_ATTEMPTED]
    to_queue += [_due(w.id, Priority(w.priority), w.send_after) for w in unsent]
    return _Written([row.id if row.id in inserted else winners[row.idempotency_key].id for row in rows], inserted, to_queue)


def _due(message_id: uuid.UUID, priority: Priority, send_after: datetime) -> Due:
    return Due(Pointer(priority, message_id), send_after)


def _differs(row: Created, winner: Any, name: str) -> bool:
    """Whether a request and the message holding its key differ in ``name``. A request that
    names no account matches a message that names one: a row written before migration 0006 holds
    there the account an ambiguous attempt pinned it to (now ``pinned_account``,
    :mod:`sms_worker.lifecycle.ambiguity`), and a client retrying its request must still get its
    id, not a conflict."""
    if name == "requested_account" and row.requested_account is None:
        return False
    return bool(getattr(row, name) != getattr(winner, name))


def _enqueue(rt: Runtime, pointers: list[Due], now: datetime) -> QueueDeferral | None:
    """Point at the written rows and wake workers; a failure is a :class:`QueueDeferral`, never
    raised: the rows are committed, and the sweep queues what has no pointer."""
    ready = [due.pointer for due in pointers if due.at <= now]
    later = [due for due in pointers if due.at > now]
    try:
        enqueue(rt.redis, rt.waker, rt.settings.batch_size, ready, later)
    except Exception as error:  # whatever failed, the rows are written: an error now would say they were not
        log.debug("pointers not written; the sweep will queue the messages", exc_info=True)
        return QueueDeferral.of(error, rt.settings)
    return None
