"""`tributary contacts ...` and `tributary deliveries ...`: who receives a holder's statements,
and the statement mails sent, bounced, failed and retried (settlement/delivery.py)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from settlement import delivery, inputs
from settlement.config import Settings

contacts_app = typer.Typer(help="Holder contacts who receive statement mails.", no_args_is_help=True)
deliveries_app = typer.Typer(help="Statement mails: sent, bounced, failed, retried.", no_args_is_help=True)


def _cli():
    from settlement import cli  # the shared console, error exit and period check

    return cli


def _period_or_none(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return inputs.period(value)
    except inputs.InputError as exc:
        raise typer.BadParameter(str(exc)) from None


@contacts_app.command("add")
def contacts_add(
    holder: Annotated[str, typer.Argument(help="rights_holder_id")],
    email: Annotated[str, typer.Argument(help="address that receives the holder's statements")],
    name: Annotated[str, typer.Option(help="the person's name, for the greeting")] = "",
) -> None:
    """Register a statement contact for a holder (validated; adding it again changes nothing).
    Example: tributary contacts add RH0001 royalties@label.example --name "Ada Royalties" """
    cli = _cli()
    try:
        row = delivery.add_contact(Settings.from_env().warehouse, holder, email, name)
    except inputs.InputError as exc:
        cli._fail(str(exc), cli.USER_ERROR)
    cli.console.print(f"{row['rights_holder_id']}: {row['email']} receives statement mails")


@contacts_app.command("remove")
def contacts_remove(holder: str, email: str) -> None:
    """Stop mailing statements to an address. Example: tributary contacts remove RH0001 a@b.example"""
    cli = _cli()
    try:
        delivery.remove_contact(Settings.from_env().warehouse, holder, email)
    except inputs.InputError as exc:
        cli._fail(str(exc), cli.USER_ERROR)
    cli.console.print(f"{holder}: {email} removed")


@contacts_app.command("list")
def contacts_list(holder: Annotated[str | None, typer.Option(help="one holder only")] = None) -> None:
    """Statement contacts. Example: tributary contacts list --holder RH0001"""
    table = Table("rights_holder_id", "email", "name", "added_at (UTC)")
    for r in delivery.contacts(Settings.from_env().warehouse, holder):
        table.add_row(r["rights_holder_id"], r["email"], r["name"], str(r["added_at"]))
    _cli().console.print(table)


@deliveries_app.command("list")
def deliveries_list(period: Annotated[str | None, typer.Option(help="YYYY-MM", callback=_period_or_none)] = None) -> None:
    """Statement mails and their outcome. Example: tributary deliveries list --period 2026-10"""
    table = Table("period", "holder", "email", "status", "attempts", "last error", "sent at (UTC)")
    for r in delivery.deliveries(Settings.from_env().warehouse, period):
        table.add_row(r["period"], r["rights_holder_id"], r["email"], r["status"], str(r["attempts"]),
                      r["last_error"] or "", str(r["sent_at"] or ""))  # fmt: skip
    _cli().console.print(table)


@deliveries_app.command("send")
def deliveries_send(period: Annotated[str, typer.Argument(help="a closed period, YYYY-MM")]) -> None:
    """Queue and send a closed period's statement mails (what the close does; contacts added
    since get theirs, nobody gets one twice). Example: tributary deliveries send 2026-10"""
    cli, s = _cli(), Settings.from_env()
    try:
        result = delivery.deliver_period(s.warehouse, s.statements, inputs.period(period))
    except inputs.InputError as exc:
        cli._fail(str(exc), cli.USER_ERROR)
    _report(cli, result)


@deliveries_app.command("retry")
def deliveries_retry(
    period: Annotated[str | None, typer.Option(help="YYYY-MM; default every period", callback=_period_or_none)] = None,
    bounced: Annotated[bool, typer.Option(help="also resend bounced mails (after fixing the address)")] = False,
) -> None:
    """Send again every statement mail that failed (the mail server was down) or never finished.
    Exit 1 if some are still not delivered. Example: tributary deliveries retry --period 2026-10"""
    cli, s = _cli(), Settings.from_env()
    result = delivery.send_due(s.warehouse, period, retry=True, bounced=bounced, statements_root=s.statements)
    _report(cli, result)


def _report(cli, result: dict) -> None:
    cli.console.print_json(json.dumps(result, default=str))
    if result.get("failed") or result.get("pending") or result.get("bounced"):
        raise typer.Exit(cli.FAILURE)


alerts_app = typer.Typer(help="Monitoring rules for rights holders, and the alerts they raised.", no_args_is_help=True)


@alerts_app.command("add")
def alerts_add(
    holder: Annotated[str, typer.Argument(help="rights_holder_id")],
    kind: Annotated[str, typer.Option(help="share_jump, near_copy or new_platform")],
    threshold: Annotated[str | None, typer.Option(help="share_jump: factor (default 3); near_copy: share (default 0.5)")] = None,
    min_generations: Annotated[int, typer.Option(help="ignore works/platforms with fewer generations")] = 1,
) -> None:
    """Set a monitoring rule for a holder; its alerts are mailed to the holder's contacts.
    Example: tributary alerts add RH0001 --kind share_jump --threshold 3 --min-generations 5"""
    from settlement import alerts

    cli = _cli()
    try:
        rule = alerts.add_rule(Settings.from_env().warehouse, holder, kind, threshold, min_generations)
    except inputs.InputError as exc:
        cli._fail(str(exc), cli.USER_ERROR)
    cli.console.print(f"rule {rule['rule_id']}: {rule['kind']} (threshold {rule['threshold']}) for {holder}")


@alerts_app.command("list")
def alerts_list(
    period: Annotated[str | None, typer.Option(help="YYYY-MM", callback=_period_or_none)] = None,
    holder: Annotated[str | None, typer.Option(help="one holder only")] = None,
) -> None:
    """Raised alerts. Example: tributary alerts list --period 2026-11"""
    from settlement import alerts

    table = Table("period", "holder", "kind", "subject", "detail")
    for a in alerts.listed(Settings.from_env().warehouse, period, holder):
        table.add_row(a["period"], a["rights_holder_id"], a["kind"], a["subject"], a["detail"])
    _cli().console.print(table)


@alerts_app.command("evaluate")
def alerts_evaluate(period: Annotated[str, typer.Argument(help="YYYY-MM")]) -> None:
    """Evaluate every holder's rules on a period (after attribution), store new alerts, mail them.
    Safe to rerun: nothing is raised or mailed twice. Example: tributary alerts evaluate 2026-11"""
    from settlement import alerts

    cli = _cli()
    try:
        result = alerts.evaluate(Settings.from_env().warehouse, period)
    except inputs.InputError as exc:
        cli._fail(str(exc), cli.USER_ERROR)
    cli.console.print_json(json.dumps(result, default=str))
