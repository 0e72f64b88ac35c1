"""What every ``sms-worker`` command shares: logging, ``--json``, our errors in one format with
one exit code, texts that begin with "-", a runtime for the command's length, waiting for Redis
before a long-running process starts, and spellings kept for one release.

Imported by every command, so it imports click and sms_worker's own light modules only: Redis,
SQLAlchemy, the adapters and the settings are imported by the functions that use them, and a
command pays for what it uses (``sms-worker segments`` for none of them)."""

from __future__ import annotations

import functools
import inspect
import itertools
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, is_dataclass
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar, cast

import click

from sms_worker.endpoints import listen_address_problem
from sms_worker.errors import InvalidField, NotMigrated, OutcomeUnknown, ProvidersFileError, RedisUnavailable, SettingsError, StoreUnavailable

if TYPE_CHECKING:
    from sqlalchemy.exc import DBAPIError

    from sms_worker.runtime import Deployment

BAD_INPUT = 2
"""Exit code for input we refuse: a usage error, an invalid field, a bad providers file."""
UNAVAILABLE = 3
"""Exit code for a server that failed before anything was written (the database unreachable):
the same command may be run again."""
OUTCOME_UNKNOWN = 4
"""Exit code for a write whose outcome is unknown (the connection lost during the COMMIT, the
database still away): it may have been written; the error names the ids to look up."""
REMOVED_IN = "0.3"
"""The release that drops the deprecated spellings."""
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
F = TypeVar("F", bound=Callable[..., Any])


