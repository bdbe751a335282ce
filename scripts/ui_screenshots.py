"""Screenshots of Airflow's web UI taken from a real sandbox month, for docs/airflow-ui.md.

Everything happens in a scratch folder of its own (never the project's .airflow/ or var/):

1. a fresh Airflow metadata DB (SQLite) and `airflow standalone` on a free loopback port, the
   embedded default: scheduler (LocalExecutor), dag-processor, triggerer, api-server with the UI;
2. the small sandbox month (what `python -m sandbox.demo --small` settles: 60 works, tiny model,
   60 generations over two days) built with sandbox.demo's functions, the platform's HTTP
   server started, and its endpoint stored as the Airflow Connection `sandbox_platform`;
3. the DAG runs triggered through Airflow's REST API and run by the standalone scheduler, so
   each task runs in a LocalExecutor worker and writes the log the UI shows: one
   ingest_generation_logs run per day, one attribute_generations run (4 mapped shards);
4. monthly_settlement, first on reference data with planted errors (the platform's contract
   removed, publishing splits that sum to 50 %, a work without a master holder): the quality
   gate stops `calculate_period` with the list of exceptions; then the data is put back;
5. monthly_settlement again: it calculates, drafts the statements and parks its `approval`
   task in Airflow's Required Actions (state awaiting_input) until a second person answers;
6. the screenshots, with Playwright driving Debian's chromium: login with the password
   standalone generated, the pages docs/airflow-ui.md shows, a click on Approve as `admin`
   (the preparer is `finance-bot`, who may not approve), and the finished run;
7. stops everything it started.

The scheduler's own timetable is switched off in this Airflow ([scheduler] use_job_schedule =
False) so the pages show only the runs this script triggers, not a catch-up run for today.

Install (a docs tool: neither is a project dependency):

    apt-get install -y chromium            # Debian's browser, /usr/bin/chromium
    .venv/bin/pip install playwright       # the Python driver only; never `playwright install`

Run from the repository root (4 to 6 minutes on 2 cores, from an empty scratch folder):

    .venv/bin/python scripts/ui_screenshots.py                  # writes docs/img/airflow-*.png
    .venv/bin/python scripts/ui_screenshots.py --keep-running   # then leaves the UI up to explore

Options: --work DIR (scratch folder, default /tmp/tributary-ui; its parsed catalog and trained
model are reused, everything else is rebuilt; a non-empty folder the script did not make is
refused), --out DIR (default docs/img), --port N (default: a free one), --chromium PATH
(default /usr/bin/chromium). Airflow settings exported in the shell (AIRFLOW__*, AIRFLOW_CONN_*)
are ignored: the script's Airflow is its own.
"""

from __future__ import annotations

import argparse
import json
import logging
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
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
log = logging.getLogger("tributary.ui_screenshots")

DAG_IDS = ("ingest_generation_logs", "attribute_generations", "monthly_settlement")
CONN_ID = "sandbox_platform"
SHARD_SIZE = 16  # generations per mapped attribution task: the 60 sandbox generations -> 4 shards
# `ops` triggers the runs through the REST API, so `ops` is the month's preparer; `admin`,
# standalone's user, approves in the browser.
PREPARER, APPROVER = "ops", "admin"
VIEWPORT = {"width": 1400, "height": 900}
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
_MAIN_PID = os.getpid()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def configure_env(work: Path, port: int) -> None:
    """Point Airflow and Tributary at the scratch folder; the standalone inherits all of it.

    Airflow settings from the caller's shell are dropped first: an exported metadata DB or
    connection must not send this script's runs into somebody's real Airflow."""
    for key in [
        k for k in os.environ if k.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_"))
    ]:
        del os.environ[key]
    os.environ.update({
        "AIRFLOW_HOME": str(work / "airflow"),
        "TRIBUTARY_HOME": str(work / "var"),
        "TRIBUTARY_SHARD_SIZE": str(SHARD_SIZE),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{work / 'airflow' / 'airflow.db'}",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{APPROVER}:admin,{PREPARER}:admin",
        # Few executor workers: a 2-core machine, and the month has a handful of tasks at a time.
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        # Not the default 8793/8794, which another Airflow on this machine may hold.
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    })  # fmt: skip


