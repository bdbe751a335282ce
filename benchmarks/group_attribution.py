"""Group-wise (holder) attribution against leave-one-group-out (LOGO) retraining.

Per seed: the tiny symbolic model (attribution_common's recipe) trained on synthetic works
dealt to holders of 5-20 works each (a holder's works mostly share a style, as an artist's
catalog does); targets are the model's own samples plus near copies of one work of some
holders (the planted holder is known).

Ground truth: LOGO, for each holder the rise of each target's summed NLL when the model is
retrained without the holder's works, over the full retrain with the same retrain seed. Two
retrain seeds: r0 = the served model's own seed and batch draws (sandbox/train.py fit_gpt
keep), r1 = an independent seed (init and batch draws). Their agreement with each other is
LOGO's noise floor: the ceiling any method can reach against a one-seed truth. The truth the
methods are scored against is the mean of the first --truth-seeds seeds (default the two);
more retrain seeds (r2, r3, ...: independent seeds) make it less noisy: with 4 or more, the
agreement of the two halves of the truth's seeds is printed (how reproducible a truth of half
as many seeds is), and a seed beyond the truth's (--logo-seeds > --truth-seeds) is scored
against it like a method (what one independent exact LOGO run reaches).

Methods, side by side:
  guda       attribution/groups.py (--step-size, --unlearn-steps, --common-scale)
  trak-sum   TRAK (attribution/trak.py defaults) instance scores summed per holder
Printed: top-holder agreement with the truth and mean Spearman across holders per target
(all / samples / planted), pooled over seeds with 95 % bootstrap intervals (targets
resampled within each seed) and the paired difference guda - trak-sum; the time of each
method next to one LOGO seed's retrains (ratio).

--grid: instead, every (step_size, steps, common_scale) of the tuning grid scored on the
given seeds (tune on a seed you will not report; evaluate the chosen setting on others).

  .venv/bin/python benchmarks/group_attribution.py --grid --seeds 0
  .venv/bin/python benchmarks/group_attribution.py --seeds 1 2 3

Retrains are cached in --work (CachedRetrainer), so a rerun costs only the methods.
"""

from __future__ import annotations

import argparse
import inspect
import itertools
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from attribution_common import BATCH, LR, CachedRetrainer, retrain_spec, summarise

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

GRID_STEP_SIZE = (0.001, 0.003, 0.01, 0.02)
GRID_STEPS = (1, 2, 3)
GRID_COMMON = (True, False)
# --grid-precondition: the damping of the Fisher preconditioner ("none": plain gradient)
INDEPENDENT_SEED = 1000  # r1's retrain seed = seed + this, r2's seed + 2 x this


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


def logo(spec, pieces, groups, gens, cache: Path) -> tuple[np.ndarray, float]:
    """(n_targets, n_groups) LOGO rise for one retrain recipe, and its time (uncached)."""
    retrain = CachedRetrainer(spec, str(cache))
    t = time.perf_counter()
    base = retrain(pieces, None, gens)
    truth = np.zeros((len(gens), len(groups)))
    for c, idx in enumerate(groups.values()):
        keep = np.ones(len(pieces), bool)
        keep[idx] = False
        truth[:, c] = retrain(pieces, keep.tolist(), gens) - base
    return truth, time.perf_counter() - t


def build_seed(args, seed: int) -> dict:
    folder = Path(args.work) / f"seed{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed + 11)
    pieces = synthetic_pieces(args.works, seed=seed + 1)
    ids = [f"work-{i:05d}" for i in range(args.works)]
    groups = deal_holders(pieces, args.groups, rng)
    spec = retrain_spec(seed, args.steps)
    mv_dir = train_model_version(
        pieces, ids, folder, spec.config, steps=args.steps, batch_size=BATCH, lr=LR,
        seed=seed, log_every=0,
    )  # fmt: skip
    mv = load_model_version(mv_dir)
    gens = sample_generations(mv.load_model(), args.gens, seed=seed + 3)
    planted_groups = sorted(rng.choice(args.groups, args.planted, replace=False).tolist())
    names = list(groups)
    planted_label = []
    for g in planted_groups:
        w = int(rng.choice(groups[names[g]]))
        gens.append(near_copy(pieces[w], rng))
        planted_label.append(g)
    is_planted = np.r_[np.zeros(args.gens, bool), np.ones(len(planted_label), bool)]
    truths, t_logo = [], []
    for r in range(args.logo_seeds):
        s = spec if r == 0 else replace(spec, seed=seed + r * INDEPENDENT_SEED)
        tr, tl = logo(s, pieces, groups, gens, folder / "retrains")
        truths.append(tr)
        t_logo.append(tl)
    # LOGO's cost is its first, uncached run; a rerun reads it back.
    timing = folder / "logo_time.json"
    if not timing.exists():
        timing.write_text(json.dumps(t_logo[:2]))
    t_logo = json.loads(timing.read_text())
    adapter = SandboxGPTAdapter(mv)
    served = adapter.per_example_loss(gens).detach().double().numpy()
    base = CachedRetrainer(spec, str(folder / "retrains"))(pieces, None, gens)
    return {
        "seed": seed, "pieces": pieces, "groups": groups, "gens": gens, "adapter": adapter,
        "is_planted": is_planted, "planted_label": np.array(planted_label),
        "truths": truths, "truth": np.mean(truths[: args.truth_seeds], axis=0), "t_logo": t_logo,
        "served_vs_retrain": float(np.abs(served - base).max()),
    }  # fmt: skip