def configure_logging() -> None:
    """Log to stderr at INFO (``--loglevel`` changes it), with time, level and logger name;
    httpx and alembic log their warnings only."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for chatty in ("httpx", "alembic"):
        logging.getLogger(chatty).setLevel(logging.WARNING)


def _set_log_level(ctx: click.Context, param: click.Parameter, level: str) -> str:
    logging.getLogger().setLevel(level.upper())
    return level


loglevel_option = click.option(
    "--loglevel",
    type=click.Choice(LOG_LEVELS, case_sensitive=False),
    default="info",
    show_default=True,
    metavar="LEVEL",
    callback=_set_log_level,
    help=f"Log this level and above to stderr: {', '.join(LOG_LEVELS)}.",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout instead of text, errors included.")


class ListenAddress(click.ParamType):
    """An IP address or host name to listen on (:func:`~sms_worker.endpoints.listen_address_problem`),
    as the settings take it; anything else is a usage error naming the option."""

    name = "ADDRESS"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        if (problem := listen_address_problem(value)) is not None:
            self.fail(f"{value!r} {problem}", param, ctx)
        return str(value)


PORT = click.IntRange(1, 65535)
"""A TCP port to listen on, as the settings take it."""


def echo_json(value: Any, **dumps: Any) -> None:
    """Print ``value`` as one line of JSON on stdout: a view (a dataclass, or a list of them) as
    its fields; ``dumps`` are :func:`json.dumps` options."""
    click.echo(json.dumps(_plain(value), **dumps))


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def fail(field: str, reason: str, exit_code: int, ctx: click.Context | None = None, **details: Any) -> NoReturn:
    """Say which ``field`` is wrong and why, then exit with ``exit_code``: with ``--json`` given to
    the command or a group above it, ``{"error": {"field": ..., "reason": ..., **details}}`` on
    stdout, otherwise ``error: FIELD: REASON`` on stderr."""
    if _wants_json(ctx or click.get_current_context()):
        echo_json({"error": {"field": field, "reason": reason, **details}})
    else:
        click.echo(f"error: {field}: {reason}", err=True)
    raise click.exceptions.Exit(exit_code)


def _wants_json(ctx: click.Context | None) -> bool:
    while ctx is not None:
        if ctx.params.get("as_json"):
            return True
        ctx = ctx.parent
    return False


class Command(click.Command):
    """A command that reports our errors as :func:`fail` does, in one line and without a
    traceback: an :class:`InvalidField` names its field and a :class:`ProvidersFileError`
    ``SMS_WORKER_PROVIDERS_FILE`` (exit ``BAD_INPUT``); a :class:`StoreUnavailable` names the
    server, ``error: database: unreachable (...); nothing was written`` (exit ``UNAVAILABLE``,
    JSON ``"written": false``); an :class:`OutcomeUnknown` says so with the ids that may have
    been written (exit ``OUTCOME_UNKNOWN``, JSON ``"written": null`` and ``"ids"``); a
    :class:`NotMigrated` database says to run ``sms-worker db upgrade`` (exit ``BAD_INPUT``); a
    :class:`RedisUnavailable` at a long-running process's start says what to run or set (exit
    ``UNAVAILABLE``)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            with no_embedded_redis_left():
                return super().invoke(ctx)
        except InvalidField as error:
            fail(error.field, error.reason, BAD_INPUT, ctx)
        except ProvidersFileError as error:
            fail("SMS_WORKER_PROVIDERS_FILE", str(error), BAD_INPUT, ctx)
        except SettingsError as error:
            fail(error.variable, error.reason, BAD_INPUT, ctx)
        except StoreUnavailable as error:
            fail(error.store, error.reason, UNAVAILABLE, ctx, written=False)
        except OutcomeUnknown as error:
            ids = [str(message_id) for message_id in error.ids]
            fail("database", f"{error.reason}; id(s): {', '.join(ids)}", OUTCOME_UNKNOWN, ctx, written=None, ids=ids)
        except NotMigrated as error:
            fail("database", str(error), BAD_INPUT, ctx)
        except RedisUnavailable as error:
            fail("redis", str(error), UNAVAILABLE, ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as error:
            _fail_if_server_failed(error, ctx)
            raise


def _fail_if_server_failed(error: Exception, ctx: click.Context) -> None:
    """Report a database or Redis error that escaped a command as :class:`Command` says: the
    schema behind (exit ``BAD_INPUT``) or the server unreachable (exit ``UNAVAILABLE``); return
    for any other error, for the caller to raise. SQLAlchemy and redis are imported here, for an
    error that is not click's own, rather than by every command."""
    import redis
    from sqlalchemy.exc import DBAPIError

    from sms_worker.outages import describe_outage, first_line

    if not isinstance(error, (DBAPIError, redis.RedisError)):
        return
    if isinstance(error, DBAPIError) and (behind := _not_migrated(error)) is not None:
        fail("database", str(behind), BAD_INPUT, ctx)
    if describe_outage(error) is not None:
        fail("database" if isinstance(error, DBAPIError) else "redis", f"unreachable ({first_line(error)})", UNAVAILABLE, ctx)


@contextmanager
def no_embedded_redis_left() -> Iterator[None]:
    """A command leaves no server behind: an embedded Redis that the command itself had to start
    (``send``, ``stats`` and the like start one when the home has none running) is stopped when
    it ends; its append-only file keeps the queues for the next to start it (``sms-worker
    redis``, the Procfile's line). A Redis another process started is left alone. Only
    :mod:`sms_worker.embedded` starts one: a command that never imported it has none to stop."""
    try:
        yield
    finally:
        if "sms_worker.embedded" in sys.modules:
            from sms_worker.embedded import stop_what_this_process_started

            stop_what_this_process_started()


def _not_migrated(error: DBAPIError) -> NotMigrated | None:
    """Why a statement of a command failed if it is the schema (:func:`~sms_worker.db.failures.not_migrated`
    on the configured database): what the producer and the views say themselves, for any other
    statement a command runs."""
    from sms_worker.config import get_settings
    from sms_worker.db.engine import get_engine
    from sms_worker.db.failures import not_migrated

    return not_migrated(get_engine(get_settings().resolved_database_url), error)


class Group(Command, click.Group):
    """A group of :class:`Command`, listed in the order they were added rather than sorted."""

    command_class = Command

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)


class TextCommand(Command):
    """A command whose argument named ``text`` may begin with "-", as in ``"-5 % off"``: in that
    position a word that is none of the command's options is the text. Elsewhere an unknown
    option is still reported, and ``--`` still ends the options."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, self._options_then_arguments(ctx, args))

    def _options_then_arguments(self, ctx: click.Context, args: list[str]) -> list[str]:
        """``args`` reordered as options, ``--``, arguments: the same command line, in which
        click's parser can no longer take the text for an option."""
        params = self.get_params(ctx)
        takes_value = {
            name: not (param.is_flag or param.count)
            for param in params
            if isinstance(param, click.Option)
            for name in (*param.opts, *param.secondary_opts)
        }
        arguments = [param.name for param in params if isinstance(param, click.Argument)]
        options: list[str] = []
        positional: list[str] = []
        words = iter(args)
        for word in words:
            if word == "--":
                positional.extend(words)
                break
            at_text = len(positional) < len(arguments) and arguments[len(positional)] == "text"
            looks_like_option = word.startswith("-") and word != "-"
            if looks_like_option and not (at_text and word.partition("=")[0] not in takes_value):
                options.append(word)
                if takes_value.get(word):
                    options.extend(itertools.islice(words, 1))
            else:
                positional.append(word)
        return [*options, "--", *positional]


