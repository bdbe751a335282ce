"""Our TRAK vs dattri's TRAKAttributor on the same model, checkpoints, data and generations.

    .venv/bin/python benchmarks/attribution_vs_dattri.py --works 200 --lds-m 32

One run: trains the sandbox reference model (TINY_CONFIG, 3 checkpoints) on synthetic pieces,
plants near copies of some works as generations, samples ordinary generations, and computes
the LDS ground truth once (m retrained halves, alpha = 0.5, same batch draws). Then each
attributor runs in its own subprocess (so peak RSS is its own) on the same checkpoints:

* ours: attribution.trak.TRAKAttributor, LoGra-style per-layer projection of the nn.Linear
  gradients (k_in = k_out = --k, p = k^2 x n_linear), each relative damping of
  --our-damping (features computed once, cost from the first);
* dattri: dattri.algorithm.trak.TRAKAttributor with torch.func per-example gradients of all
  parameters, random projection to the same p (--dattri-proj-dim overrides), each
  regularisation of --dattri-reg (best LDS reported; its cost from the first).

Prints LDS and recall@1 for both, featurisation time per training example, scoring time per
generation (target featurisation + scoring), peak RSS, and ours/dattri ratios.
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

from attribution.adapter import SandboxGPTAdapter
from attribution.evaluate import (
    RetrainSpec,
    SubsetLosses,
    lds,
    near_copy,
    recall_at_1,
    retrain_on_subsets,
    sample_generations,
)
from attribution.trak import TRAKAttributor
from sandbox.model import PAD_ID, GPTConfig
from sandbox.tokenizer import Tokenizer
from sandbox.train import (
    TINY_CONFIG,
    load_model_version,
    pad_batch,
    synthetic_pieces,
    train_model_version,
)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_ours(d: dict, args) -> dict:
    mv = load_model_version(Path(d["mv_dir"]))
    # A fresh cache folder: featurisation is timed, so it must not find an earlier run's.
    cache = Path(tempfile.mkdtemp(prefix="ours-cache-", dir=Path(args.data).parent))
    targets = d["copies"] + d["gens"]
    out = {"scores": [], "regs": args.our_damping}
    for j, damping in enumerate(args.our_damping):
        att = TRAKAttributor(
            SandboxGPTAdapter(mv),
            k_in=args.k,
            k_out=args.k,
            seed=0,
            damping=damping,
            cache_dir=cache,
        )
        t = time.perf_counter()
        att.cache(d["train"])  # the first damping computes the features, the others reuse them
        t_feat = time.perf_counter() - t
        t = time.perf_counter()
        out["scores"].append(att.attribute(targets))
        t_score = time.perf_counter() - t
        if j == 0:
            out["p"] = att.n_features
            out["feat_s_per_train"] = t_feat / len(d["train"])
            out["score_s_per_gen"] = t_score / len(targets)
    return out


def run_dattri(d: dict, args) -> dict:
    from dattri.algorithm.trak import TRAKAttributor as DattriTRAK
    from dattri.task import AttributionTask
    from torch.utils.data import DataLoader, TensorDataset

    mv = load_model_version(Path(d["mv_dir"]))
    model = mv.load_model()
    ckpts = [mv.load_model(c).state_dict() for c in mv.checkpoints]
    width = max(len(t) for t in d["train"] + d["copies"] + d["gens"])

    def padded(seqs):
        x = pad_batch(seqs)
        return torch.nn.functional.pad(x, (0, width - x.shape[1]), value=PAD_ID)

    def loss_func(params, data):
        # The same quantity as our adapter: summed token NLL of one piece, pads masked.
        (idx,) = data
        idx = idx.unsqueeze(0)
        logits, _ = torch.func.functional_call(model, params, (idx[:, :-1],))
        logp = torch.log_softmax(logits, dim=-1)
        tgt = idx[:, 1:]
        nll = -torch.gather(logp, -1, tgt.unsqueeze(-1)).squeeze(-1)
        return (nll * (tgt != PAD_ID)).sum()

    def correct_prob(params, data):
        return torch.exp(-loss_func(params, data))

    p = args.dattri_proj_dim or d["p_ours"]
    train_dl = DataLoader(TensorDataset(padded(d["train"])), batch_size=32, shuffle=False)
    targets = d["copies"] + d["gens"]
    test_dl = DataLoader(TensorDataset(padded(targets)), batch_size=32, shuffle=False)
    out = {"scores": [], "p": p, "regs": args.dattri_reg}
    for j, reg in enumerate(args.dattri_reg):
        task = AttributionTask(loss_func=loss_func, model=model, checkpoints=ckpts)
        att = DattriTRAK(
            task=task,
            correct_probability_func=correct_prob,
            projector_kwargs={"proj_dim": p, "device": "cpu", "proj_seed": 0},
            device="cpu",
            regularization=reg,
        )
        t = time.perf_counter()
        att.cache(train_dl)
        t_feat = time.perf_counter() - t
        t = time.perf_counter()
        s = att.attribute(test_dl).T.numpy()  # dattri returns (n_train, n_test)
        t_score = time.perf_counter() - t
        out["scores"].append(s)
        if j == 0:
            out["feat_s_per_train"] = t_feat / len(d["train"])
            out["score_s_per_gen"] = t_score / len(targets)
    return out


def child(which: str, data_path: Path, out_path: Path, args) -> None:
    torch.set_num_threads(args.threads)
    d = pickle.loads(data_path.read_bytes())
    res = run_ours(d, args) if which == "ours" else run_dattri(d, args)
    res["peak_rss_mib"] = peak_rss_mib()
    out_path.write_bytes(pickle.dumps(res))


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--works", type=int, default=200)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--planted", type=int, default=20)
    ap.add_argument("--gens", type=int, default=16)
    ap.add_argument("--lds-m", type=int, default=32)
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--dattri-proj-dim", type=int, default=0, help="0: same p as ours")
    ap.add_argument("--dattri-reg", type=float, nargs="+", default=[1e-5, 1e-3, 1e-1])
    ap.add_argument("--our-damping", type=float, nargs="+", default=[1e-3, 1e-2, 1e-1, 1.0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--child", choices=["ours", "dattri"])
    ap.add_argument("--data", type=Path)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--json", type=Path)
    ap.add_argument(
        "--reuse", type=Path, help="work folder of an earlier run: same model, data, LDS truth"
    )
    args = ap.parse_args(argv)
    if args.child:
        child(args.child, args.data, args.out, args)
        return {}
    torch.set_num_threads(args.threads)
    if args.reuse:
        work = args.reuse
        data = pickle.loads((work / "data.pkl").read_bytes())
        z = np.load(work / "lds_truth.npz")
        subsets = SubsetLosses(z["masks"], z["losses"], 0.0)
        copies = data["copies"]
        if "planted" in data:
            planted = data["planted"]
        else:  # folders written before "planted" was stored: the same seeded draw
            rng = np.random.default_rng(args.seed + 7)
            planted = sorted(rng.choice(args.works, args.planted, replace=False).tolist())
        mv = load_model_version(Path(data["mv_dir"]))
        data["p_ours"] = TRAKAttributor(SandboxGPTAdapter(mv), k_in=args.k, k_out=args.k).n_features
        (work / "data.pkl").write_bytes(pickle.dumps(data))
    else:
        work = Path(tempfile.mkdtemp(prefix="vs-dattri-"))
        tok = Tokenizer()
        pieces = synthetic_pieces(args.works, seed=args.seed + 1)
        ids = [f"work-{i:05d}" for i in range(args.works)]
        cfg = GPTConfig(vocab_size=tok.vocab_size, block_size=tok.max_len, **TINY_CONFIG)
        mv_dir = train_model_version(
            pieces,
            ids,
            work,
            cfg,
            steps=args.steps,
            batch_size=16,
            lr=3e-3,
            seed=args.seed,
            log_every=0,
        )
        mv = load_model_version(mv_dir)
        rng = np.random.default_rng(args.seed + 7)
        planted = sorted(rng.choice(args.works, args.planted, replace=False).tolist())
        copies = [near_copy(pieces[w], rng) for w in planted]
        gens = sample_generations(mv.load_model(), args.gens, seed=args.seed + 3)
        spec = RetrainSpec(cfg, args.steps, 16, 3e-3, args.seed)
        t = time.perf_counter()
        subsets = retrain_on_subsets(spec, pieces, gens, m=args.lds_m, seed=args.seed)
        print(
            f"LDS ground truth: {args.lds_m} retrains in {time.perf_counter() - t:.0f}s", flush=True
        )
        # Kept with the run so other attributor settings can be scored against the same truth.
        np.savez(work / "lds_truth.npz", masks=subsets.masks, losses=subsets.losses)
        print(f"work folder: {work}", flush=True)
        p_ours = TRAKAttributor(SandboxGPTAdapter(mv), k_in=args.k, k_out=args.k).n_features
        data = {
            "mv_dir": str(mv_dir),
            "train": pieces,
            "copies": copies,
            "gens": gens,
            "p_ours": p_ours,
            "planted": planted,
        }
        (work / "data.pkl").write_bytes(pickle.dumps(data))
    results = {}
    for which in ("ours", "dattri"):
        cmd = [
            sys.executable,
            __file__,
            "--child",
            which,
            "--data",
            str(work / "data.pkl"),
            "--out",
            str(work / f"{which}.pkl"),
            "--k",
            str(args.k),
            "--threads",
            str(args.threads),
            "--dattri-proj-dim",
            str(args.dattri_proj_dim),
            "--dattri-reg",
            *map(str, args.dattri_reg),
            "--our-damping",
            *map(str, args.our_damping),
        ]
        t = time.perf_counter()
        proc = subprocess.run(
            cmd,
            check=False,
            cwd=ROOT,
            capture_output=True,
            text=True,
            env={**os.environ, "TQDM_DISABLE": "1"},
        )
        if proc.returncode != 0:
            results[which] = {"error": proc.stderr[-3000:]}
            print(f"{which} FAILED:\n{proc.stderr[-3000:]}", flush=True)
            continue
        r = pickle.loads((work / f"{which}.pkl").read_bytes())
        n_c = len(copies)
        per_reg = [
            {"recall_at_1": recall_at_1(s[:n_c], planted), "lds": lds(s[n_c:], subsets)}
            for s in r.pop("scores")
        ]
        best = max(range(len(per_reg)), key=lambda j: per_reg[j]["lds"])
        r.update(per_reg[best])
        # Each side gets the best of its own regularisation grid (chosen on the same LDS
        # generations, so both are equally optimistic); the per-value numbers are kept too.
        r["per_regularization"] = dict(zip(map(str, r["regs"]), per_reg, strict=True))
        r["best_regularization"] = r["regs"][best]
        r["wall_s"] = time.perf_counter() - t
        results[which] = r
        print(which, json.dumps(r), flush=True)
    if "error" not in results.get("ours", {}) and "error" not in results.get("dattri", {}):
        o, d = results["ours"], results["dattri"]
        results["ratios"] = {
            "lds_ours_minus_dattri": o["lds"] - d["lds"],
            "featurisation_speedup": d["feat_s_per_train"] / o["feat_s_per_train"],
            "scoring_speedup": d["score_s_per_gen"] / o["score_s_per_gen"],
            "per_generation_speedup": (d["feat_s_per_train"] + d["score_s_per_gen"])
            / (o["feat_s_per_train"] + o["score_s_per_gen"]),
            "peak_rss_ratio": o["peak_rss_mib"] / d["peak_rss_mib"],
        }
    results["config"] = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    print(json.dumps({k: v for k, v in results.items()}, indent=1, default=float))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=float))
    return results


if __name__ == "__main__":
    main()
