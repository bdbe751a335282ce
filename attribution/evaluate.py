"""Measure attribution quality the way the field does, on models we can retrain.

* planted-copy recall@1: generations that are near copies of training works must rank that
  work first (``recall_at_1``).
* LDS, the linear datamodeling score (Park et al. 2023, TRAK): retrain the model on m random
  subsets S_j of the training set (alpha = |S_j| / n = 0.5), record each generation's loss
  under each retrained model, and correlate (Spearman, over j) the method's prediction
  sum_{i in S_j} score(g, i) with the actual -loss(g; S_j); averaged over generations
  (``lds``). Scores are "how much training on i helps g", so high prediction <-> low loss.
* top-k removal: retrain without the k works a method ranks highest for g and without k
  random works; the first must raise g's loss more, per generation and on average
  (``topk_removal``, ``RemovalResult``).

Retraining is the model's business: the caller passes a *retrainer*, a picklable callable
``retrain(train, keep, targets) -> losses`` that trains the platform's model on the training
examples where ``keep`` is true (None: all) and returns each target's loss under it. It
should keep the seed, step count and batch draws of the reference run and only drop the
excluded examples from the batches they are drawn into, so that the only thing that differs
between retrained models is the data. (Re-drawing the batches over the smaller set instead
moved a sampled generation's summed loss by ~70 nats on the symbolic reference model, far more than
any work's own effect: removal comparisons were then noise.) The reference platforms' retrainers are
gpt_eval.py and audio_eval.py, next to their models.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

log = logging.getLogger(__name__)

# retrain(train, keep mask or None, targets) -> (n_targets,) losses of the retrained model
Retrainer = Callable[[list, list[bool] | None, list], np.ndarray]


def recall_at_1(scores: np.ndarray, true_idx: list[int]) -> float:
    """Fraction of rows whose highest score is at the planted training example."""
    scores = np.asarray(scores)
    if scores.shape[0] != len(true_idx):
        raise ValueError(f"{scores.shape[0]} score rows but {len(true_idx)} planted indices")
    return float(np.mean(np.argmax(scores, axis=1) == np.asarray(true_idx)))


def _rank(x: np.ndarray) -> np.ndarray:
    """Average ranks (ties share their mean rank), as Spearman needs."""
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x), dtype=np.float64)
    ranks[order] = np.arange(len(x), dtype=np.float64)
    for v in np.unique(x):
        tie = x == v
        if tie.sum() > 1:
            ranks[tie] = ranks[tie].mean()
    return ranks


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = _rank(np.asarray(a, float)), _rank(np.asarray(b, float))
    ra, rb = ra - ra.mean(), rb - rb.mean()
    den = np.sqrt((ra**2).sum() * (rb**2).sum())
    return float((ra * rb).sum() / den) if den > 0 else 0.0


@dataclass
class SubsetLosses:
    masks: np.ndarray  # (m, n) bool: which training examples each retrained model saw
    losses: np.ndarray  # (m, n_gens): each generation's loss under each retrained model
    seconds: float


def subset_masks(n: int, m: int, alpha: float = 0.5, seed: int = 0) -> np.ndarray:
    """The m random training subsets of LDS, (m, n) bool, each of round(alpha * n) examples.

    Row j depends only on (n, alpha, seed) and j, so retraining the same subsets with other
    recipes (another retrain seed, for the noise floor of the truth) draws them here again."""
    rng = np.random.default_rng(seed)
    size = max(1, round(alpha * n))
    masks = np.zeros((m, n), dtype=bool)
    for j in range(m):
        masks[j, np.sort(rng.choice(n, size=size, replace=False))] = True
    return masks


def retrain_on_subsets(
    retrain: Retrainer,
    train: list,
    gens: list,
    m: int,
    alpha: float = 0.5,
    seed: int = 0,
    jobs: int = 1,
) -> SubsetLosses:
    """The ground truth of LDS; computed once and shared by every method compared.

    ``jobs`` > 1 runs the m retrains in that many processes (one torch thread each, as
    in-process, so the losses are identical); the subsets are drawn the same either way."""
    masks = subset_masks(len(train), m, alpha, seed)
    t0 = time.perf_counter()
    keeps = [masks[j].tolist() for j in range(m)]
    tasks = [(k, gens) for k in keeps]
    rows = _run_retrains(retrain, train, tasks, jobs, "LDS retrain", pin_threads=False)
    return SubsetLosses(masks, np.stack(rows), time.perf_counter() - t0)


def lds(scores: np.ndarray, subsets: SubsetLosses) -> float:
    """Mean over generations of Spearman(predicted sum of scores over S_j, -loss_j)."""
    scores = np.asarray(scores, dtype=np.float64)
    pred = subsets.masks.astype(np.float64) @ scores.T  # (m, n_gens)
    return float(
        np.mean([spearman(pred[:, g], -subsets.losses[:, g]) for g in range(scores.shape[0])])
    )


@dataclass
class RemovalResult:
    """Loss rises of each generation when its top-k works vs random works are left out.

    The criterion "top-k removal beats random removal" is read per generation (top-k rise
    above the mean random rise of that generation: ``win_rate``) and on average over
    generations (``mean_excess`` > 0, with the benchmark's bootstrap interval above 0).
    """

    topk_rise: np.ndarray  # (n_gens,) loss increase after removing each gen's top-k
    random_rise: np.ndarray  # (n_gens,) mean loss increase over the random draws
    random_draws: np.ndarray | None = None  # (n_draws, n_gens), when kept

    @property
    def excess(self) -> np.ndarray:
        return self.topk_rise - self.random_rise

    @property
    def win_rate(self) -> float:
        return float(np.mean(self.topk_rise > self.random_rise))

    def summary(self) -> dict:
        return {
            "mean_topk_rise": float(self.topk_rise.mean()),
            "mean_random_rise": float(self.random_rise.mean()),
            "mean_excess": float(self.excess.mean()),
            "win_rate": self.win_rate,
        }


def _fit_losses(retrain: Retrainer, train, keep, gens) -> np.ndarray:
    """One retrain and the generations' losses under it (a process-pool task)."""
    torch.set_num_threads(1)
    return np.asarray(retrain(train, keep, gens), dtype=np.float64)


def _run_retrains(
    retrain: Retrainer,
    train: list,
    tasks: list[tuple[list[bool], list]],
    jobs: int,
    what: str,
    pin_threads: bool = True,
) -> list[np.ndarray]:
    """retrain(train, keep, targets) for every (keep, targets), in order; in ``jobs``
    spawned processes when jobs > 1 (spawn: no fork of a process holding torch threads),
    each with one torch thread. In-process, pin_threads=False leaves the caller's count."""
    t0 = time.perf_counter()

    def done(i: int) -> None:
        log.info("%s %d/%d (%.0fs)", what, i + 1, len(tasks), time.perf_counter() - t0)

    if jobs <= 1:
        out = []
        for i, (keep, targets) in enumerate(tasks):
            if pin_threads:
                out.append(_fit_losses(retrain, train, keep, targets))
            else:
                out.append(np.asarray(retrain(train, keep, targets), dtype=np.float64))
            done(i)
        return out
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(jobs, mp_context=mp.get_context("spawn")) as pool:
        futures = [pool.submit(_fit_losses, retrain, train, kp, gs) for kp, gs in tasks]
        out = []
        for i, f in enumerate(futures):
            out.append(f.result())
            done(i)
        return out


def topk_removal(
    retrain: Retrainer,
    train: list,
    gens: list,
    scores_by_method: dict[str, np.ndarray],
    k: int,
    seed: int = 0,
    base_losses: np.ndarray | None = None,
    random_draws: int = 1,
    jobs: int = 1,
) -> dict[str, RemovalResult]:
    """Per method, retrain without each generation's top-k works; against random removal.

    Random removal does not depend on the generation, so each of ``random_draws`` random
    k-sets is retrained once and every generation's loss is read from that model: the
    random baseline of a generation is the mean over the draws, shared by all methods.
    ``jobs`` > 1 runs the retrains in that many processes (each one torch thread, the
    same as a single process, so the losses are identical).
    """
    n = len(train)
    rng = np.random.default_rng(seed)

    def keep_without(drop) -> list[bool]:
        keep = np.ones(n, dtype=bool)
        keep[np.asarray(drop, dtype=int)] = False
        return keep.tolist()

    tasks: list[tuple[str, int, list[bool], list]] = []
    if base_losses is None:
        tasks.append(("base", -1, [True] * n, gens))
    for r in range(random_draws):
        tasks.append(("random", r, keep_without(rng.choice(n, size=k, replace=False)), gens))
    for name, scores in scores_by_method.items():
        for g in range(len(gens)):
            drop = np.argsort(-np.asarray(scores[g]), kind="stable")[:k]
            tasks.append((name, g, keep_without(drop), [gens[g]]))
    losses = _run_retrains(retrain, train, [(kp, gs) for *_, kp, gs in tasks], jobs, "removal")
    by_task = {(name, i): loss for (name, i, _, _), loss in zip(tasks, losses, strict=True)}
    if base_losses is None:
        base_losses = by_task[("base", -1)]
    draws = np.stack([by_task[("random", r)] - base_losses for r in range(random_draws)])
    out = {}
    for name in scores_by_method:
        rise = np.array([by_task[(name, g)][0] - base_losses[g] for g in range(len(gens))])
        out[name] = RemovalResult(rise, draws.mean(0), draws)
    return out


def cost_multiple(
    attribute_one: Callable[[], object], forward_backward: Callable[[], object], repeats: int = 5
) -> tuple[float, float, float]:
    """(attribution seconds, fwd+bwd seconds, ratio), best of repeats to damp machine noise."""

    def best(f: Callable[[], object]) -> float:
        f()  # warm-up
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            f()
            times.append(time.perf_counter() - t)
        return min(times)

    a, fb = best(attribute_one), best(forward_backward)
    return a, fb, a / fb
