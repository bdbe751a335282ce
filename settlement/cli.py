"""`tributary`: the finance team's command line, for those who do not live in Airflow.

Exit codes: 0 done, 1 the step failed (a gate, a missing input), 2 wrong use (bad
arguments, wrong person, wrong period state).
"""

from __future__ import annotations

import json
import uuid
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated

import duckdb
import typer
from rich.console import Console
from rich.table import Table

from settlement import calculate, catalog_csv, lifecycle, platforms, statements
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
statements_app = typer.Typer(help="Statement files for rights holders.", no_args_is_help=True)
app.add_typer(period_app, name="period")
app.add_typer(settle_app, name="settle")
app.add_typer(platforms_app, name="platforms")
app.add_typer(audit_app, name="audit")
app.add_typer(catalog_app, name="catalog")
app.add_typer(fx_app, name="fx")
app.add_typer(statements_app, name="statements")
console = Console()

USER_ERROR, FAILURE = 2, 1


def _settings() -> Settings:
    return Settings.from_env()


def _fail(message: str, code: int) -> None:
    console.print(f"[red]error:[/red] {message}", soft_wrap=True)  # one problem per line, greppable
    raise typer.Exit(code)


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
def fx_set(
    period: Annotated[str, typer.Option(help="YYYY-MM")],
    from_currency: Annotated[str, typer.Option("--from", help="revenue currency, e.g. EUR")],
    to_currency: Annotated[str, typer.Option("--to", help="contract currency, e.g. USD")],
    rate: Annotated[str, typer.Option(help="units of --to per unit of --from, up to 8 decimals")],
    source: Annotated[str, typer.Option(help="where the rate comes from, e.g. 'ECB reference 2026-10-30'")],
) -> None:
    """Record the period's rate for a currency pair (clears the fx_missing gate).
    Example: tributary fx set --period 2026-10 --from EUR --to USD --rate 1.0842 --source "ECB 2026-10-30" """
    try:
        value = Decimal(rate)
    except InvalidOperation:
        _fail(f"rate {rate!r} is not a number", USER_ERROR)
    try:
        with warehouse(_settings().warehouse) as con:
            register_fx_rate(con, period, from_currency.upper(), to_currency.upper(), value, source)
    except (WarehouseError, duckdb.Error) as exc:
        _fail(str(exc), USER_ERROR)
    console.print(f"{from_currency.upper()}/{to_currency.upper()} {period} = {value} ({source})")


@statements_app.command("build")
def statements_build(period: str = typer.Option(..., help="YYYY-MM")) -> None:
    """Write every statement file of a calculated period (PDF, CSV, DSR) and record its sha256.
    Example: tributary statements build --period 2026-10"""
    s = _settings()
    try:
        result = statements.build_statements(s.warehouse, s.statements, period, progress=True)
    except RuntimeError as exc:
        _fail(str(exc), USER_ERROR if "has not been calculated" in str(exc) else FAILURE)
    console.print(f"{result['statements']} statements, {result['files']} files in {result['folder']}")


@statements_app.command("verify")
def statements_verify(period: str = typer.Option(..., help="YYYY-MM")) -> None:
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
def period_status(period: str) -> None:
    """Where a period stands. Example: tributary period status 2026-10"""
    state = lifecycle.period_state(_settings().warehouse, period)
    console.print_json(json.dumps(state, default=str))


@settle_app.command("calculate")
def settle_calculate(
    period: str = typer.Option(..., help="YYYY-MM"), by: str = typer.Option(..., help="your user name")
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
def settle_approve(period: str = typer.Option(...), by: str = typer.Option(...)) -> None:
    """Approve a calculated period; the preparer cannot approve.
    Example: tributary settle approve --period 2026-10 --by bob"""
    try:
        result = lifecycle.approve_period(_settings().warehouse, period, by=by)
    except lifecycle.LifecycleError as exc:
        _fail(str(exc), USER_ERROR)
    console.print(f"period {period} approved by {result['approved_by']} (calculation {result['run_id']})")


@period_app.command("close")
def period_close(period: str, by: str = typer.Option(...)) -> None:
    """Close an approved period: payouts, carry-forward, read-only snapshot.
    Example: tributary period close 2026-10 --by bob"""
    s = _settings()
    try:
        with console.status(f"closing {period}: payouts, carry-forward, snapshot"):
            result = lifecycle.close_period(s.warehouse, period, by=by, snapshots=s.home / "snapshots")
    except lifecycle.LifecycleError as exc:
        _fail(str(exc), USER_ERROR)
    console.print_json(json.dumps(result, default=str))


@period_app.command("restore")
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
def audit_snapshot(period: str) -> None:
    """Print where a closed period's read-only snapshot is.
    Example: tributary audit snapshot 2026-10"""
    with warehouse(_settings().warehouse) as con:
        rows = query(con, "marts/period_snapshot", {"period": period})
    if not rows:
        _fail(f"period {period} has no snapshot; it is published when the period closes", USER_ERROR)
    typer.echo(f"{rows[0]['snapshot_path']}  sha256 {rows[0]['snapshot_sha256']}")


@audit_app.command("query")
def audit_query(
    sql: str,
    snapshot: Annotated[Path | None, typer.Option(help="a period snapshot; default: the live warehouse")] = None,
) -> None:
    """Run SQL read-only: nothing it does can change the warehouse.
    Example: tributary audit query "SELECT * FROM settlement.pools" """
    path = snapshot or _settings().warehouse
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        _fail(f"cannot open {path} read-only: {exc}", FAILURE)
    try:
        cur = con.execute(sql)
        cols = [d[0] for d in cur.description] if cur.description else []
        table = Table(*cols)
        for row in cur.fetchall():
            table.add_row(*("" if v is None else str(v) for v in row))
        console.print(table)
    except duckdb.Error as exc:
        _fail(str(exc), USER_ERROR)
    finally:
        con.close()


if __name__ == "__main__":
    app()
