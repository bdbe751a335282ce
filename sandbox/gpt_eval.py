"""What attribution quality runs need of the symbolic sandbox model: near copies, ordinary
generations, losses, and a retrainer for LDS and top-k removal (attribution/evaluate.py)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from sandbox.model import GPT, GPTConfig
from sandbox.tokenizer import STYLES, Tokenizer
from sandbox.train import fit_gpt, pad_batch


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


def generation_losses(model: GPT, gens: list[list[int]]) -> np.ndarray:
    """Summed token NLL of each generation (the sandbox adapter's default reduction)."""
    with torch.no_grad():
        nll, _ = model.token_nll(pad_batch(gens))
    return nll.sum(1).double().numpy()


@dataclass
class RetrainSpec:
    """The reference run's recipe; calling it is attribution.evaluate's retrainer."""

    config: GPTConfig
    steps: int
    batch_size: int
    lr: float
    seed: int

    def fit(self, tokens: list[list[int]], keep: np.ndarray | list | None = None) -> GPT:
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

    def __call__(self, train: list, keep: list[bool] | None, targets: list) -> np.ndarray:
        return generation_losses(self.fit(train, keep), targets)
