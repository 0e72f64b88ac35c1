"""Emulation of the session-key SMS REST gateway (``/session-key/...``), after the provider's
quickstart (``session-key-sms-rest-quickstart.txt``) and, where it is silent, the public
documentation of the same gateway family (``smsend/REST-API``).

Served:

- ``GET /login?username=..&password=..``: 200 with the text ``user_key;Session_key``.
- ``POST /sms`` (headers ``user_key`` and ``Session_key``): a JSON object with ``message``,
  ``message_type`` (N, L, LL), ``returnCredits``, ``recipient`` (a list), ``sender`` and
  ``scheduled_delivery_time``; 201 with ``result`` OK, ``order_id``, ``total_sent``,
  ``internal_order_id`` and, when ``returnCredits`` is true, ``remaining_credits``.
- ``GET /sms/{order_id}``: ``{"recipient_number", "result": "OK", "recipients": [{"destination",
  "status", "delivery_date"}]}`` (assumed from the family; the quickstart has no status call).
- ``GET /status``: ``{"money": null, "sms": [{"type": "N", "quantity": credits}, ...], "email":
  null}`` (assumed from the family's user status).

What the documents leave open, and what this emulation assumes:

- Users are ``SandboxSettings.session_key_users``; each has a fixed ``user_key`` (``"1000"``,
  ``"1001"``, ... in settings order). A wrong username or password answers 404
  ``BAD_CREDENTIALS``, a missing one 400 ``MISSING_PARAMETER``.
- Headers are read case-insensitively (as HTTP has it). Missing ones, or a ``Session_key`` that is
  unknown or unused for 5 minutes (300 s on the injected clock; every accepted call refreshes
  it), answer 401 ``UNAUTHORIZED``; a ``user_key`` no user has answers 404
  ``USER_KEY_NOT_FOUND``. A session is not tied to the user who opened it.
- Every error answers ``{"result": "KO", "code", "message"}`` with the HTTP status in
  :data:`~.orders.ERRORS` (401, 404, or 400 "details are in the body"). ``INVALID_RECIPIENT``
  adds ``recipients``: the refused numbers (6 to 15 digits, optional ``+``); one refuses the
  whole order, as the family's default ``allowInvalidRecipients=false`` has it.
- ``message``: at most 1000 characters; with ``LL`` at most one part (the family: "160 chars when
  using low-quality SMSs"). ``sender``: empty or null means the default; a custom one (11
  characters, or up to 16 digits) only with ``N``, else 400 ``INVALID_SENDER``. An order lists
  at most 1000 recipients; the same number twice is accepted (two entries).
- ``scheduled_delivery_time``: ``yyyyMMddHHmmss`` or ISO 8601, in Europe/Rome when it has no zone
  (the examples use Italian numbers); a time in the past means now.
- Credits: one pool of ``SandboxSettings.session_key_credits`` (restored by a reset); an order
  costs one credit per part (GSM-7/UCS-2, :func:`~sms_worker.sandbox.telekom_sk.parts.count_parts`)
  per recipient, whatever the quality. Too few credits: 400 ``NOT_ENOUGH_CREDITS`` and nothing
  is sent. ``/status`` shows the pool under each quality.
- Each recipient is a message on :class:`~sms_worker.sandbox.lifecycle.MessageStore`: SCHEDULED,
  then WAITING, SENT after ``sent_after`` s and DLVRD (``delivery_date`` set, Europe/Rome) after
  ``delivered_after`` s, all qualities alike. Validity is 48 hours. Canonical statuses become
  the family's words by :data:`~.orders.STATUS_WORDS`; one without a word is answered as
  itself. ``order_id`` is a UUID (the family's default), ``internal_order_id`` counts up.
- Faults (endpoints ``login``, ``sms``, ``sms_state``, ``status``): ``http_status`` answers bare;
  ``session_loss`` drops every session and answers 401; ``error_code`` answers that code's
  error (a code not in the table is a 400); ``latency``/``timeout`` do the work, record it, and
  hold the answer; ``final_status`` (``sms`` only) sets where accepted messages end. On ``sms``
  a rule without ``to`` is drawn once per order; a rule with ``to`` applies when its number is
  among the recipients: ``final_status`` to that recipient only, ``error_code``
  ``INVALID_RECIPIENT`` naming that recipient, anything else to the whole order. A rule with
  ``to`` is not drawn while a rule of the same kind without ``to`` is active.
- Every ``POST /sms`` is recorded once per recipient (a request whose recipients cannot be read
  once, with ``to`` null), refused ones included: ``message_id`` is ``"<order_id>:<recipient>"``
  (null if refused), ``params`` hold ``order_id``, ``recipient_count``, ``message_type``,
  ``returnCredits`` and ``scheduled_delivery_time``, never the session headers; ``parts`` is
  null unless the body was valid.
"""

from sms_worker.sandbox.session_key.emulator import SessionKey

__all__ = ["SessionKey"]
