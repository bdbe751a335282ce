"""The months the crash-safety tests (tests/test_crash_safety_*.py) kill commands in, and the
checks every rerun must pass.

Each stage of the month (seeded, calculated, approved, closed...) is a TRIBUTARY_HOME folder
prepared once per test process through the real CLI, on first use, and shared by every file of
that process (each kill works on a copy). Under pytest-xdist each worker prepares the stages
its files need.

Knobs (environment variables; the defaults are what CI runs):
- TRIBUTARY_KILL_INSTANTS (20): kills per command, at D x (i + 0.5) / N of an uninterrupted
  run's duration D (issue 13 asks for at least 20);
- TRIBUTARY_KILL_GENERATIONS (120000): the month `settle calculate`, `period close` and
  `period snapshot` work on (and the warehouse `fx set` and the ingest landing write to);
- TRIBUTARY_KILL_STATEMENT_GENERATIONS (400) and TRIBUTARY_KILL_STATEMENT_HOLDERS (5): the
  smaller month `statements build` and `period restore` work on (a PDF per holder and a
  per-generation CSV row per generation and work are what they spend their time on).
The sizes make each of those commands cost 1.1-1.5 CPU seconds (measured: docs/BENCHMARKS.md,
"Crash safety"), so that each runs a little over a second on an idle 2-core machine as issue
13 asks, and no more: every kill pays a copy of the month, part of a run and a full rerun."""

from __future__ import annotations

import hashlib
import os
import stat
from decimal import Decimal
from pathlib import Path

import duckdb
from killing import fresh, kill_series, rmtree, run, run_killed_after
from settlement_fixtures import record_ingest_windows

from settlement.reference import Contract, register_contract, register_platform
from settlement.warehouse import warehouse

N = int(os.environ.get("TRIBUTARY_KILL_INSTANTS", "20"))
GENERATIONS = int(os.environ.get("TRIBUTARY_KILL_GENERATIONS", "120000"))
STATEMENT_GENERATIONS = int(os.environ.get("TRIBUTARY_KILL_STATEMENT_GENERATIONS", "400"))
STATEMENT_HOLDERS = int(os.environ.get("TRIBUTARY_KILL_STATEMENT_HOLDERS", "5"))
WORKS, TOP_K = 300, 3
PERIOD = "2026-10"
CALCULATE = ["settle", "calculate", "--period", PERIOD, "--by", "alice"]
APPROVE = ["settle", "approve", "--period", PERIOD, "--by", "bob"]
CLOSE = ["period", "close", PERIOD, "--by", "bob"]
BUILD = ["statements", "build", "--period", PERIOD]


def seed(db: Path, generations: int, holders: int) -> None:
    """A month of `generations` generations of one platform over 300 works and `holders`
    holders (one paid in EUR, one with a payout threshold), a quarter of the revenue in EUR,
    three attributed works and a residual per generation."""
    with warehouse(db) as con:
        con.execute(f"""INSERT INTO ref.works SELECT 'W' || lpad(CAST(i AS VARCHAR), 5, '0'), 'T-000.000.000-0',
            'QZAAA2600000', 'Work ' || i, 'Anon.', 'test', 'bach', NULL FROM range({WORKS}) t(i)""")
        con.execute(f"""INSERT INTO ref.rights_holders SELECT 'RH' || lpad(CAST(i AS VARCHAR), 3, '0'),
            'Holder ' || i, 'publisher', CASE WHEN i = 1 THEN 'EUR' ELSE 'USD' END, CASE WHEN i = 2 THEN 1000000 ELSE 0 END
            FROM range({holders}) t(i)""")
        con.execute(f"""INSERT INTO ref.splits
            SELECT 'W' || lpad(CAST(i AS VARCHAR), 5, '0'), 'publishing', 'RH' || lpad(CAST(i % {holders} AS VARCHAR), 3, '0'),
                   1, DATE '2020-01-01', NULL FROM range({WORKS}) t(i)
            UNION ALL
            SELECT 'W' || lpad(CAST(i AS VARCHAR), 5, '0'), 'master', 'RH' || lpad(CAST((i * 7 + 1) % {holders} AS VARCHAR), 3, '0'),
                   CASE WHEN i % 3 = 0 THEN 0.6 ELSE 1 END, DATE '2020-01-01', NULL FROM range({WORKS}) t(i)
            UNION ALL
            SELECT 'W' || lpad(CAST(i AS VARCHAR), 5, '0'), 'master', 'RH' || lpad(CAST((i * 7 + 2) % {holders} AS VARCHAR), 3, '0'),
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
            FROM range({generations}) t(i)""")
        # Three distinct works per generation: attribution.shares holds one row per generation
        # and work (migration 001), and the per-generation detail's tie-break relies on it.
        con.execute(f"""INSERT INTO attribution.shares
            SELECT 'run1', 'p1', 'g' || lpad(CAST(i AS VARCHAR), 7, '0'),
                   'W' || lpad(CAST((hash(i) % {WORKS} + k * 101) % {WORKS} AS VARCHAR), 5, '0'),
                   false, 0.25, 1.0, k + 1, 'trak', 'mv1'
            FROM range({generations}) t(i), range({TOP_K}) s(k)
            UNION ALL
            SELECT 'run1', 'p1', 'g' || lpad(CAST(i AS VARCHAR), 7, '0'), NULL, true, 0.25, NULL, 0, 'trak', 'mv1'
            FROM range({generations}) t(i)""")
        con.execute(f"INSERT INTO attribution.runs VALUES ('run1', 'p1', 'mv1', 'trak', '{{}}', {generations}, 0, now()::TIMESTAMP)")
        con.execute("INSERT INTO ref.fx_rates VALUES ('2026-10', 'EUR', 'USD', 1.0842, 'ECB'), "
                    "('2026-10', 'USD', 'EUR', 0.92233, 'ECB')")
        record_ingest_windows(con, "p1", "2026-10")  # the month's ingest was complete
        con.execute("CHECKPOINT")


