"""Shares policy, unlearning and similarity attribution, streaming top-k, resumable caches."""

from __future__ import annotations

import json
from decimal import Decimal

import numpy as np
import pytest
import torch
from tiny_symbolic import tiny_corpus, tiny_model_version

from attribution.evaluate import recall_at_1
from attribution.pipeline import attribute_generations, make_attributor
from attribution.scoring import StreamingTopK, blockwise_topk
from attribution.shares import ScoreSummary, SharesPolicy, policy_shares
from attribution.similarity import HiddenStateEmbedder, SimilarityAttributor, SymbolicEmbedder
from attribution.trak import TRAKAttributor
from attribution.unlearning import UnlearningAttributor
from sandbox.gpt_adapter import SandboxGPTAdapter
from sandbox.gpt_eval import near_copy
from sandbox.tokenizer import Tokenizer

TOK = Tokenizer()
N_WORKS = 60
PLANTED = [3, 17, 29, 41, 55]


# Tiny models: one intra-op thread for the whole module (conftest.one_torch_thread).
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def corpus():
    return tiny_corpus(N_WORKS)


@pytest.fixture(scope="module")
def mv(tmp_path_factory, corpus):
    return tiny_model_version(tmp_path_factory.mktemp("m"), *corpus)


@pytest.fixture(scope="module")
def copies(corpus):
    pieces, _ = corpus
    rng = np.random.default_rng(7)
    return [near_copy(pieces[w], rng) for w in PLANTED]


# -- shares policy -------------------------------------------------------------------------


def test_policy_gives_a_dominant_copy_most_of_the_output_share():
    scores = np.r_[50.0, np.random.default_rng(0).normal(0, 1, 99)]
    ids = [f"w{i:03d}" for i in range(100)]
    rows, conf, fallback = policy_shares(scores, ids, SharesPolicy(output_share=0.8, top_k=5))
    assert not fallback and conf > 4
    assert rows[0][0] == "w000" and rows[0][1] > Decimal("0.65")
    assert rows[-1][0] is None and rows[-1][1] >= Decimal("0.2")  # training share kept
    assert sum(s for _, s, _ in rows) == Decimal(1)
    assert len(rows) == 5 + 1


def test_policy_falls_back_to_pro_rata_when_not_confident():
    flat = np.random.default_rng(1).normal(0, 1, 100)
    ids = [f"w{i}" for i in range(100)]
    rows, conf, fallback = policy_shares(flat, ids, SharesPolicy(min_confidence=10.0))
    assert fallback and conf < 10 and rows == [(None, Decimal(1), rows[0][2])]
    rows, _, fallback = policy_shares(flat, ids, SharesPolicy(confidence="none"))
    assert not fallback and sum(s for _, s, _ in rows) == Decimal(1)
    # No positive score at all: nothing to follow, everything pro rata.
    rows, _, fallback = policy_shares(-np.ones(3), ["a", "b", "c"], SharesPolicy(confidence="none"))
    assert fallback and len(rows) == 1


def test_policy_rules_margin_mass_min_share_and_ties():
    ids = ["b", "a", "c", "a", "d"]
    s = np.array([1.0, 1.0, -5.0, 1.0, 1.0])
    rows, _, _ = policy_shares(s, ids, SharesPolicy(top_k=2, confidence="none"))
    # "a" twice is summed (2); "b" beats "d" on the tie by work id; normalised over top-2.
    assert [(w, sh) for w, sh, _ in rows] == [
        ("a", Decimal("0.666666666")),
        ("b", Decimal("0.333333333")),
        (None, Decimal("0.000000001")),
    ]
    rows, conf, fb = policy_shares(s, ids, SharesPolicy(confidence="margin", min_confidence=3))
    assert conf == pytest.approx(2.0) and fb
    rows, conf, fb = policy_shares(
        s, ids, SharesPolicy(top_k=1, confidence="mass", min_confidence=0.4)
    )
    assert conf == pytest.approx(0.5) and not fb
    # min_share drops the small ones and renormalises the rest.
    s2 = np.array([10.0, 1.0, 0.5])
    rows, _, _ = policy_shares(s2, ["x", "y", "z"], SharesPolicy(confidence="none", min_share=0.05))
    assert [w for w, _, _ in rows] == ["x", "y", None]
    assert rows[0][1] == Decimal("0.909090909")


