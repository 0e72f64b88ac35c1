"""Stop signals turned into a request that the main thread checks where it chooses.

A handler that raises (``KeyboardInterrupt`` from SIGINT, or any exception of ours) interrupts
whatever the main thread runs at that instant: a ``finally`` half done, a child half started, or
an ``exec()`` of a string, which ``dataclasses`` uses to build the methods of every dataclass it
defines. On CPython 3.11 an exception that leaves such an ``exec()`` sets a process-wide flag, and
the interpreter then kills itself with SIGINT on its way out even when the code caught the
exception and cleaned up: the demo, stopped by SIGTERM, exited -2 (issue 15). So the handlers
here only record the signal and wake a waiter (:func:`signal.set_wakeup_fd`); the code raises
:class:`StopRequested` itself, at points where stopping is safe, and its clean-up runs with the
handlers still installed, so a second signal changes nothing.
"""

from __future__ import annotations

import os
import select
import signal
from types import FrameType, TracebackType

from sms_worker.errors import SmsWorkerError

STOP_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
"""Ctrl-C, ``kill`` and a closed terminal."""


class StopRequested(SmsWorkerError):
    """Raised by :meth:`StopSignals.check` once a stop signal has arrived; ``signal`` names it."""

    def __init__(self, received: signal.Signals) -> None:
        super().__init__(f"stopped by {received.name}")
        self.signal = received


class StopSignals:
    """While entered (in the main thread), SIGINT, SIGTERM and SIGHUP only record that a stop was
    asked for: :attr:`received` is the first of them, :meth:`wait` returns early when one comes,
    :meth:`check` raises :class:`StopRequested`. On exit the previous handlers come back, unless
    a stop was asked for: then these signals stay ignored, so that a late one cannot kill the
    process on its way out after its clean-up."""

    def __init__(self, signals: tuple[signal.Signals, ...] = STOP_SIGNALS) -> None:
        self.signals = signals
        self.received: signal.Signals | None = None
        self._previous: dict[signal.Signals, signal._HANDLER] = {}
        self._previous_wakeup = -1
        self._reader = self._writer = -1

    def __enter__(self) -> StopSignals:
        self._reader, self._writer = os.pipe()
        os.set_blocking(self._reader, False)
        os.set_blocking(self._writer, False)
        self._previous_wakeup = signal.set_wakeup_fd(self._writer, warn_on_full_buffer=False)
        for signum in self.signals:
            self._previous[signum] = signal.signal(signum, self._record)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, signal.SIG_IGN if self.received is not None else previous)
        signal.set_wakeup_fd(self._previous_wakeup)
        os.close(self._reader)
        os.close(self._writer)

    def _record(self, signum: int, frame: FrameType | None) -> None:
        if self.received is None:
            self.received = signal.Signals(signum)

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``, less if a stop signal arrives; True once one has."""
        if self.received is None:
            readable, _, _ = select.select([self._reader], [], [], seconds)
            if readable:
                self._drain()
        return self.received is not None

    def _drain(self) -> None:
        try:
            while os.read(self._reader, 512):
                pass
        except BlockingIOError:
            pass

    def check(self) -> None:
        """Raise :class:`StopRequested` if a stop signal has arrived; else nothing."""
        if self.received is not None:
            raise StopRequested(self.received)
