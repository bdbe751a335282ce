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
from attribution.shares import SharesPolicy, policy_shares
from attribution.similarity import HiddenStateEmbedder, SimilarityAttributor, SymbolicEmbedder
from attribution.trak import TRAKAttributor
from attribution.unlearning import UnlearningAttributor
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

METHODS = ("trak", "unlearning", "similarity")
# The parameters a contract may set for each method (its method_params), passed through to
# the method's attributor by make_attributor.
METHOD_PARAMS = {
    "trak": (
        "k_in",
        "k_out",
        "damping",
        "batch_size",
        "chunk_size",
        "layers",
        "exact_up_to",
        "curvature",
    ),
    "unlearning": (
        "steps",
        "step_size",
        "fisher_weight",
        "fisher_samples",
        "precondition",
        "relative",
        "batch_size",
    ),
    "similarity": ("embedder",),
}
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
    "confidence",  # the policy's confidence number for this generation
    "fallback",  # True: not confident enough, the whole generation went pro rata
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
    k_in: int | None = None,
    k_out: int | None = None,
    damping: float | None = None,
    policy: SharesPolicy | dict | None = None,
    method: str = "trak",
    method_params: dict | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (shares_df, rejected_df) for generations [(generation_id, tokens)].

    method: "trak" (projected gradients), "unlearning" (Fisher-regularised gradient ascent)
    or "similarity" (cosine of embeddings; method_params {"embedder": "symbolic"|"hidden"}).
    policy: the contract's SharesPolicy (or its dict); None means SharesPolicy(top_k=top_k).
    method_params: extra keyword arguments for the method's attributor.
    Scores are reduced per generation to a streaming top-k (memory independent of the
    catalog size), and recorded with the policy in params_json.

    train_tokens: the training sequences in manifest order; if None they are read from
    <model_version_dir>/train_tokens.parquet (column tokens). Either way they must match
    the manifest's hashes. Training features are cached under cache_dir/<model_version>/.
    """
    t0 = time.perf_counter()
    if method not in METHODS:
        raise ValueError(f"unknown attribution method {method!r}; expected one of {METHODS}")
    if policy is None:
        policy = SharesPolicy(top_k=top_k)
    elif isinstance(policy, dict):
        policy = SharesPolicy.from_dict(policy)
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
        # None: the attributor's own default (documented in attribution/trak.py).
        kw = {
            k: v
            for k, v in {"k_in": k_in, "k_out": k_out, "damping": damping}.items()
            if v is not None
        }
        kw.update(method_params or {})
        attributor = make_attributor(
            method,
            SandboxGPTAdapter(mv),
            cache_dir=Path(cache_dir) / mv.model_version,
            seed=seed,
            **kw,
        )
        # Keep several times top_k examples: a work with more than one training example
        # then still has all of them summed.
        keep = max(64, 4 * policy.top_k)
        # Pinned threads: scores (and so the last digits of shares) must not depend on them.
        with torch_threads(TRAIN_THREADS):
            attributor.cache(train)
            summaries = attributor.attribute_topk([ids for _, ids in accepted], k=keep)
        n_parts = len(mv.checkpoints) if method == "trak" else 1
        log.info(
            "training features for %s (%s): %d of %d checkpoints from cache",
            mv.model_version,
            method,
            getattr(attributor, "cache_hits", 0),
            n_parts,
        )
        params = {
            **attributor.params(),
            "method": method,
            "seed": seed,
            "top_k": policy.top_k,
            "policy": policy.to_dict(),
        }
        params_json = json.dumps(params, sort_keys=True)
        work_ids = [str(w) for w in mv.manifest["work_id"]]
        for (gid, _), summ in zip(accepted, summaries, strict=True):
            share_rows, conf, fallback = policy_shares(summ, work_ids, policy)
            for rank, (wid, share, weight) in enumerate(share_rows, start=1):
                residual = wid is None
                rows.append(
                    {
                        "generation_id": gid,
                        "work_id": wid,
                        "share": f"{share:.9f}",
                        "score": np.nan if residual else float(weight),
                        "rank": 0 if residual else rank,
                        "is_residual": residual,
                        "method": method,
                        "model_version": mv.model_version,
                        "run_id": run_id,
                        "params_json": params_json,
                        "confidence": float(conf),
                        "fallback": bool(fallback),
                    }
                )
    shares_df = pd.DataFrame(rows, columns=SHARE_COLUMNS).astype(
        {
            "score": "float64",
            "rank": "int64",
            "is_residual": "bool",
            "confidence": "float64",
            "fallback": "bool",
        }
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


def make_attributor(method: str, adapter, cache_dir: Path | None = None, seed: int = 0, **kw):
    """The attributor a contract's method names, with its own parameters from kw.

    The names each method takes are METHOD_PARAMS[method]: TRAK's curvature is "kfac-gram",
    "kfac" or "gram", its layers "output" or "all"; similarity's embedder "hidden" or
    "symbolic". Keywords that belong to another method are ignored, so a DAG can pass one
    dict of contract parameters.
    """
    own = {k: v for k, v in kw.items() if k in METHOD_PARAMS.get(method, ())}
    if method == "trak":
        return TRAKAttributor(adapter, seed=seed, cache_dir=cache_dir, **own)
    if method == "unlearning":
        return UnlearningAttributor(adapter, seed=seed, cache_dir=cache_dir, **own)
    if method == "similarity":
        # Symbolic by default: it needs nothing from the platform (the black-box case) and
        # separates copies from ordinary generations better than mean-pooled hidden states
        # on the sandbox (z-score of the top match 6-12 vs ~2; docs/attribution.md).
        kind = own.get("embedder", "symbolic")
        if kind == "hidden":
            emb = HiddenStateEmbedder(adapter)
        elif kind == "symbolic":
            emb = SymbolicEmbedder()
        else:
            raise ValueError(f"unknown embedder {kind!r}; expected 'hidden' or 'symbolic'")
        return SimilarityAttributor(emb, cache_dir=cache_dir)
    raise ValueError(f"unknown attribution method {method!r}; expected one of {METHODS}")
