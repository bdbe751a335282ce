"""What attribution quality runs need of the audio sandbox model: a retrainer for LDS and
top-k removal (attribution/evaluate.py), and the losses it reads.

The counterpart of sandbox/gpt_eval.py. A target's loss is the attribution adapter's own
measurement (sandbox/audio_adapter.py): the denoising loss averaged over the same K fixed
(timestep, noise) draws, so the LDS truth and the attributed quantity are one function.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from sandbox.audio_model import AudioDiffusion, AudioDiffusionConfig, denoising_loss, fixed_draws
from sandbox.audio_train import fit_audio_diffusion


def target_losses(
    model: AudioDiffusion, targets: list, draws: int = 8, draw_seed: int = 0, batch: int = 32
) -> np.ndarray:
    """Each target's denoising loss (float64) at the adapter's fixed draws (draws, draw_seed)."""
    timesteps, noise = fixed_draws(model.config, draws, draw_seed)
    out = []
    with torch.no_grad():
        for i in range(0, len(targets), batch):
            x0 = torch.stack([torch.as_tensor(t) for t in targets[i : i + batch]])
            out.append(denoising_loss(model, x0, timesteps, noise).double())
    return torch.cat(out).numpy()


@dataclass
class AudioRetrainSpec:
    """The reference run's recipe; calling it is attribution.evaluate's retrainer.

    Retraining keeps the seed and every step's batch, timestep and noise draws of the full
    run and drops the excluded examples from them (fit_audio_diffusion's keep mask), so the
    data is the only thing that differs between retrained models."""

    config: AudioDiffusionConfig
    steps: int
    batch_size: int
    lr: float
    seed: int
    draws: int = 8  # the adapter's measurement (sandbox.audio_adapter.DRAWS, DRAW_SEED)
    draw_seed: int = 0

    def fit(self, train: list, keep: list[bool] | None = None) -> AudioDiffusion:
        x = torch.stack([torch.as_tensor(t) for t in train])
        model, _ = fit_audio_diffusion(
            x, self.config, self.steps, self.batch_size, self.lr, self.seed, log_every=0,
            keep=None if keep is None else [bool(k) for k in keep],
        )  # fmt: skip
        return model

    def __call__(self, train: list, keep: list[bool] | None, targets: list) -> np.ndarray:
        return target_losses(self.fit(train, keep), targets, self.draws, self.draw_seed)
