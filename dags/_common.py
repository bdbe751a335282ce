"""What the three DAG files share: settings, assets, the month a run settles, who prepared it,
alerts, the warehouse writers' pool and the run id written on every row a task produces.

Business logic lives in the libraries, and the libraries are imported inside the tasks, never
here: a DAG file is parsed often, by processes that never run a task."""

from __future__ import annotations

import copy
import logging
import os
import re
from datetime import timedelta

import pendulum
from airflow.providers.smtp.notifications.smtp import SmtpNotifier
from airflow.sdk import Asset, Connection, Param, get_current_context
from airflow.sdk.exceptions import AirflowFailException

# Each task says what it did in one line a person understands (captured in the task log).
LOG = logging.getLogger("tributary.operations")

START_DATE = pendulum.datetime(2026, 1, 1, tz="UTC")

# Lineage, upstream to downstream: raw generations -> attribution shares -> the settled month
# -> its statements. Settlement reads the first two (inlets) and produces the last two.
RAW_GENERATIONS = Asset("tributary://warehouse/raw/generations")
ATTRIBUTION_SHARES = Asset("tributary://warehouse/attribution/shares")
SETTLED_MONTH = Asset("tributary://warehouse/settlement/periods")
STATEMENTS = Asset("tributary://statements")

# DuckDB takes one writing process at a time: every task that writes the warehouse takes this
# pool's only slot (created by `make install`: `airflow pools set warehouse_writer 1 ...`), so
# writers queue in Airflow instead of waiting on the file lock inside a running task.
WAREHOUSE_POOL = "warehouse_writer"

# Exactly settlement.inputs.PERIOD_RE (tests/test_operations.py checks they agree): the Trigger
# form and the REST API refuse anything else before a run exists.
PERIOD_PATTERN = r"^(\d{4})-(0[1-9]|1[0-2])$"


def period_param(description: str) -> Param:
    return Param(
        None,
        type=["null", "string"],
        pattern=PERIOD_PATTERN,
        title="Period (YYYY-MM)",
        description=description,
    )


def day_param(description: str) -> Param:
    return Param(
        None,
        type=["null", "string"],
        pattern=r"^\d{4}-\d{2}-\d{2}$",
        format="date",
        title="Day (YYYY-MM-DD)",
        description=description,
    )


# --- alerts: mail through Airflow's SMTP provider (connection `smtp_default`) ----------------
ALERT_TO = [a.strip() for a in os.environ.get("TRIBUTARY_ALERT_TO", "finance-ops@localhost").split(",") if a.strip()]
ALERT_FROM = os.environ.get("TRIBUTARY_ALERT_FROM", "tributary@localhost")


class AlertMail(SmtpNotifier):
    """Airflow's SMTP notifier, except that a mail it cannot send is logged as an error instead
    of failing the task that asked for it: an approval must not fail because the mail server is
    down (or, in the embedded default, not configured)."""

    def __call__(self, *args) -> None:
        # Rendering the templates writes the rendered text onto the notifier: render a copy, so
        # that the one instance every task shares is never left holding another task's text.
        return SmtpNotifier.__call__(copy.copy(self), *args)

    def notify(self, context) -> None:
        try:
            super().notify(context)
            LOG.info("alert mail sent to %s: %s", ", ".join(ALERT_TO), self.subject)
        except Exception as err:  # noqa: BLE001 - any mail failure is reported the same way
            LOG.error("could not send the alert mail %r to %s: %s", self.subject, ", ".join(ALERT_TO), err)


def _mail(subject: str, body: str) -> SmtpNotifier:
    return AlertMail(to=ALERT_TO, from_email=ALERT_FROM, subject=subject, html_content=body)


def failure_mail() -> SmtpNotifier:
    return _mail(
        "[Tributary] {{ dag.dag_id }}.{{ ti.task_id }} failed in run {{ run_id }}",
        "<p>Task <b>{{ dag.dag_id }}.{{ ti.task_id }}</b>"
        "{% if ti.map_index is not none and ti.map_index >= 0 %} [{{ ti.map_index }}]{% endif %}"
        " failed (try {{ ti.try_number }}) in run <code>{{ run_id }}</code>.</p>"
        "<pre>{{ exception }}</pre>"
        "<p>Log: {{ ti.log_url }}</p><p>What to do: docs/runbook.md, section <i>Alerts</i>.</p>",
    )


def approval_waiting_mail() -> SmtpNotifier:
    return _mail(
        "[Tributary] month {{ ti.xcom_pull(task_ids='period') }} waits for a second person's approval",
        "<p>The settlement of <b>{{ ti.xcom_pull(task_ids='period') }}</b> is calculated and waits for a"
        " second person in Airflow's <i>Required Actions</i> (dag {{ dag.dag_id }}, run"
        " <code>{{ run_id }}</code>). The preparer cannot approve.</p><pre>{{ task.body }}</pre>",
    )