def fresh_work_dir(work: Path) -> None:
    """Keep the parsed catalog and the trained sandbox model (caches); rebuild the rest.

    Only a folder this script made (it carries a marker file) or an empty one is cleaned."""
    marker = work / ".tributary-ui-scratch"
    if work.exists() and any(work.iterdir()) and not marker.exists():
        sys.exit(
            f"{work} is not empty and not a scratch folder of this script; pick another --work"
        )
    work.mkdir(parents=True, exist_ok=True)
    marker.write_text(
        "scratch folder of scripts/ui_screenshots.py; deleted and rebuilt on each run\n"
    )
    shutil.rmtree(work / "airflow", ignore_errors=True)
    var = work / "var"
    if var.exists():
        for child in var.iterdir():
            if child.name not in ("catalog", "platform"):
                shutil.rmtree(child) if child.is_dir() else child.unlink()
    (work / "airflow").mkdir(parents=True)
    var.mkdir(parents=True, exist_ok=True)


# --------------------------------------------------------------------------- Airflow standalone


class Standalone:
    """`airflow standalone` in its own process group; stopped like Ctrl+C, then harder."""

    def __init__(self, work: Path, port: int):
        self.work, self.port = work, port
        self.base = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen | None = None
        self.logfile = work / "standalone.log"

    def start(self, timeout_s: float = 300) -> None:
        import requests

        with self.logfile.open("w") as out:
            self.proc = subprocess.Popen(
                ["airflow", "standalone"],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        components = ("metadatabase", "scheduler", "dag_processor", "triggerer")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"airflow standalone exited early; see {self.logfile}")
            try:
                health = requests.get(f"{self.base}/api/v2/monitor/health", timeout=5).json()
                if (
                    all(health.get(k, {}).get("status") == "healthy" for k in components)
                    and self.password_file.exists()
                ):
                    log.info("airflow standalone ready at %s", self.base)
                    return
            except (requests.RequestException, ValueError):
                pass
            time.sleep(2)
        raise TimeoutError(f"airflow standalone not healthy after {timeout_s}s; see {self.logfile}")

    @property
    def password_file(self) -> Path:
        return self.work / "airflow" / "simple_auth_manager_passwords.json.generated"

    def password(self, user: str = "admin") -> str:
        return json.loads(self.password_file.read_text())[user]

    def stop(self) -> None:
        if not self.proc:
            return
        pgid = self.proc.pid  # start_new_session: the group's id is the leader's pid
        for sig, wait_s in ((signal.SIGINT, 10), (signal.SIGTERM, 20), (signal.SIGKILL, 5)):
            if not _group_alive(pgid):
                break
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + wait_s
            while time.monotonic() < deadline and _group_alive(pgid):
                self.proc.poll()
                time.sleep(0.5)
        self.proc.poll()
        log.info("airflow standalone stopped")


def _group_alive(pgid: int) -> bool:
    """Any live (non-zombie) process left in the group."""
    out = subprocess.run(
        ["ps", "-o", "stat=", "-g", str(pgid)], check=False, capture_output=True, text=True
    ).stdout
    return any(s and not s.startswith("Z") for s in out.split())


