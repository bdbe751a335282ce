"""Monitoring for rights holders (issue 17): rules a holder sets raise alerts once per period
(a work's share jumps, a near copy appears, a new platform draws on its catalog), and the
alerts are mailed to its contacts through the delivery path, to a real SMTP server."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest
from mailbox_server import Mailbox, free_port
from settlement_fixtures import seed_warehouse
from typer.testing import CliRunner

from settlement import alerts, delivery
from settlement.cli import app
from settlement.reference import Contract, register_contract, register_platform
from settlement.warehouse import warehouse


def _november(db, work: str, n: int = 20) -> None:
    """November: p1 keeps generating, mostly from `work` (its share jumps); one generation is
    90 % `work` (a near copy); a new platform p2 starts drawing on it."""
    with warehouse(db) as con:
        register_platform(con, "p2", "Platform Two", "p2_conn")
        register_contract(con, Contract("C2", "p2", pool_rate=Decimal("0.2")))
        con.execute("INSERT INTO ref.model_versions VALUES ('p2', 'mv2', 'x', 'y', '/nowhere', now()::TIMESTAMP)")
        for i in range(n):
            platform = "p2" if i < 3 else "p1"
            gid = f"nov{i:03d}"
            con.execute("""INSERT INTO raw.generations VALUES (?, ?, ?, ?, 'bach', NULL, [1, 2], 'US', 0.1, 'USD',
                           TIMESTAMP '2026-11-01', TIMESTAMP '2026-12-01', 'ingest', now()::TIMESTAMP)""",
                        [platform, gid, "mv2" if platform == "p2" else "mv1", datetime(2026, 11, 2 + i % 20, 12)])  # fmt: skip
            share = Decimal("0.9") if i == 5 else Decimal("0.4")
            con.execute("INSERT INTO attribution.shares VALUES ('run2', ?, ?, ?, false, ?, 1.0, 1, 'trak', 'mv')",
                        [platform, gid, work, share])  # fmt: skip
            con.execute("INSERT INTO attribution.shares VALUES ('run2', ?, ?, NULL, true, ?, NULL, 0, 'trak', 'mv')",
                        [platform, gid, 1 - share])  # fmt: skip


def _owner(db, work: str) -> str:
    with warehouse(db, read_only=True) as con:
        return con.execute("""SELECT rights_holder_id FROM ref.splits WHERE work_id = ? AND right_type = 'publishing'
                              ORDER BY share DESC LIMIT 1""", [work]).fetchone()[0]  # fmt: skip


def test_rules_raise_alerts_once_and_mail_them(tmp_path, monkeypatch):
    db = tmp_path / "warehouse.duckdb"
    seed_warehouse(db, n_works=6, n_generations=40, n_holders=3)
    work = "W001"
    holder = _owner(db, work)
    _november(db, work)
    delivery.add_contact(db, holder, "alerts@holder.example")
    rules = [alerts.add_rule(db, holder, "share_jump", "2", min_generations=5),
             alerts.add_rule(db, holder, "near_copy", "0.8"),
             alerts.add_rule(db, holder, "new_platform")]  # fmt: skip
    other = next(h for h in ("RH00", "RH01", "RH02") if h != holder)
    alerts.add_rule(db, other, "near_copy", "0.95")  # nobody's work holds 95 %: no alert for it

    port = free_port()
    monkeypatch.setenv("TRIBUTARY_SMTP_PORT", str(port))
    with Mailbox(port=port) as box:
        first = alerts.evaluate(db, "2026-11")
        again = alerts.evaluate(db, "2026-11")  # a rerun raises and mails nothing twice
        mails = list(box.messages)
    raised = alerts.listed(db, "2026-11")
    assert {a["kind"] for a in raised} == {"share_jump", "near_copy", "new_platform"}
    assert {a["rights_holder_id"] for a in raised} == {holder}
    by_kind = {a["kind"]: a for a in raised}
    assert by_kind["share_jump"]["subject"] == work and "x" in by_kind["share_jump"]["detail"]
    assert by_kind["near_copy"]["subject"] == "p1/nov005" and "90.0 % work W001" in by_kind["near_copy"]["detail"]
    assert by_kind["new_platform"]["subject"] == "p2"
    # the near_copy alert is about p1/nov005 only: the 40 % generations stay under the 0.8 rule
    assert sum(a["kind"] == "near_copy" for a in raised) == 1
    assert first["new"] == 3 and again["new"] == 0 and first["mails"]["sent"] == 3 and again["mails"]["mails"] == 0
    assert len(mails) == 3 and all(m["to"] == ["alerts@holder.example"] for m in mails)
    assert sorted(m["subject"].split("(")[1].split(")")[0] for m in mails) == ["near copy", "new platform", "share jump"]
    assert any("p1/nov005" in m["subject"] and "90.0 %" in m["body"] for m in mails)
    assert len(rules) == 3
    # October (the first month) has no previous month and no platform is new to it... except
    # p1 itself, which drew on the catalog for the first time then
    october = alerts.evaluate(db, "2026-10", send=False)
    assert {a["kind"] for a in alerts.listed(db, "2026-10")} <= {"new_platform", "near_copy"}
    assert october["alerts"] == len(alerts.listed(db, "2026-10"))


@pytest.mark.parametrize("argv, rule", [
    (["alerts", "add", "RH00", "--kind", "loud"], "kind must be one of"),
    (["alerts", "add", "RH00", "--kind", "share_jump", "--threshold", "0.5"], "factor must be > 1"),
    (["alerts", "add", "RH00", "--kind", "near_copy", "--threshold", "abc"], "is not a number"),
    (["alerts", "add", "RH99", "--kind", "new_platform"], "no rights holder 'RH99'"),
    (["alerts", "evaluate", "2026-13"], "2026-13"),
])  # fmt: skip
def test_bad_alert_rules_exit_2(tmp_path, monkeypatch, argv, rule):
    monkeypatch.setenv("TRIBUTARY_HOME", str(tmp_path))
    seed_warehouse(tmp_path / "warehouse.duckdb", n_holders=1)
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 2, result.output
    assert rule in " ".join(result.output.split())
