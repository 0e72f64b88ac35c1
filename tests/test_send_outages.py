"""A send with a server away: it writes nothing and says so, or returns the ids of what it wrote
and says how they will be queued; never both an error and a message.

Over the real servers: a Redis port with nothing listening or a redis-server stopped, a
PostgreSQL backend killed at the COMMIT, a proxy that loses the COMMIT's answer, the sandbox's
submission log as the count of SMS sent."""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import PG_URL, process_env, promote_once, wait_until
from forked import run_cli as cli
from pgproxy import PgProxy
from sqlalchemy import create_engine, delete, event, func, literal, select, text

from sms_worker.clock import FakeClock
from sms_worker.db.commit import CommitOutcome, commit_outcome, commit_probe
from sms_worker.db.engine import get_engine
from sms_worker.dispatch.service import dispatch_batch
from sms_worker.embedded import free_port, redis_server_binary, start_redis_server
from sms_worker.errors import OutcomeUnknown, StoreUnavailable
from sms_worker.lifecycle.tables import EVENTS, MESSAGES
from sms_worker.priority import Priority
from sms_worker.producer import send_many, send_many_result, send_sms
from sms_worker.queues import keys
from sms_worker.recovery import ensure_redis_state, sweep
from sms_worker.runtime import NoWaker, build_runtime
from sms_worker.views import message_history

RECIPIENT = "+421900123456"


def closed_redis_url() -> str:
    return f"redis://127.0.0.1:{free_port()}/0"


def rows_with(runtime, text_: str) -> list[uuid.UUID]:
    with runtime.engine.connect() as conn:
        return list(conn.execute(select(MESSAGES.c.id).where(MESSAGES.c.text == text_)).scalars())


def sent(sandbox, text_: str) -> int:
    """How many times the sandbox was handed this text: the SMS a recipient would get."""
    return sum(1 for s in sandbox.submissions() if s["accepted"] and s["text"] == text_)


@pytest.fixture
def live(settings_for, redis_client):
    """A runtime on the test Redis with a fake clock that starts now (the CLI writes real times)."""
    runtimes = []

    def make(**overrides):
        runtimes.append(build_runtime(settings_for(**overrides), waker=NoWaker(), clock=FakeClock(datetime.now(UTC))))
        return runtimes[-1]

    yield make
    for rt in runtimes:
        rt.close()


def test_send_with_redis_unreachable_exits_0_with_the_id_and_the_sweep_delivers_it_once(settings_for, live, sandbox):
    """The issue's case: a traceback, exit 1 and no id, then the message delivered ten minutes later."""
    rt = live()
    rt.redis.set(keys.EPOCH, "kept")  # the Redis that comes back kept its state: only the stale sweep finds the row
    env = process_env(settings_for(redis_url=closed_redis_url()))

    result = cli("send", RECIPIENT, "redis down", "--json", env=env)

    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    answer = json.loads(result.stdout)
    assert answer["queued_by"] == "sweep"
    assert answer["within_seconds"] == rt.settings.stale_queued_seconds + rt.settings.sweep_interval_seconds == 630
    assert answer["note"].startswith("queued; Redis unreachable (Error 111 connecting to 127.0.0.1:")
    assert answer["note"].endswith(
        "the sweep will queue it within 630 s of the latest of Redis being reachable, its send time and its priority's ready queue having drained;"
        " it is not lost"
    )
    assert rows_with(rt, "redis down") == [uuid.UUID(answer["id"])]

    assert sweep(rt).requeued == 0, "too fresh for the sweep: it could still be waiting for its pointer"
    rt.clock.advance(answer["within_seconds"])  # the clock started before the CLI wrote the row
    assert sweep(rt).requeued == 1
    dispatch_batch(rt)

    assert message_history(uuid.UUID(answer["id"]), rt.settings.resolved_database_url).message["status"] == "submitted"
    assert sent(sandbox, "redis down") == 1
    assert rows_with(rt, "redis down") == [uuid.UUID(answer["id"])]


