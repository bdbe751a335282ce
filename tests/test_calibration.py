"""Calibrated confidence: the "pvalue" rule pays about alpha of the generations that copy
nothing, pays exact copies, and flows from a contract's alpha into the stored shares."""

from __future__ import annotations

import json
import math
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from tiny_symbolic import tiny_corpus, tiny_model_version

from attribution.calibration import NULL_FILE_PREFIX, NullDistribution
from attribution.pipeline import attribute_generations
from attribution.shares import ScoreSummary, SharesPolicy, policy_shares
from sandbox.gpt_eval import sample_generations
from sandbox.tokenizer import Tokenizer
from sandbox.train import (
    store_null_pieces,
    synthetic_pieces,
)

TOK = Tokenizer()
N_WORKS = 60
PLANTED = [3, 17, 29, 41, 55]
N_NULL = 400  # p-values down to 1/401: enough for alpha 0.01
N_ORDINARY = 300
ALPHA = 0.05


# Tiny models: one intra-op thread for the whole module (conftest.one_torch_thread).
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def corpus():
    return tiny_corpus(N_WORKS)


@pytest.fixture(scope="module")
def mv(tmp_path_factory, corpus):
    return tiny_model_version(tmp_path_factory.mktemp("m"), *corpus)


@pytest.fixture(scope="module")
def null_pieces():
    # Held-out pieces of the same kind as the catalog that the model never trained on.
    return synthetic_pieces(N_NULL, seed=11)


@pytest.fixture(scope="module")
def run(mv, corpus, null_pieces, tmp_path_factory):
    """One pipeline run: ordinary held-out pieces and exact copies, a held-out null."""
    pieces, _ = corpus
    gens = [(f"held-{i:03d}", t) for i, t in enumerate(synthetic_pieces(N_ORDINARY, seed=12))]
    gens += [(f"copy-{w:03d}", pieces[w]) for w in PLANTED]
    cache = tmp_path_factory.mktemp("cache")
    policy = {"confidence": "pvalue", "alpha": ALPHA, "top_k": 8}
    shares, rejected = attribute_generations(
        mv.path, gens, cache, policy=policy, seed=0, run_id="cal", null_items=null_pieces
    )
    assert rejected.empty, rejected
    per_gen = shares.groupby("generation_id").first()
    return shares, per_gen, cache, gens, policy


# -- the arithmetic ---------------------------------------------------------------------------


def test_p_value_counts_null_pieces_at_least_as_extreme():
    null = NullDistribution(np.array([3.0, 1.0, 2.0, 2.0]), "k")
    assert [null.p_value(z) for z in (0.5, 2.0, 2.5, 3.0, 9.0)] == [1.0, 4 / 5, 2 / 5, 2 / 5, 1 / 5]
    assert null.p_value(math.nan) == 1.0 and null.p_value(math.inf) == null.min_p == 1 / 5
    null.check_alpha(0.2)
    with pytest.raises(ValueError, match="null set has 4 pieces.*needs at least 99"):
        null.check_alpha(0.01)
    with pytest.raises(ValueError, match="at least one"):
        NullDistribution(np.array([]), "k")
    with pytest.raises(ValueError, match="NaN"):
        NullDistribution(np.array([1.0, math.nan]), "k")


def test_pvalue_rule_pays_only_below_alpha_and_needs_a_null():
    scores = np.array([9.0, 1.0, 0.5, 0.2, 0.1, 0.0])  # top z ~ 2.2
    ids = list("abcdef")
    z = (9.0 - scores.mean()) / scores.std()
    null = NullDistribution(np.linspace(0, 4, 99), "k")  # p(z) = (1 + #>= z) / 100
    p = null.p_value(z)
    rows, conf, fallback = policy_shares(
        scores, ids, SharesPolicy(confidence="pvalue", alpha=p), null
    )
    assert conf == pytest.approx(z) and not fallback and rows[0][0] == "a"
    rows, _, fallback = policy_shares(
        scores, ids, SharesPolicy(confidence="pvalue", alpha=p * 0.99), null
    )
    assert fallback and rows == [(None, Decimal(1), rows[0][2])]
    with pytest.raises(ValueError, match="needs a null distribution"):
        policy_shares(ScoreSummary.from_scores(scores), ids, SharesPolicy(confidence="pvalue"))


