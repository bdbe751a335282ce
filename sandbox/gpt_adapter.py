"""The sandbox symbolic platform's model adapter: how Tributary attributes its nanoGPT.

A worked example of attribution/protocol.py for a next-token model (docs/integrating-a-model.md).
It is found through the entry point ``sandbox-gpt`` of the group ``tributary.model_adapters``
(pyproject.toml), which model_version.json names in its ``"adapter"`` field (sandbox/train.py
writes it). Raw items are token lists: a catalog work's tokens or a generation's output.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn

from attribution.protocol import InvalidExample
from sandbox.model import GPT, PAD_ID
from sandbox.model_version import CheckpointSwitcher
from sandbox.tokenizer import TokenizerError
from sandbox.train import (
    ADAPTER_NAME,
    NULL_TOKENS_FILE,
    TRAIN_TOKENS_FILE,
    ModelVersion,
    load_model_version,
    pad_batch,
    token_sha256,
)

ADAPTER_VERSION = "2"


def load(model_version_dir: Path, reduction: Literal["sum", "mean"] = "sum") -> SandboxGPTAdapter:
    """The entry point's factory: the adapter of the model version stored in the folder."""
    return SandboxGPTAdapter(load_model_version(Path(model_version_dir)), reduction=reduction)


class SandboxGPTAdapter:
    """Reference adapter for the sandbox transformer of sandbox/model.py.

    reduction="sum" (default) sums token NLLs per example instead of averaging them. The
    gradient of a piece then weighs each of its tokens equally, so a long copied passage
    counts for what it is; with "mean" a short piece's few tokens count as much as a long
    piece's many. Both find planted copies in tests/test_attribution.py; "sum" gives the
    copy the larger margin over the runner-up (see the test module's notes).
    """

    name = ADAPTER_NAME
    version = ADAPTER_VERSION
    catalog_kind = "tokens"  # raw items are token lists (the catalog's tokens.parquet)
    manifest_hash = "token_sha256"  # what content_sha256() gives, per manifest row

    def __init__(
        self, model_version: ModelVersion, reduction: Literal["sum", "mean"] = "sum"
    ) -> None:
        self.mv = model_version
        self.reduction = reduction
        self.options = {"reduction": reduction}
        self.model: GPT = model_version.load_model()
        self._switch = CheckpointSwitcher(
            model_version.checkpoints, self.model, model_version.load_model
        )

    @property
    def model_version(self) -> str:
        return self.mv.model_version

    def prepare(self, raw) -> list[int]:
        """A token list checked against the model's vocabulary and context length."""
        try:
            ids = [x.item() if isinstance(x, np.integer) else x for x in raw]
        except TypeError as e:
            raise InvalidExample(f"output is not a token list: {e}") from e
        try:
            self.mv.tokenizer.validate(ids)
        except (TokenizerError, TypeError) as e:
            raise InvalidExample(str(e)) from e
        if len(ids) > self.mv.config.block_size:
            raise InvalidExample(f"{len(ids)} tokens exceed block_size {self.mv.config.block_size}")
        return ids

    def content_sha256(self, raw) -> str:
        return token_sha256([int(x) for x in raw])

    def training_items(self) -> list[list[int]]:
        """The training sequences the platform stored with the model version (its private
        copy; the settlement pipeline passes the licensor's catalog copy instead)."""
        import pandas as pd

        f = self.mv.path / TRAIN_TOKENS_FILE
        if not f.exists():
            raise FileNotFoundError(f"{f} not found: pass the training items explicitly")
        return [[int(x) for x in t] for t in pd.read_parquet(f)["tokens"]]

    def null_items(self) -> list[list[int]]:
        """Held-out pieces the model never trained on (sandbox/train.py store_null_pieces):
        the null set of the calibrated confidence rule."""
        import pandas as pd

        f = self.mv.path / NULL_TOKENS_FILE
        if not f.exists():
            raise FileNotFoundError(
                f"{f} not found: store held-out pieces with sandbox.train.store_null_pieces "
                "or pass null_items explicitly"
            )
        return [[int(x) for x in t] for t in pd.read_parquet(f)["tokens"]]

    def variants(self, example: list[int]) -> list[list[int]]:
        """The piece, then its transpositions (+-1..6 semitones) and tempo changes (+-20 %)
        undone, alone and combined (sandbox/transforms.py): what robust matching scores."""
        from sandbox.transforms import variants

        return variants(example, self.mv.tokenizer)

    def catalog_versions(self, example: list[int]) -> list[list[int]]:
        """A training work transposed +-1..6 semitones and at +-20 % tempo, alone and
        combined (sandbox/transforms.py): the catalog side of robust matching, so a
        transformed copy meets its own work's version instead of being undone first."""
        from sandbox.transforms import transformed_versions

        return transformed_versions(example, self.mv.tokenizer)

    def vocabulary(self) -> list[str]:
        """Token strings, for the black-box symbolic embedder."""
        return list(self.mv.tokenizer.vocab)

    def per_example_loss(self, batch: list[list[int]]) -> torch.Tensor:
        idx = pad_batch(batch, pad=PAD_ID)
        nll, mask = self.model.token_nll(idx)
        total = nll.sum(1)
        if self.reduction == "sum":
            return total
        return total / mask.sum(1).clamp_min(1.0)

    def output_gradient(self, batch: list[list[int]], logits: torch.Tensor) -> torch.Tensor:
        """d per_example_loss / d logits, (B, T-1, vocab), in closed form: softmax minus the
        one-hot of the next token on real targets, zero on padding (divided by the number of
        real targets for reduction "mean"). logits: lm_head's output in per_example_loss."""
        targets = pad_batch(batch, pad=PAD_ID)[:, 1:]
        grad = torch.softmax(logits.float(), dim=-1)
        minus_one = torch.full((*targets.shape, 1), -1.0, dtype=grad.dtype)
        grad.scatter_add_(-1, targets.unsqueeze(-1), minus_one)
        real = (targets != PAD_ID).to(grad.dtype)
        if self.reduction == "mean":
            real = real / real.sum(1, keepdim=True).clamp_min(1.0)
        return grad * real.unsqueeze(-1)

    def embed(self, batch: list[list[int]]) -> torch.Tensor:
        """Mean-pooled final hidden states over real (non-pad) tokens, (B, n_embd).

        Optional in the protocol: only SimilarityAttributor(HiddenStateEmbedder) uses it.
        """
        idx = pad_batch(batch, pad=PAD_ID)
        with torch.no_grad():
            h = self.model.hidden_states(idx)
        mask = (idx != PAD_ID).to(h.dtype)[..., None]
        return (h * mask).sum(1) / mask.sum(1).clamp_min(1.0)

    def attributed_modules(self) -> list[nn.Linear]:
        return [m for m in self.model.modules() if isinstance(m, nn.Linear)]

    def checkpoints(self) -> list[str]:
        return self.mv.checkpoints

    def load_checkpoint(self, name: str) -> None:
        self._switch.load(name)
