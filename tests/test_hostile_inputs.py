"""Issue 13's findings 3, 4, 7 and 8 as a user meets them: the auditor's query sandbox, who
counts as a second person, strict periods / currencies / rates / encodings / numeric ranges, and
the platform boundary. Every refusal is exit code 2 with a message naming the value and the rule,
never a traceback, and nothing is written."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat

import pytest
from settlement_fixtures import seed_warehouse, table
from test_cli import HOLDERS, _write
from typer.testing import CliRunner

from settlement.cli import app
from settlement.warehouse import warehouse

run = CliRunner().invoke


@pytest.fixture()
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("TRIBUTARY_HOME", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "250")
    return tmp_path


def _no_traceback(result, code=2):
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output and result.exception is None or isinstance(result.exception, SystemExit)


# --- finding 3: the auditor's query is sandboxed -------------------------------------------


@pytest.fixture(scope="module")
def closed_month_built(tmp_path_factory):
    """A month calculated, approved, closed and its statements built through the CLI, once for
    the module: each test works on its own copy (`closed_month`). The copy's close row still
    names the snapshot here; the tests pass their own copy's snapshot explicitly."""
    built = tmp_path_factory.mktemp("closed-month")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TRIBUTARY_HOME", str(built))
        seed_warehouse(built / "warehouse.duckdb")
        for args in (["settle", "calculate", "--period", "2026-10", "--by", "alice"],
                     ["settle", "approve", "--period", "2026-10", "--by", "bob"],
                     ["period", "close", "2026-10", "--by", "bob"],
                     ["statements", "build", "--period", "2026-10"]):  # fmt: skip
            assert run(app, args).exit_code == 0, args
    return built


@pytest.fixture()
def closed_month(closed_month_built, home):
    shutil.copytree(closed_month_built, home, dirs_exist_ok=True)  # keeps the read-only modes
    return home / "warehouse.duckdb"


REFUSED = {
    "copy": ("COPY settlement.pools TO '{victim}'", "COPY"),
    "copy_from": ("COPY settlement.pools FROM '/etc/passwd'", "COPY"),
    "export": ("EXPORT DATABASE '{home}/export'", "EXPORT"),
    "attach": ("ATTACH '{home}/other.duckdb' AS other", "ATTACH"),
    "install": ("INSTALL httpfs", "LOAD"),  # DuckDB files INSTALL under the LOAD statement type
    "load": ("LOAD httpfs", "LOAD"),
    "set": ("SET enable_external_access = true", "SET"),
    "pragma": ("PRAGMA enable_profiling", "PRAGMA"),
    "call": ("CALL pragma_version()", "CALL"),
    "two_statements": ("SELECT 1; COPY settlement.pools TO '{victim}'", "2 statements"),
    "hidden_after_comment": ("SELECT 1 -- harmless\n; DELETE FROM settlement.pools", "2 statements"),
    "delete": ("DELETE FROM settlement.pools", "DELETE"),
}


@pytest.mark.parametrize("kind", sorted(REFUSED))
def test_audit_query_runs_one_select_and_refuses_everything_else(closed_month, home, kind):
    victim = next((home / "statements" / "2026-10").rglob("statement_*.csv"))
    snapshot = home / "snapshots" / "warehouse-2026-10.duckdb"
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in (victim, snapshot)}
    sql, named = REFUSED[kind]
    for target in (None, snapshot):
        args = ["audit", "query", sql.format(victim=victim, home=home)]
        result = run(app, args + (["--snapshot", str(target)] if target else []))
        _no_traceback(result)
        assert "auditors run exactly one read-only SELECT (or WITH ... SELECT) statement" in result.output
        assert named in result.output, result.output
    assert {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in before} == before
    assert not (home / "export").exists() and not (home / "other.duckdb").exists()


@pytest.mark.parametrize(
    "sql",
    ["SELECT * FROM read_csv('/etc/passwd')", "SELECT * FROM read_text('/etc/hostname')",
     "SELECT * FROM read_parquet('{home}/lake/x.parquet')", "SELECT * FROM glob('/etc/*')",
     "WITH x AS (SELECT * FROM read_json('/etc/passwd')) SELECT * FROM x"],
)  # fmt: skip
def test_audit_query_cannot_read_files(closed_month, home, sql):
    result = run(app, ["audit", "query", sql.format(home=home)])
    _no_traceback(result)
    assert "reading or writing files is disabled for auditors (enable_external_access=false)" in result.output


