"""Per-example weight gradients of any attributed module, as a matrix (out x in) per example.

Gradient features need, per example and attributed parameter block, the gradient of the
loss w.r.t. that block. Two ways to get it:

* **Factored (hooked) layers.** For nn.Linear, nn.Conv1d/2d (groups 1) and nn.Embedding the
  weight gradient of one example is sum_t b_t a_t^T, with a_t the layer's input at position
  t (a conv's input patch, an embedding's one-hot index, with a constant 1 appended for a
  bias) and b_t the loss's gradient w.r.t. the layer's output there. Forward hooks record
  the inputs and outputs, one autograd call gives every b, and the projection
  P_out (x) P_in is applied to a and b before the sum, so the (out x in) gradient is never
  materialised (LoGra's structured projection). These also give K-FAC's token factors.
* **Generic parameter blocks.** Any other module (nn.MultiheadAttention's packed input
  projection, norms, custom blocks) is featurised from its own parameters' per-example
  gradients, one backward pass per example (slower, but works for any parameter tensor).
  A 2-D+ weight is reshaped to (rows, -1); a bias of matching length becomes an extra
  column; a lone 1-D parameter is a column. The projection is the same P_out G P_in^T.

A module called more than once in a forward (weight sharing) sums its calls, and a module may
see a batch of B x K rows (K noise draws of a diffusion loss, say) as long as the rows of an
example are contiguous: inputs are reshaped to (B, K * positions, d).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class Layer:
    """One attributed block whose per-example gradient is an (out_dim x in_dim) matrix."""

    kind = "layer"
    hooked = False
    out_dim: int
    in_dim: int

    def __init__(self, module: nn.Module, label: str) -> None:
        self.module = module
        self.label = label

    def spec(self) -> list:
        """What the features' meaning depends on: part of the cache key."""
        return [self.kind, self.label, self.out_dim, self.in_dim]


class HookedLayer(Layer):
    hooked = True

    def inputs(self, x: torch.Tensor, batch: int, p_in: torch.Tensor | None) -> torch.Tensor:
        """The layer input of one call as (B, T, k_in) rows a_t (projected by p_in)."""
        raise NotImplementedError

    def out_grads(self, d: torch.Tensor, batch: int) -> torch.Tensor:
        """The output gradient of one call as (B, T, out_dim) rows b_t."""
        raise NotImplementedError

    @staticmethod
    def _rows(t: torch.Tensor, batch: int) -> torch.Tensor:
        if t.shape[0] % batch:
            raise RuntimeError(
                f"a module saw {t.shape[0]} rows for a batch of {batch} examples: each example's"
                " rows must be contiguous and equally many"
            )
        return t.reshape(batch, -1, t.shape[-1]).float()

    @staticmethod
    def _project(a: torch.Tensor, p_in: torch.Tensor | None) -> torch.Tensor:
        return a if p_in is None else a @ p_in.T


class LinearLayer(HookedLayer):
    kind = "linear"

    def __init__(self, module: nn.Linear, label: str) -> None:
        super().__init__(module, label)
        self.bias = module.bias is not None
        self.out_dim = module.out_features
        self.in_dim = module.in_features + int(self.bias)

    def inputs(self, x, batch, p_in):
        a = self._rows(x, batch)
        if self.bias:
            a = torch.cat([a, torch.ones_like(a[..., :1])], dim=-1)
        return self._project(a, p_in)

    def out_grads(self, d, batch):
        return self._rows(d, batch)


class ConvLayer(HookedLayer):
    """Conv1d / Conv2d with groups 1: the input unfolded into patches is the 'a' of a linear
    map whose weight is the kernel reshaped (out, in * kernel)."""

    kind = "conv"

    def __init__(self, module: nn.Conv1d | nn.Conv2d, label: str) -> None:
        super().__init__(module, label)
        self.nd = 1 if isinstance(module, nn.Conv1d) else 2
        self.bias = module.bias is not None
        self.out_dim = module.out_channels
        self.in_dim = module.in_channels * math.prod(module.kernel_size) + int(self.bias)

    def _pads(self) -> list[int]:
        """F.pad's (left, right) pairs, last dimension first."""
        m = self.module
        pads = []
        for i in reversed(range(self.nd)):
            if m.padding == "same":
                total = m.dilation[i] * (m.kernel_size[i] - 1)
                left = total // 2
                pads += [left, total - left]
            elif m.padding == "valid":
                pads += [0, 0]
            else:
                pads += [m.padding[i], m.padding[i]]
        return pads

    def inputs(self, x, batch, p_in):
        m = self.module
        pads = self._pads()
        if any(pads):
            mode = "constant" if m.padding_mode == "zeros" else m.padding_mode
            x = F.pad(x, pads, mode=mode)
        if self.nd == 1:
            x = x.unsqueeze(2)  # (N, C, 1, L): unfold works on 2-D images
            kernel, dil, stride = (1, *m.kernel_size), (1, *m.dilation), (1, *m.stride)
        else:
            kernel, dil, stride = m.kernel_size, m.dilation, m.stride
        patches = F.unfold(x, kernel, dilation=dil, stride=stride)  # (N, C*k, L_out)
        a = self._rows(patches.transpose(1, 2), batch)
        if self.bias:
            a = torch.cat([a, torch.ones_like(a[..., :1])], dim=-1)
        return self._project(a, p_in)

    def out_grads(self, d, batch):
        return self._rows(d.flatten(2).transpose(1, 2), batch)  # (N, C_out, L...) -> rows


