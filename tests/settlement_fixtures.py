"""Small, hand-checkable warehouse contents for settlement tests (real DuckDB, no mocks)."""

from __future__ import annotations

import random
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pyarrow as pa

from settlement.reference import Contract, register_contract, register_platform
from settlement.warehouse import warehouse


def _insert(con, table: str, rows: list[list]) -> None:
    """Rows by position, as one Arrow batch: DuckDB's executemany goes row by row, which the
    thousands of property-test cases would spend most of their time in."""
    if not rows:
        return
    batch = pa.table({f"c{i}": pa.array([r[i] for r in rows]) for i in range(len(rows[0]))})
    con.register("seed_batch", batch)
    con.execute(f"INSERT INTO {table} SELECT * FROM seed_batch")
    con.unregister("seed_batch")


def record_ingest_windows(con, platform_id: str, *periods: str) -> None:
    """What a month's ingest leaves behind: one reconciled window covering each whole month, so
    the calculation's completeness gate (staging.ingest_gaps) finds every day delivered."""
    for period in periods:
        year, month = int(period[:4]), int(period[5:])
        start, end = datetime(year, month, 1), datetime(year + (month == 12), month % 12 + 1, 1)
        n = con.execute(
            "SELECT count(*) FROM raw.generations WHERE platform_id = ? AND created_at >= ? AND created_at < ?",
            [platform_id, start, end],
        ).fetchone()[0]
        con.execute(
            "INSERT INTO raw.ingest_windows (platform_id, window_start, window_end, ingest_run_id, received,"
            " loaded_new, already_loaded, quarantined, reported_count, reported_revenue, finished_at)"
            " VALUES (?, ?, ?, 'seed', ?, ?, 0, 0, ?, 0, now()::TIMESTAMP)",
            [platform_id, start, end, n, n, n],
        )


def seed_warehouse(
    path: Path,
    n_works: int = 6,
    n_generations: int = 20,
    n_holders: int = 3,
    seed: int = 0,
    pool_rate: str = "0.300000",
    unattributed: int = 0,
    catalog: bool = True,
) -> dict:
    """Works with publishing/master splits over a few holders, one platform with a contract,
    one model version whose manifest covers every work, generations in 2026-10 with shares.
    `catalog=False`: works W000.. and holders RH00.. are expected to be imported already."""
    rng = random.Random(seed)
    works = [f"W{i:03d}" for i in range(n_works)]
    holders = [f"RH{i:02d}" for i in range(n_holders)]
    with warehouse(path) as con:
        if catalog:
            _insert(con, "ref.works", [[w, "T-000.000.000-0", "QZAAA2600000", f"Work {w}", "c", "test", "bach", None] for w in works])
            _insert(con, "ref.rights_holders", [[h, f"Holder {h}", "publisher", "USD", Decimal(0)] for h in holders])
        splits = []
        for w in works:
            for right in ("publishing", "master"):
                owners = rng.sample(holders, k=rng.randint(1, min(2, n_holders)))
                if len(owners) == 1:
                    splits.append([w, right, owners[0], Decimal(1)])
                else:
                    first = Decimal(rng.randint(1, 999_999)) / Decimal(1_000_000)
                    splits += [[w, right, owners[0], first], [w, right, owners[1], 1 - first]]
        if catalog:
            _insert(con, "ref.splits", [[*row, date(2020, 1, 1), None] for row in splits])
        register_platform(con, "p1", "Platform One", "p1_conn")
        register_contract(con, Contract("C1", "p1", pool_rate=Decimal(pool_rate)))
        con.execute(
            "INSERT INTO ref.model_versions VALUES ('p1', 'mv1', 'x', 'y', '/nowhere', now()::TIMESTAMP)"
        )
        _insert(con, "ref.training_manifest", [["mv1", i, w, "h"] for i, w in enumerate(works + works[:2])])  # two works twice
        gens, shares = [], []
        for g in range(n_generations):
            gid = f"g{g:04d}"
            amount = Decimal(rng.randint(1, 250_000)) / Decimal(1_000_000)
            gens.append(
                ["p1", gid, "mv1", datetime(2026, 10, 1 + g % 28, 12), "bach", None, [1, 2], "US",
                 amount, "USD", datetime(2026, 10, 1), datetime(2026, 11, 1), "ingest", datetime(2026, 11, 1)]
            )  # fmt: skip
            if g < unattributed:
                continue
            picked = rng.sample(works, k=rng.randint(1, min(3, n_works)))
            left = Decimal(1)
            for rank, w in enumerate(picked, start=1):
                share = (Decimal(rng.randint(1, 10**9)) / Decimal(10**9) * left / 2).quantize(Decimal("1e-9"))
                left -= share
                shares.append(["run1", "p1", gid, w, False, share, 1.0, rank, "trak", "mv1"])
            shares.append(["run1", "p1", gid, None, True, left, None, 0, "trak", "mv1"])
        _insert(con, "raw.generations", gens)
        # ingest delivered October and the two months after it (tests settle up to December)
        record_ingest_windows(con, "p1", "2026-10", "2026-11", "2026-12")
        _insert(con, "attribution.shares", shares)
        con.execute(
            "INSERT INTO attribution.runs VALUES ('run1', 'p1', 'mv1', 'trak', '{}', ?, 0, now()::TIMESTAMP)",
            [n_generations],
        )
        for g in range(unattributed):
            con.execute(
                "INSERT INTO attribution.rejections VALUES ('run1', 'p1', ?, 'test rejection', now()::TIMESTAMP)",
                [f"g{g:04d}"],
            )
    return {"works": works, "holders": holders}


