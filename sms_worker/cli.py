"""``sms-worker``: run the parts of the system and talk to it from a shell."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import uuid
from datetime import datetime
from typing import Any, Callable

from sms_worker.providers.accounts import ProvidersFileError
from sms_worker.validation import InvalidField


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    logging.basicConfig(level=getattr(args, "loglevel", "INFO").upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for chatty in ("httpx", "alembic"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    try:
        return args.run(args) or 0
    except InvalidField as error:
        _print_error(args, error.field, error.reason)
        return 2
    except ProvidersFileError as error:
        _print_error(args, "SMS_WORKER_PROVIDERS_FILE", str(error))
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sms-worker", description=__doc__)
    commands = parser.add_subparsers(title="commands")

    def command(name: str, run: Callable[[argparse.Namespace], int | None], help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(run=run)
        return sub

    worker = command("worker", _worker, "Run a Celery worker that dispatches messages.")
    worker.add_argument("--concurrency", "-c", type=int, default=2, help="worker processes (default 2)")
    worker.add_argument("--queues", "-Q", default=None, help="comma-separated queues (default: all, most urgent first)")
    worker.add_argument("--loglevel", default="info")
    worker.add_argument("--hostname", "-n", default=None)

    scheduler = command("scheduler", _scheduler, "Run Celery beat (sweeps, status polling) and the due-time promoter.")
    scheduler.add_argument("--loglevel", default="info")

    sandbox = command("sandbox", _sandbox, "Serve the provider emulations over HTTP.")
    sandbox.add_argument("--host", default=None)
    sandbox.add_argument("--port", type=int, default=None)
    sandbox.add_argument("--telekom-sk-callback-url", help="post Telekom SK delivery callbacks here, e.g. http://127.0.0.1:8026/callbacks/telekom-sk")
    sandbox.add_argument("--dexatel-webhook-url", help="post Dexatel delivery webhooks here, e.g. http://127.0.0.1:8026/callbacks/dexatel")
    sandbox.add_argument("--post-status-callbacks", action="store_true", help="post Telefoon's per-message status_callback URLs")

    callbacks = command("callbacks", _callbacks, "Receive providers' delivery callbacks at POST /callbacks/<account>.")
    callbacks.add_argument("--host", default=None)
    callbacks.add_argument("--port", type=int, default=None)

    flower = command("flower", _flower, "Run Flower, Celery's monitor, for this deployment.")
    flower.add_argument("--port", type=int, default=None)

    send = command("send", _send, "Queue one message and print its id.")
    send.add_argument("to")
    send.add_argument("text")
    send.add_argument("--sender")
    send.add_argument("--priority", default="standard", help="high, standard or low (or 3, 2, 1)")
    send.add_argument("--validity", type=int, help="minutes, 1-1440")
    send.add_argument("--send-at", type=datetime.fromisoformat, help="ISO 8601 time with zone")
    send.add_argument("--idempotency-key")
    send.add_argument("--provider")
    send.add_argument("--unicode", choices=["auto", "true", "false"], default="auto")
    send.add_argument("--json", action="store_true")

    status = command("status", _status, "Show a message and its history.")
    status.add_argument("id")
    status.add_argument("--json", action="store_true")

    providers = command("providers", _providers, "List provider accounts: rate limit, current rate, breaker, pause (and why).")
    providers.add_argument("--json", action="store_true")
    provider_commands = providers.add_subparsers(title="providers commands")
    resume = provider_commands.add_parser("resume", help="Put an account back in routing: lift its pause, close its breaker.")
    resume.add_argument("name")
    resume.set_defaults(run=_providers_resume)
    check = provider_commands.add_parser("check", help="Verify each account's credentials against its API.")
    check.add_argument("names", nargs="*", help="accounts to check (default: all)")
    check.add_argument("--json", action="store_true")
    check.set_defaults(run=_providers_check)

    stats = command("stats", _stats, "Show the backlog per queue, due pointers, paused accounts and counts by status.")
    stats.add_argument("--json", action="store_true")

    segments = command("segments", _segments, "Tell what a text costs: encoding, parts, what forced UCS-2.")
    segments.add_argument("text")
    segments.add_argument("--unicode", choices=["auto", "false"], default="auto", help="false: Telekom SK's GSM-7 downgrade first")
    segments.add_argument("--json", action="store_true")

    demo = command("demo", _demo, "Run the whole pipeline on embedded defaults and watch a mix of messages.")
    demo.add_argument("--exit-when-done", action="store_true", help="exit 0 once every message is final as expected")
    demo.add_argument("--timeout", type=float, default=180.0)

    db = command("db", lambda a: _parser().parse_args(["db", "--help"]), "Database commands.")
    db_commands = db.add_subparsers(title="db commands")
    upgrade = db_commands.add_parser("upgrade", help="Apply migrations up to the latest.")
    upgrade.set_defaults(run=_db_upgrade)
    downgrade = db_commands.add_parser("downgrade", help="Take the schema back to REVISION, to run an earlier release (0002: 0.1.0).")
    downgrade.add_argument("revision")
    downgrade.set_defaults(run=_db_downgrade)
    return parser


def _print_error(args: argparse.Namespace, field: str, reason: str) -> None:
    if getattr(args, "json", False):
        print(json.dumps({"error": {"field": field, "reason": reason}}))
    else:
        print(f"error: {field}: {reason}", file=sys.stderr)


def _worker(args: argparse.Namespace) -> int:
    from sms_worker.tasks.programs import run_worker

    queues = {"queues": args.queues.split(",")} if args.queues else {}
    run_worker(concurrency=args.concurrency, loglevel=args.loglevel, hostname=args.hostname, **queues)
    return 0


def _scheduler(args: argparse.Namespace) -> int:
    from sms_worker.scheduler import run_scheduler

    run_scheduler()
    return 0


def _sandbox(args: argparse.Namespace) -> int:
    from sms_worker.config import get_settings
    from sms_worker.sandbox.server import run

    settings = get_settings()
    run(args.host or settings.sandbox_host, args.port or settings.sandbox_port, telekom_sk_callback_url=args.telekom_sk_callback_url,
        dexatel_webhook_url=args.dexatel_webhook_url, post_status_callbacks=args.post_status_callbacks)
    return 0


def _callbacks(args: argparse.Namespace) -> int:
    from sms_worker.callbacks import serve_callbacks
    from sms_worker.config import get_settings

    settings = get_settings()
    serve_callbacks(args.host or settings.callback_host, args.port or settings.callback_port)
    return 0


def _flower(args: argparse.Namespace) -> int:
    from sms_worker.config import get_settings
    from sms_worker.tasks.programs import run_flower

    run_flower(args.port or get_settings().flower_port)
    return 0


def _send(args: argparse.Namespace) -> int:
    from sms_worker.config import get_settings
    from sms_worker.db.migrate import upgrade
    from sms_worker.producer import send_sms

    upgrade(get_settings().resolved_database_url)
    options: dict[str, Any] = {"sender": args.sender, "priority": args.priority, "validity": args.validity, "send_at": args.send_at,
                               "idempotency_key": args.idempotency_key, "provider": args.provider,
                               "unicode": {"auto": None, "true": True, "false": False}[args.unicode]}
    message_id = send_sms(args.to, args.text, **{k: v for k, v in options.items() if v is not None})
    print(json.dumps({"id": str(message_id)}) if args.json else message_id)
    return 0


def _status(args: argparse.Namespace) -> int:
    from sms_worker.views import message_history

    try:
        message_id = uuid.UUID(args.id)
    except ValueError:
        raise InvalidField("id", f"{args.id!r} is not a message id") from None
    found = message_history(message_id)
    if found is None:
        _print_error(args, "id", f"no message {message_id}")
        return 1
    if args.json:
        print(json.dumps(found, default=str))
        return 0
    for key, value in found["message"].items():
        print(f"{key:>20}: {value}")
    for item in found["events"]:
        print(f"  {item['at']}  {item['status']:<13} {item['reason']}")
    return 0


def _providers(args: argparse.Namespace) -> int:
    from sms_worker.views import accounts_overview
    from sms_worker.runtime import build_runtime

    rt = build_runtime()
    try:
        accounts = accounts_overview(rt)
    finally:
        rt.close()
    if args.json:
        print(json.dumps(accounts))
        return 0
    for account in accounts:
        breaker = account["breaker"]
        if breaker != "closed":
            until = datetime.fromtimestamp(account["breaker_until"]).strftime("%H:%M:%S")
            breaker = f"{breaker.upper()} until {until} ({account['breaker_reason']})"
        state = f"PAUSED: {account['paused']}" if account["paused"] else "in routing"
        print(f"{account['name']:<16} {account['type']:<12} {account['current_rate']:>7.1f}/s of {account['rate_limit']:g}/s "
              f"(burst {account['burst']})  breaker {breaker}, recent failures {account['recent_failures']}  {state}")
    return 0


def _providers_resume(args: argparse.Namespace) -> int:
    from sms_worker.providers.admin import resume_account
    from sms_worker.runtime import build_runtime

    rt = build_runtime()
    try:
        lifted = resume_account(rt, args.name)
        print(f"{args.name}: {', '.join(lifted) if lifted else 'was already in routing'}")
    finally:
        rt.close()
    return 0


def _providers_check(args: argparse.Namespace) -> int:
    from sms_worker.providers.admin import require_accounts
    from sms_worker.runtime import build_runtime
    from sms_worker.views import check_accounts

    rt = build_runtime()
    try:
        require_accounts(rt, "names", args.names)
        results = check_accounts(rt, args.names)
    finally:
        rt.close()
    if args.json:
        print(json.dumps(results))
    else:
        for result in results:
            print(f"{result['name']:<16} {'OK  ' if result['ok'] else 'FAIL'}  {result['detail']}")
    return 0 if all(result["ok"] for result in results) else 1


def _stats(args: argparse.Namespace) -> int:
    from sms_worker.views import pipeline_stats

    stats = pipeline_stats()
    if args.json:
        print(json.dumps(stats))
        return 0
    print("ready:  " + ", ".join(f"{queue} {n}" for queue, n in stats["ready"].items()) + f"; due: {stats['due']}")
    for account, reason in stats["paused_accounts"].items():
        print(f"PAUSED: {account}: {reason}")
    print("status: " + ", ".join(f"{status} {n}" for status, n in sorted(stats["statuses"].items())))
    return 0


def _segments(args: argparse.Namespace) -> int:
    from sms_worker.text import cost_report

    report = cost_report(args.text, downgrade=args.unicode == "false")
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
    else:
        forced = f", forced by {' '.join(report['forced_ucs2'])}" if report["forced_ucs2"] else ""
        print(f"{report['encoding']}, {report['segments']} part(s), {report['units']} units, {report['per_segment']} per part{forced}")
        if "downgraded_text" in report:
            print(f"sent as: {report['downgraded_text']}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from sms_worker.demo import run_demo

    return run_demo(exit_when_done=args.exit_when_done, timeout=args.timeout)


def _db_upgrade(args: argparse.Namespace) -> int:
    from sms_worker.config import get_settings
    from sms_worker.db.migrate import current_revision, upgrade

    url = get_settings().resolved_database_url
    before = current_revision(url)
    upgrade(url)
    after = current_revision(url)
    if before == after:
        print(f"database is at the latest revision ({after})")
    else:
        print(f"database upgraded from {before or 'empty'} to revision {after}")
    return 0


def _db_downgrade(args: argparse.Namespace) -> int:
    from sms_worker.config import get_settings
    from sms_worker.db.migrate import downgrade

    downgrade(get_settings().resolved_database_url, args.revision)
    print(f"database is at revision {args.revision}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
