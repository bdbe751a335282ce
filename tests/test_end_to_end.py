"""One small month through real Airflow (dag.test), a real DuckDB file and both sandbox
platforms' real HTTP servers on loopback: the symbolic platform (token outputs) and the audio
platform (a tiny diffusers diffusion model, FLAC outputs downloaded and checked by sha256),
under two contracts. Nothing of ours is mocked."""

from __future__ import annotations

import hashlib
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
    "attribution.shares", "attribution.share_rules", "attribution.group_shares", "attribution.rejections",
    "attribution.runs",
    "settlement.periods",
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
    # each platform's pool at its own contract's rate: 30 % symbolic, 25 % audio
    by_platform = {p["platform_id"]: p for p in summary["platforms"]}
    assert set(by_platform) == {"sandbox", "sandbox-audio"}
    for platform_id, rate in [("sandbox", "0.3"), ("sandbox-audio", "0.25")]:
        p = by_platform[platform_id]
        assert p["generations"] > 0 and p["pool"] > 0 and p["pool"] == p["paid"]
        assert p["pool"] == (p["revenue"] * Decimal(rate)).quantize(Decimal("0.01"))
    assert by_platform["sandbox-audio"]["audio_outputs"] == by_platform["sandbox-audio"]["generations"]
    assert summary["pool"] == sum(p["pool"] for p in summary["platforms"])


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
    planted = sandbox["planted"]["bad_records"] + sandbox["audio"]["planted"]["bad_records"]
    assert {"audio_sha256_mismatch", "audio_missing"} <= {b["rule"] for b in planted}
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
    # the rerun is logged (one manual run pulls every daily window of the month for each
    # platform, issue 14), and it loaded nothing new
    n_platforms = _one(home, "SELECT count(*) FROM ref.platforms")[0][0]
    rerun = n_platforms * 31  # October's days
    rows = _one(home, f"SELECT loaded_new FROM raw.ingest_windows ORDER BY finished_at DESC LIMIT {rerun}")
    assert _one(home, "SELECT count(*) FROM raw.ingest_windows")[0][0] == windows_before + rerun
    assert all(r[0] == 0 for r in rows)


def test_a_near_copy_of_a_training_work_gives_that_work_the_largest_share(month):
    home, sandbox = month
    copies = sandbox["planted"]["copies"]
    assert copies
    for copy in copies:
        top = _one(
            home,
            "SELECT work_id FROM attribution.shares WHERE platform_id = 'sandbox' AND generation_id = ? "
            "AND NOT is_residual ORDER BY share DESC, work_id LIMIT 1",
            [copy["generation_id"]],
        )
        assert top == [(copy["work_id"],)], copy


def test_audio_generations_are_attributed_through_airflow_and_exact_copies_find_their_work(month):
    """The audio path end to end: every audio generation the ingest landed was attributed by
    the DAG through the audio adapter (entry point named by the model version), and each
    exact planted copy of a catalog recording ranks that work first."""
    home, sandbox = month
    audio = sandbox["audio"]
    (n_audio,) = _one(home, "SELECT count(*) FROM staging.generation_outputs WHERE output_kind = 'audio'")[0]
    (n_attr,) = _one(
        home,
        "SELECT count(DISTINCT s.generation_id) FROM attribution.shares AS s "
        "JOIN staging.generation_outputs AS o USING (platform_id, generation_id) WHERE o.output_kind = 'audio'",
    )[0]
    assert n_audio == len([r for r in audio["log_path"].read_text().splitlines()]) - len(
        audio["planted"]["bad_records"]
    )
    assert n_attr == n_audio
    exact = [c for c in audio["planted"]["copies"] if c["transform"] == "exact"]
    assert exact
    for copy in exact:
        top = _one(
            home,
            "SELECT work_id FROM attribution.shares WHERE platform_id = 'sandbox-audio' AND generation_id = ? "
            "AND NOT is_residual ORDER BY score DESC, work_id LIMIT 1",
            [copy["generation_id"]],
        )
        assert top == [(copy["work_id"],)], copy


