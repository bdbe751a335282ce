"""Attribute a batch of generations of one model version to its training works, as shares.

Pure Python + torch: no Airflow here, so a DAG task, a CLI or a test can call it alike.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from attribution.calibration import null_distribution
from attribution.groups import (
    GroupUnlearningAttributor,
    check_group_terms,
    holder_shares,
    summed_instance_scores,
)
from attribution.protocol import InvalidExample, ModelAdapter
from attribution.registry import load_adapter
from attribution.robust import TestedP, robust_topk, two_tests
from attribution.shares import SharesPolicy, policy_shares
from attribution.similarity import (
    AudioEmbedder,
    HiddenStateEmbedder,
    SimilarityAttributor,
    SymbolicEmbedder,
)
from attribution.threads import torch_threads
from attribution.trak import TRAKAttributor
from attribution.unlearning import UnlearningAttributor
from attribution.versions import expand_catalog

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
    "p_value",  # rule "pvalue": the top z's p-value under the run's null; NaN for other rules
    "fallback",  # True: not confident enough, the whole generation went pro rata
]
REJECT_COLUMNS = ["generation_id", "reason"]
# attribute_groups' rows: one per (generation, holder whose catalog the model trained on)
GROUP_SHARE_COLUMNS = [
    "generation_id",
    "rights_holder_id",
    "share",  # str, 9 decimals: the holder's part of the positive group scores
    "score",  # the group score (group-unlearning: rise of the generation's summed NLL)
    "method",
    "model_version",
    "run_id",
    "params_json",
]


def read_manifest(model_version_dir: Path, hash_column: str = "content_sha256") -> pd.DataFrame:
    """The training manifest of a model version: work_id and, as ``content_sha256``, the
    column the adapter's content_sha256() must equal (its ``manifest_hash``)."""
    path = Path(model_version_dir) / "manifest.parquet"
    if not path.exists():
        raise FileNotFoundError(f"model version folder {model_version_dir} has no manifest.parquet")
    manifest = pd.read_parquet(path)
    if hash_column not in manifest.columns or "work_id" not in manifest.columns:
        raise ValueError(
            f"{path}: the adapter checks training items against column {hash_column!r}; the "
            f"manifest has {list(manifest.columns)}"
        )
    return manifest.rename(columns={hash_column: "content_sha256"})


def manifest_hash(adapter) -> str:
    """The manifest column an adapter's content_sha256() is compared with."""
    return getattr(adapter, "manifest_hash", "content_sha256")


def _training_examples(adapter: ModelAdapter, manifest: pd.DataFrame, items: list | None) -> list:
    """The training examples in manifest order, each checked against the manifest's hash."""
    if items is None:
        stored = getattr(adapter, "training_items", None)
        if stored is None:
            raise FileNotFoundError(
                "pass train_items (the catalog's copies of the manifest's works, in manifest "
                "order); this adapter stores none with the model version"
            )
        items = stored()
    if len(items) != len(manifest):
        raise ValueError(f"{len(items)} training items but the manifest lists {len(manifest)}")
    # The manifest is what royalties are paid on: attribute exactly the data it describes.
    examples = []
    for i, (raw, h) in enumerate(zip(items, manifest["content_sha256"], strict=True)):
        if adapter.content_sha256(raw) != h:
            raise ValueError(
                f"training example {i} (work {manifest['work_id'].iloc[i]}) does not match the "
                "manifest's content hash"
            )
        try:
            examples.append(adapter.prepare(raw))
        except InvalidExample as e:
            raise ValueError(f"training example {i} is not a valid model input: {e}") from e
    return examples


def _null_examples(adapter: ModelAdapter, manifest: pd.DataFrame, items: list | None) -> list:
    """The pieces that copy nothing, for the "pvalue" rule: passed, else the adapter's
    optional null_items(). A null piece that IS a training work would make the null claim
    that copies are ordinary, so one whose hash the manifest lists is refused."""
    if items is None:
        stored = getattr(adapter, "null_items", None)
        if not callable(stored):
            raise ValueError(
                'confidence rule "pvalue" needs pieces that copy nothing (the null set): pass '
                f"null_items, or give adapter {getattr(adapter, 'name', type(adapter).__name__)!r} "
                "a null_items() method (attribution/protocol.py)"
            )
        items = stored()
    trained = set(manifest["content_sha256"])
    examples = []
    for i, raw in enumerate(items):
        try:
            if adapter.content_sha256(raw) in trained:
                raise InvalidExample("it is a training work of the manifest")
            examples.append(adapter.prepare(raw))
        except InvalidExample as e:
            raise ValueError(f"null piece {i} cannot be used: {e}") from e
    return examples


