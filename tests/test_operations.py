"""Operations that never settle the wrong month or fail silently (issue 14), through real
Airflow (`dag.test()` on the project's SQLite metadata database), the sandbox platform's real
HTTP server and a real SMTP server on loopback (aiosmtpd) that receives every alert mail.

One small month (sandbox.demo.SMALL) is taken through what an operator meets, in order, by the
`story` fixture; each test then checks one part of what happened:

1. the platform's token was rotated: the ingest run fails and mails;
2. ingest started on the 2nd (the platform joined mid-month): every later day lands, the 1st
   never does; November is ingested too;
3. November is settled first: stopped, October is not closed;
4. October is settled: stopped, the 1st of October is missing (platform and day named);
5. October is ingested again (the 1st lands) and settled by a manual run whose logical date is
   2026-10-15 and whose `period` is 2026-10, with the snapshot folder broken: the preparer
   (`dag_test`, who triggered it) answers Approve and is refused, the run keeps waiting; a
   second person approves; the close pays out but cannot write the snapshot and fails;
6. the folder is fixed and `sandbox.demo.run_month` (what `make demo` does) runs the month
   again: the close finishes the snapshot, the final statements are written;
7. the scheduler's own dag-run creation, with the clock moved past the month, creates the
   next scheduled runs: no demo run holds their logical dates.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import pytest
from mailbox_server import Mailbox

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.e2e


def _sql(home: Path, sql: str, params=None) -> list[tuple]:
    from settlement.warehouse import warehouse

    with warehouse(home / "warehouse.duckdb", read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def _task_states(run) -> dict[str, str]:
    return {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in run.get_task_instances()}


@pytest.fixture(scope="module")
def story(tmp_path_factory):
    home = tmp_path_factory.mktemp("operations")
    os.environ["TRIBUTARY_HOME"] = str(home)
    if not (Path(os.environ["AIRFLOW_HOME"]) / "airflow.db").exists():
        subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)
    from sandbox import demo, required_actions
    from sandbox.server import SandboxServer
    from settlement import ingest
    from settlement.ingest import PlatformEndpoint

    seen: dict = {}
    cfg = replace(demo.SMALL, audio=None)  # the symbolic platform alone: operations, not audio
    sandbox = demo.build_sandbox(home, cfg)
    demo.register(home, cfg)
    token = secrets.token_urlsafe(24)
    conn_var = f"AIRFLOW_CONN_{demo.CONN_ID.upper()}"

    def connect(port: int, password: str) -> None:
        os.environ[conn_var] = json.dumps(
            {"conn_type": "http", "host": "127.0.0.1", "port": port, "schema": "http", "password": password}
        )

    with Mailbox() as mail, SandboxServer(sandbox["log_path"], sandbox["model_dir"].parent, token) as server:
        os.environ["AIRFLOW_CONN_SMTP_DEFAULT"] = mail.connection()
        dags = demo.load_dags()

        # 1. a rotated token: the ingest run fails, and says so by mail
        connect(server.port, "an-old-token")
        n = len(mail.messages)
        with pytest.raises(RuntimeError, match=r"failed \['pull_window'\]"):
            demo.run_dag(dags["ingest"], "2026-10")
        seen["ingest_failure_mails"] = mail.since(n)
        connect(server.port, token)

        # 2. the platform joined on the 2nd: ingest's daily windows from then on (what the
        # scheduled daily runs pull, here in one call of the function pull_window runs)
        endpoint = PlatformEndpoint(demo.PLATFORM_ID, f"http://127.0.0.1:{server.port}", token)
        ingest.ingest_platform(home / "warehouse.duckdb", home / "lake", endpoint, datetime(2026, 10, 2, tzinfo=UTC),
                               datetime(2026, 11, 1, tzinfo=UTC), run_id="test:joined-on-the-2nd",
                               window=datetime(2026, 10, 2) - datetime(2026, 10, 1))  # fmt: skip
        demo.run_dag(dags["ingest"], "2026-11")
        demo.run_dag(dags["attribute"])

        # 3. November before October
        n = len(mail.messages)
        with pytest.raises(RuntimeError, match=r"failed \['calculate_period'\]"):
            demo.run_dag(dags["settle"], "2026-11")
        seen["november_mails"] = mail.since(n)

        # 4. October with its 1st missing
        n = len(mail.messages)
        with pytest.raises(RuntimeError, match=r"failed \['calculate_period'\]"):
            demo.run_dag(dags["settle"], "2026-10")
        seen["october_gap_mails"] = mail.since(n)
        seen["status_after_gates"] = _sql(home, "SELECT period, status FROM settlement.periods ORDER BY 1")

        # 5. the month made whole, then settled by a manual run dated 2026-10-15
        demo.run_dag(dags["ingest"], "2026-10")
        demo.run_dag(dags["attribute"])
        (home / "snapshots").write_text("not a folder: the snapshot cannot be written\n")
        n = len(mail.messages)
        stop = _answer_twice(required_actions, ["dag_test", "controller"], seen)
        try:
            run = dags["settle"].test(logical_date=datetime(2026, 10, 15, tzinfo=UTC), run_conf={"period": "2026-10"})
        finally:
            stop()
        seen["dated_run"] = {"logical_date": run.logical_date, "state": str(run.state), "tasks": _task_states(run),
                             "xcom_period": _xcom(run, "period")}  # fmt: skip
        seen["approval_mails"] = mail.since(n)
        seen["after_failed_close"] = _sql(
            home, "SELECT p.status, c.snapshot_sha256 FROM settlement.periods p JOIN settlement.closes c USING (period) "
            "WHERE period = '2026-10'")  # fmt: skip

    # 6. the snapshot folder fixed: the demo's own mechanics run the month again
    (home / "snapshots").unlink()
    demo.run_month(home, cfg, sandbox)
    seen["closed"] = _sql(home, "SELECT c.snapshot_path, c.snapshot_sha256, p.calculated_by, a.approved_by "
                                "FROM settlement.closes c JOIN settlement.periods p USING (period) "
                                "JOIN settlement.approvals a USING (period) WHERE period = '2026-10'")  # fmt: skip
    seen["refusals"] = _sql(home, "SELECT period, answered_by, reason FROM settlement.approval_refusals")
    return {"home": home, "seen": seen, "sandbox": sandbox}


def _xcom(run, task_id: str):
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        value = session.scalar(select(XComModel.value).where(
            XComModel.dag_id == run.dag_id, XComModel.run_id == run.run_id,
            XComModel.task_id == task_id, XComModel.key == "return_value",
        ))  # fmt: skip
    return XComModel.deserialize_value(SimpleNamespace(value=value)) if value is not None else None


def _answer_twice(required_actions, users: list[str], seen: dict):
    """Answer Approve as each of `users` in turn, each time the approval waits again; record
    the task's state right after each answer was processed."""
    import threading

    stop = threading.Event()
    seen["answers"] = []

    def watch():
        for user in users:
            deadline = time.monotonic() + 600
            while not stop.is_set() and time.monotonic() < deadline:
                waiting = required_actions.waiting_approvals("monthly_settlement")
                if waiting:
                    required_actions.answer("monthly_settlement", waiting[0], user)
                    seen["answers"].append((user, waiting[0]))
                    time.sleep(3)  # let dag.test resume the task with the answer
                    break
                time.sleep(0.5)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return stop.set


