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
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

# One stage a module: baselines_build (models, ensembles, truth), baselines_ours and
# baselines_dattri (the attributor families), baselines_score (a subprocess per family),
# baselines_report (the tables).
from baselines_build import MODELS, build
from baselines_report import report
from baselines_score import FAMILIES, child, score

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
        (
            ("--logra-damping",),
            {"type": float, "nargs": "+", "default": [1e-5, 1e-3, 1e-2, 1e-1, 1.0]},
        ),
        (("--ekfac-damping",), {"type": float, "nargs": "+", "default": [1e-3, 1e-2, 1e-1, 1.0]}),
        (
            ("--logra-layers",),
            {"nargs": "+", "choices": ["all", "output"], "default": ["all", "output"]},
        ),
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
