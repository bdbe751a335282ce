"""Cost of attributing a generation, as a multiple of one forward+backward pass on it.

    .venv/bin/python benchmarks/attribution_cost.py --works 200

For TRAK with one checkpoint and with the 3-checkpoint ensemble, one generation alone and a
batch of 64: time of attribute_topk (target featurisation + scoring against the cached
training features) over the time of a plain forward+backward of the served model on the same
input. Best of --repeats, alternating, so load from other jobs hits both sides alike.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from attribution.adapter import SandboxGPTAdapter
from attribution.evaluate import sample_generations
from attribution.trak import TRAKAttributor
from sandbox.model import GPTConfig
from sandbox.tokenizer import Tokenizer
from sandbox.train import (
    TINY_CONFIG,
    load_model_version,
    synthetic_pieces,
    train_model_version,
)


def best_ratio(f, g, repeats: int) -> tuple[float, float]:
    f(), g()  # warm-up
    tf, tg = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        f()
        tf.append(time.perf_counter() - t)
        t = time.perf_counter()
        g()
        tg.append(time.perf_counter() - t)
    return min(tf), min(tg)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--works", type=int, default=200)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=30)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    tok = Tokenizer()
    pieces = synthetic_pieces(args.works, seed=1)
    cfg = GPTConfig(vocab_size=tok.vocab_size, block_size=tok.max_len, **TINY_CONFIG)
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
    res = {"n_train": args.works, "n_checkpoints": len(mv.checkpoints)}
    for label, ckpts in (("1ckpt", mv.checkpoints[-1:]), ("ensemble", mv.checkpoints)):
        adapter = SandboxGPTAdapter(mv)
        adapter.checkpoints = lambda c=ckpts: list(c)  # restrict the ensemble
        att = TRAKAttributor(adapter)
        att.cache(pieces)
        for blabel, batch in (("one", gens[:1]), ("batch64", gens)):

            def fwd_bwd(batch=batch, adapter=adapter):
                adapter.load_checkpoint(mv.checkpoints[-1])
                adapter.model.zero_grad(set_to_none=True)
                adapter.per_example_loss(batch).sum().backward()

            ta, tfb = best_ratio(
                lambda b=batch, a=att: a.attribute_topk(b, k=64), fwd_bwd, args.repeats
            )
            res[f"trak_{label}_{blabel}_x"] = round(ta / tfb, 2)
            res[f"trak_{label}_{blabel}_ms"] = round(1e3 * ta, 2)
            res[f"fwd_bwd_{blabel}_ms"] = round(1e3 * tfb, 2)
    print(json.dumps(res, indent=1))
    return res


if __name__ == "__main__":
    main()
