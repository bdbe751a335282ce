"""TRAK-family gradient attribution with LoGra-style structured projection.

For a linear layer y = W x (+ b), the gradient of an example's loss w.r.t. W is
sum_t delta_t x_t^T (delta = dL/dy). Projecting it with a Kronecker-structured matrix
P_out (x) P_in gives sum_t (P_out delta_t)(P_in x_t)^T, computable from the layer's input
and output gradient alone, so the (out x in) per-example gradient is never materialised.
A bias is folded in by appending a constant 1 to x. The features phi of an example are
these k_out*k_in numbers per attributed layer, concatenated in the adapter's module order.
A layer whose whole weight gradient has at most ``exact_up_to`` entries is not projected:
its features are the gradient itself, sum_t delta_t x_t^T, since a projection would lose
information without saving anything (the symbolic reference model's output layer, 92 x 32, is such a
layer; a real model's, vocabulary x width, is far larger and is projected).

Scores: score(target, i) = phi_target C^-1 phi_i, averaged over the checkpoints of the model
version, with one of three curvatures C (``curvature``):

* "gram": TRAK's C = Phi^T Phi + lambda I, the Gram of the per-example features. With more
  training examples n than features p the p x p matrix is inverted; with fewer, the n x n
  one, by the push-through identity Phi (Phi^T Phi + lambda I)^-1 =
  (Phi Phi^T + lambda I)^-1 Phi (same scores, tested; n^2 p instead of p^3 + n p^2).
* "kfac": the Kronecker-factored empirical Fisher of each attributed layer, taken over
  tokens, as in LoGra (Choe et al. 2024) and EK-FAC influence functions: with a_t the
  (projected) layer input and b_t the (projected) output gradient of token t over the whole
  training set, C = (sum_t b_t b_t^T) (x) (sum_t a_t a_t^T) / n_tokens + lambda I, applied
  through the eigenvectors of the two small factors (k_out x k_out, k_in x k_in), so no
  p x p matrix is formed and its cost does not depend on the catalog size.
* "kfac-gram" (default): the Gram of "gram", computed on features whitened by the K-FAC
  curvature, phi -> phi W with W = C_kfac^-1/2 (damping 0.1 in C_kfac).

Why the combination: K-FAC predicts retraining better than the Gram (the per-example Gram has
rank at most n, so for a catalog smaller than the feature count most of the feature space is
set by lambda alone; the token-level factors see every token and are full rank), but it makes
near copies stand out less, because the Gram whitens the training examples against each other
and K-FAC does not, and the shares policy's z-score confidence rule depends on copies
standing out. On model seeds 0-2 (64 generations each, m = 48, exact output-layer gradients,
3 checkpoints, computed offline): LDS Gram 0.268, K-FAC 0.301, kfac-gram 0.308; lowest z of
a planted copy 9.9-11.4 Gram, 7.5-8.2 K-FAC, 10.7-11.7 kfac-gram. On the end-to-end test's
undertrained model (60 works, 60 steps) K-FAC alone left two of three planted copies under
min_confidence 5 (z 3.6-6.1); kfac-gram gives 7.1-7.5 (Gram 6.9-7.4). Held-out numbers
against dattri are in docs/BENCHMARKS.md.
Each checkpoint has its own seeded projection (as in TRAK and dattri), so the ensemble also
averages out the projection's error.

Layers: by default only the output layer (the last of the adapter's attributed_modules) is
attributed. Its output gradient is the loss's gradient w.r.t. the logits, which needs no
backward pass through the network, so a target costs about one forward per checkpoint: the
three-checkpoint ensemble costs 1.6x a forward+backward of the served demo model for one
generation and 1.1x per generation in batches (2.2x / 1.8x on the 1-layer test model, where
fixed per-call overheads weigh most; benchmarks/attribution_cost.py, docs/BENCHMARKS.md).
Measured on the symbolic reference model (3 model seeds x 64 generations, m = 48 LDS retrains, exact
per-example gradients, 3 checkpoints): output layer alone LDS 0.27, all linear layers 0.26,
all parameters 0.26; any single checkpoint 0.15-0.25 whatever the layers. layers="all"
keeps every attributed layer (a full backward per checkpoint). On the same seeds the output
layer's exact gradient (2,944 numbers) gave 0.268 against 0.264 for its 16 x 80 projection
and 0.271 for a dense 1,280-dimensional one, all at damping 1.

Damping is relative, so the same value means the same thing for any model scale, checkpoint
or loss reduction: lambda = damping x the mean eigenvalue of C without it (for "gram",
trace(Phi^T Phi) / p). Defaults, chosen on seeds 0-2: 10 for "kfac-gram" (3 / 10 / 30 gave
LDS 0.296 / 0.308 / 0.313, lowest copy z 12.0 / 10.7 / 9.5: 30 trades copy separation for
LDS), 0.1 for "kfac" (0.03 / 0.1 / 0.3 gave 0.291 / 0.301 / 0.294) and 1 for "gram" (0.3 / 1
/ 3 gave 0.253 / 0.268 / 0.271).

Caching: per checkpoint the training features are written as float32 .npy chunks of
``chunk_size`` rows, each with its K-FAC factor sums; attribute() streams the chunks, so the training
set never has to fit in memory at once. The cache folder name encodes every parameter the
features depend on (projection sizes, seed, layers, modules' shapes, hash of the training
tokens), so a stale cache is never reused for other data.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from attribution.hashing import adapter_identity, examples_digest
from attribution.layers import Layer, expand
from attribution.protocol import ModelAdapter
from attribution.scoring import blockwise_topk
from attribution.shares import ScoreSummary

log = logging.getLogger(__name__)

LAYERS = ("output", "all")
CURVATURES = {"kfac-gram": 10.0, "kfac": 0.1, "gram": 1.0}  # name -> default damping
# Damping of the K-FAC factors when they whiten the features for "kfac-gram" (tuning seeds
# 0-2: the value that was best for "kfac" on its own).
KFAC_WHITENING_DAMPING = 0.1
# Part of the cache key: bump when the features of the same parameters change meaning.
FEATURE_VERSION = 4


def _progress(total: int, desc: str):
    """A tqdm bar on a terminal, silent in logs and tests (disable=None: off unless a TTY)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="ex", disable=None, leave=False)


