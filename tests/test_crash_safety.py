"""kill -9 at any instant, then the same command again: it completes, and nothing is lost,
doubled or half-written (issue 13). For every writing command (calculate, approve, close,
snapshot, restore, statements build, catalog import, fx set, ingest landing), a real process is
killed with SIGKILL at TRIBUTARY_KILL_INSTANTS (default 20) instants spread evenly over an
uninterrupted run, on a month big enough that the longer commands run about a second, and the
command is run again. After every rerun: holders sum to each pool, every ledger transaction
sums to zero, the statement files on disk match the hashes the warehouse recorded, a closed
period's snapshot exists, is read-only and matches its recorded digest, no partial file is
left, and the warehouse holds exactly what an uninterrupted run leaves.

One prepared warehouse per stage of the month is shared by all kills (each kill copies it)."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import stat
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from killing import _rmtree, fresh, kill_series, run

from settlement.reference import Contract, register_contract, register_platform
from settlement.warehouse import warehouse

N = int(os.environ.get("TRIBUTARY_KILL_INSTANTS", "20"))
# Sized so the longer commands run about a second on the CI machine (2 cores).
GENERATIONS = int(os.environ.get("TRIBUTARY_KILL_GENERATIONS", "100000"))
# Statements render a PDF per holder and a per-generation CSV row per generation and work: a
# smaller month makes `statements build` (and a restore, which renders the period) last ~1 s.
STATEMENT_GENERATIONS = int(os.environ.get("TRIBUTARY_KILL_STATEMENT_GENERATIONS", "1000"))
WORKS, TOP_K = 300, 3
SERIES: list[str] = []


def _seed(db: Path, generations: int = GENERATIONS, holders: int = 14) -> None:
    GENERATIONS, HOLDERS = generations, holders
    with warehouse(db) as con:
        con.execute(f"""INSERT INTO ref.works SELECT 'W' || lpad(CAST(i AS VARCHAR), 5, '0'), 'T-000.000.000-0',
            'QZAAA2600000', 'Work ' || i, 'Anon.', 'test', 'bach', NULL FROM range({WORKS}) t(i)""")
        con.execute(f"""INSERT INTO ref.rights_holders SELECT 'RH' || lpad(CAST(i AS VARCHAR), 3, '0'),
            'Holder ' || i, 'publisher', CASE WHEN i = 1 THEN 'EUR' ELSE 'USD' END, CASE WHEN i = 2 THEN 1000000 ELSE 0 END
            FROM range({HOLDERS}) t(i)""")
        con.execute(f"""INSERT INTO ref.splits
            SELECT 'W' || lpad(CAST(i AS VARCHAR), 5, '0'), 'publishing', 'RH' || lpad(CAST(i % {HOLDERS} AS VARCHAR), 3, '0'),
                   1, DATE '2020-01-01', NULL FROM range({WORKS}) t(i)
            UNION ALL
            SELECT 'W' || lpad(CAST(i AS VARCHAR), 5, '0'), 'master', 'RH' || lpad(CAST((i * 7 + 1) % {HOLDERS} AS VARCHAR), 3, '0'),
                   CASE WHEN i % 3 = 0 THEN 0.6 ELSE 1 END, DATE '2020-01-01', NULL FROM range({WORKS}) t(i)
            UNION ALL
            SELECT 'W' || lpad(CAST(i AS VARCHAR), 5, '0'), 'master', 'RH' || lpad(CAST((i * 7 + 2) % {HOLDERS} AS VARCHAR), 3, '0'),
                   0.4, DATE '2020-01-01', NULL FROM range({WORKS}) t(i) WHERE i % 3 = 0""")
        register_platform(con, "p1", "Platform One", "p1_conn")
        register_contract(con, Contract("C1", "p1", pool_rate=Decimal("0.3"), training_share=Decimal("0.2")))
        con.execute("INSERT INTO ref.model_versions VALUES ('p1', 'mv1', 'x', 'y', '/nowhere', now()::TIMESTAMP)")
        con.execute(f"INSERT INTO ref.training_manifest SELECT 'mv1', i, 'W' || lpad(CAST(i % {WORKS} AS VARCHAR), 5, '0'), 'h' "
                    f"FROM range({WORKS + 40}) t(i)")  # fmt: skip
        con.execute(f"""INSERT INTO raw.generations
            SELECT 'p1', 'g' || lpad(CAST(i AS VARCHAR), 7, '0'), 'mv1', TIMESTAMP '2026-10-01' + INTERVAL (i * 17 % 2678400) SECOND,
                   'bach', NULL, [1, 2], CASE WHEN i % 5 = 0 THEN 'DE' ELSE 'US' END,
                   CAST(0.01 + (i % 2500) / 10000 AS DECIMAL(18, 6)), CASE WHEN i % 4 = 0 THEN 'EUR' ELSE 'USD' END,
                   TIMESTAMP '2026-10-01', TIMESTAMP '2026-11-01', 'seed', TIMESTAMP '2026-11-01'
            FROM range({GENERATIONS}) t(i)""")
        con.execute(f"""INSERT INTO attribution.shares
            SELECT 'run1', 'p1', 'g' || lpad(CAST(i AS VARCHAR), 7, '0'),
                   'W' || lpad(CAST((hash(i) % {WORKS} + k * 101) % {WORKS} AS VARCHAR), 5, '0'),
                   false, 0.25, 1.0, k + 1, 'trak', 'mv1'
            FROM range({GENERATIONS}) t(i), range({TOP_K}) s(k)
            UNION ALL
            SELECT 'run1', 'p1', 'g' || lpad(CAST(i AS VARCHAR), 7, '0'), NULL, true, 0.25, NULL, 0, 'trak', 'mv1'
            FROM range({GENERATIONS}) t(i)""")
        con.execute(f"INSERT INTO attribution.runs VALUES ('run1', 'p1', 'mv1', 'trak', '{{}}', {GENERATIONS}, 0, now()::TIMESTAMP)")
        con.execute("INSERT INTO ref.fx_rates VALUES ('2026-10', 'EUR', 'USD', 1.0842, 'ECB'), "
                    "('2026-10', 'USD', 'EUR', 0.92233, 'ECB')")
        con.execute("CHECKPOINT")


def _cli(home: Path, *argv: str) -> None:
    run(home, list(argv))


@pytest.fixture(scope="module")
def states(tmp_path_factory):
    """TRIBUTARY_HOME folders at each stage of the month, prepared once through the real CLI."""
    root = tmp_path_factory.mktemp("kill")
    seeded = root / "seeded"
    seeded.mkdir()
    _seed(seeded / "warehouse.duckdb")
    calculated = fresh(seeded, root / "calculated")
    _cli(calculated, "settle", "calculate", "--period", "2026-10", "--by", "alice")
    approved = fresh(calculated, root / "approved")
    _cli(approved, "settle", "approve", "--period", "2026-10", "--by", "bob")
    closed = fresh(approved, root / "closed")
    _cli(closed, "period", "close", "2026-10", "--by", "bob")
    pending = fresh(closed, root / "pending")  # a close killed after its first step
    with warehouse(pending / "warehouse.duckdb") as con:
        con.execute("UPDATE settlement.closes SET snapshot_sha256 = NULL")
    _rmtree(pending / "snapshots")
    small = root / "small"  # the smaller month, closed, for statements and restore
    small.mkdir()
    _seed(small / "warehouse.duckdb", STATEMENT_GENERATIONS, holders=7)
    for argv in (["settle", "calculate", "--period", "2026-10", "--by", "alice"],
                 ["settle", "approve", "--period", "2026-10", "--by", "bob"],
                 ["statements", "build", "--period", "2026-10"], ["period", "close", "2026-10", "--by", "bob"]):  # fmt: skip
        _cli(small, *argv)
    final = fresh(small, root / "final")
    _cli(final, "statements", "build", "--period", "2026-10")
    digest = _recorded_digest(final)
    lost = fresh(final, root / "lost")  # the live warehouse is damaged beyond opening
    (lost / "warehouse.duckdb").write_bytes(b"\x00" * 4096)
    empty = root / "empty"
    empty.mkdir()
    with warehouse(empty / "warehouse.duckdb"):
        pass
    yield {"root": root, "seeded": seeded, "calculated": calculated, "approved": approved, "closed": closed,
           "pending": pending, "small": small, "final": final, "lost": lost, "digest": digest, "empty": empty}  # fmt: skip
    print("\n" + "\n".join(SERIES))


def _recorded_digest(home: Path) -> str:
    with warehouse(home / "warehouse.duckdb", read_only=True) as con:
        return con.execute("SELECT snapshot_sha256 FROM settlement.closes WHERE period = '2026-10'").fetchall()[0][0]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def invariants(home: Path) -> dict:
    """The checks every rerun must pass, and a summary of what the warehouse holds (compared
    with an uninterrupted run's: nothing lost, nothing doubled)."""
    db = home / "warehouse.duckdb"
    con = duckdb.connect(str(db), read_only=True)
    try:
        one = lambda sql: con.execute(sql).fetchall()
        assert one("""SELECT p.period, p.platform_id FROM settlement.pools AS p
                      LEFT JOIN settlement.holder_totals AS h USING (period, platform_id)
                      GROUP BY ALL HAVING any_value(p.pool_amount) <> coalesce(sum(h.amount), 0)""") == []
        assert one("SELECT transaction_id FROM ledger.postings GROUP BY 1 HAVING sum(amount) <> 0") == []
        for path, digest in one("SELECT path, sha256 FROM settlement.statement_files UNION ALL "
                                "SELECT path, sha256 FROM settlement.period_files"):  # fmt: skip
            assert _sha(home / "statements" / path) == digest, path
        for period, path, digest in one("SELECT c.period, c.snapshot_path, c.snapshot_sha256 FROM settlement.closes AS c "
                                        "JOIN settlement.periods USING (period) WHERE status = 'closed'"):  # fmt: skip
            assert digest is not None, f"{period}: snapshot not published"
            snap = Path(path)
            assert snap.is_file() and _sha(snap) == digest, period
            assert os.stat(snap).st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH) == 0, "snapshot is writable"
        summary = {
            "periods": one("SELECT period, status, calculated_by FROM settlement.periods ORDER BY 1"),
            "ledger": one("""SELECT a.kind, p.period, count(*), sum(p.amount) FROM ledger.postings AS p
                             JOIN ledger.accounts AS a USING (account) GROUP BY ALL ORDER BY ALL"""),
            "money": one("""SELECT (SELECT count(*) || '/' || sum(pool_amount) FROM settlement.pools),
                                   (SELECT count(*) || '/' || sum(amount) FROM settlement.holder_totals),
                                   (SELECT count(*) || '/' || sum(amount) FROM settlement.statement_lines),
                                   (SELECT count(*) || '/' || sum(pool_exact) FROM settlement.generation_amounts),
                                   (SELECT count(*) || '/' || coalesce(sum(payout_amount), 0) FROM settlement.payout_instructions),
                                   (SELECT count(*) FROM settlement.approvals),
                                   (SELECT count(*) FROM settlement.closes WHERE snapshot_sha256 IS NOT NULL),
                                   (SELECT count(*) FROM settlement.settled_generations)"""),
            "reference": one("""SELECT (SELECT count(*) FROM ref.works), (SELECT count(*) FROM ref.rights_holders),
                                       (SELECT count(*) || '/' || sum(share) FROM ref.splits),
                                       (SELECT list(period || from_currency || to_currency || rate ORDER BY period, from_currency, to_currency) FROM ref.fx_rates)"""),
            "raw": one("""SELECT (SELECT count(*) FROM raw.generations), (SELECT count(*) FROM raw.quarantine),
                                 (SELECT count(*) FROM raw.ingest_windows WHERE received <> reported_count)"""),
            "statement_files": one("SELECT count(*) FROM settlement.statement_files"),
        }
    finally:
        con.close()
    leftovers = [p for p in home.rglob("*") if p.name.endswith((".partial", ".restoring", ".tmp"))]
    assert not leftovers, leftovers
    return summary


