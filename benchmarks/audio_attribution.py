"""Attribution quality on the sandbox AUDIO diffusion model (issue 12): every method side by side.

    .venv/bin/pip install -e '.[dev,bench]' && .venv/bin/pip install --no-deps dattri==0.3.0
    .venv/bin/python benchmarks/audio_attribution.py --seeds 3 4 5 --work /tmp/audio-attr \\
        --jobs 2 --json /tmp/audio-attr/result.json

Per model seed s (an independent replication: catalog, model, planted copies, generations,
LDS subsets and projections all follow from s), built once into --work/seed-s and reused:

* catalog: --works synthetic scores (sandbox.train.synthetic_pieces, seed s + 1), each
  rendered through FluidSynth with its style's General MIDI instrument exactly as the audio
  platform renders catalog works (sandbox/audio_render.py: 4 s from the middle, 16 kHz,
  FLAC), then its log-mel (sandbox/audio_features.py) is the training example;
* model: the audio platform's diffusion model (diffusers UNet1DModel + DDPMScheduler) at
  TINY_CONFIG, --steps steps of batch --batch, 3 checkpoints, stored as a model version
  (sandbox/audio_train.py); attributed through its adapter (sandbox/audio_adapter.py,
  per-example loss = denoising loss averaged over K = 8 fixed (timestep, noise) draws);
* targets: --gens generations sampled from the served model (50 DDPM steps), rendered to
  audio by Griffin-Lim and written as FLAC, and --copies planted copies of random catalog
  works per transform (exact, pitch-shifted +-1..2 semitones, time-stretched +-10 %, white
  noise at 20 dB SNR; sandbox/audio_platform.apply_transform), also FLAC; every target is
  read back through the adapter's prepare(path), the way the pipeline reads a generation;
* LDS truth: --lds-m models retrained on random halves (alpha = 0.5), every kept example
  with the full run's batch, timestep and noise draws (fit_audio_diffusion's keep mask),
  each generation's loss = the adapter's denoising loss at the same K fixed draws
  (sandbox/audio_eval.py), --jobs processes of one torch thread.

Methods (scores of every target against every training work; each side in its own process):
ours (attribution.trak.TRAKAttributor through the adapter at the product default, and the
variants of --ours), dattri 0.3.0's TRAKAttributor on the same model, loss, checkpoints and
projection dimension (torch.func per-example gradients; D-TRAK's Q = 1; every value of
--dattri-reg, the best pooled LDS reported: chosen on the evaluation generations themselves,
so dattri's number is optimistic), unlearning (attribution.unlearning, default), similarity
with the black-box audio embedder and with the model's hidden states.

Printed, side by side: LDS (mean over seeds x generations, 95 % bootstrap interval with
generations resampled within seeds, per-seed means; paired difference ours - dattri), top-k
removal against random removal on the first --removal-gens generations of each seed (mean
excess with its interval, win rate), recall@1 per transform (bootstrap interval over the
planted copies), and the cost of attributing one generation and a batch, as a multiple of one
forward+backward of the denoiser on the same generation at the same K timesteps.

Retrains are memoised on disk per seed (keyed by the recipe, the keep mask, the training set
and the targets), so a rerun, or a removal set two methods share, trains once.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import pickle
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from attribution_common import (
    CachedRetrainer,
    DattriMemo,
    best_pair,
    boot_mean_ci,
    per_generation_lds,
    require_dattri,
    summarise,
)

from attribution.evaluate import retrain_on_subsets, topk_removal

TRANSFORMS = ("exact", "pitch_shift", "time_stretch", "noise")
DEFAULT = "ours default"
# Our TRAK rows: label -> TRAKAttributor keyword arguments (plus "measure", the adapter's
# measurement function, and "served_only"). "tune" is what the tuning seeds ran.
OURS_SETS = {
    "main": {DEFAULT: {}},
    "tune": {
        DEFAULT: {},
        "ours, engine default (kfac-gram, damping 10)": {},
        "ours, served ckpt only": {"served_only": True},
        "ours, damping 3": {"damping": 3.0},
        "ours, damping 30": {"damping": 30.0},
        **{f"ours, kfac-gram, damping {d:g}": {"damping": d} for d in (100.0, 1e3)},
        **{
            f"ours, gram, damping {d:g}": {"curvature": "gram", "damping": d}
            for d in (1.0, 100.0, 1e3, 1e4)
        },
        **{
            f"ours, kfac, damping {d:g}": {"curvature": "kfac", "damping": d}
            for d in (0.1, 10.0, 100.0)
        },
        "ours, output layer exact": {"exact_up_to": 1 << 20},
        "ours, output layer exact, gram, damping 1000": {
            "exact_up_to": 1 << 20,
            "curvature": "gram",
            "damping": 1e3,
        },
        "ours, served ckpt only, gram, damping 1000": {
            "served_only": True,
            "curvature": "gram",
            "damping": 1e3,
        },
        "ours, square": {"measure": "square"},
        "ours, square, kfac-gram, damping 1000": {"measure": "square", "damping": 1e3},
        "ours, square, gram, damping 1000": {
            "measure": "square",
            "curvature": "gram",
            "damping": 1e3,
        },
        "ours, square, kfac, damping 0.1": {"measure": "square", "curvature": "kfac"},
        "ours, square, kfac, damping 10": {
            "measure": "square",
            "curvature": "kfac",
            "damping": 10.0,
        },
        "ours, layers all 8x8": {"layers": "all", "k_in": 8, "k_out": 8},
        "ours, layers all 8x8, gram, damping 1000": {
            "layers": "all",
            "k_in": 8,
            "k_out": 8,
            "curvature": "gram",
            "damping": 1e3,
        },
        "ours, layers all 8x8, square": {
            "layers": "all",
            "k_in": 8,
            "k_out": 8,
            "measure": "square",
        },
    },
}
OTHERS = ("unlearning", "similarity audio", "similarity hidden")


# -- one seed: catalog, model, targets, LDS truth ---------------------------------------------


def _render(job: tuple) -> tuple[int, np.ndarray | None, str]:
    """Worker: one synthetic score through the audio platform's renderer (int16 PCM)."""
    from sandbox.audio_render import (
        STYLE_PROGRAM,
        RenderError,
        RenderSettings,
        events_to_midi,
        synthesize,
        token_events,
    )

    i, tokens = job
    settings = RenderSettings()
    style, events = token_events(tokens)
    try:
        pcm = synthesize(events_to_midi(events, STYLE_PROGRAM[style], settings), settings)
    except RenderError:
        return i, None, style
    return i, pcm, style


