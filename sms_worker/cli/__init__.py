"""``sms-worker``: run the parts of the system and talk to it from a shell.

:data:`root` is the click group; :func:`main` runs it and returns the exit code. Each command
lives in a module of its own and shares :mod:`sms_worker.cli.base`; the root group imports a
command's module only when that command is run or listed (:class:`LazyGroup`), so that
``sms-worker segments`` does not pay for the worker's imports.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass

import click

from sms_worker.cli.base import Group, configure_logging, echo_json


@dataclass(frozen=True, slots=True)
class CommandHome:
    """Where a command of the root group is defined: the click command ``attribute`` of module
    ``sms_worker.cli.<module>``."""

    module: str
    attribute: str


COMMANDS = {
    "redis": CommandHome("embedded_redis", "redis_server"),
    "worker": CommandHome("worker", "worker"),
    "scheduler": CommandHome("scheduler", "scheduler"),
    "sandbox": CommandHome("sandbox", "sandbox"),
    "callbacks": CommandHome("callbacks", "callbacks"),
    "flower": CommandHome("flower", "flower"),
    "send": CommandHome("messages", "send"),
    "status": CommandHome("messages", "status"),
    "accounts": CommandHome("accounts", "accounts"),
    "providers": CommandHome("accounts", "providers"),
    "stats": CommandHome("stats", "stats"),
    "segments": CommandHome("segments", "segments"),
    "demo": CommandHome("demo", "demo"),
    "db": CommandHome("db", "db"),
}
"""The root group's commands by name, in the order ``sms-worker --help`` lists them."""


class LazyGroup(Group):
    """The root group: its commands are :data:`COMMANDS`, each imported on first use (click's
    "lazily loading subcommands" pattern). ``--help`` imports every command module, which import
    only click and :mod:`sms_worker.cli.base`; what a command runs is imported in its body."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        home = COMMANDS.get(cmd_name)
        if home is None:
            return None
        command = getattr(importlib.import_module(f"sms_worker.cli.{home.module}"), home.attribute)
        assert isinstance(command, click.Command), f"sms_worker.cli.{home.module}.{home.attribute} is not a command"
        return command


@click.group(cls=LazyGroup, invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
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
