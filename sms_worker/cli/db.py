"""``sms-worker db``: schema migrations."""

from __future__ import annotations

import click

from sms_worker.cli.base import Group


@click.group(cls=Group, invoke_without_command=True)
@click.pass_context
def db(ctx: click.Context) -> int:
    """Database commands: apply or undo schema migrations.

    The database is SMS_WORKER_DATABASE_URL, else SQLite under SMS_WORKER_HOME.
    """
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())
    return 0


@db.command()
def upgrade() -> int:
    """Apply migrations up to the latest.

    Safe to run on every start, by several processes at once: they take turns, and each one
    after the first finds the latest revision (the Procfile's processes each run it first).
    """
    from sms_worker.config import get_settings
    from sms_worker.db.migrate import upgrade as apply_migrations

    migrated = apply_migrations(get_settings().resolved_database_url)
    if migrated.before == migrated.after:
        click.echo(f"database is at the latest revision ({migrated.after})")
    else:
        click.echo(f"database upgraded from {migrated.before or 'empty'} to revision {migrated.after}")
    return 0


@db.command()
@click.argument("revision")
def downgrade(revision: str) -> int:
    """Take the schema back to REVISION, for an earlier release.

    Revision 0002 is the schema of release 0.1.0.
    """
    from sms_worker.config import get_settings
    from sms_worker.db.migrate import downgrade as undo_migrations

    undo_migrations(get_settings().resolved_database_url, revision)
    click.echo(f"database is at revision {revision}")
    return 0
