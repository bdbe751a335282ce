"""Settle one calendar month: calculate, stop on exceptions, wait for a second person's
approval, close (payouts, carry-forward, read-only snapshot), write the statements."""

from __future__ import annotations

from datetime import timedelta

from _approval import SettlementApprovalOperator
from _common import DEFAULT_ARGS, START_DATE, settings, task_run_id
from airflow.sdk import dag, get_current_context, task
from airflow.timetables.interval import CronDataIntervalTimetable

from settlement import calculate, lifecycle, statements


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

    # A second person answers in Airflow's Required Actions (UI or REST API); the preparer's
    # own answer is refused by the same rule `tributary settle approve` enforces.
    approval = SettlementApprovalOperator(task_id="approval", response_timeout=timedelta(days=7), retries=0)

    @task
    def close_period(period: str, _approved: dict) -> dict:
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
    draft_statements(calculate_period(p)) >> approval
    final_statements(close_period(p, approval.output))


monthly_settlement()