def test_behind_a_backlog_of_its_priority_the_sweep_queues_it_once_the_backlog_has_drained(settings_for, live, sandbox):
    """Sibling, the condition the note states: the sweep searches only priorities whose ready
    queue is empty, so a message without a pointer waits behind a backlog of its priority (for
    as long as it lasts), and is queued by the first sweep after it has drained."""
    rt = live()
    rt.redis.set(keys.EPOCH, "kept")
    backlog = send_sms(RECIPIENT, "the backlog", runtime=rt)
    env = process_env(settings_for(redis_url=closed_redis_url()))
    answer = json.loads(cli("send", RECIPIENT, "behind a backlog", "--json", env=env).stdout)
    assert answer["queued_by"] == "sweep"

    rt.clock.advance(answer["within_seconds"])
    assert sweep(rt).requeued == 0, "its priority's ready queue still holds the backlog"
    dispatch_batch(rt)
    assert rt.redis.llen(keys.ready(Priority.STANDARD)) == 0, "the backlog drained"
    assert sweep(rt).requeued == 1
    dispatch_batch(rt)

    assert [sent(sandbox, t) for t in ("the backlog", "behind a backlog")] == [1, 1]
    assert message_history(backlog, rt.settings.resolved_database_url).message["status"] == "submitted"
    assert message_history(uuid.UUID(answer["id"]), rt.settings.resolved_database_url).message["status"] == "submitted"


def test_send_in_text_form_prints_only_the_id_on_stdout_and_the_note_on_stderr(settings_for, live):
    rt = live()
    env = process_env(settings_for(redis_url=closed_redis_url()))

    result = cli("send", RECIPIENT, "redis down, text", env=env)

    assert result.returncode == 0, result.stderr
    [message_id] = rows_with(rt, "redis down, text")
    assert result.stdout == f"{message_id}\n"
    assert result.stderr.startswith("note: queued; Redis unreachable (") and result.stderr.count("\n") == 1


def test_send_many_with_redis_stopped_returns_the_ids_and_a_rebuild_queues_them_once(settings_for, sandbox, caplog, tmp_path):
    """Sibling: a real redis-server that stops after the runtime connected, a batch with a message
    due now and one scheduled, through the id-only API (a warning, not an error) and the receipt."""
    port = free_port()
    directory = Path(tempfile.mkdtemp(prefix="sms-worker-redis-", dir=tmp_path))
    server = start_redis_server(redis_server_binary(), port, directory, persist=False)
    clock = FakeClock(datetime.now(UTC))
    rt = build_runtime(settings_for(redis_url=f"redis://127.0.0.1:{port}/0"), waker=NoWaker(), clock=clock)
    try:
        ensure_redis_state(rt)
        server.terminate()
        server.wait(10)

        with caplog.at_level(logging.WARNING, logger="sms_worker.producer"):
            now_id, later_id = send_many(
                [
                    {"to": RECIPIENT, "text": "stopped now", "priority": "high"},
                    {"to": RECIPIENT, "text": "stopped later", "send_at": clock.now() + timedelta(minutes=5)},
                ],
                runtime=rt,
            )
            receipt = send_many_result([{"to": RECIPIENT, "text": "stopped receipt"}], runtime=rt)
            one_id = send_sms(RECIPIENT, "stopped one", runtime=rt)

        assert isinstance(one_id, uuid.UUID), "send_sms still returns the id"
        assert receipt.queued_by == "sweep" and receipt.deferral is not None and receipt.deferral.problem == "unreachable"
        warnings = [r for r in caplog.records if r.name == "sms_worker.producer"]
        assert [r.getMessage().split(":")[0] for r in warnings] == [f"{n} message(s) written but not queued now" for n in (2, 1)]
        assert all(r.exc_info is None for r in warnings), "no traceback for a user to read"
        assert [len(rows_with(rt, t)) for t in ("stopped now", "stopped later", "stopped receipt", "stopped one")] == [1, 1, 1, 1]

        server = start_redis_server(redis_server_binary(), port, directory, persist=False)  # back, and empty
        assert ensure_redis_state(rt) == 4
        assert rt.redis.lrange(keys.ready(Priority.HIGH), 0, -1) == [now_id.hex.encode()]
        dispatch_batch(rt)
        clock.advance(5 * 60 + 1)
        promote_once(rt)
        dispatch_batch(rt)

        assert [sent(sandbox, t) for t in ("stopped now", "stopped later", "stopped receipt", "stopped one")] == [1, 1, 1, 1]
        assert message_history(later_id, rt.settings.resolved_database_url).message["status"] == "submitted"
    finally:
        rt.close()
        server.terminate()
        server.wait(10)
        shutil.rmtree(directory, ignore_errors=True)


