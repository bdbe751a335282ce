"""Statements as a rights holder meets them: names in any script with real glyphs, hostile
names and titles that neither stop the period nor turn into spreadsheet formulas, and every
line a holder can add up.

One calculated and closed period (real DuckDB, real calculation, real close) with holders
named in Japanese, Chinese, Korean, Arabic, Hebrew, Greek and Russian, a holder whose name is
10,000 characters, a work whose title is 10,000 characters, and formula-leading titles,
composers and names. Every statement of the period is built once for the module.
"""

from __future__ import annotations

import re
import subprocess
import unicodedata
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pypdfium2
import pytest
from settlement_fixtures import seed_warehouse, table
from test_statements import _csv, check_holder_files, parse_dsr

from settlement import cells, statements
from settlement.calculate import calculate_period
from settlement.lifecycle import approve_period, close_period
from settlement.warehouse import warehouse

PERIOD = "2026-10"
SCRIPTS = {
    "RH00": "東京音楽出版",  # Japanese
    "RH01": "北京音乐出版社",  # Chinese
    "RH02": "서울음악출판사",  # Korean
    "RH03": "دار النشر للموسيقى",  # Arabic
    "RH04": "הוצאה לאור מוזיקה",  # Hebrew
    "RH05": "Μουσικές Εκδόσεις Κυκλάδες",  # Greek
    "RH06": "Музыкальное издательство",  # Russian
}
LONG_NAME = ("Ω" + "Long Holder Name " * 589)[:10_000]  # 10,000 characters
LONG_TITLE = "Sonata " + "x" * 9993  # 10,000 characters, one unbreakable word
EVIL = {
    "RH07": "=HYPERLINK(\"http://evil.example\",\"click\")",
    "RH08": "@SUM(1+1)*cmd|' /C calc'!A0",
    "RH09": "+cmd|' /C calc'!A0\x00\u202eexe.txt",
}
EVIL_TITLES = ["=HYPERLINK(\"http://evil.example\")", "-2+3+cmd|' /C calc'!A0", "@SUM(A1)", "\tTab", "\rCR"]


@pytest.fixture(scope="module")
def period(tmp_path_factory):
    root = tmp_path_factory.mktemp("people")
    db = root / "w.duckdb"
    holders = [*SCRIPTS, *EVIL, "RH10", "RH11"]
    seed_warehouse(db, n_works=90, n_generations=60, n_holders=len(holders), seed=5, pool_rate="0.2")
    assert len(LONG_NAME) == len(LONG_TITLE) == 10_000
    with warehouse(db) as con:
        for hid, name in {**SCRIPTS, **EVIL, "RH10": LONG_NAME}.items():
            con.execute("UPDATE ref.rights_holders SET name = ? WHERE rights_holder_id = ?", [name, hid])
        con.execute("UPDATE ref.rights_holders SET min_payout = 0")
        # RH11 owns every recording: a statement of 90 works, which groups those under 0.01
        con.execute("DELETE FROM ref.splits WHERE right_type = 'master'")
        con.execute("INSERT INTO ref.splits SELECT work_id, 'master', 'RH11', 1, DATE '2020-01-01', NULL FROM ref.works")
        con.execute("UPDATE ref.works SET title = ? WHERE work_id = 'W000'", [LONG_TITLE])
        for i, title in enumerate(EVIL_TITLES, start=1):
            con.execute("UPDATE ref.works SET title = ?, composer = ? WHERE work_id = ?",
                        [title, "+cmd|' /C calc'!A0", f"W{i:03d}"])  # fmt: skip
    calculate_period(db, PERIOD, run_id="calc-people", by="alice")
    approve_period(db, PERIOD, by="bob")
    close_period(db, PERIOD, by="bob", snapshots=None)
    out = root / "statements"
    result = statements.build_statements(db, out, PERIOD)
    return {"db": db, "out": out, "result": result, "root": root}


def _pdf(period, holder: str) -> Path:
    name = statements.holder_dir_name(holder)
    return period["out"] / PERIOD / name / f"statement_{PERIOD}_{name}.pdf"


