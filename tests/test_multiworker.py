"""Multi-worker Airflow: the same month, the same DAGs, on a real PostgreSQL metadata database
and a parallel executor, settles to the cent like the embedded default.

(a) the embedded default: sandbox.demo.run_month with the SMALL config (its symbolic platform), i.e. what
    `python -m sandbox.demo --small` runs (dag.test on SQLite), in its own AIRFLOW_HOME and
    TRIBUTARY_HOME, at the same time as (b) and on a byte-identical copy of the same sandbox
    (catalog, model, generation log), built once;
(b) PostgreSQL from the distribution's packages on loopback (scripts/postgres_local.py), Airflow
    with LocalExecutor and `parallelism` >= 2 worker processes, run as an operator runs it:
    `airflow api-server`, `scheduler`, `dag-processor` and `triggerer` as separate processes,
    runs triggered through the public REST API by `ops` with the `period` param and a null
    logical date; `ops` answers Approve first (the preparer: refused, recorded, the approval
    keeps waiting), the month's deadline (shortened to seconds) passes and mails, then the
    second user, `controller`, approves. Alert mails go to a real SMTP server on loopback.

Both warehouses are then compared (pool, per-holder totals, statement lines, ledger), and the
attribution shards' start/end times are read from PostgreSQL to show they ran at the same
time on different worker processes. How to run it by hand: docs/multiworker.md.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from mailbox_server import Mailbox

ROOT = Path(__file__).resolve().parents[1]
PG_SCRIPT = ROOT / "scripts" / "postgres_local.py"
pytestmark = pytest.mark.e2e

PERIOD = "2026-10"
# Worker processes. 3, not 2: a task's process lingers a few seconds after it has reported
# success (log upload, teardown) and holds its worker meanwhile, so with 2 the second shard
# waited for plan_shards' worker to come free.
PARALLELISM = int(os.environ.get("TRIBUTARY_MW_PARALLELISM", "3"))
# SMALL has 60 generations; 30 per shard gives two attribution shards to run at once.
SHARD_SIZE = int(os.environ.get("TRIBUTARY_MW_SHARD_SIZE", "30"))
RUN_TIMEOUT_S = 900
# LocalExecutor race (Airflow 3.3.2): an answer that lands before the scheduler has read the
# executor event of the worker that parked the task (well under a scheduler loop) has the
# resumed task marked failed ("finished with state success, but ... state attribute is
# queued"). A person never answers that fast; the test waits this long after the park.
HITL_SETTLE_S = 5.0
# The monthly deadline (normally 9 days after the run is queued), shortened so that it passes
# while the approval waits: the scheduler marks it missed, the triggerer mails.
DEADLINE_S = int(os.environ.get("TRIBUTARY_MW_DEADLINE_S", "20"))
USERS = {"ops": "admin", "controller": "admin"}  # ops triggers runs, controller approves
PREPARER, APPROVER = "ops", "controller"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _clean_env(**extra: str) -> dict[str, str]:
    """The parent's environment without any Airflow setting (conftest points AIRFLOW_HOME at
    the project's shared .airflow/, which this test must never touch) or Tributary home."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "TRIBUTARY_"))}
    env.update(
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "dags"),
        TRIBUTARY_TASK_RETRIES="0",
        TRIBUTARY_SHARD_SIZE=str(SHARD_SIZE),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def _tail(path: Path, n: int = 4000) -> str:
    try:
        return f"--- {path.name} ---\n" + path.read_text(errors="replace")[-n:]
    except OSError:
        return f"--- {path.name}: unreadable ---"


