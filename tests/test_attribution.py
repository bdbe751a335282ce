"""Attribution: planted copies are found, shares are exact, runs are reproducible.

Loss reduction (sum vs mean of token NLL per example) was compared on this setup and on a
harder one (200 works, 10 planted near-copies and 10 half-length copies): both ranked every
planted work first; margins over the runner-up were within a few percent of each other
(near-copies: sum 8.3x vs mean 7.8x on average). The adapter keeps "sum" as default.
"""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
import torch

from attribution.adapter import ModelAdapter, SandboxGPTAdapter
from attribution.pipeline import SHARE_COLUMNS, attribute_generations
from attribution.shares import scores_to_shares
from attribution.trak import TRAKAttributor
from sandbox.model import GPTConfig
from sandbox.tokenizer import Tokenizer
from sandbox.train import TINY_CONFIG, load_model_version, synthetic_pieces, train_model_version

TOK = Tokenizer()
N_WORKS = 60
PLANTED = [3, 17, 29, 41, 55]


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Tiny models gain nothing from intra-op threads, and on a busy 2-core machine a second
    thread made training ~10x slower (measured). Restored so other modules are unaffected."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def corpus() -> tuple[list[list[int]], list[str]]:
    pieces = synthetic_pieces(N_WORKS, seed=1)
    return pieces, [f"work-{i:03d}" for i in range(N_WORKS)]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, corpus) -> Path:
    pieces, ids = corpus
    cfg = GPTConfig(vocab_size=TOK.vocab_size, block_size=TOK.max_len, **TINY_CONFIG)
    return train_model_version(
        pieces,
        ids,
        tmp_path_factory.mktemp("models"),
        cfg,
        steps=300,
        batch_size=16,
        lr=3e-3,
        seed=0,
    )


def _near_copy(tokens: list[int], rng: np.random.Generator) -> list[int]:
    """The same piece with two pitch tokens changed: what a memorising model might emit."""
    out = list(tokens)
    pitch_ids = [i for i, t in enumerate(out) if TOK.vocab[t].startswith("<p:")]
    for j in rng.choice(pitch_ids, 2, replace=False):
        out[j] = TOK.index[f"<p:{int(rng.integers(40, 90))}>"]
    return out


@pytest.fixture(scope="module")
def generations(corpus) -> list[tuple[str, list[int]]]:
    pieces, _ = corpus
    rng = np.random.default_rng(7)
    return [(f"gen-{w}", _near_copy(pieces[w], rng)) for w in PLANTED]


