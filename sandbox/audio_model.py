"""A small mel-spectrogram diffusion model built from `diffusers`: the audio platform's model.

The denoiser is diffusers' ``UNet1DModel`` in its Dance Diffusion layout (residual conv blocks,
self-attention at the two lowest resolutions, Fourier time features fed in as extra input
channels): mel bins are the channels, frames the length, convolutions run along time. That
layout keeps a full-resolution skip connection, which predicting per-frame noise needs: the
temporal-ResNet layout diffusers ships for trajectory diffusion drops it and stalled at a
loss of ~0.87 where this one reached ~0.21 in the same 200 steps (measured on 40 works). The
noise schedule is diffusers' ``DDPMScheduler`` (epsilon prediction). One readable file on
purpose, like sandbox/model.py: the sandbox exists so attribution can be tested on a
diffusion model whose training data and checkpoints we control, not to make good music.

What the attribution adapter calls:

- ``denoising_loss(model, x0, timesteps, noise)``: per-example loss (B,), the mean squared
  error of the predicted noise averaged over K fixed (timestep, noise) draws shared by every
  example (D-TRAK's measurement; Zheng et al. 2024);
- ``fixed_draws(config, k, seed)``: those K draws, seeded;
- ``sample(model, n, generator)``: n generations (n, n_mels, frames);
- ``hidden_states(model, x0, timestep)``: a per-example embedding (B, C) for similarity.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler, UNet1DModel
from torch import nn


@dataclass
class AudioDiffusionConfig:
    n_mels: int = 64  # channels of the input
    frames: int = 128  # length of the input; divisible by 2 ** (len(block_out_channels) - 1)
    block_out_channels: tuple[int, int, int] = (64, 64, 64)
    time_embedding_dim: int = 16  # Fourier time features, concatenated to the input
    num_train_timesteps: int = 1000
    beta_schedule: str = "squaredcos_cap_v2"
    sampling_steps: int = 50  # DDPM steps when sampling (spaced over the training schedule)

    def __post_init__(self) -> None:
        self.block_out_channels = tuple(int(c) for c in self.block_out_channels)
        if len(self.block_out_channels) != 3:
            raise ValueError("the Dance Diffusion layout has 3 blocks: give 3 channel widths")
        if self.frames % 8:  # two down blocks and the mid block halve the length
            raise ValueError(f"frames {self.frames} is not divisible by 8")
        if min(self.block_out_channels[1:]) < 32:
            raise ValueError("attention blocks need >= 32 channels (one head per 32)")
        if self.time_embedding_dim % 2:
            raise ValueError("time_embedding_dim must be even (sin and cos halves)")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["block_out_channels"] = list(self.block_out_channels)
        return d


# 1.29 M parameters, 0.134 s per training step of 16 on one core of this machine.
DEMO_CONFIG = {"block_out_channels": (64, 64, 64), "time_embedding_dim": 16}
# 0.34 M parameters, 0.051 s per step of 8: the tests' model.
TINY_CONFIG = {"block_out_channels": (32, 32, 32), "time_embedding_dim": 8}


class AudioDiffusion(nn.Module):
    """UNet1DModel denoiser plus the DDPM schedule it was trained under."""

    def __init__(self, cfg: AudioDiffusionConfig) -> None:
        super().__init__()
        self.config = cfg
        self.unet = UNet1DModel(
            sample_size=cfg.frames,
            in_channels=cfg.n_mels,
            out_channels=cfg.n_mels,
            extra_in_channels=cfg.time_embedding_dim,
            time_embedding_type="fourier",
            time_embedding_dim=cfg.time_embedding_dim,
            flip_sin_to_cos=True,
            use_timestep_embedding=False,
            down_block_types=("DownBlock1DNoSkip", "DownBlock1D", "AttnDownBlock1D"),
            up_block_types=("AttnUpBlock1D", "UpBlock1D", "UpBlock1DNoSkip"),
            mid_block_type="UNetMidBlock1D",
            block_out_channels=cfg.block_out_channels,
        )
        self.scheduler = make_scheduler(cfg)
        # A buffer, not persistent: the schedule is config, the state_dict holds weights only.
        self.register_buffer(
            "alphas_cumprod", self.scheduler.alphas_cumprod.clone().float(), persistent=False
        )

    def forward(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Predicted noise (B, n_mels, frames) for noisy inputs x_t at timesteps t (B,)."""
        # Fourier features of t / T in [0, 1): smooth in t, as Dance Diffusion feeds them.
        tau = t.to(x_t.dtype) / self.config.num_train_timesteps
        return self.unet(x_t, tau, return_dict=False)[0]

    def noisy(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise: DDPMScheduler.add_noise, kept
        differentiable in x0 and batched over any leading shape."""
        abar = self.alphas_cumprod[t].view(-1, *([1] * (x0.dim() - 1)))
        return abar.sqrt() * x0 + (1 - abar).sqrt() * noise


def make_scheduler(cfg: AudioDiffusionConfig) -> DDPMScheduler:
    return DDPMScheduler(
        num_train_timesteps=cfg.num_train_timesteps,
        beta_schedule=cfg.beta_schedule,
        prediction_type="epsilon",
        clip_sample=True,
        clip_sample_range=1.0,  # inputs live in [-1, 1] (sandbox.audio_features)
    )


def training_loss(
    model: AudioDiffusion, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor
) -> torch.Tensor:
    """The usual DDPM objective, one (t, noise) draw per example: mean over the batch."""
    return F.mse_loss(model(model.noisy(x0, noise, t), t), noise)


def fixed_draws(
    cfg: AudioDiffusionConfig, k: int = 8, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """K (timestep, noise) pairs shared by every example: timesteps at the centres of K equal
    strata of the schedule (so small and large noise levels are both measured), noise
    (K, n_mels, frames) from a seeded generator. Same k and seed -> same draws."""
    T = cfg.num_train_timesteps
    timesteps = torch.tensor([int((i + 0.5) * T / k) for i in range(k)], dtype=torch.long)
    gen = torch.Generator().manual_seed(seed)
    noise = torch.randn((k, cfg.n_mels, cfg.frames), generator=gen)
    return timesteps, noise


def denoising_loss(
    model: AudioDiffusion, x0: torch.Tensor, timesteps: torch.Tensor, noise: torch.Tensor
) -> torch.Tensor:
    """Per-example denoising loss (B,): the MSE between each fixed noise draw and the model's
    prediction of it, averaged over the K draws (timesteps (K,), noise (K, C, L)).

    Every example meets the same K draws, so the loss differs between examples only through
    their content: the measurement D-TRAK's gradient features and unlearning scores are
    taken of. Differentiable in the model's parameters and in x0; one batched forward of B*K.
    """
    pred, eps = _predict_at_draws(model, x0, timesteps, noise)
    B, K = x0.size(0), timesteps.size(0)
    return ((pred - eps) ** 2).mean(dim=(1, 2)).view(B, K).mean(dim=1)


def noise_prediction_square(
    model: AudioDiffusion, x0: torch.Tensor, timesteps: torch.Tensor, noise: torch.Tensor
) -> torch.Tensor:
    """Per-example squared norm of the predicted noise (B,), mean over elements and the K
    fixed draws: D-TRAK's "L_square" measurement (Zheng et al. 2024), whose gradient
    features predicted retraining better than the loss's in their experiments. The same
    inputs and draws as denoising_loss; only what is measured of the prediction differs."""
    pred, _ = _predict_at_draws(model, x0, timesteps, noise)
    B, K = x0.size(0), timesteps.size(0)
    return (pred**2).mean(dim=(1, 2)).view(B, K).mean(dim=1)


def _predict_at_draws(
    model: AudioDiffusion, x0: torch.Tensor, timesteps: torch.Tensor, noise: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(prediction, noise), both (B*K, C, L) example-major, of x0 noised at the K draws."""
    if x0.dim() != 3:
        raise ValueError(f"x0 must be (B, n_mels, frames), got {tuple(x0.shape)}")
    B, K = x0.size(0), timesteps.size(0)
    if noise.shape != (K, *x0.shape[1:]):
        raise ValueError(f"noise must be (K={K}, {tuple(x0.shape[1:])}), got {tuple(noise.shape)}")
    t = timesteps.to(x0.device).repeat(B)  # (B*K,) example-major
    eps = noise.to(x0).unsqueeze(0).expand(B, *noise.shape).reshape(B * K, *x0.shape[1:])
    x = x0.unsqueeze(1).expand(B, K, *x0.shape[1:]).reshape(B * K, *x0.shape[1:])
    return model(model.noisy(x, eps, t), t), eps


@torch.no_grad()
def sample(
    model: AudioDiffusion,
    n: int,
    generator: torch.Generator,
    steps: int | None = None,
    batch_size: int = 16,
) -> torch.Tensor:
    """n generations (n, n_mels, frames) by ancestral DDPM sampling with diffusers'
    DDPMScheduler; the generator decides every draw, so a seed decides the outputs."""
    cfg = model.config
    sched = make_scheduler(cfg)
    sched.set_timesteps(steps or cfg.sampling_steps)
    out = []
    for i in range(0, n, batch_size):
        b = min(batch_size, n - i)
        x = torch.randn((b, cfg.n_mels, cfg.frames), generator=generator)
        for t in sched.timesteps:
            eps = model(x, t.expand(b))
            x = sched.step(eps, t, x, generator=generator).prev_sample
        out.append(x.clamp(-1.0, 1.0))
    return torch.cat(out) if out else torch.empty((0, cfg.n_mels, cfg.frames))


def hidden_states(
    model: AudioDiffusion, x0: torch.Tensor, timestep: int = 0, noise: torch.Tensor | None = None
) -> torch.Tensor:
    """Per-example embedding (B, C_last): the mid block's output, mean-pooled over time, of
    the input noised to `timestep` (default 0: almost clean) with `noise` (zeros if None).
    What the model "hears" in an excerpt, for black-box-style similarity; one forward pass."""
    captured: list[torch.Tensor] = []
    handle = model.unet.mid_block.register_forward_hook(lambda m, i, o: captured.append(o))
    try:
        t = torch.full((x0.size(0),), int(timestep), dtype=torch.long)
        eps = torch.zeros_like(x0) if noise is None else noise.expand_as(x0)
        model(model.noisy(x0, eps, t), t)
    finally:
        handle.remove()
    return captured[0].mean(dim=2)
