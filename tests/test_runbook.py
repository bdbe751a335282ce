"""The runbook's procedures, followed as written (docs/runbook.md): the commands of each
procedure are read from the runbook itself (its code blocks, or the commands written inline in
a section's steps) and run through the real CLI on a real warehouse. Procedures with no
`tributary` command (rotating a token is done in Airflow) have none to follow here. Also issue 13's findings 1 (a close cut short), 5 (restore and verify) and 6
(ownership change)."""

from __future__ import annotations

import os
import re
import shlex
import stat
from pathlib import Path

import pytest
from settlement_fixtures import seed_warehouse, table
from test_cli import HOLDERS, SPLITS, WORKS, _write
from typer.testing import CliRunner

from settlement import lifecycle
from settlement.cli import app
from settlement.warehouse import warehouse

ROOT = Path(__file__).resolve().parents[1]
RUNBOOK = (ROOT / "docs" / "runbook.md").read_text()
run = CliRunner().invoke


class Killed(BaseException):
    """Stands for the process dying: nothing in the command catches it."""


def procedure(title: str) -> list[list[str]]:
    """The `tributary ...` commands of a runbook section, in order (`$VAR` placeholders kept)."""
    section = RUNBOOK.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]
    commands = []
    for block in re.findall(r"```\n(.*?)```", section, re.DOTALL):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("  #", 1)[0].strip()
            if line.startswith("tributary "):
                commands.append(shlex.split(line)[1:])
    assert commands, f"runbook section {title!r} has no tributary command"
    return commands


def inline_commands(title: str) -> list[list[str]]:
    """The `tributary ...` commands written inline in a section's prose (`...` in backticks,
    possibly wrapped over lines), in order; those with a `...` placeholder are left out."""
    section = RUNBOOK.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]
    spans = [" ".join(s.split()) for s in re.findall(r"`(tributary [^`]+)`", section)]
    commands = [shlex.split(s)[1:] for s in spans if "..." not in s]
    assert commands, f"runbook section {title!r} has no inline tributary command"
    return commands


def follow(title: str, values: dict[str, str], expect: dict[int, int] | None = None, inline: bool = False) -> list:
    results = []
    for n, args in enumerate(inline_commands(title) if inline else procedure(title)):
        args = [values.get(a, a) for a in args]
        args = [re.sub(r"\$(\w+)", lambda m: values[m.group(1)], a) for a in args]
        result = run(app, args)
        assert result.exit_code == (expect or {}).get(n, 0), (args, result.output)
        results.append(result)
    return results


@pytest.fixture()
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("TRIBUTARY_HOME", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "250")
    return tmp_path


def _closed_october(home: Path) -> Path:
    db = home / "warehouse.duckdb"
    seed_warehouse(db, n_works=6, n_generations=30, n_holders=3)
    for args in (["settle", "calculate", "--period", "2026-10", "--by", "alice"],
                 ["settle", "approve", "--period", "2026-10", "--by", "bob"],
                 ["statements", "build", "--period", "2026-10"],  # the drafts, as the DAG writes them
                 ["period", "close", "2026-10", "--by", "bob"],
                 ["statements", "build", "--period", "2026-10"]):  # fmt: skip
        assert run(app, args).exit_code == 0, args
    return db


# --- the runbook's other procedures -----------------------------------------------------------


def test_month_end_checklist_as_the_runbook_says(home):
    """Every complete `tributary` command of the checklist, in its order: the ingest and
    quarantine queries, calculate, approve, close, statements, status, verify, the snapshot."""
    seed_warehouse(home / "warehouse.duckdb", n_works=6, n_generations=30, n_holders=3)
    results = follow("Month-end checklist", {}, inline=True)
    said = {" ".join(args[:2]): r.output for args, r in zip(inline_commands("Month-end checklist"), results, strict=True)}
    assert "closed" in said["period status"]
    assert "files verified" in said["statements verify"]
    assert "2026-10" in said["audit snapshot"]


def test_catalog_import_as_the_runbook_says(home):
    files = _write(home / "csv")
    follow("Importing the catalog", {"works.csv": files[1], "holders.csv": files[3], "splits.csv": files[5]})
    assert table(home / "warehouse.duckdb", "SELECT count(*) AS n FROM ref.works")["n"][0] == len(WORKS) - 1


def test_adding_a_platform_as_the_runbook_says(home):
    follow("Adding a platform", {}, inline=True)
    assert "Acme Music AI" in run(app, ["platforms", "list"]).output


# --- finding 6 and the runbook's "Changing ownership" ----------------------------------------