def _kill_group(proc: subprocess.Popen, grace_s: float = 20) -> None:
    """SIGTERM the process group we started (start_new_session), then SIGKILL what is left."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # workers and task processes of the same group
    except ProcessLookupError:
        pass
    proc.wait(timeout=10)


# -- PostgreSQL ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def postgres():
    found = subprocess.run([sys.executable, str(PG_SCRIPT), "bindir"], check=False, capture_output=True, text=True)
    if found.returncode != 0:
        reason = "PostgreSQL server binaries not found: " + found.stderr.strip()
        if os.environ.get("CI"):  # .ci/run installs them: missing there is a broken CI, not a skip
            pytest.fail(reason)
        pytest.skip(reason)
    # Directly under /tmp: the server runs as the `postgres` user when we are root, and pytest's
    # tmp_path (under /tmp/pytest-of-root, mode 0700) is not reachable by that user.
    root = Path(tempfile.mkdtemp(prefix="tributary-pg-", dir="/tmp"))
    try:
        out = subprocess.run(
            [sys.executable, str(PG_SCRIPT), "start", str(root), "--no-fsync", "--json"],
            check=False, capture_output=True, text=True, timeout=180,
        )  # fmt: skip
        assert out.returncode == 0, f"postgres_local start failed:\n{out.stdout}\n{out.stderr}"
        yield json.loads(out.stdout)
    finally:
        subprocess.run([sys.executable, str(PG_SCRIPT), "stop", str(root)], check=False, capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


# -- (a) the embedded default ----------------------------------------------------------------

# What `make demo --small` does after building the sandbox: sandbox.demo.run_month, i.e. the
# three DAGs through dag.test() on SQLite, the approval answered in Airflow's Required Actions.
EMBEDDED_SCRIPT = """
import dataclasses, json, logging, sys
from datetime import datetime
from pathlib import Path
logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
from sandbox import demo
home, sb = Path(sys.argv[1]), json.loads(sys.argv[2])
sandbox = {"model_dir": Path(sb["model_dir"]), "log_path": Path(sb["log_path"]),
           "start": datetime.fromisoformat(sb["start"]), "end": datetime.fromisoformat(sb["end"])}
cfg = dataclasses.replace(demo.SMALL, audio=None)
print("embedded timings", json.dumps(demo.run_month(home, cfg, sandbox)), flush=True)
"""

SEED_SCRIPT = """
import dataclasses, logging, sys
from pathlib import Path
logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
from sandbox import demo
demo.build_sandbox(Path(sys.argv[1]), dataclasses.replace(demo.SMALL, audio=None))
"""


def _popen(argv: list[str], env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True
    )


def _sandbox_in(home: Path, seed: Path) -> dict:
    """The seed's catalog, rights and platform (model + generation log), byte for byte."""
    from sandbox import demo

    for part in ("catalog", "platform"):
        shutil.copytree(seed / part, home / part)
    platform_root = home / "platform" / demo.PLATFORM_ID
    version = json.loads((platform_root / "models" / "LATEST.json").read_text())["model_version"]
    start = demo._month(PERIOD)[0]
    return {
        "model_dir": platform_root / "models" / version,
        "log_path": platform_root / f"generations-{PERIOD}.jsonl",
        "start": start,
        "end": start + timedelta(days=demo.SMALL.days),
    }


# -- (b) Airflow on PostgreSQL with LocalExecutor ----------------------------------------------