class Stages:
    """TRIBUTARY_HOME folders at each stage of the month under `root`, each prepared on first
    use (`stages["approved"]`) from the stage before it (the `kill_stages` fixture of
    tests/conftest.py: one per test process)."""

    def __init__(self, root: Path):
        self.root = root
        self._built: dict[str, Path] = {}
        self._expected: dict[tuple, dict] = {}

    def __getitem__(self, name: str) -> Path:
        if name not in self._built:
            self._built[name] = getattr(self, f"_{name}")(self.root / name)
        return self._built[name]

    def expected(self, state: str, argv: list[str], check) -> dict:
        """What `check` says of an uninterrupted run of `argv` from `state` (once per process)."""
        key = (state, tuple(argv), check.__qualname__)
        if key not in self._expected:
            home = fresh(self[state], self.root / "reference")
            run(home, argv)
            self._expected[key] = check(home)
            rmtree(home)
        return self._expected[key]

    def digest(self) -> str:
        """The digest recorded at the close of the small month (for `period restore --sha256`)."""
        with warehouse(self["final"] / "warehouse.duckdb", read_only=True) as con:
            return con.execute("SELECT snapshot_sha256 FROM settlement.closes WHERE period = ?", [PERIOD]).fetchall()[0][0]

    def _empty(self, home: Path) -> Path:
        home.mkdir()
        with warehouse(home / "warehouse.duckdb"):
            pass
        return home

    def _seeded(self, home: Path) -> Path:
        home.mkdir()
        seed(home / "warehouse.duckdb", GENERATIONS, holders=14)
        return home

    def _then(self, before: str, home: Path, *argvs: list[str]) -> Path:
        fresh(self[before], home)
        for argv in argvs:
            run(home, argv)
        return home

    def _calculated(self, home: Path) -> Path:
        return self._then("seeded", home, CALCULATE)

    def _approved(self, home: Path) -> Path:
        return self._then("calculated", home, APPROVE)

    def _closed(self, home: Path) -> Path:
        return self._then("approved", home, CLOSE)

    def _pending(self, home: Path) -> Path:
        """A close killed after its first step: closed, the snapshot not yet published."""
        fresh(self["closed"], home)
        with warehouse(home / "warehouse.duckdb") as con:
            con.execute("UPDATE settlement.closes SET snapshot_sha256 = NULL")
        rmtree(home / "snapshots")
        return home

    def _small(self, home: Path) -> Path:
        """The smaller month, calculated, approved, its statements built, closed."""
        home.mkdir()
        seed(home / "warehouse.duckdb", STATEMENT_GENERATIONS, holders=STATEMENT_HOLDERS)
        for argv in (CALCULATE, APPROVE, BUILD, CLOSE):
            run(home, argv)
        return home

    def _final(self, home: Path) -> Path:
        """The small month after its final statements."""
        return self._then("small", home, BUILD)

    def _lost(self, home: Path) -> Path:
        """The final month whose live warehouse is damaged beyond opening."""
        fresh(self["final"], home)
        (home / "warehouse.duckdb").write_bytes(b"\x00" * 4096)
        return home


def sha(path: Path) -> str:
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
            assert sha(home / "statements" / path) == digest, path
        for period, path, digest in one("SELECT c.period, c.snapshot_path, c.snapshot_sha256 FROM settlement.closes AS c "
                                        "JOIN settlement.periods USING (period) WHERE status = 'closed'"):  # fmt: skip
            assert digest is not None, f"{period}: snapshot not published"
            snap = Path(path)
            assert snap.is_file() and sha(snap) == digest, period
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
                                       (SELECT count(*) || '/' || sum(share) || '/' || count(effective_to) FROM ref.splits),
                                       (SELECT list(platform_id ORDER BY platform_id) FROM ref.platforms),
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


def series(name: str, stages: Stages, state: str, argv: list[str], work: Path, check=invariants):
    """`kill_series` from a prepared stage: N kills at evenly spread instants, each rerun."""
    result = kill_series(name, stages[state], work, argv, N, check)
    print(result.line())
    assert result.killed_mid_run >= N * 0.7, result.line()  # the instants fell inside the command
    return result


def killed_after(stages: Stages, state: str, argv: list[str], target: str, work: Path, check=invariants) -> None:
    """The command killed right after `target` ("module:function") returns, then run again:
    the rerun ends where an uninterrupted run ends."""
    expected = stages.expected(state, argv, check)
    home = fresh(stages[state], work / "killed")
    run_killed_after(home, argv, target)
    run(home, argv)
    assert check(home) == expected
