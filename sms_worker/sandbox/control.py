"""The ``/_sandbox`` endpoints: what tests and benchmarks use to look inside and to break things."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from sms_worker.sandbox.faults import FaultEngine, FaultRuleError
from sms_worker.sandbox.recorder import Recorder


class Control:
    """Reads the shared recorder and fault engine; ``reset`` also clears every provider's state."""

    def __init__(self, recorder: Recorder, faults: FaultEngine, reset: Callable[[], None], checks: Mapping[str, frozenset[str]]) -> None:
        self._recorder = recorder
        self._faults = faults
        self._reset = reset
        self._checks = checks

    def routes(self) -> list[Route]:
        return [
            Route("/_sandbox/submissions", self.submissions, methods=["GET"]),
            Route("/_sandbox/requests", self.requests, methods=["GET"]),
            Route("/_sandbox/reset", self.reset, methods=["POST"]),
            Route("/_sandbox/faults", self.list_faults, methods=["GET"]),
            Route("/_sandbox/faults", self.add_fault, methods=["POST"]),
            Route("/_sandbox/faults", self.clear_faults, methods=["DELETE"]),
        ]

    async def submissions(self, request: Request) -> JSONResponse:
        """``?provider=`` keeps one provider; ``?since=N`` keeps records with ``seq`` above N."""
        since = request.query_params.get("since", "0")
        if not since.isdigit():
            return _bad_request("since must be a non-negative integer")
        records = self._recorder.submissions(request.query_params.get("provider"), int(since))
        return JSONResponse({"submissions": records})

    async def requests(self, request: Request) -> JSONResponse:
        """Requests served since start or the last reset: ``requests`` by provider and endpoint,
        ``checks`` by provider (those of its status endpoints: a listing page counts as one), and
        ``at``, the wall clock in epoch seconds, so two reads give a rate."""
        served = self._recorder.requests()
        checks = {name: sum(served.get(name, {}).get(endpoint, 0) for endpoint in endpoints) for name, endpoints in self._checks.items()}
        return JSONResponse({"requests": served, "checks": checks, "at": time.time()})

    async def reset(self, request: Request) -> JSONResponse:
        self._recorder.clear()
        self._faults.clear()
        self._reset()
        return JSONResponse({"reset": True})

    async def list_faults(self, request: Request) -> JSONResponse:
        return JSONResponse({"faults": [rule.as_dict() for rule in self._faults.rules()]})

    async def add_fault(self, request: Request) -> JSONResponse:
        try:
            body = json.loads(await request.body())
        except ValueError:
            return _bad_request("body must be a JSON object")
        try:
            rule = self._faults.add(body)
        except FaultRuleError as exc:
            return _bad_request(str(exc))
        return JSONResponse(rule.as_dict(), status_code=201)

    async def clear_faults(self, request: Request) -> JSONResponse:
        self._faults.clear()
        return JSONResponse({"faults": []})


def _bad_request(message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=400)
