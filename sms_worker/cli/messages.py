"""``sms-worker send`` and ``sms-worker status``: queue one message, show one message."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import click

from sms_worker.cli.base import Command, TextCommand, deprecated_option, echo_json, fail, json_option
from sms_worker.lifecycle.ambiguity import POLICIES
from sms_worker.lifecycle.status import Status

WAIT_POLL_SECONDS = 0.25
"""How often ``status --wait`` reads the message again."""
UNICODE_CHOICES = {"auto": None, "true": True, "false": False}


class IsoTime(click.ParamType):
    """An ISO 8601 time, as :meth:`datetime.fromisoformat` reads it; the producer requires a zone."""

    name = "TIME"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            self.fail(f"{value!r} is not an ISO 8601 time, e.g. 2030-01-31T08:00:00+01:00", param, ctx)


@click.command(cls=TextCommand)
@click.argument("to")
@click.argument("text")
@click.option(
    "--sender",
    metavar="ID",
    show_default="the account's own",
    help="Sender ID: a phone number, or up to 11 letters, digits, spaces and . & _ - with a letter or digit and no space "
    "at either end (and what the account takes)",
)
@click.option("--priority", default="standard", show_default=True, metavar="LEVEL", help="high, standard or low (or 3, 2, 1).")
@click.option(
    "--validity",
    type=int,
    metavar="MINUTES",
    show_default="SMS_WORKER_DEFAULT_VALIDITY_MINUTES, else 1440",
    help="How long the message may wait to be sent, 1-1440 minutes, counted from --send-at if given.",
)
@click.option(
    "--send-at",
    type=IsoTime(),
    help="Send no earlier than this ISO 8601 time, with its zone, at most 35 days ahead, e.g. \"$(date -d 'tomorrow 08:00' -Iseconds)\".",
)
@click.option(
    "--region",
    metavar="CC",
    show_default="none: a number without + or 00 is read as international",
    help="ISO country code (SK, DE...) for a number written in national form, e.g. --region SK 0900 123 456.",
)
@click.option("--idempotency-key", metavar="KEY", help="Up to 128 characters; the same key again returns the first message's id.")
@click.option(
    "--account",
    metavar="NAME",
    show_default="routing picks, with failover",
    help="Send through this configured account only (see `sms-worker accounts`).",
)
@deprecated_option("--provider", "--account", "account")
@click.option(
    "--unicode",
    type=click.Choice(list(UNICODE_CHOICES)),
    default="auto",
    show_default=True,
    help="auto: the text decides; false: strip diacritics to GSM-7 first; true: ask Telekom SK for Unicode.",
)
@click.option(
    "--on-ambiguous",
    type=click.Choice(list(POLICIES)),
    show_default="the account's on_ambiguous, else SMS_WORKER_ON_AMBIGUOUS (resend)",
    help="After a timeout or an unreadable answer, where the provider cannot be asked whether it has the message: "
    "resend (at least once: it may arrive twice) or give-up (at most once: it ends unknown).",
)
@json_option
def send(
    to: str,
    text: str,
    sender: str | None,
    priority: str,
    validity: int | None,
    send_at: datetime | None,
    region: str | None,
    idempotency_key: str | None,
    account: str | None,
    unicode: str,
    on_ambiguous: str | None,
    as_json: bool,
) -> int:
    """Queue one message and print its id.

    TO is a phone number in international form (+421900123456); TEXT may begin with "-". The
    message is checked first: a field we refuse is named, with the reason, and the command
    exits 2. An account is a provider account configured in SMS_WORKER_PROVIDERS_FILE.

    Exit 0: the message is written; its id is printed (--json: {"id", "queued_by": "redis"}). If
    Redis could not take it, it is queued by the sweep instead: a note on stderr says when
    (--json: "queued_by": "sweep", "within_seconds", "note"). Exit 3: the database
    failed before the message was written (error: database: unreachable (...)); nothing was
    written, run the command again. Exit 4: the connection was lost during the commit and the
    database could not be asked: the message may be written; the error gives its id for
    `sms-worker status`, and the same command with the same --idempotency-key is safe to rerun.

    \b
    Examples:
      sms-worker send +421900123456 "Your code is 4821" --priority high --on-ambiguous give-up
      sms-worker send +421900123456 "See you at 8" --send-at "$(date -d 'tomorrow 07:30' -Iminutes)"
      sms-worker send --region SK "0900 123 456" "Ahoj"
      sms-worker send +421900123456 "-5 % off today" --account telekom-sk --json
    """
    from sms_worker.config import get_settings
    from sms_worker.db.engine import get_engine
    from sms_worker.db.failures import reaching_the_database
    from sms_worker.producer import send_sms_result

    with reaching_the_database():
        get_engine(get_settings().resolved_database_url).connect().close()
    options: dict[str, Any] = {
        "sender": sender,
        "priority": priority,
        "validity": validity,
        "send_at": send_at,
        "region": region,
        "idempotency_key": idempotency_key,
        "account": account,
        "unicode": UNICODE_CHOICES[unicode],
        "on_ambiguous": on_ambiguous,
    }
    result = send_sms_result(to, text, **{name: value for name, value in options.items() if value is not None})
    if as_json:
        deferred = {} if result.deferral is None else {"within_seconds": result.deferral.within_seconds, "note": result.note}
        echo_json({"id": str(result.ids[0]), "queued_by": result.queued_by, **deferred})
        return 0
    click.echo(result.ids[0])
    if result.note is not None:
        click.echo(f"note: {result.note}", err=True)
    return 0


@click.command(cls=Command)
@click.argument("message_id", metavar="ID")
@click.option(
    "--wait",
    type=click.FloatRange(min=0),
    metavar="SECONDS",
    help="Wait up to SECONDS for the message to reach a final status (delivered, undeliverable, rejected, expired, unknown) "
    "before showing it; exit 5 if it has not.",
)
@json_option
def status(message_id: str, wait: float | None, as_json: bool) -> int:
    """Show a message and its history.

    ID is what `sms-worker send` printed. A message that does not exist exits 1. With --wait, a
    message still not final when the wait ends is shown as it is then, with a note on stderr,
    and the command exits 5.

    \b
    Examples:
      sms-worker status "$(sms-worker send +421900123456 'Hello')" --wait 30
    """
    from sms_worker.views import message_status

    found = message_status(message_id)
    deadline = time.monotonic() + (wait or 0)
    while found is not None and not Status(found.message["status"]).final and time.monotonic() < deadline:
        time.sleep(min(WAIT_POLL_SECONDS, max(deadline - time.monotonic(), 0)))
        found = message_status(message_id)
    if found is None:
        fail("id", f"no message {message_id}", 1)
    code = 0
    if wait is not None and not Status(found.message["status"]).final:
        click.echo(f"note: not final after {wait:g} s: it is {found.message['status']}", err=True)
        code = 5
    if as_json:
        echo_json(found, default=str)
        return code
    for key, value in found.message.items():
        click.echo(f"{key:>20}: {value}")
    for item in found.events:
        click.echo(f"  {item['at']}  {item['status']:<13} {item['reason']}")
    return code
