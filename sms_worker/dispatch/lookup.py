"""After an ambiguous attempt, asking the provider whether it has the message, where its API can
say (:class:`~sms_worker.providers.base.FindsSent`), before anything is sent again.

**A question, not an attempt.** Nothing is sent: the row stays ``claimed`` while it is asked
(a worker lost meanwhile leaves it to be queued again, no attempt counted), no attempt is counted,
no retry used, no "attempt" event written, and the answer says nothing of whether the account can
take messages, so a failed question never counts against its circuit breaker (a copy found
counts for it: the account answered). It runs in the submit stage's pool beside the sends, under
a deadline of its own (``SMS_WORKER_LOOKUP_TIMEOUT_SECONDS``, every page of a listing included).
The one write is a copy's adoption (its id on the row, before the answer is used).

**The window in question** is the lost attempt's: from ``unsure_since`` (when its call was
recorded as started) to the latest its request could have reached the provider: the latest it
may leave (:data:`~sms_worker.dispatch.stages.requests.LATEST_DEPARTURE`; the call is not made
later) and the exchange's deadline. The adapter reads only the part of its listing created
then, on the provider's clock, widened by ``SMS_WORKER_LOOKUP_CLOCK_SLACK_SECONDS`` and the
precision of that clock: the cost of a question is the account's traffic during that window,
not since.

**The answers** (:data:`~sms_worker.dispatch.batch.Answer`), over the listed copies that no other
message of ours holds that was attempted when it could have made a copy in the part of the
listing searched (:mod:`.holders`: an id an older message holds from before a provider restart
does not count):

- :class:`~.batch.Found`: a copy with the message's text, recipient and sender; it is adopted
  (:func:`~sms_worker.lifecycle.write.adopt`: fenced, so one copy is adopted once), not sent again;
- :class:`~.batch.NearMatch`: none, but one that may be it (its text or sender differs only as a
  provider rewrites text, or its text is not listed): never "not found"; the message's
  ``on_ambiguous`` policy decides;
- :class:`~.batch.Absent`: neither: the message is sent again, flagged a possible duplicate all
  the same: the listing cannot show a lost request the provider takes after the window (from a
  queue; the chaos runs saw the sandbox take one 7 s after the client gave up);
- :class:`~.batch.Unanswered`: the question failed, or the copy found was taken meanwhile by
  another message of ours alike (``COPY_TAKEN``); asked again later.

**Alike messages** (same account, recipient, sender and text) are one to the provider, so their
copies are theirs in any order: the rule is only that each copy is adopted by one of them. Of
``n`` alike messages unsure over one window with ``k`` copies listed, ``k`` are adopted and the
others sent again, flagged as every resend after asking is (each copy stands for one message,
but a lost request the provider takes late would be one more).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sms_worker.dispatch.batch import Absent, Answer, Found, Item, NearMatch, Unanswered
from sms_worker.dispatch.holders import holders
from sms_worker.dispatch.stages.requests import LATEST_DEPARTURE
from sms_worker.lifecycle.changes import Adopted, Attempted
from sms_worker.lifecycle.write import adopt
from sms_worker.logs import get_logger, mask_phone
from sms_worker.providers.base import FindsSent, SentMatches, SentWindow
from sms_worker.providers.failures import ErrorKind, Failure, ProviderError
from sms_worker.providers.transport import deadline
from sms_worker.runtime import Runtime

log = get_logger("dispatch")
LOOKUP_FAILED: Final = "LOOKUP_FAILED"
"""The code of a question that failed on our side (an adapter or database error)."""
COPY_TAKEN: Final = "COPY_TAKEN"
"""The code of a question whose copy another of our messages took or may take meanwhile."""


@dataclass(frozen=True, slots=True)
class Question:
    """Asking about ``item``: its account's adapter, which can be asked, and when the lost
    attempt in question began."""

    item: Item
    adapter: FindsSent
    unsure_since: datetime


def question_of(rt: Runtime, item: Item) -> Question | None:
    """The question to ask about routed and claimed ``item`` before any resend; None unless it is
    unsure since an ambiguous attempt, not asked about yet in this batch, and its account's API
    can be asked."""
    account = rt.accounts.get(item.account)
    adapter = account.adapter if account is not None else None
    if item.row.unsure_since is None or item.asked_first is not None or not isinstance(adapter, FindsSent):
        return None
    return Question(item, adapter, item.row.unsure_since)


def window_of(rt: Runtime, unsure_since: datetime) -> SentWindow:
    """The window of the attempt that began at ``unsure_since`` (see the module docstring)."""
    return SentWindow(unsure_since, unsure_since + _attempt_span(rt), timedelta(seconds=rt.settings.lookup_clock_slack_seconds), rt.clock.now)


def _attempt_span(rt: Runtime) -> timedelta:
    """The longest an attempt's copy may be made after its call was recorded as started: its
    departure (:data:`~sms_worker.dispatch.stages.requests.LATEST_DEPARTURE`, which the call
    itself enforces) and the exchange's deadline."""
    return LATEST_DEPARTURE + timedelta(seconds=rt.settings.http_timeout_seconds)


def ask(rt: Runtime, question: Question) -> Answer:
    """What the account has of the asked message from the lost attempt; a copy found is adopted
    (:func:`~sms_worker.lifecycle.write.adopt`) before the answer. Never raises."""
    item = question.item
    try:
        with deadline(rt.settings.lookup_timeout_seconds):
            matches = question.adapter.find_sent(item.message, window_of(rt, question.unsure_since))
        # A message attempted up to an attempt's span before the part of the listing searched
        # may have made a copy in it; one attempted before that cannot (an id reused since).
        attempted = Attempted(matches.searched.start - _attempt_span(rt), matches.searched.end)
        answer = _answer(rt, item, matches, attempted)
        if isinstance(answer, Found):
            adoption = Adopted(item.id, item.claim, item.account, answer.accepted.provider_message_id, item.row.recipient, item.row.text, attempted)
            with rt.engine.begin() as conn:
                if not adopt(conn, adoption):
                    return Unanswered(Failure(ErrorKind.TRANSIENT, COPY_TAKEN, _taken(answer)))
        return answer
    except ProviderError as error:
        return Unanswered(error.failure)
    except Exception as error:
        log.exception("asking %s whether it has the message to %s failed", item.account, mask_phone(item.row.recipient))
        return Unanswered(Failure(ErrorKind.TRANSIENT, LOOKUP_FAILED, f"{type(error).__name__}: {error}"))


def _answer(rt: Runtime, item: Item, matches: SentMatches, attempted: Attempted) -> Found | NearMatch | Absent:
    """The first listed copy no other message of ours attempted within ``attempted`` holds."""
    listed = [copy.provider_message_id for copy in (*matches.exact, *matches.near)]
    with rt.engine.connect() as conn:
        held = holders(conn, item.account, listed, attempted=attempted, seen_in="listing")

    def free(provider_message_id: str) -> bool:
        holder = held.get(provider_message_id)
        return holder is None or holder.id == item.id

    exact = next((copy for copy in matches.exact if free(copy.provider_message_id)), None)
    if exact is not None:
        return Found(exact)
    near = next((copy for copy in matches.near if free(copy.provider_message_id)), None)
    return NearMatch(near) if near is not None else Absent()


def _taken(found: Found) -> str:
    return (
        f"the copy it lists, {found.accepted.provider_message_id}, was adopted meanwhile by another of our messages alike, or "
        "may be the answer to a call of ours to the same recipient with the same text still in flight: it is not adopted"
    )
