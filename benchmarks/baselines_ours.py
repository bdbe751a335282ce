"""benchmarks/baselines.py, stage "score": our attributor family, and the output layer and
projection sizes every family shares."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from sandbox.train import load_model_version

OUTPUT_LAYER = "lm_head"  # the GPT's output layer: what ours attributes by default
DATTRI_P = 2944  # our output layer's feature count (92 x 32), for every dattri TRAK row
LOGRA_PROJ = 1024  # 32 x 32 per layer: a per-side dimension no larger than the width (32)


def served_states(mv) -> list[dict]:
    return [mv.load_model(c).state_dict() for c in mv.checkpoints]


def final_state(path: str) -> dict:
    mv = load_model_version(Path(path))
    return mv.load_model(mv.checkpoints[-1]).state_dict()


def run_ours(d: dict, paths: list[str], args) -> dict:
    from attribution.trak import TRAKAttributor
    from sandbox.gpt_adapter import SandboxGPTAdapter

    targets = d["copies"] + d["gens"]
    served = load_model_version(Path(d["mv_dir"]))
    out: dict = {"scores": {}, "seconds": {}}

    def timed(label: str, fn) -> np.ndarray:
        t = time.perf_counter()
        out["scores"][label] = fn()
        out["seconds"][label] = time.perf_counter() - t
        return out["scores"][label]

    def ours(mv, **kw) -> np.ndarray:
        att = TRAKAttributor(SandboxGPTAdapter(mv), seed=d["seed"], **kw)
        att.cache(d["train"])
        return att.attribute(targets)

    timed("ours default", lambda: ours(served))
    timed("ours, layers=all", lambda: ours(served, layers="all"))
    # ours-k: the served model's last checkpoint and k - 1 independently trained models
    mvs = [load_model_version(Path(p)) for p in paths]
    per_model = [ours(mv, checkpoints=mv.checkpoints[-1:]) for mv in mvs]
    for k in args.trak_k:
        out["scores"][f"ours-{k}"] = np.mean(per_model[:k], axis=0)
    return out
