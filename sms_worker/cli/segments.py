"""``sms-worker segments``: what a text costs."""

from __future__ import annotations

import click

from sms_worker.cli.base import TextCommand, echo_json, json_option


@click.command(cls=TextCommand)
@click.argument("text")
@click.option(
    "--unicode",
    type=click.Choice(["auto", "false", "true"]),
    default="auto",
    show_default=True,
    help="false: the GSM-7 downgrade first (diacritics stripped), as `send --unicode false` does; true: UCS-2 whatever the text, as `send --unicode true` is priced.",
)
@json_option
def segments(text: str, unicode: str, as_json: bool) -> int:
    """Tell what a text costs: encoding, segments, what forced UCS-2.

    GSM-7 fits 160 characters in one segment, 153 per segment of a longer message; one character
    outside it makes the whole text UCS-2, 70 and 67. Nothing is sent. TEXT may begin with
    "-": sms-worker segments "-5 % off today".
    """
    from sms_worker.text import cost_report

    report = cost_report(text, downgrade=unicode == "false", ucs2=unicode == "true")
    if as_json:
        echo_json(report.as_json(), ensure_ascii=False)
        return 0
    cost = report.analysis
    forced = f", forced by {' '.join(cost.forced_ucs2)}" if cost.forced_ucs2 else ""
    click.echo(f"{cost.encoding}, {cost.segments} segment(s), {cost.units} units, {cost.per_segment} per segment{forced}")
    if report.unmapped:
        click.echo(f"refused by `send --unicode false`, no GSM-7 form: {' '.join(report.unmapped)}")
    if report.downgraded_text is not None:
        priced = "folded, each refused character as ?" if report.unmapped else "sent as"
        click.echo(f"{priced}: {report.downgraded_text}")
    return 0