# 1 -------------------------------------------------------------------------------------------


def test_a_failing_ingest_task_sends_a_mail(story):
    mails = story["seen"]["ingest_failure_mails"]
    print(f"\n{len(mails)} mail(s): {[m['subject'] for m in mails]}")
    assert len(mails) == 1
    assert mails[0]["subject"].startswith("[Tributary] ingest_generation_logs.pull_window failed")
    assert "401" in mails[0]["body"] or "token" in mails[0]["body"].lower()
    assert mails[0]["to"] == ["finance-ops@localhost"]


# 3 and 4 -----------------------------------------------------------------------------------


def test_november_before_october_is_stopped(story):
    (mail,) = story["seen"]["november_mails"]
    assert "monthly_settlement.calculate_period failed" in mail["subject"]
    assert "previous_period_open: 2026-10" in mail["body"]
    assert "2026-10 is open, not closed: close it before 2026-11" in mail["body"]
    assert ("2026-11", "open") not in story["seen"]["status_after_gates"]
    assert story["seen"]["status_after_gates"] == []  # neither month was calculated


def test_a_month_with_a_missing_day_is_stopped_naming_platform_and_day(story):
    (mail,) = story["seen"]["october_gap_mails"]
    print(f"\n{mail['body']}")
    assert "ingest_incomplete: sandbox 2026-10-01" in mail["body"]
    assert "platform sandbox has no reconciled ingest window for 2026-10-01" in mail["body"]