def test_policy_validation_and_round_trip():
    for bad in (
        {"output_share": 1.5},
        {"top_k": -1},
        {"min_share": -0.1},
        {"confidence": "vibes"},
    ):
        with pytest.raises(ValueError):
            SharesPolicy(**bad)
    with pytest.raises(ValueError, match="unknown SharesPolicy fields"):
        SharesPolicy.from_dict({"outputshare": 0.5})
    p = SharesPolicy(output_share=0.7, top_k=3)
    assert SharesPolicy.from_dict(json.loads(p.to_json())) == p
    with pytest.raises(ValueError, match="work ids"):
        policy_shares(np.ones(3), ["a"], p)
    with pytest.raises(ValueError, match="NaN"):
        policy_shares(np.array([np.nan, 1.0]), ["a", "b"], p)


# -- streaming top-k -----------------------------------------------------------------------


def test_blockwise_topk_matches_full_matrix():
    g = torch.Generator().manual_seed(0)
    q, phi = torch.randn(37, 16, generator=g), torch.randn(1000, 16, generator=g)
    state, n = blockwise_topk(q, (phi[s : s + 97] for s in range(0, 1000, 97)), k=10, query_block=8)
    full = (q @ phi.T).double().numpy()
    assert n == 1000
    for r, summ in enumerate(state.summaries(n)):
        exp = ScoreSummary.from_scores(full[r], keep=10)
        np.testing.assert_array_equal(summ.top_idx, exp.top_idx)
        np.testing.assert_allclose(summ.top_scores, exp.top_scores, rtol=1e-5)
        assert summ.mean == pytest.approx(exp.mean, abs=1e-4)
        assert summ.std == pytest.approx(exp.std, rel=1e-4)
        assert summ.pos_sum == pytest.approx(exp.pos_sum, rel=1e-4)


def test_streaming_topk_smaller_catalog_than_k():
    st = StreamingTopK(2, k=8)
    st.update(torch.tensor([[1.0, 3.0, 2.0], [0.0, -1.0, 5.0]]), 0)
    s = st.summaries(3)
    assert s[0].top_idx.tolist() == [1, 2, 0] and s[1].top_idx.tolist() == [2, 0, 1]
    with pytest.raises(ValueError):
        StreamingTopK(1, 0)


def test_trak_topk_equals_full_scores(mv, corpus, copies, tmp_path):
    pieces, _ = corpus
    att = TRAKAttributor(SandboxGPTAdapter(mv), seed=3, cache_dir=tmp_path, chunk_size=16)
    att.cache(pieces)
    full = att.attribute(copies)
    for r, summ in enumerate(att.attribute_topk(copies, k=5)):
        np.testing.assert_array_equal(summ.top_idx, np.argsort(-full[r], kind="stable")[:5])


# -- resumable featurisation ----------------------------------------------------------------


