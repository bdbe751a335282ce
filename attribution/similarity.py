"""Similarity attribution (black box): embed outputs and catalog works, compare by cosine.

For platforms that give us their outputs but not their model. Two embedders:

* HiddenStateEmbedder: the model's final hidden states, mean-pooled over the piece, where an
  adapter with ``embed`` is available.
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

import itertools
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from attribution.hashing import examples_digest
from attribution.scoring import blockwise_topk, iter_row_blocks
from attribution.shares import ScoreSummary

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

    def embed(self, batch: list) -> np.ndarray: ...


class SymbolicEmbedder:
    def __init__(self, vocabulary: Sequence[str], bigram_dim: int = 2048, seed: int = 0) -> None:
        """vocabulary: the token strings of the platform's tokenizer (adapter.vocabulary()),
        pitches as <p:MIDI>, durations as <d:QUARTERS>, styles as <style:NAME>."""
        self.pitch: dict[int, int] = {}
        self.dur: dict[int, int] = {}
        self.style: dict[int, int] = {}
        for i, t in enumerate(vocabulary):
            if t.startswith("<p:"):
                self.pitch[i] = int(t[3:-1])
            elif t.startswith("<d:"):
                self.dur[i] = len(self.dur)
            elif t.startswith("<style:"):
                self.style[i] = len(self.style)
        if not self.pitch:
            raise ValueError("the vocabulary has no <p:MIDI> pitch tokens to embed")
        vocab_size = len(vocabulary)
        self.vocab_size = vocab_size
        self.n_durations = len(self.dur)
        self.bigram_dim = bigram_dim
        rng = np.random.default_rng(seed)
        self._bucket = rng.integers(0, bigram_dim, vocab_size**2)
        self._sign = rng.choice(np.array([-1.0, 1.0]), vocab_size**2)
        vocab_digest = examples_digest(list(vocabulary))[:8]
        self.name = f"symbolic-v2-b{bigram_dim}-s{seed}-v{vocab_digest}"
        self.melodic_dim = 12 + N_INT + N_INT * N_INT + self.n_durations
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
        du = np.bincount(durs, minlength=self.n_durations).astype(np.float64)
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

    def embed(self, batch: list) -> np.ndarray:
        return np.stack([self._one(t) for t in batch]).astype(np.float32)


class AudioEmbedder:
    """Black-box audio embedding from a log-magnitude spectrogram (n_bands x frames).

    Needs nothing of the platform's model: ``spectrogram`` maps an example (what the adapter
    prepared) to its log-mel (or any log-magnitude) array. Two L2-normalised parts:

    * shape (weight 1): the spectrogram pooled into ``segments`` equal time segments, each
      band centred on its own mean over time, so a constant gain or a fixed EQ drops out and
      what is left is how each band moves through the excerpt: the part that recognises a
      copied recording, and that tolerates a few percent of tempo change (a stretched copy
      still lands mostly in the same segments);
    * timbre (weight 0.5): the mean and the standard deviation over time of every band,
      after removing the excerpt's overall level.
    """

    def __init__(self, spectrogram, segments: int = 16, weights: tuple = (1.0, 0.5)) -> None:
        self.spectrogram = spectrogram
        self.segments = segments
        self.weights = weights
        self.name = f"audio-v1-seg{segments}-w{weights[0]:g},{weights[1]:g}"

    def _one(self, example) -> np.ndarray:
        spec = np.asarray(self.spectrogram(example), dtype=np.float64)
        if spec.ndim != 2 or spec.shape[1] < self.segments:
            raise ValueError(
                f"spectrogram of shape {spec.shape} needs 2 dimensions and >= {self.segments} frames"
            )
        spec = spec - spec.mean()  # overall level (gain) out
        bounds = np.linspace(0, spec.shape[1], self.segments + 1).astype(int)
        pooled = np.stack([spec[:, a:b].mean(1) for a, b in itertools.pairwise(bounds)], 1)
        shape = (pooled - pooled.mean(1, keepdims=True)).reshape(-1)
        timbre = np.concatenate([spec.mean(1), spec.std(1)])
        parts = []
        for w, v in zip(self.weights, (shape, timbre), strict=True):
            n = np.linalg.norm(v)
            parts.append(w * v / n if n > 0 else v)
        return np.concatenate(parts)

    def embed(self, batch: list) -> np.ndarray:
        return np.stack([self._one(x) for x in batch]).astype(np.float32)


class HiddenStateEmbedder:
    def __init__(self, adapter, batch_size: int = 64) -> None:
        if not hasattr(adapter, "embed"):
            raise TypeError(f"{type(adapter).__name__} has no embed(); use SymbolicEmbedder")
        self.adapter = adapter
        self.batch_size = batch_size
        self.name = f"hidden-{getattr(adapter, 'model_version', 'model')}"

    def embed(self, batch: list) -> np.ndarray:
        out = [
            self.adapter.embed(batch[i : i + self.batch_size]).float().numpy()
            for i in range(0, len(batch), self.batch_size)
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

    def _key(self, train: list) -> str:
        digest = examples_digest(train, [self.embedder.name, self.center])
        return f"sim-{digest[:16]}-c{self.chunk_size}"

    def cache(self, train: list) -> None:
        if not train:
            raise ValueError("no training sequences to cache")
        self.n_train = len(train)
        cdir = self.cache_dir / self._key(train) if self.cache_dir else None
        if cdir is not None and (cdir / "done.json").exists():
            meta = json.loads((cdir / "done.json").read_text())
            self.chunks = [cdir / c for c in meta["chunks"]]
            self.mean = np.load(cdir / "mean.npy")
            self.cache_hits = 1
            return
        raw = []
        total = None
        for s in range(0, len(train), self.chunk_size):
            e = self.embedder.embed(train[s : s + self.chunk_size])
            total = e.sum(0, dtype=np.float64) if total is None else total + e.sum(0)
            raw.append(e)
        self.mean = (total / len(train)).astype(np.float32) if self.center else None
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

    def _queries(self, targets: list) -> torch.Tensor:
        if self.mean is None:
            raise RuntimeError("call cache(train) before attribute()")
        if not targets:
            raise ValueError("no target sequences to attribute")
        return torch.from_numpy(_normalise(self.embedder.embed(targets) - self.mean))

    def attribute(self, targets: list) -> np.ndarray:
        q = self._queries(targets)
        cols = [q @ phi.T for phi in iter_row_blocks(self.chunks, self.chunk_size)]
        return torch.cat(cols, dim=1).numpy()

    def attribute_topk(self, targets: list, k: int = 64) -> list[ScoreSummary]:
        q = self._queries(targets)
        state, n = blockwise_topk(q, iter_row_blocks(self.chunks, self.chunk_size), k)
        return state.summaries(n)

    def params(self) -> dict:
        return {"embedder": self.embedder.name, "center": self.center}
