"""A local emulation of the SMS providers' HTTP APIs, for tests, the demo and benchmarks.

The real providers cannot be reached from here, so every adapter is exercised against this
sandbox instead. Each provider lives in its own subpackage and is mounted under its own path
prefix; what is shared between them (the log of submissions, the fault rules, the settings)
lives beside this file. Control endpoints under ``/_sandbox`` let a test or a benchmark read
what was submitted and inject failures on demand.
"""

from sms_worker.sandbox.app import create_app
from sms_worker.sandbox.settings import SandboxSettings

__all__ = ["SandboxSettings", "create_app"]
