"""The queues' Redis keys: a ready list per priority, the due set, the epoch that tells a
flushed Redis apart, and the lock taken while the pointers are rebuilt from the database."""

from sms_worker.priority import Priority
from sms_worker.redis_keys import key

DUE = key("due")
EPOCH = key("epoch")
REBUILDING = key("rebuilding")


def ready(priority: Priority) -> str:
    """``smsw:ready:<3|2|1>``: the ready list of one priority."""
    return key("ready", priority.value)
