"""What the attribution benchmarks share: one seed's model, targets and LDS truth, and the
statistics they print.

A seed fixes everything random in a run (training pieces, model, planted copies, sampled
generations, LDS subsets), so seeds are independent replications. A folder per seed keeps
the model, the data and the LDS truth; a later run (of either benchmark) with the same folder
reuses them, which is how the quality and the dattri benchmarks score the same generations
against the same retrained models.
"""

from __future__ import annotations

import os
import pickle
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from attribution.evaluate import retrain_on_subsets, spearman
from attribution.hashing import examples_digest
from sandbox.gpt_eval import RetrainSpec, near_copy, sample_generations
from sandbox.model import GPTConfig
from sandbox.tokenizer import Tokenizer
from sandbox.train import TINY_CONFIG, load_model_version, synthetic_pieces, train_model_version

STEPS, BATCH, LR = 300, 16, 3e-3


# dattri, the baseline both side-by-side benchmarks run (attribution_vs_dattri, audio_attribution)
DATTRI_VERSION = "0.3.0"
INSTALL = (
    ".venv/bin/pip install -e '.[dev,bench]' && "
    f".venv/bin/pip install --no-deps dattri=={DATTRI_VERSION}"
)


def require_dattri() -> None:
    try:
        import dattri
    except ImportError:
        sys.exit(f"dattri is not installed; this benchmark needs it. Install with:\n  {INSTALL}")
    if getattr(dattri, "__version__", DATTRI_VERSION) != DATTRI_VERSION:
        print(f"warning: dattri {dattri.__version__}, measured with {DATTRI_VERSION}")

def retrain_spec(seed: int, steps: int = STEPS, config: dict | None = None) -> RetrainSpec:
    """The reference recipe; config: GPTConfig fields other than the vocabulary (TINY_CONFIG)."""
    tok = Tokenizer()
    cfg = GPTConfig(
        vocab_size=tok.vocab_size, block_size=tok.max_len, **(config or TINY_CONFIG)
    )
    return RetrainSpec(cfg, steps, BATCH, LR, seed)


def prepare_seed(
    seed: int,
    folder: Path,
    works: int,
    planted: int,
    gens: int,
    steps: int = STEPS,
    config: dict | None = None,
) -> dict:
    """One seed's training pieces, model version, planted copies and sampled generations
    (everything but the LDS truth); folder/data.pkl when the folder already has them.

    Returns {"seed", "mv_dir", "train", "copies", "gens", "planted"}."""
    if (folder / "data.pkl").exists():
        data = pickle.loads((folder / "data.pkl").read_bytes())
        if (len(data["train"]), len(data["gens"])) != (works, gens):
            raise ValueError(
                f"{folder} holds {len(data['train'])} works, {len(data['gens'])} "
                f"generations; asked for {works}, {gens}"
            )
        return data
    folder.mkdir(parents=True, exist_ok=True)
    pieces = synthetic_pieces(works, seed=seed + 1)
    ids = [f"work-{i:05d}" for i in range(works)]
    spec = retrain_spec(seed, steps, config)
    mv_dir = train_model_version(
        pieces,
        ids,
        folder,
        spec.config,
        steps=steps,
        batch_size=BATCH,
        lr=LR,
        seed=seed,
        log_every=0,
    )
    mv = load_model_version(mv_dir)
    rng = np.random.default_rng(seed + 7)
    planted_idx = sorted(rng.choice(works, planted, replace=False).tolist())
    copies = [near_copy(pieces[w], rng) for w in planted_idx]
    generations = sample_generations(mv.load_model(), gens, seed=seed + 3)
    return {
        "seed": seed,
        "mv_dir": str(mv_dir),
        "train": pieces,
        "copies": copies,
        "gens": generations,
        "planted": planted_idx,
    }


def build_seed(
    seed: int, folder: Path, works: int, planted: int, gens: int, lds_m: int, steps: int = STEPS
) -> dict:
    """Train, plant, sample and retrain for LDS once per seed; reuse what the folder holds.

    Returns {"seed", "mv_dir", "train", "copies", "gens", "planted"}; the LDS truth is
    folder/lds_truth.npz (masks, losses), read with load_truth.
    """
    data = prepare_seed(seed, folder, works, planted, gens, steps)
    if (folder / "lds_truth.npz").exists():
        return data
    spec, pieces, generations = retrain_spec(seed, steps), data["train"], data["gens"]
    t = time.perf_counter()
    truth = retrain_on_subsets(spec, pieces, generations, m=lds_m, seed=seed)
    print(f"seed {seed}: LDS truth, {lds_m} retrains in {time.perf_counter() - t:.0f}s", flush=True)
    np.savez(folder / "lds_truth.npz", masks=truth.masks, losses=truth.losses)
    # Written last: a folder with data.pkl has its truth.
    (folder / "data.pkl").write_bytes(pickle.dumps(data))
    return data


