"""Emulation of Telekom SK SMS API v1 (``/telekom-sk/json/...`` and ``/telekom-sk/xml/...``),
after the provider's document.

Served: ``auth``, ``ping``, ``send_message`` and ``check_message``, by POST (a JSON object, or
an XML ``<request>`` document) or GET (query parameters). The logic is codec-independent
(:mod:`.emulator`); each wire format is a :class:`~.codec.Codec`. In XML, ``send_message``
answers without ``parts`` and ``check_message`` without ``message_id``, as the document shows.

What the document leaves open, and what this emulation assumes:

- Error codes the document does not name: ``INVALID_TOKEN`` (unknown API key),
  ``MISSING_PARAMETER`` / ``INVALID_PARAMETER`` (description: ``Parameter 'priority' must be
  an integer from 1 to 3``), ``INVALID_REQUEST`` (body not a JSON object or a ``<request>`` document) and
  ``MESSAGE_NOT_FOUND`` (``check_message`` for an unknown id). A request with neither
  ``session_id`` nor ``token`` gets ``MISSING_PARAMETER``. Every error is HTTP 200 with
  ``result.status = "error"``, as in the document's examples.
- The IP allow-list is checked before credentials, on every function, auth included.
- Sessions expire once 15 minutes (900 s on the injected clock) pass without use; every
  accepted use refreshes them, ``ping`` included. The session cookie is not emulated: a client
  must send ``session_id`` (or ``token``) itself. When both are sent, ``session_id`` decides.
- ``to``: 6 to 15 digits with an optional leading ``+`` (covers 4219..., +4219..., 09...).
- Booleans (``unicode``, ``callback``): false, 0, "0", "" and the string "false" (any case)
  are false, anything else is true; null is the same as leaving the parameter out.
- ``delivery_time`` and ``deliveryDateTime`` are wall-clock times in
  ``SandboxSettings.telekom_sk_timezone`` (default Europe/Bratislava; the document names no
  zone). A ``delivery_time`` in the past means now.
- Statuses follow the injected clock from the moment a message is due (acceptance, or its
  ``delivery_time``): SCHEDULED before that, then QUEUED, SENT after ``sent_after`` s,
  DELIVERED (or a ``final_status`` fault's status) after ``delivered_after`` s. Validity is
  counted from the due moment too; if it ends before the message would be SENT, the message
  becomes EXPIRED. ``deliveryDateTime`` is set only for DELIVERED.
- One recipient per request: ``message_count`` is always 1. Message ids count up from 100000
  and are never reused, not even after ``/_sandbox/reset``.
- Parts: ``unicode`` false counts the text after diacritics are stripped (GSM-7), true counts
  UTF-16 units (70/67 per part), absent detects the encoding from the text.
- Faults: ``error_code`` with DENIED or UNDELIVERABLE on ``send_message`` answers a valid,
  authenticated request with ``result`` OK and that code inside ``messages[]`` (status
  "error", ``message_id`` null); any other code, or any other function, answers with a
  top-level error. ``session_loss`` drops every session and answers SESSION_NOT_FOUND.
  ``latency`` and ``timeout`` process the request at once and hold only the answer, so a
  client that times out has still had its message accepted (and recorded as accepted).
- Every ``send_message`` request is recorded, refused ones included, with ``code`` the code
  answered (``HTTP_503`` for an ``http_status`` fault) and ``parts`` null unless the
  parameters were valid.
"""

from sms_worker.sandbox.telekom_sk.codec import Codec, JsonCodec, XmlCodec
from sms_worker.sandbox.telekom_sk.emulator import TelekomSk

__all__ = ["Codec", "JsonCodec", "TelekomSk", "XmlCodec"]
