"""Train a sandbox model version and store it as a self-describing, content-addressed folder.

    out_root/<model_version>/
        config.json          GPTConfig plus the training parameters
        tokenizer.json       the fixed vocabulary the model was trained with
        checkpoints/ckpt-<step>.pt   state_dicts spaced through training; the last is served
        manifest.parquet     which work each training example came from, with a token hash
        train_tokens.parquet the training sequences in manifest order (work_id, tokens)
        model_version.json   hashes, checkpoint names, seed, created_at, train_loss

model_version = "sbx-gpt-" + sha256(final checkpoint file)[:12]. torch.save writes a zip
whose entries carry no timestamps, so the same seed and data give byte-identical checkpoint
files on the same torch version and platform (tests/test_model.py checks it); the hash is
therefore taken over the file bytes, which is what an auditor can recompute from the folder.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from attribution.hashing import file_sha256

# Float reductions split differently over threads, so the same seed and data give other
# weights (and another model_version) with 1 than with 2 threads: training pins the count.
from attribution.threads import torch_threads
from sandbox.fit import checkpoint_steps as ckpt_steps
from sandbox.fit import fit, recipe
from sandbox.model import GPT, PAD_ID, GPTConfig
from sandbox.model_version import StoredModelVersion, store
from sandbox.tokenizer import Tokenizer

log = logging.getLogger("sandbox.train")  # same name when run with -m

# The training sequences themselves, in manifest order (columns work_id, tokens list<int32>,
# the same layout as the catalog's tokens.parquet), so attribution can run from this folder
# alone. Not covered by model_sha256; the manifest's token_sha256 column vouches for it.
TRAIN_TOKENS_FILE = "train_tokens.parquet"
# Pieces that copy nothing, drawn like the generations (column tokens): the null set of the
# calibrated confidence rule (attribution/calibration.py). The platform stores them beside
# the model version (store_null_pieces); the adapter's null_items() serves them.
NULL_TOKENS_FILE = "null_tokens.parquet"

TRAIN_THREADS = 1  # part of what makes a model version reproducible: see torch_threads
ADAPTER_NAME = "sandbox-gpt"  # sandbox/gpt_adapter.py, registered in pyproject.toml

MANIFEST_SCHEMA = pa.schema(
    [
        ("example_index", pa.int64()),
        ("work_id", pa.string()),
        ("token_sha256", pa.string()),
        ("n_tokens", pa.int32()),
    ]
)

# ~100 s on 2 CPU cores (1 torch thread) over 2500 synthetic pieces of <=226 tokens, loss
# 0.97 vs 4.52 for uniform; ~2-2.5 min when the cores are shared with other jobs.
DEMO_CONFIG = {"n_layer": 2, "n_head": 4, "n_embd": 64, "dropout": 0.0}
DEMO_TRAIN = {"steps": 800, "batch_size": 16, "lr": 3e-3}
# Trains in a few seconds; used by the tests.
TINY_CONFIG = {"n_layer": 1, "n_head": 2, "n_embd": 32, "dropout": 0.0}


def token_sha256(tokens: list[int]) -> str:
    return hashlib.sha256(np.asarray(tokens, dtype="<i4").tobytes()).hexdigest()


def pad_batch(seqs: list[list[int]], pad: int = PAD_ID) -> torch.Tensor:
    width = max(len(s) for s in seqs)
    out = torch.full((len(seqs), width), pad, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = torch.as_tensor(s, dtype=torch.long)
    return out


def _write_manifest(path: Path, tokens: list[list[int]], work_ids: list[str]) -> None:
    table = pa.Table.from_pydict(
        {
            "example_index": list(range(len(tokens))),
            "work_id": list(work_ids),
            "token_sha256": [token_sha256(t) for t in tokens],
            "n_tokens": [len(t) for t in tokens],
        },
        schema=MANIFEST_SCHEMA,
    )
    pq.write_table(table, path)


def fit_gpt(
    tokens: list[list[int]],
    config: GPTConfig,
    steps: int,
    batch_size: int,
    lr: float,
    seed: int,
    checkpoint_steps: list[int] | tuple[int, ...] = (),
    on_checkpoint=None,
    log_every: int = 50,
    keep: list[bool] | None = None,
) -> tuple[GPT, list[float]]:
    """Train a GPT in memory; the loop train_model_version stores, and the evaluation's
    retraining on subsets (attribution/evaluate.py) reuses without writing a folder.

    keep: optional mask over tokens; excluded examples are dropped from the batches they are
    drawn into, and the batches are drawn exactly as without the mask. Retraining "without
    work i" then differs from the full run only by i's contribution, not by a reshuffled
    data order, which otherwise moves a generation's loss more than any single work does.
    """
    if keep is not None and len(keep) != len(tokens):
        raise ValueError(f"keep mask has {len(keep)} entries for {len(tokens)} sequences")
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = GPT(config)
    n = len(tokens)

    def step_loss(step: int) -> torch.Tensor | None:
        ix = torch.randint(n, (min(batch_size, n),), generator=gen).tolist()
        if keep is not None:
            ix = [i for i in ix if keep[i]]
            if not ix:
                return None
        batch = pad_batch([tokens[i] for i in ix])
        return model(batch[:, :-1], batch[:, 1:])[1]

    return fit(model, steps, lr, step_loss, checkpoint_steps, on_checkpoint, log_every, log)


def _train_model_version(
    tokens: list[list[int]],
    work_ids: list[str],
    out_root: Path,
    config: GPTConfig,
    steps: int,
    batch_size: int,
    lr: float,
    seed: int,
    n_checkpoints: int = 3,
    log_every: int = 50,
) -> Path:
    """Train on CPU and return out_root/<model_version>/. Same inputs -> same model_version."""
    if len(tokens) != len(work_ids):
        raise ValueError(f"{len(tokens)} token sequences but {len(work_ids)} work ids")
    if not tokens:
        raise ValueError("no training sequences")
    too_long = [i for i, t in enumerate(tokens) if len(t) > config.block_size]
    if too_long:
        raise ValueError(f"example {too_long[0]} is longer than block_size {config.block_size}")
    too_short = [i for i, t in enumerate(tokens) if len(t) < 2]
    if too_short:
        raise ValueError(f"example {too_short[0]} has fewer than 2 tokens: nothing to predict")

    def fill(folder: Path) -> dict:
        names: list[str] = []
        t0 = time.perf_counter()

        def save(step: int, model: GPT) -> None:
            names.append(f"ckpt-{step}.pt")
            torch.save(model.state_dict(), folder / "checkpoints" / names[-1])

        at = ckpt_steps(steps, n_checkpoints)
        _, losses = fit_gpt(tokens, config, steps, batch_size, lr, seed, at, save, log_every)
        tail = losses[-max(1, steps // 10) :]
        train = recipe(steps, batch_size, lr, seed, len(names), len(tokens), TRAIN_THREADS)
        (folder / "config.json").write_text(json.dumps({"model": config.to_dict(), "train": train}, indent=1))
        (folder / "tokenizer.json").write_text(Tokenizer().to_json())
        _write_manifest(folder / "manifest.parquet", tokens, work_ids)
        pq.write_table(
            pa.Table.from_pydict(
                {"work_id": list(work_ids), "tokens": [list(t) for t in tokens]},
                schema=pa.schema([("work_id", pa.string()), ("tokens", pa.list_(pa.int32()))]),
            ),
            folder / TRAIN_TOKENS_FILE,
        )
        model_sha = file_sha256(folder / "checkpoints" / names[-1])
        return {
            "model_version": "sbx-gpt-" + model_sha[:12],
            # The entry point (group tributary.model_adapters) that attributes this model.
            "adapter": ADAPTER_NAME,
            "model_sha256": model_sha,
            "manifest_sha256": file_sha256(folder / "manifest.parquet"),
            "checkpoints": names,
            "seed": seed,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "train_loss": sum(tail) / len(tail),
            "train_seconds": round(time.perf_counter() - t0, 2),
        }

    return store(out_root, fill, log)


def synthetic_pieces(
    n: int, seed: int, min_events: int = 30, max_events: int = 60
) -> list[list[int]]:
    """Distinct, learnable fake pieces for tests and smoke runs when no corpus is at hand.

    Each piece repeats its own random motif (transposed now and then) in a random style, so a
    model can learn the patterns and every piece is still recognisably itself.
    """
    from sandbox.tokenizer import DURATIONS, STYLES

    rng = np.random.default_rng(seed)
    tok = Tokenizer()
    pieces = []
    for _ in range(n):
        style = STYLES[int(rng.integers(len(STYLES)))]
        base = int(rng.integers(48, 80))
        motif = [
            (int(rng.integers(-7, 8)), float(DURATIONS[int(rng.integers(0, 6))]))
            for _ in range(int(rng.integers(3, 7)))
        ]
        n_events = int(rng.integers(min_events, max_events + 1))
        events: list[tuple] = []
        shift = 0
        while len(events) < n_events:
            for step, dur in motif:
                events.append(("note", base + shift + step, dur))
            events.append(("bar",))
            if rng.random() < 0.3:
                shift = int(rng.integers(-5, 6))
        pieces.append(tok.encode(events[:n_events], style))
    return pieces


def store_null_pieces(model_version_dir: Path, tokens: list[list[int]]) -> Path:
    """Store pieces that copy nothing (none of them a training work) as the model version's
    null set: best the model's own samples of a fixed seed (sandbox.gpt_eval.sample_generations),
    which are drawn like its generations (docs/BENCHMARKS.md, "Calibrated confidence").

    Written beside and renamed, so a reader never sees half a file."""
    manifest = pq.read_table(Path(model_version_dir) / "manifest.parquet", columns=["token_sha256"])
    trained = set(manifest.column("token_sha256").to_pylist())
    for i, t in enumerate(tokens):
        if token_sha256([int(x) for x in t]) in trained:
            raise ValueError(f"null piece {i} is a training work of the model version")
    path = Path(model_version_dir) / NULL_TOKENS_FILE
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(
        pa.Table.from_pydict(
            {"tokens": [[int(x) for x in t] for t in tokens]},
            schema=pa.schema([("tokens", pa.list_(pa.int32()))]),
        ),
        tmp,
    )
    tmp.replace(path)
    return path


def store_null_samples(model_version_dir: Path, n: int, seed: int = 1_000_003) -> Path:
    """Sample n pieces from the stored model (fixed seed, never one of the generation seeds
    the sandbox platform uses) and store those that are not a training work as its null set."""
    from sandbox.gpt_eval import sample_generations  # gpt_eval imports this module

    mv = load_model_version(model_version_dir)
    trained = set(mv.manifest["token_sha256"])
    with torch_threads(TRAIN_THREADS):
        samples = sample_generations(mv.load_model(), n, seed=seed)
    return store_null_pieces(
        model_version_dir, [t for t in samples if token_sha256(t) not in trained]
    )


def train_model_version(
    tokens: list[list[int]],
    work_ids: list[str],
    out_root: Path,
    config: GPTConfig,
    steps: int,
    batch_size: int,
    lr: float,
    seed: int,
    n_checkpoints: int = 3,
    log_every: int = 50,
) -> Path:
    """Train on CPU and return out_root/<model_version>/. Same inputs -> same model_version
    (on the same torch version and CPU; the thread count is pinned to TRAIN_THREADS)."""
    with torch_threads(TRAIN_THREADS):
        return _train_model_version(
            tokens,
            work_ids,
            out_root,
            config,
            steps,
            batch_size,
            lr,
            seed,
            n_checkpoints,
            log_every,
        )


@dataclass(kw_only=True)
class ModelVersion(StoredModelVersion):
    config: GPTConfig
    tokenizer: Tokenizer

    def build(self) -> GPT:
        return GPT(self.config)


def load_model_version(path: Path) -> ModelVersion:
    path = Path(path)
    # Name the missing piece: attribution without a manifest cannot say what it paid for.
    for name in ("model_version.json", "config.json", "tokenizer.json", "manifest.parquet"):
        if not (path / name).exists():
            raise FileNotFoundError(f"model version folder {path} has no {name}")
    info = json.loads((path / "model_version.json").read_text())
    cfg = json.loads((path / "config.json").read_text())
    return ModelVersion(
        path=path,
        info=info,
        config=GPTConfig(**cfg["model"]),
        tokenizer=Tokenizer.from_json((path / "tokenizer.json").read_text()),
        manifest=pq.read_table(path / "manifest.parquet").to_pandas(),
        train_params=cfg.get("train", {}),
    )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Train a sandbox model version.")
    ap.add_argument("--tokens", type=Path, required=True, help="parquet: work_id, tokens")
    ap.add_argument("--out", type=Path, required=True, help="root folder of model versions")
    ap.add_argument("--steps", type=int, default=DEMO_TRAIN["steps"])
    ap.add_argument("--batch-size", type=int, default=DEMO_TRAIN["batch_size"])
    ap.add_argument("--lr", type=float, default=DEMO_TRAIN["lr"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-checkpoints", type=int, default=3)
    ap.add_argument("--n-layer", type=int, default=DEMO_CONFIG["n_layer"])
    ap.add_argument("--n-head", type=int, default=DEMO_CONFIG["n_head"])
    ap.add_argument("--n-embd", type=int, default=DEMO_CONFIG["n_embd"])
    ap.add_argument(
        "--null-samples",
        type=int,
        default=0,
        help="store this many of the model's own samples as the null set of the calibrated "
        'confidence rule (contracts with confidence "pvalue"; about 20/alpha)',
    )
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    df = pq.read_table(args.tokens, columns=["work_id", "tokens"]).to_pandas()
    tok = Tokenizer()
    config = GPTConfig(
        vocab_size=tok.vocab_size,
        block_size=tok.max_len,
        n_layer=args.n_layer,
        n_head=args.n_head,
        n_embd=args.n_embd,
    )
    path = train_model_version(
        tokens=[[int(x) for x in t] for t in df["tokens"]],
        work_ids=[str(w) for w in df["work_id"]],
        out_root=args.out,
        config=config,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        n_checkpoints=args.n_checkpoints,
    )
    if args.null_samples > 0:
        store_null_samples(path, args.null_samples)
    print(path)


if __name__ == "__main__":
    main()
