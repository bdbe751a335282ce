"""Similarity attribution (black box): embed outputs and catalog works, compare by cosine.

For platforms that give us their outputs but not their model. Two embedders:

* HiddenStateEmbedder: the model's final hidden states, mean-pooled over the piece, where an
  adapter with ``embed`` is available (the sandbox's is).
* SymbolicEmbedder: needs nothing but the tokens. Three L2-normalised parts, concatenated
  with the weights of PART_WEIGHTS:
    - token bigrams (weight 1): counts of consecutive token pairs (pitch -> duration,
      duration -> next pitch, bar lines, ...), hashed with seeded signs into
      ``bigram_dim`` buckets so the width does not grow with the vocabulary squared. These
      are the transitions a next-token model learns, so works that share them are the ones
      whose removal hurts the generation (docs/BENCHMARKS.md: LDS 0.24 with them vs 0.06 for
      the melodic part alone, on 3 model seeds x 64 generations);
    - melodic shape (weight 0.5), itself four normalised blocks weighted by BLOCK_WEIGHTS:
      pitch-class histogram (12, key and mode); melodic interval histogram, semitones
      clipped to [-12, 12] (25); interval bigram histogram (25 x 25, the motifs, free of
      transposition: the block that still recognises a copied tune in another key, whose
      token bigrams are all different); duration histogram (len(DURATIONS)). Rests and bar
      lines are skipped for intervals (the interval spans them);
    - style (weight 0.25): one-hot of the conditioning style token, which the model
      learns per style.

Scores are cosine similarities in [-1, 1]; the catalog's normalised embeddings are cached
in chunks and scored block-wise (attribution/scoring.py), so top-k over a million works
needs one chunk in memory at a time.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from attribution.scoring import blockwise_topk, iter_row_blocks
from attribution.shares import ScoreSummary
from sandbox.tokenizer import DURATIONS, Tokenizer

MAX_INTERVAL = 12
N_INT = 2 * MAX_INTERVAL + 1
BLOCK_WEIGHTS = {"pitch_class": 0.5, "interval": 1.0, "interval_bigram": 2.0, "duration": 0.5}
# Chosen on the LDS of model seeds 0-2 (200 works, 64 generations each, m = 48; the
# evaluation in docs/BENCHMARKS.md uses other seeds), exact bigram counts: token bigrams
# alone 0.224, + melodic at 0.5: 0.226, + style at 0.25: 0.236; melodic part alone (the
# embedder before 2026-11-25) 0.056. Hashed into 2048 buckets: 0.230 (1024: 0.224).
PART_WEIGHTS = {"token_bigram": 1.0, "melodic": 0.5, "style": 0.25}


class Embedder(Protocol):
    name: str

    def embed(self, batch_tokens: list[list[int]]) -> np.ndarray: ...


class SymbolicEmbedder:
    def __init__(
        self, tokenizer: Tokenizer | None = None, bigram_dim: int = 2048, seed: int = 0
    ) -> None:
        tok = tokenizer or Tokenizer()
        self.pitch: dict[int, int] = {}
        self.dur: dict[int, int] = {}
        self.style: dict[int, int] = {}
        for i, t in enumerate(tok.vocab):
            if t.startswith("<p:"):
                self.pitch[i] = int(t[3:-1])
            elif t.startswith("<d:"):
                self.dur[i] = DURATIONS.index(float(t[3:-1]))
            elif t.startswith("<style:"):
                self.style[i] = len(self.style)
        self.vocab_size = tok.vocab_size
        self.bigram_dim = bigram_dim
        rng = np.random.default_rng(seed)
        self._bucket = rng.integers(0, bigram_dim, tok.vocab_size**2)
        self._sign = rng.choice(np.array([-1.0, 1.0]), tok.vocab_size**2)
        self.name = f"symbolic-v2-b{bigram_dim}-s{seed}"
        self.melodic_dim = 12 + N_INT + N_INT * N_INT + len(DURATIONS)
        self.dim = bigram_dim + self.melodic_dim + len(self.style)

    def _melodic(self, tokens: list[int]) -> np.ndarray:
        # Integer arrays even when empty: a generation with fewer than two notes is valid
        # input and must embed (as zeros in the blocks it has nothing for), not crash.
        pitches = np.array([self.pitch[t] for t in tokens if t in self.pitch], dtype=np.int64)
        durs = np.array([self.dur[t] for t in tokens if t in self.dur], dtype=np.int64)
        pc = np.bincount(pitches % 12, minlength=12).astype(np.float64)
        iv = np.clip(np.diff(pitches), -MAX_INTERVAL, MAX_INTERVAL) + MAX_INTERVAL
        ih = np.bincount(iv, minlength=N_INT).astype(np.float64)
        bi = np.bincount(iv[:-1] * N_INT + iv[1:], minlength=N_INT * N_INT).astype(np.float64)
        du = np.bincount(durs, minlength=len(DURATIONS)).astype(np.float64)
        parts = []
        for (_, w), v in zip(BLOCK_WEIGHTS.items(), (pc, ih, bi, du), strict=True):
            n = np.linalg.norm(v)
            parts.append(w * v / n if n > 0 else v)
        return np.concatenate(parts)

    def _one(self, tokens: list[int]) -> np.ndarray:
        a = np.asarray(tokens, dtype=np.int64)
        pairs = a[:-1] * self.vocab_size + a[1:]
        bigram = np.bincount(
            self._bucket[pairs], weights=self._sign[pairs], minlength=self.bigram_dim
        )
        style = np.zeros(len(self.style))
        for t in tokens[:2]:
            if t in self.style:
                style[self.style[t]] = 1.0
        parts = []
        for (_, w), v in zip(PART_WEIGHTS.items(), (bigram, self._melodic(tokens), style)):
            n = np.linalg.norm(v)
            parts.append(w * v / n if n > 0 else v)
        return np.concatenate(parts)

    def embed(self, batch_tokens: list[list[int]]) -> np.ndarray:
        return np.stack([self._one(t) for t in batch_tokens]).astype(np.float32)


class HiddenStateEmbedder:
    def __init__(self, adapter, batch_size: int = 64) -> None:
        if not hasattr(adapter, "embed"):
            raise TypeError(f"{type(adapter).__name__} has no embed(); use SymbolicEmbedder")
        self.adapter = adapter
        self.batch_size = batch_size
        self.name = f"hidden-{getattr(adapter, 'model_version', 'model')}"

    def embed(self, batch_tokens: list[list[int]]) -> np.ndarray:
        out = [
            self.adapter.embed(batch_tokens[i : i + self.batch_size]).float().numpy()
            for i in range(0, len(batch_tokens), self.batch_size)
        ]
        return np.concatenate(out).astype(np.float32)


def _normalise(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.where(n > 0, n, 1.0)).astype(np.float32)


class SimilarityAttributor:
    def __init__(
        self,
        embedder: Embedder,
        chunk_size: int = 4096,
        cache_dir: Path | None = None,
        center: bool = True,
    ) -> None:
        self.embedder = embedder
        self.chunk_size = chunk_size
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        # Centering removes what every piece shares (the mean embedding): without it all
        # cosines of mean-pooled hidden states sit near 1 and the ranking is noisy.
        self.center = center
        self.chunks: list = []
        self.mean: np.ndarray | None = None
        self.n_train = 0
        self.cache_hits = 0

    def _key(self, train_tokens: list[list[int]]) -> str:
        h = hashlib.sha256()
        for t in train_tokens:
            h.update(np.asarray(t, dtype="<i4").tobytes())
            h.update(b"|")
        h.update(json.dumps([self.embedder.name, self.center]).encode())
        return f"sim-{h.hexdigest()[:16]}-c{self.chunk_size}"

    def cache(self, train_tokens: list[list[int]]) -> None:
        if not train_tokens:
            raise ValueError("no training sequences to cache")
        self.n_train = len(train_tokens)
        cdir = self.cache_dir / self._key(train_tokens) if self.cache_dir else None
        if cdir is not None and (cdir / "done.json").exists():
            meta = json.loads((cdir / "done.json").read_text())
            self.chunks = [cdir / c for c in meta["chunks"]]
            self.mean = np.load(cdir / "mean.npy")
            self.cache_hits = 1
            return
        raw = []
        total = None
        for s in range(0, len(train_tokens), self.chunk_size):
            e = self.embedder.embed(train_tokens[s : s + self.chunk_size])
            total = e.sum(0, dtype=np.float64) if total is None else total + e.sum(0)
            raw.append(e)
        self.mean = (total / len(train_tokens)).astype(np.float32) if self.center else None
        if self.mean is None:
            self.mean = np.zeros(raw[0].shape[1], dtype=np.float32)
        # Two passes over the embeddings: the mean must be known before normalising.
        # Raw embeddings are small (n x d); the features of gradient methods are the big ones.
        self.chunks = [_normalise(e - self.mean) for e in raw]
        if cdir is not None:
            cdir.mkdir(parents=True, exist_ok=True)
            names = []

            # Temp file then rename, per process: shards on parallel workers may write the
            # same cache while another reads it.
            def save(name: str, array: np.ndarray) -> None:
                tmp = cdir / f"{name}.tmp{os.getpid()}.npy"
                np.save(tmp, array)
                os.replace(tmp, cdir / name)

            for ci, c in enumerate(self.chunks):
                save(f"emb-{ci:05d}.npy", c)
                names.append(f"emb-{ci:05d}.npy")
            save("mean.npy", self.mean)
            tmp = cdir / f"done.tmp{os.getpid()}.json"
            tmp.write_text(json.dumps({"chunks": names}))
            os.replace(tmp, cdir / "done.json")
            self.chunks = [cdir / n for n in names]

    def _queries(self, target_tokens: list[list[int]]) -> torch.Tensor:
        if self.mean is None:
            raise RuntimeError("call cache(train_tokens) before attribute()")
        if not target_tokens:
            raise ValueError("no target sequences to attribute")
        return torch.from_numpy(_normalise(self.embedder.embed(target_tokens) - self.mean))

    def attribute(self, target_tokens: list[list[int]]) -> np.ndarray:
        q = self._queries(target_tokens)
        cols = [q @ phi.T for phi in iter_row_blocks(self.chunks, self.chunk_size)]
        return torch.cat(cols, dim=1).numpy()

    def attribute_topk(self, target_tokens: list[list[int]], k: int = 64) -> list[ScoreSummary]:
        q = self._queries(target_tokens)
        state, n = blockwise_topk(q, iter_row_blocks(self.chunks, self.chunk_size), k)
        return state.summaries(n)

    def params(self) -> dict:
        return {"embedder": self.embedder.name, "center": self.center}
