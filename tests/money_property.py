"""Money invariants over a thousand generated months (hypothesis), through the real SQL on a
real DuckDB file: every level sums to its parent; no cent appears or vanishes across FX,
carry-forward and adjustments; recalculating an open period changes nothing.

The cases are split into SHARDS shards, one test file each (tests/test_money_properties_K.py),
so that pytest-xdist, which hands a whole file to one worker, runs them on several workers at
once instead of making one ~10-minute file the suite's critical path. The shards together are
the one property:
- TRIBUTARY_PROPERTY_EXAMPLES (default 1000, which CI runs) is the total number of cases;
  each shard runs its share (total // SHARDS, one more for the first total % SHARDS shards);
- every shard draws every input from its full range except `seed` (the generator of works,
  holders, splits and generations), which is partitioned: shard K draws seeds = K modulo
  SHARDS. No two shards can generate the same case, and together they cover 0..10**6;
- each shard's test function has its own name, so hypothesis gives it its own random stream,
  also when CI derandomizes (`CI=true` loads hypothesis' "ci" profile, which seeds each test
  from a digest of its source): shards never replay each other's draws of the other inputs."""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from settlement_fixtures import seed_warehouse

from settlement.calculate import calculate_period
from settlement.lifecycle import approve_period, close_period
from settlement.reference import register_fx_rate
from settlement.warehouse import warehouse

SHARDS = 5
EXAMPLES = int(os.environ.get("TRIBUTARY_PROPERTY_EXAMPLES", "1000"))
MAX_SEED = 10**6
SHARD_FILES = sorted(Path(__file__).parent.glob("test_money_properties_*.py"))
assert len(SHARD_FILES) == SHARDS, f"{SHARDS} shards but {len(SHARD_FILES)} shard files: {SHARD_FILES}"
DATA_TABLES = [
    "ref.works", "ref.rights_holders", "ref.splits", "ref.platforms", "ref.contracts", "ref.model_versions",
    "ref.training_manifest", "ref.fx_rates", "raw.generations", "attribution.shares", "attribution.runs",
    "attribution.rejections", "settlement.periods", "settlement.pools", "settlement.holder_totals",
    "settlement.statement_lines", "settlement.approvals", "settlement.closes", "settlement.settled_generations",
    "settlement.adjustments", "settlement.payout_instructions", "ledger.postings", "ledger.accounts",
    "settlement.generation_amounts", "settlement.restatement_baselines", "settlement.restatement_inputs",
]  # fmt: skip


def month_db(tmp_path_factory):
    """A warehouse file for a shard's cases (a module fixture: `yield from month_db(...)`)."""
    path = tmp_path_factory.mktemp("money") / "w.duckdb"
    # While one connection stays open, DuckDB hands every further connect() in this process the
    # same database instance: the code under test still opens and closes its own connections,
    # but thousands of cases no longer pay a file open and checkpoint each time.
    with warehouse(path):
        yield path


def shard_settings(shard: int) -> settings:
    assert 0 <= shard < SHARDS
    examples = EXAMPLES // SHARDS + (1 if shard < EXAMPLES % SHARDS else 0)
    return settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck))