def test_audit_query_has_no_replacement_scans(closed_month):
    """A file path as a table name is no table at all without external access."""
    result = run(app, ["audit", "query", "SELECT * FROM '/etc/passwd'"])
    _no_traceback(result)
    assert "Table with name /etc/passwd does not exist" in result.output and "root:" not in result.output


def test_audit_query_reads_with_and_select(closed_month):
    result = run(app, ["audit", "query", "WITH p AS (SELECT pool_amount FROM settlement.pools) SELECT count(*) AS n FROM p"])
    assert result.exit_code == 0 and "1" in result.output, result.output
    assert "false" in run(app, ["audit", "query", "SELECT value FROM duckdb_settings() WHERE name = 'enable_external_access'"]).output


# --- finding 4: identities ------------------------------------------------------------------


@pytest.mark.parametrize("approver", ["alice ", "ALICE", " Alice\t", "ａｌｉｃｅ", "alice\u200b"])
def test_the_preparer_is_the_preparer_whatever_the_spelling(home, approver):
    seed_warehouse(home / "warehouse.duckdb")
    assert run(app, ["settle", "calculate", "--period", "2026-10", "--by", "alice"]).exit_code == 0
    refused = run(app, ["settle", "approve", "--period", "2026-10", "--by", approver])
    _no_traceback(refused)
    assert "calculated by 'alice'; a second person must approve it" in refused.output
    assert table(home / "warehouse.duckdb", "SELECT count(*) AS n FROM settlement.approvals")["n"][0] == 0


@pytest.mark.parametrize("command", ["calculate", "approve"])
@pytest.mark.parametrize("name", ["", "   ", "\u200b"])
def test_empty_names_are_refused(home, command, name):
    seed_warehouse(home / "warehouse.duckdb")
    if command == "approve":
        assert run(app, ["settle", "calculate", "--period", "2026-10", "--by", "alice"]).exit_code == 0
    result = run(app, ["settle", command, "--period", "2026-10", "--by", name])
    _no_traceback(result)
    assert "user name is empty; say who you are" in result.output


def test_airflow_and_the_cli_share_one_identity_rule():
    """The DAG's approval task calls settlement.lifecycle.approve_period, which is where the
    rule lives (settlement.identity.second_person); nothing in dags/ compares names itself."""
    import re
    from pathlib import Path

    source = (Path(__file__).resolve().parents[1] / "dags" / "_approval.py").read_text()
    answer = source.split("def execute_complete")[1]
    assert "lifecycle.approve_period(" in answer
    # no comparison of a user name with == or != (the option chosen may be compared)
    assert not re.search(r"\b(by|user|name|\w+_by)\s*[=!]=|[=!]=\s*(by|user|name|\w+_by)\b", answer)
    lifecycle = (Path(__file__).resolve().parents[1] / "settlement" / "lifecycle.py").read_text()
    assert "identity.second_person(" in lifecycle


