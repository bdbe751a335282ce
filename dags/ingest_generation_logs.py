"""Pull each licensed platform's generation log for the run's data interval.

Incremental: each platform resumes from its watermark in the warehouse (a missed day is
caught up), the interval is reconciled against the platform's manifest, and the two days
before are re-checked for late records. Retries and backoff live in the ingest client."""

from __future__ import annotations

from _common import DEFAULT_ARGS, RAW_GENERATIONS, START_DATE, endpoint, settings, task_run_id
from airflow.sdk import dag, get_current_context, task
from airflow.timetables.interval import CronDataIntervalTimetable

from settlement import ingest, platforms


@dag(
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["tributary", "ingest"],
    doc_md=__doc__,
)
def ingest_generation_logs():
    @task
    def list_platforms() -> list[dict]:
        return platforms.registered(settings().warehouse)

    @task(
        outlets=[RAW_GENERATIONS],
        map_index_template="{{ task.op_kwargs['platform']['platform_id'] }}",
    )
    def pull_window(platform: dict) -> dict:
        ctx = get_current_context()
        s = settings()
        return ingest.ingest_platform(
            s.warehouse,
            s.lake,
            endpoint(platform["platform_id"], platform["conn_id"]),
            ctx["data_interval_start"],
            ctx["data_interval_end"],
            run_id=task_run_id(),
        )

    pull_window.expand(platform=list_platforms())


ingest_generation_logs()