def guda(d: dict, step_size: float, steps: int, common: bool, **kw) -> tuple[np.ndarray, float]:
    t = time.perf_counter()
    a = GroupUnlearningAttributor(
        d["adapter"], step_size=step_size, steps=steps, common_scale=common, **kw
    )
    a.cache(d["pieces"], d["groups"])
    out = a.attribute(d["gens"])
    return out, time.perf_counter() - t


def trak_sum(d: dict) -> tuple[np.ndarray, float]:
    t = time.perf_counter()
    trak = TRAKAttributor(d["adapter"])
    trak.cache(d["pieces"])
    out = summed_instance_scores(trak.attribute(d["gens"]), d["groups"])
    return out, time.perf_counter() - t


def agreement(pred: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return top_group_agreement(pred, truth).astype(float), per_target_spearman(pred, truth)


def fmt(s: dict) -> str:
    return f"{s['mean']:.2f} [{s['ci95'][0]:.2f}, {s['ci95'][1]:.2f}]"


def report(label: str, per_seed: list[tuple[np.ndarray, np.ndarray]], masks, args, rng) -> dict:
    """Pooled top agreement and Spearman, all / samples / planted, with intervals."""
    out = {}
    for part, sel in (("all", None), ("samples", False), ("planted", True)):
        pick = [np.ones(len(m), bool) if sel is None else (m == sel) for m in masks]
        top = summarise([a[p] for (a, _), p in zip(per_seed, pick, strict=True)], args.draws, rng)
        rho = summarise([b[p] for (_, b), p in zip(per_seed, pick, strict=True)], args.draws, rng)
        out[part] = {"top": top, "spearman": rho}
    print(
        f"  {label:22s} top {fmt(out['all']['top'])} (samples {out['samples']['top']['mean']:.2f}, "
        f"planted {out['planted']['top']['mean']:.2f})  Spearman {fmt(out['all']['spearman'])} "
        f"(samples {out['samples']['spearman']['mean']:.2f}, planted "
        f"{out['planted']['spearman']['mean']:.2f})",
        flush=True,
    )
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--works", type=int, default=120)
    ap.add_argument("--groups", type=int, default=12)
    ap.add_argument("--gens", type=int, default=24, help="sampled generations per seed")
    ap.add_argument("--planted", type=int, default=8, help="holders given a planted copy")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument(
        "--logo-seeds", type=int, default=2,
        help="LOGO retrain seeds built; those beyond --truth-seeds are scored against the truth",
    )  # fmt: skip
    ap.add_argument(
        "--truth-seeds", type=int, default=2,
        help="the truth: the LOGO rise averaged over the first this many retrain seeds",
    )  # fmt: skip
    ap.add_argument("--step-size", type=float, default=None, help="default: groups.py's")
    ap.add_argument("--unlearn-steps", type=int, default=None, help="default: groups.py's")
    ap.add_argument("--common-scale", action=argparse.BooleanOptionalAction, default=None)
    ap.add_argument("--grid", action="store_true", help="score the tuning grid instead")
    ap.add_argument(
        "--grid-precondition", nargs="+", default=None,
        help="instead of the step grid: these preconditioner dampings (or 'none') at "
        "--step-size/--unlearn-steps/--common-scale",
    )  # fmt: skip
    ap.add_argument("--draws", type=int, default=2000, help="bootstrap draws")
    ap.add_argument("--work", default="/tmp/tributary-group-bench")
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args(argv)
    if not 2 <= args.truth_seeds <= args.logo_seeds:
        ap.error("need 2 <= --truth-seeds <= --logo-seeds")
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    seeds = []
    for seed in args.seeds:
        d = build_seed(args, seed)
        seeds.append(d)
        print(
            f"seed {seed}: LOGO {args.groups} retrains {d['t_logo'][0]:.1f}s (r0) / "
            f"{d['t_logo'][1]:.1f}s (r1); served vs r0 full retrain max |diff| "
            f"{d['served_vs_retrain']:.2e}; top holder of copies = planted: r0 "
            f"{np.mean(d['truths'][0][d['is_planted']].argmax(1) == d['planted_label']):.0%}, "
            f"r1 {np.mean(d['truths'][1][d['is_planted']].argmax(1) == d['planted_label']):.0%}",
            flush=True,
        )
    masks = [d["is_planted"] for d in seeds]
    results = {"seeds": args.seeds, "works": args.works, "groups": args.groups}
    print(f"pooled over seeds {args.seeds} ({args.works} works, {args.groups} holders), "
          f"95 % bootstrap intervals:")  # fmt: skip
    # LOGO's noise floor: one retrain seed against the other.
    results["logo_r0_vs_r1"] = report(
        "LOGO r0 vs r1 (floor)", [agreement(d["truths"][0], d["truths"][1]) for d in seeds],
        masks, args, rng,
    )  # fmt: skip
    t = args.truth_seeds
    if t >= 4:
        # the truth's seeds in two halves (even, odd): how reproducible a truth of t/2 seeds is
        halves = [
            agreement(np.mean(d["truths"][0:t:2], axis=0), np.mean(d["truths"][1:t:2], axis=0))
            for d in seeds
        ]
        results["logo_split_halves"] = report(f"LOGO {t // 2} vs {t // 2} seeds", halves,
                                              masks, args, rng)  # fmt: skip
    if args.logo_seeds > t:
        # a retrain seed outside the truth against it: what an independent exact LOGO run
        # reaches against this truth (with a 2-seed truth, the practical ceiling of a method)
        results[f"logo_r{t}_vs_truth"] = report(
            f"LOGO r{t} vs truth", [agreement(d["truths"][t], d["truth"]) for d in seeds],
            masks, args, rng,
        )  # fmt: skip
    results["methods"] = {}
    sig = inspect.signature(GroupUnlearningAttributor.__init__).parameters
    ss = args.step_size if args.step_size is not None else sig["step_size"].default
    st = args.unlearn_steps if args.unlearn_steps is not None else sig["steps"].default
    cs = args.common_scale if args.common_scale is not None else sig["common_scale"].default
    if args.grid_precondition:
        for pc in args.grid_precondition:
            value = None if pc == "none" else float(pc)
            label = f"guda {ss} x{st} {'common' if cs else 'norm'} precond {pc}"
            per = [agreement(guda(d, ss, st, cs, precondition=value)[0], d["truth"]) for d in seeds]
            results["methods"][label] = report(label, per, masks, args, rng)
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1))
        return
    if args.grid:
        for ss, st, cs in itertools.product(GRID_STEP_SIZE, GRID_STEPS, GRID_COMMON):
            label = f"guda {ss} x{st} {'common' if cs else 'norm'}"
            per = [agreement(guda(d, ss, st, cs)[0], d["truth"]) for d in seeds]
            results["methods"][label] = report(label, per, masks, args, rng)
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1))
        return
    preds = {"guda": [], "trak-sum": []}
    times = {"guda": 0.0, "trak-sum": 0.0}
    for d in seeds:
        for label, f in (("guda", lambda d: guda(d, ss, st, cs)), ("trak-sum", trak_sum)):
            p, t = f(d)
            preds[label].append(p)
            times[label] += t
    t_logo = sum(d["t_logo"][0] for d in seeds)
    per = {}
    for label, pred in preds.items():
        per[label] = [agreement(p, d["truth"]) for p, d in zip(pred, seeds, strict=True)]
        name = f"guda {ss} x{st} {'common' if cs else 'norm'}" if label == "guda" else label
        results["methods"][label] = report(name, per[label], masks, args, rng)
        results["methods"][label]["time_s"] = times[label]
        results["methods"][label]["speedup_vs_logo"] = t_logo / times[label]
    # against each retrain seed alone: r0 is the served model's own counterfactual (what
    # unlearning from the served weights approximates), r1 an independently trained model
    for r in range(2):
        for label, pred in preds.items():
            ps = [agreement(p, d["truths"][r]) for p, d in zip(pred, seeds, strict=True)]
            results["methods"][label][f"vs_r{r}"] = report(f"{label} vs r{r} only", ps, masks, args, rng)
    diff = {}
    for k, key in ((0, "top"), (1, "spearman")):
        parts = [a[k] - b[k] for a, b in zip(per["guda"], per["trak-sum"], strict=True)]
        diff[key] = summarise(parts, args.draws, rng)
    results["guda_minus_trak"] = diff
    print(
        f"  paired guda - trak-sum: top {fmt(diff['top'])}, Spearman {fmt(diff['spearman'])}\n"
        f"  time: guda {times['guda']:.1f}s, trak-sum {times['trak-sum']:.1f}s, one LOGO seed "
        f"{t_logo:.1f}s -> guda {t_logo / times['guda']:.0f}x, trak-sum "
        f"{t_logo / times['trak-sum']:.0f}x faster",
        flush=True,
    )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