# --- finding 7: strict inputs ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["settle", "calculate", "--period", "2026-13", "--by", "alice"], "'2026-13' is not a period: use YYYY-MM"),
        (["settle", "calculate", "--period", "2026-1", "--by", "alice"], "'2026-1' is not a period"),
        (["period", "status", "2026-1"], "'2026-1' is not a period"),
        (["statements", "build", "--period", "26-10"], "'26-10' is not a period"),
        (["fx", "set", "--period", "2026-10", "--from", "EUR", "--to", "USD", "--rate", "NaN", "--source", "x"],
         "FX rate 'NaN' is not a decimal number in plain notation"),
        (["fx", "set", "--period", "2026-10", "--from", "EUR", "--to", "USD", "--rate", "1.123456789", "--source", "x"],
         "FX rate 1.123456789 has more than 8 decimals"),
        (["fx", "set", "--period", "2026-10", "--from", "EUR", "--to", "USD", "--rate", "0", "--source", "x"],
         "FX rate 0 is out of range: must be > 0"),
        (["fx", "set", "--period", "2026-10", "--from", "EUR", "--to", "USD", "--rate", "1e309", "--source", "x"],
         "FX rate '1e309' is not a decimal number"),
        (["fx", "set", "--period", "2026-10", "--from", "EUX", "--to", "USD", "--rate", "1.1", "--source", "x"],
         "--from 'EUX' is not an ISO 4217 currency code"),
        (["fx", "set", "--period", "2026-10", "--from", "eur", "--to", "USD", "--rate", "1.1", "--source", "x"],
         "--from 'eur' is not an ISO 4217 currency code"),
        (["fx", "set", "--period", "2026-10", "--from", "USD", "--to", "USD", "--rate", "1", "--source", "x"],
         "a rate converts between two different currencies"),
        (["fx", "set", "--period", "2026-10", "--from", "EUR", "--to", "USD", "--rate", "1.1", "--source", " "],
         "--source is empty"),
    ],
)
def test_bad_values_are_refused_with_the_rule(home, args, message):
    seed_warehouse(home / "warehouse.duckdb")
    result = run(app, args)
    _no_traceback(result)
    assert message in result.output
    assert table(home / "warehouse.duckdb", "SELECT count(*) AS n FROM ref.fx_rates")["n"][0] == 0
    assert table(home / "warehouse.duckdb", "SELECT count(*) AS n FROM settlement.periods")["n"][0] == 0


def test_a_closed_periods_rate_is_fixed(closed_month, home):
    args = ["fx", "set", "--period", "2026-10", "--from", "EUR", "--to", "USD", "--source", "ECB"]
    result = run(app, args + ["--rate", "1.2"])
    _no_traceback(result)
    assert "period 2026-10 is closed: its FX rates are fixed; a correction is a new rate in an open period" in result.output
    assert run(app, ["fx", "set", "--period", "2026-11", "--from", "EUR", "--to", "USD", "--source", "ECB",
                     "--rate", "1.2"]).exit_code == 0  # fmt: skip


@pytest.mark.parametrize(
    ("encode", "message"),
    [
        (lambda text: text.encode("latin-1"), "holders.csv:3: not UTF-8 text (byte 0xE9 at offset"),
        # UTF-16 without a byte order mark: its ASCII reads as UTF-8 with NULs, the é does not
        (lambda text: text.encode("utf-16-le"), "holders.csv:3: not UTF-8 text (byte 0xE9"),
    ],
)
def test_csv_in_another_encoding_is_refused_with_where(home, encode, message):
    folder = home / "csv"
    args = _write(folder, holders=HOLDERS[:2] + [["RH09", "Société Générale", "publisher", "USD", "0"]])
    (folder / "holders.csv").write_bytes(encode((folder / "holders.csv").read_text()))
    result = run(app, ["catalog", "import", *args])
    _no_traceback(result)
    assert message in result.output and "nothing was imported" in result.output


def test_utf16_with_a_bom_is_read(home):
    folder = home / "csv"
    holders = HOLDERS + [["RH09", "Société Générale", "publisher", "EUR", "0"]]
    args = _write(folder, holders=holders)
    (folder / "holders.csv").write_bytes((folder / "holders.csv").read_text().encode("utf-16"))
    result = run(app, ["catalog", "import", *args])
    assert result.exit_code == 0, result.output
    names = table(home / "warehouse.duckdb", "SELECT name FROM ref.rights_holders WHERE rights_holder_id = 'RH09'")
    assert names["name"][0] == "Société Générale"


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("min_payout", "1e309", "holders.csv:2: min_payout: must be an amount >= 0 and < 10000000000000000"),
        ("min_payout", "NaN", "holders.csv:2: min_payout: must be an amount"),
        ("min_payout", "-1", "holders.csv:2: min_payout: must be an amount >= 0"),
        ("payout_currency", "EUX", "holders.csv:2: payout_currency: not an ISO 4217 currency code"),
    ],
)
def test_numeric_and_currency_cells_are_range_checked(home, column, value, message):
    holders = [HOLDERS[0], [value if c == column else v for c, v in zip(HOLDERS[0], HOLDERS[1], strict=True)], *HOLDERS[2:]]
    result = run(app, ["catalog", "import", *_write(home / "csv", holders=holders)])
    _no_traceback(result)
    assert message in result.output


