"""Statements people read and machines check: PDF, CSV, DSR-style TSV, finance report.

One small calculated period (real DuckDB, real calculation) with a holder whose id is a path
traversal attempt, one with a non-Latin id and name, an opening balance, an adjustment and a
payout in the ledger; every file of the period is read back and checked against the ledger.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections import defaultdict
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pypdfium2
import pytest
from PIL import Image, ImageStat
from pypdf import PdfReader
from settlement_fixtures import seed_warehouse, table

from settlement import dsr, statements
from settlement.calculate import calculate_period
from settlement.warehouse import run_sql, warehouse

PERIOD = "2026-10"
EVIL = "../../etc/passwd"
TOKYO = "東京/出版"
MONEY = re.compile(r"^-?\d+\.\d{2}$")


@pytest.fixture(scope="module")
def period(tmp_path_factory):
    root = tmp_path_factory.mktemp("statements")
    db = root / "w.duckdb"
    seed_warehouse(db, n_works=8, n_generations=40, n_holders=4, seed=3)
    with warehouse(db) as con:
        # Two holders with ids nobody should trust in a path, and names in other scripts.
        con.execute(
            "INSERT INTO ref.rights_holders VALUES (?, ?, 'publisher', 'USD', 0)", [EVIL, EVIL]
        )
        con.execute(
            "INSERT INTO ref.rights_holders VALUES (?, '東京音楽出版', 'label', 'USD', 0)", [TOKYO]
        )
        con.execute(
            "UPDATE ref.splits SET rights_holder_id = ? WHERE rights_holder_id = 'RH01'", [EVIL]
        )
        con.execute(
            "UPDATE ref.splits SET rights_holder_id = ? WHERE rights_holder_id = 'RH02'", [TOKYO]
        )
        # The holder RH01 is now unused and RH00's name is Czech with a character outside Latin-1.
        con.execute(
            "UPDATE ref.rights_holders SET name = 'Estate of Dvořák-Novák' WHERE rights_holder_id = 'RH00'"
        )
    calculate_period(db, PERIOD, run_id="calc-1", by="alice")
    with warehouse(db) as con:
        # RH00: a balance from September, an adjustment of September paid in October, a payout.
        postings = [
            ("settle/2026-09/p1/old", "2026-09", "royalty_pool:p1", "-7.00", "earnings"),
            ("settle/2026-09/p1/old", "2026-09", "holder_payable:RH00", "5.00", "earnings"),
            # RH01 earns nothing in October (its splits went to EVIL) but carries 2.00 forward
            ("settle/2026-09/p1/old", "2026-09", "holder_payable:RH01", "2.00", "earnings"),
            ("adjust/2026-10/2026-09/p1/calc-1", PERIOD, "royalty_pool:p1", "-1.25", "adjustment"),
            ("adjust/2026-10/2026-09/p1/calc-1", PERIOD, "holder_payable:RH00", "1.25",
             "late generation g9999 of 2026-09"),
            ("payout/2026-10/RH00", PERIOD, "holder_payable:RH00", "-3.00", "payout for 2026-10"),
            ("payout/2026-10/RH00", PERIOD, "payouts_due:USD", "3.00", "payout to RH00"),
        ]  # fmt: skip
        con.executemany(
            "INSERT INTO ledger.postings (transaction_id, period, account, amount, currency, memo, run_id, posted_at) "
            "VALUES (?, ?, ?, CAST(? AS DECIMAL(38, 2)), 'USD', ?, 'test', ?)",
            [[*p, datetime(2026, 11, 1)] for p in postings],
        )
        run_sql(con, "loads/ledger_accounts", {})  # as every posting writer does: the chart of accounts
        con.execute(
            "INSERT INTO settlement.approvals VALUES (?, 'calc-1', 'bob', ?)",
            [PERIOD, datetime(2026, 11, 2)],
        )
    out = root / "out" / "statements"
    result = statements.build_statements(db, out, PERIOD)
    return {"db": db, "out": out, "result": result, "root": root}


def _files(out: Path, pattern: str) -> list[Path]:
    return sorted((out / PERIOD).rglob(pattern))


def _csv(path: Path) -> list[dict]:
    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf"), f"{path.name}: no UTF-8 byte-order mark"
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))


def _ledger(db: Path) -> dict[str, dict[str, Decimal]]:
    rows = table(db, f"""
        SELECT substr(account, 16) AS holder,
               coalesce(sum(amount) FILTER (WHERE period = '{PERIOD}' AND transaction_id LIKE 'settle/%'), 0) AS earned,
               sum(amount) FILTER (WHERE period <= '{PERIOD}') AS closing,
               coalesce(sum(amount) FILTER (WHERE period < '{PERIOD}'), 0) AS opening
        FROM ledger.postings WHERE account LIKE 'holder_payable:%' GROUP BY ALL""")  # fmt: skip
    return {r["holder"]: r for _, r in rows.iterrows()}


def _holder_of(folder: Path, db: Path) -> str:
    ids = table(db, "SELECT rights_holder_id FROM ref.rights_holders")["rights_holder_id"]
    (holder,) = [h for h in ids if statements.holder_dir_name(h) == folder.name]
    return holder


def _amount(text: str, label: str, between: str = "") -> Decimal:
    match = re.search(re.escape(label) + between + r"\s+(-?\d+\.\d{2})", text)
    assert match, f"{label!r} not found in PDF text"
    return Decimal(match.group(1))


def check_holder_files(db: Path, out: Path, period: str, holder: str) -> int:
    """What a holder can check on its own files: the PDF's listed works (and the grouped line,
    if any) sum exactly to its printed total, which is the ledger's; the CSV has one row per
    statement line in the warehouse, with the same cents; each DSR file passes the validator and
    its usages per work are the statement's generation counts. Returns 1 if the PDF grouped
    small works into one line."""
    from settlement.warehouse import warehouse

    folder = out / period / statements.holder_dir_name(holder)
    tag = f"{period}_{folder.name}"
    text = "\n".join(page.extract_text() for page in PdfReader(folder / f"statement_{tag}.pdf").pages)
    section = text[text.index("Earnings by work"):]
    total = re.search(r"Total of (\d+) works?\s+(-?\d+\.\d{6})\s+(-?\d+\.\d{2})", section)
    assert total, holder
    rows = re.findall(r"(-?\d+\.\d{6})\s+(-?\d+\.\d{2})", section[: total.start()])
    printed = Decimal(total.group(3))
    assert sum((Decimal(a) for _, a in rows), Decimal("0.00")) == printed == _amount(text, "Total earnings this period")
    grouped = re.search(r"(\d+)\s+more\s+works\s+that\s+earned\s+less\s+than", section[: total.start()])
    listed = len(rows) - (1 if grouped else 0)
    assert listed + (int(grouped.group(1)) if grouped else 0) == int(total.group(1)), holder
    with warehouse(db, read_only=True) as con:
        stored = con.execute(
            "SELECT platform_id, work_id, right_type, amount, n_generations FROM settlement.statement_lines "
            "WHERE period = ? AND rights_holder_id = ?", [period, holder]).fetchall()  # fmt: skip
        ledger = con.execute(
            "SELECT coalesce(sum(amount), 0) FROM staging.holder_postings WHERE period = ? AND rights_holder_id = ? "
            "AND transaction_id LIKE 'settle/%'", [period, holder]).fetchone()[0]  # fmt: skip
    assert printed == ledger, holder
    lines = _csv(folder / f"statement_{tag}.csv")
    assert len(lines) == len(stored), holder
    assert {(r["platform_id"], r["work_id"], r["right_type"], Decimal(r["amount"]), int(r["n_generations"]))
            for r in lines} == set(stored)  # fmt: skip
    for path in folder.glob("DSR_*.tsv"):
        parsed = parse_dsr(path)
        service = parsed["head"]["ServiceDescription"]
        usages = defaultdict(int)
        for su in parsed["records"]["SU03.01"]:
            usages[su["DspReleaseId"]] += int(su["Usages"])
        counts = {r["work_id"]: int(r["n_generations"]) for r in lines
                  if dsr.service_description(r["platform_id"]) == service}  # fmt: skip
        assert dict(usages) == counts, (holder, path.name)
    return 1 if grouped else 0


def test_every_holder_gets_pdf_csv_and_dsr(period):
    folders = sorted(p for p in (period["out"] / PERIOD).iterdir() if p.is_dir())
    earners = set(
        table(
            period["db"],
            "SELECT DISTINCT rights_holder_id FROM settlement.holder_totals WHERE amount > 0",
        )["rights_holder_id"]
    )
    assert {EVIL, TOKYO} <= earners and "RH01" not in earners
    # earners, and RH01 for the balance it carries forward
    assert {f.name for f in folders} == {statements.holder_dir_name(h) for h in earners | {"RH01"}}
    assert period["result"]["statements"] == len(earners) + 1
    for folder in folders:
        names = sorted(p.name for p in folder.iterdir())
        assert any(n.endswith(".pdf") for n in names)
        assert any(n.startswith("statement_") and n.endswith(".csv") for n in names)
        assert any(n.startswith("generations_") for n in names)
        # a DSR file reports royalties; a holder with none this period gets none
        assert any(n.startswith("DSR_") for n in names) == (folder.name != "RH01")
    rh01 = (
        PdfReader(period["out"] / PERIOD / "RH01" / "statement_2026-10_RH01.pdf")
        .pages[0]
        .extract_text()
    )
    assert _amount(rh01, "Closing balance (carried forward)") == Decimal("2.00")


def test_pdf_is_not_blank_and_its_totals_equal_the_csv_and_the_ledger(period):
    db, out = period["db"], period["out"]
    ledger = _ledger(db)
    pdfs = _files(out, "statement_*.pdf")
    assert pdfs
    for pdf in pdfs:
        holder = _holder_of(pdf.parent, db)
        text = "\n".join(page.extract_text() for page in PdfReader(pdf).pages)
        earned = _amount(text, "Total earnings this period")
        lines = _csv(pdf.with_suffix(".csv"))
        assert earned == sum(Decimal(r["amount"]) for r in lines) == ledger[holder]["earned"]
        assert _amount(text, "Total of", between=r"\s+\d+ works?\s+-?\d+\.\d{6}") == earned
        assert _amount(text, "Closing balance (carried forward)") == ledger[holder]["closing"]
        assert (
            _amount(text, "Opening balance (owed to you before this period)")
            == ledger[holder]["opening"]
        )
        assert statements.statement_number(PERIOD, holder) in text
    rh00 = "\n".join(
        p.extract_text()
        for p in PdfReader(out / PERIOD / "RH00" / "statement_2026-10_RH00.pdf").pages
    )
    assert "late generation g9999 of 2026-09" in rh00 and "Dvořák" in rh00
    # the non-Latin name is in the text layer (set in a CJK font), not dropped
    tokyo = statements.holder_dir_name(TOKYO)
    tokyo_pdf = out / PERIOD / tokyo / f"statement_{PERIOD}_{tokyo}.pdf"
    assert "東京音楽出版" in PdfReader(tokyo_pdf).pages[0].extract_text()
    assert _amount(rh00, "Paid out this period") == Decimal("-3.00")

    # The first page, rendered, has real content: text, tables and the chart, not a white sheet.
    page = pypdfium2.PdfDocument(pdfs[0])[0]
    png = period["root"] / "page1.png"
    page.render(scale=1).to_pil().save(png)
    image = Image.open(png).convert("L")
    dark = sum(image.histogram()[:200]) / (image.width * image.height)
    assert dark > 0.02 and ImageStat.Stat(image).stddev[0] > 20


def test_generation_detail_adds_up_to_the_statement(period):
    """Per-generation rows (output royalty per generation, training royalty per line) add up
    to each statement line: their cents exactly, their exact values to the line's royalties."""
    for path in _files(period["out"], "generations_*.csv"):
        cents, exact = defaultdict(Decimal), defaultdict(Decimal)
        for r in _csv(path):
            key = (r["platform_id"], r["work_id"], r["right_type"])
            cents[key] += Decimal(r["amount"])
            exact[key] += Decimal(r["exact_royalty"])
        lines = _csv(path.parent / path.name.replace("generations_", "statement_"))
        for r in lines:
            key = (r["platform_id"], r["work_id"], r["right_type"])
            assert cents[key] == Decimal(r["amount"]), r
            royalty = Decimal(r["output_royalty"]) + Decimal(r["training_royalty"])
            # each detail value is rounded to 9 decimals, the line's to 6
            assert abs(exact[key] - royalty) < Decimal("0.000002"), r