def approval_timed_out_mail() -> SmtpNotifier:
    return _mail(
        "[Tributary] nobody approved month {{ ti.xcom_pull(task_ids='period') }} in time",
        "<p>The approval of <b>{{ ti.xcom_pull(task_ids='period') }}</b> (run <code>{{ run_id }}</code>)"
        " timed out without an answer; the month stays calculated and unpaid. Clear the"
        " <code>approval</code> task to ask again (docs/runbook.md, <i>Alerts</i>).</p>",
    )


def deadline_mail_kwargs() -> dict:
    """SmtpNotifier's arguments for the monthly deadline (run by the triggerer, which renders
    them with the dag run as Airflow's REST API shows it)."""
    return {
        "to": ALERT_TO,
        "from_email": ALERT_FROM,
        "subject": "[Tributary] monthly_settlement run {{ dag_run.dag_run_id }} has not closed its month",
        "html_content": "<p>Run <code>{{ dag_run.dag_run_id }}</code> (period "
        "{{ dag_run.conf.period or dag_run.data_interval_start }}) was not finished by its deadline"
        " {{ deadline.deadline_time }}: the month is not closed. See docs/runbook.md, <i>Alerts</i>.</p>",
    }


def close_deadline():
    """The monthly deadline (DeadlineAlert): unless a run has closed its month
    TRIBUTARY_CLOSE_DEADLINE after it was queued (default 9 days: a scheduled run is queued on
    the 1st, so the 10th), mail. "off" leaves it out: `dag.test()` in Airflow 3.3.2 cannot finish
    a run of a DAG that has a deadline (it looks the alert up by an id only the dag-processor
    stores), so the embedded default (sandbox/demo.py, tests) runs without it."""
    setting = os.environ.get("TRIBUTARY_CLOSE_DEADLINE", "9d")
    if setting.strip().lower() == "off":
        return None
    from airflow.sdk import AsyncCallback, DeadlineAlert, DeadlineReference

    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=_duration(setting),
        # run by the triggerer: Airflow's own notifier, importable there (AlertMail lives in dags/)
        callback=AsyncCallback(SmtpNotifier, kwargs=deadline_mail_kwargs()),
    )


def _duration(text: str) -> timedelta:
    """'9d', '36h', '30m', '20s' or a number of seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([dhms]?)\s*", text)
    if not match:
        raise ValueError(f"not a duration: {text!r} (use e.g. 9d, 36h, 30m, 20s)")
    unit = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds", "": "seconds"}[match.group(2)]
    return timedelta(**{unit: float(match.group(1))})


def setting_duration(name: str, default: str) -> timedelta:
    return _duration(os.environ.get(name, default))


DEFAULT_ARGS = {
    # Network calls retry inside the ingest client; a task-level retry covers a lost worker.
    "retries": int(os.environ.get("TRIBUTARY_TASK_RETRIES", "1")),
    "retry_delay": pendulum.duration(seconds=15),
    # No task runs unbounded; attribution shards set their own, longer limit.
    "execution_timeout": setting_duration("TRIBUTARY_TASK_TIMEOUT", "2h"),
    "on_failure_callback": [failure_mail()],
}


def settings():
    from settlement.config import Settings

    return Settings.from_env()


def endpoint(platform_id: str, conn_id: str):
    """Base URL and token come from the Airflow Connection, never from code or logs. No scheme
    means https: PlatformEndpoint refuses plain http to anything but loopback."""
    from settlement.ingest import PlatformEndpoint

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


def run_period(context) -> str:
    """The month a run works on: the `period` param when given (whatever the logical date),
    else the scheduled run's data interval. A manual run without a period fails at once: its
    logical date says nothing reliable about the month (a manual run's inferred interval is the
    month *before* its logical date, and a null logical date has no interval at all)."""
    from settlement import inputs

    given = (context.get("params") or {}).get("period")
    dag_run = context["dag_run"]
    if given:
        try:
            return inputs.period(given)
        except inputs.InputError as err:
            raise AirflowFailException(str(err)) from None
    start = context.get("data_interval_start")
    if _run_type(dag_run) in ("scheduled", "backfill") and start:
        return start.strftime("%Y-%m")
    raise AirflowFailException(
        f"run {dag_run.run_id} names no month: trigger it with the `period` param, e.g. "
        '{"period": "2026-10"} (Trigger form, `airflow dags trigger --conf`, or the REST API\'s "conf"); '
        "only scheduled runs take the month from their data interval"
    )


def preparer(context) -> str:
    """Who prepared the month: the user who triggered the run, or the scheduler's service
    identity for scheduled runs (a service never approves: settlement.identity)."""
    from settlement import identity

    dag_run = context["dag_run"]
    if _run_type(dag_run) in ("scheduled", "asset_triggered"):
        return identity.SCHEDULER
    user = getattr(dag_run, "triggering_user_name", None)
    if not user:
        raise AirflowFailException(f"run {dag_run.run_id} has no triggering user; nobody can be its preparer")
    return user


def _run_type(dag_run) -> str:
    kind = dag_run.run_type
    return str(getattr(kind, "value", kind))
