"""The sandbox ASGI app: every emulated provider under its own prefix, plus ``/_sandbox``."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.routing import Mount

from sms_worker.clock import SYSTEM_CLOCK, Clock
from sms_worker.sandbox.base import Emulator
from sms_worker.sandbox.control import Control
from sms_worker.sandbox.dexatel import Dexatel
from sms_worker.sandbox.dt_a2p import DtA2p
from sms_worker.sandbox.faults import FaultEngine
from sms_worker.sandbox.recorder import Recorder
from sms_worker.sandbox.session_key import SessionKey
from sms_worker.sandbox.settings import SandboxSettings
from sms_worker.sandbox.telefoon import Telefoon
from sms_worker.sandbox.telekom_sk import TelekomSk

EMULATORS: tuple[type[Emulator], ...] = (TelekomSk, DtA2p, SessionKey, Telefoon, Dexatel)


def create_app(clock: Clock | None = None, settings: SandboxSettings | None = None) -> Starlette:
    """A fresh sandbox with empty state; pass a FakeClock to drive sessions and statuses by hand."""
    clock = clock or SYSTEM_CLOCK
    settings = settings or SandboxSettings()
    recorder = Recorder(clock)
    faults = FaultEngine({emulator.name: emulator.endpoints for emulator in EMULATORS})
    emulators = [emulator(settings, clock, recorder, faults) for emulator in EMULATORS]

    def reset() -> None:
        for emulator in emulators:
            emulator.reset()

    control = Control(recorder, faults, reset=reset)
    return Starlette(routes=[*(Mount(f"/{e.name}", routes=e.routes()) for e in emulators), *control.routes()])
