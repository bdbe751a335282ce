"""A period's life: open -> calculated -> approved -> closed.

- Approval needs a second person: whoever calculated the period cannot approve it.
- Closing pays every holder whose balance reached its minimum payout (the rest carries
  forward), remembers which generations the period paid for, and publishes a read-only
  snapshot of the warehouse that auditors open without ever blocking the pipeline's writer.
- A closed period is never recalculated; what changes later is paid as adjustments in the
  next open period (see settlement.calculate).

Every step survives kill -9 at any instant: approval is one transaction; the close is three
recorded steps (payouts and the close row; the snapshot written aside, fsynced, made read-only
and renamed; its digest) that a rerun picks up where the killed one stopped; a restore builds
the new warehouse aside and swaps it in with one rename.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from settlement import identity, inputs
from settlement.calculate import restatement_digest
from settlement.warehouse import _MIGRATED, query, run_sql, transaction, warehouse


class LifecycleError(RuntimeError):
    """A lifecycle step asked for in the wrong state, or by the wrong person."""


class ApprovalRefused(LifecycleError):
    """The four-eyes rule refused this approver (recorded in settlement.approval_refusals);
    the month still waits for a second person."""


def period_state(warehouse_path: Path, period: str) -> dict:
    period = inputs.period(period)
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
    period = inputs.period(period)
    now = datetime.now(UTC).replace(tzinfo=None)
    with warehouse(warehouse_path) as con:
        rows = query(con, "marts/period_state", {"period": period})
        if rows and rows[0]["status"] in ("approved", "closed") and rows[0]["approved_by"] is not None:
            try:
                same = identity.person(by, "approver's user name") == rows[0]["approved_by"]
            except inputs.InputError as err:
                raise LifecycleError(str(err)) from err
            if same:  # the same approval again (a rerun after an interruption): it stands
                return {"period": period, "status": rows[0]["status"], "approved_by": rows[0]["approved_by"],
                        "run_id": rows[0]["run_id"], "already": True}  # fmt: skip
        state = _require_status(con, period, "calculated", "approved")
        try:  # the one place the four-eyes rule is decided, for the CLI and Airflow alike
            by = identity.second_person(state["calculated_by"], by, period)
        except identity.SecondPersonError as err:
            # Recorded, so an auditor sees every attempt, not only the approval that stood.
            with transaction(con):
                run_sql(con, "loads/approval_refusal", {
                    "period": period, "run_id": state["run_id"], "by": _name_or_raw(by),
                    "reason": str(err), "now": now,
                })  # fmt: skip
            raise ApprovalRefused(str(err)) from err
        except inputs.InputError as err:
            raise LifecycleError(str(err)) from err
        with transaction(con):
            run_sql(con, "loads/approval", {"period": period, "run_id": state["run_id"], "by": by, "now": now})
    return {"period": period, "status": "approved", "approved_by": by, "run_id": state["run_id"]}


def _name_or_raw(name: str) -> str:
    try:
        return identity.person(name)
    except inputs.InputError:
        return name


def waive_previous_period(warehouse_path: Path, period: str, by: str, reason: str) -> dict:
    """Let `period` be calculated although the month before it is not closed (it was settled
    outside Tributary, say): recorded with who decided and why, never deleted."""
    period = inputs.period(period)
    try:
        by = identity.person(by, "user name of whoever waives")
    except inputs.InputError as err:
        raise LifecycleError(str(err)) from err
    reason = " ".join((reason or "").split())
    if not reason:
        raise LifecycleError("say why the previous month need not be closed first (--reason)")
    start = inputs.period_start(period)
    previous = f"{start.year - (start.month == 1)}-{(start.month - 2) % 12 + 1:02d}"
    now = datetime.now(UTC).replace(tzinfo=None)
    with warehouse(warehouse_path) as con, transaction(con):
        run_sql(con, "loads/order_waiver", {
            "period": period, "previous_period": previous, "by": by, "reason": reason, "now": now,
        })  # fmt: skip
    return {"period": period, "previous_period": previous, "waived_by": by, "reason": reason}


def close_period(warehouse_path: Path, period: str, by: str, snapshots: Path | None,
                 deliver_to: Path | None = None) -> dict:
    """Pay out, freeze and publish an approved period (`snapshots=None`: no snapshot file,
    for property tests that close thousands of periods).

    Resumable: a period left `closed` with its snapshot unpublished (a close killed after its
    first step) is finished by running the close again; a fully closed period is reported as
    it is.

    `deliver_to` (the statements root): once the close is complete, the final statements are
    written and each holder contact is mailed (settlement.delivery); a mail problem is recorded
    and reported under "deliveries", never raised: the close stands whatever the mail server does."""
    period = inputs.period(period)
    try:
        by = identity.person(by, "closer's user name")
    except inputs.InputError as err:
        raise LifecycleError(str(err)) from err
    now = datetime.now(UTC).replace(tzinfo=None)
    target = snapshots / f"warehouse-{period}.duckdb" if snapshots else None
    with warehouse(warehouse_path) as con:
        rows = query(con, "marts/period_state", {"period": period})
        status = rows[0]["status"] if rows else "open"
        if status != "closed":
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
            with transaction(con):  # step 1: money and the close row, all or nothing
                payout = {"period": period, "run_id": f"close/{period}", "now": now}
                run_sql(con, "marts/ledger_payouts", payout)
                run_sql(con, "marts/payout_instructions", payout)
                run_sql(con, "loads/ledger_accounts", {})
                run_sql(con, "loads/period_close", {
                    "period": period, "run_id": state["run_id"], "by": by, "now": now,
                    "snapshot_path": str(target) if target else "unpublished",
                })  # fmt: skip
                # What this period's amounts (and the corrections it paid) were settled with:
                # later calculations restate it only when that changes.
                run_sql(con, "loads/restatement_baseline",
                        {"period": period, "inputs_sha256": restatement_digest(con, period), "now": now})  # fmt: skip
        close = query(con, "marts/period_close_row", {"period": period})
        if not close:  # closed by a warehouse older than migration 010, or by hand
            raise LifecycleError(f"period {period} is closed but has no close row; restore it from its snapshot")
        close = close[0]
        if close["snapshot_sha256"] is None:
            if target is None:
                digest, path = "-", "unpublished"
            else:  # steps 2 and 3 (again, after a kill)
                digest, path = _publish(con, target), str(target)
            with transaction(con):
                run_sql(con, "loads/period_snapshot", {"period": period, "snapshot_sha256": digest, "snapshot_path": path})
            close = query(con, "marts/period_close_row", {"period": period})[0]
        balances = query(con, "marts/holder_balances", {"period": period})
    paid = sum((b["paid_out"] or 0) for b in balances)
    carried = sum((b["closing"] or 0) for b in balances)
    result = {"period": period, "status": "closed", "snapshot": close["snapshot_path"],
              "snapshot_sha256": close["snapshot_sha256"], "closed_by": close["closed_by"],
              "paid_out": paid, "carried_forward": carried}  # fmt: skip
    if deliver_to is not None:
        result["deliveries"] = _deliver(warehouse_path, deliver_to, period)
    return result


def _deliver(warehouse_path: Path, statements_root: Path, period: str) -> dict:
    from settlement import delivery

    try:
        return delivery.deliver_period(warehouse_path, statements_root, period)
    except Exception as err:  # noqa: BLE001 (the close is done; finance sees this and retries)
        return {"period": period, "error": f"{type(err).__name__}: {err}",
                "retry": f"tributary deliveries send {period}"}  # fmt: skip


def publish_pending_snapshot(warehouse_path: Path, period: str, snapshots: Path) -> dict:
    """Finish a close whose snapshot was not published (`tributary period snapshot`)."""
    period = inputs.period(period)
    with warehouse(warehouse_path, read_only=True) as con:
        close = query(con, "marts/period_close_row", {"period": period})
    if not close:
        raise LifecycleError(f"period {period} is not closed; `tributary period close` publishes its snapshot")
    return close_period(warehouse_path, period, by=close[0]["closed_by"], snapshots=snapshots)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _publish(con, target: Path) -> str:
    """Copy the whole warehouse into `target`, read-only: written under a temporary name,
    fsynced, made read-only, then renamed, so the snapshot's name only ever holds a complete,
    unwritable file; a killed publish leaves a temporary file that the next one replaces.

    A copy, not the live file: auditors can keep it open for as long as they like while the
    pipeline goes on writing the warehouse, and file permissions keep it unwritable."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.partial")
    for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
        if leftover.exists():
            os.chmod(leftover, stat.S_IWUSR | stat.S_IRUSR)
            leftover.unlink()
    db_name = query(con, "marts/current_database")[0]["name"]
    con.execute(f"ATTACH '{_sql_path(tmp)}' AS period_snapshot")
    try:
        con.execute(f"COPY FROM DATABASE {db_name} TO period_snapshot")
    finally:
        con.execute("DETACH period_snapshot")
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.chmod(tmp, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    digest = _sha256(tmp)
    os.replace(tmp, target)  # replaces a stale snapshot of an earlier, killed publish
    _fsync_dir(target.parent)
    return digest


def publish_snapshot(con, target: Path) -> str:
    """A read-only copy of the warehouse at `target` (see _publish); its sha256."""
    return _publish(con, target)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _sql_path(path: Path) -> str:
    # ATTACH takes no bound parameters; refuse anything that could break out of the literal.
    text = str(path.resolve())
    if "'" in text:
        raise LifecycleError(f"snapshot path must not contain a quote: {text}")
    return text


def _closed_periods(path: Path) -> list[str]:
    """The closed periods of a warehouse file, or LifecycleError if it is not one."""
    try:
        with warehouse(path, read_only=True) as snap:
            return [r["period"] for r in query(snap, "marts/closed_periods_in", {})]
    except duckdb.Error as err:
        first = str(err).splitlines()[0][:200]
        raise LifecycleError(f"{path} is not a DuckDB database of Tributary ({first})") from None


def restore_snapshot(warehouse_path: Path, snapshot: Path, expected_sha256: str | None = None,
                     statements_root: Path | None = None) -> dict:  # fmt: skip
    """Put a closed period's snapshot back as the live warehouse (after a lost or damaged file).

    The snapshot must match the digest recorded at close: the live warehouse's record when it
    still opens (then `expected_sha256`, if given, must agree with it), else `expected_sha256`.
    The new warehouse is built aside (`warehouse.duckdb.restoring`): the close row gets its
    digest back, and the period's statement hashes are re-recorded from what the snapshot
    renders (the snapshot was taken before the final statements were recorded), so `statements
    verify` checks the files on disk against the restored state. The live file is then kept
    as `warehouse.duckdb.before-restore-<time>` (a hard link) and replaced by one rename: a
    kill at any instant leaves the old warehouse or the restored one, never neither."""
    from settlement import statements  # the statements module imports reportlab: only here

    snapshot, warehouse_path = Path(snapshot), Path(warehouse_path)
    if not snapshot.is_file():
        raise LifecycleError(f"no snapshot at {snapshot}")
    if expected_sha256 is not None and not _is_sha256(expected_sha256):
        raise LifecycleError(f"--sha256 {expected_sha256!r} is not a sha256 digest (64 hexadecimal digits)")
    digest = _sha256(snapshot)
    closed = _closed_periods(snapshot)
    if not closed:
        raise LifecycleError(f"{snapshot} holds no closed period; it is not a period snapshot")
    period = closed[-1]
    recorded, live_opens = None, False
    if warehouse_path.exists():
        try:
            with warehouse(warehouse_path, read_only=True) as live:
                rows = query(live, "marts/period_snapshot", {"period": period})
            recorded = rows[0]["snapshot_sha256"] if rows else None
            live_opens = True
        except duckdb.Error:  # the live file is what we are replacing; it may well not open
            recorded = None
    if recorded is not None and expected_sha256 is not None and expected_sha256.lower() != recorded:
        raise LifecycleError(
            f"--sha256 {expected_sha256} is not the digest recorded at the close of {period} ({recorded}); "
            "the live warehouse's record wins: restore refused"
        )
    expected = recorded or (expected_sha256.lower() if expected_sha256 else None)
    if expected is None:
        raise LifecycleError(
            f"no recorded sha256 for the {period} snapshot (the live warehouse does not open); "
            "pass the one from the close (statements' period_summary or `tributary audit snapshot`)"
        )
    if digest != expected:
        raise LifecycleError(f"{snapshot}: sha256 {digest} differs from the recorded {expected}")

    now = datetime.now(UTC)
    tmp = warehouse_path.with_name(warehouse_path.name + ".restoring")
    for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
        leftover.unlink(missing_ok=True)
    with open(snapshot, "rb") as src, open(tmp, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
        dst.flush()
        os.fsync(dst.fileno())
    os.chmod(tmp, stat.S_IRUSR | stat.S_IWUSR | stat.S_IRGRP)
    kept = warehouse_path.with_name(f"{warehouse_path.name}.before-restore-{now:%Y%m%dT%H%M%S%fZ}")
    _MIGRATED.discard(str(tmp.resolve()))  # a fresh copy: bring it to this code's schema
    with warehouse(tmp) as con:
        with transaction(con):
            run_sql(con, "loads/period_snapshot_restored", {
                "period": period, "snapshot_path": str(snapshot), "snapshot_sha256": digest,
                "now": now.replace(tzinfo=None), "kept_as": str(kept) if warehouse_path.exists() else None,
            })  # fmt: skip
        if live_opens:
            _carry_portal(con, warehouse_path)
        if query(con, "marts/statement_files_recorded", {"period": period}):
            statements.record_rendered(con, period)
        con.execute("CHECKPOINT")
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    if warehouse_path.exists():
        _checkpoint_or_move_wal(warehouse_path, kept)
        os.link(warehouse_path, kept)
    os.replace(tmp, warehouse_path)
    _fsync_dir(warehouse_path.parent)
    return {"period": period, "restored_from": str(snapshot), "sha256": digest,
            "previous_file_kept_as": str(kept) if kept.exists() else None}  # fmt: skip


def _carry_portal(con, live: Path) -> None:
    """What holders did in the portal after the snapshot (users, disputes and their events, the
    access log) is not rolled back by a restore: a dispute filed since is a holder's claim that
    finance must still answer, and the access log is evidence. They are copied over from the
    replaced warehouse when it still opens; when it is lost, only what the snapshot holds
    remains. Passwords and sessions are not in the warehouse at all (portal/credentials.py)."""
    con.execute(f"ATTACH '{_sql_path(live)}' AS live (READ_ONLY)")
    try:
        with transaction(con):
            run_sql(con, "loads/portal_carry_over")
    finally:
        con.execute("DETACH live")


def _checkpoint_or_move_wal(live: Path, kept: Path) -> None:
    """The live file's write-ahead log must not be replayed onto the restored file: fold it in
    (CHECKPOINT) when the file opens, else move it next to the kept copy."""
    wal = live.with_name(live.name + ".wal")
    if not wal.exists():
        return
    try:
        con = duckdb.connect(str(live))
        con.execute("CHECKPOINT")
        con.close()
    except duckdb.Error:
        pass
    if wal.exists():
        os.replace(wal, kept.with_name(kept.name + ".wal"))


def _is_sha256(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdefABCDEF" for c in text)