def _array(chunk: np.ndarray | Path) -> np.ndarray:
    """A chunk held in memory, or read from its .npy file."""
    return np.load(chunk) if isinstance(chunk, Path) else chunk


def _relative_lambda(damping: float, mean_eigenvalue: float) -> float:
    # Relative to the curvature's mean eigenvalue, so the same damping means the same thing
    # at any scale; the absolute value only if the curvature is zero.
    lam = damping * mean_eigenvalue
    return lam if lam > 0 else damping


@dataclass
class _Checkpoint:
    name: str
    chunks: list[np.ndarray] | list[Path]  # arrays in memory or .npy paths on disk
    # Phi C^-1 chunk by chunk (C is symmetric): what a target's features are scored
    # against, so a generation costs n_train * p, not p^2 more.
    scored: list[np.ndarray] | list[Path]


class TRAKAttributor:
    def __init__(
        self,
        task: ModelAdapter,
        k_in: int = 16,
        k_out: int = 80,
        damping: float | None = None,
        seed: int = 0,
        batch_size: int = 32,
        cache_dir: Path | None = None,
        chunk_size: int = 4096,
        layers: str = "output",
        checkpoints: list[str] | None = None,
        exact_up_to: int = 4096,
        curvature: str = "kfac-gram",
    ) -> None:
        if layers not in LAYERS:
            raise ValueError(f"unknown layers {layers!r}; expected one of {LAYERS}")
        if curvature not in CURVATURES:
            raise ValueError(f"unknown curvature {curvature!r}; expected one of {CURVATURES}")
        self.curvature = curvature
        self.task = task
        self.k_in, self.k_out = k_in, k_out
        self.exact_up_to = exact_up_to
        self.damping = CURVATURES[curvature] if damping is None else damping
        self.seed = seed
        self.batch_size = batch_size
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.chunk_size = chunk_size
        self.layers = layers
        all_ckpts = list(task.checkpoints())
        self.checkpoints = list(checkpoints) if checkpoints is not None else all_ckpts
        unknown = [c for c in self.checkpoints if c not in all_ckpts]
        if unknown or not self.checkpoints:
            raise ValueError(f"checkpoints {unknown or '[]'} are not checkpoints of the model")
        # A checkpoint's projection is seeded by its place in the model version's list, so
        # the same checkpoint gets the same features in a one-checkpoint or a full ensemble.
        self._ckpt_index = {c: all_ckpts.index(c) for c in self.checkpoints}
        self._ckpts: list[_Checkpoint] = []
        self.n_train = 0
        self.cache_hits = 0  # checkpoints whose features came from disk, for logs and tests
        self.chunks_reused = 0
        self._proj: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {}
        self._modules: list[Layer] | None = None
        self._joined: list[torch.Tensor] | None = None  # in-memory scored chunks, joined

    # -- features ---------------------------------------------------------------------------

    def modules(self) -> list[Layer]:
        """The attributed layers (attribution/layers.py): every block of the adapter's
        modules, or for layers="output" those of its last module."""
        # Asked once: adapters load checkpoints into the same modules, and walking the
        # model's modules on every batch cost 7 % of a target's featurisation.
        if self._modules is None:
            mods = list(self.task.attributed_modules())
            if not mods:
                raise ValueError("the adapter lists no attributed modules")
            if self.layers == "output":
                self._modules = expand(mods[-1], f"m{len(mods) - 1}")
            else:
                self._modules = [ly for i, m in enumerate(mods) for ly in expand(m, f"m{i}")]
        return self._modules

    def _dims(self, layer: Layer) -> tuple[int, int, int]:
        """(d_in, k_in, k_out) of a layer; k_in = d_in and k_out = out for an exact one."""
        if self._exact(layer):
            return layer.in_dim, layer.in_dim, layer.out_dim
        # More projected dimensions than the layer has would add nothing but cost.
        return layer.in_dim, min(self.k_in, layer.in_dim), min(self.k_out, layer.out_dim)

    def _exact(self, layer: Layer) -> bool:
        return layer.in_dim * layer.out_dim <= self.exact_up_to

    def projections(self, checkpoint: str) -> list[tuple[torch.Tensor, torch.Tensor] | None]:
        """Seeded Gaussian P_in (k_in x in[+1]) and P_out (k_out x out) for every layer;
        None for a layer kept exact."""
        if checkpoint in self._proj:
            return self._proj[checkpoint]
        ci = self._ckpt_index[checkpoint]
        out = []
        for li, m in enumerate(self.modules()):
            if self._exact(m):
                out.append(None)
                continue
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + ci * 10_007 + li)
            d_in, k_in, k_out = self._dims(m)
            p_in = torch.randn(k_in, d_in, generator=g) / k_in**0.5
            p_out = torch.randn(k_out, m.out_dim, generator=g) / k_out**0.5
            out.append((p_in, p_out))
        self._proj[checkpoint] = out
        return out

    @property
    def n_features(self) -> int:
        return sum(k_in * k_out for _, k_in, k_out in map(self._dims, self.modules()))

    def features(
        self,
        batch: list,
        checkpoint: str | None = None,
        factors: list[list[torch.Tensor]] | None = None,
    ) -> torch.Tensor:
        """Projected per-example gradients (B, p) at the adapter's current checkpoint, with
        the projection of ``checkpoint`` (default: the last of this attributor's).

        factors: per layer [S, A, n] (float64): for a hooked layer sum_t b_t b_t^T,
        sum_t a_t a_t^T and the token count, for a parameter block the same statistics of
        the per-example gradient matrices G (sum G G^T, sum G^T G, examples); this batch is
        added to them (the K-FAC curvature of the training set)."""
        proj = self.projections(checkpoint or self.checkpoints[-1])
        layers = self.modules()
        B = len(batch)
        hooked = [li for li, ly in enumerate(layers) if ly.hooked]
        blocks = [li for li, ly in enumerate(layers) if not ly.hooked]
        calls: dict[int, list[tuple[torch.Tensor, torch.Tensor]]] = {li: [] for li in hooked}
        # One hooked output layer: nothing before it needs a gradient, so the forward runs
        # without autograd up to there (almost the whole network) and records from there on.
        # Otherwise autograd runs throughout: parameter blocks are used anywhere, and some
        # modules (torch's fused transformer fast path) skip their submodules' hooks when
        # called without autograd.
        late_start = blocks == [] and len(hooked) == 1
        closed_form = (
            late_start and self.layers == "output" and hasattr(self.task, "output_gradient")
        )
        handles = []

        def start_recording(mod: nn.Module, inputs: tuple) -> None:
            torch.set_grad_enabled(True)  # the enclosing no_grad restores the mode on exit

        def fwd_hook(li: int):
            def hook(mod: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
                calls[li].append((inputs[0].detach(), output))

            return hook

        for li in hooked:
            m = layers[li].module
            if late_start and not closed_form:
                handles.append(m.register_forward_pre_hook(start_recording))
            handles.append(m.register_forward_hook(fwd_hook(li)))
        block_params = [p for li in blocks for p in layers[li].params]
        try:
            with torch.no_grad():
                if not late_start:
                    torch.set_grad_enabled(True)
                losses = self.task.per_example_loss(batch)
                missing = [li for li in hooked if not calls[li]]
                if missing:
                    ly = layers[missing[0]]
                    raise RuntimeError(
                        f"attributed module {ly.label} ({type(ly.module).__name__}) was not "
                        "used in the forward"
                    )
                outs = [o for li in hooked for _, o in calls[li]]
                if closed_form:
                    deltas = [self.task.output_gradient(batch, outs[0])]
                elif outs:
                    # Gradients w.r.t. the layers' outputs only: autograd then skips every
                    # weight gradient of hooked layers (sum_t b_t a_t^T, the part we
                    # project ourselves). The sum's gradient splits per example because
                    # examples do not interact.
                    deltas = list(
                        torch.autograd.grad(losses.sum(), outs, retain_graph=bool(blocks))
                    )
                block_grads: list[list[torch.Tensor]] = []
                for i in range(B if blocks else 0):
                    g = torch.autograd.grad(
                        losses[i], block_params, retain_graph=i < B - 1, allow_unused=True
                    )
                    block_grads.append(
                        [
                            torch.zeros_like(p) if gi is None else gi
                            for p, gi in zip(block_params, g, strict=True)
                        ]
                    )
        finally:
            for h in handles:
                h.remove()

        parts = []
        di = 0
        pi = 0
        for li, layer in enumerate(layers):
            p_in, p_out = proj[li] if proj[li] is not None else (None, None)
            if layer.hooked:
                a_parts, b_parts = [], []
                for x, _ in calls[li]:
                    a_parts.append(layer.inputs(x, B, p_in))
                    b_parts.append(layer.out_grads(deltas[di], B))
                    di += 1
                a = torch.cat(a_parts, dim=1) if len(a_parts) > 1 else a_parts[0]
                b_raw = torch.cat(b_parts, dim=1) if len(b_parts) > 1 else b_parts[0]
                b = b_raw if p_out is None else b_raw @ p_out.T
                parts.append(torch.einsum("bto,bti->boi", b, a).reshape(B, -1))
                if factors is not None:
                    # Positions outside the loss (padding, the prompt) have no output gradient.
                    counted = b_raw.ne(0).any(-1)
                    at, bt = a[counted], b[counted]
                    fac = factors[li]
                    fac[0] += (bt.T @ bt).double()
                    fac[1] += (at.T @ at).double()
                    fac[2] += at.shape[0]
            else:
                n_par = len(layer.params)
                g = torch.stack(
                    [layer.matrix(bg[pi : pi + n_par]) for bg in block_grads]
                ).float()  # (B, out, in)
                pi += n_par
                if p_in is not None:
                    g = p_out @ g @ p_in.T
                parts.append(g.reshape(B, -1))
                if factors is not None:
                    fac = factors[li]
                    fac[0] += torch.einsum("boi,bpi->op", g, g).double()
                    fac[1] += torch.einsum("boi,boj->ij", g, g).double()
                    fac[2] += B
        return torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]

    def _features_all(
        self, tokens: list[list[int]], checkpoint: str, factors: list | None = None
    ) -> torch.Tensor:
        out = [
            self.features(tokens[i : i + self.batch_size], checkpoint, factors)
            for i in range(0, len(tokens), self.batch_size)
        ]
        if len(out) == 1:
            return out[0]
        return torch.cat(out, dim=0) if out else torch.zeros(0, self.n_features)

    # -- cache ------------------------------------------------------------------------------

    def _cache_key(self, train: list) -> str:
        spec = [
            FEATURE_VERSION,
            self.layers,
            self.k_in,
            self.k_out,
            self.exact_up_to,
            self.seed,
            [ly.spec() for ly in self.modules()],
            adapter_identity(self.task),
        ]
        digest = examples_digest(train, spec)
        return f"trak-{self.layers}-k{self.k_in}x{self.k_out}-s{self.seed}-{digest[:16]}"

    def _damping(self, trace: float) -> float:
        # trace(Phi^T Phi) = trace(Phi Phi^T): the same lambda whichever side is inverted.
        return _relative_lambda(self.damping, trace / self.n_features)

    def _new_factors(self) -> list[list]:
        return [
            [
                torch.zeros(k_out, k_out, dtype=torch.float64),
                torch.zeros(k_in, k_in, dtype=torch.float64),
                0,
            ]
            for _, k_in, k_out in map(self._dims, self.modules())
        ]

    def _kfac_preconditioner(self, factors: list[list], damping: float, power: float = 1.0):
        """phi -> phi C^-power for C = (S (x) A) / n_tokens + lambda I per layer (block
        diagonal), through the eigenvectors of S and A: (B, p) float32 in and out."""
        layers = []
        for s_sum, a_sum, n_tok in factors:
            es, us = torch.linalg.eigh(s_sum)
            ea, ua = torch.linalg.eigh(a_sum)
            ev = torch.outer(es.clamp(min=0), ea.clamp(min=0)) / max(n_tok, 1)
            lam = _relative_lambda(damping, float(ev.mean()))
            layers.append((us, ua, (ev + lam) ** -power))

        def apply(phi: np.ndarray) -> np.ndarray:
            out, start = [], 0
            for us, ua, inv_ev in layers:
                ko, ki = inv_ev.shape
                block = torch.from_numpy(phi[:, start : start + ko * ki]).double()
                block = block.reshape(-1, ko, ki)
                block = us @ ((us.T @ block @ ua) * inv_ev) @ ua.T
                out.append(block.reshape(len(phi), -1).float())
                start += ko * ki
            return torch.cat(out, dim=1).numpy()

        return apply

    def _dual(self) -> bool:
        """Invert the n x n side: fewer training examples than features."""
        return self.n_train <= self.n_features

    def _inverse(self, gram: torch.Tensor) -> torch.Tensor:
        p = gram.shape[0]
        lam = self._damping(float(torch.trace(gram)))
        # The p x p solve is small; float64 keeps it stable when the Gram is ill-conditioned.
        g64 = gram.double() + lam * torch.eye(p, dtype=torch.float64)
        return torch.linalg.inv(g64).float()

    @staticmethod
    def _gram(chunks: list, transform=None) -> torch.Tensor:
        gram = None
        for c in chunks:
            phi = _array(c)
            phi = torch.from_numpy(transform(phi) if transform else phi).double()
            gram = phi.T @ phi if gram is None else gram + phi.T @ phi  # float64: many rows
        return gram

    def _scored_dual(self, chunks: list) -> list[np.ndarray]:
        """(Phi Phi^T + lambda I)^-1 Phi, split like the chunks. Only when n <= p, so Phi
        (n x p) is at most p x p and is held whole."""
        parts = [_array(c) for c in chunks]
        phi = torch.from_numpy(np.concatenate(parts)).double()
        k = phi @ phi.T
        lam = self._damping(float(torch.trace(k)))
        k += lam * torch.eye(k.shape[0], dtype=torch.float64)
        scored = torch.linalg.solve(k, phi).float().numpy()
        bounds = np.cumsum([len(c) for c in parts])[:-1]
        return np.split(scored, bounds)

    def cache(self, train: list) -> None:
        """Compute (or load) the training features of every checkpoint and their kernel.

        Resumable: each chunk is written atomically (temp file, then rename) as soon as it
        is computed, so a run that is interrupted and started again reuses the chunks already
        on disk and computes only the rest. Chunks are computed from the same batches either
        way, so the resumed features are identical to an uninterrupted run's.
        """
        if not train:
            raise ValueError("no training sequences to cache")
        self.n_train = len(train)
        self._ckpts = []
        self._joined = None
        self.cache_hits = 0
        self.chunks_reused = 0
        root = self.cache_dir / self._cache_key(train) if self.cache_dir else None
        n_chunks = -(-len(train) // self.chunk_size)
        for name in self.checkpoints:
            cdir = root / f"{name}-c{self.chunk_size}" if root else None
            if cdir is not None and (cdir / "done.json").exists():
                meta = json.loads((cdir / "done.json").read_text())
                chunks = [cdir / c for c in meta["chunks"]]
                parts = [self._load_factors(c) for c in chunks]
                if all(f is not None for f in parts):
                    factors = self._new_factors()
                    for f in parts:
                        self._add_factors(factors, f)
                    log.info("TRAK features of %s reused from %s", name, cdir)
                    self.cache_hits += 1
                    self._ckpts.append(self._checkpoint(name, chunks, factors, cdir))
                    continue
                # A factor file lost after the run finished: the chunks without one are
                # recomputed below, the others reused.
                log.warning("TRAK cache %s lacks K-FAC factors; completing it", cdir)
            log.info("TRAK features of %s: computing for %d examples", name, len(train))
            self.task.load_checkpoint(name)
            if cdir is not None:
                cdir.mkdir(parents=True, exist_ok=True)
            chunks: list = []
            factors = self._new_factors()
            bar = _progress(len(train), f"featurise {name}")
            for ci in range(n_chunks):
                s = ci * self.chunk_size
                part = train[s : s + self.chunk_size]
                path = cdir / f"phi-{ci:05d}.npy" if cdir is not None else None
                phi_np = chunk_factors = None
                if path is not None and path.exists():
                    phi_np = np.load(path)
                    chunk_factors = self._load_factors(path)
                    if phi_np.shape != (len(part), self.n_features) or chunk_factors is None:
                        phi_np = None  # foreign or damaged chunk: recompute it
                    else:
                        self.chunks_reused += 1
                if phi_np is None:
                    chunk_factors = self._new_factors()
                    phi_np = self._features_all(part, name, chunk_factors).numpy()
                    if path is not None:
                        # atomic: a chunk on disk is always complete, its factors written
                        # first; the temp names are per process, since shards on parallel
                        # workers may compute the same chunk
                        self._save_factors(path, chunk_factors)
                        tmp = path.with_suffix(f".tmp{os.getpid()}.npy")
                        np.save(tmp, phi_np)
                        os.replace(tmp, path)
                self._add_factors(factors, chunk_factors)
                chunks.append(path if path is not None else phi_np)
                bar.update(len(part))
            bar.close()
            if cdir is not None:
                # Written last: a folder without it is an unfinished run, resumed chunk-wise.
                meta = {
                    "chunks": [c.name for c in chunks],
                    "n_train": len(train),
                    "n_features": self.n_features,
                }
                tmp = cdir / f"done.tmp{os.getpid()}.json"
                tmp.write_text(json.dumps(meta))
                os.replace(tmp, cdir / "done.json")
            self._ckpts.append(self._checkpoint(name, chunks, factors, cdir))

    @staticmethod
    def _factors_path(chunk: Path) -> Path:
        return chunk.with_name(chunk.stem.replace("phi-", "kfac-") + ".npz")

    def _save_factors(self, chunk: Path, factors: list[list]) -> None:
        arrays = {}
        for li, (s_sum, a_sum, n_tok) in enumerate(factors):
            arrays |= {f"s{li}": s_sum.numpy(), f"a{li}": a_sum.numpy(), f"n{li}": n_tok}
        path = self._factors_path(chunk)
        tmp = path.with_suffix(f".tmp{os.getpid()}.npz")
        np.savez(tmp, **arrays)
        os.replace(tmp, path)

    def _load_factors(self, chunk) -> list[list] | None:
        """A chunk's factor sums; None when the file is missing (the chunk is recomputed)."""
        if not isinstance(chunk, Path):
            return None
        path = self._factors_path(chunk)
        if not path.exists():
            return None
        z = np.load(path)
        return [
            [torch.from_numpy(z[f"s{li}"]), torch.from_numpy(z[f"a{li}"]), int(z[f"n{li}"])]
            for li in range(len(self.modules()))
        ]

    @staticmethod
    def _add_factors(total: list[list], part: list[list]) -> None:
        for t, p in zip(total, part, strict=True):
            t[0] += p[0]
            t[1] += p[1]
            t[2] += p[2]

    def _checkpoint(self, name: str, chunks: list, factors: list, cdir: Path | None) -> _Checkpoint:
        """The training chunks of one checkpoint multiplied by its C^-1.

        On disk the products live in a folder per curvature and damping next to the raw
        features, written chunk by chunk like them (atomic, resumable); the raw features and
        factors stay the record, so another curvature or damping needs no new forward pass.
        """

        if self.curvature == "kfac":
            precondition = self._kfac_preconditioner(factors, self.damping)

            def product(i: int, c) -> np.ndarray:
                return precondition(_array(c))

            return self._scored_chunks(name, chunks, product, cdir)

        # "gram" scores q (Phi^T Phi + lambda I)^-1 phi_i. "kfac-gram" does the same in the
        # space whitened by K-FAC, W = C_kfac^-1/2 (phi -> phi W): the targets need no
        # whitening of their own, since q W (W Phi^T Phi W + lambda I)^-1 W phi_i is q
        # against the training row phi_i W (...)^-1 W, which is what is stored.
        if self.curvature == "kfac-gram":
            white = self._kfac_preconditioner(factors, KFAC_WHITENING_DAMPING, power=0.5)
        else:
            white = None

        def whitened(phi: np.ndarray) -> np.ndarray:
            return white(phi) if white else phi

        if self._dual():
            dual: list[np.ndarray] = []  # computed on first need: a resumed run may not

            def product(i: int, c) -> np.ndarray:
                if not dual:
                    dual.extend(self._scored_dual([whitened(_array(c)) for c in chunks]))
                return whitened(dual[i])
        else:
            inv = self._inverse(self._gram(chunks, white))

            def product(i: int, c) -> np.ndarray:
                return whitened((torch.from_numpy(whitened(_array(c))) @ inv).numpy())

        return self._scored_chunks(name, chunks, product, cdir)

    def _scored_chunks(self, name: str, chunks: list, product, cdir: Path | None) -> _Checkpoint:
        """product(i, chunk) for every chunk, in memory or as .npy files (reused if present)."""
        if cdir is None:
            return _Checkpoint(name, chunks, [product(i, c) for i, c in enumerate(chunks)])
        sdir = cdir / f"scored-{self.curvature}-d{self.damping!r}"
        sdir.mkdir(exist_ok=True)
        scored = []
        for i, c in enumerate(chunks):
            path = sdir / f"scored-{i:05d}.npy"
            if not path.exists():
                tmp = path.with_suffix(f".tmp{os.getpid()}.npy")
                np.save(tmp, product(i, c))
                os.replace(tmp, path)
            scored.append(path)
        return _Checkpoint(name, chunks, scored)

    # -- scores -----------------------------------------------------------------------------

    def _queries(self, targets: list) -> list[torch.Tensor]:
        """Per checkpoint, the target features divided by the ensemble size, so that summing
        their products with the checkpoints' scored chunks gives the ensemble mean."""
        if not self._ckpts:
            raise RuntimeError("call cache(train) before attribute()")
        if not targets:
            raise ValueError("no target sequences to attribute")
        out = []
        for ck in self._ckpts:
            self.task.load_checkpoint(ck.name)
            out.append(self._features_all(targets, ck.name) / len(self._ckpts))
        return out

    def attribute(self, targets: list) -> np.ndarray:
        """Scores (n_targets, n_train), mean over the checkpoints of the model version.

        Holds the full (n_targets x n_train) matrix: for evaluation and small catalogs. The
        pipeline uses attribute_topk, whose memory does not grow with the catalog.
        """
        qs = self._queries(targets)
        scores = torch.zeros(len(targets), self.n_train)
        for q, ck in zip(qs, self._ckpts, strict=True):
            start = 0
            for chunk in ck.scored:
                phi = torch.from_numpy(_array(chunk))
                scores[:, start : start + phi.shape[0]] += q @ phi.T
                start += phi.shape[0]
        return scores.numpy().astype(np.float32)

    def attribute_topk(
        self, targets: list, k: int = 64, query_block: int = 4096
    ) -> list[ScoreSummary]:
        """Streaming top-k: per target the k best training examples and the score moments.

        Chunk ci of every checkpoint is scored and summed before the top-k reduction, so the
        ensemble mean is exact; memory is one chunk per checkpoint plus (query_block x chunk).
        """
        qs = self._queries(targets)
        n_chunks = len(self._ckpts[0].chunks)

        def side_by_side(ci: int) -> torch.Tensor:
            # Chunk ci of every checkpoint side by side: (rows, p * n_ckpt).
            return torch.cat(
                [torch.from_numpy(_array(ck.scored[ci])) for ck in self._ckpts],
                dim=1,
            )

        def blocks():
            on_disk = isinstance(self._ckpts[0].scored[0], Path)
            if on_disk:  # read chunk by chunk: memory independent of the catalog
                yield from (side_by_side(ci) for ci in range(n_chunks))
                return
            # In memory the catalog is small: join the checkpoints once, not per call (the
            # copy was a tenth of attributing one generation on the sandbox model).
            if self._joined is None:
                self._joined = [side_by_side(ci) for ci in range(n_chunks)]
            yield from self._joined

        q_all = torch.cat(qs, dim=1)  # (m, p * n_ckpt): one matmul sums the ensemble
        bar = _progress(self.n_train, "score")
        state, n = blockwise_topk(q_all, blocks(), k, query_block=query_block, progress=bar.update)
        bar.close()
        return state.summaries(n)

    def params(self) -> dict:
        return {
            "k_in": self.k_in,
            "k_out": self.k_out,
            "damping": self.damping,
            "exact_up_to": self.exact_up_to,
            "curvature": self.curvature,
            "kernel": (
                "k-fac factors"
                if self.curvature == "kfac"
                else "n x n"
                if self._dual()
                else "p x p"
            ),
            "kfac_whitening_damping": (
                KFAC_WHITENING_DAMPING if self.curvature == "kfac-gram" else None
            ),
            "seed": self.seed,
            "layers": self.layers,
            "n_features": self.n_features,
            "feature_version": FEATURE_VERSION,
            "checkpoints": [c.name for c in self._ckpts] or list(self.checkpoints),
        }