@dataclass
class CachedRetrainer:
    """A retrainer (attribution/evaluate.py) whose results are kept in ``folder``, keyed by
    the recipe (its repr), the training set, the keep mask and the targets: a rerun of a
    benchmark, or two methods that remove the same works, retrain once. Picklable, so it
    runs in the evaluation's process pool; files are written aside and renamed."""

    inner: Any
    folder: str

    def path(self, train: list, keep: list[bool] | None, targets: list) -> Path:
        """Where this retrain's losses are (or will be) kept."""
        mask = "all" if keep is None else np.packbits(np.asarray(keep, dtype=bool)).tobytes()
        key = examples_digest(targets, repr(self.inner), examples_digest(train), mask)
        return Path(self.folder) / f"{key[:32]}.npy"

    def __call__(self, train: list, keep: list[bool] | None, targets: list) -> np.ndarray:
        path = self.path(train, keep, targets)
        if path.exists():
            return np.load(path)
        losses = np.asarray(self.inner(train, keep, targets), dtype=np.float64)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}.npy")
        np.save(tmp, losses)
        os.replace(tmp, path)
        return losses


def gpt_dattri_loss(model):
    """dattri's (torch.func) loss of the sandbox GPT and TRAK's correct-class probability:
    the same quantity as our adapter, the summed token NLL of a piece, pads masked. Takes one
    example (as dattri's vmap passes it) or a batch (summed over it)."""
    from sandbox.model import PAD_ID

    def loss_func(params, data):
        (idx,) = data
        idx = idx.unsqueeze(0) if idx.dim() == 1 else idx
        logits, _ = torch.func.functional_call(model, params, (idx[:, :-1],))
        logp = torch.log_softmax(logits, dim=-1)
        tgt = idx[:, 1:]
        nll = -torch.gather(logp, -1, tgt.unsqueeze(-1)).squeeze(-1)
        return (nll * (tgt != PAD_ID)).sum()

    def correct_prob(params, data):
        return torch.exp(-loss_func(params, data))

    return loss_func, correct_prob


class DattriMemo:
    """dattri's TRAK per-example gradient and projection functions, memoised on their inputs,
    for the regularisation grid: dattri recomputes both for every TRAKAttributor, although
    only its final solve depends on the regularisation. The values are dattri's own (same
    functions, same inputs, same projection seeds); copies are returned because dattri
    divides the gradients in place. Never active while cost is timed."""

    def __init__(self) -> None:
        self.store: dict[str, torch.Tensor] = {}

    def wrap(self, fn, tag):
        from attribution.hashing import examples_digest

        def memoised(*a, **kw):
            key = examples_digest([tag, list(a), {k: str(v) for k, v in kw.items()}])
            if key not in self.store:
                self.store[key] = fn(*a, **kw).detach().clone()
            return self.store[key].clone()

        return memoised

    def patch(self):
        import dattri.algorithm.trak as dt
        from dattri.task import AttributionTask

        memo = self
        original = dt.random_project

        def random_project(feature, batch_size, **kwargs):
            project = original(feature, batch_size, **kwargs)
            return memo.wrap(project, ["project", batch_size, str(sorted(kwargs.items()))])

        class Task(AttributionTask):
            def get_grad_loss_func(self, *a, **kw):
                return memo.wrap(super().get_grad_loss_func(*a, **kw), ["loss", str(a), str(kw)])

            def get_grad_target_func(self, *a, **kw):
                return memo.wrap(
                    super().get_grad_target_func(*a, **kw), ["target", str(a), str(kw)]
                )

        dt.random_project = random_project
        return Task, lambda: setattr(dt, "random_project", original)


def load_truth(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    z = np.load(folder / "lds_truth.npz")
    return z["masks"], z["losses"]


def best_pair(f, g, repeats: int) -> tuple[float, float]:
    """min over repeats of f's and g's time, each f timed right after its own g."""
    f(), g()  # warm-up
    tf, tg = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        g()
        tg.append(time.perf_counter() - t)
        t = time.perf_counter()
        f()
        tf.append(time.perf_counter() - t)
    return min(tf), min(tg)


def per_generation_lds(scores: np.ndarray, masks: np.ndarray, losses: np.ndarray) -> np.ndarray:
    """Spearman(predicted sum of scores over S_j, -loss_j) for every generation."""
    pred = masks.astype(np.float64) @ np.asarray(scores, dtype=np.float64).T
    return np.array([spearman(pred[:, g], -losses[:, g]) for g in range(pred.shape[1])])


def boot_mean_ci(per_seed: list[np.ndarray], draws: int, rng) -> tuple[float, float]:
    """95 % interval of the pooled mean, generations resampled within each seed."""
    means = []
    for _ in range(draws):
        parts = [a[rng.integers(0, len(a), len(a))] for a in per_seed]
        means.append(np.concatenate(parts).mean())
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def summarise(per_seed: list[np.ndarray], draws: int, rng) -> dict:
    """Pooled mean with its bootstrap interval, per-seed means and their spread."""
    pooled = np.concatenate(per_seed)
    lo, hi = boot_mean_ci(per_seed, draws, rng)
    seed_means = [float(a.mean()) for a in per_seed]
    return {
        "mean": float(pooled.mean()),
        "ci95": [lo, hi],
        "seed_means": seed_means,
        "seed_std": float(np.std(seed_means, ddof=1)) if len(seed_means) > 1 else 0.0,
        "n": len(pooled),
    }


def add_seed_arguments(ap) -> None:
    """The seed-folder options both quality benchmarks take: they share one --work folder, so
    a mismatch would make one of them rebuild or misread the other's seeds."""
    ap.add_argument("--seeds", type=int, nargs="+", default=[3, 4, 5])
    ap.add_argument("--works", type=int, default=200)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--planted", type=int, default=20)
    ap.add_argument("--gens", type=int, default=96, help="sampled generations per seed")
    ap.add_argument("--lds-m", type=int, default=48)
