"""Pausing a provider account after an account-wide fault (bad key, IP not allowed, no balance).

Retrying cannot help until an operator fixes the account, so its messages stay queued instead
of burning retries or failing one by one; ``sms-worker accounts resume NAME`` lifts the pause.
The flag lives in Redis: a Redis that loses its state forgets the pause, and the next message
to that account pauses it again at the cost of one uncounted attempt.
"""

from __future__ import annotations

import redis

from sms_worker.logs import get_logger, mask_numbers
from sms_worker.outages import describe_outage
from sms_worker.providers.failures import Failure
from sms_worker.redis_keys import key
from sms_worker.redis_scripts import text

log = get_logger("dispatch")


def _paused_key(account: str) -> str:
    return key("paused", account)


def pause(client: redis.Redis, account: str, reason: str) -> None:
    client.set(_paused_key(account), reason)


def pause_for(client: redis.Redis, account: str, failure: Failure) -> None:
    """Pause ``account`` for an account-wide ``failure`` met on any call (a send, a status
    check, a login), and say so loudly. A Redis that cannot be reached is logged, not raised:
    the next call meets the same fault and pauses it then."""
    reason = mask_numbers(str(failure))
    try:
        pause(client, account, reason)
    except Exception as error:  # noqa: BLE001 - the caller carries on either way; the next fault pauses it
        log.warning("could not pause account %s: %s", account, describe_outage(error) or repr(error))
        return
    log.error(
        "provider account %s PAUSED: %s. Its messages fail over to other accounts (or wait, if they named it); "
        "`sms-worker accounts resume %s` once it is fixed",
        account,
        reason,
        account,
    )


def resume(client: redis.Redis, account: str) -> bool:
    return bool(client.delete(_paused_key(account)))


def paused_reason(client: redis.Redis, account: str) -> str | None:
    value = client.get(_paused_key(account))
    return None if value is None else text(value)
