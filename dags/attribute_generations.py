"""Attribute every newly ingested generation to the training works of the model that made it.

Runs when ingest lands new raw generations (the raw_generations asset); torch and the
attribution engine are imported inside the tasks, so parsing this file stays cheap."""

from __future__ import annotations

from _common import (
    ATTRIBUTION_SHARES,
    DEFAULT_ARGS,
    LOG,
    RAW_GENERATIONS,
    START_DATE,
    WAREHOUSE_POOL,
    endpoint,
    setting_duration,
    settings,
    task_run_id,
)
from airflow.sdk import dag, task


@dag(
    schedule=[RAW_GENERATIONS],
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["tributary", "attribution"],
    doc_md=__doc__,
)
def attribute_generations():
    @task
    def list_platforms() -> list[dict]:
        from settlement import platforms

        return platforms.registered(settings().warehouse)

    @task(pool=WAREHOUSE_POOL)  # registers model versions in the warehouse
    def sync_model_versions(platform: dict) -> list[str]:
        from settlement import attribution_runs

        fetched = attribution_runs.sync_model_versions(settings(), endpoint(platform["platform_id"], platform["conn_id"]))
        LOG.info("%s: %d model version(s) fetched and registered: %s", platform["platform_id"], len(fetched), fetched)
        return fetched

    @task
    def plan_shards(_synced: list) -> list[dict]:
        from settlement import attribution_runs

        shards = attribution_runs.plan_shards(settings())
        LOG.info("%d shard(s) of generations waiting for attribution", len(shards))
        return shards

    # Shards read the warehouse briefly and write Parquet only: no pool, so they run side by side.
    @task(multiple_outputs=False, execution_timeout=setting_duration("TRIBUTARY_SHARD_TIMEOUT", "6h"))
    def attribute_shard(shard: dict) -> dict:
        from settlement import attribution_runs

        result = attribution_runs.attribute_shard(settings(), shard, run_id=task_run_id())
        LOG.info("shard %s of %s/%s: %d generation(s) scored by %s, %d rejected; shares in %s", result["shard"],
                 result["platform_id"], result["model_version"], result["n_generations"], result["method"],
                 result["n_rejected"], result["shares_path"])  # fmt: skip
        return result

    @task(multiple_outputs=False, outlets=[ATTRIBUTION_SHARES], pool=WAREHOUSE_POOL)
    def load_shares(results: list[dict]) -> dict:
        from settlement import attribution_runs

        loaded = attribution_runs.load_attribution(settings(), list(results))
        LOG.info("loaded %d attribution run(s): %d share row(s), %d rejection(s)", loaded["runs"],
                 loaded["share_rows"], loaded["rejections"])  # fmt: skip
        return loaded

    synced = sync_model_versions.expand(platform=list_platforms())
    load_shares(attribute_shard.expand(shard=plan_shards(synced)))


attribute_generations()