# --- DSR ----------------------------------------------------------------------------------

DSR_NAME = re.compile(
    r"^DSR_([^_]+)_Tributary_([^_]+)_(\d{4}-\d{2})_MULTI_(\d+)of(\d+)_(\d{8}T\d{6})\.tsv$"
)


def parse_dsr(path: Path) -> dict:
    """Reads a DSR file back through the validator written from the DDEX record definitions
    (settlement.dsr.validate): it must pass; returns its records by type, the holder it was
    written for and the total of its royalty (LI01) records."""
    report = dsr.validate(path.read_bytes(), path.name)
    assert report.ok, (path.name, report.errors[:5])
    records = report.records
    holders = {s["RightsControllerPartyId"].split("::", 1)[1] for s in records["SY07"]}
    assert len(holders) == 1
    total = sum((Decimal(li["AllocatedAmount"]) for li in records.get("LI01", [])), Decimal("0.00"))
    assert all(MONEY.match(li["AllocatedAmount"]) for li in records.get("LI01", []))
    return {"head": records["HEAD"][0], "records": records, "holder": holders.pop(), "total": total}


def test_every_dsr_file_passes_the_validator_and_sums_to_the_statement(period):
    db, out = period["db"], period["out"]
    dsr_files = _files(out, "DSR_*.tsv")
    assert len(dsr_files) == period["result"]["statements"] - 1  # one platform; RH01 earned nothing
    seen_transactions = set()
    for path in dsr_files:
        match = DSR_NAME.match(path.name)
        assert match and match.group(3) == PERIOD and match.group(4) == match.group(5) == "1"
        parsed = parse_dsr(path)
        holder = _holder_of(path.parent, db)
        head = parsed["head"]
        assert parsed["holder"] == holder and (head["UsageStartDate"], head["UsageEndDate"]) == ("2026-10-01", "2026-10-31")
        assert head["MessageVersion"] == "dsrf/1.1/1.2/1.2" and head["Profile"] == "RoyaltyReportingProfile"
        statement = _csv(next(path.parent.glob("statement_*.csv")))
        assert parsed["total"] == sum(Decimal(r["amount"]) for r in statement)
        ids = [r["SalesTransactionId"] for r in parsed["records"]["SU03.01"]]
        assert len(set(ids)) == len(ids) and not (set(ids) & seen_transactions)
        seen_transactions |= set(ids)
        # usages per work = the statement's generation counts for the work on the platform
        usages = defaultdict(int)
        for su in parsed["records"]["SU03.01"]:
            usages[su["DspReleaseId"]] += int(su["Usages"])
        counts = {r["work_id"]: int(r["n_generations"]) for r in statement}
        assert usages == counts
        # every statement line (work x right) is reported, zero lines included
        assert len({(r["work_id"], r["right_type"]) for r in statement}) == len(
            {(b, li["RightsType"]) for b, li in _li_with_work(parsed["records"])})


