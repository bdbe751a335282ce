"""The audio platform's generation log: sampled audio, planted near copies and bad records.

Each generation is a mel spectrogram sampled from the platform's diffusion model, rendered
to audio by Griffin-Lim and saved as 16-bit FLAC (soundfile) under the platform's audio
folder; its record references the file instead of carrying tokens:

    "output": {"audio": {"name": "<generation_id>.flac", "sha256": "<hex of the file>",
                         "bytes": 71234, "format": "flac", "sample_rate": 16000,
                         "channels": 1, "duration_s": 4.0}}

The API serves the file at GET /v1/generations/{generation_id}/audio (sandbox/server.py);
`name` is the platform's own file name and never a path a client uses.

Planted on purpose, named in `<log>.planted.json`:

- `copies`: catalog works from the training manifest, copied exactly, pitch-shifted by
  +-1..2 semitones, time-stretched by +-10 % or mixed with white noise at 20 dB SNR
  (librosa.effects): what attribution has to trace back to the work;
- `bad_records`: negative revenue, an unlicensed model version, an audio file whose sha256
  differs from the record's and a record whose audio file the platform does not have: what
  ingest has to quarantine with the rule named.

``build_audio_sandbox(home, ...)`` builds everything the demo needs, cached: catalog audio,
model version and the month's log.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from sandbox.audio_features import FeatureSettings, fit_length, load_audio, mel_to_audio, to_pcm16
from sandbox.audio_render import write_audio
from sandbox.audio_train import load_audio_model_version
from sandbox.workers import process_pool

log = logging.getLogger(__name__)

TERRITORIES = ("US", "GB", "DE", "FR", "JP", "BR", "CA", "SE")
SCHEMA_VERSION = 1
TRANSFORMS = ("exact", "pitch_shift", "time_stretch", "noise")
NOISE_SNR_DB = 20.0
MISSING_NAME = "not-on-this-platform.flac"  # the bad record whose audio the platform lacks


@dataclass(frozen=True)
class AudioPlatformSpec:
    platform_id: str
    window_start: datetime
    window_end: datetime
    n_generations: int  # records in the log, planted copies included, bad records not
    copies_per_transform: int = 2  # of each of TRANSFORMS
    bad_records: bool = True
    seed: int = 13
    sampling_steps: int | None = None  # None: the model config's
    workers: int = 2  # Griffin-Lim renders in parallel
    transforms: tuple[str, ...] = field(default=TRANSFORMS)


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _generation_id(platform_id: str, window_start: datetime, seq: int) -> str:
    digest = hashlib.sha256(f"{platform_id}/{_iso(window_start)}/{seq}".encode()).hexdigest()[:16]
    return f"{platform_id}-g{digest}"


def near_copy(audio: np.ndarray, transform: str, rng: random.Random,
              settings: FeatureSettings) -> tuple[np.ndarray, dict]:  # fmt: skip
    """A catalog excerpt after one transform with parameters drawn from rng, and the
    parameters (which apply_transform turns into the same copy again)."""
    if transform == "exact":
        params: dict = {}
    elif transform == "pitch_shift":
        params = {"semitones": rng.choice((-2, -1, 1, 2))}
    elif transform == "time_stretch":
        params = {"rate": rng.choice((0.9, 1.1))}  # +-10 % tempo
    elif transform == "noise":
        params = {"snr_db": NOISE_SNR_DB, "noise_seed": rng.randrange(2**32)}
    else:
        raise ValueError(f"unknown transform {transform!r}")
    return apply_transform(audio, transform, params, settings), params


def apply_transform(audio: np.ndarray, transform: str, params: dict,
                    settings: FeatureSettings) -> np.ndarray:  # fmt: skip
    """The transform (librosa.effects for pitch and tempo; white noise at a set SNR), cut or
    padded to the excerpt length and peak-normalised like every output."""
    import librosa

    sr = settings.sample_rate
    if transform == "exact":
        out = audio
    elif transform == "pitch_shift":
        out = librosa.effects.pitch_shift(audio, sr=sr, n_steps=params["semitones"])
    elif transform == "time_stretch":
        out = librosa.effects.time_stretch(audio, rate=params["rate"])
    elif transform == "noise":
        noise = np.random.default_rng(params["noise_seed"]).standard_normal(len(audio))
        p_sig, p_noise = float(np.mean(audio**2)), float(np.mean(noise**2))
        out = audio + noise * np.sqrt(p_sig / (p_noise * 10 ** (params["snr_db"] / 10)))
    else:
        raise ValueError(f"unknown transform {transform!r}")
    out = fit_length(out, settings.n_samples)
    peak = float(np.abs(out).max())
    return (out / peak * 0.891 if peak > 0 else out).astype(np.float32)


def _vocode(job: tuple) -> np.ndarray:
    mel, settings_d = job
    return mel_to_audio(mel, FeatureSettings(**settings_d))


def _write_flac(path: Path, audio: np.ndarray, sr: int) -> dict:
    write_audio(path, to_pcm16(audio), sr, "flac")
    data = path.read_bytes()
    return {
        "name": path.name,
        "sha256": hashlib.sha256(data).hexdigest(),
        "bytes": len(data),
        "format": "flac",
        "sample_rate": sr,
        "channels": 1,
        "duration_s": round(len(audio) / sr, 6),
    }


def build_audio_generation_log(
    model_dir: Path, catalog_dir: Path, spec: AudioPlatformSpec, out_path: Path,
    audio_dir: Path | None = None,
) -> dict:  # fmt: skip
    """Sample, render and write the audio platform's log (JSON Lines) and its audio files.

    catalog_dir: the platform's copy of its training audio (HOME/catalog: audio.parquet and
    audio/), where planted copies come from. audio_dir defaults to out_path's folder/audio,
    where sandbox/server.py looks. Returns a summary (also written to <log>.planted.json)
    with the planted copies and bad records and the time each stage took.
    """
    timings: dict[str, float] = {}
    mv = load_audio_model_version(model_dir)
    fs = mv.features
    audio_dir = Path(audio_dir) if audio_dir else out_path.parent / "audio"
    audio_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(spec.seed)
    n_copies = spec.copies_per_transform * len(spec.transforms)
    n_sampled = spec.n_generations - n_copies
    if n_sampled < 0:
        raise ValueError(f"{spec.n_generations} generations cannot hold {n_copies} planted copies")

    t0 = time.perf_counter()
    from sandbox.audio_model import sample
    from sandbox.train import torch_threads

    with torch_threads(1):
        model = mv.load_model()
        mels = sample(model, n_sampled, torch.Generator().manual_seed(spec.seed),
                      steps=spec.sampling_steps).numpy()  # fmt: skip
    timings["sample_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    jobs = [(m, fs.to_dict()) for m in mels]
    if spec.workers > 1 and len(jobs) > 1:
        with process_pool(spec.workers) as pool:
            audios = list(pool.map(_vocode, jobs, chunksize=4))
    else:
        audios = [_vocode(j) for j in jobs]
    timings["griffin_lim_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    catalog = pd.read_parquet(Path(catalog_dir) / "audio.parquet").set_index("work_id")
    manifest_works = [w for w in mv.manifest["work_id"] if w in catalog.index]
    picks = rng.sample(manifest_works, k=n_copies)
    copies = []
    for j, work_id in enumerate(picks):
        transform = spec.transforms[j // spec.copies_per_transform]
        src = load_audio(Path(catalog_dir) / "audio" / catalog.loc[work_id, "file_name"], fs)
        out, params = near_copy(src, transform, rng, fs)
        audios.append(out)
        copies.append({"work_id": work_id, "transform": transform, "params": params})
    timings["copies_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    styles = sorted(set(catalog["style"])) or ["other"]
    span = (spec.window_end - spec.window_start).total_seconds()
    offsets = sorted(rng.uniform(0, span) for _ in audios)
    order = list(range(len(audios)))
    rng.shuffle(order)  # planted copies land anywhere in the month
    records, planted_copies = [], []
    for seq, (k, off) in enumerate(zip(order, offsets, strict=True)):
        gid = _generation_id(spec.platform_id, spec.window_start, seq)
        ref = _write_flac(audio_dir / f"{gid}.flac", audios[k], fs.sample_rate)
        style = rng.choice(styles)  # the model is unconditional: the style is the prompt's
        cents = Decimal(rng.randint(100, 2500)) / Decimal(10000)
        records.append({
            "schema_version": SCHEMA_VERSION,
            "generation_id": gid,
            "model_version": mv.model_version,
            "created_at": _iso(spec.window_start + timedelta(seconds=off)),
            "style": style,
            "prompt": f"a {fs.n_samples / fs.sample_rate:g}-second piece in the style of {style}",
            "output": {"audio": ref},
            "territory": rng.choice(TERRITORIES),
            "revenue": {"amount": f"{cents:.4f}", "currency": "USD"},
        })  # fmt: skip
        if k >= n_sampled:
            planted_copies.append(
                {"generation_id": gid, **copies[k - n_sampled], "audio_sha256": ref["sha256"]}
            )

    bad = []
    if spec.bad_records and records:
        mid = spec.window_start + timedelta(seconds=span / 2)
        template = records[0]
        wrong_sha = dict(template["output"]["audio"], sha256="0" * 64)
        missing = dict(template["output"]["audio"], name=MISSING_NAME)
        for j, (rule, override) in enumerate([
            ("negative_revenue", {"revenue": {"amount": "-0.0500", "currency": "USD"}}),
            ("unknown_model_version", {"model_version": "sbx-audio-000000000000"}),
            ("audio_sha256_mismatch", {"output": {"audio": wrong_sha}}),
            ("audio_missing", {"output": {"audio": missing}}),
        ]):  # fmt: skip
            rec = dict(template, **override)
            rec["generation_id"] = _generation_id(spec.platform_id, spec.window_start,
                                                  len(records) + j)  # fmt: skip
            if rule == "audio_sha256_mismatch":  # its own file, whose bytes the record misstates
                own = audio_dir / f"{rec['generation_id']}.flac"
                own.write_bytes((audio_dir / template["output"]["audio"]["name"]).read_bytes())
                rec["output"] = {"audio": dict(wrong_sha, name=own.name)}
            rec["created_at"] = _iso(mid + timedelta(seconds=j))
            bad.append({"generation_id": rec["generation_id"], "rule": rule})
            records.append(rec)
        records.sort(key=lambda r: r["created_at"])
    timings["write_s"] = time.perf_counter() - t0

    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.name}.tmp")
    with tmp.open("w") as fh:
        for rec in records:
            fh.write(json.dumps(rec, sort_keys=True) + "\n")
    os.replace(tmp, out_path)
    sizes = [r["output"]["audio"]["bytes"] for r in records]
    summary = {
        "platform_id": spec.platform_id,
        "model_version": mv.model_version,
        "n_records": len(records),
        "audio_dir": str(audio_dir),
        "audio_bytes": int(sum(sizes)),
        "planted": {"copies": planted_copies, "bad_records": bad},
        "timings": {k: round(v, 2) for k, v in timings.items()},
        "sample_s_per_generation": round(timings["sample_s"] / max(1, n_sampled), 4),
        "griffin_lim_s_per_generation": round(timings["griffin_lim_s"] / max(1, n_sampled), 4),
    }
    out_path.with_suffix(".planted.json").write_text(json.dumps(summary, indent=1))
    return summary


# --- the whole audio sandbox, for the demo ---------------------------------------------------


@dataclass(frozen=True)
class AudioSandboxConfig:
    period: str = "2026-10"
    platform_id: str = "sandbox-audio"
    n_works: int | None = 300  # the first N works of HOME/catalog (by work_id); None: all
    n_generations: int = 120
    model_size: str = "demo"  # "demo" or "tiny"
    train_steps: int | None = None  # None: the size's recipe (sandbox.audio_train)
    days: int | None = None  # the log covers only the first N days of the period (tests)
    copies_per_transform: int = 2
    seed: int = 13
    catalog_limit: int | None = None  # used only when HOME/catalog has no catalog yet
    workers: int = 2
    # The model's own samples stored beside the model version as the null set of the
    # calibrated confidence rule (store_null_samples); 0: none (the contract then cannot use
    # the "pvalue" rule).
    null_samples: int = 0


TINY_SANDBOX = AudioSandboxConfig(n_works=24, n_generations=16, model_size="tiny", days=2,
                                  copies_per_transform=1)  # fmt: skip


# Never one of the generation seeds (AudioPlatformSpec.seed): the null copies nothing the
# platform reported.
NULL_SEED = 1_000_003


def store_null_samples(
    model_dir: Path, n: int, seed: int = NULL_SEED, workers: int = 2, sampling_steps: int | None = None
) -> Path:
    """Sample n spectrograms from the stored model (fixed seed), render each exactly as a
    generation is rendered (Griffin-Lim, 16-bit FLAC, read back and turned into the model's
    input), and store those that are not a training input as the model version's null set
    (sandbox/audio_adapter.py null_items()): pieces drawn like the generations that copy
    nothing. Written beside and renamed, so a reader never sees half a file. Cached: a stored
    null of the same size and seed is kept."""
    from sandbox.audio_train import NULL_INPUTS_FILE

    model_dir = Path(model_dir)
    path = model_dir / NULL_INPUTS_FILE
    stamp = model_dir / f"{NULL_INPUTS_FILE}.json"
    key = {"n": n, "seed": seed, "sampling_steps": sampling_steps}
    if path.exists() and stamp.exists() and json.loads(stamp.read_text()) == key:
        return path
    mv = load_audio_model_version(model_dir)
    inputs = rendered_samples(mv, n, seed, workers, sampling_steps)
    tmp_path = path.with_name(f".{path.name}.tmp.npy")
    shape = (0, *mv.features.shape)
    np.save(tmp_path, np.stack(inputs).astype(np.float32) if inputs else np.zeros(shape))
    tmp_path.replace(path)
    stamp.write_text(json.dumps(key))
    return path


def rendered_samples(
    mv, n: int, seed: int, workers: int = 2, sampling_steps: int | None = None
) -> list[np.ndarray]:
    """The model inputs of n samples of the model version mv (fixed seed), each rendered
    exactly as a generation is (Griffin-Lim, 16-bit FLAC, read back, log-mel); those that are
    a training input are left out."""
    import tempfile

    from sandbox.audio_features import input_sha256, log_mel
    from sandbox.audio_model import sample
    from sandbox.train import torch_threads

    fs = mv.features
    with torch_threads(1):
        mels = sample(mv.load_model(), n, torch.Generator().manual_seed(seed),
                      steps=sampling_steps).numpy()  # fmt: skip
    jobs = [(m, fs.to_dict()) for m in mels]
    if workers > 1 and len(jobs) > 1:
        with process_pool(workers) as pool:
            audios = list(pool.map(_vocode, jobs, chunksize=4))
    else:
        audios = [_vocode(j) for j in jobs]
    trained = set(mv.manifest["input_sha256"])
    inputs = []
    with tempfile.TemporaryDirectory() as tmp:
        flac = Path(tmp) / "null.flac"
        for audio in audios:
            _write_flac(flac, audio, fs.sample_rate)
            x = log_mel(load_audio(flac, fs), fs)
            if input_sha256(x) not in trained:
                inputs.append(x)
    return inputs


def build_audio_sandbox(home: Path, cfg: AudioSandboxConfig | None = None) -> dict:
    """Catalog audio, the audio platform's model version and its generation log, all cached.

    Returns paths and facts the demo needs: audio_catalog (HOME/catalog/audio.parquet),
    model_dir, models_dir, log_path, audio_dir, planted (copies and bad records), start,
    end, platform_id, and timings (seconds per stage) and stats (render, training, log).
    A rerun with the same settings renders, trains and samples nothing again.
    """
    from sandbox import audio_model, audio_render, audio_train
    from sandbox.demo import _month

    cfg = cfg or AudioSandboxConfig()
    home = Path(home)
    timings: dict[str, float] = {}
    stats: dict[str, object] = {}

    t0 = time.perf_counter()
    if not (home / "catalog" / "tokens.parquet").exists():
        from sandbox import corpus

        corpus.build_catalog(home, limit=cfg.catalog_limit, workers=cfg.workers)
    timings["catalog_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    stats["render"] = audio_render.render_catalog_audio(home, cfg.n_works, workers=cfg.workers)
    timings["render_s"] = time.perf_counter() - t0
    log.info("catalog audio: %s", {k: stats["render"][k] for k in ("works", "rendered", "cached",
             "seconds", "render_seconds_per_work", "bytes")})  # fmt: skip

    t0 = time.perf_counter()
    features = FeatureSettings()
    examples = audio_train.catalog_inputs(home, features)
    timings["features_s"] = time.perf_counter() - t0

    platform_root = home / "platform" / cfg.platform_id
    models = platform_root / "models"
    size = audio_model.DEMO_CONFIG if cfg.model_size == "demo" else audio_model.TINY_CONFIG
    recipe = dict(audio_train.DEMO_TRAIN if cfg.model_size == "demo" else audio_train.TINY_TRAIN)
    if cfg.train_steps:
        recipe["steps"] = cfg.train_steps
    config = audio_model.AudioDiffusionConfig(n_mels=features.n_mels, frames=features.frames,
                                              **size)  # fmt: skip
    key = {
        "model": config.to_dict(), "recipe": recipe, "features": features.to_dict(),
        "inputs": hashlib.sha256("".join(examples["input_sha256"]).encode()).hexdigest(),
    }  # fmt: skip
    marker = models / "LATEST.json"
    known = json.loads(marker.read_text()) if marker.exists() else {}
    t0 = time.perf_counter()
    if known.get("key") == key and (models / known["model_version"]).exists():
        model_dir = models / known["model_version"]
        log.info("audio model version %s already trained", model_dir.name)
    else:
        model_dir = audio_train.train_audio_model_version(examples, models, config, features,
                                                          seed=0, **recipe)  # fmt: skip
        marker.write_text(json.dumps({"key": key, "model_version": model_dir.name}))
    timings["train_s"] = time.perf_counter() - t0
    stats["model"] = json.loads((model_dir / "model_version.json").read_text())
    if cfg.null_samples:
        t0 = time.perf_counter()
        store_null_samples(model_dir, cfg.null_samples, workers=cfg.workers)
        timings["null_samples_s"] = time.perf_counter() - t0

    start, end = _month(cfg.period)
    if cfg.days:
        end = start + timedelta(days=cfg.days)
    spec = AudioPlatformSpec(cfg.platform_id, start, end, cfg.n_generations,
                             copies_per_transform=cfg.copies_per_transform, seed=cfg.seed,
                             workers=cfg.workers)  # fmt: skip
    log_path = platform_root / f"generations-{cfg.period}.jsonl"
    planted_path = log_path.with_suffix(".planted.json")
    log_key = {"model_version": model_dir.name, "spec": repr(spec)}
    t0 = time.perf_counter()
    cached = json.loads(planted_path.read_text()) if planted_path.exists() else {}
    if (
        cached.get("key") == log_key
        and log_path.exists()
        and _audio_intact(log_path, platform_root / "audio")
    ):
        summary = cached
        log.info("audio generation log %s already built", log_path.name)
    else:
        summary = build_audio_generation_log(model_dir, home / "catalog", spec, log_path)
        summary["key"] = log_key
        planted_path.write_text(json.dumps(summary, indent=1))
    timings["generation_log_s"] = time.perf_counter() - t0
    stats["log"] = {k: v for k, v in summary.items() if k != "planted"}
    log.info("audio sandbox ready: %s", {k: round(v, 1) for k, v in timings.items()})
    return {
        "platform_id": cfg.platform_id,
        "audio_catalog": home / "catalog" / "audio.parquet",
        "model_dir": model_dir,
        "models_dir": models,
        "log_path": log_path,
        "audio_dir": platform_root / "audio",
        "planted": summary["planted"],
        "start": start,
        "end": end,
        "timings": timings,
        "stats": stats,
    }


def _audio_intact(log_path: Path, audio_dir: Path) -> bool:
    """Every file a cached log names is still there (a cleaned audio folder means rebuild)."""
    for line in log_path.read_text().splitlines():
        name = json.loads(line)["output"]["audio"]["name"]
        if name != MISSING_NAME and not (audio_dir / name).is_file():
            return False
    return True


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(
        prog="python -m sandbox.audio_platform",
        description="Build the audio sandbox platform (cached).",
    )
    ap.add_argument("--home", type=Path, default=Path(os.environ.get("TRIBUTARY_HOME", "var")))
    ap.add_argument("--period", default=AudioSandboxConfig.period)
    ap.add_argument("--works", type=int, default=AudioSandboxConfig.n_works)
    ap.add_argument("--generations", type=int, default=AudioSandboxConfig.n_generations)
    ap.add_argument("--tiny", action="store_true", help="tiny model, 24 works, 16 generations")
    ap.add_argument("--catalog-limit", type=int, default=None)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    from dataclasses import replace

    cfg = TINY_SANDBOX if args.tiny else AudioSandboxConfig(
        n_works=args.works, n_generations=args.generations)  # fmt: skip
    cfg = replace(cfg, period=args.period, catalog_limit=args.catalog_limit)
    out = build_audio_sandbox(args.home, cfg)
    shown = {k: v for k, v in out.items() if k != "planted"}
    print(json.dumps(shown, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