class Stack:
    """api-server, scheduler (LocalExecutor), dag-processor and triggerer on one PostgreSQL DB."""

    COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")

    def __init__(self, base: Path, pg: dict, tributary_home: Path, smtp_connection: str):
        self.base = base
        self.af_home = base / "airflow"
        self.af_home.mkdir(parents=True)
        self.home = tributary_home
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.passwords = {u: secrets.token_urlsafe(12) for u in USERS}
        pw_file = self.af_home / "passwords.json"
        pw_file.write_text(json.dumps(self.passwords))
        from cryptography.fernet import Fernet

        self.env = _clean_env(
            AIRFLOW_HOME=str(self.af_home),
            AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=pg["url"],
            AIRFLOW__CORE__EXECUTOR="LocalExecutor",
            AIRFLOW__CORE__PARALLELISM=str(PARALLELISM),
            AIRFLOW__CORE__FERNET_KEY=Fernet.generate_key().decode(),
            # Every task process imports torch while parsing its DAG file: on 2 busy cores that
            # can pass the 30 s default, and the task would be rescheduled.
            AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT="300",
            AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="False",
            # Parsed once at start; re-parsing every 30 s (the default) only costs CPU here.
            AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL="600",
            # Runs come only from the REST API, in the embedded default's order: no cron run for
            # "yesterday" and no asset-triggered attribution run after each ingest day.
            AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE="False",
            AIRFLOW__API__HOST="127.0.0.1",
            AIRFLOW__API__PORT=str(self.port),
            AIRFLOW__API__BASE_URL=self.url,
            AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"{self.url}/execution/",
            AIRFLOW__API_AUTH__JWT_SECRET=secrets.token_urlsafe(32),
            AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS=",".join(f"{u}:{r}" for u, r in USERS.items()),
            AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=str(pw_file),
            AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=str(_free_port()),
            AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT=str(_free_port()),
            TRIBUTARY_HOME=str(tributary_home),
            AIRFLOW_CONN_SMTP_DEFAULT=smtp_connection,
            TRIBUTARY_CLOSE_DEADLINE=f"{DEADLINE_S}s",
        )
        self.procs: dict[str, subprocess.Popen] = {}
        self.tokens: dict[str, str] = {}

    def log(self, component: str) -> Path:
        return self.base / f"{component}.log"

    def tails(self) -> str:
        return "\n".join(_tail(self.log(c), 3000) for c in self.COMPONENTS)

    def migrate(self) -> None:
        out = subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"], env=self.env, cwd=ROOT, check=False,
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert out.returncode == 0, f"airflow db migrate on PostgreSQL failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"

    def start(self) -> None:
        for c in self.COMPONENTS:
            self.procs[c] = subprocess.Popen(
                [sys.executable, "-m", "airflow", c], env=self.env, cwd=ROOT,
                stdout=self.log(c).open("w"), stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip

    def stop(self) -> None:
        # The scheduler first: its LocalExecutor workers and their task processes go with it.
        for c in ("scheduler", "triggerer", "dag-processor", "api-server"):
            if c in self.procs:
                _kill_group(self.procs[c])

    def _check_alive(self) -> None:
        for c, p in self.procs.items():
            if p.poll() is not None:
                raise AssertionError(f"airflow {c} exited with {p.returncode}\n{_tail(self.log(c))}")

    def wait_ready(self, dag_ids: tuple[str, ...], timeout_s: float = 300) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                health = requests.get(f"{self.url}/api/v2/monitor/health", timeout=5).json()
                healthy = all(
                    (health.get(k) or {}).get("status") == "healthy"
                    for k in ("metadatabase", "scheduler", "dag_processor", "triggerer")
                )
                if healthy:
                    dags = self.api("ops", "GET", "/api/v2/dags", params={"limit": 100}).json()["dags"]
                    if set(dag_ids) <= {d["dag_id"] for d in dags if not d["is_paused"]}:
                        return
            except (requests.RequestException, KeyError, ValueError):
                pass
            time.sleep(2)
        raise AssertionError(f"Airflow on PostgreSQL not ready in {timeout_s}s\n{self.tails()}")

    def token(self, user: str) -> str:
        if user not in self.tokens:
            r = requests.post(
                f"{self.url}/auth/token", json={"username": user, "password": self.passwords[user]}, timeout=30
            )
            assert r.status_code in (200, 201), f"token for {user}: {r.status_code} {r.text}"
            self.tokens[user] = r.json()["access_token"]
        return self.tokens[user]

    def api(self, user: str, method: str, path: str, **kw) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token(user)}"}
        return requests.request(method, f"{self.url}{path}", headers=headers, timeout=60, **kw)

    def trigger(self, dag_id: str, run_id: str, period: str | None = None) -> None:
        """As an operator triggers: the month in the `period` param, no logical date."""
        body = {"dag_run_id": run_id, "logical_date": None, "conf": {"period": period} if period else {}}
        r = self.api("ops", "POST", f"/api/v2/dags/{dag_id}/dagRuns", json=body)
        assert r.status_code == 200, f"trigger {dag_id}: {r.status_code} {r.text}"

    def task_states(self, dag_id: str, run_id: str) -> dict[tuple[str, int], str]:
        r = self.api("ops", "GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 1000})
        return {(t["task_id"], t["map_index"]): t["state"] for t in r.json()["task_instances"]}

    def wait_run(self, dag_id: str, run_id: str, on_poll=None, timeout_s: float = RUN_TIMEOUT_S) -> float:
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout_s:
            self._check_alive()
            state = self.api("ops", "GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}").json()["state"]
            if state == "success":
                return time.monotonic() - t0
            if state == "failed":
                raise AssertionError(f"{dag_id} {run_id} failed: {self.task_states(dag_id, run_id)}\n{self.task_logs(dag_id, run_id)}")
            if on_poll:
                on_poll(self.task_states(dag_id, run_id))
            time.sleep(1)
        raise AssertionError(f"{dag_id} {run_id} not done in {timeout_s}s: {self.task_states(dag_id, run_id)}\n{self.tails()}")

    def task_logs(self, dag_id: str, run_id: str) -> str:
        folder = self.af_home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}"
        return "\n".join(_tail(p, 3000) for p in sorted(folder.rglob("*.log"))[-4:]) if folder.exists() else ""


