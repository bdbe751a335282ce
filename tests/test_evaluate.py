"""Evaluation helpers: Spearman, LDS, recall, masked retraining, removal bookkeeping."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from attribution.evaluate import (
    RemovalResult,
    SubsetLosses,
    cost_multiple,
    lds,
    recall_at_1,
    retrain_on_subsets,
    spearman,
    subset_masks,
    topk_removal,
)
from sandbox.gpt_eval import RetrainSpec, generation_losses, near_copy
from sandbox.model import GPTConfig
from sandbox.tokenizer import Tokenizer
from sandbox.train import TINY_CONFIG, fit_gpt, synthetic_pieces

TOK = Tokenizer()


def test_spearman_known_values_and_ties():
    assert spearman(np.arange(5), np.arange(5) ** 3) == pytest.approx(1.0)
    assert spearman(np.arange(5), -np.arange(5)) == pytest.approx(-1.0)
    # Ties get their mean rank: [1, 2.5, 2.5, 4] vs [1, 2, 3, 4] -> 0.9486...
    assert spearman(np.array([1, 2, 2, 3]), np.array([1, 2, 3, 4])) == pytest.approx(
        0.9486832980505138
    )
    assert spearman(np.ones(4), np.arange(4)) == 0.0


def test_lds_is_one_for_an_exact_linear_datamodel():
    rng = np.random.default_rng(0)
    n, m, g = 30, 40, 3
    true = rng.normal(size=(g, n))
    masks = rng.random((m, n)) < 0.5
    # Loss falls by exactly the scores of the examples trained on.
    losses = 100 - masks.astype(float) @ true.T
    sub = SubsetLosses(masks, losses, 0.0)
    assert lds(true, sub) == pytest.approx(1.0)
    assert lds(-true, sub) == pytest.approx(-1.0)
    assert abs(lds(rng.normal(size=(g, n)), sub)) < 0.5


def test_recall_at_1_and_shape_check():
    s = np.array([[0.1, 0.9, 0.0], [0.8, 0.1, 0.1]])
    assert recall_at_1(s, [1, 0]) == 1.0
    assert recall_at_1(s, [1, 2]) == 0.5
    with pytest.raises(ValueError):
        recall_at_1(s, [1])


def test_near_copy_changes_exactly_the_pitches_asked():
    piece = synthetic_pieces(1, seed=0)[0]
    c = near_copy(piece, np.random.default_rng(0), n_changes=2)
    diff = [i for i, (a, b) in enumerate(zip(piece, c, strict=True)) if a != b]
    assert len(c) == len(piece) and len(diff) <= 2
    assert all(TOK.vocab[c[i]].startswith("<p:") for i in diff)


def test_masked_retraining_keeps_the_batch_draws():
    """keep=all True is the plain run; dropping one example changes only its contribution."""
    torch.set_num_threads(1)
    pieces = synthetic_pieces(12, seed=2)
    cfg = GPTConfig(vocab_size=TOK.vocab_size, block_size=TOK.max_len, **TINY_CONFIG)
    plain, _ = fit_gpt(pieces, cfg, 20, 4, 3e-3, seed=0, log_every=0)
    masked, _ = fit_gpt(pieces, cfg, 20, 4, 3e-3, seed=0, log_every=0, keep=[True] * 12)
    for a, b in zip(plain.parameters(), masked.parameters(), strict=True):
        assert torch.equal(a, b)
    spec = RetrainSpec(cfg, 20, 4, 3e-3, 0)
    keep = np.ones(12, dtype=bool)
    keep[3] = False
    without = spec.fit(pieces, keep=keep)
    assert not all(
        torch.equal(a, b) for a, b in zip(plain.parameters(), without.parameters(), strict=True)
    )
    assert generation_losses(without, pieces[:2]).shape == (2,)
    with pytest.raises(ValueError, match="keep mask"):
        fit_gpt(pieces, cfg, 2, 4, 3e-3, seed=0, keep=[True])


def test_removal_result_and_cost_multiple():
    r = RemovalResult(np.array([2.0, 0.5, 3.0]), np.array([1.0, 1.0, 1.0]))
    assert r.win_rate == pytest.approx(2 / 3)
    assert r.summary()["mean_topk_rise"] == pytest.approx(11 / 6)
    assert r.summary()["mean_excess"] == pytest.approx(11 / 6 - 1)
    np.testing.assert_allclose(r.excess, [1.0, -0.5, 2.0])
    a, fb, ratio = cost_multiple(lambda: sum(range(1000)), lambda: sum(range(1000)), repeats=2)
    assert a > 0 and fb > 0 and ratio == pytest.approx(a / fb)


def test_topk_removal_shares_random_draws_and_matches_across_processes():
    """Each random draw is one retrain read by every generation and method; the process pool
    gives the same losses as one process (each worker runs one torch thread too)."""
    torch.set_num_threads(1)
    pieces = synthetic_pieces(10, seed=3)
    cfg = GPTConfig(vocab_size=TOK.vocab_size, block_size=TOK.max_len, **TINY_CONFIG)
    spec = RetrainSpec(cfg, 10, 4, 3e-3, 0)
    gens = pieces[:2]
    scores = {"a": np.arange(20.0).reshape(2, 10), "b": -np.arange(20.0).reshape(2, 10)}
    one = topk_removal(spec, pieces, gens, scores, k=2, seed=1, random_draws=3)
    assert set(one) == {"a", "b"}
    assert one["a"].random_draws.shape == (3, 2)
    np.testing.assert_array_equal(one["a"].random_rise, one["b"].random_rise)
    np.testing.assert_allclose(one["a"].random_rise, one["a"].random_draws.mean(0))
    # Removing a generation's top works is not removing its bottom ones.
    assert not np.array_equal(one["a"].topk_rise, one["b"].topk_rise)
    two = topk_removal(spec, pieces, gens, scores, k=2, seed=1, random_draws=3, jobs=2)
    for name in scores:
        np.testing.assert_array_equal(two[name].topk_rise, one[name].topk_rise)
        np.testing.assert_array_equal(two[name].random_draws, one[name].random_draws)


def test_retrain_on_subsets_in_processes_draws_the_same_subsets_and_losses():
    torch.set_num_threads(1)
    pieces = synthetic_pieces(8, seed=4)
    cfg = GPTConfig(vocab_size=TOK.vocab_size, block_size=TOK.max_len, **TINY_CONFIG)
    spec = RetrainSpec(cfg, 6, 4, 3e-3, 0)
    one = retrain_on_subsets(spec, pieces, pieces[:2], m=3, seed=2)
    two = retrain_on_subsets(spec, pieces, pieces[:2], m=3, seed=2, jobs=2)
    assert one.masks.shape == (3, 8) and (one.masks.sum(1) == 4).all()
    np.testing.assert_array_equal(one.masks, two.masks)
    np.testing.assert_array_equal(one.losses, two.losses)
    assert len({tuple(m) for m in one.masks.tolist()}) == 3  # three different halves
    # The subsets are subset_masks': another recipe (retrain seed) can retrain the same ones.
    np.testing.assert_array_equal(one.masks, subset_masks(8, 3, 0.5, seed=2))


def test_subset_masks_rows_depend_only_on_their_index_and_seed():
    # A truth built on m subsets extends to more (or is read on its first m') unchanged.
    few, more = subset_masks(30, 4, 0.5, seed=7), subset_masks(30, 9, 0.5, seed=7)
    np.testing.assert_array_equal(few, more[:4])
    assert (more.sum(1) == 15).all()
    assert not np.array_equal(subset_masks(30, 4, 0.5, seed=8), few)
    assert (subset_masks(10, 3, 0.3, seed=1).sum(1) == 3).all()