def _notdef_signatures(tmp: Path) -> list:
    """What a missing glyph looks like in each embedded font: a PDF drawing a character none of
    them has, rasterised the same way as the statements."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen.canvas import Canvas

    from settlement import statement_pdf

    statement_pdf.register_fonts()
    path = tmp / "notdef.pdf"
    canvas = Canvas(str(path), pagesize=A4)
    for i, (font, _, _) in enumerate(statement_pdf.FONTS):
        canvas.setFont(font, 12)
        canvas.drawString(72, 700 - 40 * i, "\U000f0001")  # a private-use plane: no font has it
    canvas.save()
    pdf = pypdfium2.PdfDocument(str(path))
    page = pdf[0]
    image = page.render(scale=4).to_pil().convert("L")
    boxes = _char_boxes(page, image.height, 4)
    return [_signature(image, box) for _, box in boxes]


def _char_boxes(page, height: int, scale: float) -> list[tuple[str, tuple[int, int, int, int]]]:
    text = page.get_textpage()
    out = []
    for i in range(text.count_chars()):
        ch = text.get_text_range(i, 1)
        left, bottom, right, top = text.get_charbox(i)
        out.append((ch, (int(left * scale), int(height - top * scale), int(right * scale) + 1,
                         int(height - bottom * scale) + 1)))  # fmt: skip
    return out


def _signature(image, box):
    """The glyph's ink, cropped to its own bounding box and scaled to 16 x 16 cells."""
    crop = image.crop(box)
    ink = crop.point(lambda v: 255 if v < 128 else 0)
    bbox = ink.getbbox()
    if bbox is None:
        return None
    small = ink.crop(bbox).resize((16, 16))
    return [1 if v > 64 else 0 for v in small.getdata()]


def _similar(a, b) -> float:
    if a is None or b is None:
        return 0.0
    both = sum(1 for x, y in zip(a, b, strict=True) if x and y)
    either = sum(1 for x, y in zip(a, b, strict=True) if x or y)
    return both / either if either else 0.0


def test_names_in_every_script_are_real_glyphs_and_round_trip(period, tmp_path):
    notdef = [s for s in _notdef_signatures(tmp_path) if s is not None]
    for holder, name in SCRIPTS.items():
        pdf = pypdfium2.PdfDocument(str(_pdf(period, holder)))
        page = pdf[0]
        text = page.get_textpage().get_text_range()
        # the name comes back from the text layer as it was stored (right-to-left in logical order)
        assert unicodedata.normalize("NFKC", name) in unicodedata.normalize("NFKC", text), (holder, text[:300])
        image = page.render(scale=4).to_pil().convert("L")
        glyphs = [(ch, box) for ch, box in _char_boxes(page, image.height, 4) if ch in name and not ch.isspace()]
        assert len(glyphs) >= len(name.replace(" ", "")), holder
        for ch, box in glyphs:
            signature = _signature(image, box)
            assert signature is not None, f"{holder}: {ch!r} renders blank"
            assert all(_similar(signature, box_) < 0.8 for box_ in notdef), f"{holder}: {ch!r} is a missing-glyph box"


def test_every_font_of_every_statement_is_embedded(period):
    pdfs = sorted((period["out"] / PERIOD).rglob("*.pdf"))
    assert len(pdfs) == period["result"]["statements"]
    for pdf in pdfs:
        listing = subprocess.run(["pdffonts", str(pdf)], capture_output=True, text=True, check=True).stdout
        rows = [line.split() for line in listing.splitlines()[2:] if line.strip()]
        assert rows, pdf
        for row in rows:
            # name type encoding emb sub uni object generation: `emb` is the 4th from the end
            assert row[-5] == "yes", f"{pdf.name}: font {row[0]} is not embedded"
        assert not any(r[0] in ("Helvetica", "Times-Roman", "Courier") for r in rows)