@pytest.mark.parametrize(
    ("alpha", "message"),
    [(0, r"alpha must be in \(0, 1\)"), (1, r"alpha must be in \(0, 1\)"), (-0.1, r"\(0, 1\)"),
     (math.nan, r"\(0, 1\)"), ("0.05", "alpha must be a number"), (True, "alpha must be a number")],
)  # fmt: skip
def test_alpha_must_be_a_significance_level(alpha, message):
    with pytest.raises((ValueError, TypeError), match=message):
        SharesPolicy(confidence="pvalue", alpha=alpha)


# -- on a small model -------------------------------------------------------------------------


def test_ordinary_pieces_are_paid_at_about_alpha_copies_always(run):
    """Held-out pieces are exchangeable with the null pieces, so the fraction with p <= alpha
    is alpha up to sampling noise (300 pieces, fixed seeds: 15 expected; 2 sd ~ 7.5)."""
    _, per_gen, _, _, _ = run
    held = per_gen[per_gen.index.str.startswith("held-")]
    paid = (held.p_value <= ALPHA).mean()
    assert ALPHA / 2 <= paid <= 2 * ALPHA, held.p_value.describe()
    copies = per_gen[per_gen.index.str.startswith("copy-")]
    assert (copies.p_value < 0.01).all(), copies[["confidence", "p_value"]]


def test_a_null_of_the_models_own_samples_calibrates_its_generations(mv, corpus, tmp_path):
    """The null must be drawn like the generations it judges. Held-out pieces are not the
    model's samples (at alpha 0.05 they paid 14-16 % of samples at 50 works and under 1 % from
    800 works: docs/BENCHMARKS.md); the model's own samples of another seed are, and
    exact copies still stand out of them."""
    pieces, _ = corpus
    model = mv.load_model()
    gens = [(f"sample-{i:03d}", t) for i, t in enumerate(sample_generations(model, 300, seed=5))]
    gens += [(f"copy-{w:03d}", pieces[w]) for w in PLANTED]
    shares, _ = attribute_generations(
        mv.path, gens, tmp_path, seed=0, policy={"confidence": "pvalue", "alpha": ALPHA},
        null_items=sample_generations(model, N_NULL, seed=6),
    )  # fmt: skip
    per_gen = shares.groupby("generation_id").first()
    samples = per_gen[per_gen.index.str.startswith("sample-")]
    assert ALPHA / 2 <= (samples.p_value <= ALPHA).mean() <= 2 * ALPHA, samples.p_value.describe()
    assert (per_gen[per_gen.index.str.startswith("copy-")].p_value < 0.01).all()


@pytest.mark.parametrize("method", ["similarity", "unlearning"])
def test_the_pvalue_rule_works_with_every_method(method, mv, corpus, tmp_path):
    """The null is scored by the contract's own method: its z scale is the method's."""
    pieces, _ = corpus
    model = mv.load_model()
    gens = [(f"copy-{w:03d}", pieces[w]) for w in PLANTED[:2]]
    gens += [("sample", sample_generations(model, 1, seed=5)[0])]
    shares, _ = attribute_generations(
        mv.path, gens, tmp_path, seed=0, method=method,
        policy={"confidence": "pvalue", "alpha": 0.05},
        method_params={"steps": 1, "fisher_samples": 8} if method == "unlearning" else {},
        null_items=sample_generations(model, 40, seed=6),
    )  # fmt: skip
    per_gen = shares.groupby("generation_id").first()
    assert json.loads(shares.params_json.iloc[0])["null"]["n"] == 40
    assert (per_gen.loc[["copy-003", "copy-017"]].p_value <= 1 / 41).all(), per_gen
    assert (per_gen.fallback == (per_gen.p_value > 0.05)).all()


def test_fallback_follows_p_value_and_copies_are_paid_their_work(run):
    shares, per_gen, _, _, _ = run
    assert (per_gen.fallback == (per_gen.p_value > ALPHA)).all()
    assert np.isfinite(per_gen.p_value).all() and np.isfinite(per_gen.confidence).all()
    for w in PLANTED:
        rows = shares[shares.generation_id == f"copy-{w:03d}"]
        top = rows[rows["rank"] == 1].iloc[0]
        assert top.work_id == f"work-{w:03d}" and Decimal(top.share) > Decimal("0.5"), rows
    for _, rows in shares.groupby("generation_id"):
        assert sum(Decimal(s) for s in rows.share) == Decimal(1)
    params = json.loads(shares.params_json.iloc[0])
    assert params["policy"]["confidence"] == "pvalue" and params["policy"]["alpha"] == ALPHA
    assert params["null"]["n"] == N_NULL


