"""The finance CLI over a real DuckDB file, a whole month: catalog import from CSV (bad rows
refused with file, line and rule), calculate, refused same-user approval, approval, close,
statements build and verify, read-only audit query."""

from __future__ import annotations

import csv
from pathlib import Path

from settlement_fixtures import seed_warehouse, table
from typer.testing import CliRunner

from settlement.cli import app
from settlement.warehouse import warehouse

WORKS = [["work_id", "iswc", "isrc", "title", "composer", "collection", "style", "source"]] + [
    [f"W{i:03d}", f"T-000.000.00{i}-0", f"QZAAA260000{i}", f"Work {i}", "Anon.", "test", "bach", ""] for i in range(6)
]
HOLDERS = [["rights_holder_id", "name", "kind", "payout_currency", "min_payout"]] + [
    [f"RH{i:02d}", f"Holder {i}", "publisher", "USD", "0"] for i in range(3)
]
SPLITS = [["work_id", "right_type", "rights_holder_id", "share", "effective_from", "effective_to"]] + [
    [f"W{i:03d}", right, f"RH{i % 3:02d}", "1", "2020-01-01", ""] for i in range(6) for right in ("publishing", "master")
]


def _write(folder: Path, works=WORKS, holders=HOLDERS, splits=SPLITS) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in (("works", works), ("holders", holders), ("splits", splits)):
        with (folder / f"{name}.csv").open("w", newline="") as f:
            csv.writer(f).writerows(rows)
    return ["--works", str(folder / "works.csv"), "--holders", str(folder / "holders.csv"),
            "--splits", str(folder / "splits.csv")]  # fmt: skip


