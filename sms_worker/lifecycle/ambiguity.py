"""What a message does after an *ambiguous* attempt: one whose request went out and got no
clear answer (a timeout, a lost connection, an unreadable answer, a worker lost during the
call), so the provider may have the message.

Where the provider's API can say whether it has the message (Telefoon's ``GET /messages``),
it is asked before anything is sent again, and whatever it has is adopted
(:mod:`sms_worker.dispatch.lookup`). Where it cannot, or its listing shows only a near match (a
copy whose text the provider may have rewritten), the message's policy decides, in the words of
delivery guarantees:

- ``resend`` (at least once): sent again on the same account; the recipient may get it twice,
  and the message's history and ``possible_duplicate`` say so;
- ``give-up`` (at most once): not sent again; the final status is ``unknown``, with the reason.

The message's own policy (``on_ambiguous`` when it is sent) wins over its account's
(``on_ambiguous`` in the providers file), which wins over the deployment's
(``SMS_WORKER_ON_AMBIGUOUS``, ``resend`` by default).

**Unknown, never a failure, once unsure.** A message whose ambiguous attempt is not settled (it
is *unsure*: ``unsure_since`` is set) and that then runs out of validity, retries or retry window,
or meets a permanent failure on its next attempt, ends ``unknown``: the provider may have
delivered it, so ``expired``, ``undeliverable`` or ``rejected`` could be false. One function
decides it, :func:`runs_out`, for the validity stage, the sweep's expiry (in SQL,
:func:`runs_out_sql`) and the retry policy.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, Literal, get_args

from sms_worker.lifecycle.status import Status

if TYPE_CHECKING:
    from sqlalchemy import ColumnElement

OnAmbiguous = Literal["resend", "give-up"]
POLICIES: Final[tuple[str, ...]] = get_args(OnAmbiguous)
LEGACY_NAMES: Final = {"same-account": "resend", "never": "give-up"}
"""``SMS_WORKER_RETRY_AMBIGUOUS``'s values (deprecated until 0.3) and the policies they name."""


def runs_out(otherwise: Status, *, unsure: bool) -> Status:
    """The final status of a message that runs out (of validity, retries or its retry window) or
    fails for good: ``otherwise`` (``expired``, ``undeliverable``, ``rejected``) while no attempt
    of it is in doubt, else ``unknown``. ``unsure``: an ambiguous attempt is not settled (the
    row's ``unsure_since`` is set)."""
    return Status.UNKNOWN if unsure else otherwise


def runs_out_sql(otherwise: Status, unsure_since: ColumnElement[Any]) -> ColumnElement[str]:
    """:func:`runs_out` for each row of a bulk statement: a SQL ``CASE`` on the row's
    ``unsure_since`` column, its two branches asked of :func:`runs_out`."""
    from sqlalchemy import case  # here: the settings and the command line read the policies without SQLAlchemy

    return case((unsure_since.is_(None), runs_out(otherwise, unsure=False).value), else_=runs_out(otherwise, unsure=True).value)


def why_unknown(unsure_since: datetime | None) -> str:
    """What the reason of a message that :func:`runs_out` adds when it ends ``unknown``: since
    when an attempt may have reached the provider (nothing when ``unsure_since`` is None)."""
    if unsure_since is None:
        return ""
    return f"; an attempt since {unsure_since.isoformat()} may have reached the provider, so the outcome is unknown"