class EmbeddingLayer(HookedLayer):
    """The weight gradient of an embedding is sum_t onehot(idx_t) b_t^T: 'a' is the one-hot
    of the index, and its projection P_in onehot is a column of P_in (gathered, never built)."""

    kind = "embedding"

    def __init__(self, module: nn.Embedding, label: str) -> None:
        super().__init__(module, label)
        self.out_dim = module.embedding_dim
        self.in_dim = module.num_embeddings

    def inputs(self, x, batch, p_in):
        idx = x.reshape(batch, -1).long()
        if p_in is None:
            a = F.one_hot(idx, self.in_dim).float()
        else:
            a = p_in.T[idx]  # (B, T, k_in)
        pad = self.module.padding_idx
        if pad is not None:  # the padding row never receives a gradient
            a = a * (idx != pad).unsqueeze(-1).to(a.dtype)
        return a

    def out_grads(self, d, batch):
        return self._rows(d, batch)


class ParamBlock(Layer):
    """Parameters of a module without a factored form: per-example gradients by autograd."""

    kind = "params"

    def __init__(self, module: nn.Module, label: str, params: list[nn.Parameter]) -> None:
        super().__init__(module, label)
        self.params = params
        main = params[0]
        self.out_dim = main.shape[0] if main.dim() >= 1 else 1
        cols = main[0].numel() if main.dim() >= 2 else 1
        self.in_dim = cols + (len(params) - 1)

    def matrix(self, grads: list[torch.Tensor]) -> torch.Tensor:
        """The block's gradient as (out_dim, in_dim): the main tensor's rows, extra columns."""
        main = grads[0].reshape(self.out_dim, -1)
        extra = [g.reshape(self.out_dim, 1) for g in grads[1:]]
        return torch.cat([main, *extra], dim=1) if extra else main


def _param_blocks(module: nn.Module, label: str) -> list[ParamBlock]:
    """A module's own (non-recursive) parameters, a bias joined to its weight as a column."""
    own = {n: p for n, p in module.named_parameters(recurse=False) if p.requires_grad}
    blocks = []
    used: set[str] = set()
    for name, p in own.items():
        if name in used or p.dim() < 2:
            continue
        bias_name = "bias" if name == "weight" else name.replace("weight", "bias")
        params = [p]
        used.add(name)
        b = own.get(bias_name)
        if b is not None and b.dim() == 1 and b.shape[0] == p.shape[0] and bias_name not in used:
            params.append(b)
            used.add(bias_name)
        blocks.append(ParamBlock(module, f"{label}.{name}", params))
    rest = [(n, p) for n, p in own.items() if n not in used]
    # 1-D parameters of equal length (a norm's weight and bias) form one block of columns.
    by_len: dict[int, list] = {}
    for n, p in rest:
        by_len.setdefault(p.numel(), []).append((n, p))
    for group in by_len.values():
        names = "+".join(n for n, _ in group)
        blocks.append(ParamBlock(module, f"{label}.{names}", [p for _, p in group]))
    return blocks


def expand(module: nn.Module, label: str = "m") -> list[Layer]:
    """The attributed layers of one module given by an adapter, in forward order."""
    if isinstance(module, nn.Linear):
        return [LinearLayer(module, label)]
    if isinstance(module, nn.Conv1d | nn.Conv2d) and module.groups == 1:
        return [ConvLayer(module, label)]
    if isinstance(module, nn.Embedding):
        return [EmbeddingLayer(module, label)]
    if isinstance(module, nn.MultiheadAttention):
        # F.multi_head_attention_forward uses the packed q/k/v projection and out_proj's
        # weight as bare tensors: neither is called as a module, so neither can be hooked.
        return [*_param_blocks(module, label), *_param_blocks(module.out_proj, f"{label}.out_proj")]
    layers: list[Layer] = list(_param_blocks(module, label))
    for name, child in module.named_children():
        layers += expand(child, f"{label}.{name}")
    if not layers:
        raise ValueError(f"attributed module {label} ({type(module).__name__}) has no parameters")
    return layers