def test_send_with_the_database_down_says_so_in_one_line_and_writes_nothing(tmp_path, redis_url, redis_client):
    """Sibling: the database unreachable before anything; a SQLite file that cannot be created too."""
    from sms_worker.config import Settings

    dead_postgres = f"postgresql://postgres@127.0.0.1:{free_port()}/test"
    env = process_env(Settings(home=tmp_path, database_url=dead_postgres, redis_url=redis_url))

    as_text = cli("send", RECIPIENT, "db down", env=env)
    as_json = cli("send", RECIPIENT, "db down", "--json", env=env)

    assert as_text.returncode == as_json.returncode == 3
    assert as_text.stdout == ""
    assert as_text.stderr.startswith("error: database: unreachable (connection failed: ")
    assert as_text.stderr.endswith("Connection refused); nothing was written\n") and as_text.stderr.count("\n") == 1
    error = json.loads(as_json.stdout)["error"]
    assert (error["field"], error["written"]) == ("database", False)
    assert redis_client.keys("*") == [], "nothing queued either"

    (tmp_path / "not-a-directory").write_text("")
    env = process_env(Settings(home=tmp_path, database_url=f"sqlite:///{tmp_path / 'not-a-directory' / 'x.db'}", redis_url=redis_url))
    unopenable = cli("send", RECIPIENT, "db down", env=env)
    assert unopenable.returncode == 3
    assert unopenable.stderr.startswith("error: database: unreachable (") and unopenable.stderr.count("\n") == 1


def test_send_many_with_the_database_down_raises_store_unavailable(settings_for, redis_client):
    rt = build_runtime(settings_for(database_url=f"postgresql://postgres@127.0.0.1:{free_port()}/test"), waker=NoWaker())
    try:
        with pytest.raises(StoreUnavailable) as caught:
            send_many([{"to": RECIPIENT, "text": "db down"}], runtime=rt)
    finally:
        rt.close()
    assert (caught.value.store, caught.value.problem) == ("database", "unreachable")
    assert str(caught.value).endswith("; nothing was written")
    assert redis_client.keys("*") == []


# The database failing between the insert and the answer: PostgreSQL only (SQLite commits in
# this process, and nothing can cut it off in the middle of its COMMIT).
postgresql_only = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


@pytest.fixture
def admin():
    if not PG_URL:
        pytest.skip("PostgreSQL not configured: set SMS_WORKER_TEST_DATABASE_URL (CI does)")
    engine = create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1))
    yield engine
    engine.dispose()


@pytest.fixture
def proxy(database_url):
    with PgProxy(database_url) as running:
        yield running


def killing_the_backend_once(admin, killed: list[int]):
    """A connection event listener that terminates the backend of the first connection it
    fires on (its pid appended to ``killed``) and returns once that backend is gone."""

    def kill_the_backend(conn) -> None:
        if killed:
            return
        pid = conn.connection.dbapi_connection.info.backend_pid
        killed.append(pid)
        with admin.begin() as other:
            other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})

        def gone() -> bool:
            with admin.connect() as other:  # a new transaction each time: pg_stat_activity is a snapshot per transaction
                return other.execute(text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}).scalar_one() == 0

        wait_until(gone, 10, 0.02, "the backend to end")

    return kill_the_backend


@postgresql_only
def test_a_backend_killed_before_the_rows_are_copied_is_reported_as_nothing_written(live, admin):
    """Sibling before the COMMIT: the rows go in by COPY, outside SQLAlchemy, whose failure is
    told apart (a connection lost, not a bug) as any other statement's."""
    rt = live()
    killed: list[int] = []
    event.listen(rt.engine, "begin", killing_the_backend_once(admin, killed))

    with pytest.raises(StoreUnavailable) as caught:
        send_sms(RECIPIENT, "killed before the copy", runtime=rt)

    assert killed, "the hook ran as the transaction began"
    assert (caught.value.store, caught.value.problem) == ("database", "connection lost")
    assert rows_with(rt, "killed before the copy") == [] and rt.redis.keys("*") == []


