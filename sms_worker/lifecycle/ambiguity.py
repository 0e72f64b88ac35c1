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
"""

from __future__ import annotations

from typing import Final, Literal, get_args

OnAmbiguous = Literal["resend", "give-up"]
POLICIES: Final[tuple[str, ...]] = get_args(OnAmbiguous)
LEGACY_NAMES: Final = {"same-account": "resend", "never": "give-up"}
"""``SMS_WORKER_RETRY_AMBIGUOUS``'s values (deprecated until 0.3) and the policies they name."""
