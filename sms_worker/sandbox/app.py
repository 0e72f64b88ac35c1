"""The sandbox ASGI app: every emulated provider under its own prefix, plus ``/_sandbox``."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.routing import Mount

from sms_worker.clock import SYSTEM_CLOCK, Clock
from sms_worker.sandbox.control import Control
from sms_worker.sandbox.faults import FaultEngine
from sms_worker.sandbox.recorder import Recorder
from sms_worker.sandbox.settings import SandboxSettings
from sms_worker.sandbox.telekom_sk import JsonCodec, TelekomSk, XmlCodec


def create_app(clock: Clock | None = None, settings: SandboxSettings | None = None) -> Starlette:
    """A fresh sandbox with empty state; pass a FakeClock to drive sessions and statuses by hand."""
    clock = clock or SYSTEM_CLOCK
    settings = settings or SandboxSettings()
    recorder = Recorder(clock)
    faults = FaultEngine({TelekomSk.name: TelekomSk.endpoints})
    telekom_sk = TelekomSk(settings, clock, recorder, faults)
    control = Control(recorder, faults, reset=telekom_sk.reset)
    return Starlette(
        routes=[
            Mount("/telekom-sk", routes=[*telekom_sk.routes(JsonCodec()), *telekom_sk.routes(XmlCodec())]),
            *control.routes(),
        ]
    )
