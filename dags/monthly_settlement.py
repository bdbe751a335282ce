"""Settle one calendar month: calculate, stop on exceptions, wait for a second person's
approval, close (payouts, carry-forward, read-only snapshot), write the statements."""

from __future__ import annotations

import os
from datetime import timedelta

from _common import DEFAULT_ARGS, START_DATE, settings, task_run_id
from airflow.sdk import dag, get_current_context, task
from airflow.timetables.interval import CronDataIntervalTimetable

from settlement import calculate, lifecycle, statements

APPROVAL_POKE_SECONDS = float(os.environ.get("TRIBUTARY_APPROVAL_POKE_SECONDS", "60"))


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
        return calculate.calculate_period(settings().warehouse, period, run_id=task_run_id(), by=by, closed_ok=True)

    @task
    def draft_statements(calculation: dict) -> dict:
        s = settings()
        return statements.build_statements(s.warehouse, s.statements, calculation["period"])

    # The approval itself is given by a second person (`tributary settle approve`), who must
    # not be the preparer; the DAG waits for it in the warehouse, where the rule is enforced.
    @task.sensor(poke_interval=APPROVAL_POKE_SECONDS, timeout=timedelta(days=7).total_seconds(), mode="reschedule")
    def wait_for_approval(period: str, _drafted: dict) -> bool:
        state = lifecycle.period_state(settings().warehouse, period)
        return state["status"] in ("approved", "closed")

    @task
    def close_period(period: str, _approved: bool) -> dict:
        s = settings()
        state = lifecycle.period_state(s.warehouse, period)
        if state["status"] == "closed":
            return {"period": period, "status": "closed"}
        return lifecycle.close_period(s.warehouse, period, by="monthly_settlement", snapshots=s.home / "snapshots")

    @task
    def final_statements(closed: dict) -> dict:
        s = settings()
        return statements.build_statements(s.warehouse, s.statements, closed["period"])

    p = period()
    drafted = draft_statements(calculate_period(p))
    final_statements(close_period(p, wait_for_approval(p, drafted)))


monthly_settlement()
