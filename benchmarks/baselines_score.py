"""benchmarks/baselines.py, stage "score": one subprocess per attributor family and seed,
each writing its scores whole (written aside, then renamed)."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from attribution_common import require_dattri
from baselines_build import ensemble, seed_folder
from baselines_dattri import run_dattri_ekfac, run_dattri_logra, run_dattri_trak
from baselines_ours import run_ours

CLI = Path(__file__).with_name("baselines.py")  # the children are started through the CLI

FAMILIES = {
    "ours": run_ours,
    "dattri-trak": run_dattri_trak,
    "dattri-logra": run_dattri_logra,
    "dattri-ekfac": run_dattri_ekfac,
}


def child(args) -> None:
    torch.set_num_threads(1)
    folder = seed_folder(args, args.seed_one)
    d = pickle.loads((folder / "data.pkl").read_bytes())
    paths = ensemble(args, args.seed_one, d, max(args.trak_k))
    res = FAMILIES[args.child](d, paths, args)
    out = folder / f"scores-{args.child}.pkl"
    tmp = out.with_suffix(f".tmp{os.getpid()}")
    tmp.write_bytes(pickle.dumps(res))
    os.replace(tmp, out)  # a score file is always whole


def score(args) -> None:
    if any(f != "ours" for f in args.families):
        require_dattri()
    for seed in args.seeds:
        folder = seed_folder(args, seed)
        index = folder / "ensemble.json"
        if not index.exists() or len(json.loads(index.read_text())) < max(args.trak_k):
            print(f"{args.model} seed {seed}: not built yet, skipped", flush=True)
            continue
        for fam in args.families:
            if (folder / f"scores-{fam}.pkl").exists() and not args.rescore:
                continue
            t = time.perf_counter()
            cmd = [
                sys.executable,
                str(CLI),
                "score",
                "--child",
                fam,
                "--seed-one",
                str(seed),
                *args.passthrough,
            ]
            proc = subprocess.run(
                cmd,
                cwd=ROOT,
                capture_output=True,
                text=True,
                env={**os.environ, "TQDM_DISABLE": "1"},
                check=False,
            )
            (folder / f"scores-{fam}.log").write_text(proc.stdout + proc.stderr)
            status = "ok" if proc.returncode == 0 else f"FAILED (scores-{fam}.log)"
            print(
                f"{args.model} seed {seed}: {fam} {status} in {time.perf_counter() - t:.0f}s",
                flush=True,
            )
