"""Restate only what changed (issue 13, finding 10): a calculation recomputed every closed
period, so a month's cost grew with the project's history. Now a closed period is recomputed
only when the digest of its inputs differs from the one its amounts were settled with."""

from __future__ import annotations

from settlement_fixtures import record_ingest_windows, seed_warehouse, table

from settlement import calculate
from settlement.calculate import calculate_period
from settlement.lifecycle import approve_period, close_period
from settlement.warehouse import warehouse


def _month(db, period):
    calculate_period(db, period, run_id=f"calc-{period}", by="alice")
    approve_period(db, period, by="bob")
    close_period(db, period, by="bob", snapshots=None)


def _restated(monkeypatch) -> list[str]:
    """The closed periods a calculation recomputes (the restatement SQL's $corrects_period)."""
    seen: list[str] = []
    real = calculate.run_sql

    def spy(con, name, params=None):
        if name == "marts/settlement_restatement":
            seen.append(params["corrects_period"])
        return real(con, name, params)

    monkeypatch.setattr(calculate, "run_sql", spy)
    return seen


def test_unchanged_closed_periods_are_not_recalculated(tmp_path, monkeypatch):
    db = tmp_path / "w.duckdb"
    seed_warehouse(db, n_generations=20)
    with warehouse(db) as con:  # September, October and November each have generations
        for month in ("09", "11"):
            con.execute(f"""INSERT INTO raw.generations SELECT platform_id, generation_id || '-{month}', model_version,
                created_at + INTERVAL ({int(month)} - 10) MONTH, style, prompt, output_tokens, territory, revenue_amount,
                revenue_currency, window_start, window_end, ingest_run_id, loaded_at FROM raw.generations
                WHERE generation_id NOT LIKE '%-%'""")  # fmt: skip
            con.execute(f"""INSERT INTO attribution.shares SELECT run_id, platform_id, generation_id || '-{month}', work_id,
                is_residual, share, score, rank, method, model_version FROM attribution.shares
                WHERE generation_id NOT LIKE '%-%'""")  # fmt: skip
        record_ingest_windows(con, "p1", "2026-09")
    _month(db, "2026-09")
    _month(db, "2026-10")
    restated = _restated(monkeypatch)
    calculate_period(db, "2026-11", run_id="calc-11", by="alice")
    assert restated == []  # nothing changed since September and October closed

    # a late October generation: only October is restated, and pays its difference in November
    with warehouse(db) as con:
        con.execute("""INSERT INTO raw.generations VALUES ('p1', 'late', 'mv1', TIMESTAMP '2026-10-20', 'bach', NULL,
            [1, 2], 'US', 10, 'USD', TIMESTAMP '2026-10-20', TIMESTAMP '2026-10-21', 'late', now()::TIMESTAMP)""")
        con.execute("INSERT INTO attribution.shares VALUES ('run1', 'p1', 'late', NULL, true, 1, NULL, 0, 'trak', 'mv1')")
    result = calculate_period(db, "2026-11", run_id="calc-11b", by="alice")
    assert restated == ["2026-10"] and result["adjustments"] > 0
    assert table(db, "SELECT sum(amount) AS a FROM settlement.adjustments")["a"][0] == 3  # 10.00 x 30 %

    # November closes having paid it: December restates nothing again
    approve_period(db, "2026-11", by="bob")
    close_period(db, "2026-11", by="bob", snapshots=None)
    restated.clear()
    calculate_period(db, "2026-12", run_id="calc-12", by="alice")
    assert restated == []

    # a split corrected back to 2020: every closed month is restated once
    with warehouse(db) as con:
        con.execute("DELETE FROM ref.splits WHERE work_id = 'W000' AND right_type = 'master'")
        con.execute("INSERT INTO ref.splits VALUES ('W000', 'master', 'RH02', 1, DATE '2020-01-01', NULL)")
    calculate_period(db, "2026-12", run_id="calc-12b", by="alice")
    assert restated == ["2026-09", "2026-10", "2026-11"]
