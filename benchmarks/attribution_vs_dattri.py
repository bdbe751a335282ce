"""Our TRAK vs dattri's TRAKAttributor: same model, checkpoints, training set and generations.

Needs the `bench` extra and dattri, which is installed without its dependencies (its
requirements are covered by the extra and the project's own; --no-deps keeps pip from
touching anything the project pins):

    .venv/bin/pip install -e '.[dev,bench]'
    .venv/bin/pip install --no-deps dattri==0.3.0

Reference run (docs/BENCHMARKS.md; on 2 shared CPU cores the LDS truth takes 7-10 minutes
per seed, the comparison about 8 minutes for three seeds):

    .venv/bin/python benchmarks/attribution_vs_dattri.py --seeds 3 4 5 --gens 96 --lds-m 48 \\
        --work /tmp/vs-dattri

Per model seed s (each an independent run: training pieces, model, planted copies, sampled
generations, LDS subsets and projections all follow from s): trains the sandbox reference
model (TINY_CONFIG, 3 checkpoints), plants near copies of --planted works, samples --gens
ordinary generations and computes the LDS ground truth once (--lds-m retrained halves,
alpha = 0.5, same batch draws). Both attributors then score the same targets on the same
checkpoints, each in its own subprocess so that peak RSS is its own:

* ours, attribution.trak.TRAKAttributor at its defaults (output layer, kept exact: 92 x 32 =
  2,944 features per checkpoint; curvature "kfac-gram": TRAK's Gram in the feature space
  whitened by K-FAC, damping 10; 3-checkpoint ensemble; all chosen on seeds 0-2, so seeds 3+
  are held out), the same on the served checkpoint only and with the output layer projected
  16 x 80 (p = 1280, to compare with dattri at equal p), each curvature alone (K-FAC,
  TRAK's Gram), and the default before 2026-11-25 (16 x 80, Gram, damping 0.3);
* dattri 0.3.0 TRAKAttributor: torch.func per-example gradients of all 26,848 parameters,
  random projection to p = 320, 1280 and 2944 (dattri's default is 512), on all 3 checkpoints,
  and p = 1280 on the served one; each at every value of --dattri-reg (dattri's default is
  0), and the value with the best pooled LDS is reported (chosen on the evaluation
  generations themselves, so dattri's numbers are optimistic; ours use fixed defaults).

Statistics: LDS is a Spearman correlation per generation; the table gives the mean over all
seeds x generations with a 95 % bootstrap interval (generations resampled within each seed,
--boot draws), the per-seed means, and for ours-default minus each other row the paired
mean difference with its bootstrap interval and the fraction of generations where ours is
higher. Recall@1 is over the planted copies of all seeds. Times, per configuration (both
sides warmed up first; dattri's summed over its regularisation values, each of which
featurises anew): featurisation seconds per training example, scoring seconds per target
(target features at every checkpoint + scores), and featurisation + scoring of the whole
run per target, with ours-default's speed-up on each.

A folder given by --work keeps each seed's model, data and LDS truth; a later run with the
same folder and seed reuses them (--truth-only builds them and stops, so several seeds can
be built in parallel processes).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import resource
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
    add_seed_arguments,
    boot_mean_ci,
    build_seed,
    gpt_dattri_loss,
    load_truth,
    per_generation_lds,
    require_dattri,
    summarise,
)

from attribution.trak import TRAKAttributor
from sandbox.gpt_adapter import SandboxGPTAdapter
from sandbox.model import PAD_ID
from sandbox.train import load_model_version, pad_batch

OURS = {
    "ours default (output layer exact, K-FAC-whitened Gram, 3 ckpts, p=2944)": {},
    "ours default, served ckpt only": {"served_only": True},
    "ours default, output layer projected 16x80 (p=1280)": {"exact_up_to": 0},
    "ours with K-FAC alone (curvature kfac, damping 0.1)": {"curvature": "kfac"},
    "ours with TRAK's Gram alone (curvature gram, damping 1)": {"curvature": "gram"},
    "ours previous default (16x80, Gram, damping 0.3), 3 ckpts": {
        "exact_up_to": 0,
        "curvature": "gram",
        "damping": 0.3,
    },
}
DATTRI = {  # label: (projection dim, served checkpoint only)
    "dattri p=320, 3 ckpts": (320, False),
    "dattri p=1280, 3 ckpts": (1280, False),
    "dattri p=2944, 3 ckpts": (2944, False),
    "dattri p=1280, served ckpt only": (1280, True),
}
REFERENCE = "ours default (output layer exact, K-FAC-whitened Gram, 3 ckpts, p=2944)"


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- the two sides, each in its own process ------------------------------------------------------


def run_ours(d: dict, args) -> dict:
    mv = load_model_version(Path(d["mv_dir"]))
    targets = d["copies"] + d["gens"]
    out = {"scores": {}, "p": {}, "time": {}}
    # Warm-up outside the clock (first-call allocations, lazy imports), as for dattri.
    TRAKAttributor(SandboxGPTAdapter(mv), checkpoints=mv.checkpoints[-1:]).cache(d["train"][:4])
    for label, kw in OURS.items():
        kw = dict(kw)
        ckpts = mv.checkpoints[-1:] if kw.pop("served_only", False) else None
        att = TRAKAttributor(SandboxGPTAdapter(mv), seed=d["seed"], checkpoints=ckpts, **kw)
        t = time.perf_counter()
        att.cache(d["train"])
        t_feat = time.perf_counter() - t
        t = time.perf_counter()
        out["scores"][label] = att.attribute(targets)
        t_score = time.perf_counter() - t
        out["p"][label] = att.n_features
        out["time"][label] = (t_feat, t_score, len(d["train"]), len(targets))
    return out


def run_dattri(d: dict, args) -> dict:
    from dattri.algorithm.trak import TRAKAttributor as DattriTRAK
    from dattri.task import AttributionTask
    from torch.utils.data import DataLoader, TensorDataset

    mv = load_model_version(Path(d["mv_dir"]))
    model = mv.load_model()
    states = [mv.load_model(c).state_dict() for c in mv.checkpoints]
    width = max(len(t) for t in d["train"] + d["copies"] + d["gens"])

    def padded(seqs):
        x = pad_batch(seqs)
        return torch.nn.functional.pad(x, (0, width - x.shape[1]), value=PAD_ID)

    loss_func, correct_prob = gpt_dattri_loss(model)
    train_dl = DataLoader(TensorDataset(padded(d["train"])), batch_size=32, shuffle=False)
    targets = d["copies"] + d["gens"]
    test_dl = DataLoader(TensorDataset(padded(targets)), batch_size=32, shuffle=False)
    out = {"scores": {}, "p": {}, "time": {}}
    warm = DataLoader(TensorDataset(padded(d["train"][:4])), batch_size=32, shuffle=False)
    DattriTRAK(
        task=AttributionTask(loss_func=loss_func, model=model, checkpoints=states[-1:]),
        correct_probability_func=correct_prob,
        projector_kwargs={"proj_dim": 320, "device": "cpu", "proj_seed": d["seed"]},
        device="cpu",
    ).cache(warm)
    for label, (p, served_only) in DATTRI.items():
        ckpts = states[-1:] if served_only else states
        out["p"][label] = p
        for reg in args.dattri_reg:
            task = AttributionTask(loss_func=loss_func, model=model, checkpoints=ckpts)
            att = DattriTRAK(
                task=task,
                correct_probability_func=correct_prob,
                projector_kwargs={"proj_dim": p, "device": "cpu", "proj_seed": d["seed"]},
                device="cpu",
                regularization=reg,
            )
            t = time.perf_counter()
            att.cache(train_dl)
            t_feat = time.perf_counter() - t
            t = time.perf_counter()
            scores = att.attribute(test_dl).T.numpy()  # dattri returns (n_train, n_test)
            t_score = time.perf_counter() - t
            out["scores"][(label, reg)] = scores
            out["time"][(label, reg)] = (t_feat, t_score, len(d["train"]), len(targets))
    return out


def child(which: str, data_path: Path, out_path: Path, args) -> None:
    torch.set_num_threads(args.threads)
    d = pickle.loads(data_path.read_bytes())
    res = run_ours(d, args) if which == "ours" else run_dattri(d, args)
    res["peak_rss_mib"] = peak_rss_mib()
    out_path.write_bytes(pickle.dumps(res))


def run_child(which: str, folder: Path, args) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--child",
        which,
        "--data",
        str(folder / "data.pkl"),
        "--out",
        str(folder / f"{which}.pkl"),
        "--threads",
        str(args.threads),
        "--dattri-reg",
        *map(str, args.dattri_reg),
    ]
    proc = subprocess.run(
        cmd,
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "TQDM_DISABLE": "1"},
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{which} failed:\n{proc.stderr[-3000:]}")
    return pickle.loads((folder / f"{which}.pkl").read_bytes())


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_seed_arguments(ap)
    ap.add_argument("--dattri-reg", type=float, nargs="+", default=[1e-2, 1e-1, 1.0, 10.0])
    ap.add_argument("--boot", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--work", type=Path, help="keeps models, data and LDS truth per seed")
    ap.add_argument("--truth-only", action="store_true")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--child", choices=["ours", "dattri"], help=argparse.SUPPRESS)
    ap.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args.child, args.data, args.out, args)
        return {}
    if not args.truth_only:
        require_dattri()  # before an hour of retraining, not after
    torch.set_num_threads(args.threads)
    work = args.work or Path(tempfile.mkdtemp(prefix="vs-dattri-"))
    print(f"work folder: {work}", flush=True)
    t_all = time.perf_counter()
    lds_by: dict[str, list[np.ndarray]] = {}
    recall_hits: dict[str, list[float]] = {}
    # label -> [featurisation s, scoring s, training examples, targets] summed over seeds
    # (and over dattri's regularisation values, each of which featurises anew)
    cost: dict[str, list[float]] = {}
    peak: dict[str, list[float]] = {"ours": [], "dattri": []}
    p_of: dict[str, int] = {}
    for seed in args.seeds:
        folder = work / f"seed-{seed}"
        d = build_seed(seed, folder, args.works, args.planted, args.gens, args.lds_m, args.steps)
        if args.truth_only:
            continue
        masks, losses = load_truth(folder)
        n_c = len(d["copies"])
        for which in ("ours", "dattri"):
            t = time.perf_counter()
            r = run_child(which, folder, args)
            print(f"seed {seed}: {which} in {time.perf_counter() - t:.0f}s", flush=True)
            p_of.update(r["p"])
            for key, s in r["scores"].items():
                name = key if isinstance(key, str) else f"{key[0]} @reg {key[1]:g}"
                lds_by.setdefault(name, []).append(per_generation_lds(s[n_c:], masks, losses))
                hits = (np.argmax(s[:n_c], axis=1) == np.asarray(d["planted"])).tolist()
                recall_hits.setdefault(name, []).extend(hits)
            for key, t4 in r["time"].items():
                label = key if isinstance(key, str) else key[0]
                acc = cost.setdefault(label, [0.0, 0.0, 0, 0])
                for i, v in enumerate(t4):
                    acc[i] += v
            peak[which].append(r["peak_rss_mib"])
    if args.truth_only:
        print(f"truth built for seeds {args.seeds} in {time.perf_counter() - t_all:.0f}s")
        return {}

    rng = np.random.default_rng(0)
    rows: dict[str, dict] = {}
    for label in OURS:
        rows[label] = summarise(lds_by[label], args.boot, rng) | {"p": p_of[label]}
        rows[label]["recall_at_1"] = float(np.mean(recall_hits[label]))
    for label in DATTRI:
        # dattri's regularisation: the grid value with the best pooled LDS (optimistic).
        per_reg = {
            reg: np.concatenate(lds_by[f"{label} @reg {reg:g}"]).mean() for reg in args.dattri_reg
        }
        reg = max(per_reg, key=per_reg.get)
        name = f"{label} @reg {reg:g}"
        rows[label] = summarise(lds_by[name], args.boot, rng) | {
            "p": p_of[label],
            "regularization": reg,
            "lds_per_regularization": {f"{k:g}": float(v) for k, v in per_reg.items()},
            "recall_at_1": float(np.mean(recall_hits[name])),
        }
        lds_by[label] = lds_by[name]
    ref = lds_by[REFERENCE]
    for label in list(OURS)[1:] + list(DATTRI):
        diff = [a - b for a, b in zip(ref, lds_by[label], strict=True)]
        lo, hi = boot_mean_ci(diff, args.boot, rng)
        pooled = np.concatenate(diff)
        rows[label]["default_minus_this"] = {
            "mean": float(pooled.mean()),
            "ci95": [lo, hi],
            "default_higher_fraction": float(np.mean(pooled > 0)),
        }
    timing = {
        label: {
            "feat_s_per_train": f / n_tr,
            "score_s_per_gen": sc / n_tg,
            # What the target is about: the whole job of one benchmark run (featurise
            # the training set once, score every target) per generation scored.
            "feat_plus_score_s_per_gen": (f + sc) / n_tg,
        }
        for label, (f, sc, n_tr, n_tg) in cost.items()
    }
    ref_t = timing[REFERENCE]
    for t in timing.values():
        t["default_speedup"] = t["feat_plus_score_s_per_gen"] / ref_t["feat_plus_score_s_per_gen"]
        t["default_feat_speedup"] = t["feat_s_per_train"] / ref_t["feat_s_per_train"]
        t["default_score_speedup"] = t["score_s_per_gen"] / ref_t["score_s_per_gen"]
    res = {
        "rows": rows,
        "timing": timing,
        "peak_rss_mib": {k: float(max(v)) for k, v in peak.items()},
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "total_s": time.perf_counter() - t_all,
    }
    n_gen = rows[REFERENCE]["n"]
    print(
        f"\nLDS over {len(args.seeds)} seeds x {args.gens} generations = {n_gen} (m = "
        f"{args.lds_m}); default - row: paired difference, 95 % bootstrap interval\n"
    )
    print(
        "| attributor | p per ckpt | LDS mean [95 % CI] | per seed | recall@1 "
        "| default - this [95 % CI] | default higher |"
    )
    print("|---|---:|---|---|---:|---|---:|")
    for label, r in rows.items():
        seeds = " / ".join(f"{m:.3f}" for m in r["seed_means"])
        reg = f" (reg {r['regularization']:g})" if "regularization" in r else ""
        dm = r.get("default_minus_this")
        diff = f"{dm['mean']:+.3f} [{dm['ci95'][0]:+.3f}, {dm['ci95'][1]:+.3f}]" if dm else "-"
        hf = f"{dm['default_higher_fraction']:.0%}" if dm else "-"
        print(
            f"| {label}{reg} | {r['p']} | {r['mean']:.3f} [{r['ci95'][0]:.3f}, "
            f"{r['ci95'][1]:.3f}] | {seeds} | {r['recall_at_1']:.2f} | {diff} | {hf} |"
        )
    print(
        "\n| attributor | featurise, s per training example | score, s per target "
        "| featurise + score, s per target | ours default faster by (featurise / score / both) |"
    )
    print("|---|---:|---:|---:|---|")
    for label, t in timing.items():
        print(
            f"| {label} | {t['feat_s_per_train']:.5f} | {t['score_s_per_gen']:.5f} "
            f"| {t['feat_plus_score_s_per_gen']:.5f} | {t['default_feat_speedup']:.1f}x / "
            f"{t['default_score_speedup']:.1f}x / **{t['default_speedup']:.1f}x** |"
        )
    pk = res["peak_rss_mib"]
    print(
        f"\npeak RSS (every configuration of a side in one process): ours {pk['ours']:.0f} MiB,"
        f" dattri {pk['dattri']:.0f} MiB; total {res['total_s']:.0f}s"
    )
    if args.json:
        args.json.write_text(json.dumps(res, indent=1, default=float))
    return res


if __name__ == "__main__":
    main()
