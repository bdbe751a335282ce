"""Robust matching (issue 16 item 2): a generation is also scored as its transformed versions
(transposed +-1..6 semitones, tempo +-20 %), so transformed copies of a training work are paid
to that work, while the null, scored through the same search, keeps ordinary generations
paid at about alpha."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tiny_symbolic import tiny_corpus, tiny_model_version

from attribution.calibration import NULL_FILE_PREFIX
from attribution.pipeline import attribute_generations
from attribution.shares import SharesPolicy
from attribution.versions import expand_catalog
from sandbox.gpt_adapter import SandboxGPTAdapter
from sandbox.gpt_eval import sample_generations
from sandbox.tokenizer import PITCH_HIGH, PITCH_LOW, Tokenizer
from sandbox.transforms import (
    TEMPO_CHANGES,
    TRANSPOSITIONS,
    change_tempo,
    transpose,
    variants,
)

TOK = Tokenizer()
ALPHA = 0.05
N_NULL, N_ORDINARY, N_COPIES = 100, 40, 16
VARIANTS = 39  # every version: fewer miss some copies (docs/BENCHMARKS.md, "Robust matching")
CATALOG = "catalog"  # the run with shares_policy catalog_versions: true

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _pitches(ids):
    return [int(TOK.vocab[i][3:-1]) for i in ids if TOK.vocab[i].startswith("<p:")]


def test_a_transposition_or_tempo_change_is_undone_by_one_of_the_variants():
    pieces, _ = tiny_corpus(12)
    for piece in pieces:
        found = variants(piece, TOK)
        assert found[0] == piece and len({tuple(v) for v in found}) == len(found)
        assert len(found) <= 39
        for s in TRANSPOSITIONS:
            copy = transpose(piece, s, TOK)
            inside = all(PITCH_LOW <= p + s <= PITCH_HIGH for p in _pitches(piece))
            if inside:  # no octave folding: transposing back restores the piece exactly
                assert _pitches(copy) == [p + s for p in _pitches(piece)]
                assert piece in variants(copy, TOK)
        for f in TEMPO_CHANGES:
            copy = change_tempo(piece, f, TOK)
            undone = change_tempo(copy, 1 / f, TOK)
            # snapping to the vocabulary's durations is lossy (undoing 1.2 turns an unchanged
            # 1.0 into 0.75), so the copy itself stays a candidate next to its undoing
            assert undone in variants(copy, TOK) and copy == variants(copy, TOK)[0]


def test_variants_is_a_policy_setting_checked_like_the_others():
    assert "variants" not in SharesPolicy().to_dict()  # recorded policies of before read the same
    assert SharesPolicy(variants=4).to_dict()["variants"] == 4
    for bad, err in [(-1, ValueError), ("4", TypeError), (True, TypeError), (2.5, TypeError)]:
        with pytest.raises(err, match="variants must be"):
            SharesPolicy(variants=bad)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    pieces, ids = tiny_corpus()
    mv = tiny_model_version(tmp_path_factory.mktemp("m"), pieces, ids)
    model = mv.load_model()
    trained = set(map(tuple, pieces))
    null = [t for t in sample_generations(model, N_NULL, seed=1000) if tuple(t) not in trained]
    rng = np.random.default_rng(0)
    gens, sources = [], {}
    for j, w in enumerate(rng.choice(len(pieces), size=N_COPIES, replace=False)):
        copy = transpose(pieces[int(w)], int(rng.choice(TRANSPOSITIONS)), TOK)
        if j % 2:
            copy = change_tempo(copy, float(rng.choice(TEMPO_CHANGES)), TOK)
        gid = f"copy-{j:02d}"
        gens.append((gid, copy))
        sources[gid] = ids[int(w)]
    ordinary = sample_generations(model, N_ORDINARY, seed=3000)
    gens += [(f"gen-{i:03d}", t) for i, t in enumerate(ordinary) if tuple(t) not in trained]
    cache = tmp_path_factory.mktemp("cache")
    out = {}
    runs = {0: {"variants": 0}, VARIANTS: {"variants": VARIANTS}, CATALOG: {"catalog_versions": True}}
    for name, search in runs.items():
        policy = {"confidence": "pvalue", "alpha": ALPHA, "top_k": 4, **search}
        shares, rejected = attribute_generations(
            mv.path, gens, cache, policy=policy, seed=0, run_id=f"v{name}", null_items=null
        )
        assert rejected.empty
        out[name] = shares
    return {"mv": mv, "out": out, "sources": sources, "cache": cache}


def _outcome(shares, sources):
    first = shares.sort_values("rank").groupby("generation_id").first()
    top = shares[shares["rank"] == 1].set_index("generation_id")["work_id"]
    copies = [g for g in sources]
    found = np.mean([top.get(g) == sources[g] for g in copies])
    paid_right = np.mean([top.get(g) == sources[g] and not first.loc[g, "fallback"] for g in copies])
    wrong = sum(1 for g in copies if not first.loc[g, "fallback"] and top.get(g) != sources[g])
    ordinary = first[~first.index.isin(copies)]
    return found, paid_right, wrong, float((~ordinary["fallback"]).mean())


def test_transformed_copies_are_paid_to_their_work_with_robust_matching(setup):
    """Transposed (and half of them also tempo-changed) copies: the generation alone finds
    few of them; with every version scored (and the p-value rule's two tests), nearly all are
    found and paid to their own work, none confidently to another."""
    plain = _outcome(setup["out"][0], setup["sources"])
    for search in (VARIANTS, CATALOG):
        robust = _outcome(setup["out"][search], setup["sources"])
        assert robust[0] >= 0.9 and robust[1] >= 0.9, (search, robust)
        assert robust[2] == 0, (search, robust)
        assert plain[0] < robust[0], (search, plain, robust)


def test_the_search_does_not_make_ordinary_generations_confident(setup):
    """The null goes through the same search, so the model's ordinary samples are paid by
    attribution at about alpha (at most 2 alpha, with a margin for 60 draws), and it is
    cached apart from the plain null."""
    for search in (VARIANTS, CATALOG):
        _, _, _, paid = _outcome(setup["out"][search], setup["sources"])
        assert paid <= 2 * ALPHA + 0.05, (search, paid)
    nulls = list((setup["cache"] / setup["mv"].model_version).glob(f"{NULL_FILE_PREFIX}*.npy"))
    assert len(nulls) == 3  # the plain null (shared by every run) and one per search


def test_catalog_versions_are_the_transformations_of_a_work_and_map_back_to_it(setup):
    """Each training work's columns: itself, then its 38 transposed / tempo-changed versions
    (no duplicates, never itself again), all owned by that work; the run records how many
    columns it scored, and its shares name only manifest works."""
    mv = setup["mv"]
    adapter = SandboxGPTAdapter(mv)
    pieces, ids = tiny_corpus()
    expanded, owner = expand_catalog(adapter, pieces[:5])
    assert len(expanded) == len(owner) and set(owner.tolist()) == set(range(5))
    for i, piece in enumerate(pieces[:5]):
        mine = [tuple(v) for v, o in zip(expanded, owner, strict=True) if o == i]
        assert mine[0] == tuple(piece) and len(set(mine)) == len(mine) <= 39
        for s in TRANSPOSITIONS:
            assert tuple(transpose(piece, s, TOK)) in mine or transpose(piece, s, TOK) == piece
        for f in TEMPO_CHANGES:
            copy = change_tempo(piece, f, TOK)
            assert tuple(copy) in mine or copy == piece
    shares = setup["out"][CATALOG]
    assert set(shares["work_id"].dropna()) <= set(ids)
    params = json.loads(shares["params_json"].iloc[0])
    assert params["policy"]["catalog_versions"] is True
    assert params["catalog_versions"]["columns"] > 30 * len(ids)


def test_catalog_versions_are_refused_where_they_cannot_mean_anything():
    assert "catalog_versions" not in SharesPolicy(confidence="pvalue").to_dict()
    assert SharesPolicy(confidence="pvalue", catalog_versions=True).to_dict()["catalog_versions"]
    with pytest.raises(TypeError, match="catalog_versions must be true or false"):
        SharesPolicy(confidence="pvalue", catalog_versions=1)
    with pytest.raises(ValueError, match='catalog_versions needs confidence "pvalue"'):
        SharesPolicy(catalog_versions=True)  # a fixed z threshold over 39 x n columns

    class NoVersions:
        name = "no-versions"

    with pytest.raises(ValueError, match="has no catalog_versions"):
        expand_catalog(NoVersions(), [[1, 2, 3]])
