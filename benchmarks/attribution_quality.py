"""Attribution quality of the three methods on sandbox models we can retrain.

    .venv/bin/python benchmarks/attribution_quality.py --seeds 3 4 5 --work /tmp/vs-dattri \\
        --removal-gens 16 --random-draws 8 --jobs 2

Per model seed (the same seed folders as benchmarks/attribution_vs_dattri.py: a folder
already built by either benchmark is reused, model, generations and LDS truth included):
TINY_CONFIG model on --works synthetic pieces, --planted near copies, --gens sampled
generations, LDS truth from --lds-m retrained halves. Methods at their product defaults:
TRAK (output layer, 3 checkpoints), unlearning (one Fisher-preconditioned step, relative
rise), similarity with the symbolic embedder (the default) and with hidden states.

Reported per method: recall@1 over the planted copies; LDS (mean over seeds x generations,
95 % bootstrap interval, per-seed means); and top-k removal against random removal on the
first --removal-gens generations of each seed. Criterion, per generation g: rise_topk(g) =
loss of g after retraining without the method's top --removal-k works minus its loss under
the full model; rise_random(g) = the same for k random works, averaged over --random-draws
draws (each draw is one retrain shared by all generations and methods). A method beats
random when the mean of rise_topk - rise_random over all seeds x generations is above 0 with
its 95 % bootstrap interval above 0; the share of generations where rise_topk(g) >
rise_random(g) is printed next to it. Retrains keep the reference run's batch draws and drop
the excluded examples from them (attribution/evaluate.py).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from attribution_common import (
    add_seed_arguments,
    build_seed,
    load_truth,
    per_generation_lds,
    retrain_spec,
    summarise,
)

from attribution.evaluate import recall_at_1, topk_removal
from attribution.similarity import HiddenStateEmbedder, SimilarityAttributor, SymbolicEmbedder
from attribution.trak import TRAKAttributor
from attribution.unlearning import UnlearningAttributor
from sandbox.gpt_adapter import SandboxGPTAdapter
from sandbox.gpt_eval import generation_losses
from sandbox.train import load_model_version


def methods(mv, seed: int) -> dict:
    return {
        "trak": TRAKAttributor(SandboxGPTAdapter(mv), seed=seed),
        "unlearning": UnlearningAttributor(SandboxGPTAdapter(mv), seed=seed),
        "similarity-symbolic": SimilarityAttributor(SymbolicEmbedder(SandboxGPTAdapter(mv).vocabulary())),
        "similarity-hidden": SimilarityAttributor(HiddenStateEmbedder(SandboxGPTAdapter(mv))),
    }


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_seed_arguments(ap)
    ap.add_argument("--removal-gens", type=int, default=16, help="per seed, the first ones")
    ap.add_argument("--removal-k", type=int, default=5)
    ap.add_argument("--random-draws", type=int, default=8)
    ap.add_argument("--jobs", type=int, default=1, help="processes for the removal retrains")
    ap.add_argument("--boot", type=int, default=2000)
    ap.add_argument("--work", type=Path, help="seed folders (shared with attribution_vs_dattri)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(1)
    t_all = time.perf_counter()
    work = args.work or Path(tempfile.mkdtemp(prefix="attr-quality-"))
    print(f"work folder: {work}", flush=True)
    lds_by: dict[str, list[np.ndarray]] = {}
    names: list[str] = []
    recall_by: dict[str, list[float]] = {}
    excess_by: dict[str, list[np.ndarray]] = {}
    removal_by: dict[str, list[dict]] = {}
    for seed in args.seeds:
        folder = work / f"seed-{seed}"
        d = build_seed(seed, folder, args.works, args.planted, args.gens, args.lds_m, args.steps)
        masks, losses = load_truth(folder)
        mv = load_model_version(Path(d["mv_dir"]))
        n_c = len(d["copies"])
        scores_gen = {}
        t = time.perf_counter()
        for name, att in methods(mv, seed).items():
            att.cache(d["train"])
            s = att.attribute(d["copies"] + d["gens"])
            recall_by.setdefault(name, []).append(recall_at_1(s[:n_c], d["planted"]))
            lds_by.setdefault(name, []).append(per_generation_lds(s[n_c:], masks, losses))
            scores_gen[name] = s[n_c : n_c + args.removal_gens]
        names = list(scores_gen)
        print(f"seed {seed}: scored by {len(names)} methods in {time.perf_counter() - t:.0f}s")
        spec = retrain_spec(seed, args.steps)
        gens_r = d["gens"][: args.removal_gens]
        # The full model is the served one: same seed, data and batch draws.
        base = generation_losses(mv.load_model(), gens_r)
        t = time.perf_counter()
        removal = topk_removal(
            spec,
            d["train"],
            gens_r,
            scores_gen,
            k=args.removal_k,
            seed=seed,
            base_losses=base,
            random_draws=args.random_draws,
            jobs=args.jobs,
        )
        print(f"seed {seed}: removal retrains in {time.perf_counter() - t:.0f}s", flush=True)
        for name, r in removal.items():
            excess_by.setdefault(name, []).append(r.excess)
            removal_by.setdefault(name, []).append(
                r.summary()
                | {"topk_rise": r.topk_rise.tolist(), "random_rise": r.random_rise.tolist()}
            )
            print(f"  {name}: {json.dumps(r.summary())}", flush=True)

    rng = np.random.default_rng(0)
    res: dict = {"config": {k: str(v) for k, v in vars(args).items()}, "methods": {}}
    print(
        f"\n{len(args.seeds)} seeds; LDS over {args.gens} generations per seed (m = "
        f"{args.lds_m}); removal of the top {args.removal_k} over {args.removal_gens} "
        f"generations per seed vs {args.random_draws} random draws\n"
    )
    print(
        "| method | recall@1 | LDS mean [95 % CI] | LDS per seed | top-k rise | random rise "
        "| top-k - random [95 % CI] | generations where top-k > random |"
    )
    print("|---|---:|---|---|---:|---:|---|---:|")
    for name in names:
        lds_s = summarise(lds_by[name], args.boot, rng)
        ex = summarise(excess_by[name], args.boot, rng)
        topk = np.mean([r["mean_topk_rise"] for r in removal_by[name]])
        rand = np.mean([r["mean_random_rise"] for r in removal_by[name]])
        wins = np.concatenate(excess_by[name]) > 0
        res["methods"][name] = {
            "recall_at_1": float(np.mean(recall_by[name])),
            "lds": lds_s,
            "removal_excess": ex,
            "removal_win_rate": float(wins.mean()),
            "removal_per_seed": removal_by[name],
            "beats_random": bool(ex["ci95"][0] > 0),
        }
        seeds = " / ".join(f"{m:.3f}" for m in lds_s["seed_means"])
        print(
            f"| {name} | {np.mean(recall_by[name]):.2f} | {lds_s['mean']:.3f} "
            f"[{lds_s['ci95'][0]:.3f}, {lds_s['ci95'][1]:.3f}] | {seeds} | {topk:.2f} | "
            f"{rand:.2f} | {ex['mean']:+.2f} [{ex['ci95'][0]:+.2f}, {ex['ci95'][1]:+.2f}] | "
            f"{wins.sum()} of {len(wins)} ({wins.mean():.0%}) |"
        )
    res["total_s"] = time.perf_counter() - t_all
    print(f"\ntotal {res['total_s']:.0f}s")
    if args.json:
        args.json.write_text(json.dumps(res, indent=1))
    return res


if __name__ == "__main__":
    main()