def _series(name, states, state, argv, check=invariants):
    series = kill_series(name, states[state], states["root"], argv, N, check)
    SERIES.append(series.line())
    assert series.killed_mid_run >= N * 0.7, series.line()  # the instants fell inside the command
    return series


def test_kill_calculate(states):
    _series("settle calculate", states, "seeded", ["settle", "calculate", "--period", "2026-10", "--by", "alice"])


def test_kill_approve(states):
    _series("settle approve", states, "calculated", ["settle", "approve", "--period", "2026-10", "--by", "bob"])


def test_kill_close(states):
    _series("period close", states, "approved", ["period", "close", "2026-10", "--by", "bob"])


def test_kill_snapshot(states):
    _series("period snapshot", states, "pending", ["period", "snapshot", "2026-10"])


def test_kill_statements_build(states):
    _series("statements build", states, "small", ["statements", "build", "--period", "2026-10"])


def test_kill_restore(states):
    """The live warehouse is damaged beyond opening; the closed month's snapshot goes back,
    checked against the digest noted at the close."""

    def check(home):
        summary = invariants(home)
        con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
        try:  # a kill after the swap leaves a restored warehouse that the rerun restores again
            assert con.execute("SELECT count(*) FROM settlement.restores").fetchall()[0][0] == 1
        finally:
            con.close()
        return summary

    snapshot = states["lost"] / "snapshots" / "warehouse-2026-10.duckdb"  # read-only, never changed
    _series("period restore", states, "lost", ["period", "restore", "--snapshot", str(snapshot), "--sha256", states["digest"]],
            check)  # fmt: skip


