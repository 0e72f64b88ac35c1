"""Emulation of the Dexatel SMS API (``/dexatel/v1/...``), after the provider's overview
(``dexatel-what-is-an-sms-api.txt``).

Documented, and served as shown: ``POST /v1/sms/send`` with ``Authorization: Bearer <key>``,
``Content-Type: application/json`` and ``{"from", "to", "text"}``, answered with
``{"message_id": "msg_<n>", "status": "queued", "recipient": "<to>"}``; the statuses
``queued``, ``sent``, ``delivered``, ``failed`` and ``undelivered``.

What the document leaves open, and what this emulation assumes (the adapter,
:mod:`sms_worker.providers.dexatel`, assumes the same):

- ``GET /v1/sms/{message_id}`` answers the send answer's shape plus ``updated_at``, the
  RFC 3339 UTC moment (``2030-01-01T12:00:00.600Z``) of the last status change.
- ``GET /v1/account/balance`` answers ``{"balance": 999999.95, "currency": "EUR"}``. The
  balance starts at ``dexatel_balance``, 1,000,000.00 EUR (and again after ``/_sandbox/reset``); each accepted
  message costs 0.05 EUR per part, and one the balance cannot cover is refused with 402.
- Errors: ``{"error": {"code", "message"}}`` with 400 ``INVALID_REQUEST`` (Content-Type not
  ``application/json``, body not a JSON object), 400 ``INVALID_SENDER`` (``from`` missing or
  not 1-11 letters, digits or spaces, or a phone number of up to 15 digits), 400
  ``INVALID_NUMBER`` (``to`` not E.164 with ``+``, 7 to 15 digits), 400 ``INVALID_TEXT``
  (empty, or more than 10 parts), 401 ``UNAUTHORIZED`` (no ``Bearer`` key, or an unknown one:
  ``SandboxSettings.dexatel_api_keys``), 402 ``INSUFFICIENT_FUNDS``, 404
  ``MESSAGE_NOT_FOUND``, 429 ``RATE_LIMITED``, 500 ``INTERNAL_ERROR``, 503
  ``SERVICE_UNAVAILABLE``. Checked in that order after the key: Content-Type, body, ``from``,
  ``to``, ``text``, balance. Fields beyond the three documented ones are accepted and ignored
  (and recorded in ``params``).
- No request-rate limit is enforced: a 429 comes only from a fault rule.
- Parts: GSM-7 (160/153) unless the text needs UCS-2 (70/67), detected from the text (no
  encoding parameter is documented).
- Statuses follow the injected clock from acceptance: ``queued``, ``sent`` after
  ``sent_after`` s, ``delivered`` (or a ``final_status`` fault's status) after
  ``delivered_after`` s. Canonical statuses map onto the five words: DENIED is ``failed``;
  UNDELIVERABLE, EXPIRED and DELETED are ``undelivered``; READ is ``delivered``; UNKNOWN is
  ``unknown`` (a word the document does not name). Message ids are ``msg_`` and a number
  counting up from 100000, never reused, not even after a reset.
- Webhooks are posted only when ``SandboxSettings.dexatel_webhook_url`` is set (the account's
  webhook URL), once a message is final, in the body the adapter assumes.
- Fault endpoints: ``send``, ``status``, ``balance``. ``http_status`` answers a bare error;
  ``error_code`` answers Dexatel's error envelope with that code and its HTTP status (400 for
  a code not in the list above) before the key is checked; ``final_status`` (``send`` only)
  sets where an accepted message ends; ``latency`` and ``timeout`` process the request at once
  and hold only the answer, so a client that times out has still had its message accepted.
  ``session_loss`` means nothing here (no sessions) and is never taken. A rule's ``to``
  matches the recipient on ``send``, and on ``status`` the recipient of the message asked
  about.
- Every ``send`` request is recorded, refused ones included, with ``code`` ``OK`` or the error
  code answered (``HTTP_503`` for an ``http_status`` fault), ``message_id`` the wire id, and
  ``parts`` null unless accepted. The key is a header and is never recorded.
"""

from sms_worker.sandbox.dexatel.emulator import Dexatel

__all__ = ["Dexatel"]
