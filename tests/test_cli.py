"""The finance CLI over a real DuckDB file: calculate, refused same-user approval, approval,
close, read-only audit query."""

from __future__ import annotations

from settlement_fixtures import seed_warehouse
from typer.testing import CliRunner

from settlement.cli import app


def test_a_month_through_the_cli(tmp_path, monkeypatch):
    monkeypatch.setenv("TRIBUTARY_HOME", str(tmp_path))
    seed_warehouse(tmp_path / "warehouse.duckdb")
    run = CliRunner().invoke

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

    read = run(app, ["audit", "query", "SELECT count(*) AS n FROM settlement.pools"])
    assert read.exit_code == 0 and "1" in read.output
    write = run(app, ["audit", "query", "DELETE FROM settlement.pools"])
    assert write.exit_code == 2 and "read-only" in write.output
    snap = run(app, ["audit", "snapshot", "2026-10"])
    assert snap.exit_code == 0 and "warehouse-2026-10.duckdb" in snap.output
