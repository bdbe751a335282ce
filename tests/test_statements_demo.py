"""Every file of the demo period, read back: runs when `make demo` has left a settled period in
var/ (skipped on a fresh clone). Works on a copy; the demo warehouse is never written."""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from pypdf import PdfReader
from settlement_fixtures import table
from test_statements import _amount, _csv, check_holder_files, parse_dsr

from settlement import statements

DEMO = Path(__file__).resolve().parents[1] / "var" / "warehouse.duckdb"
PERIOD = "2026-10"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    if not DEMO.exists():
        pytest.skip("no demo warehouse (run `make demo`)")
    root = tmp_path_factory.mktemp("demo")
    db = root / "w.duckdb"
    shutil.copyfile(DEMO, db)
    try:
        periods = table(db, f"SELECT status FROM settlement.periods WHERE period = '{PERIOD}'")
    except duckdb.Error as exc:  # a copy taken while the demo was writing
        pytest.skip(f"demo warehouse not readable: {exc}")
    if periods.empty or periods["status"][0] == "open":
        pytest.skip(f"demo period {PERIOD} not calculated")
    out = root / "statements"
    result = statements.build_statements(db, out, PERIOD)
    return {"db": db, "out": out, "result": result}


def test_every_demo_file_belongs_to_its_holder_and_adds_up(demo):
    db, out = demo["db"], demo["out"]
    earned = table(
        db,
        f"SELECT rights_holder_id, sum(amount) AS amount FROM settlement.holder_totals "
        f"WHERE period = '{PERIOD}' GROUP BY ALL",
    )
    expected = dict(zip(earned["rights_holder_id"], earned["amount"], strict=True))
    folders = {statements.holder_dir_name(h): h for h in expected}
    seen = set()
    for folder in sorted(p for p in (out / PERIOD).iterdir() if p.is_dir()):
        holder = folders[folder.name]
        seen.add(holder)
        number = statements.statement_number(PERIOD, holder)
        lines = _csv(folder / f"statement_{PERIOD}_{folder.name}.csv")
        assert {r["rights_holder_id"] for r in lines} == {holder}
        assert sum(Decimal(r["amount"]) for r in lines) == expected[holder]
        assert {
            r["rights_holder_id"] for r in _csv(folder / f"generations_{PERIOD}_{folder.name}.csv")
        } <= {holder}
        dsr_total = Decimal("0.00")
        for path in folder.glob("DSR_*.tsv"):
            parsed = parse_dsr(path)
            assert parsed["holder"] == holder
            dsr_total += parsed["total"]
        assert dsr_total == expected[holder]
        first = PdfReader(folder / f"statement_{PERIOD}_{folder.name}.pdf").pages[0].extract_text()
        assert number in first
        assert _amount(first, "Total earnings this period") == expected[holder]
    assert seen == {h for h, a in expected.items() if a > 0}


def test_every_demo_holder_can_add_up_its_statement(demo):
    """Every holder of the demo month: the PDF's listed works (and grouped line) sum exactly to
    its printed total, the CSV has one row per statement line in the warehouse, and every DSR
    file passes the validator with usages per work equal to the statement's generation counts."""
    db, out = demo["db"], demo["out"]
    holders = table(db, f"SELECT DISTINCT rights_holder_id FROM settlement.statement_lines WHERE period = '{PERIOD}'")
    grouped = sum(check_holder_files(db, out, PERIOD, h) for h in holders["rights_holder_id"])
    assert grouped > 0
    titles = table(db, "SELECT title FROM ref.works")["title"]
    assert not any(t.lower().endswith((".mxl", ".xml", ".krn", ".abc")) for t in titles)


def test_every_demo_generation_line_says_which_rule_paid_it(demo):
    """Each output row of every holder's per-generation CSV carries the note the warehouse
    stored for its generation (attribution.share_rules: the demo's calibrated rule, "paid by
    attribution (p = ... <= alpha ...)"); empty only for a generation attributed before rules
    were stored (a demo warehouse older than migration 015)."""
    db, out = demo["db"], demo["out"]
    notes = table(db, "SELECT platform_id, generation_id, paid_by_note FROM staging.share_rules")
    stored = {(p, g): n for p, g, n in notes.itertuples(index=False)}
    n_rows = 0
    for path in (out / PERIOD).glob("*/generations_*.csv"):
        for r in _csv(path):
            if r["royalty"] != "output":
                continue
            n_rows += 1
            note = stored.get((r["platform_id"], r["generation_id"]))
            assert r["paid_by"] == (note or ""), (path.name, r["generation_id"])
            if note:
                assert note.startswith("paid by attribution (")
    assert n_rows > 0
    if stored:  # a demo run with this release: both contracts use the calibrated rule
        rules = table(db, "SELECT DISTINCT rule, alpha FROM attribution.share_rules")
        assert set(rules["rule"]) == {"pvalue"} and set(rules["alpha"]) <= {0.01, 0.05}


def test_every_demo_pdf_counts_each_platforms_rule_decisions_once(demo):
    """The PDF says per platform (its shards' runs summed) how many of the month's generations
    the rule paid by attribution and how many fell back: the counts the warehouse stored."""
    import re

    db, out = demo["db"], demo["out"]
    counts = table(db, """
        SELECT p.name, count(*) FILTER (WHERE r.paid_by = 'attribution') AS paid,
               count(*) FILTER (WHERE r.paid_by = 'fallback') AS fell, count(*) AS n
        FROM attribution.share_rules AS r JOIN ref.platforms AS p USING (platform_id)
        JOIN staging.generations AS g USING (platform_id, generation_id)
        WHERE g.period = '2026-10' GROUP BY ALL""")
    if counts.empty:
        pytest.skip("demo warehouse older than migration 015: no rule decisions stored")
    pdf = next((out / PERIOD).glob("*/statement_*.pdf"))
    text = " ".join(" ".join(page.extract_text().split()) for page in PdfReader(pdf).pages)
    matched = 0
    for name, paid, fell, n in counts.itertuples(index=False):
        said = re.findall(rf"Which rule paid each generation \({re.escape(name)}\)\..*?Of its (\d+) "
                          r"generations, (\d+) were paid by attribution and (\d+) fell back", text)
        if said:  # a holder's PDF names only the platforms it earned from
            assert said == [(str(n), str(paid), str(fell))], name
            matched += 1
    assert matched > 0
