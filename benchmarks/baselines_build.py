"""benchmarks/baselines.py, stage "build": the models, the k - 1 independently trained
models of TRAK-k and the LDS truth (two retrain seeds per subset), each resumable; and the
truth's loader the report uses. The recipe: baselines.py's docstring."""

from __future__ import annotations

import json
import os
import pickle
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from attribution_common import BATCH, LR, CachedRetrainer, prepare_seed, retrain_spec

from attribution.evaluate import subset_masks
from sandbox.train import TINY_CONFIG, train_model_version

DEEP_CONFIG = {"n_layer": 4, "n_head": 2, "n_embd": 32, "dropout": 0.0}
MODELS = {"tiny": TINY_CONFIG, "deep": DEEP_CONFIG}
SECOND_RETRAIN_SEED = 1000  # retrain seed s + this: the truth's second recipe


def ensemble_seed(seed: int, j: int) -> int:
    return 100_000 + 100 * seed + j


def retrain_seeds(seed: int, n: int) -> list[int]:
    return [seed + SECOND_RETRAIN_SEED * r for r in range(n)]


def seed_folder(args, seed: int) -> Path:
    return args.work / args.model / f"seed-{seed}"


def prepare(args, seed: int) -> dict:
    folder = seed_folder(args, seed)
    cfg = MODELS[args.model]
    d = prepare_seed(seed, folder, args.works, args.planted, args.gens, args.steps, cfg)
    if not (folder / "data.pkl").exists():
        tmp = folder / f"data.pkl.tmp{os.getpid()}"
        tmp.write_bytes(pickle.dumps(d))
        os.replace(tmp, folder / "data.pkl")
    return d


def ensemble(args, seed: int, d: dict, k: int) -> list[str]:
    """The model version folders of k independently trained models; the served one first."""
    folder = seed_folder(args, seed)
    index = folder / "ensemble.json"
    paths = json.loads(index.read_text()) if index.exists() else [d["mv_dir"]]
    spec = retrain_spec(seed, args.steps, MODELS[args.model])
    ids = [f"work-{i:05d}" for i in range(len(d["train"]))]
    while len(paths) < k:
        mv = train_model_version(
            d["train"],
            ids,
            folder / "ensemble",
            spec.config,
            steps=args.steps,
            batch_size=BATCH,
            lr=LR,
            seed=ensemble_seed(seed, len(paths)),
            n_checkpoints=1,
            log_every=0,
        )
        paths.append(str(mv))
        tmp = index.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(paths))
        os.replace(tmp, index)
    return paths[:k]


def retrainers(args, seed: int) -> list[CachedRetrainer]:
    folder = seed_folder(args, seed) / "retrains"
    cfg = MODELS[args.model]
    return [
        CachedRetrainer(retrain_spec(rs, args.steps, cfg), str(folder))
        for rs in retrain_seeds(seed, args.truth_seeds)
    ]


def build(args) -> None:
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    data = {s: prepare(args, s) for s in args.seeds}
    print(f"{args.model}: models and generations ({time.perf_counter() - t0:.0f}s)", flush=True)
    for s in args.seeds:
        ensemble(args, s, data[s], max(args.trak_k))
    print(f"{args.model}: ensembles of {max(args.trak_k)} ({time.perf_counter() - t0:.0f}s)")
    masks = {s: subset_masks(args.works, args.lds_m, 0.5, s) for s in args.seeds}
    for j in range(args.lds_m):
        for s in args.seeds:
            for r in retrainers(args, s):
                r(data[s]["train"], masks[s][j].tolist(), data[s]["gens"])
        print(
            f"{args.model}: subset {j + 1}/{args.lds_m} ({time.perf_counter() - t0:.0f}s)",
            flush=True,
        )


def load_truths(args, seed: int, d: dict) -> tuple[np.ndarray, list[np.ndarray]]:
    """(masks (m', n), [losses (m', gens) per retrain seed]) over the first m' subsets that
    every retrain seed has."""
    masks = subset_masks(args.works, args.lds_m, 0.5, seed)
    rs = retrainers(args, seed)
    rows: list[list[np.ndarray]] = [[] for _ in rs]
    for j in range(args.lds_m):
        paths = [r.path(d["train"], masks[j].tolist(), d["gens"]) for r in rs]
        if not all(p.exists() for p in paths):
            break
        for i, p in enumerate(paths):
            rows[i].append(np.load(p))
    m = len(rows[0])
    return masks[:m], [np.stack(x) if x else np.zeros((0, len(d["gens"]))) for x in rows]
