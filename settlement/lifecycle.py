"""A period's life: open -> calculated -> approved -> closed.

- Approval needs a second person: whoever calculated the period cannot approve it.
- Closing pays every holder whose balance reached its minimum payout (the rest carries
  forward), remembers which generations the period paid for, and publishes a read-only
  snapshot of the warehouse that auditors open without ever blocking the pipeline's writer.
- A closed period is never recalculated; what changes later is paid as adjustments in the
  next open period (see settlement.calculate).
"""

from __future__ import annotations

import hashlib
import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from settlement.warehouse import query, run_sql, transaction, warehouse


class LifecycleError(RuntimeError):
    """A lifecycle step asked for in the wrong state, or by the wrong person."""


def period_state(warehouse_path: Path, period: str) -> dict:
    with warehouse(warehouse_path) as con:
        rows = query(con, "marts/period_state", {"period": period})
    return rows[0] if rows else {"period": period, "status": "open"}


def _require_status(con, period: str, status: str, step: str) -> dict:
    rows = query(con, "marts/period_state", {"period": period})
    if not rows or rows[0]["status"] != status:
        actual = rows[0]["status"] if rows else "open"
        article = "an" if status[0] in "aeiou" else "a"
        raise LifecycleError(f"period {period} is {actual}; only {article} {status} period can be {step}")
    return rows[0]


def approve_period(warehouse_path: Path, period: str, by: str) -> dict:
    by = by.strip()
    if not by:
        raise LifecycleError("approval needs the approver's user name")
    now = datetime.now(UTC).replace(tzinfo=None)
    with warehouse(warehouse_path) as con:
        state = _require_status(con, period, "calculated", "approved")
        if state["calculated_by"] == by:
            raise LifecycleError(
                f"period {period} was calculated by {by!r}; a second person must approve it"
            )
        with transaction(con):
            run_sql(con, "loads/approval", {"period": period, "run_id": state["run_id"], "by": by, "now": now})
    return {"period": period, "status": "approved", "approved_by": by, "run_id": state["run_id"]}


def close_period(warehouse_path: Path, period: str, by: str, snapshots: Path | None) -> dict:
    """Pay out, freeze and publish an approved period (`snapshots=None`: no snapshot file,
    for property tests that close thousands of periods)."""
    now = datetime.now(UTC).replace(tzinfo=None)
    with warehouse(warehouse_path) as con:
        state = _require_status(con, period, "approved", "closed")
        current = query(con, "checks/period_inputs_fingerprint", {"period": period})[0]["fingerprint"]
        if current != state["inputs_sha256"]:
            raise LifecycleError(
                f"period {period}: inputs changed since calculation {state['run_id']} was approved; "
                "recalculate and approve again"
            )
        missing_fx = query(con, "checks/payout_fx_missing", {"period": period})
        if missing_fx:
            listed = "\n".join(f"  - {r['rule']}: {r['subject']}: {r['detail']}" for r in missing_fx)
            raise LifecycleError(f"period {period} cannot close: payouts need FX rates\n{listed}")
        with transaction(con):
            payout = {"period": period, "run_id": f"close/{period}", "now": now}
            run_sql(con, "marts/ledger_payouts", payout)
            run_sql(con, "marts/payout_instructions", payout)
            run_sql(con, "loads/period_close", {"period": period})
        snapshot = snapshots / f"warehouse-{period}.duckdb" if snapshots else Path("unpublished")
        digest = publish_snapshot(con, snapshot) if snapshots else "-"
        with transaction(con):
            run_sql(
                con, "loads/period_snapshot",
                {"period": period, "run_id": state["run_id"], "by": by, "now": now,
                 "snapshot_path": str(snapshot), "snapshot_sha256": digest},
            )  # fmt: skip
        balances = query(con, "marts/holder_balances", {"period": period})
    paid = sum((b["paid_out"] or 0) for b in balances)
    carried = sum((b["closing"] or 0) for b in balances)
    return {"period": period, "status": "closed", "snapshot": str(snapshot), "paid_out": paid, "carried_forward": carried}