def warn_deprecated(old: str, new: str) -> None:
    """Say on stderr that ``old`` is deprecated in favour of ``new``, and when it goes."""
    click.echo(f"warning: {old} is deprecated, use {new} (it will be removed in {REMOVED_IN})", err=True)


def deprecated_option(old: str, new: str, param: str) -> Callable[[F], F]:
    """Keep option ``old`` (e.g. ``--provider``) for one release as a hidden spelling of option
    ``new`` (``--account``, whose parameter is ``param``): its value goes to ``param``, with a
    warning on stderr; both given is a usage error (exit 2)."""
    old_param = old.lstrip("-").replace("-", "_")

    def decorate(command: F) -> F:
        @functools.wraps(command)
        def run(**params: Any) -> Any:
            value = params.pop(old_param)
            if value is not None:
                warn_deprecated(old, new)
                if params[param] is not None:
                    raise click.UsageError(f"{old} is the old spelling of {new}: give {new} only")
                params[param] = value
            return command(**params)

        return cast(F, click.option(old, old_param, hidden=True)(run))

    return decorate


def deprecated_alias(group: click.Group, old: str) -> Group:
    """Keep ``group`` under its former name ``old`` for one release, hidden from the help: the
    same options and commands, each run after a warning on stderr."""

    def warn_then_run(**params: Any) -> Any:
        warn_deprecated(f"'sms-worker {old}'", f"'sms-worker {group.name}'")
        return click.get_current_context().invoke(group.callback, **params) if group.callback else None

    return Group(
        old,
        commands=group.commands,
        params=group.params,
        callback=warn_then_run,
        hidden=True,
        invoke_without_command=group.invoke_without_command,
        help=f"Deprecated: use '{group.name}'.\n\n{inspect.cleandoc(group.help or '')}",
    )


def ready_to_dispatch() -> None:
    """What a long-running process that reads the accounts and writes messages (worker,
    scheduler, callback receiver) checks before it waits for Redis or says it runs, so that a
    mistake stops it at once, in one line, rather than after Redis answers (under the embedded
    defaults, only once ``sms-worker redis`` runs), or in every task of a process that stays up:
    the settings (:class:`SettingsError`, exit 2), the providers file (:class:`ProvidersFileError`,
    exit 2), the database reachable (:class:`StoreUnavailable`, exit 3) and migrated to this
    version (:class:`NotMigrated`, exit 2, saying to run ``sms-worker db upgrade``); then it
    waits for Redis (:func:`wait_for_redis`)."""
    from sms_worker.config import get_settings
    from sms_worker.db.failures import reaching_the_database
    from sms_worker.db.migrate import require_migrated
    from sms_worker.providers.accounts import load_providers

    settings = get_settings()
    load_providers(settings)
    with reaching_the_database():
        require_migrated(settings.resolved_database_url)
    wait_for_redis()


def wait_for_redis() -> None:
    """Before a long-running process starts: wait for the deployment's Redis
    (:func:`~sms_worker.embedded.await_redis`, :class:`RedisUnavailable` when it does not come),
    then pin its URL in ``SMS_WORKER_REDIS_URL`` for this process and the processes it forks, so
    that none of them ever starts an embedded Redis that would outlive it."""
    from sms_worker.config import get_settings, reset_settings
    from sms_worker.embedded import await_redis

    os.environ["SMS_WORKER_REDIS_URL"] = await_redis(get_settings())
    reset_settings()


@contextmanager
def open_deployment() -> Iterator[Deployment]:
    """The configured database, Redis and accounts for a command that dispatches nothing
    (:class:`~sms_worker.runtime.Deployment`: no lease), closed when the block ends. The settings
    are read first, so that a bad one is refused before the adapters, SQLAlchemy and Redis are
    even imported."""
    from sms_worker.config import get_settings

    settings = get_settings()
    from sms_worker.runtime import build_deployment

    deployment = build_deployment(settings)
    try:
        yield deployment
    finally:
        deployment.close()
