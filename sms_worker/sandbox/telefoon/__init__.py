"""Emulation of the Telefoon SMS API (``/telefoon/v1/sms/...``), after its OpenAPI document
(``../shared/seeds/telefoon-sms-openapi.yml``, server URL ``https://api.telefoon.com/v1/sms``).

Served: ``POST /messages`` (sendMessage, 201 with a Message), ``GET /messages`` (listMessages:
``direction``, ``status``, ``page``, ``page_size``), ``GET /messages/{message_id}`` (getMessage)
and ``DELETE /messages/{message_id}`` (deleteMessage, 204). Every operation needs a key of
``SandboxSettings.telefoon_api_keys`` in ``X-API-Key``. Fault rules name the operations
``send``, ``list``, ``get`` and ``delete``.

What the document leaves open, and what this emulation assumes:

- Errors: the document defines no error body. Every refusal is JSON
  ``{"error_code": <int>, "error_message": "..."}`` with an HTTP status per code (codes modelled
  on Twilio's, see :mod:`.vocabulary`): 401/20003 for a missing or unknown key (checked before
  anything else), 400/20001 for a body that is not a JSON object, a field that is not a string
  or a bad list parameter (``direction``/``status`` outside the enum, ``page`` below 1,
  ``page_size`` outside 1..100), 400/21604 and 21603 for a missing ``to`` or ``from``, 400/21211
  for a ``to`` that is not E.164 (``+`` and 7 to 15 digits), 400/21212 for a ``from`` that is
  neither E.164 nor an alphanumeric name of at most 11 characters (and for such a
  ``sender_id``), 400/21602 for an empty or absent ``body`` (the schema makes it optional; an
  empty SMS is refused), 400/21609 for a ``status_callback`` that is not an http(s) URL, and
  404/20404 for an unknown (or erased) message id.
- Statuses follow the injected clock: ``queued``, then ``sent`` (with ``date_sent``) after
  ``sent_after`` s, then ``delivered`` after ``delivered_after`` s. A ``final_status`` fault ends
  the message in that canonical status instead: UNDELIVERABLE -> ``undelivered``/30003, EXPIRED
  -> ``undelivered``/30001, DENIED -> ``failed``/30007, READ -> ``delivered``, QUEUED, SENDING or
  SENT stop the message in ``queued``, ``sending`` or ``sent``, anything else -> ``failed``/30008.
  ``sending`` is seen only that way: the clock moves a message from queued to sent directly.
- Optional Message fields are left out while they have no value (the schema has no nulls):
  ``date_sent`` until sent, ``error_code``/``error_message`` unless failed. Dates are RFC 3339
  UTC with seconds (``2030-01-01T12:00:00Z``). ``price`` is 0.0750 EUR per segment, as a decimal
  string; segments are counted as GSM-7 or UCS-2 from the text.
- Message ids are ``TF`` and a number counting up from 100000, never reused, not even after a
  reset. ``DELETE`` erases the record whatever its state (GDPR erasure): afterwards GET, DELETE
  and the list know nothing of it.
- The list is oldest first, ``page`` counts from 1, ``page_size`` defaults to 50; ``total`` is
  the number of matching messages. ``status`` filters on the status at the moment of the call.
  The document has no other filter (no time range, no recipient), and neither has the sandbox.
  Only the page asked for is rendered, so a page costs about the same on a busy account. Every
  answer's ``Date`` header is the host's clock (uvicorn's), which is the sandbox's own unless it
  runs on an injected clock.
- Inbound messages: Telefoon receives them from handsets, which the sandbox has none of. A
  sandbox-only ``POST /telefoon/_sandbox/inbound`` (``{"from", "to", "body"}``, no key) adds one
  (``TI`` ids, status ``received``, direction ``inbound``) so the list filters can be tried; a
  sandbox-only ``POST /telefoon/_sandbox/traffic`` (``{"count", "to", "from", "body"}``, no key)
  adds ``count`` outbound messages sent now by another user of the key, not in the submission
  log, so the listing of a busy account can be tried; with ``"body_listed": false`` they are
  listed and got without ``body`` (the schema does not require it).
- Status callbacks are accepted and recorded but not posted: nothing runs in the background.
- Faults: ``latency`` and ``timeout`` process the request at once and hold only the answer;
  ``http_status`` answers a bare HTTP error (plain text, no Telefoon body); ``error_code``
  answers that Telefoon error (the rule's ``code`` must be digits; its HTTP status from the table,
  400 for a code not in it, ``description`` replaces the message); ``final_status`` applies to
  ``send`` only. ``session_loss`` means nothing here (there are no sessions) and is never taken.
- Every ``send`` request is recorded, refused ones included, with ``code`` ``OK`` or the error
  code answered (``HTTP_503`` for an ``http_status`` fault), ``message_id`` the ``TF...`` id and
  ``params`` holding ``sender_id``, ``status_callback`` and ``gdpr_consent_ref`` (the key travels
  in a header and is never recorded).
"""

from sms_worker.sandbox.telefoon.emulator import Telefoon

__all__ = ["Telefoon"]
