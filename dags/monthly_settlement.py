"""Settle one calendar month: name the month, wait until its ingest and attribution are done,
calculate (stopping on any exception: incomplete month, previous month open, bad reference
data), draft statements, wait for a second person's approval, close (payouts, carry-forward,
read-only snapshot), write the final statements.

Scheduled runs settle the month of their data interval; a manual run must say which month with
the `period` param (a null logical date is fine: the month never comes from the clock)."""

from __future__ import annotations

from _approval import SettlementApprovalOperator
from _common import (
    ATTRIBUTION_SHARES,
    DEFAULT_ARGS,
    LOG,
    RAW_GENERATIONS,
    SETTLED_MONTH,
    START_DATE,
    STATEMENTS,
    WAREHOUSE_POOL,
    close_deadline,
    period_param,
    preparer,
    run_period,
    setting_duration,
    settings,
    task_run_id,
)
from airflow.sdk import PokeReturnValue, dag, task
from airflow.timetables.interval import CronDataIntervalTimetable


@dag(
    schedule=CronDataIntervalTimetable("0 0 1 * *", timezone="UTC"),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["tributary", "settlement"],
    doc_md=__doc__,
    params={"period": period_param("The month to settle, YYYY-MM. Required for a manual run.")},
    # A scheduled run is queued on the 1st just after midnight for the month before: unless it
    # has closed that month TRIBUTARY_CLOSE_DEADLINE later (default 9 days: the 10th), mail.
    deadline=close_deadline(),
)
def monthly_settlement():
    @task(retries=0)  # a run that names no month never will: fail at once, no retry
    def period() -> str:
        from airflow.sdk import get_current_context

        month = run_period(get_current_context())
        LOG.info("settling %s", month)
        return month

    # Waits on the warehouse, not the clock: ingest past the month's end for every platform
    # under contract, and every generation of the month attributed or rejected.
    @task.sensor(
        inlets=[RAW_GENERATIONS, ATTRIBUTION_SHARES],
        mode="reschedule",
        poke_interval=setting_duration("TRIBUTARY_INPUTS_POKE", "10m").total_seconds(),
        timeout=setting_duration("TRIBUTARY_INPUTS_TIMEOUT", "3d").total_seconds(),
    )
    def month_inputs_complete(period: str) -> PokeReturnValue:
        from settlement import lifecycle, messages

        if lifecycle.period_state(settings().warehouse, period)["status"] == "closed":
            LOG.info("%s is closed: nothing to wait for", period)
            return PokeReturnValue(is_done=True)
        pending = messages.inputs_pending(settings().warehouse, period)
        for row in pending:
            LOG.info("waiting for %s: %s", row["waiting_for"], row["detail"])
        if not pending:
            LOG.info("%s: ingest is past the month for every platform under contract, every generation attributed or rejected", period)
        return PokeReturnValue(is_done=not pending)

    @task(multiple_outputs=False, retries=0, pool=WAREHOUSE_POOL)  # a failed gate needs a person, not a retry
    def calculate_period(period: str) -> dict:
        from airflow.sdk import get_current_context

        from settlement import calculate, messages

        by = preparer(get_current_context())
        result = calculate.calculate_period(settings().warehouse, period, run_id=task_run_id(), by=by, closed_ok=True)
        out = messages.calculation_output(result, settings().warehouse, by)
        LOG.info("%s", out["summary"])
        return out

    # Holders' monitoring rules on the month just calculated: alerts stored once and mailed;
    # nothing downstream waits on it, and a mail problem is recorded, not raised.
    @task(multiple_outputs=False, retries=0, pool=WAREHOUSE_POOL)
    def holder_alerts(calculation: dict) -> dict:
        from settlement import alerts, messages

        result = alerts.evaluate(settings().warehouse, calculation["period"])
        LOG.info("holder alerts: %s", result)
        return messages.plain(result)

    @task(multiple_outputs=False, pool=WAREHOUSE_POOL)
    def draft_statements(calculation: dict) -> dict:
        from settlement import messages, statements

        s = settings()
        result = statements.build_statements(s.warehouse, s.statements, calculation["period"])
        LOG.info("%s", messages.statements_line(result, final=False))
        return messages.plain(result)

    # A second person answers in Airflow's Required Actions (UI or REST API); the preparer's
    # own answer is refused, recorded, and the question asked again.
    approval = SettlementApprovalOperator(
        task_id="approval", response_timeout=setting_duration("TRIBUTARY_APPROVAL_TIMEOUT", "7d"), retries=0
    )

    @task(multiple_outputs=False, pool=WAREHOUSE_POOL, outlets=[SETTLED_MONTH])
    def close_period(period: str, _approved: dict) -> dict:
        # Always the lifecycle's close: it finishes whichever step an earlier attempt did not
        # (payouts, snapshot), so "closed" is never reported with a step missing.
        from settlement import lifecycle, messages

        s = settings()
        # deliver_to: the final statements are written and each holder contact is mailed; a mail
        # problem is recorded (finance report, `tributary deliveries list`), never fails the close
        closed = lifecycle.close_period(s.warehouse, period, by="monthly_settlement", snapshots=s.home / "snapshots",
                                        deliver_to=s.statements)
        LOG.info("%s", messages.close_line(closed, s.warehouse))
        LOG.info("statement mails: %s", closed.get("deliveries"))
        return messages.plain(closed)

    @task(multiple_outputs=False, pool=WAREHOUSE_POOL, outlets=[STATEMENTS])
    def final_statements(closed: dict) -> dict:
        from settlement import messages, statements

        s = settings()
        result = statements.build_statements(s.warehouse, s.statements, closed["period"])
        LOG.info("%s", messages.statements_line(result, final=True))
        return messages.plain(result)

    p = period()
    calculation = calculate_period(p)
    month_inputs_complete(p) >> calculation
    draft_statements(calculation) >> approval
    holder_alerts(calculation)
    final_statements(close_period(p, approval.output))


monthly_settlement()
