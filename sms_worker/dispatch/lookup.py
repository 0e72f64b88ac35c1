"""After an ambiguous attempt, asking the provider whether it has the message, where its API can
say (:class:`~sms_worker.providers.base.FindsSent`), before anything is sent again.

**A question, not an attempt.** Nothing is sent: the row stays ``claimed`` while it is asked
(a worker lost meanwhile leaves it to be queued again, no attempt counted), no attempt is counted,
no retry used, no "attempt" event written, and the answer says nothing of whether the account can
take messages, so a failed question never counts against its circuit breaker (a copy found
counts for it: the account answered). It runs in the submit stage's pool beside the sends, under
a deadline of its own (``SMS_WORKER_LOOKUP_TIMEOUT_SECONDS``, every page of a listing included).

**The window in question** is the lost attempt's: from ``unsure_since`` (when its call was
recorded as started) to the latest its request could have reached the provider (the longest wait
for a place in the send window, the hand-over to a thread, and the exchange's deadline). The
adapter reads only the part of its listing created then, on the provider's clock, widened by
``SMS_WORKER_LOOKUP_CLOCK_SLACK_SECONDS``: the cost of a question is the account's traffic during
that window, not since.

**The answers** (:data:`~sms_worker.dispatch.batch.Answer`), over the listed copies that no other
message of ours attempted in the same window holds (:mod:`.holders`: an id an older message
holds from before a provider restart does not count):

- :class:`~.batch.Found`: a copy with the message's text; it is adopted, not sent again;
- :class:`~.batch.NearMatch`: none with its text, but one whose text differs only as a provider
  rewrites text: it may be ours, never "not found"; the message's ``on_ambiguous`` policy decides;
- :class:`~.batch.Absent`: neither: the message is sent again, and that is no duplicate;
- :class:`~.batch.Unanswered`: the question failed; asked again later.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

from sms_worker.dispatch.batch import Absent, Answer, Found, Item, NearMatch, Unanswered
from sms_worker.dispatch.holders import Attempted, holders
from sms_worker.dispatch.stages.requests import MAX_WINDOW_WAIT
from sms_worker.logs import get_logger, mask_phone
from sms_worker.providers.base import FindsSent, SentWindow
from sms_worker.providers.failures import ErrorKind, Failure, ProviderError
from sms_worker.providers.transport import deadline
from sms_worker.runtime import Runtime

log = get_logger("dispatch")
LOOKUP_FAILED: Final = "LOOKUP_FAILED"
"""The code of a question that failed on our side (an adapter or database error)."""
HAND_OVER = timedelta(seconds=1)
"""Allowed, in a lost attempt's window, for its request's hand-over to a thread."""


def needs_asking(rt: Runtime, item: Item) -> bool:
    """``item`` is unsure since an ambiguous attempt, not asked about yet in this batch, and its
    account's API can be asked."""
    account = rt.accounts.get(item.account or "")
    return item.row.unsure_since is not None and item.asked is None and account is not None and isinstance(account.adapter, FindsSent)


def window_of(rt: Runtime, unsure_since: datetime) -> SentWindow:
    """The window of the attempt that began at ``unsure_since`` (see the module docstring)."""
    span = timedelta(seconds=MAX_WINDOW_WAIT + rt.settings.http_timeout_seconds) + HAND_OVER
    return SentWindow(unsure_since, unsure_since + span, timedelta(seconds=rt.settings.lookup_clock_slack_seconds), rt.clock.now)


def ask(rt: Runtime, item: Item) -> Answer:
    """What ``item``'s account has of its message from the lost attempt. Never raises."""
    assert item.message is not None and item.row.unsure_since is not None and item.account is not None
    adapter = rt.accounts[item.account].adapter
    assert isinstance(adapter, FindsSent)
    window = window_of(rt, item.row.unsure_since)
    try:
        with deadline(rt.settings.lookup_timeout_seconds):
            matches = adapter.find_sent(item.message, window)
        listed = [copy.provider_message_id for copy in (*matches.exact, *matches.near)]
        with rt.engine.connect() as conn:
            # Another message attempted within the window may have taken a copy; one that was
            # attempted before it began cannot hold a copy made in it (a reused id).
            held = holders(conn, item.account, listed, attempted=Attempted(window.start - (window.end - window.start), window.end), seen_in="listing")
    except ProviderError as error:
        return Unanswered(error.failure)
    except Exception as error:
        log.exception("asking %s whether it has the message to %s failed", item.account, mask_phone(item.message.recipient))
        return Unanswered(Failure(ErrorKind.TRANSIENT, LOOKUP_FAILED, f"{type(error).__name__}: {error}"))

    def free(provider_message_id: str) -> bool:
        holder = held.get(provider_message_id)
        return holder is None or holder.id == item.id

    exact = next((copy for copy in matches.exact if free(copy.provider_message_id)), None)
    if exact is not None:
        return Found(exact)
    near = next((copy for copy in matches.near if free(copy.provider_message_id)), None)
    return NearMatch(near) if near is not None else Absent()
