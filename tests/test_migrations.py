"""Migration 0003 carries rows of every old status into the new vocabulary, and back down;
migration 0006 keeps every message pinned where it was, and back down."""

from __future__ import annotations

import os
import subprocess
import uuid
from datetime import UTC, datetime

from conftest import PYTHON
from sqlalchemy import Column, MetaData, Table, Uuid, insert, select

from sms_worker.cli import main
from sms_worker.config import reset_settings
from sms_worker.db.engine import dispose_engines, get_engine
from sms_worker.db.migrate import downgrade, upgrade
from sms_worker.lifecycle.status import Delivery, Status

OLD_STATUSES = [
    "UNSENT",
    "SCHEDULED",
    "QUEUED",
    "SENDING",
    "SENT",
    "DELIVERED",
    "EXPIRED",
    "DELETED",
    "UNDELIVERABLE",
    "DENIED",
    "IN_GROUP",
    "READ",
    "PROCESSING",
    "ERROR",
    "UNKNOWN",
]

# (old status, the provider had it) -> (status, delivery)
EXPECTED = {
    ("UNSENT", False): ("queued", None),
    ("SCHEDULED", False): ("scheduled", None),
    ("ERROR", False): ("retrying", None),
    ("PROCESSING", False): ("calling", None),
    ("EXPIRED", False): ("expired", None),
    ("UNDELIVERABLE", False): ("undeliverable", None),
    ("DENIED", False): ("rejected", None),
    ("UNKNOWN", False): ("unknown", None),
    ("SCHEDULED", True): ("submitted", "queued"),
    ("QUEUED", True): ("submitted", "queued"),
    ("IN_GROUP", True): ("submitted", "queued"),
    ("ERROR", True): ("submitted", "queued"),
    ("SENDING", True): ("submitted", "sent"),
    ("SENT", True): ("submitted", "sent"),
    ("DELIVERED", True): ("delivered", "delivered"),
    ("READ", True): ("delivered", "delivered"),
    ("EXPIRED", True): ("expired", "expired"),
    ("DELETED", True): ("undeliverable", "undeliverable"),
    ("UNDELIVERABLE", True): ("undeliverable", "undeliverable"),
    ("DENIED", True): ("rejected", "rejected"),
    ("UNKNOWN", True): ("unknown", "undetermined"),
}


def old_row(status: str, reported: bool) -> dict:
    now = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    return {
        "id": uuid.uuid4(),
        "recipient": "+421900000001",
        "sender": None,
        "text": f"{status} {reported}",
        "encoding": "GSM-7",
        "segments": 1,
        "priority": 2,
        "provider": "telekom-sk",
        "requested_provider": None,
        "status": status,
        "provider_status": status if reported else None,
        "attempts": 1 if reported or status in ("ERROR", "PROCESSING") else 0,
        "unicode": None,
        "flash": False,
        "send_after": now,
        "valid_until": now,
        "lease_until": now if status == "PROCESSING" else None,
        "provider_message_id": "100001" if reported else None,
        "created_at": now,
        "updated_at": now,
    }


def test_every_old_status_is_carried_over_and_back(database_url, monkeypatch, capsys, request):
    dispose_engines()
    downgrade(database_url, "0002")
    engine = get_engine(database_url)
    messages, events = _tables(engine)
    rows = {(status, reported): old_row(status, reported) for status, reported in EXPECTED}
    at = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(insert(messages), list(rows.values()))
        failed = rows[("ERROR", False)]["id"]
        reported = rows[("DELIVERED", True)]["id"]
        conn.execute(
            insert(events),
            [
                {"message_id": failed, "at": at, "status": "UNSENT", "provider_status": None, "reason": "accepted"},
                {"message_id": failed, "at": at, "status": "PROCESSING", "provider_status": None, "reason": "claimed for attempt 1 via telekom-sk"},
                {"message_id": failed, "at": at, "status": "ERROR", "provider_status": "HTTP_503", "reason": "transient failure HTTP_503: down"},
                {"message_id": reported, "at": at, "status": "QUEUED", "provider_status": "QUEUED", "reason": "accepted by telekom-sk as 100001"},
                {"message_id": reported, "at": at, "status": "DELIVERED", "provider_status": "DELIVERED", "reason": "status from telekom-sk"},
            ],
        )
    dispose_engines()
    monkeypatch.setenv("SMS_WORKER_DATABASE_URL", database_url)
    reset_settings()
    request.addfinalizer(reset_settings)

    assert main(["db", "upgrade"]) == 0
    assert capsys.readouterr().out == "database upgraded from 0002 to revision 0006\n"

    engine = get_engine(database_url)
    messages, events = _tables(engine)
    with engine.connect() as conn:
        found = {row.id: row for row in conn.execute(select(messages))}
        history = {(row.message_id, row.reason): row for row in conn.execute(select(events))}
    for key, (status, delivery) in EXPECTED.items():
        row = found[rows[key]["id"]]
        assert (row.status, row.delivery) == (status, delivery), key
        assert row.status in {s.value for s in Status} and (row.delivery is None or row.delivery in {d.value for d in Delivery})
    assert found[rows[("PROCESSING", False)]["id"]].dispatcher == "pre-0003", "a call left in flight is an ambiguous attempt for the sweep"
    assert "lease_until" not in messages.c
    assert [
        (history[(failed, r)].status, history[(failed, r)].code, history[(failed, r)].provider_status)
        for r in ("accepted", "claimed for attempt 1 via telekom-sk", "transient failure HTTP_503: down")
    ] == [("queued", None, None), ("calling", None, None), ("retrying", "HTTP_503", None)]
    assert [history[(reported, r)].status for r in ("accepted by telekom-sk as 100001", "status from telekom-sk")] == ["submitted", "delivered"]
    dispose_engines()

    downgrade(database_url, "0002")

    engine = get_engine(database_url)
    with engine.connect() as conn:
        back = {row.id: row.status for row in conn.execute(select(_tables(engine)[0]))}
    assert set(back.values()) <= set(OLD_STATUSES)
    assert back[rows[("DELIVERED", True)]["id"]] == "DELIVERED" and back[rows[("UNSENT", False)]["id"]] == "UNSENT"
    dispose_engines()
    upgrade(database_url)