class Api:
    """Airflow's public REST API, as the standalone's admin user."""

    def __init__(self, base: str, user: str, password: str):
        import requests

        self.base, self.session = base, requests.Session()
        r = self.session.post(
            f"{base}/auth/token", json={"username": user, "password": password}, timeout=30
        )
        r.raise_for_status()
        self.session.headers["Authorization"] = f"Bearer {r.json()['access_token']}"

    def call(self, method: str, path: str, **kwargs) -> dict:
        r = self.session.request(method, f"{self.base}/api/v2/{path}", timeout=30, **kwargs)
        if r.status_code >= 400:
            raise RuntimeError(f"{method} {path}: {r.status_code} {r.text[:500]}")
        return r.json() if r.content else {}

    def wait_for_dags(self, timeout_s: float = 180) -> None:
        def parsed() -> bool:
            ids = {d["dag_id"] for d in self.call("GET", "dags", params={"limit": 100})["dags"]}
            return set(DAG_IDS) <= ids

        wait_for(parsed, "the dag-processor to parse the three DAGs", timeout_s)
        for dag_id in DAG_IDS:
            self.call("PATCH", f"dags/{dag_id}", json={"is_paused": False})

    def set_connection(self, conn_id: str, port: int, token: str) -> None:
        body = {
            "connection_id": conn_id, "conn_type": "http", "host": "127.0.0.1", "port": port,
            "schema": "http", "password": token, "description": "the sandbox platform's Generation Log API",
        }  # fmt: skip
        r = self.session.patch(f"{self.base}/api/v2/connections/{conn_id}", json=body, timeout=30)
        if r.status_code == 404:
            self.call("POST", "connections", json=body)
        elif r.status_code >= 400:
            raise RuntimeError(f"connection {conn_id}: {r.status_code} {r.text[:500]}")

    def trigger(
        self,
        dag_id: str,
        run_id: str,
        period: str | None = None,
        note: str | None = None,
    ) -> str:
        # As an operator triggers: the month in the `period` param and no logical date, so no
        # run takes a date the schedule will want.
        body = {"dag_run_id": run_id, "logical_date": None, "conf": {"period": period} if period else {}}
        if note:
            body["note"] = note
        self.call("POST", f"dags/{dag_id}/dagRuns", json=body)
        log.info("triggered %s %s", dag_id, run_id)
        return run_id

    def run_state(self, dag_id: str, run_id: str) -> str:
        return self.call("GET", f"dags/{dag_id}/dagRuns/{run_id}")["state"]

    def wait_run(
        self, dag_id: str, run_id: str, expect: str = "success", timeout_s: float = 900
    ) -> None:
        state = wait_for(
            lambda: (s := self.run_state(dag_id, run_id)) in ("success", "failed") and s,
            f"{dag_id} {run_id} to finish", timeout_s,
        )  # fmt: skip
        if state != expect:
            raise RuntimeError(
                f"{dag_id} {run_id} ended {state}, expected {expect}; see the UI or task logs"
            )
        log.info("%s %s: %s", dag_id, run_id, state)

    def task_state(self, dag_id: str, run_id: str, task_id: str) -> str | None:
        return self.call("GET", f"dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}").get(
            "state"
        )


def wait_for(predicate, what: str, timeout_s: float = 600, poll_s: float = 2):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll_s)
    raise TimeoutError(f"gave up waiting for {what} after {timeout_s}s")


# --------------------------------------------------------------------------- the sandbox month


def run_month(api: Api, home: Path) -> dict:
    """sandbox.demo's month (small config) up to the settlement, run by the scheduler."""
    from sandbox import demo
    from sandbox.server import SandboxServer

    cfg = demo.SMALL
    sandbox = demo.build_sandbox(home, cfg)
    demo.register(home, cfg)
    token = secrets.token_urlsafe(24)
    with SandboxServer(sandbox["log_path"], sandbox["model_dir"].parent, token) as server:
        api.set_connection(CONN_ID, server.port, token)
        # One run pulls the month, day by day: every daily window is reconciled.
        run_id = api.trigger("ingest_generation_logs", f"sandbox__{cfg.period}", cfg.period)
        api.wait_run("ingest_generation_logs", run_id)
        run_id = api.trigger("attribute_generations", f"sandbox__{cfg.period}")
        api.wait_run("attribute_generations", run_id)
    return {"period": cfg.period, "attribute_run": run_id}


