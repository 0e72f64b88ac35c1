"""What every account of the providers file is declared with; :mod:`.accounts` reads the file.

Each adapter module declares its account model (``DexatelAccount`` in :mod:`.dexatel`, ...)
on :class:`AccountBase`: ``type`` as a ``Literal``, its credentials as ``SecretStr`` fields and
its options with their types, so the file is checked once, here, and the adapter is handed a
typed object. The rules:

- Unknown keys are errors (``extra="forbid"``): a typo names the key instead of a default
  silently used.
- Values are not coerced (``strict``): ``rate = "5"`` or ``use_session = 1`` is refused, as TOML
  has the types to say what is meant. Lists become frozensets or tuples where the model says so.
- Every ``SecretStr`` field is a secret, given inline (``api_key = "..."``) or, better, by
  the environment variable holding it (``api_key_env = "DEXATEL_KEY"``); the variables are
  read from the validation context's ``environ`` (``os.environ`` without one). The required
  ones are the type's credentials; ``callback_token``, every type's, is optional.
- A field whose every failure reads best as one sentence declares it with :func:`reason`.
- What an account can carry (sender IDs, text characters) is data too:
  :meth:`AccountBase.eligibility`, which routing reads.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from typing import Annotated, Any, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from sms_worker.addresses import country_code
from sms_worker.config import ENVIRONMENT_SUFFIX
from sms_worker.endpoints import http_url_problem
from sms_worker.errors import InvalidField
from sms_worker.lifecycle.ambiguity import OnAmbiguous
from sms_worker.providers.eligibility import Eligibility
from sms_worker.validation import validate_sender


def reason(text: str) -> WrapValidator:
    """Any failure of the annotated type reads as ``text`` (one error, at the field itself)."""

    def wrap(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        try:
            return handler(value)
        except ValidationError:
            raise PydanticCustomError("invalid", text) from None

    return WrapValidator(wrap)


def _sender_id(value: str) -> str:
    try:
        sender = validate_sender(value)
    except InvalidField as error:
        raise ValueError(error.reason) from None
    if sender is None:
        raise ValueError("must not be empty")
    return sender


NonEmpty = Annotated[str, StringConstraints(min_length=1)]
Trimmed = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
"""A string with its surrounding spaces cut off, not empty after that."""
Credential = Annotated[SecretStr, Field(min_length=1)]
Rate = Annotated[float, Field(gt=0, allow_inf_nan=False), reason("must be a positive number of messages per second")]
CheckRate = Annotated[float, Field(gt=0, allow_inf_nan=False), reason("must be a positive number of status checks per second")]
Burst = Annotated[int, Field(ge=1), reason("must be a positive integer")]
Names = Annotated[frozenset[NonEmpty], Field(strict=False), reason("must be a list of non-empty strings")]
SenderId = Annotated[str, AfterValidator(_sender_id)]
"""A sender ID as a message's must be (:func:`~sms_worker.validation.validate_sender`: a phone
number, or a name of at most 11 characters with a letter or digit and no space at either end),
kept as written: an account's ``default_sender``, ``sender_id`` and each of its ``senders``."""
SenderIds = Annotated[frozenset[SenderId], Field(strict=False)]
"""A list of :data:`SenderId`, each refused by its place in the list."""


CountryCode = Annotated[str, AfterValidator(country_code)]
"""A destination country (:func:`~sms_worker.addresses.country_code`), kept upper-case."""
CountryCodes = Annotated[frozenset[CountryCode], Field(strict=False)]
"""A list of :data:`CountryCode`, each refused by its place in the list."""


def _http_url(value: str) -> str:
    if (problem := http_url_problem(value)) is not None:
        raise ValueError(f"{problem}, not {value!r}")
    return value


HttpUrl = Annotated[str, StringConstraints(strip_whitespace=True), AfterValidator(_http_url)]
"""An absolute ``http`` or ``https`` URL with a host (RFC 3986 scheme and authority): a
``base_url`` without its scheme (``127.0.0.1:8025/dexatel``) is refused when the file is read,
not at the first request."""


def fits(pattern: Callable[[str], object], what: str) -> AfterValidator:
    """A string that ``pattern`` (e.g. ``re.compile(...).fullmatch``) accepts; else "must be ``what``"."""

    def check(value: str) -> str:
        if not pattern(value):
            raise ValueError(f"must be {what}, not {value!r}")
        return value

    return AfterValidator(check)


