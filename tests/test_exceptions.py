"""Each exception that blocks a period, planted on purpose, with the message finance sees;
and the contract terms and FX that decide the pool."""

from __future__ import annotations

from decimal import Decimal

import pytest
from settlement_fixtures import assert_contract_refused, seed_warehouse, table

from settlement.calculate import QualityGateError, calculate_period
from settlement.reference import Contract, register_contract, register_fx_rate
from settlement.warehouse import warehouse

PLANTS = {
    "no_contract": (
        ["DELETE FROM ref.contracts"],
        r"no_contract: p1: no contract in force for platform p1 in 2026-10",
    ),
    "fx_missing": (
        ["UPDATE raw.generations SET revenue_currency = 'EUR' WHERE generation_id = 'g0003'"],
        r"fx_missing: EUR/USD 2026-10: no FX rate EUR/USD for 2026-10 \(1 generation\(s\) of p1 need it\)",
    ),
    "unattributed_generation": (
        ["DELETE FROM attribution.shares WHERE generation_id = 'g0004'"],
        r"unattributed_generation: p1/g0004: generation has neither attribution shares nor a recorded rejection",
    ),
    "model_version_unregistered": (
        ["DELETE FROM ref.training_manifest"],
        r"model_version_unregistered: p1/mv1",
    ),
    "split_mid_period": (
        ["UPDATE ref.splits SET effective_to = DATE '2026-10-15' WHERE work_id = 'W000' AND right_type = 'master'"],
        r"split_mid_period: W000/master/RH\d+: split of RH\d+ runs 2020-01-01 to 2026-10-15",
    ),
    "split_sum": (
        ["UPDATE ref.splits SET share = share / 2 WHERE work_id = 'W001' AND right_type = 'publishing'"],
        r"split_sum: W001/publishing: ownership splits sum to 0\.5",
    ),
    "orphan_work": (
        ["DELETE FROM ref.splits WHERE work_id = 'W002' AND right_type = 'publishing'"],
        r"orphan_work: W002/publishing: work earns royalties but has no publishing holder from 2026-10-01 to the end of 2026-10",
    ),
    # A chargeback larger than the month's revenue, as a platform's refund line would bring it:
    # holders would owe money back, which the close cannot pay out.
    "no_negative_payable": (
        ["UPDATE raw.generations SET revenue_amount = -100 WHERE generation_id = 'g0001'"],
        r"no_negative_payable: p1/RH\d+: amount -\d+\.\d\d",
    ),
}


@pytest.mark.parametrize("rule", sorted(PLANTS))
def test_planted_exception_blocks_the_period_with_its_message(tmp_path, rule):
    db = tmp_path / "w.duckdb"
    seed_warehouse(db, n_works=6, n_generations=12)
    statements, message = PLANTS[rule]
    with warehouse(db) as con:
        for sql in statements:
            con.execute(sql)
    with pytest.raises(QualityGateError, match=message) as err:
        calculate_period(db, "2026-10", run_id="calc-1", by="alice")
    assert err.value.exceptions and all(e[0] == rule for e in err.value.exceptions)
    assert table(db, "SELECT count(*) AS n FROM settlement.pools")["n"][0] == 0  # nothing moved
    assert table(db, "SELECT count(*) AS n FROM ledger.postings")["n"][0] == 0


def test_fx_converts_revenue_into_the_contract_currency(tmp_path):
    db = tmp_path / "w.duckdb"
    seed_warehouse(db, n_generations=10)
    with warehouse(db) as con:
        con.execute("UPDATE raw.generations SET revenue_currency = 'EUR', revenue_amount = 2 WHERE generation_id = 'g0001'")
        register_fx_rate(con, "2026-10", "EUR", "USD", Decimal("1.10000000"), "ECB reference rate 2026-10-31")
        usd = con.execute("SELECT sum(revenue_amount) FROM raw.generations WHERE revenue_currency = 'USD'").fetchall()[0][0]
    result = calculate_period(db, "2026-10", run_id="calc-1", by="alice")
    assert result["pool"] == ((usd + Decimal("2.2")) * Decimal("0.3")).quantize(Decimal("0.01"))
    assert result["pool"] == result["total_paid"]