def test_every_message_stays_pinned_where_it_was_across_0006_and_back(database_url):
    """0005 kept the producer's choice and an ambiguous attempt's pin both in
    ``requested_account``; 0006 reads the pin from ``pinned_account``. Up, every pin is kept
    (and a report ``unknown`` is ``undetermined``); down, a pin made since is where 0005 reads it,
    so the earlier release sends the message through no other account."""
    dispose_engines()
    downgrade(database_url, "0005")
    engine = get_engine(database_url)
    messages, _ = _tables(engine)
    named, pinned, free = (old_row("UNSENT", False) for _ in range(3))
    reported = old_row("SENT", True)
    at_0005 = {"account": "telekom-sk", "requested_account": None, "status": "queued", "delivery": None}
    rows = [
        {**row, **at_0005, **changes}
        for row, changes in (
            (named, {"requested_account": "telekom-sk"}),
            (pinned, {"requested_account": "dexatel", "status": "retrying", "unsure_since": named["created_at"]}),
            (free, {}),
            (reported, {"status": "submitted", "delivery": "unknown", "provider_status": "UNKNOWN"}),
        )
    ]
    with engine.begin() as conn:
        conn.execute(insert(messages), [{k: v for k, v in row.items() if k in messages.c} for row in rows])
    dispose_engines()

    upgrade(database_url)

    engine = get_engine(database_url)
    messages, _ = _tables(engine)
    with engine.connect() as conn:
        found = {row.id: row for row in conn.execute(select(messages))}
    assert [(found[r["id"]].requested_account, found[r["id"]].pinned_account) for r in (named, pinned, free)] == [
        ("telekom-sk", "telekom-sk"),
        ("dexatel", "dexatel"),
        (None, None),
    ]
    assert (found[reported["id"]].status, found[reported["id"]].delivery) == ("submitted", "undetermined")
    pinned_since = free["id"]
    with engine.begin() as conn:
        conn.execute(messages.update().where(messages.c.id == pinned_since).values(pinned_account="dexatel", status="retrying"))
    dispose_engines()

    downgrade(database_url, "0005")

    engine = get_engine(database_url)
    messages, _ = _tables(engine)
    with engine.connect() as conn:
        back = {row.id: row for row in conn.execute(select(messages))}
    assert "pinned_account" not in messages.c
    assert [back[r["id"]].requested_account for r in (named, pinned, free)] == ["telekom-sk", "dexatel", "dexatel"]
    assert back[reported["id"]].delivery == "unknown"
    dispose_engines()
    upgrade(database_url)


def _tables(engine) -> tuple[Table, Table]:
    """The two tables as the database has them now, ids read as UUIDs whatever the dialect."""
    tables = MetaData()
    messages = Table("sms_message", tables, Column("id", Uuid(), primary_key=True), autoload_with=engine)
    events = Table("sms_message_event", tables, Column("message_id", Uuid()), autoload_with=engine)
    return messages, events


def test_processes_that_upgrade_an_empty_database_at_once_take_turns_and_all_succeed(empty_database_url, tmp_path):
    """Issue 15, a sibling of the Procfile's start: its worker, scheduler and callback receiver
    each run `sms-worker db upgrade` at the same moment on a fresh database. One migrates, the
    others find the latest revision; none fails on a table another one created."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMS_WORKER_")}
    env |= {"SMS_WORKER_DATABASE_URL": empty_database_url, "SMS_WORKER_HOME": str(tmp_path / "home")}
    upgrades = [
        subprocess.Popen([PYTHON, "-m", "sms_worker.cli", "db", "upgrade"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(4)
    ]

    outputs = [process.communicate(timeout=120)[0] for process in upgrades]

    assert [process.returncode for process in upgrades] == [0] * 4, "\n".join(outputs)
    assert sum("upgraded from empty" in output for output in outputs) == 1, outputs
    assert sum("is at the latest revision" in output for output in outputs) == 3, outputs