def test_audio_lines_name_the_generations_file_and_sha256(month):
    """A holder paid for an audio generation finds, in its per-generation CSV, the file the
    platform delivered (content-addressed in the lake) and the sha256 it was checked against."""
    import hashlib

    home, _ = month
    folder = home / "statements" / "2026-10"
    rows = pd.concat(
        [pd.read_csv(p, dtype=str).assign(file=p.name) for p in folder.glob("*/generations_*.csv")]
    )
    audio_rows = rows[rows["output_kind"] == "audio"]
    assert not audio_rows.empty and set(audio_rows["platform_id"]) == {"sandbox-audio"}
    for _, row in audio_rows.drop_duplicates("generation_id").iterrows():
        path = home / "lake" / row["output_audio_file"]
        assert path.name == f"{row['output_audio_sha256']}.flac"
        assert hashlib.sha256(path.read_bytes()).hexdigest() == row["output_audio_sha256"]
    assert (rows[rows["output_kind"] == "tokens"]["output_audio_file"].isna()).all()


def test_the_contracts_attribution_terms_reach_the_attribution_run(month):
    """sandbox/demo.py registers both contracts with the calibrated rule ("pvalue" at the
    demo's alpha) and TRAK's curvature named; the runs that attributed its month record both
    in params_json, with the null each run tested against (the model's own samples stored
    beside each model version when the demo built it)."""
    home, _ = month
    runs = _one(home, "SELECT method, params_json FROM attribution.runs")
    assert runs
    for method, params in runs:
        params = json.loads(params)
        assert method == "trak" and params["curvature"] == "kfac-gram"
        assert params["policy"]["top_k"] == 8
    by_platform = dict(_one(home, "SELECT platform_id, params_json FROM attribution.runs"))
    from sandbox.demo import AUDIO_SMALL, SMALL

    symbolic = json.loads(by_platform["sandbox"])
    assert (symbolic["policy"]["confidence"], symbolic["policy"]["alpha"]) == ("pvalue", SMALL.alpha)
    assert 0 < symbolic["null"]["n"] <= SMALL.null_samples
    audio = json.loads(by_platform["sandbox-audio"])
    assert (audio["policy"]["confidence"], audio["policy"]["alpha"]) == ("pvalue", SMALL.audio_alpha)
    assert 0 < audio["null"]["n"] <= AUDIO_SMALL["null_samples"]
    assert audio["adapter"].startswith("sandbox-audio-diffusion/")


def test_the_months_statements_say_which_rule_paid_each_generation(month):
    """Every attributed generation of the demo month has its rule decision in the warehouse
    (the calibrated rule, its alpha and p-value), each per-generation statement line of the
    output royalty names it as stored ("paid by attribution (p = ... <= alpha ...)"), and
    each holder's PDF says how many generations the rule paid and how many fell back."""
    from pypdf import PdfReader

    home, sandbox = month
    rules = _one(home, "SELECT platform_id, generation_id, rule, alpha, p_value, paid_by, "
                       "staging.share_rule_note(rule, alpha, min_confidence, confidence, p_value, paid_by) "
                       "FROM attribution.share_rules")  # fmt: skip
    (n_attributed,) = _one(home, "SELECT count(DISTINCT (platform_id, generation_id)) FROM attribution.shares")[0]
    assert len(rules) == n_attributed
    assert {r[2] for r in rules} == {"pvalue"} and all(0 < r[4] <= 1 for r in rules)
    assert all((r[5] == "attribution") == (r[4] <= r[3]) for r in rules)
    by_id = {(r[0], r[1]): r for r in rules}
    copies = [("sandbox", c["generation_id"]) for c in sandbox["planted"]["copies"]]
    assert all(by_id[c][5] == "attribution" for c in copies)  # symbolic copies are paid their work
    folder = home / "statements" / "2026-10"
    rows = pd.concat([pd.read_csv(p, dtype=str) for p in folder.glob("*/generations_*.csv")])
    output = rows[rows["royalty"] == "output"]
    assert not output.empty
    for _, row in output.iterrows():
        rule = by_id[(row["platform_id"], row["generation_id"])]
        assert row["paid_by"] == rule[6] and row["paid_by"].startswith("paid by attribution (p = ")
    pdf = next(folder.glob("*/statement_*.pdf"))
    text = " ".join(" ".join(page.extract_text().split()) for page in PdfReader(pdf).pages)
    assert "Which rule paid each generation" in text and "fell back" in text


