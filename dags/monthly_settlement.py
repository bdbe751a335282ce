"""Settle one calendar month: check exceptions, calculate pools and payables, write statements."""

from __future__ import annotations

from airflow.sdk import dag, get_current_context, task
from airflow.timetables.interval import CronDataIntervalTimetable

from _common import DEFAULT_ARGS, START_DATE, settings, task_run_id
from settlement import calculate, statements


@dag(
    schedule=CronDataIntervalTimetable("0 0 1 * *", timezone="UTC"),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["tributary", "settlement"],
    doc_md=__doc__,
    params={"prepared_by": "finance-bot"},
)
def monthly_settlement():
    @task
    def period() -> str:
        return get_current_context()["data_interval_start"].strftime("%Y-%m")

    @task(retries=0)  # a failed gate needs a person, not a retry
    def calculate_period(period: str) -> dict:
        by = get_current_context()["params"]["prepared_by"]
        return calculate.calculate_period(settings().warehouse, period, run_id=task_run_id(), by=by)

    @task
    def write_statements(calculation: dict) -> dict:
        s = settings()
        return statements.build_statements(s.warehouse, s.statements, calculation["period"])

    write_statements(calculate_period(period()))


monthly_settlement()
