"""Honest baselines (issue 16, item 4): ours against dattri 0.3.0 on the tiny and a deeper
sandbox model, with an LDS truth averaged over two retrain seeds and TRAK-k ensembles of
independently trained models.

Needs the `bench` extra and dattri (installed without its dependencies):

    .venv/bin/pip install -e '.[dev,bench]'
    .venv/bin/pip install --no-deps dattri==0.3.0

Stages, each resumable (everything is kept under --work/<model>/seed-<s>/):

    # models, generations, the k-1 extra independently trained models and the LDS truth
    .venv/bin/python benchmarks/baselines.py build --model tiny --seeds 3 4 5 --work /tmp/bl16
    # every attributor on every seed built so far (one subprocess per family)
    .venv/bin/python benchmarks/baselines.py score --model tiny --seeds 3 4 5 --work /tmp/bl16
    # tables from whatever truth and scores exist (a partial truth: its first m' subsets)
    .venv/bin/python benchmarks/baselines.py report --model tiny --seeds 3 4 5 --work /tmp/bl16

Models: "tiny" is TINY_CONFIG (1 layer, 2 heads, width 32, 26,848 parameters); "deep" is
DEEP_CONFIG (4 layers, same width and heads, 64,960 parameters); both 300 steps, batch 16,
lr 3e-3 on --works synthetic pieces (sandbox/train.py). Per model seed s the seed fixes the
pieces, the served model (3 checkpoints), planted copies, generations and LDS subsets as in
attribution_common.build_seed.

Ground truth: the same m subsets (alpha 0.5) retrained with two recipes that differ only by
their seed: retrain seed s (the reference run's seed: same initialisation and batch draws as
the served model, the protocol of attribution_vs_dattri.py) and s + 1000 (another
initialisation and batch order). The truth of a generation is its loss averaged over the two
retrains of each subset; the noise floor is the Spearman correlation, over the subsets, of the
two retrain seeds' losses (how well one retrain predicts the other). The build interleaves
subsets, seeds and retrain seeds, so a partial build still gives every seed a truth on its
first m' subsets; the report uses the largest m' every seed reached.

TRAK-k: k independently trained models on the same training set (the served model's last
checkpoint and k - 1 models of training seeds 100000 + 100 s + j), one checkpoint each, not
checkpoints of one run. Ours-k averages our product scores over the k models; dattri-k gives
the k state dicts to its TRAKAttributor as its checkpoints (its own ensemble).

Attributors (ours at its product defaults; every dattri option at the value of its grid with
the best pooled LDS, chosen on the evaluation generations, so optimistic for dattri):

* ours: default (output layer exact, kfac-gram, 3 checkpoints of the served run); served
  checkpoint only (= ours-1); ours-5, ours-10; layers="all" (every linear layer, projected).
* dattri TRAKAttributor (torch.func per-example gradients, random projection p = 2944, our
  output layer's feature count; Q = exp(-loss)): all parameters and `layer_name` = the output
  layer (same layer as ours), 3 checkpoints; TRAK-k, k = 1, 5, 10 on all parameters and on the
  output layer; regularisation grid --dattri-reg.
* dattri LoGraAttributor (per-layer Kronecker projection, 32 x 32 per layer = proj_dim 1024,
  block-diagonal empirical Fisher): every linear layer, and the output layer alone. dattri
  0.3.0's LoGra reads only the task's first checkpoint, so the harness runs it on each of the
  3 checkpoints and averages the scores. Damping grid --logra-damping (relative, as dattri's).
* dattri IFAttributorEKFAC on the output layer; see ekfac_model for why only there.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from attribution_common import (
    BATCH,
    LR,
    CachedRetrainer,
    boot_mean_ci,
    per_generation_lds,
    prepare_seed,
    require_dattri,
    retrain_spec,
    summarise,
)

from attribution.evaluate import spearman, subset_masks
from sandbox.train import TINY_CONFIG, load_model_version, train_model_version

DEEP_CONFIG = {"n_layer": 4, "n_head": 2, "n_embd": 32, "dropout": 0.0}
MODELS = {"tiny": TINY_CONFIG, "deep": DEEP_CONFIG}
SECOND_RETRAIN_SEED = 1000  # retrain seed s + this: the truth's second recipe


def ensemble_seed(seed: int, j: int) -> int:
    return 100_000 + 100 * seed + j


def retrain_seeds(seed: int, n: int) -> list[int]:
    return [seed + SECOND_RETRAIN_SEED * r for r in range(n)]


# -- build ---------------------------------------------------------------------------------------


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
        print(f"{args.model}: subset {j + 1}/{args.lds_m} ({time.perf_counter() - t0:.0f}s)",
              flush=True)


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



# -- the attributors, one family per subprocess --------------------------------------------------

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


def dattri_trak_rows(args) -> dict[str, tuple[str | None, str, int]]:
    """label -> (layer or None for all parameters, "served" or "independent", k)."""
    rows = {
        "dattri TRAK, all parameters, 3 ckpts": (None, "served", 3),
        "dattri TRAK, output layer, 3 ckpts": (OUTPUT_LAYER, "served", 3),
    }
    for k in sorted(args.trak_k, reverse=True):  # the largest first: the others reuse it
        rows[f"dattri TRAK-{k}, all parameters"] = (None, "independent", k)
        rows[f"dattri TRAK-{k}, output layer"] = (OUTPUT_LAYER, "independent", k)
    return rows


def dattri_loaders(d: dict):
    from torch.utils.data import DataLoader, TensorDataset

    from sandbox.model import PAD_ID
    from sandbox.train import pad_batch

    width = max(len(t) for t in d["train"] + d["copies"] + d["gens"])

    def padded(seqs):
        x = pad_batch(seqs)
        return torch.nn.functional.pad(x, (0, width - x.shape[1]), value=PAD_ID)

    train = DataLoader(TensorDataset(padded(d["train"])), batch_size=32, shuffle=False)
    test = DataLoader(TensorDataset(padded(d["copies"] + d["gens"])), batch_size=32)
    return train, test


def run_dattri_trak(d: dict, paths: list[str], args) -> dict:
    from attribution_common import DattriMemo, gpt_dattri_loss
    from dattri.algorithm.trak import TRAKAttributor as DattriTRAK

    served = load_model_version(Path(d["mv_dir"]))
    model = served.load_model()
    loss_func, correct_prob = gpt_dattri_loss(model)
    train_dl, test_dl = dattri_loaders(d)
    states = {"served": served_states(served), "independent": [final_state(p) for p in paths]}
    out: dict = {"scores": {}, "seconds": {}}
    rows = dattri_trak_rows(args)
    for layer in (None, OUTPUT_LAYER):
        # One memo per layer choice: TRAK-1 and TRAK-5 use the first models of TRAK-10, and
        # the served run's last checkpoint is TRAK-1's model, so each model's gradients and
        # projections are dattri's own, computed once (the rows' seconds are therefore not
        # dattri's cost; attribution_vs_dattri.py measures that).
        memo = DattriMemo()
        task_cls, unpatch = memo.patch()
        try:
            for label, (lay, which, k) in rows.items():
                if lay != layer:
                    continue
                t = time.perf_counter()
                for reg in args.dattri_reg:
                    task = task_cls(
                        loss_func=loss_func, model=model, checkpoints=states[which][:k]
                    )
                    att = DattriTRAK(
                        task=task,
                        correct_probability_func=correct_prob,
                        projector_kwargs={
                            "proj_dim": DATTRI_P,
                            "device": "cpu",
                            "proj_seed": d["seed"],
                        },
                        layer_name=None if layer is None else [f"{layer}.weight"],
                        device="cpu",
                        regularization=reg,
                    )
                    att.cache(train_dl)
                    out["scores"][(label, reg)] = att.attribute(test_dl).T.numpy()
                out["seconds"][label] = time.perf_counter() - t
                print(f"  {label}: {out['seconds'][label]:.0f}s", flush=True)
        finally:
            unpatch()
    return out


class LogitsOnly(torch.nn.Module):
    """The sandbox GPT as dattri's LoGra needs it: dattri 0.3.0 computes a target's gradient
    as cross_entropy(model(inputs), targets) on the model's raw output (it ignores the task's
    loss there), so the model returns (B, vocab, T) logits and pads carry the ignore index."""

    def __init__(self, gpt: torch.nn.Module) -> None:
        super().__init__()
        self.gpt = gpt

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # dattri's compressor setup probes the layers' shapes with sample_batch[0][0]: one
        # piece without its batch dimension.
        x = x.unsqueeze(0) if x.dim() == 1 else x
        return self.gpt(x)[0].transpose(1, 2)


def logra_loaders(d: dict):
    from torch.utils.data import DataLoader, TensorDataset

    from sandbox.model import PAD_ID
    from sandbox.train import pad_batch

    def pairs(seqs):
        x = pad_batch(seqs)
        y = x[:, 1:].clone()
        y[y == PAD_ID] = -100  # cross_entropy's default ignore index
        return TensorDataset(x[:, :-1], y)

    return (
        DataLoader(pairs(d["train"]), batch_size=32, shuffle=False),
        DataLoader(pairs(d["copies"] + d["gens"]), batch_size=32, shuffle=False),
    )


def logra_train_loss(model, batch, device):
    # Summed over tokens and pieces: each piece's gradient is its summed token NLL, as ours.
    x, y = (t.to(device) for t in batch)
    return torch.nn.functional.cross_entropy(model(x), y, reduction="sum")


def run_dattri_logra(d: dict, paths: list[str], args) -> dict:
    import tempfile

    from dattri.algorithm.logra import LoGraAttributor
    from dattri.task import AttributionTask

    served = load_model_version(Path(d["mv_dir"]))
    model = LogitsOnly(served.load_model())
    train_dl, test_dl = logra_loaders(d)
    linear = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)]
    rows = {"dattri LoGra, all linear layers": linear,
            "dattri LoGra, output layer": [f"gpt.{OUTPUT_LAYER}"]}
    if args.logra_layers == ["output"]:
        del rows["dattri LoGra, all linear layers"]
    out: dict = {"scores": {}, "seconds": {}}
    for label, layers in rows.items():
        t = time.perf_counter()
        per_ckpt: dict[float, list[np.ndarray]] = {}
        for state in served_states(served):
            # dattri 0.3.0's LoGra reads only the task's first checkpoint: one task per
            # checkpoint, scores averaged here (our default's 3-checkpoint ensemble).
            sd = {f"gpt.{k}": v for k, v in state.items()}
            task = AttributionTask(loss_func=logra_train_loss, model=model, checkpoints=sd)
            with tempfile.TemporaryDirectory() as tmp:
                att = LoGraAttributor(task, layer_names=layers, proj_dim=LOGRA_PROJ,
                                      device="cpu", offload="cpu", cache_dir=tmp)
                att.cache(train_dl)
                for damping in args.logra_damping:
                    att.compute_preconditioners(damping)
                    att.compute_ifvp()
                    s = att.attribute(train_dl, test_dl).T.numpy()
                    per_ckpt.setdefault(damping, []).append(s)
        for damping, scores in per_ckpt.items():
            out["scores"][(label, damping)] = np.mean(scores, axis=0)
            out["scores"][(label + ", served ckpt only", damping)] = scores[-1]
        out["seconds"][label] = time.perf_counter() - t
        print(f"  {label}: {out['seconds'][label]:.0f}s", flush=True)
    return out


class FlatHead(torch.nn.Module):
    """The sandbox GPT with its output layer applied to (B*T, width) rows: the same function,
    but the layer's input is 2-D. dattri 0.3.0's EK-FAC estimates its covariances only for
    2-D layer inputs (func/fisher.py, _update_covariance: a 3-D input leaves `a_prev`
    unassigned), and every linear layer inside a transformer block sees (B, T, width), so the
    output layer is the only one it can take on this model; with batch size 1 its mask of
    ones (batch, 1) lines up with the (T, 1, width) rows and no pad token enters."""

    def __init__(self, gpt: torch.nn.Module) -> None:
        super().__init__()
        self.gpt = gpt

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        h = self.gpt.hidden_states(idx)
        return self.gpt.lm_head(h.reshape(-1, h.shape[-1]))


def run_dattri_ekfac(d: dict, paths: list[str], args) -> dict:
    from dattri.algorithm.influence_function import IFAttributorEKFAC
    from dattri.task import AttributionTask
    from torch.utils.data import DataLoader

    served = load_model_version(Path(d["mv_dir"]))
    model = FlatHead(served.load_model())

    def loss_func(params, data):
        # Summed token NLL of one piece (vmap passes one, unpadded: batch size 1), or the
        # mean over a batch of them, which dattri's covariance estimate expects.
        (idx,) = data
        idx = idx.unsqueeze(0) if idx.dim() == 1 else idx
        logits = torch.func.functional_call(model, params, (idx[:, :-1],))
        nll = torch.nn.functional.cross_entropy(logits, idx[:, 1:].reshape(-1), reduction="sum")
        return nll / idx.shape[0]

    def loader(seqs):
        return DataLoader([(torch.as_tensor(s),) for s in seqs], batch_size=1, shuffle=False)

    train_dl, test_dl = loader(d["train"]), loader(d["copies"] + d["gens"])
    label = "dattri EK-FAC, output layer"
    out: dict = {"scores": {}, "seconds": {}}
    t = time.perf_counter()
    per_ckpt: dict[float, list[np.ndarray]] = {}
    for state in served_states(served):
        # "Ensemble of EK-FAC is not supported" (dattri): one attributor per checkpoint.
        sd = {f"gpt.{k}": v for k, v in state.items()}
        task = AttributionTask(loss_func=loss_func, model=model, checkpoints=sd)
        att = IFAttributorEKFAC(task, module_name=f"gpt.{OUTPUT_LAYER}", device="cpu")
        att.cache(train_dl)
        # dattri's damping is absolute (added to the corrected eigenvalues): the grid is
        # relative to their mean, the way ours and LoGra's are.
        mean_ev = float(np.mean([v.mean().item() for v in att.cached_lambdas.values()]))
        # What att.attribute computes (BaseInnerProductAttributor: train rep . transformed
        # test rep, with dattri's own functions), but each representation once: attribute()
        # regenerates every test gradient for every training batch, n_train x n_test
        # gradients per call, too slow for a damping grid on 2 CPU cores.
        def reps(loader, make):
            with torch.no_grad():
                return torch.cat([
                    make(0, tuple(x.unsqueeze(0) for x in batch)).detach() for batch in loader
                ])

        train_rep = att.transform_train_rep(0, reps(train_dl, att.generate_train_rep))
        test_raw = reps(test_dl, att.generate_test_rep)
        for rel in args.ekfac_damping:
            att.damping = rel * mean_ev
            s = (train_rep @ att.transform_test_rep(0, test_raw).T).T.numpy()
            per_ckpt.setdefault(rel, []).append(s)
    for rel, scores in per_ckpt.items():
        out["scores"][(label + ", 3 ckpts", rel)] = np.mean(scores, axis=0)
        out["scores"][(label + ", served ckpt only", rel)] = scores[-1]
    out["seconds"][label] = time.perf_counter() - t
    print(f"  {label}: {out['seconds'][label]:.0f}s", flush=True)
    return out


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
            cmd = [sys.executable, __file__, "score", "--child", fam, "--seed-one", str(seed),
                   *args.passthrough]
            proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True,
                                  env={**os.environ, "TQDM_DISABLE": "1"}, check=False)
            (folder / f"scores-{fam}.log").write_text(proc.stdout + proc.stderr)
            status = "ok" if proc.returncode == 0 else f"FAILED (scores-{fam}.log)"
            print(f"{args.model} seed {seed}: {fam} {status} in {time.perf_counter() - t:.0f}s",
                  flush=True)



# -- report --------------------------------------------------------------------------------------


def pick_best(lds: dict, label_keys: list) -> tuple:
    """The grid value with the best pooled LDS (chosen on the evaluation generations)."""
    return max(label_keys, key=lambda k: np.concatenate(lds[k]).mean())


def report(args) -> dict:
    rng = np.random.default_rng(0)
    seeds, truths = [], {}
    for seed in args.seeds:
        folder = seed_folder(args, seed)
        missing = [f for f in args.families if not (folder / f"scores-{f}.pkl").exists()]
        if not (folder / "data.pkl").exists() or missing:
            print(f"seed {seed}: left out (no data or no scores for {missing})")
            continue
        d = pickle.loads((folder / "data.pkl").read_bytes())
        masks, losses = load_truths(args, seed, d)
        if len(masks) < 4:
            print(f"seed {seed}: left out (truth on {len(masks)} subsets)")
            continue
        seeds.append(seed)
        truths[seed] = (d, masks, losses)
    if not seeds:
        sys.exit("no seed has both a truth and scores")
    m = min(len(t[1]) for t in truths.values())  # the same m' for every seed
    floor, lds, lds_a, hits = [], {}, {}, {}
    for seed in seeds:
        d, masks, losses = truths[seed]
        masks, losses = masks[:m], [x[:m] for x in losses]
        mean_truth = np.mean(losses, axis=0)
        floor.append(np.array([spearman(losses[0][:, g], losses[1][:, g])
                               for g in range(losses[0].shape[1])]))
        n_c = len(d["copies"])
        for fam in args.families:
            res = pickle.loads((seed_folder(args, seed) / f"scores-{fam}.pkl").read_bytes())
            for key, sc in res["scores"].items():
                lds.setdefault(key, []).append(per_generation_lds(sc[n_c:], masks, mean_truth))
                lds_a.setdefault(key, []).append(per_generation_lds(sc[n_c:], masks, losses[0]))
                top = np.argmax(sc[:n_c], axis=1) == np.asarray(d["planted"])
                hits.setdefault(key, []).extend(top.tolist())
    # One row per attributor; grid rows at their best value (optimistic for dattri).
    labels: dict[str, object] = {}
    for key in [k for k in lds if len(lds[k]) == len(seeds)]:  # grid values every seed has
        if isinstance(key, tuple):
            labels.setdefault(key[0], [])
            labels[key[0]].append(key)
        else:
            labels[key] = key
    chosen = {lab: (pick_best(lds, ks) if isinstance(ks, list) else ks)
              for lab, ks in labels.items()}
    ref = lds["ours default"]
    rows = {}
    for lab, key in chosen.items():
        r = summarise(lds[key], args.boot, rng)
        r["lds_retrain_seed_a_only"] = float(np.concatenate(lds_a[key]).mean())
        r["recall_at_1"] = float(np.mean(hits[key]))
        if isinstance(key, tuple):
            r["grid_value"] = key[1]
            r["grid"] = {f"{k[1]:g}": float(np.concatenate(lds[k]).mean()) for k in labels[lab]}
        if lab != "ours default":
            diff = [a - b for a, b in zip(ref, lds[key], strict=True)]
            lo, hi = boot_mean_ci(diff, args.boot, rng)
            pooled = np.concatenate(diff)
            r["default_minus_this"] = {"mean": float(pooled.mean()), "ci95": [lo, hi],
                                       "default_higher_fraction": float(np.mean(pooled > 0))}
        rows[lab] = r
    nf = summarise(floor, args.boot, rng)
    res = {"model": args.model, "seeds": seeds, "m": m, "truth_seeds": args.truth_seeds,
           "noise_floor": nf, "rows": rows}
    n = rows["ours default"]["n"]
    print(f"\n{args.model}: seeds {seeds}, {n} generations, LDS truth on m = {m} subsets x "
          f"{args.truth_seeds} retrain seeds (loss averaged over the retrain seeds)")
    print(f"truth noise floor (Spearman of the two retrain seeds' losses over the subsets, per "
          f"generation): {nf['mean']:.3f} [{nf['ci95'][0]:.3f}, {nf['ci95'][1]:.3f}], per seed "
          + " / ".join(f"{x:.3f}" for x in nf["seed_means"]))
    print("\n| attributor | LDS [95 % CI] | per seed | LDS vs retrain seed A only | recall@1 "
          "| ours default - this [95 % CI] | default higher |")
    print("|---|---|---|---:|---:|---|---:|")
    for lab, r in sorted(rows.items(), key=lambda kv: -kv[1]["mean"]):
        grid = f" (grid {r['grid_value']:g})" if "grid_value" in r else ""
        dm = r.get("default_minus_this")
        diff = f"{dm['mean']:+.3f} [{dm['ci95'][0]:+.3f}, {dm['ci95'][1]:+.3f}]" if dm else "-"
        hf = f"{dm['default_higher_fraction']:.0%}" if dm else "-"
        print(f"| {lab}{grid} | {r['mean']:.3f} [{r['ci95'][0]:.3f}, {r['ci95'][1]:.3f}] | "
              + " / ".join(f"{x:.3f}" for x in r["seed_means"])
              + f" | {r['lds_retrain_seed_a_only']:.3f} | {r['recall_at_1']:.2f} | {diff} | {hf} |")
    if args.json:
        args.json.write_text(json.dumps(res, indent=1, default=float))
    return res


# -- main ----------------------------------------------------------------------------------------


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("stage", choices=["build", "score", "report"])
    shared = [  # (flags, keyword arguments): what the scoring subprocesses are passed on
        (("--model",), {"choices": sorted(MODELS), "default": "tiny"}),
        (("--works",), {"type": int, "default": 200}),
        (("--steps",), {"type": int, "default": 300}),
        (("--planted",), {"type": int, "default": 20}),
        (("--gens",), {"type": int, "default": 96, "help": "sampled generations per seed"}),
        (("--lds-m",), {"type": int, "default": 48}),
        (("--truth-seeds",), {"type": int, "default": 2, "help": "retrain seeds per subset"}),
        (("--trak-k",), {"type": int, "nargs": "+", "default": [1, 5, 10]}),
        (("--dattri-reg",), {"type": float, "nargs": "+", "default": [1e-2, 1e-1, 1.0, 10.0]}),
        (("--logra-damping",), {"type": float, "nargs": "+",
                                "default": [1e-5, 1e-3, 1e-2, 1e-1, 1.0]}),
        (("--ekfac-damping",), {"type": float, "nargs": "+", "default": [1e-3, 1e-2, 1e-1, 1.0]}),
        (("--logra-layers",), {"nargs": "+", "choices": ["all", "output"],
                               "default": ["all", "output"]}),
        (("--work",), {"type": Path, "default": Path("/tmp/baselines")}),
    ]
    for flags, kw in shared:
        ap.add_argument(*flags, **kw)
    ap.add_argument("--seeds", type=int, nargs="+", default=[3, 4, 5])
    ap.add_argument("--families", nargs="+", choices=sorted(FAMILIES), default=list(FAMILIES))
    ap.add_argument("--rescore", action="store_true", help="score again what was scored")
    ap.add_argument("--boot", type=int, default=2000)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--child", choices=sorted(FAMILIES), help=argparse.SUPPRESS)
    ap.add_argument("--seed-one", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.passthrough = []
    for flags, _ in shared:
        value = getattr(args, flags[0][2:].replace("-", "_"))
        args.passthrough += [flags[0], *map(str, value if isinstance(value, list) else [value])]
    logging.basicConfig(level=logging.WARNING)
    if args.stage == "build":
        build(args)
    elif args.child:
        child(args)
    elif args.stage == "score":
        score(args)
    else:
        return report(args)
    return {}


if __name__ == "__main__":
    main()
