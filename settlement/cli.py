"""`tributary`: the finance team's command line, for those who do not live in Airflow.

Exit codes: 0 done, 1 the step failed (a gate, a missing input), 2 wrong use (bad
arguments, wrong person, wrong period state).
"""

from __future__ import annotations

import functools
import json
import uuid
from pathlib import Path
from typing import Annotated

import duckdb
import typer
from rich.console import Console
from rich.table import Table

from provenance.cli import provenance_app
from settlement import (
    audit,
    calculate,
    catalog_csv,
    disputes,
    inputs,
    lifecycle,
    platforms,
    splits,
    statements,
)
from settlement.cli_delivery import alerts_app, contacts_app, deliveries_app
from settlement.config import Settings
from settlement.reference import register_fx_rate, register_platform
from settlement.warehouse import WarehouseError, query, warehouse

app = typer.Typer(help=__doc__, no_args_is_help=True, pretty_exceptions_enable=False)
period_app = typer.Typer(help="Period status and close.", no_args_is_help=True)
settle_app = typer.Typer(help="Calculate and approve a period.", no_args_is_help=True)
platforms_app = typer.Typer(help="Licensed platforms.", no_args_is_help=True)
audit_app = typer.Typer(help="Read-only access for auditors.", no_args_is_help=True)
fx_app = typer.Typer(help="FX rates, one per currency pair and period.", no_args_is_help=True)
catalog_app = typer.Typer(help="Works, rights holders and splits.", no_args_is_help=True)
splits_app = typer.Typer(help="Ownership splits: who owns which share of a work's right, from when.", no_args_is_help=True)
statements_app = typer.Typer(help="Statement files for rights holders.", no_args_is_help=True)
app.add_typer(period_app, name="period")
app.add_typer(settle_app, name="settle")
app.add_typer(platforms_app, name="platforms")
app.add_typer(audit_app, name="audit")
app.add_typer(catalog_app, name="catalog")
app.add_typer(fx_app, name="fx")
app.add_typer(statements_app, name="statements")
app.add_typer(splits_app, name="splits")
app.add_typer(contacts_app, name="contacts")
app.add_typer(deliveries_app, name="deliveries")
app.add_typer(alerts_app, name="alerts")
app.add_typer(provenance_app, name="provenance")
portal_app = typer.Typer(help="The holder portal (docs/portal.md). Without a subcommand: serve it.")
portal_users_app = typer.Typer(help="Portal users of rights holder organisations.", no_args_is_help=True)
disputes_app = typer.Typer(help="Holders' disputes of statement lines.", no_args_is_help=True)
portal_app.add_typer(portal_users_app, name="users")
app.add_typer(portal_app, name="portal")
app.add_typer(disputes_app, name="disputes")
console = Console()

USER_ERROR, FAILURE = 2, 1


def _settings() -> Settings:
    return Settings.from_env()


def _fail(message: str, code: int) -> None:
    # one problem per line, greppable; markup off: a message may quote "[...]" from the user
    console.print("[red]error:[/red] ", end="", soft_wrap=True)
    console.print(message, soft_wrap=True, markup=False, highlight=False)
    raise typer.Exit(code)