def test_ownership_change_as_the_runbook_says(home):
    db = _closed_october(home)
    before = table(db, "SELECT rights_holder_id FROM ref.splits WHERE work_id = 'W000' AND right_type = 'master'")
    new_owner = next(h for h in ("RH00", "RH01", "RH02") if h not in set(before["rights_holder_id"]))
    results = follow("Changing ownership of a work", {"WORK": "W000", "RIGHT": "master", "NEW_HOLDER": new_owner,
                                                      "MONTH": "2026-11", "FIRST_DAY": "2026-11-01"})  # fmt: skip
    assert any(new_owner in r.output for r in results)
    rows = table(db, "SELECT rights_holder_id, effective_from, effective_to FROM ref.splits "
                     "WHERE work_id = 'W000' AND right_type = 'master' ORDER BY effective_from")  # fmt: skip
    assert [str(d) for d in rows["effective_to"][:-1]] == ["2026-11-01"] * (len(rows) - 1)
    assert rows["rights_holder_id"].iloc[-1] == new_owner and str(rows["effective_from"].iloc[-1]) == "2026-11-01"
    # November is not blocked (no split_sum 2.000000) and pays the new owner; October is untouched
    assert run(app, ["settle", "calculate", "--period", "2026-11", "--by", "alice"]).exit_code == 0
    assert table(db, "SELECT count(*) AS n FROM settlement.adjustments")["n"][0] == 0


def test_an_import_with_an_end_date_closes_the_old_row(home):
    """Finding 6: splits loaded with INSERT OR IGNORE dropped the old row's new end date, both
    holders then owned the work and the next month stopped at split_sum 2.000000."""
    assert run(app, ["catalog", "import", *_write(home / "v1")]).exit_code == 0
    seed_warehouse(home / "warehouse.duckdb", catalog=False)
    change = SPLITS[:1] + [
        ["W001", "master", "RH01", "1", "2020-01-01", "2026-10-01"],  # the old row, now ending
        ["W001", "master", "RH02", "1", "2026-10-01", ""],  # the new owner
    ]
    result = run(app, ["catalog", "import", *_write(home / "v2", splits=change)])
    assert result.exit_code == 0, result.output
    calc = run(app, ["settle", "calculate", "--period", "2026-10", "--by", "alice"])
    assert calc.exit_code == 0 and "split_sum" not in calc.output, calc.output
    rows = table(home / "warehouse.duckdb", "SELECT rights_holder_id, coalesce(CAST(effective_to AS VARCHAR), 'open') AS t "
                                             "FROM ref.splits WHERE work_id = 'W001' AND right_type = 'master' ORDER BY 1")  # fmt: skip
    assert rows.values.tolist() == [["RH01", "2026-10-01"], ["RH02", "open"]]
    paid = table(home / "warehouse.duckdb", "SELECT DISTINCT rights_holder_id FROM settlement.statement_lines "
                                             "WHERE work_id = 'W001' AND right_type = 'master'")  # fmt: skip
    assert paid["rights_holder_id"].tolist() == ["RH02"]


def test_an_import_that_would_leave_two_owners_is_refused(home):
    assert run(app, ["catalog", "import", *_write(home / "v1")]).exit_code == 0
    overlap = SPLITS[:1] + [["W001", "master", "RH02", "1", "2026-11-01", ""]]  # old row not ended
    result = run(app, ["catalog", "import", *_write(home / "v2", splits=overlap)])
    assert result.exit_code == 2
    assert "splits of W001/master in force on 2026-11-01 sum to 2.000000, not 1" in result.output


@pytest.mark.parametrize("shares", [("0.5", "0.4999999"), ("0.5", "0.499999"), ("0.5", "0.500001")])
def test_import_tolerance_is_the_gates_rule(home, shares):
    """The import accepted 0.999999..1.000001 that the calculation then refused."""
    splits = SPLITS[:1] + [
        ["W003", "publishing", "RH00", shares[0], "2020-01-01", ""],
        ["W003", "publishing", "RH01", shares[1], "2020-01-01", ""],
    ] + [r for r in SPLITS[1:] if not (r[0] == "W003" and r[1] == "publishing")]
    result = run(app, ["catalog", "import", *_write(home / "csv", works=WORKS, holders=HOLDERS, splits=splits)])
    assert result.exit_code == 2, result.output
    assert "splits of W003/publishing in force on 2020-01-01 sum to" in result.output


def test_splits_change_refuses_what_the_month_would_refuse(home):
    assert run(app, ["catalog", "import", *_write(home / "v1")]).exit_code == 0
    base = ["splits", "change", "--work", "W001", "--right", "master"]
    for args, message in [
        (["--from", "2026-11-15", "--holder", "RH02=1"], "ownership changes are dated on the 1st of a month"),
        (["--from", "2026-11-01", "--holder", "RH02=0.6", "--holder", "RH00=0.3"], "shares sum to 0.9, not 1"),
        (["--from", "2026-11-01", "--holder", "RH99=1"], "RH99: not in the catalog"),
        (["--from", "2026-11-01", "--holder", "RH02"], "write HOLDER_ID=SHARE"),
        (["--from", "2026-11-01", "--holder", "RH02=1e0"], "not a decimal number in plain notation"),
    ]:
        result = run(app, base + args)
        assert result.exit_code == 2 and message in result.output, (args, result.output)
    assert run(app, base + ["--from", "2026-11-01", "--holder", "RH02=1"]).exit_code == 0
    again = run(app, base + ["--from", "2026-11-01", "--holder", "RH02=0.5", "--holder", "RH00=0.5"])
    assert again.exit_code == 0, again.output  # the same date again replaces that change
    rows = table(home / "warehouse.duckdb", "SELECT count(*) AS n FROM ref.splits WHERE work_id = 'W001' "
                                             "AND right_type = 'master' AND effective_from = DATE '2026-11-01'")  # fmt: skip
    assert rows["n"][0] == 2


