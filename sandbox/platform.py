"""The sandbox platform's generation log: what a licensed AI music platform would record.

It samples pieces from its reference model, prices each generation, and writes one JSON
record per generation (JSON Lines). A few records are planted on purpose so the pipeline
has something to catch and something to find:

- `copies`: generations that repeat a training work almost note for note (memorisation),
  which attribution must trace back to that work;
- `bad_records`: records that break a validation rule (negative revenue, unknown model
  version), which ingest must quarantine with the rule named.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pandas as pd
import torch

from sandbox.train import TRAIN_TOKENS_FILE, load_model_version

TERRITORIES = ("US", "GB", "DE", "FR", "JP", "BR", "CA", "SE")
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class PlatformSpec:
    platform_id: str
    window_start: datetime
    window_end: datetime
    n_generations: int
    n_copies: int = 3
    bad_records: bool = True
    seed: int = 11
    max_new_tokens: int = 160
    temperature: float = 1.0


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _generation_id(platform_id: str, window_start: datetime, seq: int) -> str:
    digest = hashlib.sha256(f"{platform_id}/{_iso(window_start)}/{seq}".encode()).hexdigest()[:16]
    return f"{platform_id}-g{digest}"


def _near_copy(tokens: list[int], rng: random.Random, n_changes: int = 2) -> list[int]:
    """A training piece with a couple of durations nudged: what memorisation looks like."""
    out = list(tokens)
    body = range(2, len(out) - 1)
    for pos in rng.sample(list(body), k=min(n_changes, len(body))):
        out[pos] = out[pos - 1] if pos > 2 else out[pos]
    return out


def build_generation_log(model_dir: Path, spec: PlatformSpec, out_path: Path) -> dict:
    """Sample `spec.n_generations` pieces and write the platform's log; returns a summary."""
    mv = load_model_version(model_dir)
    # The platform's own copy of its training data, in manifest order.
    training = [list(map(int, t)) for t in pd.read_parquet(mv.path / TRAIN_TOKENS_FILE)["tokens"]]
    model = mv.load_model()
    tok = mv.tokenizer
    rng = random.Random(spec.seed)
    gen = torch.Generator().manual_seed(spec.seed)
    styles = sorted({tok.vocab[t[1]].removeprefix("<style:").rstrip(">") for t in training})

    n_sampled = spec.n_generations - spec.n_copies
    prompts = [rng.choice(styles) for _ in range(n_sampled)]
    outputs: list[list[int]] = []
    batch = 64
    for i in range(0, n_sampled, batch):
        chunk = prompts[i : i + batch]
        idx = torch.tensor([[tok.bos, tok.style_id(s)] for s in chunk], dtype=torch.long)
        out = model.generate(
            idx, max_new_tokens=spec.max_new_tokens, temperature=spec.temperature, generator=gen
        )
        for row in out.tolist():
            outputs.append(_trim(row, tok.eos, tok.pad))

    copy_sources = rng.sample(range(len(training)), k=spec.n_copies)
    for ix in copy_sources:
        src = training[ix]
        outputs.append(_near_copy(src, rng))
        prompts.append(tok.vocab[src[1]].removeprefix("<style:").rstrip(">"))

    span = (spec.window_end - spec.window_start).total_seconds()
    offsets = sorted(rng.uniform(0, span) for _ in outputs)
    order = list(range(len(outputs)))
    rng.shuffle(order)  # planted copies land anywhere in the month, not all at its end
    records = []
    for seq, (k, off) in enumerate(zip(order, offsets, strict=True)):
        created = spec.window_start + timedelta(seconds=off)
        cents = Decimal(rng.randint(100, 2500)) / Decimal(10000)  # 0.0100 .. 0.2500 USD
        records.append(
            {
                "schema_version": SCHEMA_VERSION,
                "generation_id": _generation_id(spec.platform_id, spec.window_start, seq),
                "model_version": mv.info["model_version"],
                "created_at": _iso(created),
                "style": prompts[k],
                "prompt": f"a piece in the style of {prompts[k]}",
                "output": {"tokens": outputs[k]},
                "territory": rng.choice(TERRITORIES),
                "revenue": {"amount": f"{cents:.4f}", "currency": "USD"},
            }
        )
    planted = {
        "copies": [
            {
                "generation_id": records[order.index(n_sampled + j)]["generation_id"],
                "work_id": str(mv.manifest.iloc[ix]["work_id"]),
            }
            for j, ix in enumerate(copy_sources)
        ],
        "bad_records": [],
    }
    if spec.bad_records:
        mid = spec.window_start + timedelta(seconds=span / 2)
        bad = [
            ("negative_revenue", {"revenue": {"amount": "-0.0500", "currency": "USD"}}),
            ("unknown_model_version", {"model_version": "sbx-gpt-000000000000"}),
        ]
        for j, (rule, override) in enumerate(bad):
            rec = dict(records[0], **override)
            rec["generation_id"] = _generation_id(spec.platform_id, spec.window_start, len(records) + j)
            rec["created_at"] = _iso(mid + timedelta(seconds=j))
            records.append(rec)
            planted["bad_records"].append({"generation_id": rec["generation_id"], "rule": rule})
        records.sort(key=lambda r: r["created_at"])

    out_path.parent.mkdir(parents=True, exist_ok=True)
    with out_path.open("w") as fh:
        for rec in records:
            fh.write(json.dumps(rec, sort_keys=True) + "\n")
    summary = {
        "platform_id": spec.platform_id,
        "model_version": mv.info["model_version"],
        "n_records": len(records),
        "planted": planted,
    }
    out_path.with_suffix(".planted.json").write_text(json.dumps(summary, indent=1))
    return summary


def _trim(row: list[int], eos: int, pad: int) -> list[int]:
    if eos in row:
        row = row[: row.index(eos) + 1]
    else:
        row = [t for t in row if t != pad] + [eos]
    return row
