"""What the three DAG files share: settings, platform endpoints from Airflow Connections, and
the run id written on every row a task produces. Business logic lives in the libraries."""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import Asset, Connection, get_current_context

from settlement.config import Settings
from settlement.ingest import PlatformEndpoint

START_DATE = pendulum.datetime(2026, 1, 1, tz="UTC")
RAW_GENERATIONS = Asset("tributary://warehouse/raw/generations")
ATTRIBUTION_SHARES = Asset("tributary://warehouse/attribution/shares")
# Network calls retry inside the ingest client; a task-level retry covers a lost worker.
DEFAULT_ARGS = {
    "retries": int(os.environ.get("TRIBUTARY_TASK_RETRIES", "1")),
    "retry_delay": pendulum.duration(seconds=15),
}


def settings() -> Settings:
    return Settings.from_env()


def endpoint(platform_id: str, conn_id: str) -> PlatformEndpoint:
    """Base URL and token come from the Airflow Connection, never from code or logs. No scheme
    means https: PlatformEndpoint refuses plain http to anything but loopback."""
    conn = Connection.get(conn_id)
    scheme = conn.schema or "https"
    port = f":{conn.port}" if conn.port else ""
    return PlatformEndpoint(platform_id, f"{scheme}://{conn.host}{port}", conn.password or "")


def task_run_id() -> str:
    """One id per task run: dag, task, map index and Airflow's run id."""
    ctx = get_current_context()
    ti = ctx["ti"]
    suffix = f"[{ti.map_index}]" if ti.map_index is not None and ti.map_index >= 0 else ""
    return f"{ti.dag_id}.{ti.task_id}{suffix}@{ctx['run_id']}"
