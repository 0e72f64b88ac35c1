"""What every emulated provider offers the sandbox app, so adding one is one line in ``app.py``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Protocol

from starlette.routing import BaseRoute

from sms_worker.clock import Clock
from sms_worker.sandbox.faults import FaultEngine
from sms_worker.sandbox.recorder import Recorder
from sms_worker.sandbox.settings import SandboxSettings


class Emulator(Protocol):
    """One provider's API, mounted under ``/<name>``; ``endpoints`` are the names fault rules use,
    ``checks`` those of them that answer a message's status (``/_sandbox/requests`` sums them)."""

    name: ClassVar[str]
    endpoints: ClassVar[frozenset[str]]
    checks: ClassVar[frozenset[str]]

    def __init__(self, settings: SandboxSettings, clock: Clock, recorder: Recorder, faults: FaultEngine) -> None: ...

    def routes(self) -> Sequence[BaseRoute]: ...

    def reset(self) -> None:
        """Forget messages, sessions and balances, as at start-up (message ids keep counting)."""
        ...
