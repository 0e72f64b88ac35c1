"""Schema migrations, run programmatically so ``sms-worker db upgrade`` needs no alembic.ini.

One at a time per database: several processes started together (the Procfile's worker, scheduler
and callback receiver each upgrade first) would otherwise all find the schema empty and all
create it, and every one but the first fail. On PostgreSQL a transaction-scoped advisory lock
(:data:`MIGRATION_LOCK`, per schema) is taken before Alembic reads the schema's revision; on
SQLite a file lock beside the database file. The next process in line then finds the latest
revision and does nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Engine

from sms_worker.db.engine import get_engine
from sms_worker.embedded import file_lock
from sms_worker.errors import InvalidField, NotMigrated

MIGRATIONS = Path(__file__).with_name("migrations")
MIGRATION_LOCK: Final = 0x736D7367
"""PostgreSQL advisory lock class held while migrating ("smsg"), with the schema's hash as its key:
schemas of one database (the tests') migrate side by side."""


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


@dataclass(frozen=True)
class Migrated:
    """The revisions a database was at before and after one migration (None: no schema)."""

    before: str | None
    after: str | None


def latest_revision() -> str:
    """The revision the migrations shipped with this version end at (``"0006"``)."""
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None, "the migrations have no head"
    return head


def require_migrated(url: str) -> None:
    """Raise :class:`NotMigrated` unless the database at ``url`` is at :func:`latest_revision`.
    No command but ``sms-worker db upgrade`` (and the demo, on its own database) migrates: a
    database an operator runs is changed only when they say so."""
    behind = schema_behind(get_engine(url))
    if behind is not None:
        raise behind


def schema_behind(engine: Engine) -> NotMigrated | None:
    """:class:`NotMigrated` (not raised) if the database of ``engine`` is not at
    :func:`latest_revision`, None if it is; the driver's error if it cannot be asked."""
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    needed = latest_revision()
    return None if current == needed else NotMigrated(current, needed)


def upgrade(url: str, revision: str = "head") -> Migrated:
    """Bring the database at ``url`` to ``revision``; safe to run on every start, by several
    processes at once."""
    return _run(url, lambda config: command.upgrade(config, revision))


def downgrade(url: str, revision: str) -> Migrated:
    """Take the database at ``url`` back to ``revision`` (to run an earlier release again).
    Raises :class:`InvalidField` on ``revision`` for one Alembic cannot take it to (no such
    revision, or one above the current), naming this version's revisions."""
    try:
        return _run(url, lambda config: command.downgrade(config, revision))
    except CommandError as error:
        scripts = ScriptDirectory.from_config(alembic_config(url)).walk_revisions()
        revisions = ", ".join(reversed([script.revision for script in scripts]))
        raise InvalidField("revision", f"{error} (this version's revisions: {revisions}, or base)") from None


def _run(url: str, migrate: Callable[[Config], None]) -> Migrated:
    """One transaction, under the migration lock. On SQLite, foreign keys are off meanwhile:
    altering a table there means copying it, and the copy's swap must not trip over the events
    that point at its rows (Alembic's batch mode documentation); they are checked before the
    transaction commits."""
    engine = get_engine(url)
    config = alembic_config(url)
    with _sqlite_file_lock(url), engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
        try:
            with connection.begin():
                if connection.dialect.name == "postgresql":
                    connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK}, hashtext(current_schema()))")
                before = MigrationContext.configure(connection).get_current_revision()
                config.attributes["connection"] = connection
                migrate(config)
                if sqlite and connection.exec_driver_sql("PRAGMA foreign_key_check").first() is not None:
                    raise RuntimeError("the migration left events pointing at no message")
                return Migrated(before, MigrationContext.configure(connection).get_current_revision())
        finally:
            if sqlite:
                connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                connection.commit()


@contextmanager
def _sqlite_file_lock(url: str) -> Iterator[None]:
    """Hold ``<database file>.migrate.lock`` when ``url`` is a SQLite file; else nothing."""
    engine = get_engine(url)
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:":
        yield
        return
    with file_lock(Path(database).with_name(Path(database).name + ".migrate.lock")):
        yield
