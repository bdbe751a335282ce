"""Settlement at platform scale: a synthetic period calculated by the real SQL.

    .venv/bin/python benchmarks/settlement.py --generations 10000000 --top-k 16 \
        --works 100000 --holders 10000 --dir /tmp/settlement-bench

Builds a warehouse with N generations x top-k attribution shares (+1 residual row each),
W works with publishing and master splits over H holders, then times the period
calculation (exceptions check, allocation, largest-remainder rounding, publish, gates,
ledger) and prints allocation rows per second and the process's peak memory (DuckDB runs in
this process, so ru_maxrss covers it). Synthetic data is generated inside DuckDB.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from settlement.calculate import calculate_period
from settlement.reference import Contract, register_contract, register_platform
from settlement.warehouse import warehouse


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def build(db: Path, n_gen: int, top_k: int, n_works: int, n_holders: int, memory_limit: str) -> float:
    t0 = time.perf_counter()
    with warehouse(db) as con:
        con.execute(f"SET memory_limit = '{memory_limit}'")
        con.execute(
            f"INSERT INTO ref.works SELECT 'W' || lpad(CAST(i AS VARCHAR), 7, '0'), 'T-000.000.000-0', "
            f"'QZAAA2600000', 'work ' || i, 'c', 'bench', 'bach', NULL FROM range({n_works}) t(i)"
        )
        con.execute(
            f"INSERT INTO ref.rights_holders SELECT 'RH' || lpad(CAST(i AS VARCHAR), 6, '0'), 'holder ' || i, "
            f"'publisher', 'USD', 0 FROM range({n_holders}) t(i)"
        )
        # every work: one publisher; masters shared 60/40 between two labels on every 3rd work
        con.execute(
            f"""INSERT INTO ref.splits
            SELECT 'W' || lpad(CAST(i AS VARCHAR), 7, '0'), 'publishing',
                   'RH' || lpad(CAST(i % {n_holders} AS VARCHAR), 6, '0'), 1, DATE '2020-01-01', NULL
            FROM range({n_works}) t(i)
            UNION ALL
            SELECT 'W' || lpad(CAST(i AS VARCHAR), 7, '0'), 'master',
                   'RH' || lpad(CAST((i * 7 + 1) % {n_holders} AS VARCHAR), 6, '0'),
                   CASE WHEN i % 3 = 0 THEN 0.6 ELSE 1 END, DATE '2020-01-01', NULL
            FROM range({n_works}) t(i)
            UNION ALL
            SELECT 'W' || lpad(CAST(i AS VARCHAR), 7, '0'), 'master',
                   'RH' || lpad(CAST((i * 7 + 2) % {n_holders} AS VARCHAR), 6, '0'), 0.4, DATE '2020-01-01', NULL
            FROM range({n_works}) t(i) WHERE i % 3 = 0"""
        )
        register_platform(con, "bench", "Benchmark platform", "bench_conn")
        register_contract(con, Contract("BENCH", "bench", pool_rate=Decimal("0.3")))
        con.execute("INSERT INTO ref.model_versions VALUES ('bench', 'mv', 'x', 'y', '/nowhere', now()::TIMESTAMP)")
        con.execute(
            f"INSERT INTO ref.training_manifest SELECT 'mv', i, 'W' || lpad(CAST(i AS VARCHAR), 7, '0'), 'h' "
            f"FROM range({n_works}) t(i)"
        )
        con.execute(
            f"""INSERT INTO raw.generations
            SELECT 'bench', 'g' || i, 'mv', TIMESTAMP '2026-10-01' + INTERVAL (i % 2592000) SECOND, 'bach', NULL,
                   [1, 2], 'US', CAST(0.01 + (i % 2500) / 10000 AS DECIMAL(18, 6)), 'USD',
                   TIMESTAMP '2026-10-01', TIMESTAMP '2026-11-01', 'bench', TIMESTAMP '2026-11-01'
            FROM range({n_gen}) t(i)"""
        )
        share = Decimal("0.8") / top_k
        con.execute(
            f"""INSERT INTO attribution.shares
            SELECT 'run', 'bench', 'g' || i, 'W' || lpad(CAST(hash(i, k) % {n_works} AS VARCHAR), 7, '0'),
                   false, {share:.9f}, 1.0, k + 1, 'trak', 'mv'
            FROM range({n_gen}) t(i), range({top_k}) s(k)
            UNION ALL
            SELECT 'run', 'bench', 'g' || i, NULL, true, {1 - share * top_k:.9f}, NULL, 0, 'trak', 'mv'
            FROM range({n_gen}) t(i)"""
        )
        con.execute(
            f"INSERT INTO attribution.runs VALUES ('run', 'bench', 'mv', 'trak', '{{}}', {n_gen}, 0, now()::TIMESTAMP)"
        )
        con.execute("CHECKPOINT")
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--generations", type=int, default=1_000_000)
    ap.add_argument("--top-k", type=int, default=16)
    ap.add_argument("--works", type=int, default=100_000)
    ap.add_argument("--holders", type=int, default=10_000)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/tributary-settlement-bench"))
    ap.add_argument("--memory-limit", default="12GB", help="DuckDB memory_limit; larger data spills to disk")
    args = ap.parse_args()
    shutil.rmtree(args.dir, ignore_errors=True)
    args.dir.mkdir(parents=True)
    db = args.dir / "warehouse.duckdb"
    rows = args.generations * args.top_k
    build_s = build(db, args.generations, args.top_k, args.works, args.holders, args.memory_limit)
    print(f"built {args.generations:,} generations x top-{args.top_k} = {rows:,} allocation rows "
          f"(+{args.generations:,} residual rows) in {build_s:.1f}s")
    t0 = time.perf_counter()
    result = calculate_period(db, "2026-10", run_id="bench-calc", by="bench")
    calc_s = time.perf_counter() - t0
    assert result["pool"] == result["total_paid"], result
    t0 = time.perf_counter()
    again = calculate_period(db, "2026-10", run_id="bench-calc-2", by="bench")
    noop_s = time.perf_counter() - t0
    assert again["unchanged"]
    print(f"calculation: {calc_s:.1f}s = {rows / calc_s:,.0f} allocation rows/s; pool {result['pool']} = paid "
          f"{result['total_paid']} across {result['holders_with_earnings']:,} holders")
    print(f"unchanged rerun (inputs digest only): {noop_s:.1f}s = {calc_s / noop_s:.1f}x faster than calculating")
    print(f"peak memory (process, incl. DuckDB): {peak_rss_gib():.2f} GiB; warehouse file "
          f"{db.stat().st_size / 1024**3:.2f} GiB")


if __name__ == "__main__":
    main()
