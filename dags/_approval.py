"""The month's second pair of eyes, as Airflow's own human-in-the-loop ApprovalOperator.

The task parks in Airflow's "Required Actions" (state awaiting_input) with the period's totals
and gate results in its body. Whoever answers is the approver: the four-eyes rule itself lives
in `settlement.lifecycle.approve_period`, so the UI, the REST API and `tributary settle approve`
all enforce the same rule and write the same approval row."""

from __future__ import annotations

from typing import Any

from _common import settings
from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk.exceptions import AirflowFailException

from settlement import lifecycle


def _period(context) -> str:
    return context["data_interval_start"].strftime("%Y-%m")


def _body(state: dict, period: str, calculation: dict | None) -> str:
    calc = calculation or {}
    lines = [
        f"**Period {period}**, calculated by `{state.get('calculated_by')}` (run `{state.get('run_id')}`).",
        "",
        f"- royalty pool: {calc.get('pool', '?')}",
        f"- paid to rights holders: {calc.get('total_paid', '?')}",
        f"- generations: {calc.get('n_generations', '?')}; holders with earnings: {calc.get('holders_with_earnings', '?')}",
        "",
        "All quality gates passed (exceptions, reconciliation, ledger balance).",
        "Draft statements are written; approving releases them and lets the period close.",
        "",
        "The preparer cannot approve: a second person must.",
    ]
    return "\n".join(lines)


class SettlementApprovalOperator(ApprovalOperator):
    """Waits for a second person unless the period was already approved (for example with
    `tributary settle approve` before the DAG got here)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("subject", "Approve royalty settlement {{ data_interval_start.strftime('%Y-%m') }}")
        # A rejection must stop the close, loudly, not skip it quietly: finance reruns after fixing.
        kwargs.setdefault("fail_on_reject", True)
        super().__init__(**kwargs)

    def execute(self, context):
        period = _period(context)
        state = lifecycle.period_state(settings().warehouse, period)
        if state["status"] in ("approved", "closed"):
            self.log.info("period %s is already %s (approved by %s)", period, state["status"], state.get("approved_by"))
            return {"period": period, "approved_by": state.get("approved_by"), "via": "warehouse"}
        self.body = _body(state, period, context["ti"].xcom_pull(task_ids="calculate_period"))
        return super().execute(context)

    def execute_complete(self, context, event: dict[str, Any]) -> Any:
        super().execute_complete(context, event)  # raises on reject (fail_on_reject) or timeout
        period = _period(context)
        user = event.get("responded_by_user") or {}
        by = user.get("name") or user.get("id") or ""
        state = lifecycle.period_state(settings().warehouse, period)
        if state["status"] in ("approved", "closed"):
            # Approved with the CLI while this task waited: that approval stands.
            self.log.info("period %s was already approved; %s's answer is recorded in Airflow only", period, by)
            return {"period": period, "approved_by": state.get("approved_by"), "via": "warehouse"}
        try:
            approved = lifecycle.approve_period(settings().warehouse, period, by=by)
        except lifecycle.LifecycleError as err:
            # Retrying cannot change who answered: an operator clears this task to ask again.
            raise AirflowFailException(f"approval of {period} refused: {err}") from err
        self.log.info("period %s approved by %s", period, by)
        return {"period": period, "approved_by": approved["approved_by"], "via": "airflow"}