def _user_errors(command):
    """Bad input (a value breaking a rule) and a step asked for in the wrong state are the
    user's to fix: exit 2 with the message, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except (inputs.InputError, lifecycle.LifecycleError, audit.AuditRefused) as exc:
            _fail(str(exc), USER_ERROR)

    return wrapper


def _period(value: str) -> str:
    """Typer callback: a period argument is YYYY-MM or the command does not start."""
    try:
        return inputs.period(value)
    except inputs.InputError as exc:
        raise typer.BadParameter(str(exc)) from None


@platforms_app.command("list")
def platforms_list() -> None:
    """List licensed platforms. Example: tributary platforms list"""
    table = Table("platform_id", "name", "conn_id")
    for p in platforms.registered(_settings().warehouse):
        table.add_row(p["platform_id"], p["name"], p["conn_id"])
    console.print(table)


@platforms_app.command("add")
def platforms_add(platform_id: str, name: str, conn_id: str) -> None:
    """Register a platform; its URL and token live in the Airflow Connection CONN_ID.
    Example: tributary platforms add acme "Acme Music AI" acme_generation_log"""
    with warehouse(_settings().warehouse) as con:
        register_platform(con, platform_id, name, conn_id)
    console.print(f"platform {platform_id} registered (connection {conn_id})")


@catalog_app.command("import")
@_user_errors
def catalog_import(
    works: Annotated[Path, typer.Option(help="CSV: work_id,iswc,isrc,title,composer,collection,style,source")],
    holders: Annotated[Path, typer.Option(help="CSV: rights_holder_id,name,kind,payout_currency,min_payout")],
    splits: Annotated[
        Path, typer.Option(help="CSV: work_id,right_type,rights_holder_id,share,effective_from,effective_to")
    ],
) -> None:
    """Check every row of the three CSV files, then import them in one go (or not at all).
    Example: tributary catalog import --works works.csv --holders holders.csv --splits splits.csv"""
    try:
        with console.status("checking and importing the catalog"):
            result = catalog_csv.import_catalog_csv(_settings().warehouse, works, holders, splits)
    except catalog_csv.CatalogImportError as exc:
        _fail(str(exc), USER_ERROR)
    console.print_json(json.dumps(result, default=str))


@fx_app.command("set")
@_user_errors
def fx_set(
    period: Annotated[str, typer.Option(help="YYYY-MM", callback=_period)],
    from_currency: Annotated[str, typer.Option("--from", help="revenue currency, e.g. EUR")],
    to_currency: Annotated[str, typer.Option("--to", help="contract currency, e.g. USD")],
    rate: Annotated[str, typer.Option(help="units of --to per unit of --from, up to 8 decimals")],
    source: Annotated[str, typer.Option(help="where the rate comes from, e.g. 'ECB reference 2026-10-30'")],
) -> None:
    """Record the period's rate for a currency pair (clears the fx_missing gate). A closed
    period's rates are fixed: a correction is a new rate in an open period.
    Example: tributary fx set --period 2026-10 --from EUR --to USD --rate 1.0842 --source "ECB 2026-10-30" """
    value = inputs.fx_rate(rate)
    try:
        with warehouse(_settings().warehouse) as con:
            register_fx_rate(con, period, from_currency, to_currency, value, source)
    except (WarehouseError, duckdb.Error) as exc:
        _fail(str(exc), USER_ERROR)
    console.print(f"{from_currency}/{to_currency} {period} = {value} ({source.strip()})")


@statements_app.command("build")
@_user_errors
def statements_build(period: str = typer.Option(..., help="YYYY-MM", callback=_period)) -> None:
    """Write every statement file of a calculated period (PDF, CSV, DSR) and record its sha256.
    Example: tributary statements build --period 2026-10"""
    s = _settings()
    try:
        result = statements.build_statements(s.warehouse, s.statements, period, progress=True)
    except RuntimeError as exc:
        _fail(str(exc), USER_ERROR if "has not been calculated" in str(exc) else FAILURE)
    console.print(f"{result['statements']} statements, {result['files']} files in {result['folder']}")


@statements_app.command("verify")
@_user_errors
def statements_verify(period: str = typer.Option(..., help="YYYY-MM", callback=_period)) -> None:
    """Rebuild a period's statements in memory and compare with the recorded sha256 and the
    files on disk; exit 1 if any differs. Example: tributary statements verify --period 2026-10"""
    s = _settings()
    try:
        result = statements.verify_statements(s.warehouse, s.statements, period, progress=True)
    except RuntimeError as exc:
        _fail(str(exc), USER_ERROR)
    bad = [f for f in result["files"] if f["status"] != "ok"]
    for f in bad:
        console.print(f"[red]{f['status']}[/red]: {f['path']}")
    console.print(f"{len(result['files']) - len(bad)}/{len(result['files'])} files verified")
    if bad:
        raise typer.Exit(FAILURE)


@period_app.command("status")
@_user_errors
def period_status(period: Annotated[str, typer.Argument(callback=_period)]) -> None:
    """Where a period stands. Example: tributary period status 2026-10"""
    state = lifecycle.period_state(_settings().warehouse, period)
    console.print_json(json.dumps(state, default=str))


@settle_app.command("calculate")
@_user_errors
def settle_calculate(
    period: str = typer.Option(..., help="YYYY-MM", callback=_period),
    by: str = typer.Option(..., help="your user name"),
) -> None:
    """Calculate (or recalculate) an open period.
    Example: tributary settle calculate --period 2026-10 --by alice"""
    run_id = f"cli.calculate@{uuid.uuid4().hex[:12]}"
    try:
        with console.status(f"calculating {period}"):
            result = calculate.calculate_period(_settings().warehouse, period, run_id=run_id, by=by)
    except calculate.PeriodClosedError as exc:
        _fail(str(exc), USER_ERROR)
    except calculate.QualityGateError as exc:
        _fail(str(exc), FAILURE)
    console.print_json(json.dumps(result, default=str))


@settle_app.command("approve")
@_user_errors
def settle_approve(
    period: str = typer.Option(..., help="YYYY-MM", callback=_period),
    by: str = typer.Option(..., help="your user name; not the preparer's"),
) -> None:
    """Approve a calculated period; the preparer cannot approve.
    Example: tributary settle approve --period 2026-10 --by bob"""
    try:
        result = lifecycle.approve_period(_settings().warehouse, period, by=by)
    except lifecycle.LifecycleError as exc:
        _fail(str(exc), USER_ERROR)
    console.print(f"period {period} approved by {result['approved_by']} (calculation {result['run_id']})")


@period_app.command("close")
@_user_errors
def period_close(period: Annotated[str, typer.Argument(callback=_period)], by: str = typer.Option(...)) -> None:
    """Close an approved period: payouts, carry-forward, read-only snapshot. Safe to run again
    after an interruption: it finishes a close that was cut short.
    Example: tributary period close 2026-10 --by bob"""
    s = _settings()
    try:
        with console.status(f"closing {period}: payouts, carry-forward, snapshot"):
            result = lifecycle.close_period(s.warehouse, period, by=by, snapshots=s.home / "snapshots",
                                            deliver_to=s.statements)  # fmt: skip
    except lifecycle.LifecycleError as exc:
        _fail(str(exc), USER_ERROR)
    console.print_json(json.dumps(result, default=str))
    sent = result.get("deliveries", {})
    if sent.get("error") or sent.get("failed") or sent.get("bounced"):  # the close stands; say so
        console.print("[yellow]warning:[/yellow] some statement mails were not delivered; the period is "
                      "closed. See `tributary deliveries list` and run `tributary deliveries retry`.")


@period_app.command("waive-order")
@_user_errors
def period_waive_order(
    period: Annotated[str, typer.Argument(callback=_period)],
    by: str = typer.Option(..., help="who decides (a person)"),
    reason: str = typer.Option(..., help="why the month before need not be closed first"),
) -> None:
    """Let a month be calculated although the month before it is not closed (the previous_period_open
    gate), e.g. because it was settled outside Tributary. Recorded with who and why.
    Example: tributary period waive-order 2026-11 --by carol --reason "October settled in the old system" """
    try:
        result = lifecycle.waive_previous_period(_settings().warehouse, period, by=by, reason=reason)
    except lifecycle.LifecycleError as exc:
        _fail(str(exc), USER_ERROR)
    console.print(f"{result['period']} may be calculated before {result['previous_period']} is closed "
                  f"(waived by {result['waived_by']}: {result['reason']})")  # fmt: skip


@period_app.command("snapshot")
@_user_errors
def period_snapshot(period: Annotated[str, typer.Argument(callback=_period)]) -> None:
    """Publish a closed period's read-only snapshot if its close was cut short before it was
    (a complete snapshot is left as it is). Example: tributary period snapshot 2026-10"""
    s = _settings()
    result = lifecycle.publish_pending_snapshot(s.warehouse, period, s.home / "snapshots")
    console.print(f"{result['snapshot']}  sha256 {result['snapshot_sha256']}")


@period_app.command("restore")
@_user_errors
def period_restore(
    snapshot: Annotated[Path, typer.Option(help="a closed period's snapshot file")],
    sha256: Annotated[str | None, typer.Option(help="its recorded digest, if the live file is lost")] = None,
) -> None:
    """Make a closed period's snapshot the live warehouse again; the replaced file is kept.
    Example: tributary period restore --snapshot var/snapshots/warehouse-2026-10.duckdb"""
    try:
        result = lifecycle.restore_snapshot(_settings().warehouse, snapshot, sha256)
    except lifecycle.LifecycleError as exc:
        _fail(str(exc), USER_ERROR)
    console.print_json(json.dumps(result, default=str))


@audit_app.command("snapshot")
@_user_errors
def audit_snapshot(period: Annotated[str, typer.Argument(callback=_period)]) -> None:
    """Print where a closed period's read-only snapshot is.
    Example: tributary audit snapshot 2026-10"""
    with warehouse(_settings().warehouse, read_only=True) as con:
        rows = query(con, "marts/period_snapshot", {"period": period})
    if not rows:
        _fail(f"period {period} has no snapshot; it is published when the period closes", USER_ERROR)
    if rows[0]["snapshot_sha256"] is None:
        _fail(f"period {period}'s close was cut short before its snapshot was published; "
              f"run `tributary period close {period} --by ...` again to finish it", USER_ERROR)  # fmt: skip
    typer.echo(f"{rows[0]['snapshot_path']}  sha256 {rows[0]['snapshot_sha256']}")


@audit_app.command("query")
@_user_errors
def audit_query(
    sql: str,
    snapshot: Annotated[Path | None, typer.Option(help="a period snapshot; default: the live warehouse")] = None,
) -> None:
    """Run one read-only SELECT (or WITH ... SELECT) statement. Nothing else is accepted, and
    the connection can read no file and change no setting.
    Example: tributary audit query "SELECT * FROM settlement.pools" """
    columns, rows = audit.run_query(snapshot or _settings().warehouse, sql)
    table = Table(*columns)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    console.print(table)


@splits_app.command("show")
@_user_errors
def splits_show(work: str) -> None:
    """A work's ownership splits over time. Example: tributary splits show W0001"""
    table = Table("right_type", "rights_holder_id", "share", "effective_from", "effective_to")
    for r in splits.show(_settings().warehouse, work):
        table.add_row(r["right_type"], r["rights_holder_id"], str(r["share"]), str(r["effective_from"]),
                      str(r["effective_to"] or ""))  # fmt: skip
    console.print(table)


