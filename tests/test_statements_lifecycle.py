"""Statements across the period lifecycle: a draft after the calculation, the final files after
the close (payouts, carry-forward), and the next month's statement with its opening balance and
an adjustment that names the closed month it corrects."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal

from pypdf import PdfReader
from settlement_fixtures import seed_warehouse, table
from test_statements import _amount, _csv, parse_dsr

from settlement import statements
from settlement.calculate import calculate_period
from settlement.lifecycle import approve_period, close_period
from settlement.warehouse import warehouse


def _text(out, period, holder) -> str:
    pdf = out / period / holder / f"statement_{period}_{holder}.pdf"
    return "\n".join(p.extract_text() for p in PdfReader(pdf).pages)


def _add_generations(db, rows: list[tuple[str, datetime, str]]) -> None:
    """Generations without attribution (recorded rejections): their whole royalty is training
    royalty spread over the manifest, which every holder of the small catalog shares in."""
    with warehouse(db) as con:
        for gid, created, amount in rows:
            con.execute(
                "INSERT INTO raw.generations VALUES ('p1', ?, 'mv1', ?, 'bach', NULL, [1, 2], 'DE', "
                "CAST(? AS DECIMAL(18, 6)), 'USD', ?, ?, 'ingest-2', ?)",
                [
                    gid,
                    created,
                    amount,
                    datetime(2026, 11, 1),
                    datetime(2026, 12, 1),
                    datetime(2026, 12, 1),
                ],
            )
            con.execute(
                "INSERT INTO attribution.rejections VALUES ('run1', 'p1', ?, 'test rejection', ?)",
                [gid, datetime(2026, 12, 1)],
            )


def test_draft_final_and_next_month_statements(tmp_path):
    db, out = tmp_path / "w.duckdb", tmp_path / "statements"
    seed_warehouse(db, n_works=6, n_generations=30, n_holders=3)
    with warehouse(db) as con:  # RH00 is paid only once it is owed a fortune: it carries forward
        con.execute(
            "UPDATE ref.rights_holders SET min_payout = 1000000 WHERE rights_holder_id = 'RH00'"
        )
    calculate_period(db, "2026-10", run_id="calc-10", by="alice")
    statements.build_statements(db, out, "2026-10")  # the draft finance reviews
    draft = {h: _text(out, "2026-10", h) for h in ("RH00", "RH01")}
    assert all(_amount(t, "Paid out this period") == 0 for t in draft.values())

    approve_period(db, "2026-10", by="bob")
    close_period(db, "2026-10", by="bob", snapshots=tmp_path / "snapshots")
    # the close posted payouts: the draft no longer matches the warehouse, and verify says so
    check = statements.verify_statements(db, out, "2026-10")
    assert not check["ok"] and {r["status"] for r in check["files"]} >= {"stored sha256 differs"}
    statements.build_statements(db, out, "2026-10")  # the final statements
    assert statements.verify_statements(db, out, "2026-10")["ok"]

    rh00, rh01 = _text(out, "2026-10", "RH00"), _text(out, "2026-10", "RH01")
    earned00 = _amount(rh00, "Total earnings this period")
    assert _amount(rh00, "Paid out this period") == 0
    assert _amount(rh00, "Closing balance (carried forward)") == earned00 > 0
    earned01 = _amount(rh01, "Total earnings this period")
    assert _amount(rh01, "Paid out this period") == -earned01
    assert _amount(rh01, "Closing balance (carried forward)") == 0
    finance = {
        (r["section"], r["item"]): r["value"]
        for r in _csv(out / "2026-10" / "finance_report_2026-10.csv")
    }
    assert Decimal(finance[("ledger", "carried_forward")]) == earned00
    assert finance[("period", "status")] == "closed"
    assert any(section == "approval" and "bob" in item for section, item in finance)

    # November: new generations, and one October generation that arrives after the close.
    _add_generations(db, [("late-oct", datetime(2026, 10, 5, 12), "4.000000"),
                          ("nov-1", datetime(2026, 11, 3, 12), "2.000000"),
                          ("nov-2", datetime(2026, 11, 9, 12), "1.000000")])  # fmt: skip
    calculate_period(db, "2026-11", run_id="calc-11", by="alice")
    statements.build_statements(db, out, "2026-11")
    nov00 = _text(out, "2026-11", "RH00")
    assert _amount(nov00, "Opening balance (owed to you before this period)") == earned00
    adjustments = table(db, "SELECT * FROM settlement.adjustments WHERE rights_holder_id = 'RH00'")
    assert not adjustments.empty and set(adjustments["corrects_period"]) == {"2026-10"}
    assert "2026-10" in re.sub(r"\s+", " ", nov00.split("Adjustment:")[1].split("Paid out")[0])
    closing = _amount(nov00, "Closing balance (carried forward)")
    earned = _amount(nov00, "Total earnings this period")
    assert closing == earned00 + earned + sum(adjustments["amount"], Decimal(0))
    # the DSR file reports this month's royalties only; adjustments live on the statement
    for path in (out / "2026-11" / "RH00").glob("DSR_*.tsv"):
        assert parse_dsr(path)["total"] == earned
    # October's final files are untouched by November
    assert statements.verify_statements(db, out, "2026-10")["ok"]
