"""Attribution quality of the three methods on a sandbox model we can retrain.

    .venv/bin/python benchmarks/attribution_quality.py --works 100 --steps 300 --lds-m 24

Trains the reference model (TINY_CONFIG) on synthetic pieces, plants near copies of some
training works as generations, samples ordinary generations from the model, then reports
planted-copy recall@1, LDS (m retrained halves), top-k removal vs random removal, and the
cost of attributing one generation as a multiple of one forward+backward pass on it.
All on CPU with one torch thread; sizes are flags so the same script runs larger on a GPU box.
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

from attribution.adapter import SandboxGPTAdapter
from attribution.evaluate import (
    RetrainSpec,
    cost_multiple,
    generation_losses,
    lds,
    near_copy,
    recall_at_1,
    retrain_on_subsets,
    sample_generations,
    topk_removal,
)
from attribution.similarity import (
    HiddenStateEmbedder,
    SimilarityAttributor,
    SymbolicEmbedder,
)
from attribution.trak import TRAKAttributor
from attribution.unlearning import UnlearningAttributor
from sandbox.model import GPTConfig
from sandbox.tokenizer import Tokenizer
from sandbox.train import (
    TINY_CONFIG,
    load_model_version,
    synthetic_pieces,
    train_model_version,
)


def build(args, root: Path):
    tok = Tokenizer()
    pieces = synthetic_pieces(args.works, seed=args.seed + 1)
    ids = [f"work-{i:05d}" for i in range(args.works)]
    cfg = GPTConfig(vocab_size=tok.vocab_size, block_size=tok.max_len, **TINY_CONFIG)
    mv_dir = train_model_version(
        pieces,
        ids,
        root,
        cfg,
        steps=args.steps,
        batch_size=16,
        lr=3e-3,
        seed=args.seed,
        n_checkpoints=args.checkpoints,
        log_every=0,
    )
    spec = RetrainSpec(cfg, args.steps, 16, 3e-3, args.seed)
    return pieces, load_model_version(mv_dir), spec


def methods(mv, args) -> dict:
    a = SandboxGPTAdapter(mv)
    return {
        "trak": TRAKAttributor(a, k_in=args.k, k_out=args.k, seed=args.seed),
        "unlearning": UnlearningAttributor(SandboxGPTAdapter(mv), seed=args.seed),
        "similarity-hidden": SimilarityAttributor(HiddenStateEmbedder(SandboxGPTAdapter(mv))),
        "similarity-symbolic": SimilarityAttributor(SymbolicEmbedder()),
    }


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--works", type=int, default=100)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--checkpoints", type=int, default=3)
    ap.add_argument("--planted", type=int, default=20)
    ap.add_argument("--gens", type=int, default=8, help="ordinary generations for LDS/removal")
    ap.add_argument("--lds-m", type=int, default=24)
    ap.add_argument("--removal-k", type=int, default=5)
    ap.add_argument("--removal-gens", type=int, default=4)
    ap.add_argument("--k", type=int, default=8, help="TRAK projection k_in = k_out")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(1)
    t_all = time.perf_counter()
    workdir = tempfile.TemporaryDirectory()  # lives until the process ends
    pieces, mv, spec = build(args, Path(workdir.name))
    rng = np.random.default_rng(args.seed + 7)
    planted = sorted(rng.choice(args.works, args.planted, replace=False).tolist())
    copies = [near_copy(pieces[w], rng) for w in planted]
    model = mv.load_model()
    gens = sample_generations(model, args.gens, seed=args.seed + 3)

    res: dict = {"config": vars(args) | {"json": str(args.json)}, "methods": {}}
    scores_gen = {}
    for name, att in methods(mv, args).items():
        t = time.perf_counter()
        att.cache(pieces)
        t_cache = time.perf_counter() - t
        t = time.perf_counter()
        s_copy = att.attribute(copies)
        s_gen = att.attribute(gens)
        t_score = time.perf_counter() - t
        scores_gen[name] = s_gen
        res["methods"][name] = {
            "recall_at_1": recall_at_1(s_copy, planted),
            "cache_s_per_train_example": t_cache / len(pieces),
            "score_s_per_generation": t_score / (len(copies) + len(gens)),
        }
        print(name, json.dumps(res["methods"][name]), flush=True)

    # Cost of one generation vs one forward+backward of the served model on it.
    adapter = SandboxGPTAdapter(mv)
    trak1 = TRAKAttributor(adapter, k_in=args.k, k_out=args.k, seed=args.seed)
    trak1.cache(pieces)
    one = [gens[0]]

    def fwd_bwd():
        adapter.model.zero_grad(set_to_none=True)
        adapter.per_example_loss(one).sum().backward()

    a, fb, ratio = cost_multiple(lambda: trak1.attribute_topk(one, k=64), fwd_bwd)
    batch = (gens * 8)[:64]

    def fwd_bwd_batch():
        adapter.model.zero_grad(set_to_none=True)
        adapter.per_example_loss(batch).sum().backward()

    _, _, ratio_b = cost_multiple(lambda: trak1.attribute_topk(batch, k=64), fwd_bwd_batch)
    n_ck = len(mv.checkpoints)
    res["cost"] = {
        "fwd_bwd_s": fb,
        "trak_one_gen_s": a,
        "trak_one_gen_x": ratio,
        "trak_one_gen_per_checkpoint_x": ratio / n_ck,
        "trak_batch64_x": ratio_b,
        "trak_batch64_per_checkpoint_x": ratio_b / n_ck,
        "n_checkpoints": n_ck,
        "n_train": len(pieces),
    }
    print("cost", json.dumps(res["cost"]), flush=True)

    subsets = retrain_on_subsets(spec, pieces, gens, m=args.lds_m, seed=args.seed)
    res["lds_retrain_s"] = subsets.seconds
    for name, s in scores_gen.items():
        res["methods"][name]["lds"] = lds(s, subsets)
        print(name, "LDS", round(res["methods"][name]["lds"], 4), flush=True)

    base = generation_losses(spec.fit(pieces), gens[: args.removal_gens])
    removal = topk_removal(
        spec,
        pieces,
        gens[: args.removal_gens],
        {k: v[: args.removal_gens] for k, v in scores_gen.items()},
        k=args.removal_k,
        seed=args.seed,
        base_losses=base,
    )
    for name, r in removal.items():
        res["methods"][name]["removal"] = r.summary()
        print(name, "removal", json.dumps(r.summary()), flush=True)
    res["total_s"] = time.perf_counter() - t_all
    if args.json:
        args.json.write_text(json.dumps(res, indent=1))
    print(json.dumps(res, indent=1))
    return res


if __name__ == "__main__":
    main()