@splits_app.command("change")
@_user_errors
def splits_change(
    work: Annotated[str, typer.Option(help="the work whose right changes hands")],
    right: Annotated[str, typer.Option(help="publishing or master")],
    from_date: Annotated[str, typer.Option("--from", help="first day of the new ownership (the 1st of a month)")],
    holder: Annotated[list[str], typer.Option(help="HOLDER_ID=SHARE, once per new holder; shares sum to 1")],
) -> None:
    """Change a work's ownership from the 1st of a month: the rows in force end that day and the
    new holders' rows start it (one transaction; earlier months keep their history).
    Example: tributary splits change --work W0001 --right master --from 2026-11-01 --holder RH0002=1"""
    result = splits.change_ownership(_settings().warehouse, work, right, from_date, splits.parse_holders(holder))
    console.print_json(json.dumps(result, default=str))


@portal_app.callback(invoke_without_command=True)
def portal_serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="address to listen on; loopback unless a reverse proxy needs more")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8470,
    public_url: Annotated[str | None, typer.Option(help="the https:// address holders use, behind a reverse proxy")] = None,
    forwarded_allow_ips: Annotated[str, typer.Option(help="proxies whose X-Forwarded-For/-Proto are trusted")] = "127.0.0.1",
) -> None:
    """Serve the holder portal. Session cookies are Secure unless both the listening address and
    --public-url are loopback. Example: tributary portal --port 8470"""
    if ctx.invoked_subcommand is not None:
        return
    from portal.server import serve  # the web stack only when the portal runs

    serve(_settings(), host=host, port=port, public_url=public_url, forwarded_allow_ips=forwarded_allow_ips)


