"""The sandbox ASGI app: every emulated provider under its own prefix, plus ``/_sandbox``."""

from __future__ import annotations

from email.utils import formatdate

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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


class DateHeader:
    """Every answer's ``Date`` from the sandbox's clock, as a server's comes from its own (RFC
    9110, section 6.6.1): a sandbox on a FakeClock says the time it lists its messages at. Serve
    the app with uvicorn's own ``Date`` off (``date_header=False``), or an answer carries two."""

    def __init__(self, app: ASGIApp, clock: Clock) -> None:
        self._app = app
        self._clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return

        async def stamped(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(name, value) for name, value in message.get("headers", []) if name.lower() != b"date"]
                headers.append((b"date", formatdate(self._clock.now().timestamp(), usegmt=True).encode("ascii")))
                message = {**message, "headers": headers}
            await send(message)

        await self._app(scope, receive, stamped)


def create_app(clock: Clock | None = None, settings: SandboxSettings | None = None) -> Starlette:
    """A fresh sandbox with empty state; pass a FakeClock to drive sessions and statuses by hand."""
    clock = clock or SYSTEM_CLOCK
    settings = settings or SandboxSettings()
    recorder = Recorder(clock)
    faults = FaultEngine({emulator.name: emulator.endpoints for emulator in EMULATORS}, seen=recorder.count)
    emulators = [emulator(settings, clock, recorder, faults) for emulator in EMULATORS]

    def reset() -> None:
        for emulator in emulators:
            emulator.reset()

    control = Control(recorder, faults, reset=reset, checks={emulator.name: emulator.checks for emulator in EMULATORS})
    return Starlette(
        routes=[*(Mount(f"/{e.name}", routes=e.routes()) for e in emulators), *control.routes()],
        middleware=[Middleware(DateHeader, clock=clock)],
    )