def publish_snapshot(con, target: Path) -> str:
    """Copy the whole warehouse into its own file and make it read-only on disk.

    A copy, not the live file: auditors can keep it open for as long as they like while the
    pipeline goes on writing the warehouse, and file permissions keep it unwritable."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        os.chmod(target, stat.S_IWUSR | stat.S_IRUSR)
        target.unlink()
    db_name = query(con, "marts/current_database")[0]["name"]
    con.execute(f"ATTACH '{_sql_path(target)}' AS period_snapshot")
    try:
        con.execute(f"COPY FROM DATABASE {db_name} TO period_snapshot")
    finally:
        con.execute("DETACH period_snapshot")
    os.chmod(target, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    return hashlib.sha256(target.read_bytes()).hexdigest()


def _sql_path(path: Path) -> str:
    # ATTACH takes no bound parameters; refuse anything that could break out of the literal.
    text = str(path.resolve())
    if "'" in text:
        raise LifecycleError(f"snapshot path must not contain a quote: {text}")
    return text


def restore_snapshot(warehouse_path: Path, snapshot: Path, expected_sha256: str | None = None) -> dict:
    """Put a closed period's snapshot back as the live warehouse (after a lost or damaged file).

    The snapshot is checked against the digest recorded at close (from the live warehouse when
    it still opens, else `expected_sha256`); the file it replaces is kept beside it, never
    deleted. Everything after that close (later ingests, calculations) must be redone: the
    ingest watermark in the snapshot makes the next ingest run catch the missed windows up."""
    snapshot, warehouse_path = Path(snapshot), Path(warehouse_path)
    if not snapshot.is_file():
        raise LifecycleError(f"no snapshot at {snapshot}")
    digest = hashlib.sha256(snapshot.read_bytes()).hexdigest()
    with warehouse(snapshot, read_only=True) as snap:
        closed = query(snap, "marts/closed_periods_in", {})
    if not closed:
        raise LifecycleError(f"{snapshot} holds no closed period; it is not a period snapshot")
    period = closed[-1]["period"]
    if expected_sha256 is None and warehouse_path.exists():
        try:
            with warehouse(warehouse_path, read_only=True) as live:
                recorded = query(live, "marts/period_snapshot", {"period": period})
            expected_sha256 = recorded[0]["snapshot_sha256"] if recorded else None
        except duckdb.Error:  # the live file is what we are replacing; it may well not open
            expected_sha256 = None
    if expected_sha256 is None:
        raise LifecycleError(
            f"no recorded sha256 for the {period} snapshot (the live warehouse does not open); "
            "pass the one from the close (statements' period_summary or `tributary audit snapshot`)"
        )
    if digest != expected_sha256:
        raise LifecycleError(f"{snapshot}: sha256 {digest} differs from the recorded {expected_sha256}")
    kept = None
    if warehouse_path.exists():
        kept = warehouse_path.with_name(f"{warehouse_path.name}.before-restore-{datetime.now(UTC):%Y%m%dT%H%M%SZ}")
        warehouse_path.replace(kept)
        wal = warehouse_path.with_name(warehouse_path.name + ".wal")
        if wal.exists():
            wal.replace(kept.with_name(kept.name + ".wal"))
    tmp = warehouse_path.with_name(warehouse_path.name + ".restoring")
    tmp.write_bytes(snapshot.read_bytes())
    os.chmod(tmp, stat.S_IRUSR | stat.S_IWUSR | stat.S_IRGRP)
    tmp.replace(warehouse_path)
    now = datetime.now(UTC).replace(tzinfo=None)
    with warehouse(warehouse_path) as con, transaction(con):
        # The snapshot is taken just before its own close row is written: put that row back.
        run_sql(con, "loads/period_snapshot_restored",
                {"period": period, "snapshot_path": str(snapshot), "snapshot_sha256": digest, "now": now})  # fmt: skip
    return {"period": period, "restored_from": str(snapshot), "sha256": digest, "previous_file_kept_as": str(kept)}
