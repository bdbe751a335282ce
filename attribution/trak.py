"""TRAK-family gradient attribution with LoGra-style structured projection.

For a linear layer y = W x (+ b), the gradient of an example's loss w.r.t. W is
sum_t delta_t x_t^T (delta = dL/dy). Projecting it with a Kronecker-structured matrix
P_out (x) P_in gives sum_t (P_out delta_t)(P_in x_t)^T, computable from the layer's input
and output gradient alone, so the (out x in) per-example gradient is never materialised.
A bias is folded in by appending a constant 1 to x. The features phi of an example are
these k_out*k_in numbers per attributed layer, concatenated in the adapter's module order.

Scores follow TRAK: score(target, i) = phi_target (Phi^T Phi + lambda I)^-1 phi_i, with Phi
the features of all training examples, averaged over the checkpoints of the model version.

Damping: lambda = damping * trace(Phi^T Phi) / p, i.e. relative to the mean eigenvalue of
the feature Gram matrix, so the same damping means the same thing for any model scale,
checkpoint or loss reduction.

Caching: per checkpoint the training features are written as float32 .npy chunks of
``chunk_size`` rows plus the Gram matrix; attribute() streams the chunks, so the training
set never has to fit in memory at once. The cache folder name encodes every parameter the
features depend on (projection sizes, seed, modules' shapes, hash of the training tokens),
so a stale cache is never reused for other data.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from attribution.adapter import ModelAdapter

log = logging.getLogger(__name__)


@dataclass
class _Checkpoint:
    name: str
    chunks: list[np.ndarray] | list[Path]  # arrays in memory or .npy paths on disk
    inv: torch.Tensor  # (p, p) float32: (Phi^T Phi + lambda I)^-1


class TRAKAttributor:
    def __init__(
        self,
        task: ModelAdapter,
        k_in: int = 8,
        k_out: int = 8,
        damping: float = 1e-3,
        seed: int = 0,
        batch_size: int = 32,
        cache_dir: Path | None = None,
        chunk_size: int = 4096,
    ) -> None:
        self.task = task
        self.k_in, self.k_out = k_in, k_out
        self.damping = damping
        self.seed = seed
        self.batch_size = batch_size
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.chunk_size = chunk_size
        self._ckpts: list[_Checkpoint] = []
        self.n_train = 0
        self.cache_hits = 0  # checkpoints whose features came from disk, for logs and tests
        self._proj = self._projections()

    # -- features ---------------------------------------------------------------------------

    def _projections(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Seeded Gaussian P_in (k_in x in[+1]) and P_out (k_out x out) for every layer."""
        out = []
        for li, m in enumerate(self.task.attributed_modules()):
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + li)
            d_in = m.in_features + (1 if m.bias is not None else 0)
            p_in = torch.randn(self.k_in, d_in, generator=g) / self.k_in**0.5
            p_out = torch.randn(self.k_out, m.out_features, generator=g) / self.k_out**0.5
            out.append((p_in, p_out))
        return out

    @property
    def n_features(self) -> int:
        return self.k_in * self.k_out * len(self._proj)

    def features(self, batch_tokens: list[list[int]]) -> torch.Tensor:
        """Projected per-example gradients (B, p) at the adapter's current checkpoint."""
        modules = self.task.attributed_modules()
        xs: list[torch.Tensor | None] = [None] * len(modules)
        deltas: list[torch.Tensor | None] = [None] * len(modules)
        handles = []

        def fwd_hook(li: int):
            def hook(mod: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
                xs[li] = inputs[0].detach()

                def grad_hook(grad: torch.Tensor) -> None:
                    deltas[li] = grad.detach()

                output.register_hook(grad_hook)

            return hook

        for li, m in enumerate(modules):
            handles.append(m.register_forward_hook(fwd_hook(li)))
        try:
            with torch.enable_grad():
                losses = self.task.per_example_loss(batch_tokens)
                # The sum's gradient splits per example because examples do not interact.
                losses.sum().backward()
        finally:
            for h in handles:
                h.remove()
        for p in self._params(modules):
            p.grad = None

        B = len(batch_tokens)
        parts = []
        for li, m in enumerate(modules):
            x, d = xs[li], deltas[li]
            if x is None or d is None:
                raise RuntimeError(f"attributed module {li} ({m}) was not used in the forward")
            x = x.reshape(B, -1, x.shape[-1]).float()
            d = d.reshape(B, -1, d.shape[-1]).float()
            if m.bias is not None:
                x = torch.cat([x, torch.ones_like(x[..., :1])], dim=-1)
            p_in, p_out = self._proj[li]
            a = x @ p_in.T  # (B, T, k_in)
            b = d @ p_out.T  # (B, T, k_out)
            parts.append(torch.einsum("bto,bti->boi", b, a).reshape(B, -1))
        return torch.cat(parts, dim=1)

    @staticmethod
    def _params(modules: list[nn.Linear]) -> list[torch.Tensor]:
        return [p for m in modules for p in m.parameters()]

    def _features_all(self, tokens: list[list[int]]) -> torch.Tensor:
        out = [
            self.features(tokens[i : i + self.batch_size])
            for i in range(0, len(tokens), self.batch_size)
        ]
        return torch.cat(out, dim=0) if out else torch.zeros(0, self.n_features)

    # -- cache ------------------------------------------------------------------------------

    def _cache_key(self, train_tokens: list[list[int]]) -> str:
        h = hashlib.sha256()
        for t in train_tokens:
            h.update(np.asarray(t, dtype="<i4").tobytes())
            h.update(b"|")
        shapes = [
            (m.in_features, m.out_features, m.bias is not None)
            for m in self.task.attributed_modules()
        ]
        spec = json.dumps(
            [
                self.k_in,
                self.k_out,
                self.seed,
                shapes,
                type(self.task).__name__,
                getattr(self.task, "reduction", None),
                getattr(self.task, "model_version", None),
            ]
        )
        h.update(spec.encode())
        return f"trak-k{self.k_in}x{self.k_out}-s{self.seed}-{h.hexdigest()[:16]}"

    def _inverse(self, gram: torch.Tensor) -> torch.Tensor:
        p = gram.shape[0]
        lam = self.damping * float(torch.trace(gram)) / p
        lam = lam if lam > 0 else self.damping
        # The p x p solve is tiny; float64 keeps it stable when the Gram is ill-conditioned.
        g64 = gram.double() + lam * torch.eye(p, dtype=torch.float64)
        return torch.linalg.inv(g64).float()

    def cache(self, train_tokens: list[list[int]]) -> None:
        """Compute (or load) the training features of every checkpoint and their kernel."""
        self.n_train = len(train_tokens)
        self._ckpts = []
        self.cache_hits = 0
        root = self.cache_dir / self._cache_key(train_tokens) if self.cache_dir else None
        for name in self.task.checkpoints():
            cdir = root / name if root else None
            if cdir is not None and (cdir / "done.json").exists():
                meta = json.loads((cdir / "done.json").read_text())
                chunks = [cdir / c for c in meta["chunks"]]
                gram = torch.from_numpy(np.load(cdir / "gram.npy"))
                log.info("TRAK features of %s reused from %s", name, cdir)
                self.cache_hits += 1
                self._ckpts.append(_Checkpoint(name, chunks, self._inverse(gram)))
                continue
            log.info("TRAK features of %s: computing for %d examples", name, len(train_tokens))
            self.task.load_checkpoint(name)
            gram = torch.zeros(self.n_features, self.n_features, dtype=torch.float64)
            if cdir is not None:
                cdir.mkdir(parents=True, exist_ok=True)
            # On disk each chunk is written as soon as it is computed, so a large catalog
            # never holds more than one chunk of features in memory.
            chunks: list = []
            for ci, s in enumerate(range(0, len(train_tokens), self.chunk_size)):
                phi = self._features_all(train_tokens[s : s + self.chunk_size])
                gram += phi.double().T @ phi.double()  # float64: sums over many rows
                if cdir is None:
                    chunks.append(phi.numpy())
                else:
                    np.save(cdir / f"phi-{ci:05d}.npy", phi.numpy())
                    chunks.append(cdir / f"phi-{ci:05d}.npy")
            if cdir is not None:
                np.save(cdir / "gram.npy", gram.numpy())  # float64
                # Written last: a folder without it is an interrupted run and is recomputed.
                meta = {
                    "chunks": [c.name for c in chunks],
                    "n_train": len(train_tokens),
                    "n_features": self.n_features,
                }
                (cdir / "done.json").write_text(json.dumps(meta))
            self._ckpts.append(_Checkpoint(name, chunks, self._inverse(gram)))

    # -- scores -----------------------------------------------------------------------------

    def attribute(self, target_tokens: list[list[int]]) -> np.ndarray:
        """Scores (n_targets, n_train), mean over the checkpoints of the model version."""
        if not self._ckpts:
            raise RuntimeError("call cache(train_tokens) before attribute()")
        scores = torch.zeros(len(target_tokens), self.n_train)
        for ck in self._ckpts:
            self.task.load_checkpoint(ck.name)
            q = self._features_all(target_tokens) @ ck.inv  # (m, p)
            start = 0
            for chunk in ck.chunks:
                phi = torch.from_numpy(np.load(chunk) if isinstance(chunk, Path) else chunk)
                scores[:, start : start + phi.shape[0]] += q @ phi.T
                start += phi.shape[0]
        return (scores / len(self._ckpts)).numpy().astype(np.float32)

    def params(self) -> dict:
        return {
            "k_in": self.k_in,
            "k_out": self.k_out,
            "damping": self.damping,
            "seed": self.seed,
            "checkpoints": [c.name for c in self._ckpts] or list(self.task.checkpoints()),
        }