# --- finding 5 and the runbook's "Restoring from a snapshot" -----------------------------------


def test_restore_and_verify_as_the_runbook_says(home):
    db = _closed_october(home)
    digest = run(app, ["audit", "snapshot", "2026-10"]).output.split()[-1]
    db.write_bytes(b"the disk ate it")  # the live warehouse is lost
    results = follow("Restoring from a snapshot", {"PERIOD": "2026-10", "DIGEST": digest,
                                                  "SNAPSHOT": str(home / "snapshots" / "warehouse-2026-10.duckdb")})  # fmt: skip
    assert "files verified" in results[-1].output and "error" not in results[-1].output
    assert list(home.glob("warehouse.duckdb.before-restore-*"))
    assert table(db, "SELECT status FROM settlement.periods WHERE period = '2026-10'")["status"][0] == "closed"


def test_a_tampered_snapshot_is_not_restored_even_with_its_own_digest(home):
    """Finding 5: `--sha256 <digest of the tampered file>` restored a tampered snapshot while
    the live warehouse, which records the genuine digest, still opened."""
    _closed_october(home)
    snapshot = home / "snapshots" / "warehouse-2026-10.duckdb"
    tampered = home / "tampered.duckdb"
    tampered.write_bytes(snapshot.read_bytes())
    with warehouse(tampered) as con:
        con.execute("UPDATE settlement.holder_totals SET amount = amount + 1000")
    import hashlib

    forged = hashlib.sha256(tampered.read_bytes()).hexdigest()
    result = run(app, ["period", "restore", "--snapshot", str(tampered), "--sha256", forged])
    assert result.exit_code == 2
    assert "is not the digest recorded at the close of 2026-10" in result.output
    assert table(home / "warehouse.duckdb", "SELECT count(*) AS n FROM settlement.restores")["n"][0] == 0


def test_verify_passes_after_a_genuine_restore(home):
    """Finding 5: after a genuine restore, `statements verify` failed on every file, because the
    snapshot held the draft statements' hashes."""
    _closed_october(home)
    snapshot = home / "snapshots" / "warehouse-2026-10.duckdb"
    restored = run(app, ["period", "restore", "--snapshot", str(snapshot)])
    assert restored.exit_code == 0, restored.output
    verified = run(app, ["statements", "verify", "--period", "2026-10"])
    assert verified.exit_code == 0, verified.output
    pdf = next((home / "statements" / "2026-10").rglob("*.pdf"))
    pdf.write_bytes(pdf.read_bytes() + b"%tampered")
    assert run(app, ["statements", "verify", "--period", "2026-10"]).exit_code == 1


# --- finding 1: a close cut short is finished by running it again ------------------------------


def test_a_close_cut_short_during_its_snapshot_is_finished_by_a_rerun(home, monkeypatch):
    db = home / "warehouse.duckdb"
    seed_warehouse(db)
    for args in (["settle", "calculate", "--period", "2026-10", "--by", "alice"],
                 ["settle", "approve", "--period", "2026-10", "--by", "bob"]):  # fmt: skip
        assert run(app, args).exit_code == 0
    real_publish = lifecycle._publish

    def dies_half_way(con, target):
        target.parent.mkdir(parents=True, exist_ok=True)
        target.with_name(f".{target.name}.partial").write_bytes(b"half a snapshot")
        raise Killed  # the process stops here (tests/test_crash_safety_close.py really kills it)

    monkeypatch.setattr(lifecycle, "_publish", dies_half_way)
    with pytest.raises(Killed):
        run(app, ["period", "close", "2026-10", "--by", "bob"], catch_exceptions=False)
    snapshot = home / "snapshots" / "warehouse-2026-10.duckdb"
    assert not snapshot.exists()  # no partial file under the snapshot's name
    pending = run(app, ["audit", "snapshot", "2026-10"])
    assert pending.exit_code == 2 and "close was cut short before its snapshot was published" in pending.output
    monkeypatch.setattr(lifecycle, "_publish", real_publish)
    again = run(app, ["period", "close", "2026-10", "--by", "bob"])
    assert again.exit_code == 0, again.output
    assert os.stat(snapshot).st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH) == 0
    digest = run(app, ["audit", "snapshot", "2026-10"]).output.split()[-1]
    import hashlib

    assert hashlib.sha256(snapshot.read_bytes()).hexdigest() == digest
    assert not list(snapshot.parent.glob(".*partial*"))
    payouts = table(db, "SELECT count(DISTINCT transaction_id) AS n FROM ledger.postings WHERE transaction_id LIKE 'payout/%'")
    assert payouts["n"][0] == table(db, "SELECT count(DISTINCT rights_holder_id) AS n FROM settlement.payout_instructions")["n"][0]
