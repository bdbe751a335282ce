"""Attribution as the pipeline runs it: fetch the platform's model, shard the new generations,
score each shard, load the shares. The scoring itself is `attribution.pipeline`.

Shards write Parquet and never the warehouse, so any number of them can run at once on any
worker; one loader then writes DuckDB (a single-writer database).
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from attribution.pipeline import (
    attribute_generations,
    attribute_groups,
    manifest_hash,
    read_manifest,
)
from attribution.registry import load_adapter
from settlement.config import Settings
from settlement.ingest import GenerationLogClient, PlatformEndpoint, model_version_dir
from settlement.reference import check_group_method, register_model_version
from settlement.warehouse import query, run_sql, transaction, warehouse


def training_items(manifest: pd.DataFrame, catalog: Path, kind: str = "tokens") -> list:
    """A model's training items in manifest order, taken from our own copy of the catalog:
    token lists (kind "tokens") or audio file paths (kind "audio"), as the adapter says."""
    if kind == "tokens":
        table = pd.read_parquet(catalog / "tokens.parquet", columns=["work_id", "tokens"])
        column = "tokens"
    elif kind == "audio":
        table = pd.read_parquet(catalog / "audio.parquet", columns=["work_id", "file_name"])
        column = "file_name"
    else:
        raise ValueError(f"unknown catalog kind {kind!r}; expected 'tokens' or 'audio'")
    table = table.set_index("work_id")
    missing = sorted(set(manifest["work_id"]) - set(table.index))
    if missing:
        raise ValueError(f"manifest names works missing from the catalog: {', '.join(missing[:10])}")
    if kind == "tokens":
        return [list(map(int, table.at[w, column])) for w in manifest["work_id"]]
    return [catalog / "audio" / str(table.at[w, column]) for w in manifest["work_id"]]


def sync_model_versions(settings: Settings, endpoint: PlatformEndpoint) -> list[str]:
    """Fetch and register every model version the platform's generations name but we lack."""
    with warehouse(settings.warehouse) as con:
        wanted = [r["model_version"] for r in query(con, "marts/unregistered_model_versions", {"platform_id": endpoint.platform_id})]
    if not wanted:
        return []
    client = GenerationLogClient(endpoint)
    licensed = set(client.model_versions())
    fetched = []
    for version in wanted:
        if version not in licensed:
            continue  # ingest quarantines generations of unlicensed versions; nothing to fetch
        dest = model_version_dir(settings.models, endpoint.platform_id, version)
        client.download_model_version(version, dest)
        with warehouse(settings.warehouse) as con:
            register_model_version(con, endpoint.platform_id, dest, settings.catalog / "tokens.parquet")
        fetched.append(version)
    return fetched