@portal_users_app.command("add")
@_user_errors
def portal_users_add(
    user: Annotated[str, typer.Argument(help="sign-in name, e.g. an email address")],
    holder: Annotated[str, typer.Option(help="the rights holder id the user belongs to")],
    by: Annotated[str, typer.Option(help="who creates the user")],
    name: Annotated[str | None, typer.Option(help="display name")] = None,
    password_stdin: Annotated[bool, typer.Option(help="read the password from standard input")] = False,
) -> None:
    """Create a portal user for a holder organisation. The password is asked for (twice) or read
    from stdin with --password-stdin; it is never an argument, so no shell history or process
    list shows it. Example: tributary portal users add ana@label.example --holder RH0001 --by carol"""
    import sys

    from portal import accounts

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    result = accounts.add_user(_settings().warehouse, user=user, rights_holder_id=holder,
                               display_name=name or user, password=password, by=by)  # fmt: skip
    console.print(f"user {result['user_id']} created for {result['rights_holder_id']}", markup=False)


@portal_users_app.command("disable")
@_user_errors
def portal_users_disable(
    user: Annotated[str, typer.Argument(help="sign-in name")],
    by: Annotated[str, typer.Option(help="who disables the user")],
) -> None:
    """Disable a portal user: it can no longer sign in and its open sessions end now.
    Example: tributary portal users disable ana@label.example --by carol"""
    from portal import accounts

    result = accounts.disable_user(_settings().warehouse, user=user, by=by)
    console.print(f"user {result['user_id']} disabled at {result['disabled_at']:%Y-%m-%d %H:%M} UTC", markup=False)