# 5 -------------------------------------------------------------------------------------------


def test_a_manual_run_settles_its_period_whatever_its_logical_date(story):
    dated = story["seen"]["dated_run"]
    assert dated["logical_date"] == datetime(2026, 10, 15, tzinfo=UTC)
    assert dated["xcom_period"] == "2026-10"  # not 2026-09, the month before the logical date
    home = story["home"]
    assert _sql(home, "SELECT DISTINCT period FROM settlement.pools") == [("2026-10",)]


def test_the_preparer_is_refused_and_the_approval_keeps_waiting_for_a_second_person(story):
    seen = story["seen"]
    users = [u for u, _ in seen["answers"]]
    assert users == ["dag_test", "controller"]
    assert len({run for _, run in seen["answers"]}) == 1  # both answers went to the same waiting task
    assert seen["dated_run"]["tasks"]["approval"] == "success"  # the refusal did not fail it
    (refusal,) = seen["refusals"]
    assert refusal[:2] == ("2026-10", "dag_test")
    assert "a second person must approve it" in refusal[2]
    (closed,) = seen["closed"]
    assert closed[2:] == ("dag_test", "controller")  # preparer: the user who triggered the run


def test_an_approval_that_waits_sends_a_mail_with_the_amounts(story):
    mails = [m for m in story["seen"]["approval_mails"] if "waits for a second person" in m["subject"]]
    assert len(mails) == 1  # asked once; the refused answer did not mail again
    body = mails[0]["body"]
    pool = _sql(story["home"], "SELECT pool_amount, currency FROM settlement.pools WHERE period = '2026-10'")[0]
    assert f"{pool[0]:.2f} {pool[1]}" in body and "prepared by `dag_test`" in body


def test_a_close_that_failed_writing_its_snapshot_is_finished_by_the_retry(story):
    seen = story["seen"]
    assert seen["dated_run"]["tasks"]["close_period"] == "failed"
    assert seen["dated_run"]["tasks"]["final_statements"] == "upstream_failed"
    assert seen["after_failed_close"] == [("closed", None)]  # paid out, snapshot pending
    (closed,) = seen["closed"]
    snapshot, digest = Path(closed[0]), closed[1]
    import hashlib

    assert digest and hashlib.sha256(snapshot.read_bytes()).hexdigest() == digest
    assert not os.access(snapshot, os.W_OK) or os.geteuid() == 0
    assert not snapshot.stat().st_mode & 0o222
    home = story["home"]
    assert _sql(home, "SELECT count(*) FROM settlement.statement_files WHERE period = '2026-10'")[0][0] > 0