def test_a_month_through_the_cli(tmp_path, monkeypatch):
    monkeypatch.setenv("TRIBUTARY_HOME", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "200")  # rich wraps error lines at the terminal width
    run = CliRunner().invoke
    db = tmp_path / "warehouse.duckdb"

    # A catalog with mistakes: every bad row is named, nothing is imported.
    bad_works = WORKS[:3] + [["W001", "T-1", "QZAAA2600009", "Dup", "", "test", "bach", ""]]
    bad_splits = SPLITS[:3] + [
        ["W002", "publishing", "RH01", "0.6", "2020-01-01", ""],
        ["W002", "publishing", "RH02", "0.3", "2020-01-01", ""],
        ["W404", "master", "RH00", "1", "2020-01-01", ""],
        ["W000", "sync", "RH09", "1.5", "01/02/2020", ""],
    ]
    refused = run(app, ["catalog", "import", *_write(tmp_path / "bad", works=bad_works, splits=bad_splits)])
    assert refused.exit_code == 2, refused.output
    for expected in [
        "works.csv:4: work_id: duplicate work (first on line 3)",
        "works.csv:4: iswc: not an ISWC",
        "splits.csv:4: share: splits of W002/publishing in force on 2020-01-01 sum to 0.9, not 1",
        "splits.csv:6: work_id: unknown work",
        "splits.csv:7: rights_holder_id: unknown rights holder",
        "splits.csv:7: right_type: must be one of",
        "splits.csv:7: share: must be a fraction in (0, 1]",
        "splits.csv:7: effective_from: not a date",
        "nothing was imported",
    ]:
        assert expected in refused.output, expected
    assert not db.exists() or table(db, "SELECT count(*) AS n FROM ref.works")["n"][0] == 0

    imported = run(app, ["catalog", "import", *_write(tmp_path / "good")])
    assert imported.exit_code == 0, imported.output
    assert '"works": 6' in imported.output and '"splits": 12' in imported.output
    seed_warehouse(db, catalog=False)  # platform, contract, generations and their shares
    with warehouse(db) as con:  # one generation paid in euros: the fx_missing gate stops the month
        con.execute("UPDATE raw.generations SET revenue_currency = 'EUR' WHERE generation_id = 'g0002'")
    blocked = run(app, ["settle", "calculate", "--period", "2026-10", "--by", "alice"])
    assert blocked.exit_code == 1 and "fx_missing: EUR/USD 2026-10" in blocked.output
    fx = run(app, ["fx", "set", "--period", "2026-10", "--from", "EUR", "--to", "USD", "--rate", "1.0842",
                   "--source", "ECB reference 2026-10-30"])  # fmt: skip
    assert fx.exit_code == 0, fx.output

    calc = run(app, ["settle", "calculate", "--period", "2026-10", "--by", "alice"])
    assert calc.exit_code == 0, calc.output
    same = run(app, ["settle", "approve", "--period", "2026-10", "--by", "alice"])
    assert same.exit_code == 2 and "second person must approve" in same.output
    ok = run(app, ["settle", "approve", "--period", "2026-10", "--by", "bob"])
    assert ok.exit_code == 0, ok.output
    closed = run(app, ["period", "close", "2026-10", "--by", "bob"])
    assert closed.exit_code == 0, closed.output
    assert '"status": "closed"' in run(app, ["period", "status", "2026-10"]).output
    again = run(app, ["settle", "calculate", "--period", "2026-10", "--by", "alice"])
    assert again.exit_code == 2 and "is closed" in again.output

    built = run(app, ["statements", "build", "--period", "2026-10"])
    assert built.exit_code == 0, built.output
    holders_paid = table(db, "SELECT count(*) AS n FROM settlement.holder_totals WHERE amount > 0")["n"][0]
    assert f"{holders_paid} statements" in built.output
    verified = run(app, ["statements", "verify", "--period", "2026-10"])
    assert verified.exit_code == 0 and "files verified" in verified.output, verified.output
    pdf = next((tmp_path / "statements" / "2026-10").rglob("*.pdf"))
    pdf.write_bytes(pdf.read_bytes() + b"%tampered")
    tampered = run(app, ["statements", "verify", "--period", "2026-10"])
    assert tampered.exit_code == 1 and f"file differs: 2026-10/{pdf.parent.name}/{pdf.name}" in tampered.output

    read = run(app, ["audit", "query", "SELECT count(*) AS n FROM settlement.pools"])
    assert read.exit_code == 0 and "1" in read.output
    write = run(app, ["audit", "query", "DELETE FROM settlement.pools"])
    assert write.exit_code == 2 and "read-only" in write.output
    snap = run(app, ["audit", "snapshot", "2026-10"])
    assert snap.exit_code == 0 and "warehouse-2026-10.duckdb" in snap.output

    # The live warehouse is lost; the closed period comes back from its snapshot.
    snapshot_path, _, digest = snap.output.split()
    db.write_bytes(b"not a database any more")
    wrong = run(app, ["period", "restore", "--snapshot", snapshot_path, "--sha256", "0" * 64])
    assert wrong.exit_code == 2 and "differs from the recorded" in wrong.output
    restored = run(app, ["period", "restore", "--snapshot", snapshot_path, "--sha256", digest])
    assert restored.exit_code == 0, restored.output
    assert '"status": "closed"' in run(app, ["period", "status", "2026-10"]).output
    assert list(tmp_path.glob("warehouse.duckdb.before-restore-*"))  # the damaged file is kept
    assert run(app, ["statements", "verify", "--period", "2026-10"]).exit_code == 1  # the tampered PDF


def test_every_command_has_help_with_an_example():
    run = CliRunner().invoke
    for command in [
        ["catalog", "import"], ["settle", "calculate"], ["settle", "approve"], ["period", "close"],
        ["period", "status"], ["statements", "build"], ["statements", "verify"], ["audit", "snapshot"],
        ["audit", "query"], ["platforms", "list"], ["platforms", "add"], ["period", "restore"], ["fx", "set"],
    ]:  # fmt: skip
        result = run(app, [*command, "--help"])
        assert result.exit_code == 0 and "Example: tributary " + command[0] in " ".join(result.output.split()), command