def _write_flac(path: Path, audio: np.ndarray, sr: int) -> None:
    from sandbox.audio_features import to_pcm16
    from sandbox.audio_render import write_audio

    write_audio(path, to_pcm16(audio), sr, "flac")


def _vocode(mel: np.ndarray) -> np.ndarray:
    from sandbox.audio_features import mel_to_audio

    return mel_to_audio(mel)


def build_seed(seed: int, folder: Path, args) -> dict:
    """Render, train, sample, plant and retrain for LDS once per seed; reuse what is there."""
    from multiprocessing import get_context

    import pandas as pd

    from sandbox.audio_eval import AudioRetrainSpec
    from sandbox.audio_features import FeatureSettings, input_sha256, load_audio, log_mel
    from sandbox.audio_model import DEMO_CONFIG, TINY_CONFIG, AudioDiffusionConfig, sample
    from sandbox.audio_platform import near_copy
    from sandbox.audio_render import pcm_sha256
    from sandbox.audio_train import load_audio_model_version, train_audio_model_version
    from sandbox.train import synthetic_pieces

    sizes = {
        k: getattr(args, k)
        for k in ("model", "works", "steps", "batch", "lr", "gens", "copies", "lds_m")
    }
    done = folder / "data.json"
    if done.exists():
        data = json.loads(done.read_text())
        if data["sizes"] != sizes:
            raise SystemExit(
                f"{folder} was built with {data['sizes']}, asked for {sizes}: use another --work"
            )
        return data
    folder.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    fs = FeatureSettings()
    # A few spare scores stand in for any that fail to render or duplicate another's audio.
    scores = synthetic_pieces(args.works + max(4, args.works // 8), seed=seed + 1)
    with get_context("spawn").Pool(args.jobs) as pool:
        rendered = pool.map(_render, list(enumerate(scores)), chunksize=4)
    cat = folder / "catalog"
    rows, seen = [], set()
    for i, pcm, style in rendered:
        if pcm is None or pcm_sha256(pcm) in seen or len(rows) == args.works:
            continue
        seen.add(pcm_sha256(pcm))
        path = cat / f"work-{len(rows):04d}.flac"
        _write_flac(path, pcm.astype(np.float32) / 32767, fs.sample_rate)
        rows.append({"work_id": path.stem, "style": style, "score": i, "file": str(path)})
    if len(rows) < args.works:
        raise RuntimeError(f"only {len(rows)} of {args.works} scores rendered to distinct audio")
    inputs = [log_mel(load_audio(Path(r["file"]), fs), fs) for r in rows]
    examples = pd.DataFrame(
        {
            "work_id": [r["work_id"] for r in rows],
            "token_sha256": [f"{r['score']:064x}" for r in rows],  # synthetic: the score's index
            "pcm_sha256": [
                pcm_sha256(np.round(load_audio(Path(r["file"]), fs) * 32767).astype("<i2"))
                for r in rows
            ],
            "input": inputs,
            "input_sha256": [input_sha256(x) for x in inputs],
        }
    )
    t_render = time.perf_counter() - t0

    t0 = time.perf_counter()
    size = DEMO_CONFIG if args.model == "demo" else TINY_CONFIG
    config = AudioDiffusionConfig(n_mels=fs.n_mels, frames=fs.frames, **size)
    with torch.inference_mode(False):
        mv_dir = train_audio_model_version(
            examples,
            folder / "models",
            config,
            fs,
            steps=args.steps,
            batch_size=args.batch,
            lr=args.lr,
            seed=seed,
            log_every=0,
        )
    t_train = time.perf_counter() - t0
    mv = load_audio_model_version(mv_dir)

    t0 = time.perf_counter()
    torch.set_num_threads(1)
    mels = sample(mv.load_model(), args.gens, torch.Generator().manual_seed(seed + 3)).numpy()
    with get_context("spawn").Pool(args.jobs) as pool:
        audios = pool.map(_vocode, list(mels), chunksize=4)
    gens = []
    for g, audio in enumerate(audios):
        path = folder / "gens" / f"gen-{g:03d}.flac"
        _write_flac(path, audio, fs.sample_rate)
        gens.append(str(path))
    rng = random.Random(seed + 7)
    copies = []
    for transform in TRANSFORMS:
        for j, w in enumerate(rng.sample(range(len(rows)), args.copies)):
            src = load_audio(Path(rows[w]["file"]), fs)
            out, params = near_copy(src, transform, rng, fs)
            path = folder / "copies" / f"{transform}-{j:02d}.flac"
            _write_flac(path, out, fs.sample_rate)
            copies.append({"file": str(path), "work": w, "transform": transform, "params": params})
    t_targets = time.perf_counter() - t0

    t0 = time.perf_counter()
    if args.lds_m:  # 0: no LDS truth (benchmarks/robust_matching.py needs only the model)
        spec = AudioRetrainSpec(config, args.steps, args.batch, args.lr, seed)
        train, gen_x = load_examples(mv_dir, gens)
        truth = retrain_on_subsets(
            CachedRetrainer(spec, str(folder / "retrains")),
            train,
            gen_x,
            m=args.lds_m,
            seed=seed,
            jobs=args.jobs,
        )
        np.savez(folder / "lds_truth.npz", masks=truth.masks, losses=truth.losses)
    t_truth = time.perf_counter() - t0
    data = {
        "seed": seed,
        "sizes": sizes,
        "mv_dir": str(mv_dir),
        "model_version": mv.model_version,
        "train_loss": mv.info["train_loss"],
        "works": rows,
        "gens": gens,
        "copies": copies,
        "seconds": {
            "render": t_render,
            "train": t_train,
            "targets": t_targets,
            "lds_truth": t_truth,
        },
    }
    tmp = done.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, done)  # written last: a folder with data.json has its truth
    print(
        f"seed {seed}: built in {sum(data['seconds'].values()):.0f}s "
        f"({json.dumps({k: round(v) for k, v in data['seconds'].items()})}), "
        f"train loss {mv.info['train_loss']:.3f}",
        flush=True,
    )
    return data


def load_examples(mv_dir, files: list[str], measure: str = "loss"):
    """(training examples, prepared targets) through the adapter, as the pipeline reads them."""
    from sandbox.audio_adapter import load

    adapter = load(Path(mv_dir))
    train = [adapter.prepare(x) for x in adapter.training_items()]
    return train, [adapter.prepare(f) for f in files]


def retrain_spec(d: dict, args):
    from sandbox.audio_eval import AudioRetrainSpec
    from sandbox.audio_train import load_audio_model_version

    mv = load_audio_model_version(Path(d["mv_dir"]))
    return AudioRetrainSpec(mv.config, args.steps, args.batch, args.lr, d["seed"])


# -- the two sides, each in its own process --------------------------------------------------


def _fwd_bwd(adapter, batch):
    def run():
        adapter.load_checkpoint(adapter.checkpoints()[-1])
        adapter.model.zero_grad(set_to_none=True)
        adapter.per_example_loss(batch).sum().backward()

    return run


def run_ours(d: dict, args) -> dict:
    from attribution.pipeline import make_attributor
    from attribution.similarity import AudioEmbedder, HiddenStateEmbedder, SimilarityAttributor
    from attribution.trak import TRAKAttributor
    from attribution.unlearning import UnlearningAttributor
    from sandbox.audio_adapter import load

    files = [c["file"] for c in d["copies"]] + d["gens"]
    out: dict = {"scores": {}, "p": {}, "seconds": {}, "cost": {}}

    def make(label: str):
        if label in OTHERS:
            adapter = load(Path(d["mv_dir"]))
            if label == "unlearning":
                return adapter, UnlearningAttributor(adapter, seed=d["seed"])
            emb = (
                AudioEmbedder(adapter.spectrogram)
                if label.endswith("audio")
                else (HiddenStateEmbedder(adapter))
            )
            return adapter, SimilarityAttributor(emb)
        kw = dict(OURS_SETS[args.ours][label])
        adapter = load(Path(d["mv_dir"]), measure=kw.pop("measure", "loss"))
        if label == DEFAULT:
            # the product's path: the adapter's tuned method_defaults, as a contract that
            # names only the method gets them
            return adapter, make_attributor("trak", adapter, seed=d["seed"])
        if kw.pop("served_only", False):
            kw["checkpoints"] = adapter.checkpoints()[-1:]
        # the other rows: the engine's own defaults plus the row's settings, nothing tuned
        return adapter, TRAKAttributor(adapter, seed=d["seed"], **kw)

    for label in [*OURS_SETS[args.ours], *OTHERS]:
        adapter, att = make(label)
        train = [adapter.prepare(x) for x in adapter.training_items()]
        targets = [adapter.prepare(f) for f in files]
        t = time.perf_counter()
        att.cache(train)
        t_cache = time.perf_counter() - t
        t = time.perf_counter()
        out["scores"][label] = att.attribute(targets)
        out["seconds"][label] = (t_cache, time.perf_counter() - t, len(train), len(targets))
        out["p"][label] = getattr(att, "n_features", None)
        if args.cost:
            gens = targets[len(d["copies"]) :][: args.cost_batch]
            out["cost"][label] = cost_rows(
                lambda b, a=att: a.attribute_topk(b, k=16), adapter, gens, args.cost_repeats
            )
            out["cost"][label]["seed"] = d["seed"]
        print(f"  {label}: {time.perf_counter() - t + t_cache:.0f}s", flush=True)
    return out


def cost_rows(attribute, adapter, gens: list, repeats: int) -> dict:
    """attribution time / fwd+bwd time, for one generation and per generation of a batch."""
    row = {}
    for name, batch in (("one", gens[:1]), ("batch", gens)):
        ta, tfb = best_pair(lambda b=batch: attribute(b), _fwd_bwd(adapter, batch), repeats)
        row[name] = {"x": ta / tfb, "attribution_s": ta, "fwd_bwd_s": tfb, "n": len(batch)}
    return row


def dattri_loss(model, timesteps, noise):
    """The adapter's measurement for one example, torch.func style: the denoising loss
    averaged over the same K fixed (timestep, noise) draws."""

    def loss_func(params, data):
        (x0,) = data
        x = x0.unsqueeze(0).expand(len(timesteps), *x0.shape)
        x_t = model.noisy(x, noise, timesteps)
        pred = torch.func.functional_call(model, params, (x_t, timesteps))
        return ((pred - noise) ** 2).mean()

    return loss_func


def run_dattri(d: dict, args) -> dict:
    from dattri.algorithm.trak import TRAKAttributor as DattriTRAK
    from dattri.task import AttributionTask
    from torch.utils.data import DataLoader, TensorDataset

    from sandbox.audio_adapter import load

    adapter = load(Path(d["mv_dir"]))
    mv = adapter.mv
    model = mv.load_model()
    states = [mv.load_model(c).state_dict() for c in mv.checkpoints]
    loss_func = dattri_loss(model, adapter.timesteps, adapter.noise)

    def q_one(params, data):
        # D-TRAK (Zheng et al. 2024) drops TRAK's Q re-weighting for diffusion models, whose
        # loss is no probability: 1 - 0 = 1 for every training example.
        return torch.zeros(())

    files = [c["file"] for c in d["copies"]] + d["gens"]
    train = torch.stack([adapter.prepare(x) for x in adapter.training_items()])
    targets = torch.stack([adapter.prepare(f) for f in files])
    # One batch per call: dattri's CPU projector draws its Gaussian matrix anew per call.
    train_dl = DataLoader(TensorDataset(train), batch_size=64, shuffle=False)
    test_dl = DataLoader(TensorDataset(targets), batch_size=64, shuffle=False)
    out: dict = {"scores": {}, "p": {}, "seconds": {}, "cost": {}}

    def make(task_cls, p: int, reg: float, layer: str | None):
        task = task_cls(loss_func=loss_func, model=model, checkpoints=states)
        names = None if layer is None else [f"{layer}.weight", f"{layer}.bias"]
        return DattriTRAK(
            task=task,
            correct_probability_func=q_one,
            layer_name=names,
            device="cpu",
            projector_kwargs={"proj_dim": p, "device": "cpu", "proj_seed": d["seed"]},
            regularization=reg,
        )

    for label, (p, layer) in dattri_rows(args).items():
        out["p"][label] = p
        memo = DattriMemo()
        task_cls, unpatch = memo.patch()
        try:
            for reg in args.dattri_reg:
                att = make(task_cls, p, reg, layer)
                t = time.perf_counter()
                att.cache(train_dl)
                t_cache = time.perf_counter() - t
                t = time.perf_counter()
                out["scores"][(label, reg)] = att.attribute(test_dl).T.numpy()
                # Only the first value's times are dattri's own; the others reuse the memo.
                out["seconds"][(label, reg)] = (
                    t_cache,
                    time.perf_counter() - t,
                    len(train),
                    len(targets),
                )
        finally:
            unpatch()
        first = out["seconds"][(label, args.dattri_reg[0])]
        print(f"  {label}: {first[0] + first[1]:.0f}s", flush=True)
        if args.cost:
            att = make(AttributionTask, p, args.dattri_reg[0], layer)
            att.cache(train_dl)
            gens = list(targets[len(d["copies"]) :][: args.cost_batch])

            def attribute(b, a=att):
                return a.attribute(DataLoader(TensorDataset(torch.stack(b)), batch_size=64))

            out["cost"][label] = cost_rows(attribute, adapter, gens, args.cost_repeats)
            out["cost"][label]["seed"] = d["seed"]
    return out


def dattri_rows(args) -> dict[str, tuple[int, str | None]]:
    """label -> (projection dimension, layer or None for every parameter)."""
    if not args.dattri:
        return {}
    out_layer = "unet.up_blocks.2.resnets.2.conv_2"
    return {
        f"dattri, all parameters, p={args.dattri_p}": (args.dattri_p, None),
        f"dattri, output layer, p={args.dattri_p}": (args.dattri_p, out_layer),
    }


def child(which: str, folder: Path, out_path: Path, args) -> None:
    torch.set_num_threads(1)
    logging.basicConfig(level=logging.WARNING)
    d = json.loads((folder / "data.json").read_text())
    res = run_ours(d, args) if which == "ours" else run_dattri(d, args)
    tmp = out_path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_bytes(pickle.dumps(res))
    os.replace(tmp, out_path)  # a reused score file is always whole


def run_child(which: str, folder: Path, args, argv: list[str]) -> dict:
    out = folder / f"scores-{which}-{args.ours}.pkl"
    if out.exists() and out.stat().st_mtime > (folder / "data.json").stat().st_mtime:
        # Scores of this seed folder already computed (a rerun, or children run side by side
        # by hand to use both cores: the command above, with --child/--folder/--out).
        print(f"  {which}: reusing {out}", flush=True)
        return pickle.loads(out.read_bytes())
    cmd = [
        sys.executable,
        __file__,
        *argv,
        "--child",
        which,
        "--folder",
        str(folder),
        "--out",
        str(out),
    ]
    env = {**os.environ, "TQDM_DISABLE": "1"}
    proc = subprocess.run(cmd, check=False, cwd=ROOT, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{which} failed on {folder} (exit {proc.returncode})")
    return pickle.loads(out.read_bytes())


# -- statistics and tables -------------------------------------------------------------------


def boot_rate(hits: list[np.ndarray], draws: int, rng) -> tuple[float, list[float]]:
    pooled = np.concatenate(hits).astype(float)
    lo, hi = boot_mean_ci([h.astype(float) for h in hits], draws, rng)
    return float(pooled.mean()), [lo, hi]


def fmt_ci(s: dict, digits: int = 3) -> str:
    return f"{s['mean']:.{digits}f} [{s['ci95'][0]:.{digits}f}, {s['ci95'][1]:.{digits}f}]"


def main(argv=None) -> dict:
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[3, 4, 5])
    ap.add_argument("--works", type=int, default=48)
    ap.add_argument(
        "--model",
        choices=["demo", "tiny"],
        default="demo",
        help="the demo's model size (DEMO_CONFIG) or the tests' (TINY_CONFIG)",
    )
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--gens", type=int, default=48, help="sampled generations per seed")
    ap.add_argument("--copies", type=int, default=8, help="planted copies per transform and seed")
    ap.add_argument("--lds-m", type=int, default=48)
    ap.add_argument("--removal-gens", type=int, default=6, help="per seed; 0: no removal")
    ap.add_argument("--removal-k", type=int, default=5)
    ap.add_argument("--random-draws", type=int, default=4)
    ap.add_argument("--ours", choices=sorted(OURS_SETS), default="main")
    ap.add_argument("--dattri", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--dattri-p", type=int, default=1024)
    ap.add_argument("--dattri-reg", type=float, nargs="+", default=[1e-4, 1e-3, 1e-2, 1e-1])
    ap.add_argument(
        "--cost",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="cost per generation, measured on the first seed",
    )
    ap.add_argument("--cost-batch", type=int, default=16)
    ap.add_argument("--cost-repeats", type=int, default=5)
    ap.add_argument("--jobs", type=int, default=2, help="processes for renders and retrains")
    ap.add_argument("--boot", type=int, default=2000)
    ap.add_argument("--work", type=Path, help="keeps each seed's data, model, truth, retrains")
    ap.add_argument("--truth-only", action="store_true", help="build the seed folders and stop")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--child", choices=["ours", "dattri"], help=argparse.SUPPRESS)
    ap.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args.child, args.folder, args.out, args)
        return {}
    if args.dattri and not args.truth_only:
        require_dattri()  # before the retraining, not after
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(1)
    work = args.work or Path(tempfile.mkdtemp(prefix="audio-attr-"))
    print(f"work folder: {work}", flush=True)
    t_all = time.perf_counter()
    lds_by: dict[str, list[np.ndarray]] = {}
    # LDS of the generation-specific part (diagnostic): scores and losses minus their mean
    # over the generations, so a shared "this half makes a better model" factor drops out.
    specific_by: dict[str, list[np.ndarray]] = {}
    common: dict[int, dict] = {}
    hits_by: dict[tuple[str, str], list[np.ndarray]] = {}
    excess_by: dict[str, list[np.ndarray]] = {}
    removal_by: dict[str, list[dict]] = {}
    cost: dict[str, dict] = {}
    p_of: dict[str, int | None] = {}
    seconds: dict[str, list] = {}
    built = {}
    for seed in args.seeds:
        built[seed] = build_seed(seed, work / f"seed-{seed}", args)
    if args.truth_only:
        print(f"seed folders {args.seeds} ready in {time.perf_counter() - t_all:.0f}s")
        return {}
    child_argv = [a for a in argv if a not in ("--cost", "--no-cost")]
    scores_by: dict[int, dict[str, np.ndarray]] = {}
    for n_seed, (seed, d) in enumerate(built.items()):
        folder = work / f"seed-{seed}"
        z = np.load(folder / "lds_truth.npz")
        masks, losses = z["masks"], z["losses"]
        n_c = len(d["copies"])
        planted = np.array([c["work"] for c in d["copies"]])
        kinds = np.array([c["transform"] for c in d["copies"]])
        common[seed] = common_factor(losses)
        scores = scores_by[seed] = {}
        for which in ("ours", "dattri") if args.dattri else ("ours",):
            t = time.perf_counter()
            cost_flag = ["--cost"] if (args.cost and n_seed == 0) else ["--no-cost"]
            r = run_child(which, folder, args, child_argv + cost_flag)
            print(f"seed {seed}: {which} in {time.perf_counter() - t:.0f}s", flush=True)
            p_of.update(r["p"])
            cost.update(r["cost"])
            for key, s in r["scores"].items():
                name = key if isinstance(key, str) else f"{key[0]} @reg {key[1]:g}"
                scores[name] = s
                seconds.setdefault(name, []).append(r["seconds"][key])
        for name, s in scores.items():
            lds_by.setdefault(name, []).append(per_generation_lds(s[n_c:], masks, losses))
            g = s[n_c:]
            specific_by.setdefault(name, []).append(
                per_generation_lds(g - g.mean(0), masks, losses - losses.mean(1, keepdims=True))
            )
            top = np.argmax(s[:n_c], axis=1)
            for kind in TRANSFORMS:
                sel = kinds == kind
                hits_by.setdefault((name, kind), []).append(top[sel] == planted[sel])
    # Each dattri row at the regularisation with the best LDS pooled over these seeds (chosen
    # on the evaluation generations themselves: the most favourable choice for dattri).
    chosen = {name: name for name in scores_by[args.seeds[0]] if " @reg " not in name}
    for label in dattri_rows(args):
        regs = {r: np.concatenate(lds_by[f"{label} @reg {r:g}"]).mean() for r in args.dattri_reg}
        chosen[label] = f"{label} @reg {max(regs, key=regs.get):g}"
    for seed, d in built.items() if args.removal_gens else ():
        folder = work / f"seed-{seed}"
        n_c = len(d["copies"])
        spec = retrain_spec(d, args)
        train, gen_x = load_examples(d["mv_dir"], d["gens"][: args.removal_gens])
        rows = {
            label: scores_by[seed][name][n_c : n_c + args.removal_gens]
            for label, name in chosen.items()
        }
        t = time.perf_counter()
        removal = topk_removal(
            CachedRetrainer(spec, str(folder / "retrains")),
            train,
            gen_x,
            rows,
            k=args.removal_k,
            seed=seed,
            random_draws=args.random_draws,
            jobs=args.jobs,
        )
        print(f"seed {seed}: removal retrains in {time.perf_counter() - t:.0f}s", flush=True)
        for label, res in removal.items():
            excess_by.setdefault(label, []).append(res.excess)
            removal_by.setdefault(label, []).append(
                res.summary()
                | {
                    "method_row": chosen[label],
                    "topk_rise": res.topk_rise.tolist(),
                    "random_rise": res.random_rise.tolist(),
                }
            )
    for seed, c in common.items():
        print(
            f"seed {seed}: first principal component of the retrained models' generation "
            f"losses holds {c['first_pc_variance']:.1%} of their variance; mean correlation "
            f"between two generations' losses {c['mean_correlation']:.3f}"
        )
    acc = {
        "lds": lds_by,
        "specific": specific_by,
        "common": common,
        "hits": hits_by,
        "excess": excess_by,
        "removal": removal_by,
        "cost": cost,
        "p": p_of,
        "seconds": seconds,
    }
    return report(args, acc, built, t_all)


def common_factor(losses: np.ndarray) -> dict:
    """How much of the retrained models' losses (m x generations) one shared factor holds."""
    c = losses - losses.mean(0)
    sv = np.linalg.svd(c, compute_uv=False)
    corr = np.corrcoef(c.T)
    return {
        "first_pc_variance": float(sv[0] ** 2 / (sv**2).sum()),
        "mean_correlation": float(corr[np.triu_indices(len(corr), 1)].mean()),
    }


def report(args, acc: dict, built: dict, t_all: float) -> dict:
    lds_by, specific_by, hits_by = acc["lds"], acc["specific"], acc["hits"]
    excess_by, removal_by, cost, p_of = acc["excess"], acc["removal"], acc["cost"], acc["p"]
    rng = np.random.default_rng(0)
    rows: dict[str, dict] = {}
    ours = list(OURS_SETS[args.ours])
    for label in [*ours, *OTHERS]:
        rows[label] = {
            "lds": summarise(lds_by[label], args.boot, rng),
            "p": p_of.get(label),
            "lds_specific": summarise(specific_by[label], args.boot, rng),
        }
    for label in dattri_rows(args):
        per_reg = {
            reg: float(np.concatenate(lds_by[f"{label} @reg {reg:g}"]).mean())
            for reg in args.dattri_reg
        }
        reg = max(per_reg, key=per_reg.get)
        name = f"{label} @reg {reg:g}"
        lds_by[label] = lds_by[name]
        rows[label] = {
            "lds": summarise(lds_by[name], args.boot, rng),
            "lds_specific": summarise(specific_by[name], args.boot, rng),
            "p": p_of[label],
            "regularization": reg,
            "lds_per_regularization": per_reg,
        }
        for kind in TRANSFORMS:
            hits_by[(label, kind)] = hits_by[(name, kind)]
    best_dattri = max(dattri_rows(args), key=lambda k: rows[k]["lds"]["mean"], default=None)
    for label in ours if best_dattri else ():
        diff = [a - b for a, b in zip(lds_by[label], lds_by[best_dattri], strict=True)]
        lo, hi = boot_mean_ci(diff, args.boot, rng)
        pooled = np.concatenate(diff)
        rows[label]["minus_dattri"] = {
            "vs": best_dattri,
            "mean": float(pooled.mean()),
            "ci95": [lo, hi],
            "ours_higher_fraction": float(np.mean(pooled > 0)),
        }
    for label, row in rows.items():
        row["recall_at_1"] = {}
        for kind in TRANSFORMS:
            mean, ci = boot_rate(hits_by[(label, kind)], args.boot, rng)
            row["recall_at_1"][kind] = {
                "mean": mean,
                "ci95": ci,
                "n": int(sum(len(h) for h in hits_by[(label, kind)])),
            }
        if label in excess_by:
            ex = summarise(excess_by[label], args.boot, rng)
            wins = np.concatenate(excess_by[label]) > 0
            row["removal"] = {
                "excess": ex,
                "win_rate": float(wins.mean()),
                "wins": int(wins.sum()),
                "n": len(wins),
                "beats_random": bool(ex["ci95"][0] > 0),
                "topk_rise": float(np.mean([r["mean_topk_rise"] for r in removal_by[label]])),
                "random_rise": float(np.mean([r["mean_random_rise"] for r in removal_by[label]])),
                "per_seed": removal_by[label],
            }
        if label in cost:
            row["cost"] = cost[label]
    n_gen = rows[ours[0]]["lds"]["n"]
    print(
        f"\n## LDS: {len(args.seeds)} seeds x {args.gens} generations = {n_gen}, m = "
        f"{args.lds_m}, alpha 0.5; 95 % bootstrap intervals\n"
    )
    print(
        "| method | features per ckpt | LDS mean [95 % CI] | per seed | ours - best dattri "
        "[95 % CI] | generations where ours is higher | generation-specific LDS [95 % CI] |"
    )
    print("|---|---:|---|---|---|---:|---|")
    for label, r in rows.items():
        seeds = " / ".join(f"{m:.3f}" for m in r["lds"]["seed_means"])
        reg = f" (reg {r['regularization']:g})" if "regularization" in r else ""
        dm = r.get("minus_dattri")
        diff = f"{dm['mean']:+.3f} [{dm['ci95'][0]:+.3f}, {dm['ci95'][1]:+.3f}]" if dm else ""
        hf = f"{dm['ours_higher_fraction']:.0%}" if dm else ""
        print(
            f"| {label}{reg} | {r['p'] or '-'} | {fmt_ci(r['lds'])} | {seeds} | {diff} | {hf} "
            f"| {fmt_ci(r['lds_specific'])} |"
        )
    for label in dattri_rows(args):
        lr = rows[label]["lds_per_regularization"]
        print(
            f"\n{label}: LDS per regularisation "
            + ", ".join(f"{k:g}: {v:.3f}" for k, v in lr.items())
        )
    print(
        f"\n## Recall@1 of planted copies ({args.copies} per transform and seed), 95 % bootstrap\n"
    )
    print("| method | " + " | ".join(TRANSFORMS) + " |")
    print("|---|" + "---|" * len(TRANSFORMS))
    for label, r in rows.items():
        cells = [
            f"{r['recall_at_1'][k]['mean']:.2f} [{r['recall_at_1'][k]['ci95'][0]:.2f}, "
            f"{r['recall_at_1'][k]['ci95'][1]:.2f}]"
            for k in TRANSFORMS
        ]
        print(f"| {label} | " + " | ".join(cells) + " |")
    if excess_by:
        print(
            f"\n## Top-{args.removal_k} removal vs {args.random_draws} random draws of "
            f"{args.removal_k} works, first {args.removal_gens} generations per seed\n"
        )
        print(
            "| method | top-k rise | random rise | top-k - random [95 % CI] | generations where top-k > random | beats random |"
        )
        print("|---|---:|---:|---|---:|---|")
        for label, r in rows.items():
            if "removal" not in r:
                continue
            m = r["removal"]
            print(
                f"| {label} | {m['topk_rise']:.5f} | {m['random_rise']:.5f} | "
                f"{m['excess']['mean']:+.5f} [{m['excess']['ci95'][0]:+.5f}, "
                f"{m['excess']['ci95'][1]:+.5f}] | {m['wins']} of {m['n']} ({m['win_rate']:.0%}) "
                f"| {'yes' if m['beats_random'] else 'NO'} |"
            )
    if cost:
        print(
            f"\n## Cost per generation / one forward+backward of the denoiser at the same "
            f"K timesteps (seed {next(iter(cost.values())).get('seed', args.seeds[0])}, "
            f"best of {args.cost_repeats})\n"
        )
        print(f"| method | one generation | per generation, batch of {args.cost_batch} |")
        print("|---|---:|---:|")
        for label, r in rows.items():
            if "cost" in r:
                print(
                    f"| {label} | {r['cost']['one']['x']:.2f}x | {r['cost']['batch']['x']:.2f}x |"
                )
    res = {
        "rows": rows,
        "seconds": acc["seconds"],
        "common_factor": acc["common"],
        "seeds": {
            s: {k: d[k] for k in ("model_version", "train_loss", "seconds", "sizes")}
            for s, d in built.items()
        },
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "total_s": time.perf_counter() - t_all,
    }
    print(f"\ntotal {res['total_s']:.0f}s")
    if args.json:
        args.json.write_text(json.dumps(res, indent=1, default=float))
    return res


if __name__ == "__main__":
    main()