def test_old_z_rule_pays_ordinary_pieces_the_p_value_rule_does_not(run):
    """The same top z values: with z >= 5 (the product default) more of the ordinary held-out
    pieces are paid than alpha allows, at only 60 works."""
    _, per_gen, _, _, _ = run
    held = per_gen[per_gen.index.str.startswith("held-")]
    assert (held.confidence >= 5.0).mean() > (held.p_value <= ALPHA).mean()


def test_null_is_cached_by_content_and_reused(run, mv, null_pieces):
    shares, _, cache, gens, policy = run
    files = sorted((cache / mv.model_version).glob(f"{NULL_FILE_PREFIX}*.npy"))
    assert len(files) == 1
    stamp = files[0].stat().st_mtime_ns
    again, _ = attribute_generations(
        mv.path, gens[:20], cache, policy=policy, seed=0, run_id="cal", null_items=null_pieces
    )
    assert files[0].stat().st_mtime_ns == stamp
    first = shares.groupby("generation_id").first().p_value
    assert (
        again.groupby("generation_id")
        .first()
        .p_value.equals(first.loc[sorted(g for g, _ in gens[:20])])
    )
    # Another null set (or damping, catalog, model) is another null, never the cached one.
    attribute_generations(
        mv.path, gens[:2], cache, policy=policy, seed=0, damping=3.0, null_items=null_pieces
    )
    assert len(list((cache / mv.model_version).glob(f"{NULL_FILE_PREFIX}*.npy"))) == 2


def test_null_pieces_are_checked(mv, corpus, null_pieces, tmp_path):
    pieces, _ = corpus
    gens = [("g", pieces[0])]
    policy = {"confidence": "pvalue", "alpha": ALPHA}
    with pytest.raises(ValueError, match="null piece 2 cannot be used: it is a training work"):
        attribute_generations(
            mv.path, gens, tmp_path, policy=policy, null_items=[*null_pieces[:2], pieces[7]]
        )
    with pytest.raises(ValueError, match="null piece 1 cannot be used: .*bos"):
        attribute_generations(
            mv.path, gens, tmp_path, policy=policy, null_items=[null_pieces[0], [5, 6]]
        )
    with pytest.raises(ValueError, match="null set has 10 pieces.*alpha 0.05.*needs at least 19"):
        attribute_generations(mv.path, gens, tmp_path, policy=policy, null_items=null_pieces[:10])
    with pytest.raises(FileNotFoundError, match="null_tokens.parquet not found"):
        attribute_generations(mv.path, gens, tmp_path, policy=policy)


def test_sandbox_training_stores_the_models_own_samples_as_its_null(corpus, tmp_path):
    from sandbox.gpt_adapter import load
    from sandbox.train import main

    pieces, ids = corpus
    pd.DataFrame({"work_id": ids, "tokens": pieces}).to_parquet(tmp_path / "tokens.parquet")
    tiny = ["--n-layer", "1", "--n-head", "2", "--n-embd", "32", "--steps", "20"]
    main(["--tokens", str(tmp_path / "tokens.parquet"), "--out", str(tmp_path / "m"), *tiny,
          "--null-samples", "30"])  # fmt: skip
    (mv_dir,) = [p for p in (tmp_path / "m").iterdir() if not p.name.startswith(".")]
    null = load(mv_dir).null_items()
    assert 0 < len(null) <= 30 and all(t[0] == TOK.bos for t in null)
    with pytest.raises(ValueError, match="null piece 1 is a training work"):
        store_null_pieces(mv_dir, [null[0], pieces[4]])
    assert load(mv_dir).null_items() == null  # the refused call left the stored set alone


# -- through a contract into the warehouse ----------------------------------------------------