# 7 -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dag_id", "now", "expected"),
    [
        # the month after the demo's: before issue 14 the demo's settlement run held 2026-11-01
        ("monthly_settlement", datetime(2026, 12, 1, 0, 30, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)),
        # a day of the demo's month: the demo's daily ingest runs held 2026-10-02 .. 2026-11-01
        ("ingest_generation_logs", datetime(2026, 10, 3, 0, 30, tzinfo=UTC), datetime(2026, 10, 2, tzinfo=UTC)),
    ],
)
def test_after_the_demo_the_scheduler_creates_the_next_scheduled_run(story, dag_id, now, expected):
    import time_machine
    from airflow.jobs.job import Job
    from airflow.jobs.scheduler_job_runner import SchedulerJobRunner
    from airflow.models.dag import DagModel
    from airflow.models.dagrun import DagRun
    from airflow.models.serialized_dag import SerializedDagModel
    from airflow.utils.session import create_session
    from sqlalchemy import delete, select

    with time_machine.travel(now, tick=False), create_session() as session:
        dag_model = session.get(DagModel, dag_id)
        serdag = SerializedDagModel.get_dag(dag_id, session=session)
        dag_model.calculate_dagrun_date_fields(serdag, reference_run=None)  # what the dag processor computes
        assert dag_model.next_dagrun == expected
        held = session.scalars(select(DagRun).where(DagRun.dag_id == dag_id, DagRun.logical_date == expected)).all()
        assert held == [], f"a run already holds {expected}: {held}"
        runner = SchedulerJobRunner(job=Job())
        runner._create_dag_runs([dag_model], session)
        session.flush()
        created = session.scalars(select(DagRun).where(DagRun.dag_id == dag_id, DagRun.logical_date == expected)).all()
        print(f"\n{dag_id}: next scheduled run {expected:%Y-%m-%d}, created {[(r.run_id, r.run_type) for r in created]}")
        assert [str(getattr(r.run_type, "value", r.run_type)) for r in created] == ["scheduled"]
        session.execute(delete(DagRun).where(DagRun.id.in_([r.id for r in created])))
    manual = _manual_logical_dates()
    assert all(d is None or d.day == 15 for d in manual), manual  # the demo's runs hold no date


def _manual_logical_dates() -> list:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        return list(session.scalars(select(DagRun.logical_date).where(DagRun.run_type == "manual")))


# without the story -------------------------------------------------------------------------------


def test_an_amount_with_nine_decimals_reaches_the_approval_body_unchanged(tmp_path):
    """12345678.123456789 USD: the exact pool of one generation of 12345678123.456789 USD at a
    pool rate of 0.001, through the calculation, the task output (Airflow's XCom serde) and the
    approval body."""
    from airflow.sdk.serde import deserialize, serialize
    from settlement_fixtures import seed_warehouse

    from settlement import calculate, lifecycle, messages
    from settlement.warehouse import warehouse

    db = tmp_path / "w.duckdb"
    seed_warehouse(db, n_generations=1, pool_rate="0.001000")
    with warehouse(db) as con:
        con.execute("UPDATE raw.generations SET revenue_amount = 12345678123.456789")
    result = calculate.calculate_period(db, "2026-10", run_id="calc", by="alice")
    out = deserialize(serialize(messages.calculation_output(result, db, "alice")))  # as XCom stores it
    assert out["platforms"][0]["exact_pool"] == "12345678.123456789 USD"
    assert out["platforms"][0]["pool"] == "12345678.12 USD"
    body = messages.approval_body(db, "2026-10", lifecycle.period_state(db, "2026-10"))
    print(f"\n{body}")
    assert "| 12345678.12 USD | 12345678.123456789 USD |" in body
    assert "revenue" in body and "12345678123.456789 USD" in body
    # what XCom does to a Decimal: the reason task outputs carry text
    assert deserialize(serialize(Decimal("12345678.123456789"))) != Decimal("12345678.123456789")


def test_the_period_param_and_the_libraries_share_one_rule():
    sys.path.insert(0, str(ROOT / "dags"))
    import re

    import _common

    from settlement import inputs

    assert _common.PERIOD_PATTERN == inputs.PERIOD_RE.pattern
    for text in ("2026-10", "2026-01", "2026-12", "2026-13", "2026-1", "26-10", "2026-10-01", ""):
        assert bool(re.match(_common.PERIOD_PATTERN, text)) == bool(inputs.PERIOD_RE.match(text)), text


