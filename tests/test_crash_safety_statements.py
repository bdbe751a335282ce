"""kill -9 at any instant, then the same command again (issue 13; what every rerun must leave:
tests/test_crash_safety_calculate.py). Here: `statements build` and `period restore` (the live
warehouse damaged beyond opening; the closed month's snapshot goes back, checked against the
digest noted at the close), on the smaller month of TRIBUTARY_KILL_STATEMENT_GENERATIONS and
TRIBUTARY_KILL_STATEMENT_HOLDERS (tests/kill_states.py). Besides the evenly spread instants,
each is killed right after each of its steps returns."""

from __future__ import annotations

import duckdb
import pytest
from kill_states import BUILD, PERIOD, invariants, killed_after, series


def restored(home):
    """`invariants`, and exactly one restore recorded: a kill after the swap leaves a restored
    warehouse, which the rerun restores again from the snapshot (the record comes with it)."""
    summary = invariants(home)
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM settlement.restores").fetchall()[0][0] == 1
    finally:
        con.close()
    return summary


def restore_argv(stages) -> list[str]:
    snapshot = stages["lost"] / "snapshots" / f"warehouse-{PERIOD}.duckdb"  # read-only, never changed
    return ["period", "restore", "--snapshot", str(snapshot), "--sha256", stages.digest()]


def test_kill_statements_build(kill_stages, tmp_path):
    series("statements build", kill_stages, "small", BUILD, tmp_path)


def test_kill_restore(kill_stages, tmp_path):
    series("period restore", kill_stages, "lost", restore_argv(kill_stages), tmp_path, restored)


@pytest.mark.parametrize("step", [
    "settlement.statements:render_period",  # every file rendered in memory, none written
    "settlement.statements:_record",  # every file in place, its hashes committed
])  # fmt: skip
def test_statements_build_killed_right_after_a_step(kill_stages, tmp_path, step):
    killed_after(kill_stages, "small", BUILD, step, tmp_path)


@pytest.mark.parametrize("step", [
    "shutil:copyfileobj",  # the snapshot copied to warehouse.duckdb.restoring, not yet fsynced
    "settlement.lifecycle:run_sql",  # the restore recorded in the copy, not committed
    "settlement.statements:record_rendered",  # the period's statement hashes re-recorded
    "os:link",  # the damaged file kept under its before-restore name, not yet swapped
    "settlement.lifecycle:_fsync_dir",  # swapped in, the folder not yet fsynced
])  # fmt: skip
def test_restore_killed_right_after_a_step(kill_stages, tmp_path, step):
    killed_after(kill_stages, "lost", restore_argv(kill_stages), step, tmp_path, restored)