@postgresql_only
def test_a_commit_whose_backend_is_killed_is_asked_about_and_reported_as_nothing_written(live, admin, sandbox):
    rt = live()
    killed: list[int] = []
    kill_the_backend = killing_the_backend_once(admin, killed)
    event.listen(rt.engine, "commit", kill_the_backend)

    with pytest.raises(StoreUnavailable) as caught:
        send_sms(RECIPIENT, "killed at commit", runtime=rt)

    assert killed, "the hook ran at the COMMIT"
    assert caught.value.problem == "the commit failed, and asked again the database had rolled it back"
    assert rows_with(rt, "killed at commit") == [] and rt.redis.keys("*") == []

    event.remove(rt.engine, "commit", kill_the_backend)
    message_id = send_sms(RECIPIENT, "killed at commit", runtime=rt)  # nothing was written: sending again is right
    dispatch_batch(rt)
    assert rows_with(rt, "killed at commit") == [message_id]
    assert sent(sandbox, "killed at commit") == 1


@postgresql_only
def test_a_commit_whose_answer_is_lost_is_asked_about_and_its_ids_returned(live, proxy, sandbox, caplog):
    rt = live(database_url=proxy.url())
    proxy.lose_commit_answer()

    with caplog.at_level(logging.WARNING, logger="sms_worker.producer"):
        ids = send_many([{"to": RECIPIENT, "text": f"answer lost {n}"} for n in range(3)], runtime=rt)

    assert proxy.commits_lost == 1
    assert "the database's answer to a COMMIT was lost" in caplog.text and "it had committed 3 message(s)" in caplog.text
    assert [rows_with(rt, f"answer lost {n}") for n in range(3)] == [[i] for i in ids]
    dispatch_batch(rt)
    assert [sent(sandbox, f"answer lost {n}") for n in range(3)] == [1, 1, 1]


@postgresql_only
def test_a_lost_commit_answer_with_the_database_away_is_an_unknown_outcome_and_a_retry_with_the_key_is_safe(settings_for, live, proxy, sandbox):
    rt = live()
    env = process_env(settings_for(database_url=proxy.url(), commit_recheck_seconds=0.5))
    command = ("send", RECIPIENT, "answer lost, database away", "--idempotency-key", "order-9", "--json")

    proxy.lose_commit_answer(then_refuse=True)
    unknown = cli(*command, env=env)

    assert unknown.returncode == 4, unknown.stderr
    error = json.loads(unknown.stdout)["error"]
    assert (error["field"], error["written"]) == ("database", None)
    assert error["reason"].startswith("outcome unknown: the commit failed (consuming input failed: server closed the connection unexpectedly)")
    assert "sending again with the same idempotency key is safe" in error["reason"]
    [maybe] = error["ids"]
    assert rows_with(rt, "answer lost, database away") == [uuid.UUID(maybe)], "it had committed"

    proxy.refusing = False
    again = cli(*command, env=env)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["id"] == maybe
    assert rows_with(rt, "answer lost, database away") == [uuid.UUID(maybe)]
    rt.clock.set(datetime.now(UTC))  # after the CLI's clock wrote the row
    dispatch_batch(rt)
    assert sent(sandbox, "answer lost, database away") == 1


@postgresql_only
def test_an_unknown_outcome_names_every_id_and_warns_about_messages_without_a_key(live, proxy):
    rt = live(database_url=proxy.url(), commit_recheck_seconds=0.3)
    proxy.lose_commit_answer(then_refuse=True)

    with pytest.raises(OutcomeUnknown) as caught:
        send_many([{"to": RECIPIENT, "text": "keyed", "idempotency_key": "k-1"}, {"to": RECIPIENT, "text": "keyless"}], runtime=rt)

    assert len(caught.value.ids) == 2 and caught.value.idempotency_keys == ["k-1", None]
    assert "1 message(s) have no key: check `sms-worker status ID` before sending them again" in str(caught.value)
    proxy.refusing = False
    assert [rows_with(rt, t) for t in ("keyed", "keyless")] == [[i] for i in caught.value.ids]
    assert rt.redis.keys(keys.ready(Priority.STANDARD)) == [], "an unknown outcome queues nothing: the sweep will, if it was written"
    with rt.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(MESSAGES)).scalar_one() == 2


