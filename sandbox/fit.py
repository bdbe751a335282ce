"""The training recipe both sandbox models share (sandbox/train.py, sandbox/audio_train.py):
AdamW, linear warm-up then cosine to 10 %, gradient clipping, checkpoints at even steps.

Each model supplies only its step's loss: `step_loss(step)` draws the step's batch (and, for
the diffusion model, its timesteps and noise) and returns the loss, or None when an
evaluation's keep-mask drops the whole batch. The draws happen either way, so a retraining
"without work i" sees exactly the draws of the full run for every kept example."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

import torch
from torch import nn

WEIGHT_DECAY, BETAS, GRAD_CLIP = 0.01, (0.9, 0.99), 1.0


def checkpoint_steps(steps: int, n: int) -> list[int]:
    n = max(1, min(n, steps))
    return sorted({math.ceil(steps * (i + 1) / n) for i in range(n)})


def warmup_steps(steps: int) -> int:
    return max(1, steps // 20)


def recipe(
    steps: int,
    batch_size: int,
    lr: float,
    seed: int,
    n_checkpoints: int,
    n_examples: int,
    threads: int,
) -> dict:
    """What a model version's config.json records of its training run."""
    return {
        "steps": steps, "batch_size": batch_size, "lr": lr, "seed": seed,
        "n_checkpoints": n_checkpoints, "optimizer": "AdamW", "weight_decay": WEIGHT_DECAY,
        "betas": list(BETAS), "warmup_steps": warmup_steps(steps), "grad_clip": GRAD_CLIP,
        "torch_threads": threads, "torch_version": torch.__version__,
        "n_examples": n_examples,
    }  # fmt: skip


def fit(
    model: nn.Module,
    steps: int,
    lr: float,
    step_loss: Callable[[int], torch.Tensor | None],
    checkpoint_at: list[int] | tuple[int, ...] = (),
    on_checkpoint: Callable[[int, nn.Module], None] | None = None,
    log_every: int = 50,
    log: logging.Logger | None = None,
) -> tuple[nn.Module, list[float]]:
    """Train model in place for `steps` steps; returns it in eval mode and the step losses."""
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=WEIGHT_DECAY, betas=BETAS)
    warmup = warmup_steps(steps)

    def lr_at(step: int) -> float:
        # Linear warmup then cosine to 10 %: the usual recipe that a short run tolerates.
        if step < warmup:
            return lr * (step + 1) / warmup
        frac = (step - warmup) / max(1, steps - warmup)
        return lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))

    losses: list[float] = []
    t0 = time.perf_counter()
    for step in range(1, steps + 1):
        loss = step_loss(step)
        if loss is None:
            continue  # nothing of this batch is kept; the learning-rate schedule goes on
        for g in opt.param_groups:
            g["lr"] = lr_at(step - 1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
        opt.step()
        losses.append(loss.item())
        if log is not None and log_every and (step % log_every == 0 or step == steps):
            recent = losses[-log_every:]
            log.info(
                "step %d/%d loss %.4f (%.1fs)",
                step,
                steps,
                sum(recent) / len(recent),
                time.perf_counter() - t0,
            )
        if step in checkpoint_at and on_checkpoint is not None:
            on_checkpoint(step, model)
    return model.eval(), losses