class Approver:
    """Answers the HITL `approval` task through the public REST API: first as the preparer
    (`ops`, who triggered the run: refused, the task parks again), then, once the month's
    deadline mail has arrived, as the second person."""

    def __init__(self, stack: Stack, dag_id: str, run_id: str, mailbox):
        self.stack, self.dag_id, self.run_id, self.mailbox = stack, dag_id, run_id, mailbox
        self.parked_since: float | None = None
        self.answers: list[tuple[str, int, str]] = []  # (user, HTTP status, task state before)
        self.via: str | None = None

    def _answer(self, user: str, state: str) -> None:
        r = self.stack.api(
            user, "PATCH",
            f"/api/v2/dags/{self.dag_id}/dagRuns/{self.run_id}/taskInstances/approval/-1/hitlDetails",
            json={"chosen_options": ["Approve"]},
        )  # fmt: skip
        assert r.status_code == 200, f"HITL answer by {user}: {r.status_code} {r.text}"
        assert r.json()["responded_by"]["name"] == user
        self.answers.append((user, r.status_code, state))
        self.parked_since = None

    def __call__(self, states: dict[tuple[str, int], str]) -> None:
        state = states.get(("approval", -1))
        if self.via or state != "awaiting_input":
            self.parked_since = None
            return
        self.parked_since = self.parked_since or time.monotonic()
        if time.monotonic() - self.parked_since < HITL_SETTLE_S:
            return
        if not self.answers:
            self._answer(PREPARER, state)
        elif any("has not closed its month" in m["subject"] for m in self.mailbox.messages):
            self._answer(APPROVER, state)
            self.via = "rest-api-hitl"


