"""One source of truth for money (issue 13, finding 2): whatever the contract says (fee per
generation, training share, minimum guarantee, revenue in another currency with FX, a holder
paid in another currency), every holder's per-generation CSV rows, statement lines, holder
total and ledger postings agree to the cent, and the per-generation exact values add up to the
statement lines' royalties. The rows compared are the ones written to the CSV files.

TRIBUTARY_SOURCE_PROPERTY_EXAMPLES sets the number of cases (default 40 in CI)."""

from __future__ import annotations

import csv
import io
import os
from collections import defaultdict
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from money_property import DATA_TABLES
from settlement_fixtures import seed_warehouse

from settlement import statements
from settlement.calculate import calculate_period
from settlement.lifecycle import approve_period, close_period
from settlement.reference import Contract, register_contract, register_fx_rate
from settlement.warehouse import query, warehouse

EXAMPLES = int(os.environ.get("TRIBUTARY_SOURCE_PROPERTY_EXAMPLES", "40"))
CENT = Decimal("0.01")


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = tmp_path_factory.mktemp("sources") / "w.duckdb"
    with warehouse(path):  # one database instance for all cases (see tests/money_property.py)
        yield path


def _csv_rows(rows: list[dict], columns: list[str]) -> list[dict]:
    """The rows as the CSV file holds them, read back."""
    return list(csv.DictReader(io.StringIO(statements._csv_bytes(rows, columns).decode())))


def _setup(db, seed, terms, eur, fx, payout_eur):
    with warehouse(db) as con:
        for t in DATA_TABLES:
            con.execute(f"DELETE FROM {t}")
    seed_warehouse(db, n_works=5, n_generations=14, n_holders=3, seed=seed, unattributed=seed % 3)
    with warehouse(db) as con:
        con.execute("DELETE FROM ref.contracts")
        register_contract(con, Contract("C1", "p1", **terms))
        con.execute(f"UPDATE raw.generations SET revenue_currency = 'EUR' WHERE generation_id < 'g{eur:04d}'")
        register_fx_rate(con, "2026-10", "EUR", terms.get("currency", "USD"), fx, "test") if terms.get(
            "currency", "USD") != "EUR" else None  # fmt: skip
        if payout_eur:
            con.execute("UPDATE ref.rights_holders SET payout_currency = 'EUR' WHERE rights_holder_id = 'RH00'")
            register_fx_rate(con, "2026-10", "USD", "EUR", Decimal("0.91837000"), "test")


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    seed=st.integers(0, 10**6),
    pool_rate=st.sampled_from([Decimal("0.3"), Decimal("0.123457"), Decimal(0), Decimal(1)]),
    fee=st.sampled_from([Decimal(0), Decimal("0.01"), Decimal("0.000731")]),
    training_share=st.sampled_from([Decimal(0), Decimal("0.25"), Decimal("0.333333"), Decimal(1)]),
    guarantee=st.sampled_from([Decimal(0), Decimal("0.50"), Decimal("25.00")]),
    publishing=st.sampled_from([Decimal("0.5"), Decimal("0.7"), Decimal("0.123456")]),
    eur=st.integers(0, 14),
    fx=st.decimals("0.5", "2", places=8),
    payout_eur=st.booleans(),
    close=st.booleans(),
)
def test_every_number_a_holder_sees_comes_from_the_same_rows(
    db, seed, pool_rate, fee, training_share, guarantee, publishing, eur, fx, payout_eur, close
):
    terms = {"pool_rate": pool_rate, "fee_per_generation": fee, "training_share": training_share,
             "minimum_guarantee": guarantee, "publishing_weight": publishing, "master_weight": 1 - publishing}  # fmt: skip
    _setup(db, seed, terms, eur, fx, payout_eur)
    result = calculate_period(db, "2026-10", run_id="calc", by="alice")
    assert result["pool"] == result["total_paid"]
    if close:
        approve_period(db, "2026-10", by="bob")
        close_period(db, "2026-10", by="bob", snapshots=None)
    with warehouse(db) as con:  # the module's open instance (a read-only one would conflict)
        holders = [r["rights_holder_id"] for r in query(con, "marts/period_holders", {"period": "2026-10"})]
        totals = {r[0]: r[1] for r in con.execute(
            "SELECT rights_holder_id, sum(amount) FROM settlement.holder_totals WHERE period = '2026-10' GROUP BY 1"
        ).fetchall()}  # fmt: skip
        ledger = {r[0]: r[1] for r in con.execute(
            "SELECT rights_holder_id, sum(amount) FROM staging.holder_postings "
            "WHERE period = '2026-10' AND transaction_id LIKE 'settle/%' GROUP BY 1"
        ).fetchall()}  # fmt: skip
        assert set(totals) <= set(holders) | {h for h, a in totals.items() if a == 0}
        for holder in holders:
            lines, generations = statements.holder_rows(con, "2026-10", holder)
            lines = _csv_rows(lines, statements.LINE_COLUMNS)
            generations = _csv_rows(generations, statements.GENERATION_COLUMNS)
            line_total = sum((Decimal(r["amount"]) for r in lines), Decimal(0))
            detail_total = sum((Decimal(r["amount"]) for r in generations), Decimal(0))
            assert detail_total == line_total == totals.get(holder, Decimal(0)) == ledger.get(holder, Decimal(0)), holder
            # per line: the rows' cents are the line's, and their exact values its royalties
            by_line, exact = defaultdict(Decimal), defaultdict(Decimal)
            for r in generations:
                key = (r["platform_id"], r["work_id"], r["right_type"])
                by_line[key] += Decimal(r["amount"])
                exact[key] += Decimal(r["exact_royalty"])
                assert Decimal(r["amount"]) == Decimal(r["amount"]).quantize(CENT)
            for r in lines:
                key = (r["platform_id"], r["work_id"], r["right_type"])
                assert by_line[key] == Decimal(r["amount"]), r
                royalty = Decimal(r["output_royalty"]) + Decimal(r["training_royalty"])
                assert abs(exact[key] - royalty) < Decimal("0.00001"), (r, exact[key])
        # the DSR lines (statement lines by territory) read the same rows and add up the same
        dsr = defaultdict(Decimal)
        for r in query(con, "marts/dsr_lines", {"period": "2026-10"}):
            dsr[r["rights_holder_id"]] += r["amount"]
        assert {h: a for h, a in dsr.items() if a} == {h: a for h, a in totals.items() if a}


