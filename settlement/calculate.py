"""Calculate a settlement period: exceptions first, then the money, then the gates."""

from __future__ import annotations

import hashlib
import json
import subprocess
from datetime import UTC, date, datetime
from pathlib import Path

from settlement import disputes, identity, inputs
from settlement.warehouse import query, run_sql, transaction, warehouse


class PeriodClosedError(RuntimeError):
    pass


class QualityGateError(RuntimeError):
    """A period cannot go ahead; `exceptions` lists (rule, subject, detail) rows."""

    def __init__(self, period: str, stage: str, exceptions: list[tuple]):
        self.period, self.stage, self.exceptions = period, stage, exceptions
        lines = "\n".join(f"  - {rule}: {subject}: {detail}" for rule, subject, detail in exceptions[:50])
        more = f"\n  ... and {len(exceptions) - 50} more" if len(exceptions) > 50 else ""
        super().__init__(f"period {period}: {len(exceptions)} exception(s) block the {stage}:\n{lines}{more}")


def period_bounds(period: str) -> tuple[date, date]:
    start = inputs.period_start(period)  # InputError (a ValueError) names the rule
    end = date(start.year + (start.month == 12), start.month % 12 + 1, 1)
    return start, end


def code_version() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True,
            cwd=Path(__file__).resolve().parent,
        )  # fmt: skip
        return out.stdout.strip()
    except (subprocess.CalledProcessError, FileNotFoundError):
        return "unknown"


def calculate_period(
    warehouse_path: Path, period: str, run_id: str, by: str, closed_ok: bool = False
) -> dict:
    """Calculate (or recalculate) an open period. Unchanged inputs leave it as it is.

    A closed period is never recalculated: that is an error, or with `closed_ok` (a scheduled
    rerun of a month that is already closed) a no-op."""
    start, _ = period_bounds(period)
    by = identity.person(by, "preparer's user name")  # stored normalised: the four-eyes rule compares it
    started = datetime.now(UTC).replace(tzinfo=None)
    params = {"period": period, "period_start": start, "run_id": run_id, "by": by}
    with warehouse(warehouse_path) as con:
        state = query(con, "marts/period_run", {"period": period})
        row = (state[0]["status"], state[0]["run_id"], state[0]["inputs_sha256"]) if state else None
        if row and row[0] == "closed":
            if closed_ok:
                return {"period": period, "unchanged": True, "closed": True, "run_id": row[1], **_totals(con, period)}
            raise PeriodClosedError(
                f"period {period} is closed; corrections go into the next open period as adjustments"
            )
        exceptions = [tuple(r.values()) for r in query(con, "checks/period_exceptions", params)]
        # Is the month whole and is it its turn (checks/period_readiness): the same list.
        exceptions += [tuple(r.values()) for r in query(con, "checks/period_readiness", {"period": period})]
        # Holders' open disputes (settlement.disputes): listed with the result, or blocking.
        open_disputes = disputes.open_disputes(con)
        if disputes.policy() == "block":
            exceptions += open_disputes
        listed = {"open_disputes": [list(d) for d in open_disputes]} if open_disputes else {}
        if exceptions:
            raise QualityGateError(period, "calculation", sorted(exceptions))
        fingerprint = query(con, "checks/period_inputs_fingerprint", {"period": period})[0]["fingerprint"]
        if row and row[0] in ("calculated", "approved") and row[2] == fingerprint:
            return {"period": period, "unchanged": True, "run_id": row[1], **_totals(con, period), **listed}
        now = datetime.now(UTC).replace(tzinfo=None)
        with transaction(con):
            n_adjustments = _restate_closed_periods(con, period, run_id)
            run_sql(con, "loads/late_arrivals_adjusted", params)
            run_sql(con, "marts/settlement_calculation", params)
            run_sql(con, "marts/settlement_publish", params)
            failures = [tuple(r.values()) for r in query(con, "checks/period_reconciliation", params)]
            if failures:
                raise QualityGateError(period, "reconciliation", failures)
            posting = {"period": period, "run_id": run_id, "now": now}
            if row and row[1]:
                run_sql(con, "marts/ledger_reversal", dict(posting, reversed_run_id=row[1]))
            run_sql(con, "marts/ledger_settlement", posting)
            run_sql(con, "marts/ledger_adjustments", posting)
            run_sql(con, "loads/ledger_accounts", {})
            unbalanced = [tuple(r.values()) for r in query(con, "checks/ledger_unbalanced")]
            unbalanced = [("ledger_unbalanced", t, str(s)) for t, _, s in unbalanced]
            unknown = [tuple(r.values()) for r in query(con, "checks/ledger_unknown_accounts")]
            if unbalanced or unknown:
                raise QualityGateError(period, "ledger", unbalanced + unknown)
            # Payouts are converted at the close with this period's rates: ask for them now,
            # while the calculation can still be approved, not at the close.
            payout_fx = [tuple(r.values()) for r in query(con, "checks/payout_fx_missing", params)]
            if payout_fx:
                raise QualityGateError(period, "payout currency", payout_fx)
            run_sql(con, "loads/period_calculated", dict(params, now=now, fingerprint=fingerprint))
            totals = _totals(con, period) | {"adjustments": n_adjustments}
            run_sql(
                con,
                "loads/audit_run",
                {
                    "run_id": run_id, "kind": "settlement", "subject": period, "code_version": code_version(),
                    "details_json": json.dumps(
                        {"inputs_sha256": fingerprint, **totals, **run_manifest(con, period, start)}, default=str
                    ),
                    "started_at": started, "now": now,
                },
            )  # fmt: skip
    return {"period": period, "unchanged": False, "run_id": run_id, **totals, **listed}