def attribute_generations(
    model_version_dir: Path,
    generations: list[tuple[str, Any]],
    cache_dir: Path,
    top_k: int = 8,
    seed: int = 0,
    run_id: str | None = None,
    train_items: list | None = None,
    k_in: int | None = None,
    k_out: int | None = None,
    damping: float | None = None,
    policy: SharesPolicy | dict | None = None,
    method: str = "trak",
    method_params: dict | None = None,
    adapter: ModelAdapter | None = None,
    null_items: list | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (shares_df, rejected_df) for generations [(generation_id, raw output)].

    The model version's adapter (its model_version.json names the entry point; or pass
    ``adapter``) turns raw outputs (token lists, audio file paths) into model inputs; an
    output it refuses is a rejection with its reason, never a guess.
    method: "trak" (projected gradients), "unlearning" (Fisher-regularised gradient ascent)
    or "similarity" (cosine of embeddings; method_params {"embedder": "symbolic" | "audio" |
    "hidden"}).
    policy: the contract's SharesPolicy (or its dict); None means SharesPolicy(top_k=top_k).
    method_params: extra keyword arguments for the method's attributor.
    Scores are reduced per generation to a streaming top-k (memory independent of the
    catalog size), and recorded with the policy in params_json.

    train_items: the raw training items in manifest order (the licensor's catalog copies);
    if None, the adapter's training_items() (what the platform stored with the model
    version). Either way each must match the manifest's content hash. Training features are
    cached under cache_dir/<model_version>/, keyed by the examples' bytes, dtype and shape.

    null_items: for the policy's "pvalue" rule, raw pieces that copy no training work (if
    None, the adapter's null_items()). Their top z against this catalog is the null
    distribution (attribution/calibration.py), cached next to the training features; each
    generation's p-value is recorded in column p_value.
    """
    t0 = time.perf_counter()
    if method not in METHODS:
        raise ValueError(f"unknown attribution method {method!r}; expected one of {METHODS}")
    if policy is None:
        policy = SharesPolicy(top_k=top_k)
    elif isinstance(policy, dict):
        policy = SharesPolicy.from_dict(policy)
    run_id = run_id or f"attr-{uuid.uuid4().hex[:12]}"
    adapter = adapter or load_adapter(Path(model_version_dir))
    manifest = read_manifest(Path(model_version_dir), manifest_hash(adapter))

    accepted: list[tuple[str, Any]] = []
    rejected: list[dict] = []
    seen: set[str] = set()
    for gid, raw in generations:
        gid = str(gid)
        try:
            if gid in seen:
                raise InvalidExample(f"duplicate generation_id {gid!r}")
            example = adapter.prepare(raw)
        except InvalidExample as e:
            rejected.append({"generation_id": gid, "reason": str(e)})
            continue
        seen.add(gid)
        accepted.append((gid, example))
    if rejected:
        log.warning("%d of %d generations rejected", len(rejected), len(generations))

    rows: list[dict] = []
    params: dict = {}
    if accepted:
        train = _training_examples(adapter, manifest, train_items)
        # None: the attributor's own default (documented in attribution/trak.py).
        kw = {
            k: v
            for k, v in {"k_in": k_in, "k_out": k_out, "damping": damping}.items()
            if v is not None
        }
        kw.update(method_params or {})
        attributor = make_attributor(
            method,
            adapter,
            cache_dir=Path(cache_dir) / adapter.model_version,
            seed=seed,
            **kw,
        )
        # Keep several times top_k examples: a work with more than one training example
        # then still has all of them summed.
        keep = max(64, 4 * policy.top_k)
        null = searched_null = None
        examples = [x for _, x in accepted]
        searched = bool(policy.variants or policy.catalog_versions)
        # The search's catalog: the training examples, or each followed by its transformed
        # versions (attribution/versions.py), with an attributor of its own (its features
        # are cached apart, keyed by the expanded examples).
        search_train, search_attributor, owner = train, attributor, None
        if policy.catalog_versions:
            search_train, owner = expand_catalog(adapter, train)
            search_attributor = make_attributor(
                method, adapter, cache_dir=Path(cache_dir) / adapter.model_version, seed=seed,
                **kw,
            )  # fmt: skip
            log.info("catalog versions: %d training examples scored as %d columns",
                     len(train), len(search_train))  # fmt: skip
        with torch_threads():
            attributor.cache(train)
            if policy.catalog_versions:
                search_attributor.cache(search_train)
            if policy.confidence == "pvalue":
                t_null = time.perf_counter()
                null_examples = _null_examples(adapter, manifest, null_items)
                null_cache = Path(cache_dir) / adapter.model_version
                null = null_distribution(attributor, adapter, train, null_examples, null_cache)
                # robust matching with the p-value rule: two tests (robust.two_tests), each
                # against its own null, each at alpha / 2
                if searched:
                    searched_null = null_distribution(
                        search_attributor, adapter, search_train, null_examples, null_cache,
                        n_variants=policy.variants,
                    )  # fmt: skip
                log.info("null of %d pieces for %s ready in %.1fs (scored once, then cached)",
                         null.m, adapter.model_version, time.perf_counter() - t_null)  # fmt: skip
                null.check_alpha(policy.alpha / (2 if searched else 1))
            summaries, chosen = robust_topk(
                search_attributor, adapter, examples, keep, policy.variants
            )
            tested = None
            if searched_null is not None:
                plain = attributor.attribute_topk(examples, k=keep)
                tested = two_tests(plain, summaries, null, searched_null)
                summaries = [s for s, _ in tested]
        n_parts = len(adapter.checkpoints()) if method == "trak" else 1
        log.info(
            "training features for %s (%s): %d of %d checkpoints from cache",
            adapter.model_version,
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
            "adapter": f"{adapter.name}/{adapter.version}",
        }
        if null is not None:  # what the p-values were computed against, for the audit
            params["null"] = {"n": null.m, "key": null.key[:16]}
        if searched_null is not None:
            params["null"]["searched_key"] = searched_null.key[:16]
        if owner is not None:
            params["catalog_versions"] = {"columns": len(owner)}
        if policy.variants:
            log.info("robust matching: %d of %d generations matched best as a transformed "
                     "version", sum(1 for c in chosen if c), len(chosen))  # fmt: skip
        params_json = json.dumps(params, sort_keys=True)
        work_ids = [str(w) for w in manifest["work_id"]]
        # A summary of the catalog-versions search has a column per version: each carries
        # its work's id, so the shares sum a work's versions like a work's examples.
        ids_of = {len(work_ids): work_ids}
        if owner is not None:
            ids_of[len(owner)] = [work_ids[int(o)] for o in owner]
        for i, ((gid, _), summ) in enumerate(zip(accepted, summaries, strict=True)):
            # the p-value: under the run's null, or the two tests' adjusted one
            p_of = TestedP(tested[i][1]) if tested is not None else null
            share_rows, conf, fallback = policy_shares(summ, ids_of[summ.n], policy, p_of)
            p_value = p_of.p_value(conf) if p_of is not None else np.nan
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
                        "model_version": adapter.model_version,
                        "run_id": run_id,
                        "params_json": params_json,
                        "confidence": float(conf),
                        "p_value": float(p_value),
                        "fallback": bool(fallback),
                    }
                )
    shares_df = pd.DataFrame(rows, columns=SHARE_COLUMNS).astype(
        {
            "score": "float64",
            "rank": "int64",
            "is_residual": "bool",
            "confidence": "float64",
            "p_value": "float64",
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
        adapter.model_version,
        time.perf_counter() - t0,
    )
    return shares_df, rejected_df


def attribute_groups(
    model_version_dir: Path,
    generations: list[tuple[str, Any]],
    catalogs: dict[str, list[str]],
    cache_dir: Path,
    method: str = "group-unlearning",
    params: dict | None = None,
    seed: int = 0,
    run_id: str | None = None,
    train_items: list | None = None,
    adapter: ModelAdapter | None = None,
) -> pd.DataFrame:
    """Holder-level shares: how much of each generation is attributable to each holder's
    catalog (attribution/groups.py), for generations [(generation_id, raw output)].

    catalogs: holder id -> the work ids of its catalog. Works the model version's manifest
    does not list are dropped (the model never trained on them), and so is a holder left with
    none; a work with several training examples counts all of them. A generation the adapter
    refuses gets no row (attribute_generations records its rejection).
    method: "group-unlearning" (unlearn each holder's works, score the rise of the
    generation's loss) or "trak-sum" (TRAK instance scores summed per holder); params: the
    method's parameters (attribution.groups.GROUP_METHOD_PARAMS), checked here.
    Informational: nothing here changes the per-work shares that pay.
    """
    params = dict(params or {})
    check_group_terms(method, params)
    run_id = run_id or f"attr-{uuid.uuid4().hex[:12]}"
    adapter = adapter or load_adapter(Path(model_version_dir))
    manifest = read_manifest(Path(model_version_dir), manifest_hash(adapter))
    index: dict[str, list[int]] = {}
    for i, w in enumerate(manifest["work_id"]):
        index.setdefault(str(w), []).append(i)
    groups = {
        str(h): sorted({i for w in works for i in index.get(str(w), [])})
        for h, works in sorted(catalogs.items())
    }
    groups = {h: idx for h, idx in groups.items() if idx}
    accepted: list[tuple[str, Any]] = []
    seen: set[str] = set()
    for gid, raw in generations:
        try:
            if str(gid) in seen:
                continue
            accepted.append((str(gid), adapter.prepare(raw)))
            seen.add(str(gid))
        except InvalidExample:
            continue
    if not accepted or not groups:
        return pd.DataFrame([], columns=GROUP_SHARE_COLUMNS)
    train = _training_examples(adapter, manifest, train_items)
    examples = [x for _, x in accepted]
    cache = Path(cache_dir) / adapter.model_version
    with torch_threads():
        if method == "group-unlearning":
            attributor = GroupUnlearningAttributor(adapter, seed=seed, cache_dir=cache, **params)
            attributor.cache(train, groups)
            scores = attributor.attribute(examples)
            used = attributor.params()
        else:  # trak-sum
            attributor = make_attributor("trak", adapter, cache_dir=cache, seed=seed, **params)
            attributor.cache(train)
            scores = summed_instance_scores(attributor.attribute(examples), groups)
            used = attributor.params()
    shares = holder_shares(scores)
    params_json = json.dumps(
        {**used, "method": method, "seed": seed, "n_groups": len(groups),
         "adapter": f"{adapter.name}/{adapter.version}"},
        sort_keys=True, default=str,
    )  # fmt: skip
    rows = [
        {
            "generation_id": gid,
            "rights_holder_id": holder,
            "share": f"{shares[r, c]:.9f}",
            "score": float(scores[r, c]),
            "method": method,
            "model_version": adapter.model_version,
            "run_id": run_id,
            "params_json": params_json,
        }
        for r, (gid, _) in enumerate(accepted)
        for c, holder in enumerate(groups)
    ]
    return pd.DataFrame(rows, columns=GROUP_SHARE_COLUMNS).astype({"score": "float64"})


def make_attributor(method: str, adapter, cache_dir: Path | None = None, seed: int = 0, **kw):
    """The attributor a contract's method names, with its own parameters from kw.

    The names each method takes are METHOD_PARAMS[method]: TRAK's curvature is "kfac-gram",
    "kfac" or "gram", its layers "output" or "all"; similarity's embedder "hidden" or
    "symbolic". Keywords that belong to another method are ignored, so a DAG can pass one
    dict of contract parameters. The adapter's ``method_defaults`` (attribution/protocol.py)
    fill the parameters the contract leaves out.
    """
    tuned = (getattr(adapter, "method_defaults", None) or {}).get(method, {})
    own = {k: v for k, v in {**tuned, **kw}.items() if k in METHOD_PARAMS.get(method, ())}
    if method in ("trak", "unlearning"):
        missing = [
            m
            for m in ("per_example_loss", "attributed_modules", "checkpoints", "load_checkpoint")
            if not callable(getattr(adapter, m, None))
        ]
        if missing:
            raise ValueError(
                f"method {method!r} needs the platform's model; adapter "
                f"{getattr(adapter, 'name', type(adapter).__name__)!r} lacks {missing} (use "
                "method 'similarity' for a platform that shares outputs only)"
            )
    if method == "trak":
        return TRAKAttributor(adapter, seed=seed, cache_dir=cache_dir, **own)
    if method == "unlearning":
        return UnlearningAttributor(adapter, seed=seed, cache_dir=cache_dir, **own)
    if method == "similarity":
        return SimilarityAttributor(
            make_embedder(adapter, own.get("embedder")), cache_dir=cache_dir
        )
    raise ValueError(f"unknown attribution method {method!r}; expected one of {METHODS}")


EMBEDDERS = ("symbolic", "audio", "hidden")


def make_embedder(adapter, kind: str | None = None):
    """The black-box embedder a contract names, or the adapter's natural one.

    Symbolic (token statistics) for adapters with a vocabulary, audio (spectrogram
    statistics) for adapters with spectrograms: both need nothing of the model, the black-box
    case. "hidden" uses the model's own hidden states (adapter.embed). On the symbolic model
    the token statistics separate copies from ordinary generations better than mean-pooled
    hidden states (z-score of the top match 6-12 vs ~2; docs/attribution.md).
    """
    if kind is None:
        kind = (
            "symbolic"
            if hasattr(adapter, "vocabulary")
            else "audio"
            if hasattr(adapter, "spectrogram")
            else "hidden"
        )
    needs = {"symbolic": "vocabulary", "audio": "spectrogram", "hidden": "embed"}
    if kind not in needs:
        raise ValueError(f"unknown embedder {kind!r}; expected one of {EMBEDDERS}")
    if not hasattr(adapter, needs[kind]):
        raise ValueError(
            f"embedder {kind!r} needs the adapter's {needs[kind]}(), which "
            f"{getattr(adapter, 'name', type(adapter).__name__)!r} does not provide"
        )
    if kind == "symbolic":
        return SymbolicEmbedder(adapter.vocabulary())
    if kind == "audio":
        return AudioEmbedder(adapter.spectrogram)
    return HiddenStateEmbedder(adapter)
