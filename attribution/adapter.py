"""What the attribution engine needs to know about a platform's model, and the sandbox's answer.

The engine never looks inside a model: it asks an adapter for per-example losses, for the
linear layers whose gradients it should attribute, and for the checkpoints of the model
version. Anything that can answer these four questions can be attributed.

How other model families implement the protocol:

* Audio diffusion model: ``per_example_loss`` is the denoising loss of each example at a
  fixed, seeded set of timesteps and noise draws (the same seeds for training examples and
  generations, otherwise the gradients compare noise, not music), averaged over those draws;
  conditioning (text prompt, style) is part of the example. ``attributed_modules`` are the
  attention and MLP projections of the denoiser (U-Net or DiT), typically a subset of blocks.
  A batch of latents rather than token lists is what ``batch_tokens`` then carries; the
  adapter owns the decoding from stored catalog items to model inputs.
* Audio-token LM (codec tokens, e.g. EnCodec/DAC streams): exactly like the sandbox GPT,
  with the codebook interleaving pattern applied inside ``per_example_loss`` and the loss
  summed over codebooks.

TRAK's default attributes only the last of ``attributed_modules``, the output layer: the
loss's gradient w.r.t. its output needs no backward pass through the network (for the
diffusion model above, the final projection of the denoiser). List it last.

Optional: ``output_gradient(batch_tokens, outputs)``, the gradient of ``per_example_loss``
w.r.t. the output layer's output in closed form (for a next-token NLL, softmax minus the
one-hot of the next token). With it, TRAK's default runs the whole forward without autograd;
without it, autograd differentiates the loss w.r.t. that output (same features, tested).

Every module returned by ``attributed_modules`` must be called once per forward with input
shaped (B, ..., in_features), which nn.Linear guarantees, and examples in a batch must not
interact (no batch norm in train mode), so that the gradient of the summed loss splits
into per-example gradients.
"""

from __future__ import annotations

from typing import Literal, Protocol, runtime_checkable

import torch
from torch import nn

from sandbox.model import GPT, PAD_ID
from sandbox.train import ModelVersion, pad_batch


@runtime_checkable
class ModelAdapter(Protocol):
    def per_example_loss(self, batch_tokens: list[list[int]]) -> torch.Tensor:
        """Loss of each example, shape (B,), differentiable w.r.t. the attributed modules."""
        ...

    def attributed_modules(self) -> list[nn.Linear]:
        """The layers whose weight gradients become attribution features, in forward order,
        the output layer (whose outputs the loss is computed from) last."""
        ...

    def checkpoints(self) -> list[str]:
        """Names of the checkpoints of this model version that form the ensemble."""
        ...

    def load_checkpoint(self, name: str) -> None:
        """Make ``name`` the checkpoint that per_example_loss and attributed_modules use."""
        ...

    @property
    def model_version(self) -> str: ...


class SandboxGPTAdapter:
    """Reference adapter for the sandbox transformer of sandbox/model.py.

    reduction="sum" (default) sums token NLLs per example instead of averaging them. The
    gradient of a piece then weighs each of its tokens equally, so a long copied passage
    counts for what it is; with "mean" a short piece's few tokens count as much as a long
    piece's many. Both find planted copies in tests/test_attribution.py; "sum" gives the
    copy the larger margin over the runner-up (see the test module's notes).
    """

    def __init__(
        self, model_version: ModelVersion, reduction: Literal["sum", "mean"] = "sum"
    ) -> None:
        self.mv = model_version
        self.reduction = reduction
        self.model: GPT = model_version.load_model()
        self._current = model_version.checkpoints[-1]
        # The live parameters and buffers, in state_dict order; a checkpoint switch copies
        # into them (see load_checkpoint).
        self._live = list(self.model.state_dict(keep_vars=True).values())
        self._states: dict[str, list[torch.Tensor]] = {
            self._current: [t.detach().clone() for t in self._live]
        }

    @property
    def model_version(self) -> str:
        return self.mv.model_version

    def per_example_loss(self, batch_tokens: list[list[int]]) -> torch.Tensor:
        idx = pad_batch(batch_tokens, pad=PAD_ID)
        nll, mask = self.model.token_nll(idx)
        total = nll.sum(1)
        if self.reduction == "sum":
            return total
        return total / mask.sum(1).clamp_min(1.0)

    def output_gradient(self, batch_tokens: list[list[int]], logits: torch.Tensor) -> torch.Tensor:
        """d per_example_loss / d logits, (B, T-1, vocab), in closed form: softmax minus the
        one-hot of the next token on real targets, zero on padding (divided by the number of
        real targets for reduction "mean"). logits: lm_head's output in per_example_loss."""
        targets = pad_batch(batch_tokens, pad=PAD_ID)[:, 1:]
        grad = torch.softmax(logits.float(), dim=-1)
        minus_one = torch.full((*targets.shape, 1), -1.0, dtype=grad.dtype)
        grad.scatter_add_(-1, targets.unsqueeze(-1), minus_one)
        real = (targets != PAD_ID).to(grad.dtype)
        if self.reduction == "mean":
            real = real / real.sum(1, keepdim=True).clamp_min(1.0)
        return grad * real.unsqueeze(-1)

    def embed(self, batch_tokens: list[list[int]]) -> torch.Tensor:
        """Mean-pooled final hidden states over real (non-pad) tokens, (B, n_embd).

        Optional in the protocol: only SimilarityAttributor(HiddenStateEmbedder) uses it.
        """
        idx = pad_batch(batch_tokens, pad=PAD_ID)
        with torch.no_grad():
            h = self.model.hidden_states(idx)
        mask = (idx != PAD_ID).to(h.dtype)[..., None]
        return (h * mask).sum(1) / mask.sum(1).clamp_min(1.0)

    def attributed_modules(self) -> list[nn.Linear]:
        return [m for m in self.model.modules() if isinstance(m, nn.Linear)]

    def checkpoints(self) -> list[str]:
        return self.mv.checkpoints

    def load_checkpoint(self, name: str) -> None:
        if name == self._current:
            return
        # Load into the same modules so hooks and module lists held by the caller stay valid.
        # States are kept in memory after the first read: an ensemble switches checkpoints
        # for every batch of generations, and a disk read per switch cost more than the
        # attribution itself (measured, benchmarks/attribution_quality.py). Copying tensor
        # by tensor instead of load_state_dict: its key checks cost about as much as the
        # forward of one generation of the sandbox model (0.3 ms per switch, measured).
        if name not in self._states:
            if name not in self.mv.checkpoints:
                raise KeyError(f"{name!r} is not a checkpoint of {self.model_version}")
            state = self.mv.load_model(name).state_dict()
            self._states[name] = [v.detach().clone() for v in state.values()]
        with torch.no_grad():
            for live, saved in zip(self._live, self._states[name], strict=True):
                live.copy_(saved)
        self._current = name
