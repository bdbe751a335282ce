"""The real ingest DAG (Airflow dag.test) pulls the audio platform's two days through its real
HTTP server: audio generations land with their files in the lake, bad ones are quarantined,
and a rerun of a day changes nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from audio_fixtures import AUDIO_CFG
from settlement_fixtures import table

from sandbox.server import SandboxServer

pytestmark = pytest.mark.e2e

TOKEN = "audio-dag-test-token"
CONN_ID = "audio_platform"
BAD_RULES = {"negative_revenue", "unknown_model_version", "audio_sha256_mismatch", "audio_missing"}


def test_ingest_dag_lands_the_audio_platform(audio_sandbox, tmp_path):
    _, built, _ = audio_sandbox
    home = tmp_path
    if not (Path(os.environ["AIRFLOW_HOME"]) / "airflow.db").exists():
        subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True,
                       capture_output=True)  # fmt: skip
    from settlement.reference import register_platform
    from settlement.warehouse import warehouse

    with warehouse(home / "warehouse.duckdb") as con:
        register_platform(con, built["platform_id"], "Sandbox Audio AI (local)", CONN_ID)
    with (
        pytest.MonkeyPatch.context() as mp,
        SandboxServer(built["log_path"], built["models_dir"], TOKEN) as server,
    ):
        mp.setenv("TRIBUTARY_HOME", str(home))
        conn = {"conn_type": "http", "host": "127.0.0.1", "port": server.port, "schema": "http",
                "password": TOKEN}  # fmt: skip
        mp.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(conn))
        from sandbox.demo import load_dags, run_dag

        dag = load_dags()["ingest"]
        day = built["start"]
        while day < built["end"]:
            run_dag(dag, conf={"day": f"{day:%Y-%m-%d}"})
            day += timedelta(days=1)
        db = home / "warehouse.duckdb"
        before = table(db, "SELECT * FROM raw.generation_audio ORDER BY ALL")
        run_dag(dag, conf={"day": f"{built['start']:%Y-%m-%d}"})  # a rerun of the first day
        after = table(db, "SELECT * FROM raw.generation_audio ORDER BY ALL")

    assert len(before) == AUDIO_CFG.n_generations and after.equals(before)
    assert set(table(db, "SELECT rule FROM raw.quarantine")["rule"]) == BAD_RULES
    outputs = table(db, "SELECT * FROM staging.generation_outputs")
    assert len(outputs) == AUDIO_CFG.n_generations and set(outputs["output_kind"]) == {"audio"}
    for row in outputs.itertuples():
        assert (home / "lake" / row.output_audio_path).is_file()
        assert row.output_audio_path.endswith(f"/{row.output_audio_sha256}.flac")
