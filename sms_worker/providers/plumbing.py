"""The HTTP plumbing every adapter shares: one error mapping (network failures, HTTP status
classes, and provider error codes looked up in each adapter's table), one reading of JSON
answers, and one reading of the JSON bodies providers post as delivery callbacks. An error body
is an error whatever the HTTP status it comes with: a provider that answers ``200`` with its
error envelope is refused by its own code, exactly as under a 4xx. The client they call through
is the runtime's (:func:`~.transport.guarded_client`)."""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any, Final, NoReturn

import httpx

from sms_worker.logs import origin
from sms_worker.providers.failures import UNLISTED_CODE, ErrorClass, ErrorKind, ProviderError
from sms_worker.providers.transport import ResponseTooLarge
from sms_worker.providers.words import spelled

TIMEOUT: Final = "TIMEOUT"
CONNECTION_LOST: Final = "CONNECTION_LOST"
BAD_RESPONSE: Final = "BAD_RESPONSE"
"""The codes of the ambiguous failures met in an exchange (:data:`ErrorKind.AMBIGUOUS`)."""
CONNECT_TIMEOUT: Final = "CONNECT_TIMEOUT"
CONNECTION: Final = "CONNECTION"
"""The codes of a request that never left: no connection could be made (transient)."""
HTTP_PREFIX: Final = "HTTP_"
"""An error status without the provider's own code is ``HTTP_<status>`` (``HTTP_503``)."""


def bad_response(text: str) -> ProviderError:
    """An answer that is not the API's (not JSON, a field missing): the request went out and the
    provider may have taken the message, so the failure is ambiguous."""
    return ProviderError(ErrorKind.AMBIGUOUS, BAD_RESPONSE, text)