def plant_exceptions(warehouse: Path) -> tuple[Path, list[str]]:
    """Reference-data errors the calculation gate must stop on. Returns the backup to restore."""
    import duckdb

    backup = warehouse.with_name("warehouse.before-planted-errors.duckdb")
    with duckdb.connect(str(warehouse)) as con:
        con.execute("CHECKPOINT")
    shutil.copy2(warehouse, backup)
    with duckdb.connect(str(warehouse)) as con:
        earning = [r[0] for r in con.execute(
            "SELECT DISTINCT work_id FROM attribution.shares WHERE NOT is_residual ORDER BY 1 LIMIT 2"
        ).fetchall()]  # fmt: skip
        if len(earning) < 2:
            raise RuntimeError(f"expected 2 earning works to plant errors on, found {earning}")
        con.execute("DELETE FROM ref.contracts")  # no_contract
        con.execute(  # split_sum: every publishing share of one work typed in at half its value
            "UPDATE ref.splits SET share = share / 2 WHERE work_id = ? AND right_type = 'publishing'",
            [earning[0]],
        )
        con.execute(  # orphan_work: a work's master holder removed
            "DELETE FROM ref.splits WHERE work_id = ? AND right_type = 'master'", [earning[1]]
        )
        con.execute("CHECKPOINT")
    log.info("planted no_contract, split_sum on %s, orphan_work on %s", *earning)
    return backup, earning


def restore(warehouse: Path, backup: Path) -> None:
    wal = warehouse.with_name(warehouse.name + ".wal")
    if wal.exists():
        wal.unlink()
    shutil.move(backup, warehouse)
    log.info("reference data put back")


# --------------------------------------------------------------------------- screenshots