def _li_with_work(records: dict) -> list[tuple[str, dict]]:
    work_of_block = {a["BlockId"]: a["DspResourceId"] for a in records["AS01"]}
    return [(work_of_block[li["BlockId"]], li) for li in records.get("LI01", [])]


def test_the_validator_catches_what_an_ingester_would_reject(period):
    """Each broken copy of a real file is refused with the rule it breaks."""
    path = _files(period["out"], "DSR_*.tsv")[0]
    good = path.read_text()
    assert dsr.validate(good.encode(), path.name).ok
    lines = good.splitlines(keepends=True)
    first_li = next(i for i, line in enumerate(lines) if line.startswith("LI01\t"))
    first_sy = next(i for i, line in enumerate(lines) if line.startswith("SY07\t"))

    def cell(line: str, index: int, value: str) -> str:
        parts = line.rstrip("\n").split("\t")
        parts[index] = value
        return "\t".join(parts) + "\n"

    broken = {
        "message version": good.replace("dsrf/1.1/1.2/1.2", "dsrf/tributary-training/1.0", 1),
        "cell count": "".join(lines[:first_li] + [lines[first_li].rstrip("\n") + "\textra\n"] + lines[first_li + 1:]),
        "mandatory cell": "".join(lines[:first_sy] + [cell(lines[first_sy], 6, "")] + lines[first_sy + 1:]),
        "territory": "".join(lines[:first_sy] + [cell(lines[first_sy], 6, "XX")] + lines[first_sy + 1:]),
        "rights type": "".join(lines[:first_li] + [cell(lines[first_li], 7, "publishing")] + lines[first_li + 1:]),
        "control total": "".join(lines[:first_li] + [cell(lines[first_li], 9, "999.99")] + lines[first_li + 1:]),
        "record order": "".join([lines[0], lines[first_li]] + lines[1:first_li] + lines[first_li + 1:]),
        "foot counts": "".join(lines[:first_li] + lines[first_li + 1:]),
        "unknown record": "".join(lines[:first_sy] + ["RU99\tBL1\n"] + lines[first_sy:]),
    }  # fmt: skip
    for what, text in broken.items():
        report = dsr.validate(text.encode(), path.name)
        assert not report.ok, what
    assert not dsr.validate(good.encode(), path.name.replace("_Tributary_", "_Someone_")).ok
    assert not dsr.validate(b"\xef\xbb\xbf" + good.encode(), path.name).ok