def test_interrupted_featurisation_resumes_with_identical_features(mv, corpus, tmp_path):
    pieces, _ = corpus
    whole = TRAKAttributor(SandboxGPTAdapter(mv), seed=1, cache_dir=tmp_path / "a", chunk_size=8)
    whole.cache(pieces)

    broken = TRAKAttributor(SandboxGPTAdapter(mv), seed=1, cache_dir=tmp_path / "b", chunk_size=8)
    real = broken._features_all
    calls = {"n": 0}

    def dies_on_the_fifth_chunk(tokens, checkpoint, factors=None):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt("simulated kill")
        return real(tokens, checkpoint, factors)

    broken._features_all = dies_on_the_fifth_chunk
    with pytest.raises(KeyboardInterrupt):
        broken.cache(pieces)
    assert not list((tmp_path / "b").rglob("done.json"))
    assert not list((tmp_path / "b").rglob("*.tmp*"))  # no half-written chunk left
    resumed = TRAKAttributor(SandboxGPTAdapter(mv), seed=1, cache_dir=tmp_path / "b", chunk_size=8)
    resumed.cache(pieces)
    assert resumed.chunks_reused == 4  # the four chunks done before the kill
    for a, b in zip(whole._ckpts, resumed._ckpts, strict=True):
        for ca, cb in zip(a.chunks + a.scored, b.chunks + b.scored, strict=True):
            np.testing.assert_array_equal(np.load(ca), np.load(cb))
        for ca, cb in zip(a.chunks, b.chunks, strict=True):  # K-FAC factors, chunk by chunk
            fa, fb = np.load(whole._factors_path(ca)), np.load(resumed._factors_path(cb))
            for key in fa.files:
                np.testing.assert_array_equal(fa[key], fb[key])

    # A finished cache that lost a factor file recomputes that chunk only, same features.
    lost = resumed._ckpts[0].chunks[1]
    resumed._factors_path(lost).unlink()
    again = TRAKAttributor(SandboxGPTAdapter(mv), seed=1, cache_dir=tmp_path / "b", chunk_size=8)
    again.cache(pieces)
    assert again.cache_hits == len(mv.checkpoints) - 1
    assert resumed._factors_path(lost).exists()
    for ca, cb in zip(whole._ckpts[0].chunks, again._ckpts[0].chunks, strict=True):
        np.testing.assert_array_equal(np.load(ca), np.load(cb))
    fa = np.load(whole._factors_path(whole._ckpts[0].chunks[1]))
    fb = np.load(again._factors_path(lost))
    for key in fa.files:
        np.testing.assert_array_equal(fa[key], fb[key])


# -- unlearning and similarity ---------------------------------------------------------------


def test_unlearning_finds_planted_copies(mv, corpus, copies, tmp_path):
    pieces, _ = corpus
    att = UnlearningAttributor(SandboxGPTAdapter(mv), cache_dir=tmp_path)
    att.cache(pieces)
    before = [p.clone() for p in att._params()]
    scores = att.attribute(copies)
    assert recall_at_1(scores, PLANTED) == 1.0
    for p, b in zip(att._params(), before, strict=True):  # weights restored after each target
        assert torch.equal(p, b)
    top = att.attribute_topk(copies[:2], k=3)
    assert [int(s.top_idx[0]) for s in top] == PLANTED[:2]
    again = UnlearningAttributor(SandboxGPTAdapter(mv), cache_dir=tmp_path)
    again.cache(pieces)
    assert again.cache_hits == 1
    np.testing.assert_array_equal(again.attribute(copies[:1]), scores[:1])


@pytest.mark.parametrize("kind", ["symbolic", "hidden"])
def test_similarity_finds_planted_copies_and_transpositions(kind, mv, corpus, copies, tmp_path):
    pieces, _ = corpus
    emb = SymbolicEmbedder(TOK.vocab) if kind == "symbolic" else HiddenStateEmbedder(SandboxGPTAdapter(mv))
    att = SimilarityAttributor(emb, chunk_size=16, cache_dir=tmp_path)
    att.cache(pieces)
    scores = att.attribute(copies)
    assert recall_at_1(scores, PLANTED) == 1.0
    assert np.all(scores <= 1.0 + 1e-5)
    assert [int(s.top_idx[0]) for s in att.attribute_topk(copies, k=4)] == PLANTED
    if kind == "symbolic":
        # A copy moved up a whole tone keeps its intervals: still found.
        up = [
            TOK.index[f"<p:{int(TOK.vocab[t][3:-1]) + 2}>"]
            if TOK.vocab[t].startswith("<p:") and int(TOK.vocab[t][3:-1]) < 94
            else t
            for t in pieces[PLANTED[0]]
        ]
        assert int(np.argmax(att.attribute([up])[0])) == PLANTED[0]


def test_similarity_needs_an_embed_method():
    with pytest.raises(TypeError, match="embed"):
        HiddenStateEmbedder(object())


def test_attribute_before_cache_and_empty_targets_are_clear_errors(mv):
    for att in (
        TRAKAttributor(SandboxGPTAdapter(mv)),
        UnlearningAttributor(SandboxGPTAdapter(mv)),
        SimilarityAttributor(SymbolicEmbedder(TOK.vocab)),
    ):
        with pytest.raises(RuntimeError, match="cache"):
            att.attribute([[TOK.bos, TOK.eos]])
        with pytest.raises(ValueError, match="no training"):
            att.cache([])