def test_a_10000_character_name_and_title_build_every_statement(period):
    holders = table(period["db"], f"SELECT DISTINCT rights_holder_id FROM settlement.holder_totals "
                                  f"WHERE period = '{PERIOD}' AND amount > 0")["rights_holder_id"]  # fmt: skip
    assert "RH10" in set(holders)
    assert period["result"]["statements"] >= len(holders)
    long_pdf = _pdf(period, "RH10")
    pdf = pypdfium2.PdfDocument(str(long_pdf))
    text = "".join(pdf[i].get_textpage().get_text_range() for i in range(len(pdf)))
    # shortened where it is laid out, whole in the text layer (the appendix) and in the CSV
    assert re.sub(r"\s", "", LONG_NAME) in re.sub(r"\s", "", text)
    rows = _csv(long_pdf.with_suffix(".csv"))
    assert {r["rights_holder_name"] for r in rows} == {" ".join(LONG_NAME.split())}
    titled = [p for p in (period["out"] / PERIOD).rglob("statement_*.csv")
              if any(r["work_id"] == "W000" for r in _csv(p))]  # fmt: skip
    assert titled
    for path in titled:
        assert {r["title"] for r in _csv(path) if r["work_id"] == "W000"} == {LONG_TITLE}


def _all_cells(out: Path):
    for path in sorted(out.rglob("*")):
        if path.suffix == ".csv":
            data = path.read_bytes().decode("utf-8-sig")
            import csv
            import io

            for row in csv.reader(io.StringIO(data)):
                yield path, row
        elif path.suffix == ".tsv":
            for line in path.read_text().splitlines():
                yield path, re.split(r"(?<!\\)\t", line)


def test_no_cell_of_any_csv_or_tsv_is_a_formula_and_amounts_are_unchanged(period):
    seen = 0
    for path, row in _all_cells(period["out"] / PERIOD):
        for value in row:
            seen += 1
            assert not cells.is_dangerous(value), (path.name, value[:60])
            assert "\x00" not in value and "\u202e" not in value, path.name
    assert seen > 1000
    # the hostile names and titles are there, neutralised, not dropped
    texts = {v for _, row in _all_cells(period["out"] / PERIOD) for v in row}
    assert "'=HYPERLINK(\"http://evil.example\")" in texts and "'@SUM(A1)" in texts
    assert any(v.startswith("'+cmd") for v in texts)
    # every amount in the statement CSVs is the warehouse's, to the last digit
    stored = table(period["db"], f"""
        SELECT rights_holder_id, platform_id, work_id, right_type, amount, output_exact + training_exact AS exact
        FROM settlement.statement_lines WHERE period = '{PERIOD}'""")  # fmt: skip
    expected = {(r.rights_holder_id, r.platform_id, r.work_id, r.right_type): (r.amount, r.exact)
                for r in stored.itertuples()}  # fmt: skip
    found = {}
    for path in (period["out"] / PERIOD).rglob("statement_*.csv"):
        for r in _csv(path):
            found[(r["rights_holder_id"], r["platform_id"], r["work_id"], r["right_type"])] = (
                Decimal(r["amount"]), Decimal(r["exact_amount"]))
    assert found == expected
    # the raw value stays in the warehouse
    raw = table(period["db"], "SELECT name FROM ref.rights_holders WHERE rights_holder_id = 'RH09'")["name"][0]
    assert raw == EVIL["RH09"]


def test_every_holder_can_add_up_its_statement(period):
    """The listed lines (and the grouped line) sum to the printed total; the CSV has a row per
    statement line; DSR usages per work are the statement's generation counts."""
    db, out = period["db"], period["out"]
    holders = table(db, f"SELECT DISTINCT rights_holder_id FROM settlement.statement_lines WHERE period = '{PERIOD}'")
    grouped = 0
    for holder in holders["rights_holder_id"]:
        grouped += check_holder_files(db, out, PERIOD, holder)
    assert grouped > 0  # at least one statement groups its works under 0.01


def test_dsr_names_and_titles_survive_as_text(period):
    for path in (period["out"] / PERIOD).rglob("DSR_*.tsv"):
        parsed = parse_dsr(path)
        names = {s["RightsController"] for s in parsed["records"]["SY07"]}
        assert len(names) == 1
        for li in parsed["records"].get("LI01", []):
            assert li["RightsController"] in names
    by_holder = defaultdict(set)
    for path in (period["out"] / PERIOD).rglob("DSR_*.tsv"):
        parsed = parse_dsr(path)
        by_holder[parsed["holder"]] |= {s["RightsController"] for s in parsed["records"]["SY07"]}
    assert by_holder["RH03"] == {SCRIPTS["RH03"]}