@pytest.fixture(scope="module")
def months(tmp_path_factory, postgres):
    """Runs (a) and (b) side by side on the same sandbox; returns both homes and what (b)
    measured in PostgreSQL."""
    from sandbox import demo
    from sandbox.server import SandboxServer

    base = tmp_path_factory.mktemp("multiworker")
    timings: dict[str, float] = {}
    t_all = time.monotonic()
    seed = base / "seed"
    home_a, af_a = base / "embedded" / "tributary", base / "embedded" / "airflow"
    home_b = base / "multiworker" / "tributary"
    for d in (seed, home_a, af_a, home_b):
        d.mkdir(parents=True)
    env_a = _clean_env(AIRFLOW_HOME=str(af_a), TRIBUTARY_HOME=str(home_a))
    procs = {
        "seed": _popen([sys.executable, "-c", SEED_SCRIPT, str(seed)], _clean_env(), base / "seed.log"),
        "embedded-migrate": _popen([sys.executable, "-m", "airflow", "db", "migrate"], env_a, base / "embedded-migrate.log"),
    }  # fmt: skip
    mailbox = Mailbox().__enter__()
    stack = Stack(base / "multiworker", postgres, home_b, mailbox.connection())
    server = None

    def finish(name: str, timeout_s: float = 1800) -> None:
        rc = procs[name].wait(timeout=timeout_s)
        assert rc == 0, f"{name} failed (exit {rc})\n{_tail(base / f'{name}.log', 6000)}"

    try:
        # Catalog + model (once, shared), SQLite for (a) and the PostgreSQL stack, all at once.
        t0 = time.monotonic()
        stack.migrate()
        stack.start()
        stack.wait_ready(("ingest_generation_logs", "attribute_generations", "monthly_settlement"))
        timings["stack_ready_s"] = time.monotonic() - t0
        finish("seed")
        finish("embedded-migrate")
        timings["seed_and_setup_s"] = time.monotonic() - t_all

        sandbox_a, sandbox = _sandbox_in(home_a, seed), _sandbox_in(home_b, seed)
        args = json.dumps({k: str(v) if isinstance(v, Path) else v.isoformat() for k, v in sandbox_a.items()})
        procs["embedded"] = _popen([sys.executable, "-c", EMBEDDED_SCRIPT, str(home_a), args], env_a, base / "embedded.log")

        demo.register(home_b, replace(demo.SMALL, audio=None))  # the symbolic platform, as in (a)
        token = secrets.token_urlsafe(24)
        server = SandboxServer(sandbox["log_path"], sandbox["model_dir"].parent, token).__enter__()
        r = stack.api(
            "ops", "POST", "/api/v2/connections",
            json={"connection_id": demo.CONN_ID, "conn_type": "http", "host": "127.0.0.1", "port": server.port,
                  "schema": "http", "password": token},
        )  # fmt: skip
        assert r.status_code == 201, f"create connection: {r.status_code} {r.text}"
        # DuckDB's writers take turns in Airflow: the pool every warehouse-writing task names
        r = stack.api("ops", "POST", "/api/v2/pools", json={"name": "warehouse_writer", "slots": 1})
        assert r.status_code == 201, f"create pool: {r.status_code} {r.text}"

        t_b = t0 = time.monotonic()
        stack.trigger("ingest_generation_logs", f"ingest__{PERIOD}", PERIOD)  # the month, day by day
        stack.wait_run("ingest_generation_logs", f"ingest__{PERIOD}")
        timings["multiworker_ingest_s"] = time.monotonic() - t0

        t0 = time.monotonic()
        attribute_run = f"attribute__{PERIOD}"
        stack.trigger("attribute_generations", attribute_run)
        stack.wait_run("attribute_generations", attribute_run)
        timings["multiworker_attribute_s"] = time.monotonic() - t0
        server.__exit__(None, None, None)
        server = None

        t0 = time.monotonic()
        settle_run = f"settle__{PERIOD}"
        stack.trigger("monthly_settlement", settle_run, PERIOD)
        approver = Approver(stack, "monthly_settlement", settle_run, mailbox)
        stack.wait_run("monthly_settlement", settle_run, on_poll=approver)
        timings["multiworker_settle_s"] = time.monotonic() - t0
        timings["multiworker_month_s"] = time.monotonic() - t_b
        assert approver.via, "the run settled without anyone approving it"

        finish("embedded")
        found = re.search(r"embedded timings (\{.*\})", (base / "embedded.log").read_text(errors="replace"))
        assert found, _tail(base / "embedded.log")
        timings |= {f"embedded_{k}": v for k, v in json.loads(found.group(1)).items()}
        timings["total_s"] = time.monotonic() - t_all

        shards = _shard_times(postgres["url"], attribute_run)
        scheduler_log = stack.log("scheduler").read_text(errors="replace")
        yield {
            "home_a": home_a, "home_b": home_b, "shards": shards, "scheduler_log": scheduler_log,
            "approved_via": approver.via, "answers": approver.answers, "mails": list(mailbox.messages),
            "timings": timings, "pg_url": postgres["url"],
        }  # fmt: skip
    finally:
        mailbox.__exit__(None, None, None)
        if server is not None:
            server.__exit__(None, None, None)
        for p in procs.values():
            _kill_group(p, grace_s=5)
        stack.stop()


