"""Disputes in the finance report: counts and lines of open, upheld and rejected disputes, read
from the stored rows as they stood when the report was built (the cut-off is recorded, so
`statements verify` stays true while holders go on filing)."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from pathlib import Path

from portal_fixtures import NEXT, PERIOD, A, build_portal_home

from settlement import disputes, statements
from settlement.warehouse import query, warehouse


def _report(db, period: str) -> tuple[str, list[dict]]:
    """The finance report as the warehouse renders it now (the recorded cut-off)."""
    with warehouse(db, read_only=True) as con:
        files = {f.kind: f.data for f in statements.render_period(con, period, progress=False)}
    rows = list(csv.DictReader(io.StringIO(files["finance_csv"].decode("utf-8-sig"))))
    return files["finance_html"].decode(), rows


def test_finance_report_counts_and_lists_the_periods_disputes_from_stored_rows(tmp_path):
    home = build_portal_home(tmp_path / "home")
    db = home["settings"].warehouse
    a_lines = [line for line in home["lines"] if line[0] == A]
    assert len(a_lines) >= 4
    ids = []
    with warehouse(db) as con:
        for _, platform, work, right, _ in a_lines[:4]:
            line = query(con, "marts/portal_line", {"period": PERIOD, "rights_holder_id": A, "platform_id": platform,
                                                    "work_id": work, "right_type": right})[0]  # fmt: skip
            ids.append(disputes.file_dispute(con, line=line, rights_holder_id=A, by="ana@a.example",
                                             reason="=HYPERLINK(\"http://x\") <script>alert(1)</script>"))  # fmt: skip
    disputes.resolve(db, ids[0], upheld=True, reason="agreed", by="carol", adjustment="0.01", adjustment_period=NEXT)
    disputes.resolve(db, ids[1], upheld=False, reason="<b>the split register is right</b>", by="carol")

    # November's files were built before any of them: its report says so until it is rebuilt
    html, rows = _report(db, NEXT)
    assert "No disputes for this period." in html
    assert {r["item"]: r["value"] for r in rows if r["section"] == "disputes"} == {"open": "0", "upheld": "0",
                                                                                   "rejected": "0"}  # fmt: skip

    built = statements.build_statements(db, home["settings"].statements, NEXT)
    html, rows = _report(db, NEXT)
    folder = Path(built["folder"])
    assert (folder / f"finance_report_{NEXT}.html").read_text() == html
    with warehouse(db, read_only=True) as con:
        stored = {r[0]: (r[1], r[2]) for r in con.execute(
            "SELECT dispute_id, line_amount, currency FROM portal.disputes").fetchall()}  # fmt: skip
    expected = {"open": ids[2:], "upheld": ids[:1], "rejected": ids[1:2]}
    counts = {r["item"]: r for r in rows if r["section"] == "disputes"}
    for status, which in expected.items():
        assert counts[status]["value"] == str(len(which))
        amount = counts[f"{status} disputed amount"]
        assert Decimal(amount["value"]) == sum((stored[i][0] for i in which), Decimal(0))
        assert amount["unit"] == stored[which[0]][1]
    listed = [r for r in rows if r["section"] == "dispute"]
    assert [r["item"].split()[1:3] for r in listed] == [[str(i), f"{s}:"] for s, w in expected.items() for i in w]
    assert all(Decimal(r["value"]) == stored[int(r["item"].split()[1])][0] for r in listed)
    assert "<b>the split register" not in html and "&lt;b&gt;the split register is right&lt;/b&gt;" in html
    assert "<script>" not in html

    # a later change shows at the next build; until then the files verify
    disputes.resolve(db, ids[2], upheld=False, reason="no", by="carol")
    assert _report(db, NEXT) == (html, rows)
    assert statements.verify_statements(db, home["settings"].statements, NEXT)["ok"]
    statements.build_statements(db, home["settings"].statements, NEXT)
    counts = {r["item"]: r["value"] for r in _report(db, NEXT)[1] if r["section"] == "disputes"}
    assert (counts["open"], counts["rejected"]) == ("1", "2")
    # October's files were built before any dispute was filed
    assert "No disputes for this period." in _report(db, PERIOD)[0]
