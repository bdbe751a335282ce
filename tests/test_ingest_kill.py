"""SIGKILL in the middle of a window, then a rerun: no duplicate and no gap.

The ingest runs in a real subprocess against the sandbox server (slow pages, so there is a
middle to kill in). It is killed with SIGKILL once the first window is committed and the
second is half paged; a second process then runs the same interval to the end."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from settlement_fixtures import table

from sandbox.faults import FaultConfig
from sandbox.server import SandboxServer

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "kill-test-token-51b2"
D1 = datetime(2026, 10, 1, tzinfo=UTC)
PER_DAY = 40

SCRIPT = """
import logging, sys
from datetime import datetime, timedelta
from pathlib import Path
from settlement.ingest import PlatformEndpoint, ingest_platform
logging.basicConfig(level=logging.DEBUG, stream=sys.stderr, format="%(name)s %(message)s")
home = Path(sys.argv[1])
start = datetime.fromisoformat(sys.argv[2])
ingest_platform(home / "w.duckdb", home / "lake", PlatformEndpoint.from_env("p1"), start,
                start + timedelta(days=2), run_id=sys.argv[3], window=timedelta(days=1))
print("DONE", file=sys.stderr, flush=True)
"""


def _records() -> list[dict]:
    return [
        {
            "schema_version": 1,
            "generation_id": f"k{d}-{i:03d}",
            "model_version": "mv-ok",
            "created_at": (D1 + timedelta(days=d, minutes=30 * i + 1)).strftime(
                "%Y-%m-%dT%H:%M:%S.%fZ"
            ),
            "style": "bach",
            "prompt": "p",
            "output": {"tokens": [1, 2, 3]},
            "territory": "US",
            "revenue": {"amount": "0.0150", "currency": "USD"},
        }
        for d in range(2)
        for i in range(PER_DAY)
    ]


@pytest.fixture()
def slow_platform(tmp_path):
    log_path = tmp_path / "log.jsonl"
    log_path.write_text("".join(json.dumps(r) + "\n" for r in _records()))
    models = tmp_path / "models"
    (models / "mv-ok").mkdir(parents=True)
    (models / "mv-ok" / "model_version.json").write_text("{}")
    # Every page takes a while: the kill lands while pages are still being fetched.
    with SandboxServer(log_path, models, TOKEN, faults=FaultConfig(latency_s=0.1)) as server:
        yield server, tmp_path


def _start(server, home: Path, run_id: str) -> subprocess.Popen:
    env = dict(
        os.environ,
        PYTHONPATH=str(ROOT),
        TRIBUTARY_PLATFORM_P1_URL=server.base_url,
        TRIBUTARY_PLATFORM_P1_TOKEN=TOKEN,
        TRIBUTARY_INGEST_PAGE_SIZE="4",
    )
    cmd = [sys.executable, "-c", SCRIPT, str(home), D1.isoformat(), run_id]
    return subprocess.Popen(cmd, env=env, cwd=ROOT, stderr=subprocess.PIPE, text=True)


def test_sigkill_mid_window_then_rerun_leaves_no_duplicate_and_no_gap(slow_platform):
    server, home = slow_platform
    proc = _start(server, home, "run-killed")
    committed, pages_after = False, 0
    for line in proc.stderr:
        if line.startswith("settlement.ingest ingest {"):
            committed = True  # the first window is in the warehouse
        elif committed and "page" in line:
            pages_after += 1
            if pages_after == 3:  # second window half paged
                os.kill(proc.pid, signal.SIGKILL)
                break
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "the ingest finished before it could be killed"

    w = home / "w.duckdb"
    assert table(w, "SELECT watermark FROM raw.ingest_watermarks")["watermark"][0] == datetime(
        2026, 10, 2
    )
    assert table(w, "SELECT count(*) AS n FROM raw.generations")["n"][0] == PER_DAY  # day 1 only

    rerun = _start(server, home, "run-again")
    _, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0 and "DONE" in err, err[-2000:]

    ids = table(w, "SELECT generation_id FROM raw.generations")["generation_id"].tolist()
    assert len(ids) == len(set(ids))  # no duplicate
    assert set(ids) == {r["generation_id"] for r in _records()}  # no gap
    assert table(w, "SELECT watermark FROM raw.ingest_watermarks")["watermark"][0] == datetime(
        2026, 10, 3
    )
    windows = table(w, "SELECT received, reported_count FROM raw.ingest_windows")
    assert (windows["received"] == windows["reported_count"]).all()
    parquet = sorted((home / "lake").rglob("*.parquet"))
    assert len(parquet) == 2  # one file per window, none doubled by the rerun
