"""Does a month's calculation cost grow with the project's history? (issue 13, finding 10)

    .venv/bin/python benchmarks/restatement.py --generations 50000 --top-k 8 --history 24

Builds two warehouses with the same synthetic months (each month: N generations x top-k
shares, one platform, W works over H holders): one with 1 closed month before the measured
month, one with `--history` closed months. Then calculates the next month in each, side by
side, and once more in the long one with its restatement baselines removed (what every
calculation did before: recompute every closed month). Prints seconds and ratios.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from settlement.calculate import calculate_period
from settlement.lifecycle import approve_period, close_period
from settlement.reference import Contract, register_contract, register_platform
from settlement.warehouse import warehouse


def month_name(i: int) -> str:
    return f"{2024 + i // 12}-{i % 12 + 1:02d}"


def add_month(con, period: str, n_gen: int, top_k: int, n_works: int) -> None:
    tag = period.replace("-", "")
    con.execute(f"""INSERT INTO raw.generations
        SELECT 'bench', 'g{tag}-' || i, 'mv', strptime('{period}', '%Y-%m') + INTERVAL (i % 2419200) SECOND, 'bach', NULL,
               [1, 2], 'US', CAST(0.01 + (i % 2500) / 10000 AS DECIMAL(18, 6)), 'USD',
               strptime('{period}', '%Y-%m'), strptime('{period}', '%Y-%m'), 'bench', now()::TIMESTAMP
        FROM range({n_gen}) t(i)""")
    share = Decimal("0.8") / top_k
    con.execute(f"""INSERT INTO attribution.shares
        SELECT 'run', 'bench', 'g{tag}-' || i, 'W' || lpad(CAST(hash(i, k) % {n_works} AS VARCHAR), 6, '0'),
               false, {share:.9f}, 1.0, k + 1, 'trak', 'mv'
        FROM range({n_gen}) t(i), range({top_k}) s(k)
        UNION ALL
        SELECT 'run', 'bench', 'g{tag}-' || i, NULL, true, {1 - share * top_k:.9f}, NULL, 0, 'trak', 'mv'
        FROM range({n_gen}) t(i)""")


def build(db: Path, months: int, n_gen: int, top_k: int, n_works: int, n_holders: int) -> None:
    with warehouse(db) as con:
        con.execute(f"""INSERT INTO ref.works SELECT 'W' || lpad(CAST(i AS VARCHAR), 6, '0'), 'T-000.000.000-0',
            'QZAAA2600000', 'work ' || i, 'c', 'bench', 'bach', NULL FROM range({n_works}) t(i)""")
        con.execute(f"""INSERT INTO ref.rights_holders SELECT 'RH' || lpad(CAST(i AS VARCHAR), 5, '0'), 'holder ' || i,
            'publisher', 'USD', 0 FROM range({n_holders}) t(i)""")
        con.execute(f"""INSERT INTO ref.splits
            SELECT 'W' || lpad(CAST(i AS VARCHAR), 6, '0'), r, 'RH' || lpad(CAST((i + (r = 'master')::INT) % {n_holders} AS VARCHAR), 5, '0'),
                   1, DATE '2020-01-01', NULL FROM range({n_works}) t(i), (VALUES ('publishing'), ('master')) v(r)""")
        register_platform(con, "bench", "Benchmark platform", "bench_conn")
        register_contract(con, Contract("BENCH", "bench", pool_rate=Decimal("0.3")))
        con.execute("INSERT INTO ref.model_versions VALUES ('bench', 'mv', 'x', 'y', '/nowhere', now()::TIMESTAMP)")
        con.execute(f"""INSERT INTO ref.training_manifest SELECT 'mv', i, 'W' || lpad(CAST(i AS VARCHAR), 6, '0'), 'h'
            FROM range({n_works}) t(i)""")
        con.execute("INSERT INTO attribution.runs VALUES ('run', 'bench', 'mv', 'trak', '{}', 0, 0, now()::TIMESTAMP)")
        for i in range(months + 1):
            add_month(con, month_name(i), n_gen, top_k, n_works)
    for i in range(months):
        period = month_name(i)
        calculate_period(db, period, run_id=f"calc-{period}", by="bench")
        approve_period(db, period, by="auditor")
        close_period(db, period, by="auditor", snapshots=None)


def timed_calculation(db: Path, period: str, run_id: str) -> float:
    t0 = time.perf_counter()
    result = calculate_period(db, period, run_id=run_id, by="bench")
    took = time.perf_counter() - t0
    assert result["pool"] == result["total_paid"] and not result["unchanged"], result
    return took


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--generations", type=int, default=50_000, help="per month")
    ap.add_argument("--top-k", type=int, default=8)
    ap.add_argument("--works", type=int, default=20_000)
    ap.add_argument("--holders", type=int, default=2_000)
    ap.add_argument("--history", type=int, default=24, help="closed months before the measured one")
    ap.add_argument("--repeat", type=int, default=3, help="calculations per warehouse (median taken)")
    ap.add_argument("--dir", type=Path, default=Path("/tmp/tributary-restatement-bench"))
    args = ap.parse_args()
    shutil.rmtree(args.dir, ignore_errors=True)
    args.dir.mkdir(parents=True)
    dbs = {}
    for months in (1, args.history):
        dbs[months] = args.dir / f"history-{months}.duckdb"
        t0 = time.perf_counter()
        build(dbs[months], months, args.generations, args.top_k, args.works, args.holders)
        print(f"built {months} closed month(s) + the month to calculate "
              f"({args.generations:,} generations x top-{args.top_k} each) in {time.perf_counter() - t0:.1f} s")
    times: dict[str, list[float]] = {"1": [], str(args.history): [], "all": []}
    for r in range(args.repeat):  # interleaved, so load on the machine hits both alike
        for months in (1, args.history):
            with warehouse(dbs[months]) as con:  # a changed input (an FX rate of the month) forces a recalculation
                con.execute(f"INSERT OR REPLACE INTO ref.fx_rates VALUES ('{month_name(months)}', 'EUR', 'USD', {1 + r}, 'bench')")
            times[str(months)].append(timed_calculation(dbs[months], month_name(months), f"bench-{months}-{r}"))
        with warehouse(dbs[args.history]) as con:  # what every calculation did before: restate all
            con.execute("DELETE FROM settlement.restatement_baselines")
            con.execute(f"INSERT OR REPLACE INTO ref.fx_rates VALUES ('{month_name(args.history)}', 'EUR', 'USD', {10 + r}, 'bench')")
        times["all"].append(timed_calculation(dbs[args.history], month_name(args.history), f"bench-all-{r}"))
        with warehouse(dbs[args.history]) as con:  # baselines back, as the closes recorded them
            con.execute("DELETE FROM settlement.restatement_inputs")
        for i in range(args.history):
            from settlement.calculate import restatement_digest

            with warehouse(dbs[args.history]) as con:
                con.execute("INSERT OR REPLACE INTO settlement.restatement_baselines VALUES (?, ?, ?, now()::TIMESTAMP)",
                            [month_name(i), restatement_digest(con, month_name(i)), month_name(i)])
    med = {k: sorted(v)[len(v) // 2] for k, v in times.items()}
    print(f"calculation of the next month, median of {args.repeat}:")
    print(f"  after 1 closed month:                     {med['1']:.2f} s")
    print(f"  after {args.history} closed months:                   {med[str(args.history)]:.2f} s "
          f"= {med[str(args.history)] / med['1']:.2f}x the 1-month figure")
    print(f"  after {args.history} closed months, restating all:    {med['all']:.2f} s "
          f"= {med['all'] / med['1']:.2f}x (the behaviour before issue 13)")


if __name__ == "__main__":
    main()