def test_restoring_a_file_that_is_not_a_database(home):
    bogus = home / "notes.duckdb"
    bogus.write_bytes(b"hello, I am not a database\n" * 100)
    result = run(app, ["period", "restore", "--snapshot", str(bogus), "--sha256", "0" * 64])
    _no_traceback(result)
    assert f"{bogus} is not a DuckDB database" in result.output


# --- finding 8: the platform boundary --------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["../escape.pt", "/etc/cron.d/x", "checkpoints/../../x", "a\\..\\b", "", ".", "x\x00y", "dir//f",
     "~/f", "checkpoints/" + "d/" * 5 + "f"],
)  # fmt: skip
def test_platform_file_names_must_stay_inside_the_model_folder(tmp_path, name):
    from settlement.ingest import IngestError, model_file_target

    with pytest.raises(IngestError, match="platform file name .* refused"):
        model_file_target(tmp_path / "models" / "p1" / "mv1", name)


def test_platform_model_version_must_be_one_safe_name(tmp_path):
    from settlement.ingest import IngestError, model_version_dir

    for version in ("..", "../../etc", "a/b", "", "/abs"):
        with pytest.raises(IngestError, match="model version .* refused"):
            model_version_dir(tmp_path / "models", "p1", version)
    assert model_version_dir(tmp_path / "models", "p1", "mv-2026.10_a") == tmp_path / "models" / "p1" / "mv-2026.10_a"


def test_a_platform_download_that_names_a_path_outside_is_refused(tmp_path):
    """A real server (loopback) whose model listing names `../../outside.txt`: the client
    refuses it before fetching, and nothing is written outside the model folder."""
    import json

    import uvicorn  # noqa: F401  (the sandbox server runs it)

    from sandbox.server import SandboxServer
    from settlement.ingest import GenerationLogClient, IngestError, PlatformEndpoint

    models = tmp_path / "platform_models"
    (models / "mv1").mkdir(parents=True)
    (models / "mv1" / "model_version.json").write_text(json.dumps({"model_version": "mv1"}))
    log = tmp_path / "log.jsonl"
    log.write_text("")
    with SandboxServer(log, models, "tok-8") as server:
        client = GenerationLogClient(PlatformEndpoint("p1", server.base_url, "tok-8"))
        evil = {"files": [{"name": "../../outside.txt", "sha256": "0" * 64, "bytes": 1}]}
        client._get_json = lambda *a, **k: evil  # the listing as a hostile platform would send it
        dest = tmp_path / "home" / "models" / "p1" / "mv1"
        with pytest.raises(IngestError, match="platform file name '../../outside.txt' refused"):
            client.download_model_version("mv1", dest)
    assert not (tmp_path / "home" / "outside.txt").exists() and not (tmp_path / "outside.txt").exists()


@pytest.mark.parametrize(
    ("url", "ok"),
    [("https://api.acme.example", True), ("http://127.0.0.1:8765", True), ("http://localhost:8765", True),
     ("http://[::1]:8765", True), ("http://api.acme.example", False), ("http://10.0.0.5", False),
     ("api.acme.example", False), ("ftp://api.acme.example", False)],
)  # fmt: skip
def test_tokens_travel_only_over_https_except_to_loopback(url, ok):
    from settlement.ingest import IngestError, PlatformEndpoint

    if ok:
        assert PlatformEndpoint("acme", url, "secret-token").base_url == url
    else:
        with pytest.raises(IngestError, match="must use https") as err:
            PlatformEndpoint("acme", url, "secret-token")
        assert "secret-token" not in str(err.value)


def test_an_airflow_connection_without_a_scheme_means_https(monkeypatch):
    import json

    monkeypatch.setenv("AIRFLOW_CONN_ACME_LOG", json.dumps({"conn_type": "http", "host": "api.acme.example",
                                                              "password": "tok"}))  # fmt: skip
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "dags"))
    from _common import endpoint

    assert endpoint("acme", "acme_log").base_url == "https://api.acme.example"


def test_snapshots_and_statements_stay_read_only_for_the_auditor(closed_month, home):
    snapshot = home / "snapshots" / "warehouse-2026-10.duckdb"
    assert os.stat(snapshot).st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH) == 0
    with warehouse(home / "warehouse.duckdb", read_only=True) as con:
        assert con.execute("SELECT count(*) FROM settlement.closes WHERE snapshot_sha256 IS NOT NULL").fetchall()[0][0] == 1