class Browser:
    def __init__(self, base: str, out: Path, chromium: str):
        from playwright.sync_api import sync_playwright

        self.base, self.out = base, out
        self._pw = sync_playwright().start()
        self._profile = tempfile.mkdtemp(prefix="tributary-ui-chromium-")
        self.ctx = self._pw.chromium.launch_persistent_context(
            self._profile, executable_path=chromium, headless=True, args=CHROMIUM_ARGS,
            viewport=VIEWPORT, device_scale_factor=1, timezone_id="UTC", locale="en-US",
        )  # fmt: skip
        self.page = self.ctx.new_page()
        self.page.set_default_timeout(60_000)
        self.shots: list[Path] = []

    def login(self, user: str, password: str) -> None:
        page = self.page
        page.goto(f"{self.base}/auth/login?next=%2F", wait_until="networkidle")
        page.get_by_label("Username").fill(user)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{self.base}/", timeout=60_000)
        page.wait_for_load_state("networkidle")

    def goto(self, path: str, *texts: str) -> None:
        """Open a UI page and wait until it shows each of `texts` and the network is quiet."""
        self.page.goto(f"{self.base}{path}", wait_until="networkidle")
        self.wait_text(*texts)

    def wait_text(self, *texts: str) -> None:
        for text in texts:
            self.page.get_by_text(text, exact=False).first.wait_for(state="visible")
        self.page.wait_for_load_state("networkidle")
        self.page.wait_for_timeout(1500)  # charts and icons finish drawing

    def wrap_log_lines(self) -> None:
        """The log viewer's own setting (gear menu > Wrap), remembered by the browser: long
        lines wrap instead of running off the right edge."""
        page = self.page
        page.get_by_role("button", name="Log Settings").click()
        # The items' names carry their hotkey ("Wrap w"); "Unwrap" is shown while wrapping.
        wrap = page.get_by_role("menuitem", name=re.compile(r"^Wrap\b"))
        unwrap = page.get_by_role("menuitem", name=re.compile(r"^Unwrap\b"))
        wrap.or_(unwrap).first.wait_for(state="visible")
        if unwrap.count():  # already wrapping
            page.keyboard.press("Escape")
        else:
            wrap.click()
        # No focus ring or tooltip left on the gear button in the screenshot.
        page.mouse.move(VIEWPORT["width"] // 2, VIEWPORT["height"] - 20)
        page.evaluate("() => document.activeElement && document.activeElement.blur()")

    def shot(self, name: str) -> Path:
        path = self.out / f"{name}.png"
        if "Sign into Airflow" in self.page.inner_text("body"):
            raise RuntimeError(f"{name}: the page shows the login form, not the UI")
        self.page.screenshot(path=str(path))
        self.shots.append(path)
        log.info("screenshot %s", path)
        return path

    def close(self) -> None:
        self.ctx.close()
        self._pw.stop()
        shutil.rmtree(self._profile, ignore_errors=True)


def screenshots(b: Browser, api: Api, runs: dict) -> None:
    period = runs["period"]
    settle, gate = runs["settle_run"], runs["gate_run"]
    approval = f"/dags/monthly_settlement/runs/{settle}/tasks/approval"

    # While the approval waits for a second person.
    b.goto("/required_actions", f"Approve royalty settlement {period}", "Approval Required")
    b.shot("airflow-required-actions")
    b.goto(f"{approval}/required_actions", "Awaiting Input", f"Period {period}", "Reject")
    b.shot("airflow-approval-waiting")

    # The first attempt's failed gate, log lines wrapped so each exception reads in full.
    b.goto(
        f"/dags/monthly_settlement/runs/{gate}/tasks/calculate_period",
        "QualityGateError",
        "no_contract",
    )
    b.wrap_log_lines()
    b.wait_text("orphan_work")
    b.shot("airflow-quality-gate-failed")

    # A second person answers: admin, not the preparer ops.
    b.goto(f"{approval}/required_actions", "Awaiting Input", "Reject")
    b.page.get_by_role("button", name="Approve", exact=True).click()
    api.wait_run("monthly_settlement", settle)
    b.goto(f"{approval}/required_actions", f"from {APPROVER}")
    b.shot("airflow-approval-answered")
    b.goto(approval, f"period {period} approved by {APPROVER}")
    b.shot("airflow-approval-log")
    b.goto("/dags/monthly_settlement/runs", "2 Dag Runs", settle, gate)
    b.shot("airflow-settlement-runs")

    # The month's ingest and attribution.
    ingest_runs = [
        r["dag_run_id"] for r in api.call("GET", "dags/ingest_generation_logs/dagRuns")["dag_runs"]
    ]
    b.goto("/dags/ingest_generation_logs/runs", f"{len(ingest_runs)} Dag Runs", "pull_window")
    b.shot("airflow-ingest-runs")

    # The day whose pull quarantined the platform's planted bad records, else the last day.
    def quarantined(run: str) -> int:
        path = f"dags/ingest_generation_logs/dagRuns/{run}/taskInstances/pull_window/xcomEntries/return_value"
        value = api.call("GET", path, params={"map_index": 0})["value"]
        value = json.loads(value) if isinstance(value, str) else value
        return int(value.get("quarantined", 0)) if isinstance(value, dict) else 0

    day = next((run for run in sorted(ingest_runs) if quarantined(run)), max(ingest_runs))
    b.goto(
        f"/dags/ingest_generation_logs/runs/{day}/tasks/pull_window/mapped/0", "Returned value was"
    )
    b.wrap_log_lines()
    b.wait_text("quarantined")
    b.shot("airflow-ingest-log")
    b.goto(
        "/dags/attribute_generations", "attribute_shard", "tributary://warehouse/attribution/shares"
    )
    b.shot("airflow-attribute-grid")
    shards = api.call(
        "GET", f"dags/attribute_generations/dagRuns/{runs['attribute_run']}/taskInstances/attribute_shard/listMapped"
    )["total_entries"]  # fmt: skip
    b.goto(
        f"/dags/attribute_generations/runs/{runs['attribute_run']}/tasks/attribute_shard/mapped",
        f"{shards} Task Instance",
    )
    b.shot("airflow-attribute-shards")
    b.goto("/dags", "3 Dags", "monthly_settlement")
    b.shot("airflow-dags")


def _interrupt(signum, frame):
    if os.getpid() != _MAIN_PID:  # a forked helper (the catalog's process pool): just exit
        os._exit(1)
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--work", type=Path, default=Path("/tmp/tributary-ui"))
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument(
        "--keep-running", action="store_true", help="leave Airflow up at the end (Ctrl+C stops it)"
    )
    args = ap.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for noisy in ("airflow", "sqlalchemy", "alembic", "httpx", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` cleans up like Ctrl+C: Airflow is stopped
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        sys.exit(
            "needs Playwright for Python: .venv/bin/pip install playwright (see this file's docstring)"
        )
    if not Path(args.chromium).exists():
        sys.exit(f"no browser at {args.chromium}: apt-get install -y chromium")

    started = time.perf_counter()
    work, out = args.work.resolve(), args.out.resolve()
    fresh_work_dir(work)
    port = args.port or free_port()
    configure_env(work, port)
    sys.path.insert(0, str(ROOT))
    subprocess.run(["airflow", "db", "migrate"], check=True, capture_output=True)
    out.mkdir(parents=True, exist_ok=True)
    standalone = Standalone(work, port)
    browser: Browser | None = None
    done = False
    try:
        standalone.start()
        api = Api(standalone.base, PREPARER, standalone.password(PREPARER))
        api.call("POST", "pools", json={"name": "warehouse_writer", "slots": 1})  # DuckDB's writers take turns
        api.wait_for_dags()
        home = work / "var"
        runs = run_month(api, home)
        period = runs["period"]

        # First attempt at the month, on reference data with planted errors: the gate stops it.
        backup, works = plant_exceptions(home / "warehouse.duckdb")
        try:
            runs["gate_run"] = api.trigger(
                "monthly_settlement", f"sandbox__{period}__planted-errors", period,
                note=f"Reference data with planted errors (contract removed, publishing splits of {works[0]} "
                f"halved, master holder of {works[1]} removed): the quality gate must stop this run.",
            )  # fmt: skip
            api.wait_run("monthly_settlement", runs["gate_run"], expect="failed")
        finally:
            restore(home / "warehouse.duckdb", backup)

        # After the fix: calculates, drafts the statements, then waits for a second person.
        runs["settle_run"] = api.trigger(
            "monthly_settlement", f"sandbox__{period}", period,
            note="Reference data fixed; rerun of the month.",
        )  # fmt: skip

        def approval_waits() -> bool:
            state = api.task_state("monthly_settlement", runs["settle_run"], "approval")
            if api.run_state("monthly_settlement", runs["settle_run"]) == "failed":
                raise RuntimeError(
                    f"monthly_settlement {runs['settle_run']} failed before its approval"
                )
            return state == "awaiting_input"

        wait_for(approval_waits, "the approval to wait in Required Actions", timeout_s=900)
        log.info("monthly_settlement %s waits for approval", runs["settle_run"])

        browser = Browser(standalone.base, out, args.chromium)
        browser.login("admin", standalone.password())
        screenshots(browser, api, runs)
        done = True
        log.info(
            "%d screenshots in %s, %.0fs in all",
            len(browser.shots),
            out,
            time.perf_counter() - started,
        )
        if args.keep_running:
            print(
                f"Airflow UI: {standalone.base}  user admin  password {standalone.password()}  (Ctrl+C stops)"
            )
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        log.info("interrupted")
    finally:
        if browser:
            browser.close()
        standalone.stop()
    return 0 if done else 130


if __name__ == "__main__":
    sys.exit(main())
