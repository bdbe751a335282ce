"""Cost of attributing a generation, as a multiple of one forward+backward pass on it.

    .venv/bin/python benchmarks/attribution_cost.py --config tiny
    .venv/bin/python benchmarks/attribution_cost.py --config demo

For each TRAK configuration, one generation alone and a batch of 64: the time of
attribute_topk (target featurisation at every checkpoint of the configuration + scoring
against the cached training features of --works works) over the time of a plain
forward+backward of the served model on the same input (weight gradients included, as in a
training step). Best of --repeats, each attribution timed right after its own baseline, so
load from other jobs hits both sides alike. "per checkpoint" is the multiple divided by the
number of checkpoints.

Configurations: the product default (output layer, 3-checkpoint ensemble; exact on the tiny
model, whose output layer has 2,944 weights, projected 16 x 80 on the demo model's 5,888),
the same on the served checkpoint only, the output layer projected 16 x 80 on both models,
and all linear layers (k = 8, the default before 2026-11-25) with 3 and with 1 checkpoint. --config demo is the model `make demo` serves (2 layers, n_embd 64);
tiny is the one the quality benchmarks retrain (1 layer, n_embd 32), where fixed Python
overheads weigh most. The pipeline attributes generations in shards (256 by default,
featurised 32 at a time), so the batch column is what a generation costs in production.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from attribution_common import best_pair

from attribution.trak import TRAKAttributor
from sandbox.gpt_adapter import SandboxGPTAdapter
from sandbox.gpt_eval import sample_generations
from sandbox.model import GPTConfig
from sandbox.tokenizer import Tokenizer
from sandbox.train import (
    DEMO_CONFIG,
    TINY_CONFIG,
    load_model_version,
    synthetic_pieces,
    train_model_version,
)


def configurations(mv) -> dict[str, dict]:
    last = mv.checkpoints[-1:]
    return {
        "default (output layer, all checkpoints)": {},
        "output layer, served checkpoint only": {"checkpoints": last},
        "output layer projected 16x80, all checkpoints": {"exact_up_to": 0},
        "all linear layers k=8, all checkpoints": {
            "layers": "all",
            "k_in": 8,
            "k_out": 8,
            "exact_up_to": 0,
        },
        "all linear layers k=8, served checkpoint only": {
            "layers": "all",
            "k_in": 8,
            "k_out": 8,
            "exact_up_to": 0,
            "checkpoints": last,
        },
    }


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", choices=["tiny", "demo"], default="tiny")
    ap.add_argument("--works", type=int, default=200)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    tok = Tokenizer()
    pieces = synthetic_pieces(args.works, seed=1)
    arch = TINY_CONFIG if args.config == "tiny" else DEMO_CONFIG
    cfg = GPTConfig(vocab_size=tok.vocab_size, block_size=tok.max_len, **arch)
    work = tempfile.TemporaryDirectory()
    mv = load_model_version(
        train_model_version(
            pieces,
            [f"w{i}" for i in range(args.works)],
            Path(work.name),
            cfg,
            steps=args.steps,
            batch_size=16,
            lr=3e-3,
            seed=0,
            log_every=0,
        )
    )
    gens = sample_generations(mv.load_model(), 64, seed=3)
    res: dict = {
        "config": args.config,
        "model": arch,
        "n_train": args.works,
        "n_checkpoints": len(mv.checkpoints),
        "torch_threads": 1,
        "rows": {},
    }
    for label, kw in configurations(mv).items():
        adapter = SandboxGPTAdapter(mv)
        att = TRAKAttributor(adapter, **kw)
        att.cache(pieces)
        n_ck = len(att.checkpoints)
        row = {"n_checkpoints": n_ck, "n_features_per_checkpoint": att.n_features}
        for blabel, batch in (("one", gens[:1]), ("batch64", gens)):

            def fwd_bwd(batch=batch, adapter=adapter):
                adapter.load_checkpoint(mv.checkpoints[-1])
                adapter.model.zero_grad(set_to_none=True)
                adapter.per_example_loss(batch).sum().backward()

            ta, tfb = best_pair(
                lambda b=batch, a=att: a.attribute_topk(b, k=64), fwd_bwd, args.repeats
            )
            row[f"{blabel}_x"] = round(ta / tfb, 2)
            row[f"{blabel}_x_per_checkpoint"] = round(ta / tfb / n_ck, 2)
            row[f"{blabel}_attribution_ms"] = round(1e3 * ta, 3)
            row[f"{blabel}_fwd_bwd_ms"] = round(1e3 * tfb, 3)
        res["rows"][label] = row
        print(label, json.dumps(row), flush=True)
    print()
    print(
        f"| {args.config}: TRAK configuration | one generation | per checkpoint "
        "| batch of 64 | per checkpoint |"
    )
    print("|---|---:|---:|---:|---:|")
    for label, r in res["rows"].items():
        print(
            f"| {label} | {r['one_x']:.2f}x | {r['one_x_per_checkpoint']:.2f}x "
            f"| {r['batch64_x']:.2f}x | {r['batch64_x_per_checkpoint']:.2f}x |"
        )
    if args.json:
        args.json.write_text(json.dumps(res, indent=1))
    return res


if __name__ == "__main__":
    main()