def test_dag_files_parse_fast_and_pass_ruffs_airflow_rules():
    """Each DAG file parsed on its own, as the dag-processor parses it (Airflow imported
    beforehand): the time is printed, and what must never be imported at parse time is checked
    (torch, pandas, duckdb, the libraries), which is what keeps it well under a second.
    benchmarks/dag_parse.py prints the same numbers outside pytest."""
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "dag_parse.py"), "--json"],
        capture_output=True, text=True, check=True, timeout=300, cwd=ROOT,
    )  # fmt: skip
    report = json.loads(out.stdout.strip().splitlines()[-1])
    for name, r in report.items():
        print(f"{name}: parsed in {r['seconds']:.3f} s, {r['dags']} DAG(s), {r['tasks']} task(s); heavy imports: {r['heavy']}")
        assert r["errors"] == {} and r["dags"] == 1
        assert r["heavy"] == [], f"{name} imports {r['heavy']} at parse time"
    ruff = subprocess.run([str(Path(sys.executable).parent / "ruff"), "check", "--select", "AIR", "--preview", "dags/"],
                          check=False, capture_output=True, text=True, cwd=ROOT)  # fmt: skip
    assert ruff.returncode == 0, ruff.stdout + ruff.stderr


def test_the_order_gate_waived_by_a_person_and_a_month_after_a_later_close(tmp_path):
    """The CLI's `period waive-order` lets November go before October, recorded with who and
    why; once November is closed, October can no longer be settled on its own."""
    from settlement_fixtures import seed_warehouse, table
    from typer.testing import CliRunner

    from settlement import calculate, lifecycle
    from settlement.cli import app

    db = tmp_path / "warehouse.duckdb"
    seed_warehouse(db)  # October has generations; ingest delivered October to December
    with pytest.raises(calculate.QualityGateError, match="previous_period_open: 2026-10: 2026-10 is open"):
        calculate.calculate_period(db, "2026-11", run_id="c11", by="alice")
    env = {"TRIBUTARY_HOME": str(tmp_path)}
    empty = CliRunner().invoke(app, ["period", "waive-order", "2026-11", "--by", "carol", "--reason", " "], env=env)
    assert empty.exit_code == 2 and "say why" in empty.output
    done = CliRunner().invoke(app, ["period", "waive-order", "2026-11", "--by", "Carol", "--reason",
                                    "October settled in the old system"], env=env)  # fmt: skip
    assert done.exit_code == 0, done.output
    waiver = table(db, "SELECT period, previous_period, waived_by, reason FROM settlement.order_waivers")
    assert waiver.values.tolist() == [["2026-11", "2026-10", "carol", "October settled in the old system"]]
    calculate.calculate_period(db, "2026-11", run_id="c11", by="alice")
    lifecycle.approve_period(db, "2026-11", by="bob")
    lifecycle.close_period(db, "2026-11", by="bob", snapshots=None)
    with pytest.raises(calculate.QualityGateError, match="later_period_closed: 2026-11: 2026-11 is already closed"):
        calculate.calculate_period(db, "2026-10", run_id="c10", by="alice")


NO_PERIOD_RUN = """
import sys
sys.path.insert(0, {dags!r})
from monthly_settlement import monthly_settlement
run = monthly_settlement().test(logical_date=None)
print("RUN", run.state, sorted((ti.task_id, str(ti.state)) for ti in run.get_task_instances()))
"""