def run_manifest(con, period: str, period_start) -> dict:
    """What a calculation read, by digest: model versions and their manifests, contract
    versions, the FX table, the landed input files, and row counts. Stored in audit.runs so an
    auditor can re-hash the files and find the exact reference data behind a period."""
    params = {"period": period, "period_start": period_start}
    fx = query(con, "marts/run_manifest_fx", params)
    return {
        "model_versions": query(con, "marts/run_manifest_models", params),
        "contracts": query(con, "marts/run_manifest_contracts", params),
        "fx_rates": fx,
        # The FX table's version is its content: the same rates give the same digest.
        "fx_table_sha256": hashlib.sha256(json.dumps(fx, sort_keys=True).encode()).hexdigest(),
        "input_files": query(con, "marts/run_manifest_inputs", params),
        "row_counts": query(con, "marts/run_manifest_counts", params)[0],
    }


def _restate_closed_periods(con, period: str, run_id: str) -> int:
    """Recompute each closed period whose inputs changed since its amounts were last settled,
    and pay the differences in `period`. A closed period whose inputs digest equals its baseline
    (recorded at its close, and when a period that paid corrections for it closed) is skipped, so
    a month's calculation costs the month, not the project's history."""
    run_sql(con, "marts/adjustments_clear", {"period": period})
    baselines = {r["period"]: r["inputs_sha256"] for r in query(con, "marts/restatement_baselines")}
    for closed in query(con, "marts/closed_periods_before", {"period": period}):
        corrects = closed["period"]
        digest = restatement_digest(con, corrects)
        if baselines.get(corrects) == digest:
            continue
        start, _ = period_bounds(corrects)
        exceptions = [tuple(r.values()) for r in query(con, "checks/period_exceptions", {"period": corrects, "period_start": start})]
        if exceptions:
            raise QualityGateError(corrects, f"restatement paid in {period}", exceptions)
        run_sql(con, "marts/settlement_calculation", {"period": corrects, "period_start": start, "run_id": run_id})
        run_sql(con, "marts/settlement_restatement", {"period": period, "corrects_period": corrects, "run_id": run_id})
        run_sql(con, "loads/restatement_input",
                {"period": period, "corrects_period": corrects, "inputs_sha256": digest, "run_id": run_id})  # fmt: skip
    return query(con, "marts/adjustment_count", {"period": period})[0]["n"]


def restatement_digest(con, period: str) -> str:
    """What a closed period's amounts depend on, as a digest: its reference data, its
    generation count and, only when that count grew since its close, the late generations with
    their attribution (generations are only ever added, so an unchanged count means none)."""
    counts = query(con, "checks/restatement_generation_count", {"period": period})[0]
    parts = [query(con, "checks/restatement_reference_digest", {"period": period})[0]["digest"], str(counts["n_now"])]
    if counts["n_settled"] is None or counts["n_now"] != counts["n_settled"]:
        parts.append(query(con, "checks/restatement_late_digest", {"period": period})[0]["digest"])
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


def _totals(con, period: str) -> dict:
    return query(con, "marts/period_totals", {"period": period})[0]
