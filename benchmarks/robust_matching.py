"""Robust matching on the symbolic sandbox model: are transposed and tempo-changed copies of a
training work traced back to it, and does the search make ordinary generations confident?

Train the reference model (TINY_CONFIG, the attribution benchmarks' recipe) on n synthetic
works, score with TRAK (product defaults), plant copies of training works (exact, transposed
by +-1..6 semitones, tempo changed by +-20 %, both) and print per scoring mode, side by side:

* recall@1 of each kind of copy (top match is the copied work);
* paid: recall@1 AND p <= alpha (the p-value rule pays it to its work);
* wrong: p <= alpha but the top match is another work (paid confidently to the wrong work);
* ordinary: the fraction of the model's own samples (other seed) paid, p <= alpha.

Modes: "plain" (the generation alone, today's product), "robust-c" (attribution.robust: the
c most likely of the generation's 39 versions, itself included, attributed and the highest
top z kept; robust-1 attributes only the most likely version), "robust-all" (all 39), and
"robust-c+plain": what the product does with the p-value rule (attribution.robust.two_tests):
the plain test and the search, each against its own null, the smaller p-value doubled. The null (the model's own samples, another seed) is scored through the same
mode, as the product does.

    python benchmarks/robust_matching.py --works 200 --copies 30 --gens 300 --null 300
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

from attribution.calibration import NullDistribution
from attribution.robust import robust_topk, two_tests
from attribution.shares import top_z
from attribution.trak import TRAKAttributor
from sandbox.gpt_adapter import SandboxGPTAdapter
from sandbox.gpt_eval import sample_generations
from sandbox.model import GPTConfig
from sandbox.tokenizer import Tokenizer
from sandbox.train import TINY_CONFIG, load_model_version, synthetic_pieces, train_model_version
from sandbox.transforms import TEMPO_CHANGES, TRANSPOSITIONS, change_tempo, transpose

STEPS, BATCH, LR = 300, 16, 3e-3  # benchmarks/attribution_common.py's reference recipe
KINDS = ("exact", "transpose", "tempo", "both")


def plant(pieces: list[list[int]], n_copies: int, rng: np.random.Generator, tok) -> dict:
    """Per kind: (copied work index, copy tokens) for n_copies works drawn at random."""
    out = {}
    for kind in KINDS:
        rows = []
        for i in rng.choice(len(pieces), size=min(n_copies, len(pieces)), replace=False):
            t = pieces[int(i)]
            if kind in ("transpose", "both"):
                t = transpose(t, int(rng.choice(TRANSPOSITIONS)), tok)
            if kind in ("tempo", "both"):
                t = change_tempo(t, float(rng.choice(TEMPO_CHANGES)), tok)
            rows.append((int(i), t))
        out[kind] = rows
    return out


def scored(attributor, adapter, examples, n_variants):
    summ, _ = robust_topk(attributor, adapter, examples, k=1, n_variants=n_variants)
    return summ


def _row(args, null_z, p_of, tops, copies) -> dict:
    """p_of(name, i) -> p-value of piece i of set name; tops[name][i]: its top match."""
    gens_p = [p_of("gens", i) for i in range(args.gens_n)]
    row = {"ordinary": float(np.mean([p <= args.alpha for p in gens_p]))}
    wrong, n_all = 0, 0
    for kind, planted in copies.items():
        src = np.array([w for w, _ in planted])
        top = np.array(tops[kind])
        paid = np.array([p_of(kind, i) <= args.alpha for i in range(len(planted))])
        row[kind] = ((top == src).mean(), ((top == src) & paid).mean())
        wrong += int((paid & (top != src)).sum())
        n_all += len(planted)
    row["wrong"] = wrong / n_all
    return row


def measure(args, root: Path) -> dict:
    tok = Tokenizer()
    pieces = synthetic_pieces(args.works, seed=args.seed + 1)
    cfg = GPTConfig(vocab_size=tok.vocab_size, block_size=tok.max_len, **TINY_CONFIG)
    mv = load_model_version(train_model_version(
        pieces, [f"work-{i:05d}" for i in range(args.works)], root, cfg, steps=STEPS,
        batch_size=BATCH, lr=LR, seed=args.seed, log_every=0,
    ))  # fmt: skip
    adapter = SandboxGPTAdapter(mv)
    attributor = TRAKAttributor(adapter, seed=0)
    attributor.cache(pieces)
    model = mv.load_model()
    trained = set(map(tuple, pieces))
    null_pieces = [t for t in sample_generations(model, args.null, seed=args.seed + 1000)
                   if tuple(t) not in trained]  # fmt: skip
    gens = sample_generations(model, args.gens, seed=args.seed + 3000)
    args.gens_n = len(gens)
    copies = plant(pieces, args.copies, np.random.default_rng(args.seed), tok)
    sets = {"null": null_pieces, "gens": gens, **{k: [t for _, t in v] for k, v in copies.items()}}
    results, by_mode = {}, {}
    for mode, n_variants in args.modes:
        t0 = time.perf_counter()
        summ = {name: scored(attributor, adapter, xs, n_variants) for name, xs in sets.items()}
        null = NullDistribution(np.array([top_z(s) for s in summ["null"]]), mode)
        by_mode[mode] = (summ, null)
        tops = {k: [int(s.top_idx[0]) for s in v] for k, v in summ.items()}
        results[mode] = _row(
            args, null, lambda name, i, s=summ, n=null: n.p_value(top_z(s[name][i])), tops, copies
        ) | {"seconds": time.perf_counter() - t0}
        print(f"{mode}: {results[mode]['seconds']:.0f}s", flush=True)
        if n_variants:  # the product's rule: the plain test and the search, Bonferroni
            plain_summ, plain_null = by_mode["plain"]
            both = {
                name: two_tests(plain_summ[name], summ[name], plain_null, null) for name in summ
            }
            tops = {k: [int(s.top_idx[0]) for s, _ in v] for k, v in both.items()}
            results[f"{mode}+plain"] = _row(
                args, null, lambda name, i, b=both: b[name][i][1], tops, copies
            ) | {"seconds": results[mode]["seconds"] + results["plain"]["seconds"]}
    return results


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--works", type=int, default=200)
    ap.add_argument("--copies", type=int, default=30, help="planted copies per kind")
    ap.add_argument("--gens", type=int, default=300, help="ordinary generations")
    ap.add_argument("--null", type=int, default=300, help="null pieces (the model's samples)")
    ap.add_argument("--alpha", type=float, default=0.01)
    ap.add_argument("--variants", type=int, nargs="+", default=[1, 5, 39],
                    help="robust modes: how many most likely versions (39: all)")  # fmt: skip
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    args.modes = [("plain", 0)] + [
        (f"robust-{'all' if c >= 39 else c}", c) for c in args.variants
    ]
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        res = measure(args, Path(tmp))
    print()
    print(f"n={args.works} works, {args.copies} copies per kind, {args.gens} ordinary generations, "
          f"null of {args.null} samples, alpha {args.alpha:g}, seed {args.seed}")  # fmt: skip
    print("recall@1 / paid to its work (recall@1 and p <= alpha)")
    print(f"{'mode':<16}" + "".join(f"{k:>14}" for k in KINDS) + f"{'wrong':>8}{'ordinary':>10}{'s':>6}")
    for mode, r in res.items():
        cells = "".join(f"{r[k][0]:>7.2f} / {r[k][1]:<4.2f}" for k in KINDS)
        print(f"{mode:<16}{cells}{r['wrong']:>8.3f}{r['ordinary']:>10.3f}{r['seconds']:>6.0f}")


if __name__ == "__main__":
    main()
