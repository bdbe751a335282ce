"""Settlement arithmetic against a real DuckDB file: every level sums exactly to its parent."""

from __future__ import annotations

from decimal import Decimal

import pytest
from settlement_fixtures import seed_warehouse, table

from settlement.calculate import QualityGateError, calculate_period
from settlement.warehouse import warehouse

BUSINESS_TABLES = ["settlement.pools", "settlement.holder_totals", "settlement.statement_lines", "ledger.postings"]


def _assert_reconciles(path, period="2026-10"):
    pools = table(path, f"SELECT platform_id, pool_amount FROM settlement.pools WHERE period = '{period}'")
    holders = table(path, f"SELECT * FROM settlement.holder_totals WHERE period = '{period}'")
    lines = table(path, f"SELECT * FROM settlement.statement_lines WHERE period = '{period}'")
    revenue = table(path, "SELECT sum(revenue_amount) AS r FROM raw.generations")["r"][0]
    assert pools["pool_amount"].sum() == (revenue * Decimal("0.3")).quantize(Decimal("0.01"))
    assert holders["amount"].sum() == pools["pool_amount"].sum()
    by_holder = lines.groupby("rights_holder_id")["amount"].sum()
    for _, h in holders.iterrows():
        assert by_holder[h["rights_holder_id"]] == h["amount"]
        # rounding moves a holder by less than a cent per line, never more
        assert abs(h["amount"] - h["exact_amount"]) < Decimal("0.01")
    assert all(a == a.quantize(Decimal("0.01")) for a in lines["amount"])
    assert (lines["amount"] >= 0).all()
    ledger = table(path, "SELECT transaction_id, sum(amount) AS s FROM ledger.postings GROUP BY ALL")
    assert (ledger["s"] == 0).all()


def test_period_reconciles_to_the_cent(tmp_path):
    db = tmp_path / "w.duckdb"
    seed_warehouse(db, n_works=8, n_generations=50, n_holders=4)
    result = calculate_period(db, "2026-10", run_id="calc-1", by="alice")
    assert result["pool"] == result["total_paid"] > 0
    _assert_reconciles(db)


def test_unattributed_generation_falls_back_to_training_royalty(tmp_path):
    db = tmp_path / "w.duckdb"
    seed_warehouse(db, n_generations=5, unattributed=5)  # every generation was rejected
    calculate_period(db, "2026-10", run_id="calc-1", by="alice")
    lines = table(db, "SELECT sum(output_exact) AS o, sum(training_exact) AS t FROM settlement.statement_lines")
    assert lines["o"][0] == 0 and lines["t"][0] > 0
    _assert_reconciles(db)


def test_recalculating_unchanged_period_changes_no_row(tmp_path):
    db = tmp_path / "w.duckdb"
    seed_warehouse(db)
    calculate_period(db, "2026-10", run_id="calc-1", by="alice")
    before = {t: table(db, f"SELECT * FROM {t} ORDER BY ALL") for t in BUSINESS_TABLES}
    again = calculate_period(db, "2026-10", run_id="calc-2", by="alice")
    assert again["unchanged"]
    for t in BUSINESS_TABLES:
        assert table(db, f"SELECT * FROM {t} ORDER BY ALL").equals(before[t]), t


def test_recalculation_with_changed_input_reverses_then_reposts(tmp_path):
    db = tmp_path / "w.duckdb"
    seed_warehouse(db)
    first = calculate_period(db, "2026-10", run_id="calc-1", by="alice")
    with warehouse(db) as con:
        con.execute("UPDATE raw.generations SET revenue_amount = revenue_amount + 1 WHERE generation_id = 'g0000'")
    second = calculate_period(db, "2026-10", run_id="calc-2", by="alice")
    assert second["pool"] == first["pool"] + Decimal("0.30")
    postings = table(db, "SELECT transaction_id, run_id, sum(amount) AS s FROM ledger.postings GROUP BY ALL")
    assert len(postings) == 3  # first settlement, its reversal, the new settlement
    assert (postings["s"] == 0).all()
    balances = table(db, "SELECT account, sum(amount) AS b FROM ledger.postings GROUP BY ALL")
    assert balances.loc[balances["account"] == "royalty_pool:p1", "b"].item() == -second["pool"]
    _assert_reconciles(db)


def test_split_not_summing_to_one_blocks_the_calculation(tmp_path):
    db = tmp_path / "w.duckdb"
    seed_warehouse(db)
    with warehouse(db) as con:
        con.execute("DELETE FROM ref.splits WHERE work_id = 'W001' AND right_type = 'master'")
        con.execute("INSERT INTO ref.splits VALUES ('W001', 'master', 'RH00', 0.9, DATE '2020-01-01', NULL)")
    with pytest.raises(QualityGateError, match=r"split_sum: W001/master: ownership splits sum to 0.900000"):
        calculate_period(db, "2026-10", run_id="calc-1", by="alice")
    assert table(db, "SELECT count(*) AS n FROM settlement.pools")["n"][0] == 0


def test_orphan_work_blocks_the_calculation(tmp_path):
    db = tmp_path / "w.duckdb"
    seed_warehouse(db)
    with warehouse(db) as con:
        con.execute("DELETE FROM ref.splits WHERE work_id = 'W002' AND right_type = 'publishing'")
    with pytest.raises(QualityGateError, match=r"orphan_work: W002/publishing"):
        calculate_period(db, "2026-10", run_id="calc-1", by="alice")