def months(shard: int) -> st.SearchStrategy[dict]:
    """The inputs of one generated case; `seed` restricted to the shard's residue class."""
    return st.fixed_dictionaries({
        "n_works": st.integers(1, 8),
        "n_generations": st.integers(1, 25),
        "n_holders": st.integers(1, 4),
        "seed": st.integers(0, (MAX_SEED - shard) // SHARDS).map(lambda x: x * SHARDS + shard),
        "pool_rate": st.sampled_from(["0.300000", "0.123457", "1.000000", "0.000001", "0.5"]),
        "unattributed": st.integers(0, 3),
        "eur": st.integers(0, 3),
        "fx": st.decimals("0.5", "2", places=8),
        "threshold": st.sampled_from(["0", "0.05", "1", "1000"]),
        "late_amount": st.decimals("0", "3", places=6),
    })  # fmt: skip


LEVEL_MISMATCHES = """
SELECT count(*) FROM (
    SELECT h.period, h.platform_id, h.rights_holder_id FROM settlement.holder_totals AS h
    LEFT JOIN (SELECT period, platform_id, rights_holder_id, sum(amount) AS lines
               FROM settlement.statement_lines GROUP BY ALL) AS l USING (period, platform_id, rights_holder_id)
    WHERE coalesce(l.lines, 0) <> h.amount OR abs(h.amount - h.exact_amount) >= 0.01
    UNION ALL
    SELECT p.period, p.platform_id, NULL FROM settlement.pools AS p
    JOIN (SELECT period, platform_id, sum(amount) AS paid FROM settlement.holder_totals GROUP BY ALL) AS t
      USING (period, platform_id)
    WHERE t.paid <> p.pool_amount
    UNION ALL
    SELECT period, platform_id, rights_holder_id FROM settlement.statement_lines WHERE amount <> round(amount, 2)
)
"""


def _fresh(db):
    with warehouse(db) as con:
        for t in DATA_TABLES:
            con.execute(f"DELETE FROM {t}")


def _one(db, sql):
    with warehouse(db) as con:
        return con.execute(sql).fetchall()[0][0]


def no_cent_appears_or_vanishes(db, case: dict) -> None:
    """October is calculated (twice: unchanged), approved and closed; a late October generation
    and a corrected split arrive; November pays the correction and closes. Every level sums to
    its parent, and every cent of the pools is paid out (with a payout instruction converted
    once and rounded to the cent) or still owed."""
    n_generations, fx, pool_rate, late_amount = case["n_generations"], case["fx"], case["pool_rate"], case["late_amount"]
    _fresh(db)
    seed_warehouse(db, case["n_works"], n_generations, case["n_holders"], case["seed"], pool_rate,
                   min(case["unattributed"], n_generations))  # fmt: skip
    with warehouse(db) as con:
        con.execute(f"UPDATE raw.generations SET revenue_currency = 'EUR' WHERE generation_id < 'g{case['eur']:04d}'")
        register_fx_rate(con, "2026-10", "EUR", "USD", fx, "test")
        con.execute("UPDATE ref.rights_holders SET min_payout = ?", [Decimal(case["threshold"])])
        # one holder is paid in euros: payouts convert at each period's USD/EUR rate
        con.execute("UPDATE ref.rights_holders SET payout_currency = 'EUR' WHERE rights_holder_id = 'RH00'")
        for month in ("2026-10", "2026-11"):
            register_fx_rate(con, month, "USD", "EUR", (1 / fx).quantize(Decimal("1e-8")), "test")

    october = calculate_period(db, "2026-10", run_id="c10", by="alice")
    # every level sums to its parent: pool -> holders -> statement lines, and each holder's
    # rounded amount is within a cent of its exact share
    assert october["pool"] == october["total_paid"]
    assert _one(db, "SELECT sum(amount) FROM settlement.statement_lines") == october["total_paid"]
    assert _one(db, LEVEL_MISMATCHES) == 0
    # recalculating an open period is idempotent
    assert calculate_period(db, "2026-10", run_id="c10b", by="alice")["unchanged"]
    approve_period(db, "2026-10", by="bob")
    close_period(db, "2026-10", by="bob", snapshots=None)

    # after the close: a late October generation and a corrected split, paid in November
    with warehouse(db) as con:
        con.execute(
            "INSERT INTO raw.generations VALUES ('p1', 'late', 'mv1', TIMESTAMP '2026-10-20', 'bach', NULL, [1, 2],"
            " 'US', ?, 'USD', TIMESTAMP '2026-10-20', TIMESTAMP '2026-10-21', 'late', now()::TIMESTAMP)",
            [late_amount],
        )
        con.execute("INSERT INTO attribution.shares VALUES ('run1', 'p1', 'late', NULL, true, 1, NULL, 0, 'trak', 'mv1')")
        con.execute("DELETE FROM ref.splits WHERE work_id = 'W000' AND right_type = 'master'")
        con.execute("INSERT INTO ref.splits VALUES ('W000', 'master', 'RH00', 1, DATE '2020-01-01', NULL)")
    november = calculate_period(db, "2026-11", run_id="c11", by="alice")
    approve_period(db, "2026-11", by="bob")
    close_period(db, "2026-11", by="bob", snapshots=None)

    adjustments = _one(db, "SELECT coalesce(sum(amount), 0) FROM settlement.adjustments")
    expected_late = (late_amount * Decimal(pool_rate)).quantize(Decimal("0.01"))
    # the closed month's pool grows by the late generation's royalty, to within the rounding of
    # the two pools (each rounded to the cent once)
    assert abs(adjustments - expected_late) <= Decimal("0.01")
    assert november["adjustments"] >= 0
    pools = _one(db, "SELECT sum(pool_amount) FROM settlement.pools")
    payouts = _one(db, "SELECT coalesce(sum(amount), 0) FROM ledger.postings WHERE account LIKE 'payouts_due:%'")
    owed = _one(db, "SELECT coalesce(sum(amount), 0) FROM ledger.postings WHERE account LIKE 'holder_payable:%'")
    assert pools + adjustments == payouts + owed  # every cent is paid out or still owed
    assert _one(db, "SELECT count(*) FROM (SELECT transaction_id FROM ledger.postings GROUP BY 1 HAVING sum(amount) <> 0)") == 0
    # every cent paid out has a payout instruction, converted once and rounded to the cent
    assert _one(db, "SELECT coalesce(sum(ledger_amount), 0) FROM settlement.payout_instructions") == payouts
    assert _one(db, "SELECT count(*) FROM settlement.payout_instructions WHERE payout_amount <> round(ledger_amount * fx_rate, 2)") == 0
