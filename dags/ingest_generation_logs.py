"""Pull each licensed platform's generation log, one daily window at a time.

Scheduled runs pull their data interval (one day). A manual run pulls a whole month, day by day,
named by the `period` param (a null logical date is fine: the month never comes from the clock).
Incremental: each platform resumes from its watermark in the warehouse (a missed day is caught
up), every window is reconciled against the platform's manifest, and the two windows before are
re-checked for late records. Retries and backoff live in the ingest client."""

from __future__ import annotations

from datetime import timedelta

from _common import (
    DEFAULT_ARGS,
    LOG,
    RAW_GENERATIONS,
    START_DATE,
    WAREHOUSE_POOL,
    endpoint,
    period_param,
    run_period,
    settings,
    task_run_id,
)
from airflow.sdk import dag, get_current_context, task
from airflow.timetables.interval import CronDataIntervalTimetable


@dag(
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["tributary", "ingest"],
    doc_md=__doc__,
    params={"period": period_param("A whole month to pull, YYYY-MM, day by day. Required for a manual run.")},
)
def ingest_generation_logs():
    @task
    def list_platforms() -> list[dict]:
        from settlement import platforms

        return platforms.registered(settings().warehouse)

    @task(
        multiple_outputs=False,
        outlets=[RAW_GENERATIONS],
        pool=WAREHOUSE_POOL,
        map_index_template="{{ task.op_kwargs['platform']['platform_id'] }}",
    )
    def pull_window(platform: dict) -> dict:
        import pendulum

        from settlement import calculate, ingest, messages

        ctx = get_current_context()
        if (ctx.get("params") or {}).get("period"):  # a manual run: the whole month, day by day
            first, after = calculate.period_bounds(run_period(ctx))
            start, end = (pendulum.datetime(d.year, d.month, d.day, tz="UTC") for d in (first, after))
        else:
            run_period(ctx)  # a scheduled run, or the message that a manual one needs a period
            start, end = ctx["data_interval_start"], ctx["data_interval_end"]
        s = settings()
        result = ingest.ingest_platform(
            s.warehouse, s.lake, endpoint(platform["platform_id"], platform["conn_id"]), start, end,
            run_id=task_run_id(), window=timedelta(days=1),
        )  # fmt: skip
        LOG.info("%s", messages.ingest_line(result, start, end))
        return messages.plain(result)

    pull_window.expand(platform=list_platforms())


ingest_generation_logs()
