"""Holder-level shares through a contract (issue 16, item 3): a contract names a group method,
the attribution shard computes each generation's share attributable to each holder's catalog,
the load stores it (attribution.group_shares, migration 020) in the same transaction as the
shares, and each holder's statement shows it, read from the stored rows. Bad group terms are
refused naming the contract and the rule. Quality against LOGO retraining is measured in
benchmarks/group_attribution.py, not here."""

from __future__ import annotations

import csv
import io
import shutil

import pandas as pd
import pytest
from tiny_symbolic import tiny_corpus, tiny_model_version

from sandbox.gpt_eval import near_copy
from sandbox.train import synthetic_pieces

pytestmark = pytest.mark.usefixtures("one_torch_thread")

N_HOLDERS = 6  # the tiny model's 60 works dealt round-robin: work i belongs to RH0{i % 6}
PLANTED = [7, 20, 45]  # near copies of these works: holders RH01, RH02, RH03


def _holder(work: int) -> str:
    return f"RH{work % N_HOLDERS:02d}"


def _rows(db, sql: str, params=None) -> list[tuple]:
    from settlement.warehouse import warehouse

    with warehouse(db, read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """A contract naming group-unlearning, one attribution shard through the warehouse and
    its load. The seeded warehouse's own works (W000..) are in the holders' catalogs too but
    not in the model's manifest: they form no group."""
    import numpy as np

    from settlement.attribution_runs import attribute_shard, load_attribution
    from settlement.config import Settings
    from settlement.reference import Contract, register_contract
    from settlement.warehouse import warehouse
    from tests.settlement_fixtures import register_tiny_month, seed_warehouse

    pieces, ids = tiny_corpus()
    mv = tiny_model_version(tmp_path_factory.mktemp("m"), pieces, ids)
    settings = Settings(tmp_path_factory.mktemp("groups") / "home")
    settings.catalog.mkdir(parents=True)
    pd.DataFrame({"work_id": ids, "tokens": pieces}).to_parquet(settings.catalog / "tokens.parquet")
    seed_warehouse(settings.warehouse, n_generations=2, n_holders=N_HOLDERS)
    rng = np.random.default_rng(5)
    gens = [(f"copy-{w:03d}", near_copy(pieces[w], rng)) for w in PLANTED]
    gens += [(f"held-{i}", t) for i, t in enumerate(synthetic_pieces(3, seed=12))]
    with warehouse(settings.warehouse) as con:
        register_contract(
            con,
            Contract("C1", "p1", version=2, top_k=4, shares_policy={"confidence": "none"},
                     group_method="group-unlearning", group_params={"step_size": 0.02}),
        )  # fmt: skip
        register_tiny_month(con, mv, ids, gens, holder_of=_holder)
    shard = {"platform_id": "p1", "model_version": mv.model_version, "shard": 0, "n_shards": 1}
    result = attribute_shard(settings, shard, "run-grp")
    load_attribution(settings, [result])
    return {"settings": settings, "result": result, "gens": gens, "shard": shard, "mv": mv,
            "corpus": (pieces, ids)}  # fmt: skip


def test_a_contracts_group_method_stores_holder_shares_with_the_copys_holder_on_top(loaded):
    """Every attributed generation has one row per holder whose catalog the model trained on
    (RH00..RH05; not the seeded works' catalogs alone), shares of the positive scores summing
    to 1; for each planted near copy, the holder of the copied work has the largest share.
    The lake's values are stored exactly, and a re-delivered shard adds nothing."""
    from settlement.attribution_runs import load_attribution

    db = loaded["settings"].warehouse
    sql = (
        "SELECT generation_id, rights_holder_id, CAST(share AS VARCHAR), share, score, method"
        " FROM attribution.group_shares WHERE run_id = 'run-grp'"
        " ORDER BY generation_id, rights_holder_id"
    )
    rows = _rows(db, sql)
    by_gen: dict[str, dict[str, tuple]] = {}
    for gid, holder, text, share, score, method in rows:
        assert method == "group-unlearning"
        by_gen.setdefault(gid, {})[holder] = (text, share, score)
    assert set(by_gen) == {gid for gid, _ in loaded["gens"]}
    for holders in by_gen.values():
        assert sorted(holders) == [f"RH{h:02d}" for h in range(N_HOLDERS)]
        total = sum(s for _, s, _ in holders.values())
        assert abs(total - 1) <= 1e-8 * N_HOLDERS or total == 0
    for w in PLANTED:
        holders = by_gen[f"copy-{w:03d}"]
        top = max(holders, key=lambda h: holders[h][1])
        assert top == _holder(w), (w, holders)
        assert holders[top][2] > 0
    lake = pd.read_parquet(loaded["result"]["groups_path"])
    stored = {(g, h): v[0] for g, hs in by_gen.items() for h, v in hs.items()}
    assert {(r.generation_id, r.rights_holder_id): r.share for r in lake.itertuples()} == stored
    load_attribution(loaded["settings"], [loaded["result"]])
    assert _rows(db, sql) == rows


def test_trak_sum_and_unknown_catalog_works(loaded, tmp_path):
    """The other group method (TRAK summed per holder) puts each copy's holder on top too; a
    catalog work the manifest does not list is ignored and a holder left with no trained
    work gets no row; a refused generation gets no row."""
    from attribution.pipeline import attribute_groups

    pieces, ids = loaded["corpus"]
    catalogs = {f"RH{h:02d}": [w for i, w in enumerate(ids) if i % N_HOLDERS == h] for h in range(N_HOLDERS)}
    catalogs["RH00"].append("not-trained")
    catalogs["RH99"] = ["not-trained"]
    gens = [g for g in loaded["gens"] if g[0].startswith("copy")] + [("bad", [10**6])]
    df = attribute_groups(loaded["mv"].path, gens, catalogs, tmp_path, method="trak-sum",
                          params={"curvature": "gram"}, train_items=pieces, run_id="r")  # fmt: skip
    assert sorted(set(df.rights_holder_id)) == sorted(f"RH{h:02d}" for h in range(N_HOLDERS))
    assert set(df.generation_id) == {f"copy-{w:03d}" for w in PLANTED}
    for w in PLANTED:
        rows = df[df.generation_id == f"copy-{w:03d}"]
        assert rows.loc[rows.score.idxmax(), "rights_holder_id"] == _holder(w)
        assert abs(sum(float(x) for x in rows.share) - 1) < 1e-8
    assert set(df.method) == {"trak-sum"}


def test_statements_show_the_stored_catalog_share_byte_for_byte(loaded, tmp_path):
    """After the month is calculated, each output row of a holder's per-generation CSV carries
    catalog_share: the stored attribution.group_shares value of that generation and holder,
    character for character; the PDF says where to read it and that it pays nothing."""
    from pypdf import PdfReader

    from settlement import statements
    from settlement.calculate import calculate_period

    db = tmp_path / "w.duckdb"
    shutil.copyfile(loaded["settings"].warehouse, db)
    calculate_period(db, "2026-10", run_id="calc-grp", by="alice")
    out = tmp_path / "statements"
    statements.build_statements(db, out, "2026-10")
    stored = {
        (g, h): text
        for g, h, text in _rows(
            db,
            "SELECT generation_id, rights_holder_id, CAST(share AS VARCHAR)"
            " FROM attribution.group_shares",
        )
    }
    seen = 0
    for w in PLANTED:
        holder = _holder(w)
        (csv_path,) = (out / "2026-10").rglob(f"generations_*{holder}*.csv")
        rows = list(csv.DictReader(io.StringIO(csv_path.read_bytes().decode("utf-8-sig"))))
        ours = [r for r in rows if r["royalty"] == "output" and (r["generation_id"], holder) in stored]
        assert f"copy-{w:03d}" in {r["generation_id"] for r in ours}
        for r in ours:
            assert r["catalog_share"] == stored[(r["generation_id"], holder)]
            assert r["catalog_share_method"] == "group-unlearning"
            seen += 1
        # the seeded generations (run1) have no group shares: the cell is empty
        assert all(r["catalog_share"] == "" for r in rows if r["generation_id"].startswith("g0"))
        (pdf,) = (out / "2026-10").rglob(f"statement_*{holder}*.pdf")
        text = " ".join(" ".join(p.extract_text().split()) for p in PdfReader(pdf).pages)
        assert "attributable to your catalog" in text
        assert "catalog_share column" in text and "for information" in text
    assert seen >= len(PLANTED)


def test_stored_group_shares_change_the_fingerprint_and_late_digest(loaded, tmp_path):
    """The period's input fingerprint and the late-arrival digest read the group shares: a
    month with none keeps the digest it had before 020, a changed share changes both."""
    from settlement.warehouse import sql_text, warehouse
    from tests.settlement_fixtures import fingerprint_without

    db = tmp_path / "w.duckdb"
    shutil.copyfile(loaded["settings"].warehouse, db)
    old = fingerprint_without("q", "attribution.group_shares")
    with warehouse(db) as con:

        def digest(name: str, text: str | None = None) -> str:
            text = text or sql_text(name)
            return con.execute(text.replace("$period", "'2026-10'")).fetchone()[0]

        fp, late = "checks/period_inputs_fingerprint", "checks/restatement_late_digest"
        with_groups, late_before = digest(fp), digest(late)
        assert with_groups != digest(fp, old)
        saved = con.execute("SELECT * FROM attribution.group_shares").fetchall()
        con.execute("DELETE FROM attribution.group_shares")
        assert digest(fp) == digest(fp, old)
        for row in saved:
            con.execute("INSERT INTO attribution.group_shares VALUES (?, ?, ?, ?, ?, ?, ?)", list(row))
        assert digest(fp) == with_groups and digest(late) == late_before
        con.execute(
            "UPDATE attribution.group_shares SET share = 0.5"
            " WHERE generation_id = 'copy-007' AND rights_holder_id = 'RH01'"
        )
        assert digest(fp) != with_groups
        assert digest(late) != late_before


@pytest.mark.parametrize(
    ("terms", "message"),
    [
        ({"group_method": "guesswork"}, "group_method 'guesswork' is not one of"),
        ({"group_params": {"steps": 2}}, "group_params .* given without a group_method"),
        ({"group_method": "group-unlearning", "group_params": {"step_size": -1}},
         "group_params step_size must be a number in \\(0, 1\\], not -1"),
        ({"group_method": "group-unlearning", "group_params": {"step_size": float("nan")}},
         "group_params step_size must be a number in \\(0, 1\\], not nan"),
        ({"group_method": "group-unlearning", "group_params": {"steps": 0}},
         "group_params steps must be a whole number from 1 to 10, not 0"),
        ({"group_method": "group-unlearning", "group_params": {"steps": 1.5}},
         "group_params steps must be a whole number"),
        ({"group_method": "group-unlearning", "group_params": {"common_scale": "yes"}},
         "group_params common_scale must be true or false, not 'yes'"),
        ({"group_method": "group-unlearning", "group_params": {"curvature": "gram"}},
         "group_params \\['curvature'\\] are not parameters of 'group-unlearning'"),
        ({"group_method": "trak-sum", "group_params": {"curvature": "magic"}},
         "group_params curvature must be 'kfac-gram', 'kfac' or 'gram', not 'magic'"),
        ({"group_method": "group-unlearning", "group_params": ["step_size"]},
         "group_params must be an object of parameters"),
    ],
)  # fmt: skip
def test_bad_group_terms_are_refused_naming_the_contract_and_the_rule(tmp_path, terms, message):
    """A contract whose group method or parameters a run would reject or misuse is refused when
    registered (WarehouseError: the CLI's user error, exit 2), naming the contract and the
    rule; nothing is written."""
    from settlement.reference import Contract, register_contract
    from settlement.warehouse import warehouse
    from tests.settlement_fixtures import assert_contract_refused, seed_warehouse

    db = tmp_path / "w.duckdb"
    seed_warehouse(db, n_generations=2)
    with warehouse(db) as con:
        assert_contract_refused(con, Contract("C9", "p1", **terms), message)
        register_contract(con, Contract("C9", "p1", group_method="trak-sum",
                                        group_params={"curvature": "gram"}))  # fmt: skip
        stored = con.execute(
            "SELECT group_method, group_params_json FROM ref.contracts WHERE contract_id = 'C9'"
        ).fetchall()
    assert stored == [("trak-sum", '{"curvature": "gram"}')]


def test_a_contract_edited_in_the_warehouse_is_checked_again_by_the_run(loaded, tmp_path):
    """A contract row changed behind register_contract's back is refused by the attribution
    shard with the same message, before any scoring."""
    from settlement.attribution_runs import attribute_shard
    from settlement.config import Settings
    from settlement.warehouse import WarehouseError, warehouse

    home = tmp_path / "home"
    shutil.copytree(loaded["settings"].home, home)
    settings = Settings(home)
    with warehouse(settings.warehouse) as con:
        con.execute("UPDATE ref.contracts SET group_params_json = '{\"steps\": 99}' WHERE contract_id = 'C1'")
    with pytest.raises(WarehouseError, match="contract C1 v2: group_params steps must be a whole"):
        attribute_shard(settings, loaded["shard"], "run-bad")


def _load_and_die(home: str, results: list[dict], die_after: int | None, die_in_s: float | None):
    """Child process: load the shard, SIGKILLing itself right after its die_after-th SQL file
    (inside the load's transaction), or die_in_s seconds after it starts."""
    import os
    import signal
    import threading
    from pathlib import Path

    from settlement import attribution_runs
    from settlement.config import Settings

    real, done = attribution_runs.run_sql, [0]

    def run_sql(con, name, params=None):
        out = real(con, name, params)
        done[0] += 1
        if done[0] == die_after:
            os.kill(os.getpid(), signal.SIGKILL)
        return out

    attribution_runs.run_sql = run_sql
    if die_in_s is not None:
        threading.Timer(die_in_s, os.kill, (os.getpid(), signal.SIGKILL)).start()
    attribution_runs.load_attribution(Settings(Path(home)), results)


def test_the_load_killed_at_any_instant_then_rerun_stores_each_group_share_once(loaded, tmp_path):
    """kill -9 of the load (right after each of its SQL files, and at timed instants), then a
    rerun: the shares, rule decisions and group shares are exactly those of an uninterrupted
    load, none missing, none doubled; a kill leaves no group share without its shares."""
    import multiprocessing

    from settlement.attribution_runs import load_attribution
    from settlement.config import Settings
    from settlement.warehouse import warehouse

    tables = {
        "attribution.group_shares": "SELECT * FROM attribution.group_shares",
        "attribution.shares": "SELECT * FROM attribution.shares",
        "attribution.share_rules": "SELECT * FROM attribution.share_rules",
        "attribution.runs": "SELECT run_id, platform_id, n_generations FROM attribution.runs",
    }
    want = {t: sorted(_rows(loaded["settings"].warehouse, q), key=str) for t, q in tables.items()}
    assert want["attribution.group_shares"]
    ctx = multiprocessing.get_context("fork")  # the child only loads: no torch after the fork
    instants = [(n, None) for n in range(1, 5)] + [(None, s) for s in (0.02, 0.05, 0.1, 0.2)]
    for i, (die_after, die_in_s) in enumerate(instants):
        home = tmp_path / f"h{i}"
        shutil.copytree(loaded["settings"].home, home)
        with warehouse(home / "warehouse.duckdb") as con:  # back to before the load
            for t in ("group_shares", "shares", "share_rules", "runs"):
                con.execute(f"DELETE FROM attribution.{t} WHERE run_id = 'run-grp'")
        p = ctx.Process(target=_load_and_die, args=(str(home), [loaded["result"]], die_after, die_in_s))
        p.start()
        p.join(120)
        assert p.exitcode in (-9, 0), p.exitcode
        db = home / "warehouse.duckdb"
        grouped = {g for (g,) in _rows(db, "SELECT DISTINCT generation_id FROM attribution.group_shares")}
        shared = {g for (g,) in _rows(db, "SELECT DISTINCT generation_id FROM attribution.shares")}
        assert grouped <= shared, (die_after, die_in_s)
        load_attribution(Settings(home), [loaded["result"]])
        got = {t: sorted(_rows(db, q), key=str) for t, q in tables.items()}
        assert got == want, (die_after, die_in_s)
