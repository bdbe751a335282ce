"""Calibrated confidence on the sandbox models: how often ordinary generations are paid by
output share, as the catalog grows, under the old fixed-z rule and the p-value rule (the
symbolic model below; ``--model audio``: the audio model, see audio_main).

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
    return out | rules_row(z_gens, z_copies, found, nulls)


def rules_row(z_gens, z_copies, found, nulls: dict) -> dict:
    """Per rule: (fraction of ordinary generations paid, recall of exact copies found AND paid):
    the fixed z rules, then p <= alpha under each null set."""
    out = {}
    for thr in (5.0, 6.0):
        out[f"z>={thr:g}"] = ((z_gens >= thr).mean(), (found & (z_copies >= thr)).mean())
    for name, null in nulls.items():
        p_gens = np.array([null.p_value(z) for z in z_gens])
        p_copies = np.array([null.p_value(z) for z in z_copies])
        for a in ALPHAS:
            out[f"p<={a:g} {name}"] = ((p_gens <= a).mean(), (found & (p_copies <= a)).mean())
    return out


def print_table(rows: list[dict], args, what: str) -> None:
    rules = [k for k, v in rows[0].items() if isinstance(v, tuple | list)]
    print()
    print(f"fraction of {args.gens} ordinary generations paid by output share / recall of "
          f"{args.copies} exact copies ({what}, seed {args.seed}, null sets of {args.null})")  # fmt: skip
    print(f"{'rule':<22}" + "".join(f"{'n=' + str(r['n']):>18}" for r in rows))
    print(f"{'median top z':<22}" + "".join(f"{r['median_z']:>18.2f}" for r in rows))
    for k in rules:
        cells = "".join(f"{r[k][0]:>9.3f} / {r[k][1]:<5.2f}" for r in rows)
        print(f"{k:<22}{cells}")


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--model" in argv and argv[argv.index("--model") + 1 :][:1] == ["audio"]:
        i = argv.index("--model")  # the audio run has options of its own: audio_main
        return audio_main(argv[:i] + argv[i + 2 :])
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--model",
        choices=["symbolic", "audio"],
        default="symbolic",
        help="audio: see audio_main's options (--model audio --help)",
    )
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
    print_table(rows, args, "symbolic reference model")


# -- the audio model (--model audio) --------------------------------------------------------


def audio_measure(n: int, args) -> dict:
    """One catalog size on the audio sandbox model; cached per size in --work/n-<n>/."""
    import json
    from argparse import Namespace

    from attribution.calibration import NullDistribution
    from attribution.pipeline import make_attributor
    from sandbox.audio_adapter import load
    from sandbox.audio_platform import rendered_samples

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import audio_attribution

    folder = args.work / f"n-{n}"
    result = folder / f"calibration-s{args.seed}-g{args.gens}-n{args.null}-c{args.copies}.json"
    if result.exists():
        return json.loads(result.read_text())
    t0 = time.perf_counter()
    # the audio benchmarks' recipe (robust_matching.py): demo-size model, 300 steps of batch 8;
    # one generation and copy per transform are built there and not used here
    recipe = Namespace(model="demo", works=n, steps=args.steps, batch=8, lr=2e-3, gens=1,
                       copies=1, lds_m=0, jobs=args.jobs)  # fmt: skip
    d = audio_attribution.build_seed(args.seed, folder / f"seed-{args.seed}", recipe)
    adapter = load(Path(d["mv_dir"]))
    t_build = time.perf_counter() - t0
    t0 = time.perf_counter()
    attributor = make_attributor("trak", adapter, seed=args.seed)
    attributor.cache([adapter.prepare(x) for x in adapter.training_items()])
    t_cache = time.perf_counter() - t0
    t0 = time.perf_counter()
    sets = {}
    for name, count, offset in (("null", args.null, 1000), ("gens", args.gens, 3000)):
        f = folder / f"{name}-s{args.seed}-{count}.npy"
        if not f.exists():  # the slow part (sampling, Griffin-Lim): kept between runs
            xs = rendered_samples(adapter.mv, count, seed=args.seed + offset, workers=args.jobs)
            np.save(folder / f".{f.name}", np.stack(xs))
            (folder / f".{f.name}").replace(f)
        sets[name] = [torch.from_numpy(x) for x in np.load(f)]
    t_samples = time.perf_counter() - t0
    t0 = time.perf_counter()
    z = {k: np.array([top_z(s) for s in attributor.attribute_topk(v, k=1)])
         for k, v in sets.items()}  # fmt: skip
    rng = np.random.default_rng(args.seed)
    planted = rng.choice(n, size=min(args.copies, n), replace=False)
    # an exact copy is the catalog work's own FLAC file, read back as the pipeline reads one
    summ = attributor.attribute_topk(
        [adapter.prepare(Path(d["works"][int(i)]["file"])) for i in planted], k=1
    )
    z_copies = np.array([top_z(s) for s in summ])
    found = np.array([int(s.top_idx[0]) == int(i) for s, i in zip(summ, planted, strict=True)])
    nulls = {"samples": NullDistribution(z["null"], "samples")}
    out = {
        "n": n,
        "median_z": float(np.median(z["gens"])),
        "null_kept": len(sets["null"]),
        "gens_kept": len(sets["gens"]),
        "train_loss": d["train_loss"],
    }
    out |= {
        k: [float(a), float(b)]
        for k, (a, b) in rules_row(z["gens"], z_copies, found, nulls).items()
    }
    out["seconds"] = {"build": t_build, "cache": t_cache, "samples": t_samples,
                      "scoring": time.perf_counter() - t0}  # fmt: skip
    tmp = result.with_suffix(".tmp")
    tmp.write_text(json.dumps(out, indent=1))
    tmp.replace(result)
    return out


def audio_main(argv: list[str]) -> None:
    """Calibrated confidence on the AUDIO sandbox model, as the catalog grows.

    Per catalog size n: n synthetic scores (seed + 1) rendered through FluidSynth like the
    audio platform's catalog, the platform's diffusion model (demo size, --steps of batch 8)
    trained on their log-mels (benchmarks/audio_attribution.py's build_seed, no LDS truth),
    the product's TRAK default through the adapter; a null of --null of the model's own
    samples (seed + 1000) and --gens ordinary generations (seed + 3000), both rendered like
    generations (Griffin-Lim, FLAC, read back); --copies exact copies (catalog files read
    back). Printed as the symbolic table: fraction of ordinary generations paid / recall of
    exact copies, per rule.

        python benchmarks/calibration.py --model audio --works 50 200 800 2000 5000 \\
            --work /tmp/cal-audio --gens 500 --null 500
    """
    ap = argparse.ArgumentParser(description=audio_main.__doc__.split("\n")[0])
    ap.add_argument("--work", type=Path, required=True, help="one folder per size, kept")
    ap.add_argument("--works", type=int, nargs="+", default=[50, 200, 800])
    ap.add_argument("--gens", type=int, default=500, help="ordinary generations per size")
    ap.add_argument("--null", type=int, default=500, help="null samples per size")
    ap.add_argument("--copies", type=int, default=40, help="exact copies per size")
    ap.add_argument("--steps", type=int, default=300, help="training steps (batch 8)")
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=1, help="processes for rendering")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    rows = []
    for n in args.works:
        rows.append(audio_measure(n, args))
        r = rows[-1]
        secs = ", ".join(f"{k} {v:.0f}s" for k, v in r["seconds"].items())
        print(f"n={n}: {secs}; median top z of ordinary generations {r['median_z']:.2f}; "
              f"null {r['null_kept']}, generations {r['gens_kept']} kept", flush=True)  # fmt: skip
    print_table(rows, args, "audio sandbox model")


if __name__ == "__main__":
    main()
