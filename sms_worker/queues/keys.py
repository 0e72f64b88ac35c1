"""Every Redis key the pipeline uses, in one place."""

PREFIX = "smsw"
DUE = f"{PREFIX}:due"
EPOCH = f"{PREFIX}:epoch"
PRIORITIES = (3, 2, 1)


def ready(priority: int) -> str:
    return f"{PREFIX}:ready:{priority}"


def rate_limit(account: str) -> str:
    return f"{PREFIX}:rl:{account}"


def send_window(account: str) -> str:
    return f"{PREFIX}:window:{account}"


REBUILDING = f"{PREFIX}:rebuilding"


def paused(account: str) -> str:
    return f"{PREFIX}:paused:{account}"


def breaker(account: str) -> str:
    return f"{PREFIX}:breaker:{account}"


def breaker_window(account: str) -> str:
    return f"{PREFIX}:breaker:{account}:recent"


def sent_per_second(account: str, second: int) -> str:
    return f"{PREFIX}:sent:{account}:{second}"
