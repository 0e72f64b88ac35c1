"""Several accounts against the sandbox: a providers file naming them, faults, and driving the
dispatcher in-process until every message is settled (the ``multi_runtime`` fixture is in
conftest)."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import httpx
from conftest import promote_once
from sqlalchemy import func, select

from sms_worker.dispatch.service import dispatch_batch
from sms_worker.lifecycle.status import HELD_VALUES, WAITING_VALUES
from sms_worker.lifecycle.tables import MESSAGES

ACCOUNTS = {
    "telekom-sk": 'type = "telekom-sk"\nbase_url = "{url}/telekom-sk"\ntoken = "sandbox-token"',
    "dt-a2p": 'type = "dt-a2p"\nbase_url = "{url}/dt-a2p"\napi_key = "{dt_key}"\ndefault_sender = "+4915112345678"',
    "dexatel": 'type = "dexatel"\nbase_url = "{url}/dexatel"\napi_key = "sandbox-dexatel-key"\ndefault_sender = "ACME"',
    "session-key": 'type = "session-key"\nbase_url = "{url}/session-key"\nusername = "sandbox-user"\npassword = "sandbox-pass"',
    "telefoon": 'type = "telefoon"\nbase_url = "{url}/telefoon/v1/sms"\napi_key = "sandbox-telefoon-key"\ndefault_sender = "ACME"',
}


def write_providers(
    path: Path,
    url: str,
    names: list[str],
    *,
    default: dict[str, int] | None = None,
    dt_key: str = "sandbox-dt-key",
    extra: str = "",
    rates: dict[str, float] | None = None,
) -> Path:
    rates = rates or {}
    tables = "".join(
        f"\n[accounts.{name}]\n{ACCOUNTS[name].format(url=url, dt_key=dt_key)}\nrate = {rates.get(name, 1000)}\nburst = 1000\n" for name in names
    )
    weights = ", ".join(f'"{name}" = {weight}' for name, weight in (default or dict.fromkeys(names, 1)).items())
    path.write_text(f"{tables}{extra}\n[routing]\ndefault = {{ {weights} }}\n")
    return path


def fault(sandbox, **rule) -> None:
    httpx.post(f"{sandbox.url}/_sandbox/faults", json=rule).raise_for_status()


def unsettled(rt) -> int:
    with rt.engine.connect() as conn:
        return conn.execute(select(func.count()).where(MESSAGES.c.status.in_([*WAITING_VALUES, *HELD_VALUES]))).scalar_one()


def drain(rt, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while unsettled(rt):
        assert time.monotonic() < deadline, f"{unsettled(rt)} message(s) still unsent after {timeout}s"
        promote_once(rt)
        dispatch_batch(rt)
        time.sleep(0.005)


def statuses(rt) -> Counter:
    with rt.engine.connect() as conn:
        return Counter(dict(conn.execute(select(MESSAGES.c.status, func.count()).group_by(MESSAGES.c.status)).all()))


def message_row(rt, message_id):
    with rt.engine.connect() as conn:
        return conn.execute(select(MESSAGES).where(MESSAGES.c.id == message_id)).one()