def test_fee_per_generation_and_minimum_guarantee(tmp_path):
    db = tmp_path / "w.duckdb"
    seed_warehouse(db, n_generations=10)
    with warehouse(db) as con:
        con.execute("DELETE FROM ref.contracts")
        register_contract(con, Contract("C1", "p1", pool_rate=Decimal("0.1"), fee_per_generation=Decimal("0.01")))
        revenue = con.execute("SELECT sum(revenue_amount) FROM raw.generations").fetchall()[0][0]
    result = calculate_period(db, "2026-10", run_id="calc-1", by="alice")
    assert result["pool"] == (revenue * Decimal("0.1") + Decimal("0.10")).quantize(Decimal("0.01"))
    with warehouse(db) as con:
        register_contract(con, Contract("C1", "p1", version=2, pool_rate=Decimal("0.1"), minimum_guarantee=Decimal(500)))
    result = calculate_period(db, "2026-10", run_id="calc-2", by="alice")
    assert result["pool"] == result["total_paid"] == Decimal("500.00")
    training = table(db, "SELECT sum(training_exact) AS t FROM settlement.statement_lines")["t"][0]
    assert training > Decimal(499)  # the guarantee's top-up follows the training manifest


def test_training_share_is_spread_over_the_manifest(tmp_path):
    db = tmp_path / "w.duckdb"
    seed_warehouse(db, n_generations=10)
    with warehouse(db) as con:
        con.execute("DELETE FROM ref.contracts")
        register_contract(con, Contract("C1", "p1", training_share=Decimal(1)))
    calculate_period(db, "2026-10", run_id="calc-1", by="alice")
    lines = table(db, "SELECT sum(output_exact) AS o, sum(training_exact) AS t FROM settlement.statement_lines")
    assert lines["o"][0] == 0 and lines["t"][0] > 0


@pytest.mark.parametrize(
    ("terms", "message"),
    [
        ({"shares_policy": {"top_k": 3}}, "shares_policy may set only .* not \\['top_k'\\]"),
        ({"shares_policy": {"min_confidence": "high"}}, "shares_policy: could not convert"),
        ({"shares_policy": {"confidence": "vibes"}}, "shares_policy: confidence must be one of"),
        ({"shares_policy": {"confidence": "pvalue", "alpha": 1.5}}, "shares_policy: alpha must be in \\(0, 1\\)"),
        ({"shares_policy": {"confidence": "pvalue", "alpha": "0.05"}}, "shares_policy: alpha must be a number"),
        ({"shares_policy": {"alpha": 0}}, "shares_policy: alpha must be in \\(0, 1\\)"),
        ({"shares_policy": {"variants": -2}}, "shares_policy: variants must be >= 0"),
        ({"shares_policy": {"variants": "4"}}, "shares_policy: variants must be a whole number"),
        ({"shares_policy": {"confidence": "pvalue", "catalog_versions": "yes"}}, "shares_policy: catalog_versions must be true or false"),
        ({"shares_policy": {"catalog_versions": True}}, "shares_policy: catalog_versions needs confidence \"pvalue\""),
        ({"method_params": {"curvature": "gram", "embedder": "hidden"}}, "method_params \\['embedder'\\] are not parameters of 'trak'"),
        ({"method": "guesswork"}, "method 'guesswork' is not one of"),
    ],
)
def test_contract_attribution_terms_are_checked_when_registered(tmp_path, terms, message):
    """A contract the attribution task would reject later is refused at registration, naming
    the contract and the rule; nothing is written."""
    db = tmp_path / "w.duckdb"
    seed_warehouse(db, n_generations=2)
    with warehouse(db) as con:
        assert_contract_refused(con, Contract("C9", "p1", **terms), message)
        register_contract(con, Contract("C9", "p1", shares_policy={"min_confidence": 7}, method_params={"curvature": "gram"}))
        stored = con.execute(
            "SELECT shares_policy_json, method_params_json FROM ref.contracts WHERE contract_id = 'C9'"
        ).fetchall()
    assert stored == [('{"min_confidence": 7}', '{"curvature": "gram"}')]
