"""Calibrated confidence on the symbolic sandbox model: how often ordinary generations are paid
by output share, as the catalog grows, under the old fixed-z rule and the p-value rule.

For each catalog size n: train the reference model (TINY_CONFIG, the attribution benchmarks'
recipe) on n synthetic works, score with TRAK (product defaults) and print, side by side:

* the fraction of ORDINARY generations (the model's own samples, not copies) paid by output
  share: z >= 5 and z >= 6 (the old rule at the product and the sandbox contract's
  threshold), and p <= alpha for alpha 0.01 and 0.05 under two null sets:
  - "samples": the model's own samples of another seed (drawn like the generations);
  - "held-out": held-out pieces of the catalog's kind that the model never trained on;
* the recall of exact planted copies (top match is the copied work AND paid) under each rule.

Issue 16's Done-when asks for the fraction paid to stay within [alpha/2, 2 alpha] from 50 to
5,000 works while copy recall at alpha 0.01 stays above 0.95; this script is the measuring
stick (run it at larger sizes for the curve; minutes per size beyond ~1,000 works on 2 cores).

    python benchmarks/calibration.py --works 50 200 800 --gens 400 --null 400
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from attribution.calibration import null_distribution
from attribution.shares import top_z
from attribution.trak import TRAKAttributor
from sandbox.gpt_adapter import SandboxGPTAdapter
from sandbox.gpt_eval import sample_generations
from sandbox.model import GPTConfig
from sandbox.tokenizer import Tokenizer
from sandbox.train import TINY_CONFIG, load_model_version, synthetic_pieces, train_model_version

STEPS, BATCH, LR = 300, 16, 3e-3  # benchmarks/attribution_common.py's reference recipe
ALPHAS = (0.01, 0.05)


def measure(n: int, n_gens: int, n_null: int, n_copies: int, seed: int, root: Path) -> dict:
    t0 = time.perf_counter()
    tok = Tokenizer()
    pieces = synthetic_pieces(n, seed=seed + 1)
    cfg = GPTConfig(vocab_size=tok.vocab_size, block_size=tok.max_len, **TINY_CONFIG)
    mv_dir = train_model_version(
        pieces, [f"work-{i:05d}" for i in range(n)], root, cfg, steps=STEPS, batch_size=BATCH,
        lr=LR, seed=seed, log_every=0,
    )  # fmt: skip
    mv = load_model_version(mv_dir)
    adapter = SandboxGPTAdapter(mv)
    attributor = TRAKAttributor(adapter, seed=0)
    attributor.cache(pieces)
    model = mv.load_model()
    trained = set(map(tuple, pieces))
    nulls = {
        "samples": sample_generations(model, n_null, seed=seed + 1000),
        "held-out": synthetic_pieces(n_null, seed=seed + 2000),
    }
    nulls = {
        k: null_distribution(attributor, adapter, pieces, [t for t in v if tuple(t) not in trained])
        for k, v in nulls.items()
    }
    gens = sample_generations(model, n_gens, seed=seed + 3000)
    z_gens = np.array([top_z(s) for s in attributor.attribute_topk(gens, k=1)])
    rng = np.random.default_rng(seed)
    planted = rng.choice(n, size=min(n_copies, n), replace=False)
    summ = attributor.attribute_topk([pieces[i] for i in planted], k=1)
    z_copies = np.array([top_z(s) for s in summ])
    found = np.array([int(s.top_idx[0]) == int(i) for s, i in zip(summ, planted, strict=True)])
    out = {"n": n, "seconds": time.perf_counter() - t0, "median_z": float(np.median(z_gens))}
    for thr in (5.0, 6.0):
        out[f"z>={thr:g}"] = ((z_gens >= thr).mean(), (found & (z_copies >= thr)).mean())
    for name, null in nulls.items():
        p_gens = np.array([null.p_value(z) for z in z_gens])
        p_copies = np.array([null.p_value(z) for z in z_copies])
        for a in ALPHAS:
            out[f"p<={a:g} {name}"] = ((p_gens <= a).mean(), (found & (p_copies <= a)).mean())
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--works", type=int, nargs="+", default=[50, 200, 800])
    ap.add_argument("--gens", type=int, default=400, help="ordinary generations per size")
    ap.add_argument("--null", type=int, default=400, help="null pieces per null set")
    ap.add_argument("--copies", type=int, default=40, help="exact planted copies per size")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.works:
            rows.append(measure(n, args.gens, args.null, args.copies, args.seed, Path(tmp)))
            r = rows[-1]
            print(
                f"n={n}: {r['seconds']:.0f}s, median top z of ordinary generations {r['median_z']:.2f}",
                flush=True,
            )
    rules = [k for k in rows[0] if k not in ("n", "seconds", "median_z")]
    print()
    print(f"fraction of {args.gens} ordinary generations paid by output share / recall of "
          f"{args.copies} exact copies (seed {args.seed}, null sets of {args.null})")  # fmt: skip
    print(f"{'rule':<22}" + "".join(f"{'n=' + str(r['n']):>18}" for r in rows))
    for k in rules:
        cells = "".join(f"{r[k][0]:>9.3f} / {r[k][1]:<5.2f}" for r in rows)
        print(f"{k:<22}{cells}")


if __name__ == "__main__":
    main()