@pytest.fixture(scope="module")
def loaded(mv, corpus, null_pieces, tmp_path_factory):
    """A contract with confidence "pvalue" and alpha 0.01, one attribution shard through the
    warehouse (attribute_shard reads the policy from the warehouse, the adapter serves the null
    pieces stored with the model version) and load_attribution. The seeded warehouse's own
    generations (run1) stand for generations attributed before share rules were stored."""

    from settlement.attribution_runs import attribute_shard, load_attribution
    from settlement.config import Settings
    from settlement.reference import Contract, register_contract
    from settlement.warehouse import warehouse
    from tests.settlement_fixtures import register_tiny_month, seed_warehouse

    pieces, ids = corpus
    settings = Settings(tmp_path_factory.mktemp("contract") / "home")
    settings.catalog.mkdir(parents=True)
    pd.DataFrame({"work_id": ids, "tokens": pieces}).to_parquet(settings.catalog / "tokens.parquet")
    store_null_pieces(mv.path, null_pieces)
    seed_warehouse(settings.warehouse, n_generations=2)
    gens = [(f"copy-{w:03d}", pieces[w]) for w in PLANTED[:3]]
    gens += [(f"held-{i}", t) for i, t in enumerate(synthetic_pieces(12, seed=12))]
    with warehouse(settings.warehouse) as con:
        register_contract(
            con,
            Contract(
                "C1",
                "p1",
                version=2,
                top_k=4,
                shares_policy={"confidence": "pvalue", "alpha": 0.01},
            ),
        )
        # the tiny model's works in the catalog, each owned by RH00, and its manifest
        register_tiny_month(con, mv, ids, gens)
    shard = {"platform_id": "p1", "model_version": mv.model_version, "shard": 0, "n_shards": 1}
    result = attribute_shard(settings, shard, "run-cal")
    lake = pd.read_parquet(result["shares_path"]).groupby("generation_id").first()
    load_attribution(settings, [result])
    return {"settings": settings, "result": result, "lake": lake, "gens": gens}


def test_contract_alpha_flows_into_the_stored_shares(loaded):
    """The loaded shares pay copies by attribution and the others pro rata."""
    from settlement.warehouse import warehouse

    lake, result = loaded["lake"], loaded["result"]
    assert (lake.fallback == (lake.p_value > 0.01)).all()
    assert json.loads(result["params_json"])["policy"]["alpha"] == 0.01
    with warehouse(loaded["settings"].warehouse) as con:
        paid = dict(
            con.execute(
                "SELECT generation_id, work_id FROM attribution.shares WHERE run_id = 'run-cal'"
                " AND rank = 1"
            ).fetchall()
        )
        stored = con.execute(
            "SELECT params_json FROM attribution.runs WHERE run_id = 'run-cal'"
        ).fetchone()[0]
    assert {f"copy-{w:03d}": f"work-{w:03d}" for w in PLANTED[:3]}.items() <= paid.items()
    assert set(paid) == set(lake.index[~lake.fallback])
    assert json.loads(stored)["policy"]["confidence"] == "pvalue"