def _shard_times(pg_url: str, run_id: str) -> list[dict]:
    import sqlalchemy as sa

    engine = sa.create_engine(pg_url)
    try:
        with engine.connect() as con:
            rows = con.execute(
                sa.text(
                    "SELECT ti.map_index, ti.state, ti.start_date, ti.end_date, ti.pid, ti.hostname,"
                    " ti.try_number, j.job_type, j.hostname AS scheduler_host"
                    " FROM task_instance AS ti LEFT JOIN job AS j ON j.id = ti.queued_by_job_id"
                    " WHERE ti.dag_id = 'attribute_generations' AND ti.task_id = 'attribute_shard'"
                    " AND ti.run_id = :run_id ORDER BY ti.map_index"
                ),
                {"run_id": run_id},
            ).mappings()
            return [dict(r) for r in rows]
    finally:
        engine.dispose()


# -- comparisons -------------------------------------------------------------------------------


def _rows(home: Path, sql: str) -> list[tuple]:
    import duckdb

    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute(sql, [PERIOD] if "?" in sql else []).fetchall()
    finally:
        con.close()


MONEY = {
    "pool": "SELECT platform_id, contract_id, currency, n_generations, revenue, pool_amount"
    " FROM settlement.pools WHERE period = ? ORDER BY ALL",
    "holder totals": "SELECT platform_id, rights_holder_id, currency, amount"
    " FROM settlement.holder_totals WHERE period = ? ORDER BY ALL",
    "statement lines": "SELECT platform_id, rights_holder_id, work_id, right_type, n_generations, currency, amount"
    " FROM settlement.statement_lines WHERE period = ? ORDER BY ALL",
    "ledger by account": "SELECT account, currency, sum(amount), count(*)"
    " FROM ledger.postings WHERE period = ? GROUP BY ALL ORDER BY ALL",
}


def test_multiworker_month_matches_the_embedded_default_to_the_cent(months):
    from sandbox.demo import report

    a, b = report(months["home_a"], PERIOD), report(months["home_b"], PERIOD)
    timings = ", ".join(f"{k}={v:.1f}" for k, v in months["timings"].items())
    print(f"\nembedded default: {a}\nmulti-worker:     {b}\ntimings (s): {timings}")
    assert a["status"] == b["status"] == "closed"
    assert a["pool"] > 0 and a["pool"] == a["total_paid"]
    assert b == a
    for name, sql in MONEY.items():
        rows_a, rows_b = _rows(months["home_a"], sql), _rows(months["home_b"], sql)
        assert rows_a, name
        assert rows_b == rows_a, f"{name} differ between the embedded default and the multi-worker run"
    pool = _rows(months["home_b"], MONEY["pool"])[0][-1]
    holders = _rows(months["home_b"], MONEY["holder totals"])
    assert sum(r[-1] for r in holders) == pool
    print(f"pool {pool}, {len(holders)} holders, sum {sum(r[-1] for r in holders)}: equal on both")
    # Attribution itself (floats): informative, the money above is what must match.
    shares = "SELECT generation_id, work_id, share FROM attribution.shares ORDER BY generation_id, work_id"
    sa_, sb_ = _rows(months["home_a"], shares), _rows(months["home_b"], shares)
    same_keys = [r[:2] for r in sa_] == [r[:2] for r in sb_]
    diff = max((abs(x[2] - y[2]) for x, y in zip(sa_, sb_, strict=True)), default=0.0) if same_keys else None
    print(f"attribution shares: {len(sa_)} rows, same (generation, work) pairs: {same_keys}, max |share diff|: {diff}")