@contextmanager
def transport_errors() -> Iterator[None]:
    """Network failures, whatever the provider. Failing to connect means the request never left
    (``CONNECTION``, ``CONNECT_TIMEOUT``: transient); a timeout (the exchange's deadline
    included), a broken connection or an answer cut off for its size after the request was sent
    may hide an accepted message (``TIMEOUT``, ``CONNECTION_LOST``, ``BAD_RESPONSE``: ambiguous).
    Each text names where the request went (:func:`where`): ``could not connect to
    http://no-such-host.invalid: ConnectError: [Errno -2] Name or service not known``."""
    try:
        yield
    except ResponseTooLarge as exc:
        raise bad_response(f"answer from {where(exc)} {exc}") from None
    except (httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
        raise ProviderError(ErrorKind.TRANSIENT, CONNECT_TIMEOUT, f"could not connect to {where(exc)} in time ({type(exc).__name__})") from None
    except httpx.TimeoutException as exc:
        raise ProviderError(ErrorKind.AMBIGUOUS, TIMEOUT, f"no answer from {where(exc)} in time ({type(exc).__name__})") from None
    except httpx.ConnectError as exc:
        raise ProviderError(ErrorKind.TRANSIENT, CONNECTION, f"could not connect to {where(exc)}: {type(exc).__name__}: {exc}") from None
    except httpx.TransportError as exc:
        raise ProviderError(ErrorKind.AMBIGUOUS, CONNECTION_LOST, f"connection to {where(exc)} lost: {type(exc).__name__}: {exc}") from None


def where(failure: httpx.RequestError | httpx.Response) -> str:
    """The origin of the request that failed or was answered, ``scheme://host[:port]``
    (:func:`~sms_worker.logs.origin`: never its query, where a login's password travels, nor
    credentials); ``an unknown address`` for an error raised outside an httpx client, which
    attaches its request to every error it raises."""
    try:
        request = failure.request
    except RuntimeError:
        return "an unknown address"
    return origin(str(request.url))


def raise_for_http_status(response: httpx.Response) -> None:
    """5xx and 429 are worth retrying. 401, 403, 404 and 405 mean the account or its URL is
    wrong, for every message alike: account-wide, so the account pauses instead of failing its
    whole backlog. Other 4xx answers are this message's fault. The text names where the request
    went and holds the start of the answer: ``http://127.0.0.1:8025 answered 503: Service
    Unavailable``."""
    code = response.status_code
    if code < 400:
        return
    text = f"{where(response)} answered {code}: {response.text[:200] or response.reason_phrase}"
    if code >= 500 or code == 429:
        raise ProviderError(ErrorKind.TRANSIENT, f"{HTTP_PREFIX}{code}", text)
    raise ProviderError(ErrorKind.PERMANENT, f"{HTTP_PREFIX}{code}", text, account_wide=code in (401, 403, 404, 405))


def server_time(response: httpx.Response) -> datetime | None:
    """The moment the answer was made on the provider's clock, from its ``Date`` header (which
    HTTP has every origin server with a clock send, to the second: RFC 9110, section 6.6.1);
    None without one, or if it cannot be read."""
    value = response.headers.get("date")
    if value is None:
        return None
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return moment if moment.tzinfo is not None else None


def json_object(response: httpx.Response) -> dict[str, Any]:
    """The answer as a JSON object; anything else is :func:`bad_response`."""
    try:
        body = response.json()
    except ValueError:
        raise bad_response(f"not JSON: {response.text[:100]!r}") from None
    if not isinstance(body, dict):
        raise bad_response(f"not a JSON object: {response.text[:100]!r}")
    return body


def json_or_none(response: httpx.Response) -> Any:
    """The answer as JSON, or None when it is not JSON (an error page from a proxy, say)."""
    try:
        return response.json()
    except ValueError:
        return None


ErrorReader = Callable[[Any], tuple[Hashable, str] | None]
"""Finds (code, message) in an error answer's JSON body (None if it is not there); the code is
looked up in the provider's table as it is, and reported as a string."""


def error_envelope(body: Any) -> tuple[str, str] | None:
    """``{"error": {"code": ..., "message": ...}}``, the error body Dexatel and DT A2P answer with."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None
    return str(error.get("code") or ""), str(error.get("message") or "")


def raise_provider_error(response: httpx.Response, table: Mapping[Any, ErrorClass], code: Hashable, text: str) -> NoReturn:
    """The provider's own error ``code`` found in the body of ``response``, under any HTTP status:
    as ``table`` classifies it (so an account-wide code pauses the account even when it came
    with ``200``). A code the table does not know is classified by the HTTP status where that is
    an error status (:func:`raise_for_http_status`: a new 5xx code is still retried), and is
    :data:`~sms_worker.providers.failures.UNLISTED_CODE` (permanent, for this message only) under
    a success status. A code is looked up and reported as the table has it (an adapter's table is
    :class:`~sms_worker.providers.words.Words`: ``"unauthorized"`` is ``UNAUTHORIZED``)."""
    error_class = table.get(code)
    if error_class is not None:
        raise error_class.error(str(spelled(table, code)), text)
    raise_for_http_status(response)
    raise UNLISTED_CODE.error(str(code), text)


def raise_for_error(response: httpx.Response, table: Mapping[Any, ErrorClass], read: ErrorReader = error_envelope) -> None:
    """Any answer whose body ``read`` finds an error in, whatever its HTTP status, as the
    provider's own error (:func:`raise_provider_error`); an error status without such a body (a
    proxy, a wrong URL) by its status alone (:func:`raise_for_http_status`)."""
    found = read(json_or_none(response))
    if found is not None:
        raise_provider_error(response, table, *found)
    raise_for_http_status(response)


def callback_json(body: bytes, content_type: str, what: str, *, second_reading: Callable[[str], str] | None = None) -> Any:
    """A delivery callback's body as JSON (RFC 8259), for ``parse_callback``.

    The body must be declared ``application/json`` (or a ``+json`` type), be UTF-8 (RFC 8259
    section 8.1) and be JSON; ``NaN`` and ``Infinity`` are not JSON, and a document nested
    deeper than the parser goes (200 KB of ``[``) is refused rather than crashing it.
    ``second_reading`` repairs the text once when it is not JSON, for a provider whose own
    documented example is not (Telekom SK's trailing comma). Raises ValueError with a short
    reason that starts with ``what`` (the provider's name for the callback).
    """
    media_type = content_type.partition(";")[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise ValueError(f"{what} is JSON, not {media_type or 'a body without a content type'}")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"{what} is not UTF-8 (byte {error.start} is not)") from None
    try:
        return _strict_json(text)
    except RecursionError:
        raise ValueError(f"{what} is nested too deeply to be a delivery report") from None
    except ValueError:
        if second_reading is None:
            raise ValueError(f"{what} is not JSON") from None
    try:
        return _strict_json(second_reading(text))
    except (ValueError, RecursionError):
        raise ValueError(f"{what} is not JSON") from None


def message_id_of(value: object) -> str | None:
    """A provider's message id as sms_worker stores it: a non-empty string as it is, an integer
    (not a boolean) in decimal; None for anything else (null, an object, a list, a float)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value if isinstance(value, str) and value else None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _strict_json(text: str) -> Any:
    return json.loads(text, parse_constant=_refuse_constant)
