"""Period lifecycle on a real DuckDB file: second-person approval, close, payouts and
carry-forward, adjustments for what arrives after a close, read-only snapshots."""

from __future__ import annotations

import os
import stat
from decimal import ROUND_HALF_UP, Decimal

import duckdb
import pytest
from settlement_fixtures import seed_warehouse, table

from settlement.calculate import PeriodClosedError, QualityGateError, calculate_period
from settlement.lifecycle import LifecycleError, approve_period, close_period
from settlement.reference import register_fx_rate
from settlement.warehouse import warehouse


def _settle_october(db, tmp_path):
    seed_warehouse(db, n_works=6, n_generations=30, n_holders=3)
    calculate_period(db, "2026-10", run_id="calc-10", by="alice")
    approve_period(db, "2026-10", by="bob")
    return close_period(db, "2026-10", by="bob", snapshots=tmp_path / "snapshots")


def test_the_preparer_cannot_approve(tmp_path):
    db = tmp_path / "w.duckdb"
    seed_warehouse(db)
    calculate_period(db, "2026-10", run_id="calc-1", by="alice")
    with pytest.raises(LifecycleError, match="calculated by 'alice'; a second person must approve"):
        approve_period(db, "2026-10", by="alice")
    assert approve_period(db, "2026-10", by="bob")["status"] == "approved"
    approvals = table(db, "SELECT period, run_id, approved_by FROM settlement.approvals")
    assert approvals.values.tolist() == [["2026-10", "calc-1", "bob"]]


def test_close_pays_holders_over_threshold_and_carries_the_rest(tmp_path):
    db = tmp_path / "w.duckdb"
    seed_warehouse(db, n_generations=30)
    with warehouse(db) as con:  # RH00 only gets paid once it is owed 1,000,000.00
        con.execute("UPDATE ref.rights_holders SET min_payout = 1000000 WHERE rights_holder_id = 'RH00'")
    calculate_period(db, "2026-10", run_id="calc-10", by="alice")
    approve_period(db, "2026-10", by="bob")
    result = close_period(db, "2026-10", by="bob", snapshots=tmp_path / "snapshots")
    balances = table(db, "SELECT account, sum(amount) AS b FROM ledger.postings GROUP BY ALL")
    owed = dict(balances.values.tolist())
    assert owed["holder_payable:RH00"] > 0  # carried forward
    assert owed.get("holder_payable:RH01", Decimal(0)) == 0  # paid out
    pool = table(db, "SELECT sum(pool_amount) AS p FROM settlement.pools")["p"][0]
    assert result["paid_out"] + result["carried_forward"] == pool  # no cent appears or vanishes
    assert table(db, "SELECT count(*) AS n FROM ledger.postings GROUP BY transaction_id HAVING sum(amount) <> 0").empty


def test_payout_in_the_holders_currency_needs_the_periods_rate(tmp_path):
    db = tmp_path / "w.duckdb"
    seed_warehouse(db, n_generations=30)
    with warehouse(db) as con:
        con.execute("UPDATE ref.rights_holders SET payout_currency = 'EUR' WHERE rights_holder_id = 'RH01'")
    with pytest.raises(QualityGateError, match=r"fx_missing: USD/EUR 2026-10: no FX rate USD/EUR for 2026-10 \(payout to RH01\)"):
        calculate_period(db, "2026-10", run_id="calc-10", by="alice")
    assert table(db, "SELECT count(*) AS n FROM ledger.postings")["n"][0] == 0  # rolled back
    with warehouse(db) as con:
        register_fx_rate(con, "2026-10", "USD", "EUR", Decimal("0.91837"), "ECB reference 2026-10-30")
    calculate_period(db, "2026-10", run_id="calc-10", by="alice")
    approve_period(db, "2026-10", by="bob")
    with warehouse(db) as con:  # the rate disappears after approval: the close refuses too
        con.execute("DELETE FROM ref.fx_rates")
    with pytest.raises(LifecycleError, match="inputs changed since calculation calc-10 was approved"):
        close_period(db, "2026-10", by="bob", snapshots=None)
    with warehouse(db) as con:
        register_fx_rate(con, "2026-10", "USD", "EUR", Decimal("0.91837"), "ECB reference 2026-10-30")
    close_period(db, "2026-10", by="bob", snapshots=None)
    paid = table(db, "SELECT * FROM settlement.payout_instructions ORDER BY rights_holder_id")
    ledger = table(db, "SELECT -sum(amount) AS a FROM ledger.postings WHERE transaction_id LIKE 'payout/%' AND account LIKE 'holder_payable:%'")
    assert sum(paid["ledger_amount"]) == ledger["a"][0]  # every cent paid has an instruction
    for _, row in paid.iterrows():
        rate = Decimal("0.91837") if row["rights_holder_id"] == "RH01" else Decimal(1)
        assert row["payout_currency"] == ("EUR" if row["rights_holder_id"] == "RH01" else "USD")
        assert row["payout_amount"] == (row["ledger_amount"] * rate).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def test_a_closed_period_is_never_recalculated(tmp_path):
    db = tmp_path / "w.duckdb"
    _settle_october(db, tmp_path)
    with pytest.raises(PeriodClosedError, match="2026-10 is closed"):
        calculate_period(db, "2026-10", run_id="again", by="alice")


