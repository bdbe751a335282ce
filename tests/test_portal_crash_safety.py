"""Resolving a dispute survives kill -9 at any instant: killed at instants spread over the
command (tests/killing.py), then run again, the dispute has exactly its filing and one
resolution, as after an uninterrupted run."""

from __future__ import annotations

import pytest
from killing import kill_series
from portal_fixtures import PERIOD, A, build_portal_home

from settlement import disputes
from settlement.warehouse import query, warehouse


@pytest.fixture(scope="module")
def state(tmp_path_factory):
    home = build_portal_home(tmp_path_factory.mktemp("portal-kill-state"))
    db = home["settings"].warehouse
    with warehouse(db) as con:
        line = query(con, "marts/portal_line", {"period": PERIOD, "rights_holder_id": A, "platform_id": "p1",
                                                "work_id": "W000", "right_type": "master"})[0]  # fmt: skip
        dispute_id = disputes.file_dispute(con, line=line, rights_holder_id=A, by="ana@a.example", reason="short")
    return home["settings"].home, dispute_id


def _events(home) -> list:
    with warehouse(home / "warehouse.duckdb", read_only=True) as con:
        return con.execute("SELECT d.dispute_id, e.seq, e.status, e.changed_by, e.reason, e.adjustment_amount "
                           "FROM portal.disputes AS d JOIN portal.dispute_events AS e USING (dispute_id) "
                           "ORDER BY ALL").fetchall()  # fmt: skip


def test_dispute_resolution_survives_kill_at_any_instant(state, tmp_path):
    home, dispute_id = state
    argv = ["disputes", "resolve", str(dispute_id), "--upheld", "--reason", "split corrected",
            "--adjustment", "0.05", "--in-period", "2026-11", "--by", "carol"]  # fmt: skip

    def check(home):
        events = _events(home)
        assert [(e[1], e[2], e[3]) for e in events] == [(1, "open", "ana@a.example"), (2, "upheld", "carol")], events
        return events

    series = kill_series("dispute-resolve", home, tmp_path, argv, n=6, check=check)
    assert series.killed_mid_run >= 3, series.line()
