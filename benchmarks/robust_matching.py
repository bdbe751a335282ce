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
mode, as the product does. With ``--catalog-versions``: "catalog" (attribution.versions: every
work also scored as its 38 transposed / tempo-changed versions, columns of that work; the
generation attributed once) and "catalog+plain" (the product's ``catalog_versions: true``).
``--variants 0`` leaves the generation-side search out.

    python benchmarks/robust_matching.py --works 200 --copies 30 --gens 300 --null 300

With ``--model audio``: the same questions on the audio sandbox's diffusion model (see
audio_main below): copies pitch-shifted +-1, +-2 semitones, time-stretched +-5, +-10 % and at
20 dB SNR, attributed with and without the adapter's 10 variants.
"""

from __future__ import annotations

import argparse
import json
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
from attribution.versions import expand_catalog
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


def catalog_scorer(attributor, adapter, train):
    """``attributor`` cached on the catalog and its versions (attribution.versions, the
    product's catalog_versions), and a scorer like ``scored`` whose top matches name the
    training work a column belongs to."""
    expanded, owner = expand_catalog(adapter, train)
    attributor.cache(expanded)

    def score(examples, n_variants=0):
        out = scored(attributor, adapter, examples, n_variants)
        for s in out:  # columns -> training works
            s.top_idx = owner[s.top_idx]
        return out

    return score


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
        pieces, [f"work-{i:05d}" for i in range(args.works)], root, cfg, steps=args.steps,
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
        if mode == "catalog":  # the product's catalog_versions (attribution/versions.py)
            score = catalog_scorer(TRAKAttributor(adapter, seed=0), adapter, pieces)
            summ = {name: score(xs) for name, xs in sets.items()}
        else:
            summ = {name: scored(attributor, adapter, xs, n_variants) for name, xs in sets.items()}
        null = NullDistribution(np.array([top_z(s) for s in summ["null"]]), mode)
        by_mode[mode] = (summ, null)
        tops = {k: [int(s.top_idx[0]) for s in v] for k, v in summ.items()}
        results[mode] = _row(
            args, null, lambda name, i, s=summ, n=null: n.p_value(top_z(s[name][i])), tops, copies
        ) | {"seconds": time.perf_counter() - t0}
        print(f"{mode}: {results[mode]['seconds']:.0f}s", flush=True)
        if mode != "plain":  # the product's rule: the plain test and the search, Bonferroni
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
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--model" in argv and argv[argv.index("--model") + 1 :][:1] == ["audio"]:
        i = argv.index("--model")
        return audio_main(argv[:i] + argv[i + 2 :])
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", choices=["symbolic", "audio"], default="symbolic",
                    help="audio: the audio model, with its own options (--model audio -h)")  # fmt: skip
    ap.add_argument("--works", type=int, default=200)
    ap.add_argument("--copies", type=int, default=30, help="planted copies per kind")
    ap.add_argument("--gens", type=int, default=300, help="ordinary generations")
    ap.add_argument("--null", type=int, default=300, help="null pieces (the model's samples)")
    ap.add_argument("--alpha", type=float, default=0.01)
    ap.add_argument("--variants", type=int, nargs="+", default=[1, 5, 39],
                    help="robust modes: how many most likely versions (39: all)")  # fmt: skip
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=STEPS,
                    help="training steps of batch 16 (the benchmarks' recipe: 300)")  # fmt: skip
    ap.add_argument("--catalog-versions", action="store_true",
                    help="also the catalog side: every work as its 39 versions (catalog)")  # fmt: skip
    args = ap.parse_args(argv)
    args.modes = [("plain", 0)] + [
        (f"robust-{'all' if c >= 39 else c}", c) for c in args.variants if c > 0
    ]
    if args.catalog_versions:
        args.modes.append(("catalog", 0))
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        res = measure(args, Path(tmp))
    print()
    print(f"n={args.works} works, {args.copies} copies per kind, {args.gens} ordinary generations, "
          f"null of {args.null} samples, alpha {args.alpha:g}, seed {args.seed}, "
          f"{args.steps} training steps")  # fmt: skip
    print("recall@1 / paid to its work (recall@1 and p <= alpha)")
    print(f"{'mode':<16}" + "".join(f"{k:>14}" for k in KINDS) + f"{'wrong':>8}{'ordinary':>10}{'s':>6}")
    for mode, r in res.items():
        cells = "".join(f"{r[k][0]:>7.2f} / {r[k][1]:<4.2f}" for k in KINDS)
        print(f"{mode:<16}{cells}{r['wrong']:>8.3f}{r['ordinary']:>10.3f}{r['seconds']:>6.0f}")




# -- the audio model (--model audio) --------------------------------------------------------

# (label, transform of sandbox.audio_platform.apply_transform, its parameters); the noise
# seed is drawn per copy
AUDIO_KINDS = (
    ("exact", "exact", {}),
    *((f"pitch {s:+d}", "pitch_shift", {"semitones": s}) for s in (-2, -1, 1, 2)),
    *((f"stretch {r:g}", "time_stretch", {"rate": r}) for r in (0.9, 0.95, 1.05, 1.1)),
    ("noise 20dB", "noise", {"snr_db": 20.0}),
)


def _audio_seed_folder(args, seed: int) -> dict:
    """The seed's catalog and model: the folder benchmarks/audio_attribution.py builds (its
    data.json), reused when there; otherwise built here with its recipe and no LDS truth."""
    from argparse import Namespace

    import audio_attribution

    folder = args.work / f"seed-{seed}"
    if (folder / "data.json").exists():
        return json.loads((folder / "data.json").read_text())
    recipe = Namespace(model="demo", works=args.works, steps=300, batch=8, lr=2e-3, gens=48,
                       copies=8, lds_m=0, jobs=1)  # fmt: skip
    return audio_attribution.build_seed(seed, folder, recipe)


def _audio_targets(args, seed: int, d: dict, adapter) -> tuple[dict, dict]:
    """Per set name, prepared model inputs: the null (the model's samples, seed + 1000), the
    ordinary generations (seed + 2000) and the planted copies of each kind (FLAC files read
    back through the adapter, as the pipeline reads a generation); and per kind the copied
    works' training indices. The samples are cached in the seed folder (the slow part)."""
    from sandbox.audio_features import load_audio, to_pcm16
    from sandbox.audio_platform import apply_transform, rendered_samples
    from sandbox.audio_render import write_audio

    fs = adapter.mv.features
    folder = args.work / f"seed-{seed}" / "robust"
    folder.mkdir(parents=True, exist_ok=True)
    sets: dict = {}
    for name, n, offset in (("null", args.null, 1000), ("gens", args.gens, 2000)):
        f = folder / f"{name}-{n}.npy"
        if not f.exists():
            xs = rendered_samples(adapter.mv, n, seed=seed + offset, workers=1)
            np.save(folder / f".{f.name}", np.stack(xs))
            (folder / f".{f.name}").replace(f)
        sets[name] = [torch.from_numpy(x) for x in np.load(f)]
    rng = np.random.default_rng(seed + 11)
    sources = {}
    tmpdir = tempfile.TemporaryDirectory(dir=folder)  # each copy is read back, then dropped
    tmp = Path(tmpdir.name)
    for label, transform, params in AUDIO_KINDS:
        works = rng.choice(len(d["works"]), size=min(args.copies, len(d["works"])), replace=False)
        sources[label], sets[label] = [int(w) for w in works], []
        for j, w in enumerate(works):
            p = dict(params)
            if transform == "noise":
                p["noise_seed"] = int(rng.integers(2**32))
            path = tmp / f"{label.replace(' ', '_')}-{j:02d}.flac"
            audio = load_audio(Path(d["works"][int(w)]["file"]), fs)
            write_audio(path, to_pcm16(apply_transform(audio, transform, p, fs)),
                        fs.sample_rate, "flac")  # fmt: skip
            sets[label].append(adapter.prepare(path))
    tmpdir.cleanup()
    return sets, sources


def audio_seed(args, seed: int) -> dict:
    """Per set and mode: top match and p-value of every piece (null, ordinary generations,
    each kind of copy), attributed with the product's TRAK default through the adapter."""
    from attribution.pipeline import make_attributor
    from sandbox.audio_adapter import load

    sizes = f"v{args.variants}-c{args.copies}-g{args.gens}-n{args.null}"
    sizes += "-cv3" if args.catalog_versions else ""
    out_file = args.work / f"seed-{seed}" / "robust" / f"result-{sizes}.json"
    if out_file.exists() and not args.rescore:
        return json.loads(out_file.read_text())
    t0 = time.perf_counter()
    d = _audio_seed_folder(args, seed)
    adapter = load(Path(d["mv_dir"]))
    attributor = make_attributor("trak", adapter, seed=seed)
    attributor_train = [adapter.prepare(x) for x in adapter.training_items()]
    attributor.cache(attributor_train)
    sets, sources = _audio_targets(args, seed, d, adapter)
    t_targets = time.perf_counter() - t0
    t0 = time.perf_counter()
    plain = {k: attributor.attribute_topk(v, k=1) for k, v in sets.items()}
    searched = {k: scored(attributor, adapter, v, args.variants) for k, v in sets.items()}
    nulls = {
        "plain": NullDistribution(np.array([top_z(s) for s in plain["null"]]), "plain"),
        "search": NullDistribution(np.array([top_z(s) for s in searched["null"]]), "search"),
    }
    res: dict = {"seed": seed, "sources": sources, "n_null": nulls["plain"].m, "sets": {}}
    for name in sets:
        both = two_tests(plain[name], searched[name], nulls["plain"], nulls["search"])
        res["sets"][name] = {
            "plain": [(int(s.top_idx[0]), nulls["plain"].p_value(top_z(s))) for s in plain[name]],
            "search": [
                (int(s.top_idx[0]), nulls["search"].p_value(top_z(s))) for s in searched[name]
            ],
            "search+plain": [(int(s.top_idx[0]), p) for s, p in both],
        }
    if args.catalog_versions:  # the product's catalog_versions: true (attribution/versions.py)
        score = catalog_scorer(make_attributor("trak", adapter, seed=seed), adapter,
                               attributor_train)  # fmt: skip
        # "catalog": the generation alone against the expanded catalog; "catalog-search": its
        # variants too (a contract with catalog_versions: true and variants: N)
        for mode, n_var in (("catalog", 0), ("catalog-search", args.variants)):
            found = {k: score(v, n_var) for k, v in sets.items()}
            nulls[mode] = NullDistribution(np.array([top_z(s) for s in found["null"]]), mode)
            for name in sets:
                both = two_tests(plain[name], found[name], nulls["plain"], nulls[mode])
                res["sets"][name][mode] = [
                    (int(s.top_idx[0]), nulls[mode].p_value(top_z(s))) for s in found[name]
                ]
                res["sets"][name][f"{mode}+plain"] = [(int(s.top_idx[0]), p) for s, p in both]
    res["seconds"] = {"targets": t_targets, "scoring": time.perf_counter() - t0}
    out_file.write_text(json.dumps(res))
    print(f"seed {seed}: targets {t_targets:.0f}s, scoring {res['seconds']['scoring']:.0f}s",
          flush=True)  # fmt: skip
    return res


def _ci(per_seed: list[np.ndarray], rng, draws: int) -> str:
    from attribution_common import boot_mean_ci

    pooled = np.concatenate(per_seed)
    lo, hi = boot_mean_ci(per_seed, draws, rng)
    return f"{pooled.mean():.2f} [{lo:.2f}, {hi:.2f}]"


def audio_report(results: list[dict], alphas: list[float], draws: int) -> dict:
    """Pooled over seeds, with 95 % bootstrap intervals (pieces resampled within seeds)."""
    rng = np.random.default_rng(0)
    table: dict = {}
    modes = [m for m in results[0]["sets"]["gens"]]  # with --catalog-versions: 5 modes
    for label, _, _ in AUDIO_KINDS:
        for mode in modes:
            hit = [np.array([t == w for (t, _), w in zip(r["sets"][label][mode],
                                                         r["sources"][label], strict=True)])
                   for r in results]  # fmt: skip
            row = {"recall": _ci(hit, rng, draws)}
            for a in alphas:
                paid = [np.array([p <= a for _, p in r["sets"][label][mode]]) for r in results]
                row[f"paid right {a:g}"] = _ci([h & q for h, q in zip(hit, paid)], rng, draws)
                row[f"wrong {a:g}"] = _ci([~h & q for h, q in zip(hit, paid)], rng, draws)
            table[(label, mode)] = row
    for mode in modes:
        table[("ordinary", mode)] = {
            f"paid {a:g}": _ci(
                [np.array([p <= a for _, p in r["sets"]["gens"][mode]]) for r in results],
                rng, draws,
            )
            for a in alphas
        }  # fmt: skip
    return table


def audio_main(argv: list[str]) -> None:
    """Robust matching on the audio sandbox model (issue 16): per seed, the catalog and model
    of benchmarks/audio_attribution.py's seed folder (48 works, the demo's model size, 300
    steps; built here without LDS truth when --work lacks it), --copies planted copies per
    kind (AUDIO_KINDS: the platform's own transforms, sandbox/audio_platform.apply_transform,
    at fixed parameters), --gens ordinary generations and a null of --null samples (the
    model's own, other seeds, rendered like generations). Modes: "plain" (the generation
    alone), "search" (all --variants versions of AudioDiffusionAdapter.variants, the highest
    top z kept, against a null searched the same way) and "search+plain" (what a contract with
    ``variants`` and the p-value rule does: robust.two_tests).

        python benchmarks/robust_matching.py --model audio --work /tmp/ar16 --seeds 3 4 5
    """
    ap = argparse.ArgumentParser(description=audio_main.__doc__.split("\n")[0])
    ap.add_argument("--work", type=Path, required=True, help="seed folders (audio_attribution)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[3, 4, 5])
    ap.add_argument("--works", type=int, default=48, help="only when a seed is built here")
    ap.add_argument("--copies", type=int, default=10, help="planted copies per kind and seed")
    ap.add_argument("--gens", type=int, default=100, help="ordinary generations per seed")
    ap.add_argument("--null", type=int, default=200, help="null samples per seed")
    ap.add_argument("--variants", type=int, default=10, help="versions searched (10: all)")
    ap.add_argument("--alphas", type=float, nargs="+", default=[0.01, 0.05])
    ap.add_argument("--boot", type=int, default=2000)
    ap.add_argument("--rescore", action="store_true", help="ignore stored per-seed results")
    ap.add_argument("--catalog-versions", action="store_true",
                    help="also the catalog side (modes catalog and catalog-search, each alone "
                         "and +plain)")  # fmt: skip
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    torch.set_num_threads(1)
    results = [audio_seed(args, s) for s in args.seeds]
    table = audio_report(results, args.alphas, args.boot)
    print()
    print(f"audio model, seeds {args.seeds}, {args.copies} copies per kind and seed, "
          f"{args.gens} ordinary generations and a null of {results[0]['n_null']} per seed, "
          f"{args.variants} variants; mean [95 % bootstrap interval]")  # fmt: skip
    cols = ["recall"] + [f"{c} {a:g}" for a in args.alphas for c in ("paid right", "wrong")]
    print(f"{'kind':<13}{'mode':<14}" + "".join(f"{c:>22}" for c in cols))
    for (label, mode), row in table.items():
        if label == "ordinary":  # the fraction paid, under each alpha's "paid right" column
            cells = ["", *[x for a in args.alphas for x in (row[f"paid {a:g}"], "")]]
        else:
            cells = [row[c] for c in cols]
        print(f"{label:<13}{mode:<14}" + "".join(f"{c:>22}" for c in cells))
    if args.json:
        args.json.write_text(json.dumps(
            {"args": {k: str(v) for k, v in vars(args).items()}, "results": results,
             "table": {f"{k[0]} | {k[1]}": v for k, v in table.items()}}, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
