"""``sms-worker stats``: the backlog and the outcomes at a glance."""

from __future__ import annotations

import click

from sms_worker.cli.base import Command, echo_json, json_option, open_deployment


@click.command(cls=Command)
@json_option
def stats(as_json: bool) -> int:
    """Show the backlog, paused accounts and counts by status.

    "ready" counts the messages waiting for a worker, per priority; "due" those waiting for a
    time: scheduled, to be retried, or held by a paused account. "possible duplicates" counts
    messages resent after an ambiguous attempt (a timeout...) that their provider could not be
    asked about, "unsure" those still to be sent with such an attempt unsettled. JSON keys: ready,
    due, paused_accounts, statuses, possible_duplicates, unsure, redis_eviction.
    """
    with open_deployment() as deployment:
        from sms_worker.views import pipeline_stats  # once the settings are found good

        found = pipeline_stats(deployment)
    if as_json:
        echo_json(found)
        return 0
    click.echo("ready:  " + ", ".join(f"{queue} {n}" for queue, n in found.ready.items()) + f"; due: {found.due}")
    if found.redis_eviction:
        click.echo(f"WARNING: {found.redis_eviction}")
    for account, reason in found.paused_accounts.items():
        click.echo(f"PAUSED: {account}: {reason}")
    click.echo("status: " + (", ".join(f"{name} {n}" for name, n in sorted(found.statuses.items())) or "no messages yet"))
    click.echo(f"ambiguous attempts: possible duplicates {found.possible_duplicates}; unsure {found.unsure}")
    return 0