# --- determinism ---------------------------------------------------------------------------


def _hashes(out: Path) -> dict[str, str]:
    return {
        str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in out.rglob("*")
        if p.is_file()
    }


def test_rebuild_is_byte_identical_and_verify_passes(period, tmp_path, capsys):
    db, out = period["db"], period["out"]
    before = _hashes(out)
    stored = table(db, f"SELECT path, sha256 FROM settlement.statement_files WHERE period = '{PERIOD}' "
                       f"UNION ALL SELECT path, sha256 FROM settlement.period_files WHERE period = '{PERIOD}'")  # fmt: skip
    assert dict(zip(stored["path"], stored["sha256"], strict=True)) == before
    # a rebuild in a fresh folder writes the same bytes
    again = tmp_path / "again"
    statements.build_statements(db, again, PERIOD)
    assert _hashes(again) == before
    assert (
        statements.main(["verify", "--period", PERIOD, "--warehouse", str(db), "--out", str(out)])
        == 0
    )
    assert "MISMATCH" not in capsys.readouterr().out


def test_verify_fails_on_a_changed_file(period, tmp_path):
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(period["out"], out)
    victim = next((out / PERIOD).rglob("statement_*.csv"))
    victim.write_text(victim.read_text().replace(".", ",", 1))
    result = statements.verify_statements(period["db"], out, PERIOD)
    assert not result["ok"]
    assert [r["status"] for r in result["files"] if r["status"] != "ok"] == ["file differs"]
    assert (
        statements.main(
            ["verify", "--period", PERIOD, "--warehouse", str(period["db"]), "--out", str(out)]
        )
        == 1
    )