def test_a_training_share_a_fee_and_euro_revenue_reach_the_per_generation_rows(tmp_path):
    """The case the issue reports: with training_share 0.25, a fee and EUR revenue, a holder's
    per-generation rows no longer summed to the statement's output royalty (0.112635 vs
    0.084476): the detail recomputed the pool as revenue x rate, same currency only."""
    db = tmp_path / "w.duckdb"
    seed_warehouse(db, n_works=4, n_generations=10, n_holders=2, seed=7)
    with warehouse(db) as con:
        con.execute("DELETE FROM ref.contracts")
        register_contract(con, Contract("C1", "p1", training_share=Decimal("0.25"), fee_per_generation=Decimal("0.002")))
        con.execute("UPDATE raw.generations SET revenue_currency = 'EUR' WHERE generation_id < 'g0005'")
        register_fx_rate(con, "2026-10", "EUR", "USD", Decimal("1.0842"), "ECB")
    calculate_period(db, "2026-10", run_id="calc", by="alice")
    with warehouse(db, read_only=True) as con:
        for holder in ("RH00", "RH01"):
            lines, generations = statements.holder_rows(con, "2026-10", holder)
            output = defaultdict(Decimal)
            for r in generations:
                if r["royalty"] == "output":
                    output[(r["work_id"], r["right_type"])] += r["exact_royalty"]
            for line in lines:
                got = output.get((line["work_id"], line["right_type"]), Decimal(0))
                assert abs(got - line["output_royalty"]) < Decimal("0.000002"), (line, got)
            assert sum(r["amount"] for r in generations) == sum(r["amount"] for r in lines)