def test_a_run_without_period_or_interval_fails_at_once_and_metrics_reach_statsd(tmp_path):
    """A manual run with a null logical date and no `period`: its first task fails with the
    message, nothing else runs, the failure is mailed; with the production metrics settings
    (StatsD on, docs/runbook.md "Metrics") Airflow's task metrics reach a UDP listener."""
    import ast
    import shutil

    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.bind(("127.0.0.1", 0))
    listener.settimeout(0.5)
    airflow_home = tmp_path / "airflow"
    airflow_home.mkdir()
    shutil.copyfile(Path(os.environ["AIRFLOW_HOME"]) / "airflow.db", airflow_home / "airflow.db")
    with Mailbox() as mail:
        env = dict(
            os.environ, AIRFLOW_HOME=str(airflow_home), TRIBUTARY_HOME=str(tmp_path / "var"),
            AIRFLOW_CONN_SMTP_DEFAULT=mail.connection(),
            AIRFLOW__METRICS__STATSD_ON="True", AIRFLOW__METRICS__STATSD_HOST="127.0.0.1",
            AIRFLOW__METRICS__STATSD_PORT=str(listener.getsockname()[1]), AIRFLOW__METRICS__STATSD_PREFIX="airflow",
        )  # fmt: skip
        out = subprocess.run([sys.executable, "-c", NO_PERIOD_RUN.format(dags=str(ROOT / "dags"))], env=env,
                             capture_output=True, text=True, timeout=300, check=False, cwd=ROOT)  # fmt: skip
        packets = []
        while True:
            try:
                packets += listener.recv(65536).decode().splitlines()
            except TimeoutError:
                break
        messages = list(mail.messages)
    listener.close()
    summary = next((line for line in out.stdout.splitlines() if line.startswith("RUN ")), out.stdout[-2000:] + out.stderr[-3000:])
    print(f"\n{summary}\n{len(packets)} StatsD packet(s), e.g. {sorted({p.split(':')[0] for p in packets})[:12]}")
    assert summary.lower().startswith(("run failed", "run dagrunstate.failed")), summary
    states = dict(ast.literal_eval(summary.split(" ", 2)[2]))  # the (task, state) pairs printed above
    assert states["period"].lower().endswith("failed")
    assert all(s.lower().endswith("upstream_failed") for t, s in states.items() if t != "period"), states
    (failure,) = messages
    assert "monthly_settlement.period failed" in failure["subject"]
    assert "names no month: trigger it with the `period` param" in failure["body"]
    names = {p.split(":")[0] for p in packets}
    assert any(n.startswith("airflow.ti.start") for n in names), names
    assert any(n.startswith(("airflow.ti.finish", "airflow.operator_failures")) for n in names), names


def test_an_approval_nobody_answers_times_out_and_mails(story, monkeypatch):
    """November (October is closed now) waits for its approval with a 2 s response timeout;
    nobody answers; the scheduler's own awaiting-input timeout sweep (called here as the
    scheduler loop calls it) resumes the task with the timeout, which mails "nobody approved"
    and fails the task (and mails that failure)."""
    import threading

    from airflow.jobs.job import Job
    from airflow.jobs.scheduler_job_runner import SchedulerJobRunner

    from sandbox import demo, required_actions

    monkeypatch.setenv("TRIBUTARY_HOME", str(story["home"]))
    monkeypatch.setenv("TRIBUTARY_APPROVAL_TIMEOUT", "2s")
    swept = threading.Event()

    def sweep_when_parked():
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not required_actions.waiting_approvals("monthly_settlement"):
            time.sleep(0.5)
        time.sleep(3)  # past the 2 s response timeout
        SchedulerJobRunner(job=Job()).check_awaiting_input_timeouts()
        swept.set()

    with Mailbox() as mail:
        monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", mail.connection())
        settle = demo.load_dags()["settle"]  # built now: reads the 2 s timeout
        threading.Thread(target=sweep_when_parked, daemon=True).start()
        run = settle.test(logical_date=None, run_conf={"period": "2026-11"})
        subjects = [m["subject"] for m in mail.messages]
    print(f"\n{_task_states(run)}\n{subjects}")
    assert swept.is_set()
    assert _task_states(run)["approval"] == "failed"
    assert any("nobody approved month 2026-11 in time" in s for s in subjects), subjects
    assert any("monthly_settlement.approval failed" in s for s in subjects), subjects
    assert _sql(story["home"], "SELECT status FROM settlement.periods WHERE period = '2026-11'") == [("calculated",)]
