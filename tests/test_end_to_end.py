"""One small month through real Airflow (dag.test), a real DuckDB file and the sandbox
platform's real HTTP server on loopback. Nothing of ours is mocked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.e2e

# Everything a month's settlement wrote. raw.ingest_windows and audit.runs log every attempt
# (a rerun adds a line there by design) and are compared separately.
BUSINESS_TABLES = [
    "raw.generations", "raw.quarantine", "ref.works", "ref.rights_holders", "ref.splits",
    "ref.platforms", "ref.contracts", "ref.model_versions", "ref.training_manifest",
    "attribution.shares", "attribution.rejections", "attribution.runs", "settlement.periods",
    "settlement.pools", "settlement.holder_totals", "settlement.statement_lines",
    "ledger.postings", "settlement.statement_files",
]  # fmt: skip


@pytest.fixture(scope="module")
def month(tmp_path_factory):
    home = tmp_path_factory.mktemp("tributary")
    os.environ["TRIBUTARY_HOME"] = str(home)
    airflow_home = Path(os.environ["AIRFLOW_HOME"])
    if not (airflow_home / "airflow.db").exists():
        subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)
    from sandbox import demo

    sandbox = demo.build_sandbox(home, demo.SMALL)
    demo.run_month(home, demo.SMALL, sandbox)
    return home, sandbox


def _snapshot(home: Path) -> dict[str, pd.DataFrame]:
    from settlement.warehouse import warehouse

    out = {}
    with warehouse(home / "warehouse.duckdb", read_only=True) as con:
        for t in BUSINESS_TABLES:
            cur = con.execute(f"SELECT * FROM {t} ORDER BY ALL")
            out[t] = pd.DataFrame(cur.fetchall(), columns=[d[0] for d in cur.description])
    return out


def _one(home: Path, sql: str, params=None):
    from settlement.warehouse import warehouse

    with warehouse(home / "warehouse.duckdb", read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def test_month_reconciles_to_the_pool(month):
    home, _ = month
    from sandbox.demo import report

    summary = report(home, "2026-10")
    assert summary["generations_ingested"] > 0
    assert summary["attributed"] + summary["attribution_rejected"] == summary["generations_ingested"]
    assert summary["pool"] > 0
    assert summary["pool"] == summary["total_paid"]
    expected_pool = (summary["revenue"] * Decimal("0.3")).quantize(Decimal("0.01"))
    assert summary["pool"] == expected_pool


def test_every_holder_with_earnings_has_statements(month):
    home, _ = month
    earners = {r[0] for r in _one(home, "SELECT rights_holder_id FROM settlement.holder_totals WHERE amount > 0")}
    assert earners
    folder = home / "statements" / "2026-10"
    for holder in earners:
        csv_path = folder / holder / f"statement_2026-10_{holder}.csv"
        pdf_path = folder / holder / f"statement_2026-10_{holder}.pdf"
        assert csv_path.exists() and pdf_path.read_bytes()[:5] == b"%PDF-"
        lines = pd.read_csv(csv_path, dtype=str)
        total = sum(Decimal(a) for a in lines["amount"])
        (expected,) = _one(home, "SELECT sum(amount) FROM settlement.holder_totals WHERE rights_holder_id = ?", [holder])[0]
        assert total == expected
    summary = json.loads((folder / "period_summary.json").read_text())
    assert summary["statements"] == len(earners)


def test_planted_bad_records_are_quarantined_with_their_rule(month):
    home, sandbox = month
    planted = sandbox["planted"]["bad_records"]
    assert planted
    rows = {gid: (rule, reason) for gid, rule, reason in _one(home, "SELECT generation_id, rule, reason FROM raw.quarantine")}
    for bad in planted:
        rule, reason = rows[bad["generation_id"]]
        assert rule == bad["rule"]
        assert bad["generation_id"] in reason
    loaded = _one(home, "SELECT count(*) FROM raw.generations WHERE generation_id IN (SELECT generation_id FROM raw.quarantine)")
    assert loaded[0][0] == 0
    # what the platform reported for each window = loaded + quarantined
    for received, valid, quarantined, reported in _one(
        home, "SELECT received, valid_rows, quarantined, reported_count FROM (SELECT received, loaded_new + already_loaded AS valid_rows, quarantined, reported_count FROM raw.ingest_windows)"
    ):
        assert received == reported == valid + quarantined


def test_second_run_of_the_same_interval_changes_no_row(month):
    home, sandbox = month
    from sandbox import demo

    before = _snapshot(home)
    windows_before = _one(home, "SELECT count(*) FROM raw.ingest_windows")[0][0]
    demo.run_month(home, demo.SMALL, sandbox)
    after = _snapshot(home)
    for t in BUSINESS_TABLES:
        pd.testing.assert_frame_equal(before[t], after[t], obj=t)
    # the rerun is logged, and it loaded nothing new
    rows = _one(home, "SELECT loaded_new FROM raw.ingest_windows ORDER BY finished_at DESC LIMIT 2")
    assert _one(home, "SELECT count(*) FROM raw.ingest_windows")[0][0] == windows_before + 2
    assert all(r[0] == 0 for r in rows)


def test_a_near_copy_of_a_training_work_gives_that_work_the_largest_share(month):
    home, sandbox = month
    copies = sandbox["planted"]["copies"]
    assert copies
    for copy in copies:
        top = _one(
            home,
            "SELECT work_id FROM attribution.shares WHERE generation_id = ? AND NOT is_residual ORDER BY share DESC, work_id LIMIT 1",
            [copy["generation_id"]],
        )
        assert top == [(copy["work_id"],)], copy


def test_the_contracts_attribution_terms_reach_the_attribution_run(month):
    """sandbox/demo.py registers SBX-2026 with min_confidence 6 and TRAK's curvature named;
    the runs that attributed its month record both in params_json."""
    home, _ = month
    runs = _one(home, "SELECT method, params_json FROM attribution.runs")
    assert runs
    for method, params in runs:
        params = json.loads(params)
        assert method == "trak" and params["curvature"] == "kfac-gram"
        assert params["policy"]["min_confidence"] == 6.0 and params["policy"]["top_k"] == 8


def test_run_manifest_names_model_contract_fx_and_input_file_digests(month):
    home, _ = month
    import hashlib

    (details,) = _one(
        home,
        "SELECT details_json FROM audit.runs WHERE kind = 'settlement' AND subject = '2026-10' "
        "ORDER BY finished_at DESC LIMIT 1",
    )[0]
    manifest = json.loads(details)
    registered = _one(home, "SELECT model_version, model_sha256, manifest_sha256 FROM ref.model_versions")
    assert [(m["model_version"], m["model_sha256"], m["manifest_sha256"]) for m in manifest["model_versions"]] == registered
    assert [(c["contract_id"], c["contract_version"]) for c in manifest["contracts"]] == [("SBX-2026", 1)]
    assert len(manifest["fx_table_sha256"]) == 64
    files = manifest["input_files"]
    assert len(files) == 2  # SMALL ingests two daily windows
    for f in files:  # an auditor can re-hash every input file
        assert hashlib.sha256(Path(f["raw_file"]).read_bytes()).hexdigest() == f["raw_file_sha256"]
    counts = manifest["row_counts"]
    assert counts["generations"] == _one(home, "SELECT count(*) FROM raw.generations")[0][0]
    assert counts["statement_lines"] > 0 and counts["attribution_runs"] >= 1
