"""Ownership changes: a work's right passes to new holders from the 1st of a month.

Split rows are never edited in the past: the rows in force on the change date get that date
as their end, and the new holders get rows that start on it, in one transaction. Earlier months
keep their history; a change dated in a closed month is paid as an adjustment by the next
calculation (settlement.calculate restates the closed months whose inputs changed).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

from settlement import inputs
from settlement.catalog_csv import RIGHT_TYPES, check_split_sums
from settlement.warehouse import query, run_sql, transaction, warehouse


def parse_holders(specs: list[str]) -> dict[str, Decimal]:
    """`RH0002=0.6` -> {"RH0002": Decimal("0.6")}; shares in (0, 1] with at most 6 decimals."""
    holders: dict[str, Decimal] = {}
    for spec in specs:
        holder, sep, share = spec.partition("=")
        holder = holder.strip()
        if not sep or not holder:
            raise inputs.InputError(f"--holder {spec!r}: write HOLDER_ID=SHARE, e.g. RH0002=0.5")
        if holder in holders:
            raise inputs.InputError(f"--holder {holder} is given twice")
        holders[holder] = inputs.decimal(share, f"--holder {holder} share", 6, Decimal(0), Decimal("1.000001"),
                                         low_open=True)  # fmt: skip
        if holders[holder] > 1:
            raise inputs.InputError(f"--holder {holder} share {share} is more than 1")
    return holders


def show(warehouse_path: Path, work_id: str) -> list[dict]:
    with warehouse(warehouse_path, read_only=True) as con:
        return query(con, "marts/work_splits", {"work_id": work_id})


def change_ownership(warehouse_path: Path, work_id: str, right_type: str, on: str | date,
                     holders: dict[str, Decimal]) -> dict:  # fmt: skip
    """End the rows of `work_id`/`right_type` in force on `on` and start `holders` from it."""
    day = on if isinstance(on, date) else inputs.day(on, "--from")
    if day.day != 1:
        raise inputs.InputError(f"--from {day}: ownership changes are dated on the 1st of a month "
                                "(rights are settled by the month)")  # fmt: skip
    if right_type not in RIGHT_TYPES:
        raise inputs.InputError(f"--right {right_type!r} must be one of {RIGHT_TYPES}")
    if not holders:
        raise inputs.InputError("name the new holders with --holder HOLDER_ID=SHARE")
    total = sum(holders.values(), Decimal(0))
    if total != 1:
        raise inputs.InputError(f"the new holders' shares sum to {total}, not 1")
    with warehouse(warehouse_path) as con:
        known_works = {r["work_id"] for r in query(con, "marts/catalog_work_ids")}
        if work_id not in known_works:
            raise inputs.InputError(f"--work {work_id!r} is not in the catalog")
        known_holders = {r["rights_holder_id"] for r in query(con, "marts/catalog_holder_ids")}
        unknown = sorted(set(holders) - known_holders)
        if unknown:
            raise inputs.InputError(f"--holder {', '.join(unknown)}: not in the catalog (import the holder first)")
        rows = [r for r in query(con, "marts/work_splits", {"work_id": work_id}) if r["right_type"] == right_type]
        later = [r for r in rows if r["effective_from"] > day]
        if later:
            raise inputs.InputError(
                f"{work_id}/{right_type} already changes hands on {later[0]['effective_from']}, after {day}: "
                "change the latest date first"
            )
        new = [{"work_id": work_id, "right_type": right_type, "rights_holder_id": h, "share": s,
                "effective_from": day, "effective_to": None} for h, s in sorted(holders.items())]  # fmt: skip
        ended = [dict(r, effective_to=day) for r in rows
                 if r["effective_from"] < day and (r["effective_to"] is None or r["effective_to"] > day)]  # fmt: skip
        kept = [r for r in rows if r["effective_from"] != day]
        problems = check_split_sums(new + ended, kept)
        if problems:
            raise inputs.InputError("; ".join(problems))
        closed = [r["period"] for r in query(con, "marts/closed_periods_in", {}) if r["period"] >= f"{day:%Y-%m}"]
        with transaction(con):
            params = {"work_id": work_id, "right_type": right_type, "on": day}
            run_sql(con, "loads/split_change_end", params)
            for row in new:
                run_sql(con, "loads/split_change_start", params | {"rights_holder_id": row["rights_holder_id"],
                                                                    "share": str(row["share"])})  # fmt: skip
        after = [r for r in query(con, "marts/work_splits", {"work_id": work_id}) if r["right_type"] == right_type]
    return {"work_id": work_id, "right_type": right_type, "from": day.isoformat(),
            "ended": [r["rights_holder_id"] for r in ended], "started": sorted(holders),
            "corrects_closed_periods": closed, "splits": after}  # fmt: skip