def test_late_generation_is_paid_as_an_adjustment_in_the_next_period(tmp_path):
    db = tmp_path / "w.duckdb"
    _settle_october(db, tmp_path)
    october = {t: table(db, f"SELECT * FROM {t} WHERE period = '2026-10' ORDER BY ALL")
               for t in ("settlement.pools", "settlement.holder_totals", "settlement.statement_lines")}
    with warehouse(db) as con:  # arrives after the close, created in October
        con.execute(
            "INSERT INTO raw.generations VALUES ('p1', 'late-1', 'mv1', TIMESTAMP '2026-10-31 23:00', 'bach', NULL,"
            " [1, 2], 'US', 10.000000, 'USD', TIMESTAMP '2026-10-31', TIMESTAMP '2026-11-01', 'late', now()::TIMESTAMP)"
        )
        con.execute("INSERT INTO attribution.shares VALUES ('run1', 'p1', 'late-1', 'W000', false, 0.5, 1.0, 1, 'trak', 'mv1')")
        con.execute("INSERT INTO attribution.shares VALUES ('run1', 'p1', 'late-1', NULL, true, 0.5, NULL, 0, 'trak', 'mv1')")
    result = calculate_period(db, "2026-11", run_id="calc-11", by="alice")
    assert result["adjustments"] > 0
    for t, before in october.items():
        assert table(db, f"SELECT * FROM {t} WHERE period = '2026-10' ORDER BY ALL").equals(before), t
    adjustments = table(db, "SELECT * FROM settlement.adjustments")
    assert set(adjustments["corrects_period"]) == {"2026-10"}
    assert adjustments["amount"].sum() == Decimal("3.00")  # 10.00 revenue x 30 % pool
    assert adjustments["reason"].str.contains("1 late generation").all()
    memo = table(db, "SELECT memo FROM ledger.postings WHERE transaction_id LIKE 'adjust/%' AND account LIKE 'royalty_pool:%'")
    assert memo["memo"].str.contains("corrects 2026-10").all()


def test_split_change_after_close_is_corrected_in_the_next_period(tmp_path):
    db = tmp_path / "w.duckdb"
    _settle_october(db, tmp_path)
    with warehouse(db) as con:  # W000's master right was RH-someone's; it was in fact RH02's all along
        con.execute("DELETE FROM ref.splits WHERE work_id = 'W000' AND right_type = 'master'")
        con.execute("INSERT INTO ref.splits VALUES ('W000', 'master', 'RH02', 1, DATE '2020-01-01', NULL)")
    calculate_period(db, "2026-11", run_id="calc-11", by="alice")
    adjustments = table(db, "SELECT * FROM settlement.adjustments")
    assert len(adjustments) >= 1
    assert adjustments["amount"].sum() == 0  # money moves between holders; the pool is unchanged
    assert adjustments["reason"].str.contains("splits or contract changed").all()


def test_snapshot_is_read_only_and_does_not_block_the_writer(tmp_path):
    db = tmp_path / "w.duckdb"
    result = _settle_october(db, tmp_path)
    snapshot = result["snapshot"]
    assert os.stat(snapshot).st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH) == 0
    auditor = duckdb.connect(snapshot, read_only=True)
    try:
        lines = auditor.execute("SELECT count(*) FROM settlement.statement_lines WHERE period = '2026-10'").fetchall()
        assert lines[0][0] > 0
        with pytest.raises(duckdb.Error, match="read-only"):
            auditor.execute("DELETE FROM settlement.statement_lines")
        # while the auditor holds the snapshot open, the pipeline goes on writing the warehouse
        with warehouse(db) as live:
            live.execute("INSERT INTO ref.platforms (platform_id, name, conn_id) VALUES ('p2', 'Two', 'c2')")
        assert auditor.execute("SELECT count(*) FROM ref.platforms").fetchall()[0][0] == 1
    finally:
        auditor.close()


def test_auditor_query_from_docs_traces_a_statement_line_to_generations(tmp_path):
    from settlement.warehouse import SQL_DIR

    db = tmp_path / "w.duckdb"
    result = _settle_october(db, tmp_path)
    audit_sql = (SQL_DIR / "audit" / "statement_line_to_generations.sql").read_text()
    assert audit_sql in (SQL_DIR.parent / "docs" / "audit.md").read_text()  # the doc shows what is tested
    auditor = duckdb.connect(result["snapshot"], read_only=True)
    try:
        line = auditor.execute(
            "SELECT rights_holder_id, work_id, right_type FROM settlement.statement_lines "
            "WHERE period = '2026-10' AND output_exact > 0 ORDER BY amount DESC, work_id LIMIT 1"
        ).fetchall()[0]
        params = dict(zip(["rights_holder_id", "work_id", "right_type"], line, strict=True), period="2026-10")
        rows = auditor.execute(audit_sql, params).fetchall()
        expected = auditor.execute(
            "SELECT DISTINCT generation_id FROM attribution.shares WHERE work_id = ? AND NOT is_residual", [line[1]]
        ).fetchall()
    finally:
        auditor.close()
    assert rows and sorted({r[0] for r in rows}) == sorted(g for (g,) in expected)