def test_run_manifest_names_model_contract_fx_and_input_file_digests(month):
    home, _ = month
    import hashlib

    (details,) = _one(
        home,
        "SELECT details_json FROM audit.runs WHERE kind = 'settlement' AND subject = '2026-10' "
        "ORDER BY finished_at DESC LIMIT 1",
    )[0]
    manifest = json.loads(details)
    registered = _one(home, "SELECT model_version, model_sha256, manifest_sha256 FROM ref.model_versions ORDER BY ALL")
    assert sorted((m["model_version"], m["model_sha256"], m["manifest_sha256"]) for m in manifest["model_versions"]) == registered
    assert len(registered) == 2  # one model version per platform
    contracts = sorted((c["contract_id"], c["contract_version"]) for c in manifest["contracts"])
    assert contracts == [("SBX-2026", 1), ("SBX-AUDIO-2026", 1)]
    assert len(manifest["fx_table_sha256"]) == 64
    windows = manifest["input_files"]
    assert len(windows) == 2 * 31  # every daily window of October, both platforms (issue 14)
    files = [w for w in windows if w["raw_file"]]
    assert len(files) == 4  # SMALL's generations fall on two days: two files per platform
    for f in files:  # an auditor can re-hash every input file
        assert hashlib.sha256(Path(f["raw_file"]).read_bytes()).hexdigest() == f["raw_file_sha256"]
    counts = manifest["row_counts"]
    assert counts["generations"] == _one(home, "SELECT count(*) FROM raw.generations")[0][0]
    assert counts["statement_lines"] > 0 and counts["attribution_runs"] >= 1


def test_every_holder_of_the_month_can_add_up_its_statement(month):
    """The demo's small two-platform month through Airflow: for every holder, the PDF's listed
    works (and grouped line) sum to its printed total, the CSV has one row per statement line
    in the warehouse, and every DSR file passes the DDEX validator with usages per work equal
    to the statement's generation counts (tests/test_statements.py::check_holder_files)."""
    from test_statements import check_holder_files

    home, _ = month
    holders = {r[0] for r in _one(home, "SELECT DISTINCT rights_holder_id FROM settlement.statement_lines")}
    assert holders
    for holder in sorted(holders):
        check_holder_files(home / "warehouse.duckdb", home / "statements", "2026-10", holder)


def test_the_closed_demo_month_mailed_each_holder_contact_its_amount_and_sha256(month):
    """The demo registers a contact per holder; the DAG's close mailed each one once, through
    the demo's local SMTP server (sandbox/mailsink.py, TRIBUTARY_HOME/outbox), with the amounts
    of the stored ledger rows and the sha256 of the stored final statement files."""
    import re
    from email import message_from_bytes

    from sandbox import demo

    home, _ = month
    period = demo.SMALL.period
    mails = [message_from_bytes(p.read_bytes()) for p in sorted((home / "outbox").glob("*.eml"))]
    contacts = _one(home, "SELECT rights_holder_id, email FROM ref.holder_contacts")
    holders = {h for (h,) in _one(home, "SELECT DISTINCT rights_holder_id FROM settlement.statement_files WHERE period = ?", [period])}
    expected = {e: h for h, e in contacts if h in holders}
    assert expected and sorted(m["To"] for m in mails) == sorted(expected)  # one mail per contact
    balances = {(h, c): (e, p or 0, cl) for h, c, e, p, cl in _one(home, """SELECT rights_holder_id, currency,
        sum(amount) FILTER (WHERE period = ? AND (transaction_id LIKE 'settle/%' OR transaction_id LIKE 'reverse/%')),
        -sum(amount) FILTER (WHERE period = ? AND transaction_id LIKE 'payout/%'),
        sum(amount) FILTER (WHERE period <= ?) FROM staging.holder_postings GROUP BY ALL""", [period] * 3)}  # fmt: skip
    files = _one(home, "SELECT rights_holder_id, path, sha256 FROM settlement.statement_files WHERE period = ?", [period])
    for m in mails:
        holder = expected[m["To"]]
        body = m.get_payload(decode=True).decode().replace("\r\n", "\n")
        for (h, cur), (earned, paid, closing) in balances.items():
            if h == holder:
                assert re.search(rf"Earned in {period}:\s+{earned or 0:.2f} {cur}$", body, re.MULTILINE), body
                assert re.search(rf"Paid out at the close:\s+{paid or 0:.2f} {cur}$", body, re.MULTILINE), body
                assert re.search(rf"Balance carried forward:\s+{closing or 0:.2f} {cur}$", body, re.MULTILINE), body
        mine = {Path(p).name: s for h, p, s in files if h == holder}
        assert dict(re.findall(r"^\s+(\S+)\s+sha256 ([0-9a-f]{64})$", body, re.MULTILINE)) == mine
        for h, p, s in files:
            if h == holder:
                assert hashlib.sha256((home / "statements" / p).read_bytes()).hexdigest() == s
    assert {s for (s,) in _one(home, "SELECT DISTINCT status FROM settlement.deliveries")} == {"sent"}