def table(path: Path, sql: str) -> pd.DataFrame:
    """Query result with DECIMALs kept as Decimal (DuckDB's .df() would turn them into floats)."""
    with warehouse(path, read_only=True) as con:
        cur = con.execute(sql)
        return pd.DataFrame(cur.fetchall(), columns=[d[0] for d in cur.description])


def register_tiny_month(con, mv, ids: list[str], gens: list, holder_of=lambda i: "RH00") -> None:
    """A tiny sandbox model version's works (each owned, both rights, by ``holder_of(i)``),
    its training manifest and October 2026 generations of platform p1 in the warehouse,
    with the ingest windows recorded: what an attribution shard of that month reads."""
    con.execute(
        "INSERT INTO ref.model_versions VALUES ('p1', ?, 'x', 'y', ?, now()::TIMESTAMP)",
        [mv.model_version, str(mv.path)],
    )
    for i, w in enumerate(ids):
        con.execute(
            "INSERT INTO ref.works VALUES (?, 'T-000.000.000-0', 'QZAAA2600000', ?, 'c', 'test',"
            " 'bach', NULL)",
            [w, w],
        )
        for right in ("publishing", "master"):
            con.execute(
                "INSERT INTO ref.splits VALUES (?, ?, ?, 1, DATE '2020-01-01', NULL)",
                [w, right, holder_of(i)],
            )
        con.execute(
            "INSERT INTO ref.training_manifest VALUES (?, ?, ?, 'h')", [mv.model_version, i, w]
        )
    for gid, toks in gens:
        con.execute(
            "INSERT INTO raw.generations VALUES ('p1', ?, ?, ?, 'bach', NULL, ?, 'US', 0.01, 'USD',"
            " ?, ?, 'ingest', now()::TIMESTAMP)",
            [gid, mv.model_version, datetime(2026, 10, 2), toks, datetime(2026, 10, 1), datetime(2026, 11, 1)],
        )  # fmt: skip
    con.execute("DELETE FROM raw.ingest_windows")
    record_ingest_windows(con, "p1", "2026-10", "2026-11", "2026-12")


def fingerprint_without(tag: str, table: str) -> str:
    """checks/period_inputs_fingerprint as it was before `table` existed: without its one item
    (``SELECT hash('<tag>', ...) FROM <table>``), i.e. how a month attributed before that
    migration was fingerprinted."""
    import re

    from settlement.warehouse import sql_text

    item = rf"SELECT hash\('{tag}'.*?FROM {re.escape(table)}.*?\n(?=\s*UNION ALL)"
    text, n = re.subn(rf"UNION ALL\n(\s*--[^\n]*\n)*\s*{item}", "",
                      sql_text("checks/period_inputs_fingerprint"), flags=re.DOTALL)  # fmt: skip
    assert n == 1, f"the fingerprint has {n} items hash('{tag}', ...) FROM {table}, not 1"
    return text


def assert_contract_refused(con, contract: Contract, message: str) -> None:
    """register_contract refuses `contract` naming it and the rule `message` (a
    regular expression), and writes nothing."""
    import pytest

    from settlement.warehouse import WarehouseError

    before = con.execute("SELECT count(*) FROM ref.contracts").fetchall()
    with pytest.raises(WarehouseError, match=f"contract {contract.contract_id} v{contract.version}: {message}"):
        register_contract(con, contract)
    assert con.execute("SELECT count(*) FROM ref.contracts").fetchall() == before