@portal_users_app.command("list")
def portal_users_list() -> None:
    """List portal users (never their password hashes). Example: tributary portal users list"""
    from portal import accounts

    table = Table("user_id", "rights_holder_id", "display_name", "created_by", "created_at", "disabled_at")
    from rich.text import Text

    for u in accounts.list_users(_settings().warehouse):
        table.add_row(*(Text("" if v is None else str(v)) for v in u.values()))
    console.print(table)


@disputes_app.command("list")
@_user_errors
def disputes_list(
    status: Annotated[str | None, typer.Option(help="open, upheld or rejected (default: all)")] = None,
    csv: Annotated[bool, typer.Option("--csv", help="print CSV (safe to open in a spreadsheet) instead of a table")] = False,
) -> None:
    """Holders' disputes, newest first. Example: tributary disputes list --status open"""
    from rich.text import Text

    from settlement import cells

    rows = disputes.list_disputes(_settings().warehouse, status)
    if csv:  # reasons are typed by holders: cells cleaned and formula-neutralised
        typer.echo(cells.csv_bytes(list(rows[0]) if rows else ["dispute_id"], rows).decode(), nl=False)
        return
    table = Table("id", "state", "period", "holder", "platform", "work", "right", "amount", "filed", "reason")
    for d in rows:
        # Text, not markup: a holder's reason may hold "[...]" that rich would render
        table.add_row(*(Text(str(v)) for v in (
            d["dispute_id"], d["status"], d["period"], d["rights_holder_id"], d["platform_id"], d["work_id"],
            d["right_type"], f"{d['line_amount']} {d['currency']}", f"{d['filed_at']:%Y-%m-%d %H:%M} {d['filed_by']}",
            d["reason"])))  # fmt: skip
    console.print(table)


@disputes_app.command("resolve")
@_user_errors
def disputes_resolve(
    dispute_id: Annotated[int, typer.Argument(help="the dispute's number")],
    reason: Annotated[str, typer.Option(help="the answer the holder reads")],
    by: Annotated[str, typer.Option(help="your user name")],
    upheld: Annotated[bool, typer.Option("--upheld/--rejected", help="uphold or reject the dispute")] = ...,
    adjustment: Annotated[str | None, typer.Option(help="upheld: the amount agreed, in the line's currency")] = None,
    in_period: Annotated[str | None, typer.Option(help="upheld: the open period whose calculation pays the correction")] = None,
) -> None:
    """Uphold or reject an open dispute; the holder sees the answer in the portal. An upheld
    dispute is paid by correcting its input (e.g. `tributary splits change`): the calculation of
    --in-period then pays the difference as an adjustment, which the holder sees with the answer.
    Example: tributary disputes resolve 3 --rejected --reason "splits confirmed by the publisher" --by carol"""
    d = disputes.resolve(_settings().warehouse, dispute_id, upheld=upheld, reason=reason, by=by,
                         adjustment=adjustment, adjustment_period=in_period)  # fmt: skip
    again = "already " if d.get("already") else ""
    console.print(f"dispute {d['dispute_id']} {again}{d['status']} by {d['changed_by']}", markup=False)


if __name__ == "__main__":
    app()
