"""A daemon thread that does one thing every so many seconds: the lease's renewal, the
write-behind's flush."""

from __future__ import annotations

import threading


class Ticker:
    """Calls :meth:`tick` every ``interval`` seconds in a daemon thread named ``name``, from
    :meth:`start` until :meth:`stop`. A subclass writes :meth:`tick`, which must not raise: the
    thread goes on only while it returns."""

    def __init__(self, name: str, interval: float) -> None:
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop ticking, waiting up to 5 s for a tick under way to end."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)

    def tick(self) -> None:
        raise NotImplementedError

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.tick()
