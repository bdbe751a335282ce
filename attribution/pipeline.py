"""Attribute a batch of generations of one model version to its training works, as shares.

Pure Python + torch: no Airflow here, so a DAG task, a CLI or a test can call it alike.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd

from attribution.adapter import SandboxGPTAdapter
from attribution.shares import scores_to_shares
from attribution.trak import TRAKAttributor
from sandbox.tokenizer import TokenizerError
from sandbox.train import (
    TRAIN_THREADS,
    TRAIN_TOKENS_FILE,
    ModelVersion,
    load_model_version,
    token_sha256,
    torch_threads,
)

log = logging.getLogger(__name__)

METHOD = "trak"
SHARE_COLUMNS = [
    "generation_id",
    "work_id",
    "share",
    "score",
    "rank",
    "is_residual",
    "method",
    "model_version",
    "run_id",
    "params_json",
]
REJECT_COLUMNS = ["generation_id", "reason"]


def _train_tokens(mv: ModelVersion, train_tokens: list[list[int]] | None) -> list[list[int]]:
    """Training sequences in manifest order, checked against the manifest's token hashes."""
    if train_tokens is None:
        f = mv.path / TRAIN_TOKENS_FILE
        if not f.exists():
            raise FileNotFoundError(
                f"{f} not found: pass train_tokens, or store the training sequences there"
            )
        df = pd.read_parquet(f)
        train_tokens = [[int(x) for x in t] for t in df["tokens"]]
    if len(train_tokens) != len(mv.manifest):
        raise ValueError(
            f"{len(train_tokens)} training sequences but the manifest lists {len(mv.manifest)}"
        )
    # The manifest is what royalties are paid on: attribute exactly the data it describes.
    for i, (t, h) in enumerate(zip(train_tokens, mv.manifest["token_sha256"], strict=True)):
        if token_sha256(t) != h:
            raise ValueError(f"training sequence {i} does not match manifest token_sha256")
    return train_tokens


def attribute_generations(
    model_version_dir: Path,
    generations: list[tuple[str, list[int]]],
    cache_dir: Path,
    top_k: int = 8,
    seed: int = 0,
    run_id: str | None = None,
    train_tokens: list[list[int]] | None = None,
    k_in: int = 8,
    k_out: int = 8,
    damping: float = 1e-3,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (shares_df, rejected_df) for generations [(generation_id, tokens)].

    train_tokens: the training sequences in manifest order; if None they are read from
    <model_version_dir>/train_tokens.parquet (column tokens). Either way they must match
    the manifest's hashes. Training features are cached under cache_dir/<model_version>/.
    """
    t0 = time.perf_counter()
    run_id = run_id or f"attr-{uuid.uuid4().hex[:12]}"
    mv = load_model_version(Path(model_version_dir))
    tok = mv.tokenizer

    accepted: list[tuple[str, list[int]]] = []
    rejected: list[dict] = []
    seen: set[str] = set()
    for gid, ids in generations:
        gid = str(gid)
        try:
            if gid in seen:
                raise TokenizerError(f"duplicate generation_id {gid!r}")
            # numpy integers are fine; anything else non-int is left for validate to name.
            ids = [x.item() if isinstance(x, np.integer) else x for x in ids]
            tok.validate(ids)
            if len(ids) > mv.config.block_size:
                raise TokenizerError(f"{len(ids)} tokens exceed block_size {mv.config.block_size}")
        except (TokenizerError, TypeError) as e:
            rejected.append({"generation_id": gid, "reason": str(e)})
            continue
        seen.add(gid)
        accepted.append((gid, ids))
    if rejected:
        log.warning("%d of %d generations rejected", len(rejected), len(generations))

    rows: list[dict] = []
    params: dict = {}
    if accepted:
        train = _train_tokens(mv, train_tokens)
        attributor = TRAKAttributor(
            SandboxGPTAdapter(mv),
            k_in=k_in,
            k_out=k_out,
            damping=damping,
            seed=seed,
            cache_dir=Path(cache_dir) / mv.model_version,
        )
        # Pinned threads: scores (and so the last digits of shares) must not depend on them.
        with torch_threads(TRAIN_THREADS):
            attributor.cache(train)
            scores = attributor.attribute([ids for _, ids in accepted])
        n_ck = len(mv.checkpoints)
        log.info(
            "training features for %s: %d of %d checkpoints from cache",
            mv.model_version,
            attributor.cache_hits,
            n_ck,
        )
        params = {**attributor.params(), "top_k": top_k}
        params_json = json.dumps(params, sort_keys=True)
        work_ids = [str(w) for w in mv.manifest["work_id"]]
        work_score = _work_scores(work_ids)
        for (gid, _), s in zip(accepted, scores, strict=True):
            per_work = work_score(s)
            for rank, (wid, share) in enumerate(scores_to_shares(s, work_ids, top_k), start=1):
                residual = wid is None
                rows.append(
                    {
                        "generation_id": gid,
                        "work_id": wid,
                        "share": f"{share:.9f}",
                        "score": np.nan if residual else float(per_work[wid]),
                        "rank": 0 if residual else rank,
                        "is_residual": residual,
                        "method": METHOD,
                        "model_version": mv.model_version,
                        "run_id": run_id,
                        "params_json": params_json,
                    }
                )
    shares_df = pd.DataFrame(rows, columns=SHARE_COLUMNS).astype(
        {"score": "float64", "rank": "int64", "is_residual": "bool"}
    )
    # object dtype so the residual's work_id stays None (a str column would turn it into NaN).
    shares_df["work_id"] = pd.Series([r["work_id"] for r in rows], dtype=object)
    rejected_df = pd.DataFrame(rejected, columns=REJECT_COLUMNS)
    log.info(
        "attributed %d generations (%d rejected) with %s in %.2fs",
        len(accepted),
        len(rejected),
        mv.model_version,
        time.perf_counter() - t0,
    )
    return shares_df, rejected_df


def _work_scores(work_ids: list[str]):
    """Per work, the sum of its examples' positive scores: the weight its share is based on."""
    codes, uniques = pd.factorize(pd.Series(work_ids))

    def per_work(scores: np.ndarray) -> dict[str, float]:
        sums = np.bincount(
            codes,
            weights=np.maximum(np.asarray(scores, dtype=np.float64), 0.0),
            minlength=len(uniques),
        )
        return dict(zip(uniques, sums, strict=True))

    return per_work