def _rows(db, sql: str, params=None) -> list[tuple]:
    from settlement.warehouse import warehouse

    with warehouse(db, read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def test_the_warehouse_stores_which_rule_decided_each_generation(loaded):
    """attribution.share_rules holds, per generation of the run, the rule, alpha, the top z,
    its p-value and whether attribution or the fallback paid it: the lake's numbers, one row
    per generation, and a re-delivered shard adds nothing."""
    from settlement.attribution_runs import load_attribution

    db, lake = loaded["settings"].warehouse, loaded["lake"]
    sql = (
        "SELECT generation_id, rule, alpha, min_confidence, confidence, p_value, paid_by"
        " FROM attribution.share_rules WHERE run_id = 'run-cal' ORDER BY generation_id"
    )
    rows = _rows(db, sql)
    assert [r[0] for r in rows] == sorted(gid for gid, _ in loaded["gens"])
    for gid, rule, alpha, min_conf, conf, p, paid_by in rows:
        assert (rule, alpha, min_conf) == ("pvalue", 0.01, None)
        assert conf == pytest.approx(lake.loc[gid, "confidence"])
        assert p == pytest.approx(lake.loc[gid, "p_value"]) and 0 < p <= 1
        assert paid_by == ("fallback" if lake.loc[gid, "fallback"] else "attribution")
        assert (paid_by == "attribution") == (p <= 0.01)
    assert {r[0] for r in rows if r[6] == "attribution"} >= {f"copy-{w:03d}" for w in PLANTED[:3]}
    assert {r[6] for r in rows} == {"attribution", "fallback"}  # both kinds, or the test says little
    # the seeded generations (run1) were attributed before rules were stored: no row
    assert _rows(db, "SELECT count(*) FROM attribution.share_rules WHERE run_id = 'run1'") == [(0,)]
    load_attribution(loaded["settings"], [loaded["result"]])
    assert _rows(db, sql) == rows


def test_stored_rules_change_the_fingerprint_only_where_they_exist(loaded, tmp_path):
    """A month whose generations have no stored rule (attributed before 015_share_rule) keeps
    the fingerprint the check gave before the table existed; a changed decision (another
    p-value, another paid_by) changes it, and the late-arrival digest too."""
    import shutil

    from settlement.warehouse import sql_text, warehouse
    from tests.settlement_fixtures import fingerprint_without

    db = tmp_path / "w.duckdb"
    shutil.copyfile(loaded["settings"].warehouse, db)
    # the check as it was before 015_share_rule: without the item that reads the rules
    old = fingerprint_without("d", "attribution.share_rules")
    with warehouse(db) as con:

        def fingerprint(text: str | None = None) -> str:
            text = text or sql_text("checks/period_inputs_fingerprint")
            return con.execute(text.replace("$period", "'2026-10'")).fetchone()[0]

        with_rules = fingerprint()
        assert with_rules != fingerprint(old)  # the rules of run-cal are read
        saved = con.execute("SELECT * FROM attribution.share_rules").fetchall()
        con.execute("DELETE FROM attribution.share_rules")
        assert fingerprint() == fingerprint(old)  # no rules stored: the digest is unchanged
        for row in saved:
            con.execute(
                "INSERT INTO attribution.share_rules VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", list(row)
            )
        assert fingerprint() == with_rules
        con.execute(
            "UPDATE attribution.share_rules SET p_value = 0.5, paid_by = 'fallback'"
            " WHERE generation_id = 'copy-003'"
        )
        assert fingerprint() != with_rules
        # the late digest reads them for late generations the same way
        con.execute(
            "CREATE OR REPLACE TEMP TABLE late_before AS "
            + sql_text("checks/restatement_late_digest").replace("$period", "'2026-10'")
        )
        before = con.execute("SELECT digest FROM late_before").fetchone()[0]
        con.execute("UPDATE attribution.share_rules SET p_value = 0.25 WHERE generation_id = 'copy-003'")
        after = con.execute(
            sql_text("checks/restatement_late_digest").replace("$period", "'2026-10'")
        ).fetchone()[0]
        assert after != before


def test_statements_say_which_rule_paid_each_generation(loaded, tmp_path):
    """After the month is calculated, each per-generation line of the holder's CSV names the
    rule that paid the generation and its statistic, as stored ("paid by attribution (p =
    0.0025 <= alpha 0.01)"); a generation attributed before rules were stored says nothing;
    the PDF says how many generations each rule paid and how many fell back."""
    import csv
    import io
    import shutil

    from pypdf import PdfReader

    from settlement import statements
    from settlement.calculate import calculate_period

    db = tmp_path / "w.duckdb"
    shutil.copyfile(loaded["settings"].warehouse, db)
    calculate_period(db, "2026-10", run_id="calc-rule", by="alice")
    out = tmp_path / "statements"
    statements.build_statements(db, out, "2026-10")
    stored = {
        gid: (p, paid_by)
        for gid, p, paid_by in _rows(
            db, "SELECT generation_id, p_value, paid_by FROM attribution.share_rules"
        )
    }
    (csv_path,) = (out / "2026-10").rglob("generations_*RH00*.csv")
    rows = list(csv.DictReader(io.StringIO(csv_path.read_bytes().decode("utf-8-sig"))))
    ours = [r for r in rows if r["royalty"] == "output" and r["generation_id"] in stored]
    assert {r["generation_id"] for r in ours} >= {f"copy-{w:03d}" for w in PLANTED[:3]}
    for r in ours:
        p, paid_by = stored[r["generation_id"]]
        assert paid_by == "attribution"  # only generations paid by attribution have output lines
        assert r["paid_by"].startswith("paid by attribution (p = ")
        assert r["paid_by"].endswith(" <= alpha 0.01)")
        assert float(r["paid_by"].split("p = ")[1].split(" ")[0]) == pytest.approx(p, rel=0.01)
        assert (r["share_rule"], float(r["alpha"]), float(r["p_value"])) == ("pvalue", 0.01, p)
    older = [r for r in rows if r["royalty"] == "output" and r["generation_id"] not in stored]
    assert all(r["paid_by"] == "" for r in older)
    (pdf,) = (out / "2026-10").rglob("statement_*RH00*.pdf")
    text = " ".join(" ".join(page.extract_text().split()) for page in PdfReader(pdf).pages)
    n_paid = sum(1 for _, paid_by in stored.values() if paid_by == "attribution")
    assert "Which rule paid each generation" in text
    assert f"{n_paid} were paid by attribution and {len(stored) - n_paid} fell back" in text
    assert "p <= 0.01" in text