def plan_shards(settings: Settings, shard_size: int | None = None) -> list[dict]:
    """Work orders for the generations that have neither shares nor a recorded rejection.

    `shard_size` (generations per mapped task) defaults to TRIBUTARY_SHARD_SIZE, else 256."""
    shard_size = shard_size or int(os.environ.get("TRIBUTARY_SHARD_SIZE", "256"))
    with warehouse(settings.warehouse) as con:
        pending = query(con, "marts/pending_attribution")
    shards = []
    for row in pending:
        platform_id, model_version, n = row["platform_id"], row["model_version"], row["n"]
        n_shards = max(1, -(-n // shard_size))
        shards += [
            {"platform_id": platform_id, "model_version": model_version, "shard": i, "n_shards": n_shards}
            for i in range(n_shards)
        ]
    return shards


def attribute_shard(settings: Settings, shard: dict, run_id: str) -> dict:
    """Score one shard against the model's training set; writes Parquet, returns its paths."""
    with warehouse(settings.warehouse) as con:
        gens = [(r["generation_id"], _raw_output(r, settings.lake)) for r in query(con, "marts/pending_attribution_shard", shard)]
        model = query(con, "marts/model_version_for_attribution", shard)
        group_method = (model[0]["group_method"] or "") if model else ""
        catalogs = {r["rights_holder_id"]: list(r["work_ids"]) for r in query(con, "marts/holder_catalogs")} if group_method else {}
    if not model:
        raise RuntimeError(f"model version {shard['model_version']} of {shard['platform_id']} is not registered")
    local_path, method, top_k = model[0]["local_path"], model[0]["method"], model[0]["top_k"]
    # The contract's terms, checked when it was registered (settlement.reference).
    policy = {"top_k": int(top_k), **json.loads(model[0]["shares_policy_json"] or "{}")}
    method_params = json.loads(model[0]["method_params_json"] or "{}")
    group_params = json.loads(model[0]["group_params_json"] or "{}")
    if group_method:
        # checked again: a contract row edited in the warehouse is as hostile as a new one
        check_group_method(group_method, group_params, f"contract {model[0]['contract_id']} v{model[0]['version']}")
    mv_dir = Path(local_path)
    adapter = load_adapter(mv_dir)
    manifest = read_manifest(mv_dir, manifest_hash(adapter))
    train_items = training_items(manifest, settings.catalog, getattr(adapter, "catalog_kind", "tokens"))
    shares, rejected = attribute_generations(
        mv_dir,
        gens,
        cache_dir=settings.features,
        policy=policy,
        method=method,  # the platform contract names the method: trak | unlearning | similarity
        method_params=method_params,
        run_id=run_id,
        train_items=train_items,
        adapter=adapter,
    )
    folder = settings.lake / "attribution" / f"platform={shard['platform_id']}" / f"run={_safe(run_id)}"
    folder.mkdir(parents=True, exist_ok=True)
    shares_path = folder / f"shares-{shard['shard']:05d}.parquet"
    rejected_path = folder / f"rejected-{shard['shard']:05d}.parquet"
    groups_path = None
    if group_method:
        # the holder-level shares of the generations the run attributed (informational)
        attributed = set(shares["generation_id"])
        groups = attribute_groups(
            mv_dir, [g for g in gens if str(g[0]) in attributed], catalogs, settings.features,
            method=group_method, params=group_params, run_id=run_id, train_items=train_items,
            adapter=adapter,
        )  # fmt: skip
        groups_path = folder / f"groups-{shard['shard']:05d}.parquet"
        groups.assign(platform_id=shard["platform_id"]).to_parquet(groups_path, index=False)
    shares.assign(platform_id=shard["platform_id"]).to_parquet(shares_path, index=False)
    rejected.assign(platform_id=shard["platform_id"]).astype(str).to_parquet(rejected_path, index=False)
    params_json = shares["params_json"].iloc[0] if len(shares) else "{}"
    return {
        **shard, "run_id": run_id, "method": method, "shares_path": str(shares_path), "rejected_path": str(rejected_path),
        "n_generations": len(gens), "n_rejected": len(rejected), "params_json": params_json,
        "groups_path": None if groups_path is None else str(groups_path),
    }  # fmt: skip


def load_attribution(settings: Settings, results: list[dict]) -> dict:
    """Load shard results; generations already attributed by an earlier load are skipped."""
    now = datetime.now(UTC).replace(tzinfo=None)
    loaded = {"runs": 0, "share_rows": 0, "rejections": 0}
    with warehouse(settings.warehouse) as con, transaction(con):
        for r in results:
            count = {"platform_id": r["platform_id"]}
            before = query(con, "marts/row_counts", count)[0]["attribution_shares"]
            shard = {"shares_path": r["shares_path"], "run_id": r["run_id"]}
            # the rule decisions and holder-level shares first: every load skips generations
            # that already have shares
            run_sql(con, "loads/attribution_share_rules", shard)
            if r.get("groups_path"):
                run_sql(con, "loads/attribution_group_shares", {"groups_path": r["groups_path"], "run_id": r["run_id"]})
            run_sql(con, "loads/attribution_shares", shard)
            rej = pq.read_table(r["rejected_path"]) if Path(r["rejected_path"]).exists() else pa.table({})
            if rej.num_rows:
                con.register("staged_rejections", rej)
                run_sql(con, "loads/attribution_rejections", {"run_id": r["run_id"], "now": now})
                con.unregister("staged_rejections")
            run_sql(
                con, "loads/attribution_run",
                {"run_id": r["run_id"], "platform_id": r["platform_id"], "model_version": r["model_version"],
                 "method": r["method"], "params_json": r["params_json"], "n_generations": r["n_generations"],
                 "n_rejected": r["n_rejected"], "now": now},
            )  # fmt: skip
            loaded["share_rows"] += query(con, "marts/row_counts", count)[0]["attribution_shares"] - before
            loaded["runs"] += 1
            loaded["rejections"] += r["n_rejected"]
    return loaded


def _raw_output(row: dict, lake: Path):
    """What the platform delivered for a generation, as the adapter's prepare() takes it: the
    token list, or the audio file the ingest stored in the lake (content-addressed, checked by
    sha256 when it landed)."""
    if row["output_kind"] == "audio":
        return lake / row["output_audio_path"]
    return list(row["output_tokens"]) if row["output_tokens"] is not None else None


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)


def describe(results: list[dict]) -> str:
    return json.dumps(results, indent=1, default=str)