def _burst_of(data: dict[str, Any]) -> int:
    return max(1, math.ceil(data.get("rate", 1.0)))


class AccountBase(BaseModel):
    """One ``[accounts.NAME]`` table: what routing and dispatch read for every type. An adapter
    type adds ``type: Literal[...]``, its credentials and its options."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    type: str
    base_url: HttpUrl
    """Everything before the API's own paths (each adapter's module says where it ends)."""
    rate: Rate = 10.0
    """Messages (or segments, ``SMS_WORKER_RATE_LIMIT_UNIT``) per second, shared by every worker."""
    burst: Burst = Field(default_factory=_burst_of)
    """Tokens the bucket holds; by default the rate rounded up."""
    senders: SenderIds | None = None
    """Sender IDs this account may use; None: any."""
    alphanumeric_countries: CountryCodes | None = None
    """Destination countries (ISO 3166) that accept an alphanumeric sender from it; None: all."""
    on_ambiguous: OnAmbiguous | None = None
    """After an ambiguous attempt, where the API cannot be asked whether it has the message:
    ``resend`` or ``give-up`` (:mod:`sms_worker.lifecycle.ambiguity`); None: ``SMS_WORKER_ON_AMBIGUOUS``."""
    receipt_callbacks: bool = False
    """True: the operator gave the provider this account's callback URL, so it posts delivery
    receipts (:mod:`sms_worker.callbacks`); its messages are checked only once a receipt is
    overdue (``SMS_WORKER_RECEIPT_OVERDUE_SECONDS`` after submission). False: they are polled
    from the first second (``SMS_WORKER_STATUS_CHECK_DELAYS_SECONDS``)."""
    check_rate: CheckRate | None = None
    """Status-check requests per second this account may make, shared by every process, apart
    from ``rate``; None: ``rate`` times ``SMS_WORKER_STATUS_CHECK_SHARE``."""
    callback_token: Credential | None = None
    """The secret a delivery callback from this account must carry (``?token=`` in the callback
    URL given to the provider); None: ``SMS_WORKER_CALLBACK_TOKEN``, if set
    (:mod:`sms_worker.callbacks`)."""

    def eligibility(self) -> Eligibility:
        """What this account can carry (routing asks it, :mod:`.eligibility`): here the ``senders``
        and ``alphanumeric_countries`` options; an adapter type whose API has its own sender-ID
        grammar, a default sender or a wire format that cannot carry every character adds them."""
        return Eligibility(senders=self.senders, alphanumeric_countries=self.alphanumeric_countries)

    @classmethod
    def credentials(cls) -> list[str]:
        """The names of this type's credentials (its required ``SecretStr`` fields)."""
        return [name for name, field in cls.model_fields.items() if field.annotation is SecretStr]

    @classmethod
    def secrets(cls) -> list[str]:
        """The names of every ``SecretStr`` field, optional ones included: each may be given by
        an environment variable (``<name>_env``)."""
        return [name for name, field in cls.model_fields.items() if _holds_secret(field.annotation)]

    @model_validator(mode="before")
    @classmethod
    def _credentials_from_environment(cls, data: Any, info: ValidationInfo) -> Any:
        """``X_env = "VAR"`` becomes ``X`` with the value of ``$VAR``. A variable that is not set
        is an error naming the ``X_env`` key (``ctx["key"]``, which :mod:`.accounts` reports)."""
        if not isinstance(data, dict):
            return data
        environ: Mapping[str, str] = (info.context or {}).get("environ", os.environ)
        data = dict(data)
        for name in cls.secrets():
            key = name + ENVIRONMENT_SUFFIX
            if key not in data:
                continue
            variable = data.pop(key)
            if name in data:
                raise PydanticCustomError("credential_twice", "give it inline or by the environment, not both", {"key": key})
            if not isinstance(variable, str) or variable not in environ:
                raise PydanticCustomError(
                    "environment_variable_not_set", f"names the environment variable {variable!r}, which is not set", {"key": key}
                )
            data[name] = environ[variable]
        return data


def _holds_secret(annotation: Any) -> bool:
    """``SecretStr``, or a type made of it (``Credential | None``)."""
    return annotation is SecretStr or any(_holds_secret(argument) for argument in get_args(annotation))