@pytest.fixture(scope="module")
def run(model_dir, generations, tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    bad = [
        ("gen-no-bos", [TOK.style_id("bach"), 30, 70, TOK.eos]),
        ("gen-out-of-vocab", [TOK.bos, TOK.style_id("bach"), 9999, TOK.eos]),
        ("gen-empty", []),
        (generations[0][0], generations[0][1]),  # same id twice: the second is rejected
    ]
    shares, rejected = attribute_generations(
        model_dir, generations + bad, cache, top_k=8, seed=0, run_id="run-1"
    )
    return shares, rejected, cache


def test_planted_copies_get_the_largest_share(run, corpus):
    shares, _, _ = run
    _, ids = corpus
    for w in PLANTED:
        rows = shares[(shares.generation_id == f"gen-{w}") & ~shares.is_residual]
        top = rows.sort_values("rank").iloc[0]
        assert top.work_id == ids[w], rows[["work_id", "share", "score"]].head(3)
        assert top["rank"] == 1
        runner_up = Decimal(rows.sort_values("rank").iloc[1].share)
        assert Decimal(top.share) > 2 * runner_up


def test_shares_sum_to_exactly_one_with_explicit_residual(run):
    shares, _, _ = run
    assert list(shares.columns) == SHARE_COLUMNS
    for gid, rows in shares.groupby("generation_id"):
        assert sum(Decimal(s) for s in rows.share) == Decimal(1), gid
        assert rows.is_residual.sum() == 1
        res = rows[rows.is_residual].iloc[0]
        assert res.work_id is None and res["rank"] == 0 and np.isnan(res.score)
        assert all(len(s.split(".")[1]) == 9 for s in rows.share)
        assert sorted(rows[~rows.is_residual]["rank"]) == list(range(1, len(rows)))
        assert len(rows) <= 8 + 1
    assert set(shares.method) == {"trak"} and set(shares.run_id) == {"run-1"}
    assert shares.model_version.nunique() == 1
    assert shares.model_version.iloc[0].startswith("sbx-gpt-")
    assert (run[2] / shares.model_version.iloc[0]).is_dir()  # features cached per version
    assert '"k_in": 8' in shares.params_json.iloc[0]


def test_bad_generations_are_rejected_with_a_reason(run):
    shares, rejected, _ = run
    assert list(rejected.columns) == ["generation_id", "reason"]
    reasons = dict(zip(rejected.generation_id, rejected.reason, strict=True))
    assert set(reasons) == {"gen-no-bos", "gen-out-of-vocab", "gen-empty", "gen-3"}
    assert "<bos>" in reasons["gen-no-bos"]
    assert "9999" in reasons["gen-out-of-vocab"]
    assert "empty" in reasons["gen-empty"]
    assert "duplicate" in reasons["gen-3"]
    assert not shares.generation_id.isin(["gen-no-bos", "gen-out-of-vocab", "gen-empty"]).any()
    assert shares[shares.generation_id == "gen-3"].is_residual.sum() == 1  # first one kept


def test_same_seed_identical_shares_and_cache_reused(run, model_dir, generations, tmp_path, caplog):
    shares, _, cache = run
    with caplog.at_level("INFO", logger="attribution"):
        cached, _ = attribute_generations(model_dir, generations, cache, seed=0, run_id="run-1")
    assert "3 of 3 checkpoints from cache" in caplog.text
    fresh, _ = attribute_generations(model_dir, generations, tmp_path, seed=0, run_id="run-1")
    cols = ["generation_id", "work_id", "share", "rank"]
    assert cached[cols].equals(shares[cols])
    assert fresh[cols].equals(shares[cols])
    np.testing.assert_allclose(fresh.score, shares.score, rtol=1e-5)


def test_features_equal_projected_full_gradient(model_dir, corpus):
    """The structured projection equals P_out G P_in^T of the materialised gradient G."""
    pieces, _ = corpus
    adapter = SandboxGPTAdapter(load_model_version(model_dir))
    assert isinstance(adapter, ModelAdapter)
    attributor = TRAKAttributor(adapter, k_in=4, k_out=3, seed=5)
    batch = [pieces[0], pieces[1]]
    phi = attributor.features(batch)
    modules = adapter.attributed_modules()
    expected = []
    for one in batch:
        adapter.model.zero_grad()
        adapter.per_example_loss([one]).sum().backward()
        for m, (p_in, p_out) in zip(modules, attributor._proj, strict=True):
            g = m.weight.grad
            if m.bias is not None:
                g = torch.cat([g, m.bias.grad[:, None]], dim=1)
            expected.append((p_out @ g @ p_in.T).reshape(-1))
    expected = torch.cat(expected).reshape(2, -1)
    torch.testing.assert_close(phi, expected, rtol=1e-3, atol=1e-5)


def test_scores_to_shares_rules():
    ids = ["b", "a", "c", "a", "d"]
    rows = scores_to_shares(np.array([1.0, 1.0, -5.0, 1.0, 1.0]), ids, top_k=2)
    # "a" appears twice and is summed; "b" beats "d" on the tie by work id; "c" is negative.
    assert rows == [("a", Decimal("0.5")), ("b", Decimal("0.25")), (None, Decimal("0.25"))]
    assert scores_to_shares(np.array([-1.0, 0.0]), ["x", "y"]) == [(None, Decimal(1))]
    thirds = scores_to_shares(np.ones(3), ["x", "y", "z"])
    assert [s for _, s in thirds] == [Decimal("0.333333333")] * 3 + [Decimal("0.000000001")]
    assert sum(s for _, s in thirds) == Decimal(1)
    with pytest.raises(ValueError):
        scores_to_shares(np.array([np.nan]), ["x"])


def test_attribution_never_imports_airflow():
    code = (
        "import sys, attribution.pipeline, attribution.trak, attribution.shares;"
        "bad=[m for m in sys.modules if m.split('.')[0]=='airflow'];"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])


def test_chunked_disk_cache_matches_in_memory(model_dir, corpus, generations, tmp_path):
    pieces, _ = corpus
    mv = load_model_version(model_dir)
    targets = [ids for _, ids in generations[:2]]
    in_memory = TRAKAttributor(SandboxGPTAdapter(mv), seed=3)
    in_memory.cache(pieces)
    on_disk = TRAKAttributor(SandboxGPTAdapter(mv), seed=3, cache_dir=tmp_path, chunk_size=7)
    on_disk.cache(pieces)
    assert len(list(tmp_path.rglob("phi-*.npy"))) == 3 * -(-len(pieces) // 7)
    reused = TRAKAttributor(SandboxGPTAdapter(mv), seed=3, cache_dir=tmp_path, chunk_size=7)
    reused.cache(pieces)
    assert reused.cache_hits == 3
    expected = in_memory.attribute(targets)
    # Other chunking means other batches and padding widths: float noise, not a difference.
    atol = 1e-3 * float(np.abs(expected).max())
    np.testing.assert_allclose(on_disk.attribute(targets), expected, rtol=0, atol=atol)
    np.testing.assert_array_equal(reused.attribute(targets), on_disk.attribute(targets))