def test_attribution_shards_ran_in_parallel_on_local_executor_workers(months):
    shards = months["shards"]
    print(f"\nattribution shards (from the PostgreSQL metadata DB): {shards}")
    assert len(shards) >= 2, f"expected >= 2 shards with TRIBUTARY_SHARD_SIZE={SHARD_SIZE}: {shards}"
    assert all(s["state"] == "success" for s in shards)
    assert all(s["job_type"] == "SchedulerJob" for s in shards), "queued by the scheduler process"
    overlaps = []
    for i, x in enumerate(shards):
        for y in shards[i + 1 :]:
            seconds = (min(x["end_date"], y["end_date"]) - max(x["start_date"], y["start_date"])).total_seconds()
            overlaps.append((x["map_index"], y["map_index"], seconds))
    # Most shards running at one moment: a sweep over start (+1) and end (-1) events.
    events = sorted([(s["start_date"], 1) for s in shards] + [(s["end_date"], -1) for s in shards], key=lambda e: (e[0], e[1]))
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    print(f"pairwise overlap (shard, shard, seconds): {overlaps}; peak concurrent shards: {peak}")
    assert max(o[2] for o in overlaps) > 0, f"no two shards overlapped in time: {overlaps}"
    assert peak >= 2
    overlapping = {i for o in overlaps if o[2] > 0 for i in o[:2]}
    pids = {s["pid"] for s in shards if s["map_index"] in overlapping}
    assert len(pids) == len(overlapping), f"overlapping shards must run in different processes: {shards}"
    # The executor that ran them: the scheduler logs each hand-over with its executor.
    handed = re.findall(r"Trying to enqueue tasks: \[(.*?)\] for executor: (\w+)\(parallelism=(\d+)\)", months["scheduler_log"])
    shard_handovers = [(ex, int(par)) for tis, ex, par in handed if "attribute_shard" in tis]
    assert shard_handovers, "no hand-over of attribute_shard found in the scheduler log"
    assert {ex for ex, _ in shard_handovers} == {"LocalExecutor"}
    assert min(par for _, par in shard_handovers) >= 2


def test_the_approver_is_the_second_user_not_the_preparer(months):
    (row,) = _rows(
        months["home_b"],
        "SELECT p.calculated_by, a.approved_by FROM settlement.periods AS p"
        " JOIN settlement.approvals AS a ON a.period = p.period AND a.run_id = p.run_id WHERE p.period = ?",
    )
    print(f"\napproval via {months['approved_via']}: calculated by {row[0]}, approved by {row[1]}; "
          f"answers {months['answers']}")
    assert row == (PREPARER, APPROVER)  # the preparer is whoever triggered the run
    assert [a[0] for a in months["answers"]] == [PREPARER, APPROVER]  # both taken by Airflow (200)...
    refusals = _rows(months["home_b"], "SELECT answered_by, reason FROM settlement.approval_refusals WHERE period = ?")
    assert [r[0] for r in refusals] == [PREPARER]  # ...the first refused by the four-eyes rule, recorded
    assert "a second person must approve it" in refusals[0][1]


def test_the_waiting_approval_and_the_missed_deadline_are_mailed(months):
    subjects = [m["subject"] for m in months["mails"]]
    print(f"\nmails received on the loopback SMTP server: {subjects}")
    waiting = [m for m in months["mails"] if "waits for a second person" in m["subject"]]
    assert len(waiting) == 1 and f"month {PERIOD}" in waiting[0]["subject"]
    deadline = [m for m in months["mails"] if "has not closed its month" in m["subject"]]
    assert len(deadline) == 1 and f"settle__{PERIOD}" in deadline[0]["subject"]
    assert PERIOD in deadline[0]["body"]
    assert not [s for s in subjects if "failed" in s], subjects