def test_kill_fx_set(states):
    _series("fx set", states, "seeded",
            ["fx", "set", "--period", "2026-11", "--from", "GBP", "--to", "USD", "--rate", "1.2705", "--source", "BoE"])  # fmt: skip


def test_kill_catalog_import(states, tmp_path_factory):
    folder = tmp_path_factory.mktemp("catalog")
    n = int(os.environ.get("TRIBUTARY_KILL_CATALOG_WORKS", "12000"))
    with (folder / "works.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["work_id", "iswc", "isrc", "title", "composer", "collection", "style", "source"])
        w.writerows([f"W{i:06d}", f"T-{i % 1000:03d}.000.000-0", f"QZAAA{i:07d}", f"Work {i}", "Anon.", "c", "bach", ""]
                    for i in range(n))  # fmt: skip
    with (folder / "holders.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["rights_holder_id", "name", "kind", "payout_currency", "min_payout"])
        w.writerows([f"RH{i:04d}", f"Holder {i}", "publisher", "USD", "10.00"] for i in range(200))
    with (folder / "splits.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["work_id", "right_type", "rights_holder_id", "share", "effective_from", "effective_to"])
        for i in range(n):
            w.writerow([f"W{i:06d}", "publishing", f"RH{i % 200:04d}", "1", "2020-01-01", ""])
            w.writerow([f"W{i:06d}", "master", f"RH{(i + 1) % 200:04d}", "0.5", "2020-01-01", ""])
            w.writerow([f"W{i:06d}", "master", f"RH{(i + 2) % 200:04d}", "0.5", "2020-01-01", ""])
    argv = ["catalog", "import", "--works", str(folder / "works.csv"), "--holders", str(folder / "holders.csv"),
            "--splits", str(folder / "splits.csv")]  # fmt: skip
    _series("catalog import", states, "empty", argv)


def test_kill_ingest_landing(states, tmp_path_factory):
    """A platform's file drop for one day of November (validated, reconciled and landed in one
    transaction; the window's Parquet file written aside and renamed)."""
    drop = tmp_path_factory.mktemp("drop")
    n = int(os.environ.get("TRIBUTARY_KILL_DROP_RECORDS", "130000"))
    start = datetime(2026, 11, 2, tzinfo=UTC)
    with (drop / "records.jsonl").open("w") as f:
        for i in range(n):
            f.write(json.dumps({"schema_version": 1, "generation_id": f"d{i:07d}", "model_version": "mv1",
                                "created_at": (start + timedelta(seconds=i % 86400)).isoformat().replace("+00:00", "Z"),
                                "style": "bach", "prompt": None, "output": {"tokens": [1, 2]}, "territory": "US",
                                "revenue": {"amount": "0.0100", "currency": "USD"}}) + "\n")  # fmt: skip
    (drop / "manifest.json").write_text(json.dumps({
        "platform_id": "p1", "start": "2026-11-02T00:00:00Z", "end": "2026-11-03T00:00:00Z", "count": n,
        "revenue": {"USD": f"{n * 0.01:.6f}"}, "schema_version": 1}))  # fmt: skip

    def check(home):
        summary = invariants(home)
        files = sorted((home / "lake").rglob("*.parquet"))
        assert len(files) == 1  # one file per window, never doubled
        con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
        try:
            recorded = con.execute("SELECT DISTINCT raw_file_sha256 FROM raw.ingest_windows").fetchall()
        finally:
            con.close()
        assert recorded == [(_sha(files[0]),)]
        return summary

    _series("ingest landing (file drop)", states, "seeded", ["ingest-drop", "p1", str(drop), "drop-run"], check)
