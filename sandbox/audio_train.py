"""Train the audio platform's diffusion model and store it as a content-addressed model version.

    out_root/<model_version>/
        config.json          AudioDiffusionConfig, FeatureSettings and the training parameters
        checkpoints/ckpt-<step>.pt   state_dicts spaced through training; the last is served
        manifest.parquet     example_index, work_id, token_sha256 (the catalog score the audio
                             was rendered from), pcm_sha256 (the rendered audio), input_sha256
                             (the model input: dtype, shape and bytes of its log-mel)
        train_inputs.npy     the training inputs (N, n_mels, frames) float32, manifest order;
                             the platform's own copy, never served (sandbox/server.py)
        model_version.json   model_version, hashes, checkpoints, seed, adapter, train_loss

model_version = "sbx-audio-" + sha256(final checkpoint file)[:12], as sandbox/train.py does for
the symbolic model: the same seed and inputs give byte-identical checkpoints on the same torch
version and CPU with the thread count pinned (tests/test_audio_model.py checks it).

The manifest keeps ``token_sha256`` so the licensor's registration check (work known, score
equal to its catalog copy: sql/checks/manifest_against_catalog.sql) applies unchanged.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from attribution.hashing import file_sha256
from sandbox.audio_features import FeatureSettings, input_sha256, load_audio, log_mel
from sandbox.audio_model import AudioDiffusion, AudioDiffusionConfig, training_loss
from sandbox.fit import checkpoint_steps as ckpt_steps
from sandbox.fit import fit, recipe
from sandbox.model_version import StoredModelVersion, store
from sandbox.train import TRAIN_THREADS, torch_threads

log = logging.getLogger("sandbox.audio_train")

ADAPTER = "sandbox-audio-diffusion"  # the entry point that attributes this model (the lead's)
TRAIN_INPUTS_FILE = "train_inputs.npy"
# The model's own samples, rendered like its generations: the null set of the calibrated
# confidence rule (sandbox.audio_platform.store_null_samples; the adapter's null_items()).
NULL_INPUTS_FILE = "null_inputs.npy"
MANIFEST_SCHEMA = pa.schema(
    [
        ("example_index", pa.int64()),
        ("work_id", pa.string()),
        ("token_sha256", pa.string()),
        ("pcm_sha256", pa.string()),
        ("input_sha256", pa.string()),
    ]
)

# ~110 s on one core of this machine (0.134 s/step, benchmarks/audio_platform.py); training
# loss ~1.1 -> ~0.10 on 296 works. Three times that when the cores are shared with other jobs.
DEMO_TRAIN = {"steps": 800, "batch_size": 16, "lr": 2e-3}
# ~6 s (0.05 s/step): the tests' model, whose loss falls from ~1.1 to ~0.7.
TINY_TRAIN = {"steps": 120, "batch_size": 8, "lr": 3e-3}


def catalog_inputs(
    home: Path, settings: FeatureSettings | None = None, limit: int | None = None
) -> pd.DataFrame:
    """The rendered catalog (HOME/catalog/audio.parquet) as model inputs, by work_id:
    columns work_id, token_sha256, pcm_sha256, input (float32 (n_mels, frames)),
    input_sha256."""
    settings = settings or FeatureSettings()
    catalog = Path(home) / "catalog"
    audio = pq.read_table(catalog / "audio.parquet").to_pandas().sort_values("work_id")
    if limit is not None:
        audio = audio.head(limit)
    inputs = [
        log_mel(load_audio(catalog / "audio" / f, settings), settings) for f in audio["file_name"]
    ]
    return pd.DataFrame(
        {
            "work_id": audio["work_id"].tolist(),
            "token_sha256": audio["token_sha256"].tolist(),
            "pcm_sha256": audio["pcm_sha256"].tolist(),
            "input": inputs,
            "input_sha256": [input_sha256(x) for x in inputs],
        }
    )


def fit_audio_diffusion(
    inputs: torch.Tensor,
    config: AudioDiffusionConfig,
    steps: int,
    batch_size: int,
    lr: float,
    seed: int,
    checkpoint_steps: list[int] | tuple[int, ...] = (),
    on_checkpoint=None,
    log_every: int = 100,
    keep: list[bool] | None = None,
) -> tuple[AudioDiffusion, list[float]]:
    """Train the denoiser in memory on inputs (N, n_mels, frames); the loop
    train_audio_model_version stores and benchmarks retrain with.

    keep: optional mask over the N examples. Every step draws its batch indices, timesteps
    and noise for the full batch first and drops excluded examples after, so a retraining
    "without work i" sees exactly the draws of the full run for every kept example.
    """
    n = int(inputs.size(0))
    if keep is not None and len(keep) != n:
        raise ValueError(f"keep mask has {len(keep)} entries for {n} examples")
    if tuple(inputs.shape[1:]) != (config.n_mels, config.frames):
        raise ValueError(f"inputs are {tuple(inputs.shape[1:])}, the model takes "
                         f"{(config.n_mels, config.frames)}")  # fmt: skip
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = AudioDiffusion(config)
    b = min(batch_size, n)

    def step_loss(step: int) -> torch.Tensor | None:
        ix = torch.randint(n, (b,), generator=gen)
        t = torch.randint(config.num_train_timesteps, (b,), generator=gen)
        noise = torch.randn((b, config.n_mels, config.frames), generator=gen)
        if keep is not None:
            sel = torch.tensor([bool(keep[i]) for i in ix.tolist()])
            if not bool(sel.any()):
                return None
            ix, t, noise = ix[sel], t[sel], noise[sel]
        return training_loss(model, inputs[ix], t, noise)

    return fit(model, steps, lr, step_loss, checkpoint_steps, on_checkpoint, log_every, log)


def train_audio_model_version(
    examples: pd.DataFrame,
    out_root: Path,
    config: AudioDiffusionConfig,
    features: FeatureSettings,
    steps: int,
    batch_size: int,
    lr: float,
    seed: int,
    n_checkpoints: int = 3,
    log_every: int = 100,
) -> Path:
    """Train on CPU (TRAIN_THREADS torch threads) and return out_root/<model_version>/.

    examples: catalog_inputs(...) rows (work_id, token_sha256, pcm_sha256, input,
    input_sha256). Same examples, config and seed -> same model_version."""
    if examples.empty:
        raise ValueError("no training examples")
    x = np.stack([np.asarray(v, dtype="<f4") for v in examples["input"]])
    for i, (v, h) in enumerate(zip(x, examples["input_sha256"], strict=True)):
        if input_sha256(v) != h:
            raise ValueError(f"training example {i} ({examples['work_id'].iloc[i]}) does not "
                             "match its input_sha256")  # fmt: skip

    def fill(folder: Path) -> dict:
        names: list[str] = []
        t0 = time.perf_counter()

        def save(step: int, model: AudioDiffusion) -> None:
            names.append(f"ckpt-{step}.pt")
            torch.save(model.state_dict(), folder / "checkpoints" / names[-1])

        with torch_threads(TRAIN_THREADS):
            _, losses = fit_audio_diffusion(
                torch.from_numpy(x), config, steps, batch_size, lr, seed,
                ckpt_steps(steps, n_checkpoints), save, log_every,
            )  # fmt: skip
        tail = losses[-max(1, steps // 10) :]
        train = recipe(steps, batch_size, lr, seed, len(names), len(x), TRAIN_THREADS)
        (folder / "config.json").write_text(json.dumps(
            {"model": config.to_dict(), "features": features.to_dict(), "train": train}, indent=1
        ))  # fmt: skip
        pq.write_table(
            pa.Table.from_pydict(
                {
                    "example_index": list(range(len(x))),
                    "work_id": examples["work_id"].astype(str).tolist(),
                    "token_sha256": examples["token_sha256"].astype(str).tolist(),
                    "pcm_sha256": examples["pcm_sha256"].astype(str).tolist(),
                    "input_sha256": examples["input_sha256"].astype(str).tolist(),
                },
                schema=MANIFEST_SCHEMA,
            ),
            folder / "manifest.parquet",
        )
        np.save(folder / TRAIN_INPUTS_FILE, x)
        model_sha = file_sha256(folder / "checkpoints" / names[-1])
        return {
            "model_version": "sbx-audio-" + model_sha[:12],
            "model_sha256": model_sha,
            "manifest_sha256": file_sha256(folder / "manifest.parquet"),
            "checkpoints": names,
            "seed": seed,
            "adapter": ADAPTER,
            "input": {"dtype": "<f4", "shape": [config.n_mels, config.frames],
                      "kind": "normalised log-mel (sandbox/audio_features.py)"},
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "train_loss": sum(tail) / len(tail),
            "train_seconds": round(time.perf_counter() - t0, 2),
        }  # fmt: skip

    return store(out_root, fill, log)


@dataclass(kw_only=True)
class AudioModelVersion(StoredModelVersion):
    config: AudioDiffusionConfig
    features: FeatureSettings

    def build(self) -> AudioDiffusion:
        return AudioDiffusion(self.config)

    def train_inputs(self) -> np.ndarray:
        """The platform's training inputs (N, n_mels, frames), each checked against the
        manifest's input_sha256."""
        x = np.load(self.path / TRAIN_INPUTS_FILE)
        for i, (v, h) in enumerate(zip(x, self.manifest["input_sha256"], strict=True)):
            if input_sha256(v) != h:
                raise ValueError(f"training input {i} does not match manifest input_sha256")
        return x

    def retrain(self, keep: list[bool] | None = None, steps: int | None = None,
                inputs: np.ndarray | None = None) -> AudioDiffusion:  # fmt: skip
        """The same training run in memory, on the examples `keep` selects (all if None), with
        the batch draws of the stored run: what LDS and removal benchmarks retrain with."""
        p = self.train_params
        x = torch.from_numpy(self.train_inputs() if inputs is None else inputs)
        with torch_threads(TRAIN_THREADS):
            model, _ = fit_audio_diffusion(x, self.config, steps or p["steps"], p["batch_size"],
                                           p["lr"], p["seed"], log_every=0, keep=keep)  # fmt: skip
        return model


def load_audio_model_version(path: Path) -> AudioModelVersion:
    path = Path(path)
    for name in ("model_version.json", "config.json", "manifest.parquet"):
        if not (path / name).exists():
            raise FileNotFoundError(f"model version folder {path} has no {name}")
    info = json.loads((path / "model_version.json").read_text())
    if info.get("adapter") != ADAPTER:
        raise ValueError(f"{path} is not an audio model version (adapter {info.get('adapter')!r})")
    cfg = json.loads((path / "config.json").read_text())
    return AudioModelVersion(
        path=path,
        info=info,
        config=AudioDiffusionConfig(**cfg["model"]),
        features=FeatureSettings(**cfg["features"]),
        manifest=pq.read_table(path / "manifest.parquet").to_pandas(),
        train_params=cfg.get("train", {}),
    )
