"""The month's second pair of eyes, as Airflow's own human-in-the-loop ApprovalOperator.

The task parks in Airflow's "Required Actions" (state awaiting_input) with the month's amounts
in its body, read from the rows the calculation stored. Whoever answers is the approver: the
four-eyes rule lives in `settlement.lifecycle.approve_period`, so the UI, the REST API and
`tributary settle approve` enforce one rule and write the same rows. An answer the rule refuses
(the preparer's own, a service identity's) is recorded and the task asks again: it parks once
more, with the time left of its original wait, instead of failing the run."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

from _common import approval_timed_out_mail, approval_waiting_mail, settings
from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk.exceptions import TaskAwaitingInput


def approvers(exclude: str) -> list[dict] | None:
    """The approver role: the users listed in TRIBUTARY_APPROVERS (Airflow user ids, comma
    separated), less the preparer, so Airflow itself offers the buttons only to them. Unset:
    anyone allowed to answer Required Actions may answer, and the four-eyes rule still refuses
    the preparer."""
    from settlement import identity

    listed = [u.strip() for u in os.environ.get("TRIBUTARY_APPROVERS", "").split(",") if u.strip()]
    if not listed:
        return None
    return [{"id": u, "name": u} for u in listed if identity.person(u) != identity.person(exclude)]


class SettlementApprovalOperator(ApprovalOperator):
    """Waits for a second person unless the month was already approved (for example with
    `tributary settle approve` before the DAG got here)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("subject", "Approve royalty settlement {{ ti.xcom_pull(task_ids='period') }}")
        # A rejection must stop the close, loudly, not skip it quietly: finance reruns after fixing.
        kwargs.setdefault("fail_on_reject", True)
        kwargs.setdefault("notifiers", [approval_waiting_mail()])
        super().__init__(**kwargs)

    def _period_state(self, context) -> tuple[str, dict]:
        from settlement import lifecycle

        period = context["ti"].xcom_pull(task_ids="period")
        return period, lifecycle.period_state(settings().warehouse, period)

    def execute(self, context):
        from settlement import messages

        period, state = self._period_state(context)
        if state["status"] in ("approved", "closed"):
            self.log.info("period %s is already %s (approved by %s); nothing to ask", period, state["status"], state.get("approved_by"))
            return {"period": period, "approved_by": state.get("approved_by"), "via": "warehouse"}
        self.body = messages.approval_body(settings().warehouse, period, state)
        self.assigned_users = approvers(exclude=state.get("calculated_by") or "")
        respond_by = (datetime.now(UTC) + self.response_timeout).isoformat() if self.response_timeout else None
        self.log.info("asking a second person to approve %s (prepared by %s)%s", period, state.get("calculated_by"),
                      f", answer by {respond_by}" if respond_by else "")  # fmt: skip
        try:
            return super().execute(context)
        except TaskAwaitingInput as parked:  # remember the deadline for a second ask
            raise TaskAwaitingInput(
                method_name=parked.method_name, kwargs={"respond_by": respond_by}, timeout=parked.timeout
            ) from None

    def execute_complete(self, context, event: dict[str, Any], respond_by: str | None = None) -> Any:
        from settlement import lifecycle

        period, state = self._period_state(context)
        if "error" in event:
            if event.get("error_type") == "timeout":
                self.log.error("nobody answered the approval of %s in time", period)
                approval_timed_out_mail()(context)
            return super().execute_complete(context, event)  # raises
        chosen = (event.get("chosen_options") or [None])[0]
        user = event.get("responded_by_user") or {}
        by = user.get("name") or user.get("id") or ""
        if state["status"] in ("approved", "closed"):
            # Approved with the CLI while this task waited: that approval stands.
            self.log.info("period %s was already approved by %s; %s's answer is recorded in Airflow only",
                          period, state.get("approved_by"), by)  # fmt: skip
            return {"period": period, "approved_by": state.get("approved_by"), "via": "warehouse"}
        if chosen == self.APPROVE:
            try:
                approved = lifecycle.approve_period(settings().warehouse, period, by=by)
            except lifecycle.ApprovalRefused as refused:
                self.log.warning("answer of %s refused and recorded: %s; asking again", by, refused)
                self._ask_again(context, respond_by)
            super().execute_complete(context, event)
            self.log.info("approved %s by %s (calculation %s, prepared by %s)", period, approved["approved_by"],
                          approved["run_id"], state.get("calculated_by"))  # fmt: skip
            return {"period": period, "approved_by": approved["approved_by"], "via": "airflow"}
        self.log.warning("%s rejected the settlement of %s; the month stays calculated", by, period)
        return super().execute_complete(context, event)  # fail_on_reject: the task fails

    def _ask_again(self, context, respond_by: str | None) -> None:
        """Clear the refused answer (Airflow keeps one answer per task) and park again for the
        time left of the first wait."""
        from airflow.sdk.execution_time.hitl import upsert_hitl_detail

        upsert_hitl_detail(
            ti_id=context["task_instance"].id, options=self.options, subject=self.subject, body=self.body,
            defaults=self.defaults, multiple=self.multiple, params=self.serialized_params,
            assigned_users=self.assigned_users,
        )  # fmt: skip
        timeout = None
        if respond_by:
            timeout = max(datetime.fromisoformat(respond_by) - datetime.now(UTC), timedelta(seconds=1))
        raise TaskAwaitingInput(method_name="execute_complete", kwargs={"respond_by": respond_by}, timeout=timeout)
