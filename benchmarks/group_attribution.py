"""Group-wise (holder) attribution against leave-one-group-out (LOGO) retraining.

Per seed: the tiny symbolic model (attribution_common's recipe) trained on synthetic works
dealt to holders of 5-20 works each (a holder's works mostly share a style, as an artist's
catalog does); targets are the model's own samples plus near copies of one work of some
holders (the planted holder is known). Ground truth: for each holder, retrain without its
works (same recipe, same seed, same batch draws: sandbox/train.py fit_gpt keep) and take the
rise of each target's summed NLL over the full retrain. Methods, side by side:
  guda         attribution/groups.py, one Fisher-regularised ascent step per holder,
               common step scale (the default)
  guda-norm    the same with every holder's step normalised to one length
  trak-sum     TRAK (attribution/trak.py defaults) instance scores summed per holder
Printed: top-holder agreement with LOGO (all targets, samples, planted), mean Spearman across
holders per target, and the time of each method next to LOGO's (ratio), per seed and pooled.

  .venv/bin/python benchmarks/group_attribution.py --seeds 0 1
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from attribution_common import BATCH, LR, retrain_spec

from attribution.groups import (
    GroupUnlearningAttributor,
    per_target_spearman,
    summed_instance_scores,
    top_group_agreement,
)
from attribution.trak import TRAKAttributor
from sandbox.gpt_adapter import SandboxGPTAdapter
from sandbox.gpt_eval import near_copy, sample_generations
from sandbox.train import load_model_version, synthetic_pieces, train_model_version


def deal_holders(pieces: list[list[int]], n_groups: int, rng) -> dict[str, list[int]]:
    """Holder -> work indices: sizes 5..20 summing to len(pieces); works sorted by style
    (piece[1] is the style token) with random ties, then cut into consecutive runs."""
    n = len(pieces)
    if not 5 * n_groups <= n <= 20 * n_groups:
        raise SystemExit(f"{n} works cannot be dealt to {n_groups} holders of 5-20 works")
    sizes = np.full(n_groups, 5)
    while sizes.sum() < n:
        j = int(rng.integers(n_groups))
        if sizes[j] < 20:
            sizes[j] += 1
    order = sorted(range(n), key=lambda i: (pieces[i][1], rng.random()))
    out, s = {}, 0
    for g, k in enumerate(sizes):
        out[f"holder-{g:02d}"] = sorted(order[s : s + int(k)])
        s += int(k)
    return out


def run_seed(args, seed: int) -> dict:
    folder = Path(args.work) / f"seed{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed + 11)
    pieces = synthetic_pieces(args.works, seed=seed + 1)
    ids = [f"work-{i:05d}" for i in range(args.works)]
    groups = deal_holders(pieces, args.groups, rng)
    names = list(groups)
    spec = retrain_spec(seed, args.steps)
    t = time.perf_counter()
    mv_dir = train_model_version(
        pieces, ids, folder, spec.config, steps=args.steps, batch_size=BATCH, lr=LR,
        seed=seed, log_every=0,
    )  # fmt: skip
    t_train = time.perf_counter() - t
    mv = load_model_version(mv_dir)
    gens = sample_generations(mv.load_model(), args.gens, seed=seed + 3)
    planted_groups = sorted(rng.choice(args.groups, args.planted, replace=False).tolist())
    planted_label = []
    for g in planted_groups:
        w = int(rng.choice(groups[names[g]]))
        gens.append(near_copy(pieces[w], rng))
        planted_label.append(g)
    is_planted = np.r_[np.zeros(args.gens, bool), np.ones(len(planted_label), bool)]

    # Ground truth: LOGO, the full run retrained in memory with the same recipe as baseline.
    base = spec(pieces, None, gens)
    t = time.perf_counter()
    truth = np.zeros((len(gens), len(names)))
    for c, name in enumerate(names):
        keep = np.ones(len(pieces), bool)
        keep[groups[name]] = False
        truth[:, c] = spec(pieces, keep.tolist(), gens) - base
    t_logo = time.perf_counter() - t

    adapter = SandboxGPTAdapter(mv)
    served = adapter.per_example_loss(gens).detach().double().numpy()
    preds, times = {}, {}
    for label, common in (("guda", True), ("guda-norm", False)):
        t = time.perf_counter()
        a = GroupUnlearningAttributor(adapter, common_scale=common)
        a.cache(pieces, groups)
        preds[label] = a.attribute(gens)
        times[label] = time.perf_counter() - t
    t = time.perf_counter()
    trak = TRAKAttributor(adapter)
    trak.cache(pieces)
    preds["trak-sum"] = summed_instance_scores(trak.attribute(gens), groups)
    times["trak-sum"] = time.perf_counter() - t

    res = {
        "seed": seed,
        "t_train_s": t_train,
        "t_logo_s": t_logo,
        "served_vs_retrain_max_abs": float(np.abs(served - base).max()),
        "truth_top_is_planted": float(
            np.mean(np.argmax(truth[is_planted], 1) == np.array(planted_label))
        ),
        "methods": {},
    }
    for label, p in preds.items():
        agree = top_group_agreement(p, truth)
        rho = per_target_spearman(p, truth)
        res["methods"][label] = {
            "top_all": float(agree.mean()),
            "top_samples": float(agree[~is_planted].mean()),
            "top_planted": float(agree[is_planted].mean()),
            "spearman_all": float(rho.mean()),
            "spearman_samples": float(rho[~is_planted].mean()),
            "spearman_planted": float(rho[is_planted].mean()),
            "time_s": times[label],
            "speedup_vs_logo": t_logo / times[label],
            "top_hits": agree.tolist(),
            "rho": rho.tolist(),
        }
    np.savez(folder / "group_scores.npz", truth=truth, **{k: v for k, v in preds.items()})
    return res


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--works", type=int, default=120)
    ap.add_argument("--groups", type=int, default=12)
    ap.add_argument("--gens", type=int, default=24, help="sampled generations per seed")
    ap.add_argument("--planted", type=int, default=8, help="holders given a planted copy")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--work", default="/tmp/tributary-group-bench")
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    results = []
    for seed in args.seeds:
        r = run_seed(args, seed)
        results.append(r)
        print(
            f"seed {seed}: train {r['t_train_s']:.1f}s, LOGO {args.groups} retrains "
            f"{r['t_logo_s']:.1f}s; LOGO's top holder is the planted one for "
            f"{r['truth_top_is_planted']:.0%} of copies; served vs retrained loss "
            f"max |diff| {r['served_vs_retrain_max_abs']:.2e}",
            flush=True,
        )
        for label, m in r["methods"].items():
            print(
                f"  {label:10s} top-holder agree {m['top_all']:.2f} (samples "
                f"{m['top_samples']:.2f}, planted {m['top_planted']:.2f})  Spearman "
                f"{m['spearman_all']:.2f} (samples {m['spearman_samples']:.2f}, planted "
                f"{m['spearman_planted']:.2f})  {m['time_s']:.1f}s = "
                f"{m['speedup_vs_logo']:.0f}x faster than LOGO",
                flush=True,
            )
    print(f"pooled over seeds {args.seeds} ({args.works} works, {args.groups} holders):")
    for label in results[0]["methods"]:
        hits = np.concatenate([r["methods"][label]["top_hits"] for r in results])
        rho = np.concatenate([r["methods"][label]["rho"] for r in results])
        t = sum(r["methods"][label]["time_s"] for r in results)
        tl = sum(r["t_logo_s"] for r in results)
        print(
            f"  {label:10s} top-holder agree {hits.mean():.2f} (n={len(hits)})  "
            f"Spearman {rho.mean():.2f} (median {np.median(rho):.2f})  "
            f"time {t:.1f}s vs LOGO {tl:.1f}s = {tl / t:.0f}x"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