@postgresql_only
def test_a_transaction_said_committed_whose_rows_are_not_there_is_reported_as_nothing_written(live, proxy, database_url):
    """Review of item 9: ``pg_xact_status`` alone answered. After a failover to an asynchronous
    standby (or an id reused) the transaction's id can name another, committed, transaction while
    our rows are not there, and the send returned their ids. Made real here: the server commits,
    another connection deletes the rows before the producer asks again; the id says committed,
    the witness row is absent."""
    rt = live(database_url=proxy.url())

    def delete_the_rows() -> None:
        with get_engine(database_url).begin() as other:
            ours = select(MESSAGES.c.id).where(MESSAGES.c.text.like("gone after commit %"))
            other.execute(delete(EVENTS).where(EVENTS.c.message_id.in_(ours)))
            assert other.execute(delete(MESSAGES).where(MESSAGES.c.id.in_(ours))).rowcount == 2

    proxy.lose_commit_answer(before_closing=delete_the_rows)

    with pytest.raises(StoreUnavailable) as caught:
        send_many([{"to": RECIPIENT, "text": f"gone after commit {n}"} for n in range(2)], runtime=rt)

    assert proxy.commits_lost == 1
    assert caught.value.problem == "the commit failed, and asked again the database had rolled it back"
    assert str(caught.value).endswith("; nothing was written")
    assert [rows_with(rt, f"gone after commit {n}") for n in range(2)] == [[], []]
    assert rt.redis.keys(keys.ready(Priority.STANDARD)) == [], "nothing queued"


@postgresql_only
def test_a_database_host_that_does_not_answer_holds_the_send_no_longer_than_the_recheck(live, proxy):
    """Sibling: after the lost answer, new connections reach a host that takes them and never
    answers. The recheck's patience (SMS_WORKER_COMMIT_RECHECK_SECONDS, 1 s here) bounds the
    connect too; libpq's shortest connect timeout is 2 s."""
    rt = live(database_url=proxy.url(), commit_recheck_seconds=1)
    proxy.lose_commit_answer(before_closing=lambda: setattr(proxy, "hanging", True))
    raised: list[BaseException] = []

    def send() -> None:
        try:
            send_many([{"to": RECIPIENT, "text": "host silent"}], runtime=rt)
        except BaseException as error:  # noqa: BLE001 - handed to the test's thread
            raised.append(error)

    started = time.monotonic()
    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    sender.join(20)
    elapsed = time.monotonic() - started
    proxy.hanging = False  # the runtime's close ends its lease through the proxy

    assert not sender.is_alive(), "the send still waits for a host that does not answer"
    assert proxy.commits_lost == 1
    assert [type(error) for error in raised] == [OutcomeUnknown]
    assert elapsed < 1 + 2 + 1.5, f"the send took {elapsed:.1f} s"


def test_a_commit_is_committed_only_where_its_witness_row_is_found(database_url):
    """The rule of :func:`commit_outcome` on either database, each question on a connection of its
    own: a transaction PostgreSQL calls committed whose witness selects nothing wrote nothing."""
    engine = get_engine(database_url)
    probes = {}
    for name, witness in (("found", select(literal(1))), ("absent", select(literal(1)).where(literal(False)))):
        with engine.connect() as conn, conn.begin():
            probes[name] = commit_probe(conn, witness)
    assert (probes["found"].xid is None) == (engine.dialect.name == "sqlite")

    answers = {name: commit_outcome(engine, probe, patience=1) for name, probe in probes.items()}

    assert answers == {"found": CommitOutcome.COMMITTED, "absent": CommitOutcome.ROLLED_BACK}
