"""Emulation of the Deutsche Telekom A2P SMS API (``/dt-a2p/...``), after the provider's document.

From the document: every request is authenticated by the ``X-API-Key`` header; a message is
sent by POST and its delivery report read by GET; one recipient per request; a prepaid
balance that every request is charged from, "even if a wrong recipient number has been used
or the sender ID is not supported"; verified sender IDs only; alphanumeric sender IDs only to
some countries; 160 GSM characters per part, longer texts billed as several parts.

What the document leaves open (it names no path, field or error code), and what this
emulation assumes — the adapter, :mod:`sms_worker.providers.dt_a2p`, assumes the same:

- ``POST /v1/sms`` takes the JSON object ``{"from", "to", "text"}`` (all strings, required;
  other fields are ignored and recorded in ``params``) and answers ``201`` with ``{"id",
  "status": "queued", "to", "from", "parts", "cost", "currency", "created_at",
  "delivered_at", "balance"}``. ``id`` is a string of digits counting up from 100000, never
  reused, not even after ``/_sandbox/reset``.
- ``GET /v1/sms/{id}`` is the delivery report: the same object without ``balance``, with the
  status at that moment. ``GET /v1/balance`` answers ``{"balance", "currency": "EUR"}``.
  Neither is charged. Times are ISO 8601 UTC with milliseconds and ``Z``.
- Errors: ``{"error": {"code", "message"}}`` with HTTP 400 ``INVALID_REQUEST`` (body not a
  JSON object), ``MISSING_PARAMETER``, ``INVALID_PARAMETER`` (a field not a string),
  ``INVALID_RECIPIENT`` (``to`` not a valid E.164 number with ``+``); 401 ``INVALID_API_KEY``
  (header missing or unknown); 402 ``INSUFFICIENT_BALANCE``; 403 ``SENDER_NOT_VERIFIED``
  (``from`` not in ``SandboxSettings.dt_a2p_verified_senders``, compared exactly) and
  ``ALPHANUMERIC_SENDER_NOT_ALLOWED`` (a sender that is not ``+`` and digits, to a number
  whose country, found by ``phonenumbers``, is not in ``dt_a2p_alphanumeric_countries``);
  404 ``MESSAGE_NOT_FOUND``; and, for ``error_code`` faults only, 429 ``RATE_LIMITED``, 500
  ``INTERNAL_ERROR``, 503 ``SERVICE_UNAVAILABLE``. Any other fault code answers 400.
- Charging: a send request is checked in this order: API key, body, fields; then its price
  (``dt_a2p_price_per_part`` times the parts) is compared with the balance (402 if it does not
  cover it, nothing charged) and charged; only then are the recipient and the sender checked,
  so a wrong number or an unverified or disallowed sender is refused *and* charged. A request
  refused for its key or its body is not charged (it cannot be priced or billed to anyone).
  One balance serves every API key; ``/_sandbox/reset`` restores ``dt_a2p_balance``.
- Parts: GSM-7 160 per part (153 when split), UCS-2 70 (67), detected from the text.
- Statuses follow the injected clock from acceptance: ``queued``, ``sent`` after
  ``sent_after`` s, then ``delivered`` (or a ``final_status`` fault's status) after
  ``delivered_after`` s; validity is 24 hours. Words: QUEUED ``queued``, SENT ``sent``,
  DELIVERED ``delivered``, UNDELIVERABLE ``undelivered``, DENIED ``rejected``, EXPIRED
  ``expired``, DELETED ``deleted``, any other status ``unknown``. ``delivered_at`` is set
  only once delivered.
- Faults: endpoints ``send``, ``report``, ``balance``. ``http_status`` answers a bare status
  and ``error_code`` the platform's error, both before the key is checked and without any
  charge; ``latency`` and ``timeout`` process (and charge) the request at once and hold only
  the answer; ``final_status`` applies to ``send``. ``session_loss`` means nothing here (no
  sessions) and is never taken.
- Every send request is recorded, refused ones included, with ``code`` the error code
  answered (``OK`` when accepted, ``HTTP_503`` for an ``http_status`` fault) and ``parts``
  set once the request was priced.
"""

from sms_worker.sandbox.dt_a2p.emulator import DtA2p

__all__ = ["DtA2p"]
