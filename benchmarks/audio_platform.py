"""What the audio sandbox platform costs, measured side by side in one run.

    .venv/bin/python -m benchmarks.audio_platform [--works 40] [--home DIR]

Prints: FluidSynth render time per work with 1 and 2 worker processes (and the speed-up);
training step time of the DEMO and TINY diffusion models (and their ratio); sampling time per
generation; Griffin-Lim per generation with the mel basis' pseudo-inverse against librosa's
NNLS mel_to_audio (and the ratio, with the log-mel round-trip correlation of each); FLAC size
against raw 16-bit PCM. One torch thread throughout, as training and attribution use.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sandbox import corpus
from sandbox.audio_features import FeatureSettings, load_audio, log_mel, mel_to_audio
from sandbox.audio_model import (
    DEMO_CONFIG,
    TINY_CONFIG,
    AudioDiffusion,
    AudioDiffusionConfig,
    sample,
    training_loss,
)
from sandbox.audio_render import render_catalog_audio


def _step_time(cfg: AudioDiffusionConfig, batch: int, steps: int = 12) -> float:
    torch.manual_seed(0)
    model = AudioDiffusion(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randn(batch, cfg.n_mels, cfg.frames)
    times = []
    for _ in range(steps):
        t = torch.randint(cfg.num_train_timesteps, (batch,))
        t0 = time.perf_counter()
        loss = training_loss(model, x, t, torch.randn_like(x))
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times[2:])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--works", type=int, default=40)
    ap.add_argument("--home", type=Path, default=None, help="keep the catalog here (default: temp)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    home = args.home or Path(tempfile.mkdtemp(prefix="audio-bench-"))
    fs = FeatureSettings()
    rows: list[tuple[str, str]] = []
    try:
        corpus.build_catalog(home, limit=args.works, workers=2)
        per = {}
        for workers in (1, 2):
            shutil.rmtree(home / "catalog" / "audio", ignore_errors=True)
            t0 = time.perf_counter()
            stats = render_catalog_audio(home, workers=workers)
            per[workers] = (time.perf_counter() - t0) / stats["works"]
        rows += [
            ("render, s per work (1 process)", f"{per[1]:.3f}"),
            ("render, s per work (2 processes)", f"{per[2]:.3f}"),
            ("render speed-up, 2 vs 1 processes", f"{per[1] / per[2]:.2f}x"),
            ("catalog audio, works rendered", str(stats["works"])),
        ]
        n_raw = stats["works"] * fs.n_samples * 2
        rows += [
            ("FLAC bytes per 4 s excerpt", f"{stats['bytes'] / stats['works']:.0f}"),
            ("FLAC / raw 16-bit PCM", f"{stats['bytes'] / n_raw:.2f}"),
        ]

        demo = AudioDiffusionConfig(**DEMO_CONFIG)
        tiny = AudioDiffusionConfig(**TINY_CONFIG)
        d, t = _step_time(demo, 16), _step_time(tiny, 8)
        n_params = {k: sum(p.numel() for p in AudioDiffusion(c).parameters())
                    for k, c in (("demo", demo), ("tiny", tiny))}  # fmt: skip
        rows += [
            (f"train step, DEMO ({n_params['demo'] / 1e6:.2f} M params, batch 16), s", f"{d:.3f}"),
            (f"train step, TINY ({n_params['tiny'] / 1e6:.2f} M params, batch 8), s", f"{t:.3f}"),
            ("DEMO / TINY step time", f"{d / t:.1f}x"),
        ]

        torch.manual_seed(0)
        model = AudioDiffusion(demo).eval()
        t0 = time.perf_counter()
        sample(model, 16, torch.Generator().manual_seed(0), batch_size=16)
        rows.append(("sampling, DEMO, 50 DDPM steps, s per generation",
                     f"{(time.perf_counter() - t0) / 16:.3f}"))  # fmt: skip

        import librosa

        files = sorted((home / "catalog" / "audio").glob("*.flac"))[:8]
        xs = [log_mel(load_audio(f, fs), fs) for f in files]
        mel_to_audio(xs[0], fs)  # warm caches
        t0 = time.perf_counter()
        ours = [mel_to_audio(x, fs) for x in xs]
        t_ours = (time.perf_counter() - t0) / len(xs)
        t0 = time.perf_counter()
        ref = [
            librosa.feature.inverse.mel_to_audio(  # with the frame the features drop, repeated
                np.pad(librosa.db_to_power((x - 1.0) * fs.top_db / 2), ((0, 0), (0, 1)), "edge"),
                sr=fs.sample_rate, n_fft=fs.n_fft,
                hop_length=fs.hop_length, n_iter=fs.griffin_lim_iters, length=fs.n_samples,
            )
            for x in xs
        ]  # fmt: skip
        t_ref = (time.perf_counter() - t0) / len(xs)

        def corr(ys):
            return np.mean(
                [
                    np.corrcoef(x.ravel(), log_mel(y, fs).ravel())[0, 1]
                    for x, y in zip(xs, ys, strict=True)
                ]
            )

        rows += [
            ("Griffin-Lim via mel pseudo-inverse, s per generation", f"{t_ours:.3f}"),
            ("Griffin-Lim via librosa mel_to_audio (NNLS), s per gen.", f"{t_ref:.3f}"),
            ("NNLS / pseudo-inverse time", f"{t_ref / t_ours:.1f}x"),
            ("log-mel round-trip correlation, pseudo-inverse / NNLS",
             f"{corr(ours):.3f} / {corr(ref):.3f}"),
        ]  # fmt: skip
    finally:
        if args.home is None:
            shutil.rmtree(home, ignore_errors=True)
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v:>12}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