# --- isolation -----------------------------------------------------------------------------


def test_hostile_and_non_latin_ids_stay_inside_the_statements_folder(period):
    out = period["out"]
    root = (out / PERIOD).resolve()
    for path in out.rglob("*"):
        assert path.resolve().is_relative_to(out.resolve())
    assert not (period["root"] / "out" / "etc").exists() and not (out / "etc").exists()
    evil = statements.holder_dir_name(EVIL)
    tokyo = statements.holder_dir_name(TOKYO)
    assert "/" not in evil and ".." not in evil and evil.startswith("etc_passwd-")
    assert tokyo.startswith("東京_出版-")
    for name in (evil, tokyo):
        folder = root / name
        assert folder.is_dir()
        assert (folder / f"statement_{PERIOD}_{name}.pdf").is_file()
        assert (folder / f"statement_{PERIOD}_{name}.csv").is_file()
    assert statements.holder_dir_name("a/b") != statements.holder_dir_name("a_b")
    assert (
        statements.safe_name("..") == "_" and len(statements.safe_name("東" * 300).encode()) <= 96
    )


def test_each_holders_files_hold_only_that_holders_lines(period):
    db, out = period["db"], period["out"]
    for folder in sorted(p for p in (out / PERIOD).iterdir() if p.is_dir()):
        holder = _holder_of(folder, db)
        for path in folder.glob("*.csv"):
            rows = _csv(path)
            assert {r["rights_holder_id"] for r in rows} <= {holder}, path
            assert {r["statement_number"] for r in rows} <= {
                statements.statement_number(PERIOD, holder)
            }
        for path in folder.glob("DSR_*.tsv"):
            assert parse_dsr(path)["holder"] == holder
        for path in folder.glob("*.pdf"):
            text = "\n".join(p.extract_text() for p in PdfReader(path).pages)
            others = [h for h in ("RH00", "RH03") if h != holder]
            assert not any(statements.statement_number(PERIOD, h) in text for h in others)


def test_finance_report_shows_pools_ledger_and_approvals(period):
    out = period["out"]
    html = (out / PERIOD / "finance_report_2026-10.html").read_text()
    rows = _csv(out / PERIOD / "finance_report_2026-10.csv")
    pool = table(period["db"], "SELECT pool_amount FROM settlement.pools")["pool_amount"][0]
    assert {
        "section": "pool",
        "item": "pool_amount",
        "platform_id": "p1",
        "unit": "USD",
        "value": f"{pool}",
    } in rows
    units = {r["item"]: r["unit"] for r in rows}
    # counts carry no currency; the allocated pool is not called paid
    assert units["n_generations"] == "generations" and units["holders_paid"] == "holders"
    assert "total_paid" not in units and units["allocated_to_holders"] == "USD"
    assert "calculated at (UTC)" in html and "quarantined" in html
    ledger = {r["item"]: Decimal(r["value"]) for r in rows if r["section"] == "ledger"}
    assert ledger["paid_out"] == Decimal("3.00") and ledger["adjusted"] == Decimal("1.25")
    assert (
        ledger["carried_forward"]
        == ledger["opening"] + ledger["earned"] + ledger["adjusted"] - ledger["paid_out"]
    )
    assert "Royalty pool per platform" in html and "Approvals" in html and "calc-1" in html
    assert "bob" in html and any(r["section"] == "approval" and "bob" in r["item"] for r in rows)
