"""Attribute every newly ingested generation to the training works of the model that made it."""

from __future__ import annotations

from _common import (
    ATTRIBUTION_SHARES,
    DEFAULT_ARGS,
    RAW_GENERATIONS,
    START_DATE,
    endpoint,
    settings,
    task_run_id,
)
from airflow.sdk import dag, task

from settlement import attribution_runs, platforms


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
        return platforms.registered(settings().warehouse)

    @task
    def sync_model_versions(platform: dict) -> list[str]:
        return attribution_runs.sync_model_versions(settings(), endpoint(platform["platform_id"], platform["conn_id"]))

    @task
    def plan_shards(_synced: list) -> list[dict]:
        return attribution_runs.plan_shards(settings())

    @task
    def attribute_shard(shard: dict) -> dict:
        return attribution_runs.attribute_shard(settings(), shard, run_id=task_run_id())

    @task(outlets=[ATTRIBUTION_SHARES])
    def load_shares(results: list[dict]) -> dict:
        return attribution_runs.load_attribution(settings(), list(results))

    synced = sync_model_versions.expand(platform=list_platforms())
    load_shares(attribute_shard.expand(shard=plan_shards(synced)))


attribute_generations()
