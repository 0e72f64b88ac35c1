"""``sms-worker``: run the parts of the system and talk to it from a shell.

:data:`root` is the click group; :func:`main` runs it and returns the exit code. Each command
lives in a module of its own and shares :mod:`sms_worker.cli.base`.
"""

from __future__ import annotations

import sys

import click

from sms_worker.cli import accounts, callbacks, db, demo, embedded_redis, flower, messages, sandbox, scheduler, segments, stats, worker
from sms_worker.cli.base import Group, configure_logging, echo_json


@click.group(cls=Group, invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.pass_context
def root(ctx: click.Context) -> int:
    """Run the parts of sms_worker and talk to it from a shell.

    \b
    Processes, each until Ctrl-C or SIGTERM (the Procfile runs them all):
      redis, sandbox, worker, scheduler, callbacks, flower
    Talking to a running system: send, status, stats, accounts, segments
    To try it all at once: sms-worker demo

    Settings come from SMS_WORKER_* environment variables (.env.example lists them). Give
    --help after a command for its options, e.g. sms-worker send --help.
    """
    configure_logging()
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())
        return 2
    return 0


for command in (
    embedded_redis.redis_server,
    worker.worker,
    scheduler.scheduler,
    sandbox.sandbox,
    callbacks.callbacks,
    flower.flower,
    messages.send,
    messages.status,
    accounts.accounts,
    accounts.providers,
    stats.stats,
    segments.segments,
    demo.demo,
    db.db,
):
    root.add_command(command)


def main(argv: list[str] | None = None) -> int:
    """Run ``sms-worker`` on ``argv`` (default: this process's arguments); returns the exit code:
    0 done; 1 a command's own failure (no such message, an account failed its check, the demo's
    messages did not end as expected); 2 input we refuse (a usage error, an invalid field, a bad
    providers file); 3 a server failed before anything was written (the command may be run
    again); 4 a write whose outcome is unknown; 130 interrupted."""
    args = sys.argv[1:] if argv is None else argv
    try:
        result = root.main(args=args, prog_name="sms-worker", standalone_mode=False)
    except click.UsageError as error:
        if "--json" not in args[: args.index("--") if "--" in args else len(args)]:
            error.show()
            return error.exit_code
        usage = error.ctx.get_usage() if error.ctx is not None else None
        echo_json({"error": {"field": _usage_field(error), "reason": error.format_message(), "usage": usage}})
        return error.exit_code
    except click.ClickException as error:
        error.show()
        return error.exit_code
    except click.Abort:
        click.echo("Aborted!", err=True)
        return 130
    return result if isinstance(result, int) else 0


def _usage_field(error: click.UsageError) -> str:
    """The parameter a usage error is about, as the user sees it: an option by its long name
    (``--wait``), an argument by its metavar in lower case (``id`` for ``ID``, ``name`` for
    ``[NAME]...``); ``usage`` for an error about no parameter of the command (an unknown option,
    an extra argument)."""
    param = getattr(error, "param", None)
    if isinstance(param, click.Option):
        return next((opt for opt in param.opts if opt.startswith("--")), param.opts[0])
    if isinstance(param, click.Argument):
        return (param.metavar or param.name or "").strip("[].").lower() or "usage"
    if isinstance(error, click.BadOptionUsage) and not isinstance(error, click.NoSuchOption):
        return error.option_name
    return "usage"
