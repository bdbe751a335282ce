"""Pull each licensed platform's generation log, one daily window at a time.

Scheduled runs pull their data interval (one day). A manual run names what to pull: a whole
month, day by day (`period`, YYYY-MM), or one day (`day`, YYYY-MM-DD); its logical date may be
null and is never read.
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
    day_param,
    endpoint,
    period_param,
    run_period,
    settings,
    task_run_id,
)
from airflow.sdk import dag, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException
from airflow.timetables.interval import CronDataIntervalTimetable


@dag(
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["tributary", "ingest"],
    doc_md=__doc__,
    params={
        "period": period_param("A whole month to pull, YYYY-MM, day by day. A manual run gives this or `day`."),
        "day": day_param("One day to pull again, YYYY-MM-DD. A manual run gives this or `period`."),
    },
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
        day = (ctx.get("params") or {}).get("day")
        if day and (ctx.get("params") or {}).get("period"):
            raise AirflowFailException("give `period` (a month) or `day`, not both")
        if day:  # a manual run for one day
            start = pendulum.parse(day, tz="UTC")
            end = start.add(days=1)
        elif (ctx.get("params") or {}).get("period"):  # a manual run: the whole month, day by day
            first, after = calculate.period_bounds(run_period(ctx))
            start, end = (pendulum.datetime(d.year, d.month, d.day, tz="UTC") for d in (first, after))
        else:
            run_period(ctx)  # a scheduled run, or the message that a manual one names no month
            start, end = ctx["data_interval_start"], ctx["data_interval_end"]
        s = settings()
        result = ingest.ingest_platform(
            s.warehouse, s.lake, endpoint(platform["platform_id"], platform["conn_id"]), start, end,
            run_id=task_run_id(), window=timedelta(days=1),
        )  # fmt: skip
        LOG.info("%s", messages.ingest_line(result, start, end))
        return messages.plain(result)

    # Content fingerprints of what just landed, for the provenance check API (provenance/).
    # Incremental: after a failed pull it waits for the next good run (a leaf that ran anyway
    # would mark a failed ingest run successful), or `tributary provenance index`.
    @task(multiple_outputs=False, pool=WAREHOUSE_POOL)
    def fingerprint_new_generations(_pulled) -> dict:
        from provenance import index

        s = settings()
        result = index.index(s.warehouse, s.lake)
        LOG.info("provenance fingerprints: %s", result)
        return result

    fingerprint_new_generations(pull_window.expand(platform=list_platforms()))


ingest_generation_logs()
