"""kill -9 at any instant, then the same command again (issue 13; what every rerun must leave:
tests/test_crash_safety_calculate.py). Here: the ingest landing, through a platform's file drop
of TRIBUTARY_KILL_DROP_RECORDS records for one day of November (default 150000: the landing
runs about a second; validated, reconciled and landed in one transaction, the window's Parquet
file written aside and renamed). After every rerun the lake holds one Parquet file for the
window and every ingest of the window recorded that file's digest. The API path's own kill
test is tests/test_ingest_kill.py."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta

import duckdb
import pytest
from kill_states import invariants, killed_after, series, sha

N_RECORDS = int(os.environ.get("TRIBUTARY_KILL_DROP_RECORDS", "150000"))


@pytest.fixture(scope="module")
def argv(tmp_path_factory) -> list[str]:
    drop = tmp_path_factory.mktemp("drop")
    start = datetime(2026, 11, 2, tzinfo=UTC)
    with (drop / "records.jsonl").open("w") as f:
        for i in range(N_RECORDS):
            f.write(json.dumps({"schema_version": 1, "generation_id": f"d{i:07d}", "model_version": "mv1",
                                "created_at": (start + timedelta(seconds=i % 86400)).isoformat().replace("+00:00", "Z"),
                                "style": "bach", "prompt": None, "output": {"tokens": [1, 2]}, "territory": "US",
                                "revenue": {"amount": "0.0100", "currency": "USD"}}) + "\n")  # fmt: skip
    (drop / "manifest.json").write_text(json.dumps({
        "platform_id": "p1", "start": "2026-11-02T00:00:00Z", "end": "2026-11-03T00:00:00Z", "count": N_RECORDS,
        "revenue": {"USD": f"{N_RECORDS * 0.01:.6f}"}, "schema_version": 1}))  # fmt: skip
    return ["ingest-drop", "p1", str(drop), "drop-run"]


def landed(home):
    summary = invariants(home)
    files = sorted((home / "lake").rglob("*.parquet"))
    assert len(files) == 1  # one file per window, never doubled
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        recorded = con.execute("SELECT DISTINCT raw_file_sha256 FROM raw.ingest_windows "
                               "WHERE ingest_run_id <> 'seed'").fetchall()  # not the seeded October
    finally:
        con.close()
    assert recorded == [(sha(files[0]),)]  # every ingest of the window names the file as it is
    return summary


def test_kill_ingest_landing(kill_stages, argv, tmp_path):
    series("ingest landing (file drop)", kill_stages, "seeded", argv, tmp_path, landed)


@pytest.mark.parametrize("step", [
    "pyarrow.parquet:write_table",  # the window's file written aside, not renamed: the rerun
                                    # (another process id) must not leave it behind
    "settlement.filedrop:land",  # the landing committed: the rerun rewrites the same bytes
])  # fmt: skip
def test_ingest_killed_right_after_a_step(kill_stages, argv, tmp_path, step):
    killed_after(kill_stages, "seeded", argv, step, tmp_path, landed)