# -- pipeline ---------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["unlearning", "similarity"])
def test_pipeline_selects_method_and_records_policy(method, mv, copies, tmp_path):
    gens = [(f"g{i}", c) for i, c in enumerate(copies[:3])]
    policy = {
        "output_share": 0.6,
        "top_k": 3,
        "min_share": 0.0,
        "confidence": "zscore",
        "min_confidence": 3.0,
        "alpha": 0.01,  # used by confidence "pvalue" only; recorded with every policy
    }
    shares, rejected = attribute_generations(
        mv.path, gens, tmp_path, policy=policy, method=method, run_id="r", seed=0
    )
    assert rejected.empty and set(shares.method) == {method}
    params = json.loads(shares.params_json.iloc[0])
    assert params["policy"] == policy
    for i, (gid, rows) in enumerate(shares.groupby("generation_id", sort=True)):
        assert sum(Decimal(s) for s in rows.share) == Decimal(1)
        top = rows[rows["rank"] == 1]
        assert not rows.fallback.iloc[0], rows
        assert top.work_id.iloc[0] == f"work-{PLANTED[i]:03d}"
        assert Decimal(rows[rows.is_residual].share.iloc[0]) >= Decimal("0.4")
    again, _ = attribute_generations(
        mv.path, gens, tmp_path, policy=policy, method=method, run_id="r", seed=0
    )
    assert again[["generation_id", "work_id", "share"]].equals(
        shares[["generation_id", "work_id", "share"]]
    )


def test_adapter_method_defaults_fill_what_the_contract_leaves_out(mv):
    adapter = SandboxGPTAdapter(mv)
    engine = make_attributor("trak", adapter)
    adapter.method_defaults = {"trak": {"curvature": "gram", "damping": 250.0, "nope": 1}}
    tuned = make_attributor("trak", adapter)
    assert (engine.curvature, engine.damping) == ("kfac-gram", 10.0)
    assert (tuned.curvature, tuned.damping) == ("gram", 250.0)
    # the contract's own parameter wins over the adapter's; the rest still comes from it
    contract = make_attributor("trak", adapter, damping=3.0)
    assert (contract.curvature, contract.damping) == ("gram", 3.0)
    # another method's defaults are not read
    assert make_attributor("unlearning", adapter).params() == make_attributor(
        "unlearning", SandboxGPTAdapter(mv)
    ).params()


def test_pipeline_rejects_unknown_method(mv, copies, tmp_path):
    with pytest.raises(ValueError, match="unknown attribution method"):
        attribute_generations(mv.path, [("g", copies[0])], tmp_path, method="vibes")


def test_trak_copy_now_gets_most_of_the_output_share(mv, copies, tmp_path):
    """The default policy normalises over the top-k: the copy is paid, not drowned in residual."""
    shares, _ = attribute_generations(mv.path, [("g", copies[0])], tmp_path, seed=0)
    top = shares[shares["rank"] == 1].iloc[0]
    assert top.work_id == f"work-{PLANTED[0]:03d}"
    assert Decimal(top.share) > Decimal("0.5"), shares[["work_id", "share", "score"]]


def test_model_version_without_manifest_is_a_clear_error(mv, copies, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(mv.path, broken)
    (broken / "manifest.parquet").unlink()
    with pytest.raises(FileNotFoundError, match="no manifest.parquet"):
        attribute_generations(broken, [("g", copies[0])], tmp_path / "c")


@pytest.mark.parametrize("method", ["trak", "unlearning", "similarity"])
def test_generations_with_no_or_one_note_are_attributed_not_crashed(method, mv, tmp_path):
    """Valid but nearly empty output (a model may emit <eos> at once): every method scores
    it, so one such generation never fails the shard it is in."""
    style = TOK.style_id("bach")
    gens = [
        ("no-notes", [TOK.bos, style, TOK.eos]),
        ("one-note", [TOK.bos, style, TOK.index["<p:60>"], TOK.index["<d:1>"], TOK.eos]),
    ]
    shares, rejected = attribute_generations(mv.path, gens, tmp_path, method=method, seed=0)
    assert rejected.empty
    for gid, rows in shares.groupby("generation_id"):
        assert sum(Decimal(s) for s in rows.share) == Decimal(1), gid
