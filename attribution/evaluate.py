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

Retraining uses sandbox.train.fit_gpt in memory with the same seed, step count and batch
draws as the reference model, dropping the excluded examples from the batches they are drawn
into, so the only thing that differs between retrained models is the data. (Re-drawing the
batches over the smaller set instead moved a sampled generation's summed loss by ~70 nats,
far more than any work's own effect: removal comparisons were then noise.)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from sandbox.model import GPT, GPTConfig
from sandbox.tokenizer import Tokenizer
from sandbox.train import fit_gpt, pad_batch

log = logging.getLogger(__name__)


def near_copy(tokens: list[int], rng: np.random.Generator, n_changes: int = 2) -> list[int]:
    """The same piece with n_changes pitch tokens replaced: what a memorising model emits."""
    tok = Tokenizer()
    out = list(tokens)
    pitch_pos = [i for i, t in enumerate(out) if tok.vocab[t].startswith("<p:")]
    for j in rng.choice(pitch_pos, min(n_changes, len(pitch_pos)), replace=False):
        out[int(j)] = tok.index[f"<p:{int(rng.integers(40, 90))}>"]
    return out


def sample_generations(
    model: GPT, n: int, seed: int, max_new_tokens: int = 120, top_k: int = 20
) -> list[list[int]]:
    """Ordinary generations of the model (not copies): the targets of LDS and removal."""
    from sandbox.tokenizer import STYLES

    tok = Tokenizer()
    g = torch.Generator().manual_seed(seed)
    styles = [STYLES[i % 5] for i in range(n)]
    prompt = torch.tensor([[tok.bos, tok.style_id(s)] for s in styles])
    out = model.generate(prompt, max_new_tokens, temperature=1.0, top_k=top_k, generator=g)
    gens = []
    for row in out.tolist():
        row = row[: row.index(tok.eos) + 1] if tok.eos in row else row + [tok.eos]
        gens.append([t for t in row if t != 0])
    return gens


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


def generation_losses(model: GPT, gens: list[list[int]]) -> np.ndarray:
    """Summed token NLL of each generation (the sandbox adapter's default reduction)."""
    with torch.no_grad():
        nll, _ = model.token_nll(pad_batch(gens))
    return nll.sum(1).double().numpy()


@dataclass
class RetrainSpec:
    config: GPTConfig
    steps: int
    batch_size: int
    lr: float
    seed: int

    def fit(self, tokens: list[list[int]], keep: np.ndarray | None = None) -> GPT:
        """Retrain on tokens; with keep, on the kept ones only, same batch draws (fit_gpt)."""
        model, _ = fit_gpt(
            tokens,
            self.config,
            self.steps,
            self.batch_size,
            self.lr,
            self.seed,
            log_every=0,
            keep=None if keep is None else [bool(x) for x in keep],
        )
        return model


@dataclass
class SubsetLosses:
    masks: np.ndarray  # (m, n) bool: which training examples each retrained model saw
    losses: np.ndarray  # (m, n_gens): each generation's loss under each retrained model
    seconds: float


def retrain_on_subsets(
    spec: RetrainSpec,
    train_tokens: list[list[int]],
    gens: list[list[int]],
    m: int,
    alpha: float = 0.5,
    seed: int = 0,
) -> SubsetLosses:
    """The ground truth of LDS; computed once and shared by every method compared."""
    rng = np.random.default_rng(seed)
    n = len(train_tokens)
    size = max(1, round(alpha * n))
    masks = np.zeros((m, n), dtype=bool)
    losses = np.zeros((m, len(gens)))
    t0 = time.perf_counter()
    for j in range(m):
        idx = np.sort(rng.choice(n, size=size, replace=False))
        masks[j, idx] = True
        model = spec.fit(train_tokens, keep=masks[j])
        losses[j] = generation_losses(model, gens)
        log.info("LDS retrain %d/%d (%.0fs)", j + 1, m, time.perf_counter() - t0)
    return SubsetLosses(masks, losses, time.perf_counter() - t0)


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


def _fit_losses(spec: RetrainSpec, train_tokens, keep, gens) -> np.ndarray:
    """One retrain and the generations' losses under it (a process-pool task)."""
    torch.set_num_threads(1)
    return generation_losses(spec.fit(train_tokens, keep=keep), gens)


def topk_removal(
    spec: RetrainSpec,
    train_tokens: list[list[int]],
    gens: list[list[int]],
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
    n = len(train_tokens)
    rng = np.random.default_rng(seed)

    def keep_without(drop) -> list[bool]:
        keep = np.ones(n, dtype=bool)
        keep[np.asarray(drop, dtype=int)] = False
        return keep.tolist()

    tasks: list[tuple[str, int, list[bool], list[list[int]]]] = []
    if base_losses is None:
        tasks.append(("base", -1, [True] * n, gens))
    for r in range(random_draws):
        tasks.append(("random", r, keep_without(rng.choice(n, size=k, replace=False)), gens))
    for name, scores in scores_by_method.items():
        for g in range(len(gens)):
            drop = np.argsort(-np.asarray(scores[g]), kind="stable")[:k]
            tasks.append((name, g, keep_without(drop), [gens[g]]))
    if jobs > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(jobs, mp_context=mp.get_context("spawn")) as pool:
            futures = [pool.submit(_fit_losses, spec, train_tokens, kp, gs) for *_, kp, gs in tasks]
            losses = [f.result() for f in futures]
    else:
        losses = [_fit_losses(spec, train_tokens, kp, gs) for *_, kp, gs in tasks]
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
