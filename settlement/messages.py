"""What a person reads about a month's operations: the one line each settlement task logs, the
approval message, and task outputs that carry money as text with its currency.

Money is read from the rows the calculation stored (sql/marts/period_money.sql) and written
exactly as stored: a Decimal becomes "12345678.123456789 USD", never a float (Airflow's XCom
turns a Decimal with decimals into a float, so task outputs carry text).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from settlement import inputs
from settlement.warehouse import query, warehouse


def money(amount: Decimal | int | str | None, currency: str) -> str:
    """'2.36 USD', '12345678.123456789 USD': every stored digit, at least cents, no exponent."""
    value = Decimal(0) if amount is None else Decimal(str(amount))
    text = format(value, "f")
    whole, _, frac = text.partition(".")
    frac = frac.rstrip("0").ljust(2, "0")
    return f"{whole}.{frac} {currency}"


def plain(value: Any) -> Any:
    """A task output Airflow can store without losing a digit: Decimals and dates as text."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def period_money(warehouse_path: Path, period: str) -> list[dict]:
    """Per platform: generations, revenue, exact and rounded pool, paid to holders, as stored."""
    with warehouse(warehouse_path, read_only=True) as con:
        return query(con, "marts/period_money", {"period": inputs.period(period)})


def money_rows(rows: list[dict]) -> list[dict]:
    """period_money rows with every amount as text with its currency."""
    out = []
    for r in rows:
        cur = r["currency"]
        out.append({
            "platform_id": r["platform_id"], "contract_id": r["contract_id"], "currency": cur,
            "generations": int(r["n_generations"]), "holders_with_earnings": int(r["holders_with_earnings"]),
            "revenue": money(r["revenue"], cur), "exact_pool": money(r["exact_pool"], cur),
            "pool": money(r["pool"], cur), "paid_to_holders": money(r["paid_to_holders"], cur),
            "adjustments": money(r["adjustments"], cur),
        })  # fmt: skip
    return out


def _platforms_text(rows: list[dict]) -> str:
    if not rows:
        return "no platform had generations"
    return "; ".join(
        f"{r['platform_id']}: {r['generations']} generations, revenue {r['revenue']}, pool {r['pool']}, "
        f"paid {r['paid_to_holders']} to {r['holders_with_earnings']} holders"
        for r in rows
    )


def calculation_output(result: dict, warehouse_path: Path, prepared_by: str) -> dict:
    """What `calculate_period` hands on (XCom) and the line it logs."""
    rows = money_rows(period_money(warehouse_path, result["period"]))
    if result.get("closed"):
        what = f"{result['period']} is already closed (calculation {result['run_id']}); nothing recalculated"
    elif result.get("unchanged"):
        what = f"{result['period']} unchanged since calculation {result['run_id']}; kept"
    else:
        what = (f"calculated {result['period']} as {result['run_id']}, prepared by {prepared_by}; "
                f"{result.get('adjustments', 0)} adjustment line(s) for earlier months")  # fmt: skip
    gates = "gates passed: exceptions, completeness, order, reconciliation, ledger, payout currency"
    line = f"{what}; {_platforms_text(rows)}; {gates}"
    return {"period": result["period"], "run_id": result["run_id"], "prepared_by": prepared_by,
            "unchanged": bool(result.get("unchanged")), "closed": bool(result.get("closed")),
            "platforms": rows, "summary": line}  # fmt: skip


def approval_body(warehouse_path: Path, period: str, state: dict) -> str:
    """The approver's page in Airflow's Required Actions (Markdown): who prepared the month and
    every amount as stored, with its currency."""
    rows = money_rows(period_money(warehouse_path, period))
    lines = [
        f"**Period {period}**, prepared by `{state.get('calculated_by')}` (calculation `{state.get('run_id')}`).",
        "",
        "| platform | contract | generations | revenue | royalty pool | exact pool | paid to holders | holders | adjustments |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r['platform_id']} | {r['contract_id']} | {r['generations']} | {r['revenue']} | {r['pool']} "
            f"| {r['exact_pool']} | {r['paid_to_holders']} | {r['holders_with_earnings']} | {r['adjustments']} |"
        )
    if not rows:
        lines.append("| (no platform had generations this month) | | | | | | | | |")
    lines += [
        "",
        ("Every gate passed: the month is whole (every day ingested and reconciled for every platform "
         "under contract, every generation attributed or rejected), the month before is closed, and the "
         "exceptions, reconciliation and ledger checks are clean."),
        "Draft statements are written; approving releases them and lets the month close.",
        "",
        f"`{state.get('calculated_by')}` prepared this month and cannot approve it: a second person must.",
    ]
    return "\n".join(lines)


def close_line(closed: dict, warehouse_path: Path) -> str:
    rows = money_rows(period_money(warehouse_path, closed["period"]))
    paid = ", ".join(f"{r['paid_to_holders']} ({r['platform_id']})" for r in rows) or "nothing"
    return (f"closed {closed['period']} by {closed['closed_by']}: holders' earnings {paid}; "
            f"snapshot {closed['snapshot']} sha256 {closed['snapshot_sha256']}")  # fmt: skip


def statements_line(result: dict, final: bool) -> str:
    kind = "final" if final else "draft"
    return (f"wrote {result['files']} {kind} statement file(s) for {result['statements']} holder(s) of "
            f"{result['period']} in {result['folder']}, sha256 of each recorded")  # fmt: skip


def ingest_line(result: dict, start: datetime, end: datetime) -> str:
    return (f"ingested {result['platform_id']} {start:%Y-%m-%d} to {end:%Y-%m-%d}: {result['windows']} window(s) "
            f"reconciled, {result['loaded_new']} new generation(s), {result['quarantined']} quarantined, "
            f"{result['late_flagged']} late for a closed month; watermark {result['watermark']}")  # fmt: skip


def inputs_pending(warehouse_path: Path, period: str) -> list[dict]:
    """What the month's settlement still waits for (sql/marts/period_inputs_pending.sql)."""
    with warehouse(warehouse_path, read_only=True) as con:
        return query(con, "marts/period_inputs_pending", {"period": inputs.period(period)})
