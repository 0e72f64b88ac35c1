"""``sms-worker accounts``: the configured accounts, as an operator sees and handles them;
``sms-worker providers`` is its former name, kept for one release."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import click

from sms_worker.cli.base import Group, deprecated_alias, echo_json, json_option, open_deployment

if TYPE_CHECKING:
    from sms_worker.views import AccountOverview


@click.group(cls=Group, invoke_without_command=True)
@json_option
@click.pass_context
def accounts(ctx: click.Context, as_json: bool) -> int:
    """List the accounts: rate limit and rate, breaker, pause.

    An account is a provider account configured in SMS_WORKER_PROVIDERS_FILE (see
    providers.example.toml). For each: its rate limit and current rate in messages (or segments, per SMS_WORKER_RATE_LIMIT_UNIT) per second,
    its breaker (opened by repeated faults) and its pause, with the reason: an account-wide
    fault (bad key, IP not allowed, no credit) pauses it until `resume`.
    """
    if ctx.invoked_subcommand is not None:
        return 0
    with open_deployment() as deployment:
        from sms_worker.views import accounts_overview  # once the settings are found good

        overview = accounts_overview(deployment)
    if as_json:
        echo_json(overview)
        return 0
    for account in overview:
        click.echo(_account_line(account))
    return 0


def _account_line(account: AccountOverview) -> str:
    breaker = account.breaker
    if breaker != "closed" and account.breaker_until is not None:
        until = datetime.fromtimestamp(account.breaker_until).strftime("%H:%M:%S")
        breaker = f"{breaker.upper()} until {until} ({account.breaker_reason})"
    state = f"PAUSED: {account.paused}" if account.paused else "in routing"
    return (
        f"{account.name:<16} {account.type:<12} {account.current_rate:>7.1f}/s of {account.rate_limit:g}/s "
        f"(burst {account.burst})  breaker {breaker}, recent failures {account.recent_failures}  {state}"
    )


@accounts.command()
@click.argument("name")
def resume(name: str) -> int:
    """Put an account back in routing: lift its pause, close its breaker.

    Run it once the cause of an account-wide fault is fixed; its waiting messages go out again.
    """
    from sms_worker.providers.admin import resume_account

    with open_deployment() as deployment:
        lifted = resume_account(deployment, name)
    click.echo(f"{name}: {', '.join(lifted) if lifted else 'was already in routing'}")
    return 0


@accounts.command()
@click.argument("names", nargs=-1, metavar="[NAME]...")
@json_option
def check(names: tuple[str, ...], as_json: bool) -> int:
    """Verify each account's credentials against its API.

    One cheap authenticated call per account (balance, session...); nothing is sent. Checks
    every account unless NAMEs are given; exits 1 if any fails.
    """
    from sms_worker.config import get_settings
    from sms_worker.providers.admin import opened_accounts, require_accounts
    from sms_worker.views import check_accounts

    with opened_accounts(get_settings()) as configured:
        require_accounts(configured, "name", names)
        results = check_accounts(configured, list(names))
    if as_json:
        echo_json(results)
    else:
        for result in results:
            click.echo(f"{result.name:<16} {'OK  ' if result.ok else 'FAIL'}  {result.detail}")
    return 0 if all(result.ok for result in results) else 1


providers = deprecated_alias(accounts, "providers")
