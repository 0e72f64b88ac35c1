"""The worker-process hooks that start and end a worker process's runtime
(:func:`sms_worker.runtime.process_runtime`).

Celery's ``worker_process_init`` starts the lease's keeper and opens the provider accounts
(pausing one that meets an account-wide fault), and ``worker_process_shutdown`` closes the
accounts' adapters and the HTTP client, writes what is held and ends the lease
(:meth:`~sms_worker.runtime.Runtime.close`). The hooks are connected when Celery loads the
modules its app includes (``tasks.app.create_celery``), which it does before it forks its pool.
"""

from __future__ import annotations

import gc
import threading

from celery.signals import worker_process_init, worker_process_shutdown

from sms_worker.logs import get_logger, mask_numbers
from sms_worker.providers.failures import ProviderError
from sms_worker.providers.pause import pause_for
from sms_worker.runtime import process_runtime

log = get_logger("accounts")


def open_accounts() -> None:
    """Open every provider account of this process (log in, or its cheapest authenticated call).

    An account-wide fault met there (credentials refused, IP not allowed, no balance:
    :attr:`~sms_worker.providers.failures.Failure.pauses_account`) pauses the account at once,
    with the loud line a send that met it would log (:func:`~sms_worker.providers.pause.pause_for`),
    so no message goes to it only to find out. Any other failure (a timeout, a 503, a code the
    adapter does not know) is logged and the account stays in routing: its first message meets
    whatever holds by then and is classified there. Nothing is raised."""
    rt = process_runtime()
    for name, account in rt.accounts.items():
        try:
            account.adapter.open()
        except ProviderError as error:
            if error.failure.pauses_account:
                pause_for(rt.redis, name, error.failure)
            else:
                log.warning("could not open account %s: %s", name, mask_numbers(str(error)))


@worker_process_init.connect
def _start_process(**_: object) -> None:
    """Per-process resources as a worker process starts: the lease and its keeper thread, and
    the providers' sessions, opened in the background so the first batch neither waits for
    them nor reaches the provider late and bunched. Then what the process holds so far (every
    module, the runtime) is moved out of the garbage collector's sight (``gc.freeze``, as the
    Python documentation advises for forked workers): a full collection scans only what the
    batches create since. Unfrozen, a worker with a few hundred calls in flight paused 150 to
    300 ms at each, every second or two, holding every thread: calls left late and in bunches."""
    process_runtime().start_keeper()
    threading.Thread(target=open_accounts, name="sms-open-accounts", daemon=True).start()
    gc.freeze()


@worker_process_shutdown.connect
def _end_process(**_: object) -> None:
    """A clean exit closes the adapters and the HTTP client, writes what it holds and ends its
    lease, so nothing waits for it to go stale."""
    process_runtime().close()
