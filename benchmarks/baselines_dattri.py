"""benchmarks/baselines.py's dattri 0.3.0 families (TRAK, LoGra, EK-FAC), each run in a
subprocess of the "score" stage by baselines_score.child; why each option is set as it is:
baselines.py's docstring."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from attribution_common import gpt_dattri_loss
from baselines_ours import DATTRI_P, LOGRA_PROJ, OUTPUT_LAYER, final_state, served_states

from sandbox.train import load_model_version


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
    from attribution_common import DattriMemo
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
                    task = task_cls(loss_func=loss_func, model=model, checkpoints=states[which][:k])
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
    rows = {
        "dattri LoGra, all linear layers": linear,
        "dattri LoGra, output layer": [f"gpt.{OUTPUT_LAYER}"],
    }
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
                att = LoGraAttributor(
                    task,
                    layer_names=layers,
                    proj_dim=LOGRA_PROJ,
                    device="cpu",
                    offload="cpu",
                    cache_dir=tmp,
                )
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
                return torch.cat(
                    [make(0, tuple(x.unsqueeze(0) for x in batch)).detach() for batch in loader]
                )

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
