"""The real ingest DAG (Airflow dag.test) against the sandbox platform with every fault on.

Three days are ingested, September's period is closed by finance in between, and a fourth
run picks up the last day's late records. Then: every record the platform reported is in
raw.generations exactly once or in raw.quarantine with the rule it broke; each window's
count and revenue equal the platform's manifest; re-running an interval changes no row."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
import requests
from settlement_fixtures import table

from sandbox.faults import FaultConfig, corrupt, late_mask
from sandbox.server import SandboxServer
from settlement.ingest import GenerationLogClient, PlatformEndpoint

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "fault-test-token-9f3a1c"
CONN_ID = "faulty_platform"
PLATFORM = "faulty"
DAYS = [datetime(2026, 9, 30, tzinfo=UTC) + timedelta(days=d) for d in range(3)]
PER_DAY = 70
# Rates high enough that a few dozen requests meet every transport fault (seeded: same each run).
FAULTS = FaultConfig.everything(
    seed=7, slow_s=1.5, retry_after_s=1, error_rate=0.12, rate_limit_rate=0.12, slow_rate=0.08,
    truncated_rate=0.1, malformed_rate=0.1,
)  # fmt: skip


def make_records() -> list[dict]:
    out = []
    for d, day in enumerate(DAYS):
        for i in range(PER_DAY):
            ts = day + timedelta(seconds=int(i * 86400 / PER_DAY) + 7)
            out.append(
                {
                    "schema_version": 1,
                    "generation_id": f"f{d}-{i:03d}",
                    "model_version": "mv-ok",
                    "created_at": ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                    "style": "bach",
                    "prompt": None,
                    "output": {"tokens": [1, 5, 30 + i % 7, 2]},
                    "territory": "US" if i % 3 else "DE",
                    "revenue": {
                        "amount": f"0.{(i * 37) % 90 + 10:02d}50",
                        "currency": "EUR" if i % 5 == 0 else "USD",
                    },
                }
            )
    return out


def served_records() -> tuple[list[dict], list[dict], list[bool]]:
    """The records as the faulty platform serves them: the same seeded steps as the server."""
    records = sorted(make_records(), key=lambda r: (r["created_at"], r["generation_id"]))
    records, planted = corrupt(records, FAULTS)
    return records, planted, late_mask(records, FAULTS)


@pytest.fixture(scope="module")
def faulty(tmp_path_factory):
    home = tmp_path_factory.mktemp("faults")
    log_path = home / "log.jsonl"
    log_path.write_text("".join(json.dumps(r) + "\n" for r in make_records()))
    models = home / "models"
    (models / "mv-ok").mkdir(parents=True)
    (models / "mv-ok" / "model_version.json").write_text(json.dumps({"model_version": "mv-ok"}))
    airflow_home = Path(os.environ["AIRFLOW_HOME"])
    if not (airflow_home / "airflow.db").exists():
        subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True
        )

    from settlement.reference import register_platform
    from settlement.warehouse import warehouse

    with warehouse(home / "warehouse.duckdb") as con:
        register_platform(con, PLATFORM, "Faulty Music AI", CONN_ID)
    with (
        pytest.MonkeyPatch.context() as mp,
        SandboxServer(log_path, models, TOKEN, faults=FAULTS) as server,
    ):
        mp.setenv("TRIBUTARY_HOME", str(home))
        mp.setenv("TRIBUTARY_INGEST_TIMEOUT", "1.0")  # below the server's slow_s
        mp.setenv("TRIBUTARY_INGEST_BACKOFF", "0.05")
        mp.setenv("TRIBUTARY_INGEST_MAX_WAIT", "2")
        mp.setenv("TRIBUTARY_INGEST_PAGE_SIZE", "16")  # many pages: duplicates cross pages
        conn = {
            "conn_type": "http",
            "host": "127.0.0.1",
            "port": server.port,
            "schema": "http",
            "password": TOKEN,
        }
        mp.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(conn))
        from sandbox.demo import load_dags, run_dag

        dag = load_dags()["ingest"]
        run_dag(dag, conf={"day": f"{DAYS[0]:%Y-%m-%d}"})  # [Sep 30, Oct 1)
        _close_period(home, "2026-09")  # finance closes September; its late records come after
        for day in DAYS[1:]:
            run_dag(dag, conf={"day": f"{day:%Y-%m-%d}"})
        quiet = DAYS[-1] + timedelta(days=1)  # a quiet day that finds Oct 2's late records
        run_dag(dag, conf={"day": f"{quiet:%Y-%m-%d}"})
        yield {"home": home, "server": server, "dag": dag, "run_dag": run_dag}


def _close_period(home: Path, period: str) -> None:
    from settlement.warehouse import warehouse

    with warehouse(home / "warehouse.duckdb") as con:
        con.execute(
            "INSERT INTO settlement.periods (period, status) VALUES (?, 'closed')", [period]
        )


def _rows(home: Path, sql: str) -> pd.DataFrame:
    return table(home / "warehouse.duckdb", sql)


def test_every_fault_was_injected(faulty):
    seen = requests.get(f"{faulty['server'].base_url}/_sandbox/faults", timeout=5).json()
    assert set(seen["transport"]) == {"error", "rate_limit", "slow", "truncated", "malformed"}, (
        seen["transport"]
    )
    assert {p["rule"] for p in seen["invalid"]} == {
        "unknown_model_version", "negative_revenue", "unknown_currency", "missing_field", "outside_window",
    }  # fmt: skip
    assert seen["late_ids"] and seen["late_released_windows"] >= 3


def test_each_reported_record_is_loaded_once_or_quarantined_with_its_rule(faulty):
    home = faulty["home"]
    records, planted, _ = served_records()
    bad = {p["generation_id"]: p["rule"] for p in planted}
    loaded = _rows(home, "SELECT generation_id FROM raw.generations")["generation_id"].tolist()
    assert len(loaded) == len(set(loaded))  # once
    quarantined = _rows(home, "SELECT generation_id, rule, reason FROM raw.quarantine")
    assert len(quarantined) == len(bad)
    for gid, rule, reason in quarantined.itertuples(index=False):
        assert bad[gid] == rule and gid in reason
    assert set(loaded) | set(quarantined["generation_id"]) == {r["generation_id"] for r in records}
    assert not set(loaded) & set(quarantined["generation_id"])


def test_windows_reconcile_with_the_manifest_by_count_and_revenue(faulty):
    home, server = faulty["home"], faulty["server"]
    client = GenerationLogClient(PlatformEndpoint(PLATFORM, server.base_url, TOKEN), retries=8)
    gens = _rows(home, "SELECT window_start, revenue_currency, revenue_amount FROM raw.generations")
    quar = _rows(home, "SELECT window_start, raw_payload FROM raw.quarantine")
    for day in DAYS:
        manifest = client.manifest(day, day + timedelta(days=1))
        key = pd.Timestamp(day.replace(tzinfo=None))
        g, q = gens[gens["window_start"] == key], quar[quar["window_start"] == key]
        assert len(g) + len(q) == manifest["count"], day
        revenue: dict[str, Decimal] = defaultdict(Decimal)
        for cur, amount in zip(g["revenue_currency"], g["revenue_amount"], strict=True):
            revenue[cur] += Decimal(amount)
        for payload in q["raw_payload"]:
            rev = json.loads(payload).get("revenue")
            if rev:
                revenue[rev["currency"]] += Decimal(rev["amount"])
        assert {k: v for k, v in revenue.items() if v} == {
            k: Decimal(v) for k, v in manifest["revenue"].items()
        }


def test_late_records_of_a_closed_period_are_flagged_for_the_next_open_one(faulty):
    home = faulty["home"]
    records, planted, late = served_records()
    bad = {p["generation_id"] for p in planted}
    late_sept = {
        r["generation_id"] for r, is_late in zip(records, late, strict=True)
        if is_late and r["created_at"].startswith("2026-09") and r["generation_id"] not in bad
    }  # fmt: skip
    assert late_sept
    flagged = _rows(home, "SELECT * FROM raw.late_arrivals")
    assert set(flagged["generation_id"]) == late_sept
    assert set(flagged["original_period"]) == {"2026-09"} and set(flagged["adjust_in_period"]) == {
        "2026-10"
    }
    assert flagged["revenue_amount"].map(lambda v: isinstance(v, Decimal)).all()
    # loaded as well, under their own window: nothing is dropped
    ids = "', '".join(late_sept)
    assert _rows(
        home, f"SELECT count(*) AS n FROM raw.generations WHERE generation_id IN ('{ids}')"
    )["n"][0] == len(late_sept)


def test_rerunning_an_interval_changes_no_row(faulty):
    home = faulty["home"]
    tables = ["raw.generations", "raw.quarantine", "raw.late_arrivals", "raw.ingest_watermarks"]
    before = {
        t: _rows(home, f"SELECT * EXCLUDE ({_volatile(t)}) FROM {t} ORDER BY ALL") for t in tables
    }
    faulty["run_dag"](faulty["dag"], conf={"day": f"{DAYS[1]:%Y-%m-%d}"})
    for t in tables:
        after = _rows(home, f"SELECT * EXCLUDE ({_volatile(t)}) FROM {t} ORDER BY ALL")
        pd.testing.assert_frame_equal(before[t], after, obj=t)
    last = _rows(
        home,
        "SELECT loaded_new, late_flagged FROM raw.ingest_windows ORDER BY finished_at DESC LIMIT 1",
    )
    assert last["loaded_new"][0] == 0 and last["late_flagged"][0] == 0
    counts = Counter(_rows(home, "SELECT ingest_run_id FROM raw.generations")["ingest_run_id"])
    assert sum(counts.values()) == len(
        set(_rows(home, "SELECT generation_id FROM raw.generations")["generation_id"])
    )


def _volatile(t: str) -> str:
    # The watermark row records who moved it last; its position must not change. Other
    # tables are compared whole (platform_id is the same on every row, excluded for syntax).
    return "ingest_run_id, updated_at" if t == "raw.ingest_watermarks" else "platform_id"


def test_a_wrong_token_fails_the_task_clearly_and_is_never_logged(
    faulty, caplog, capfd, monkeypatch
):
    wrong = "wrong-token-7c1e55d0aa"
    server = faulty["server"]
    conn = {
        "conn_type": "http",
        "host": "127.0.0.1",
        "port": server.port,
        "schema": "http",
        "password": wrong,
    }
    monkeypatch.setenv("TRIBUTARY_HOME", str(faulty["home"]))
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(conn))
    caplog.set_level("DEBUG")
    logs_dir = Path(os.environ["AIRFLOW_HOME"]) / "logs"
    with pytest.raises(RuntimeError, match="pull_window"):
        faulty["run_dag"](faulty["dag"], conf={"day": f"{DAYS[0]:%Y-%m-%d}"})
    out, err = capfd.readouterr()
    text = caplog.text + out + err
    assert "refused the token (HTTP 401" in text and f"platform {PLATFORM}" in text
    task_logs = (
        [p.read_text(errors="replace") for p in logs_dir.rglob("*") if p.is_file()]
        if logs_dir.exists()
        else []
    )
    for blob in [text, *task_logs]:
        assert wrong not in blob and TOKEN not in blob
