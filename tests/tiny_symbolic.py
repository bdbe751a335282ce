"""The tiny symbolic model several attribution test modules train once each: 60 synthetic
works (seed 1), 300 steps of the sandbox recipe (seed 0)."""

from __future__ import annotations

from sandbox.model import GPTConfig
from sandbox.tokenizer import Tokenizer
from sandbox.train import (
    TINY_CONFIG,
    ModelVersion,
    load_model_version,
    synthetic_pieces,
    train_model_version,
)

N_WORKS = 60


def tiny_corpus(n_works: int = N_WORKS) -> tuple[list[list[int]], list[str]]:
    return synthetic_pieces(n_works, seed=1), [f"work-{i:03d}" for i in range(n_works)]


def tiny_model_version(folder, pieces: list[list[int]], ids: list[str]) -> ModelVersion:
    tok = Tokenizer()
    cfg = GPTConfig(vocab_size=tok.vocab_size, block_size=tok.max_len, **TINY_CONFIG)
    d = train_model_version(pieces, ids, folder, cfg, steps=300, batch_size=16, lr=3e-3, seed=0, log_every=0)
    return load_model_version(d)
