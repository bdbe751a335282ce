"""Rights holder statements for a period, and the command that builds and verifies them.

For each holder with earnings or a balance, in `statements/PERIOD/HOLDER/`:
  statement_PERIOD_HOLDER.pdf          what a person reads (statement of account, works, chart,
                                       how shares were measured)
  statement_PERIOD_HOLDER.csv          one row per work x platform x right, same totals as the PDF
  generations_PERIOD_HOLDER.csv        per-generation detail of the output royalty
  DSR_HOLDER_TRIBUTARY_PLATFORM_...tsv DDEX DSR-style royalty report (settlement/dsr.py)
and for the period: period_summary.{csv,json}, finance_report_PERIOD.{html,csv}.

Files are byte-for-byte reproducible: they are rendered from the warehouse alone (sorted rows,
no clock, reportlab's invariant mode, fonts shipped with an installed package), and their
sha256 are stored in settlement.statement_files / settlement.period_files, so
`python -m settlement.statements verify --period P` can prove a rerun gives the same bytes.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import os
import re
import sys
import unicodedata
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

from tqdm import tqdm

from settlement import dsr, finance_report, inputs
from settlement.warehouse import query, run_sql, transaction, warehouse

LINE_COLUMNS = [
    "statement_number", "period", "rights_holder_id", "platform_id", "work_id", "iswc", "isrc",
    "title", "composer", "right_type", "n_generations", "output_royalty", "training_royalty",
    "amount", "currency",
]  # fmt: skip
# One row per generation that drew on a work (its output royalty) and one per statement line
# for the training royalty; `amount` is the line's cents divided over its rows, so a holder's
# rows sum to the statement to the cent. Read from settlement.generation_amounts.
GENERATION_COLUMNS = [
    "statement_number", "period", "rights_holder_id", "platform_id", "royalty", "generation_id", "created_at",
    "territory", "work_id", "iswc", "isrc", "right_type", "revenue_amount", "revenue_currency", "fx_rate",
    "fee", "generation_pool", "attribution_share", "right_weight", "holder_split", "exact_royalty", "amount",
    "currency", "attribution_run_id", "output_kind", "output_audio_file", "output_audio_sha256",
]  # fmt: skip
# A file name is at most 255 bytes on common file systems; non-Latin names take 3 bytes a
# character in UTF-8, and the longest name built from an id (the DSR file) adds ~60 bytes.
MAX_NAME_BYTES = 96


def safe_name(identifier: str) -> str:
    """A file-system-safe name for an id or a name: no separators, no `..`, never empty.
    Non-Latin letters are kept (they are valid in file names); anything else becomes `_`."""
    text = unicodedata.normalize("NFC", identifier)
    text = re.sub(r"[^\w.-]", "_", text, flags=re.UNICODE).strip("._")
    text = re.sub(r"\.{2,}", "_", text)
    while len(text.encode()) > MAX_NAME_BYTES:
        text = text[:-1]
    return text or "_"


def holder_dir_name(rights_holder_id: str) -> str:
    """The holder's folder and file-name part. An id that had to be changed to be safe gets a
    digest of the original, so two ids that sanitise alike (`a/b`, `a_b`) never share files."""
    name = safe_name(rights_holder_id)
    if name != rights_holder_id:
        name = f"{safe_name(rights_holder_id)[:80]}-{hashlib.sha256(rights_holder_id.encode()).hexdigest()[:8]}"
    return name


def statement_number(period: str, rights_holder_id: str) -> str:
    """TRB-2026-10-RH0001. Kept to ASCII letters and digits so it can be quoted on the phone and
    typed anywhere; an id that is not gets a digest of itself instead."""
    if re.fullmatch(r"[A-Za-z0-9-]{1,40}", rights_holder_id):
        return f"TRB-{period}-{rights_holder_id}"
    return f"TRB-{period}-H{hashlib.sha256(rights_holder_id.encode()).hexdigest()[:10].upper()}"


def _period_start(period: str) -> date:
    return inputs.period_start(period)


def _period_end(period: str) -> date:
    start = _period_start(period)
    nxt = date(start.year + (start.month == 12), start.month % 12 + 1, 1)
    return date.fromordinal(nxt.toordinal() - 1)


def _fmt(value: object) -> str:
    """Text for a file cell: Decimals in plain notation (str() would write 0E-9)."""
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def _csv_bytes(rows: list[dict], columns: list[str]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_fmt(row[c]) for c in columns])
    return buf.getvalue().encode()


@dataclass(frozen=True)
class Rendered:
    path: str  # relative to the statements root, always inside PERIOD/
    rights_holder_id: str  # '' for a file of the whole period
    kind: str
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


# --- gathering --------------------------------------------------------------------------


def _account(rows: list[dict]) -> dict:
    """Statement of account from the holder's ledger rows (sql/marts/statement_account.sql)."""
    opening = sum((r["amount"] for r in rows if r["section"] == "opening"), Decimal("0.00"))
    earnings: dict[str, Decimal] = defaultdict(lambda: Decimal("0.00"))
    for r in rows:
        if r["section"] == "earnings":
            earnings[r["platform_id"] or "other"] += r["amount"]
    adjustments = [r for r in rows if r["section"] == "adjustment"]
    payout = -sum((r["amount"] for r in rows if r["section"] == "payout"), Decimal("0.00"))
    earned = sum(earnings.values(), Decimal("0.00"))
    adjusted = sum((r["amount"] for r in adjustments), Decimal("0.00"))
    return {
        "opening": opening, "earnings": dict(sorted(earnings.items())), "earned": earned,
        "adjustments": adjustments, "adjusted": adjusted, "payout": payout,
        "closing": opening + earned + adjusted - payout,
    }  # fmt: skip


def holder_rows(con, period: str, rights_holder_id: str) -> tuple[list[dict], list[dict]]:
    """The rows of a holder's statement CSV and per-generation CSV, as written to the files."""
    ids = {"statement_number": statement_number(period, rights_holder_id), "period": period,
           "rights_holder_id": rights_holder_id}  # fmt: skip
    params = {"period": period, "rights_holder_id": rights_holder_id}
    lines = [ids | r for r in query(con, "marts/holder_statement_lines", params)]
    generations = [ids | r for r in query(con, "marts/statement_generations", params)]
    return lines, generations


def render_period(con, period: str, progress: bool | None = None) -> list[Rendered]:
    """Every file of a calculated period, rendered in memory from the warehouse.

    `progress`: a bar per holder on stderr (None: only when stderr is a terminal)."""
    start = _period_start(period)
    state = query(con, "marts/finance_period", {"period": period})
    if not state or state[0]["status"] == "open" or state[0]["run_id"] is None:
        raise RuntimeError(f"period {period} has not been calculated")
    run_id, calculated_at = state[0]["run_id"], state[0]["calculated_at"]
    holders = query(con, "marts/period_holders", {"period": period})
    methods = query(con, "marts/statement_methods", {"period": period})
    contracts = query(con, "marts/statement_contracts", {"period": period})
    usage = query(con, "marts/dsr_usage", {"period": period})
    dsr_lines: dict[str, list[dict]] = defaultdict(list)
    for row in query(con, "marts/dsr_lines", {"period": period}):
        if row["amount"] != 0:
            dsr_lines[row["rights_holder_id"]].append(row)

    period_dir = safe_name(period)
    files: list[Rendered] = []
    # A PDF per holder is the slow part (about 40 ms each): thousands of holders take minutes.
    for holder in tqdm(holders, desc=f"statements {period}", unit="holder", disable=_quiet(progress)):
        hid = holder["rights_holder_id"]
        if "," in holder["currency"]:
            raise RuntimeError(f"holder {hid} earns in several currencies ({holder['currency']}) in {period}; "
                               "statements are per currency and FX conversion is not implemented")  # fmt: skip
        number = statement_number(period, hid)
        folder = f"{period_dir}/{holder_dir_name(hid)}"
        tag = f"{period_dir}_{holder_dir_name(hid)}"
        params = {"period": period, "period_start": start, "rights_holder_id": hid}
        lines, generations = holder_rows(con, period, hid)
        works = query(con, "marts/statement_works", params)
        account = _account(query(con, "marts/statement_account", params))
        lines_total = sum((r["amount"] for r in lines), Decimal("0.00"))
        if lines_total != account["earned"]:
            # The statement must never show a total that the ledger does not hold.
            raise RuntimeError(f"holder {hid}: statement lines sum to {lines_total}, the ledger's "
                               f"earnings for {period} to {account['earned']}")  # fmt: skip
        detail_total = sum((r["amount"] for r in generations), Decimal("0.00"))
        if detail_total != sum((r["amount"] for r in query(con, "marts/holder_statement_total", params)), Decimal("0.00")):
            raise RuntimeError(f"holder {hid}: per-generation rows sum to {detail_total}, not to the statement")
        platforms = sorted({r["platform_id"] for r in lines})
        pdf = render_pdf(
            holder=holder, period=period, period_start=start, period_end=_period_end(period),
            number=number, run_id=run_id, account=account, works=works,
            methods=[m for m in methods if m["platform_id"] in platforms],
            contracts=[c for c in contracts if c["platform_id"] in platforms],
        )  # fmt: skip
        files += [
            Rendered(f"{folder}/statement_{tag}.pdf", hid, "pdf", pdf),
            Rendered(f"{folder}/statement_{tag}.csv", hid, "csv", _csv_bytes(lines, LINE_COLUMNS)),
            Rendered(f"{folder}/generations_{tag}.csv", hid, "generations_csv",
                     _csv_bytes(generations, GENERATION_COLUMNS)),
        ]  # fmt: skip
        by_platform: dict[str, list[dict]] = defaultdict(list)
        for row in dsr_lines.get(hid, []):
            by_platform[row["platform_id"]].append(row)
        dsr_total = sum((r["amount"] for r in dsr_lines.get(hid, [])), Decimal("0.00"))
        if dsr_total != lines_total:
            raise RuntimeError(
                f"holder {hid}: DSR royalty lines sum to {dsr_total}, statement to {lines_total}"
            )
        for platform in sorted(by_platform):
            name, data = dsr.render(
                period=period, usage_start=start.isoformat(), usage_end=_period_end(period).isoformat(),
                holder=holder, platform=platform, lines=by_platform[platform],
                usage=[u for u in usage if u["platform_id"] == platform], created=calculated_at, run_id=run_id,
            )  # fmt: skip
            files.append(Rendered(f"{folder}/{name}", hid, f"dsr:{platform}", data))

    summary = query(con, "marts/period_summary", {"period": period})
    cols = list(summary[0]) if summary else ["period"]
    files.append(
        Rendered(f"{period_dir}/period_summary.csv", "", "summary_csv", _csv_bytes(summary, cols))
    )
    summary_json = json.dumps(
        {"period": period, "run_id": run_id, "statements": len(holders),
         "platforms": [{k: v if isinstance(v, int) else _fmt(v) for k, v in r.items()} for r in summary]},
        indent=1, sort_keys=True, ensure_ascii=False,
    )  # fmt: skip
    files.append(
        Rendered(f"{period_dir}/period_summary.json", "", "summary_json", summary_json.encode())
    )
    report_html, report_csv = finance_report.render(
        finance_report.gather(con, period, start), period, len(holders)
    )
    files.append(
        Rendered(f"{period_dir}/finance_report_{period_dir}.html", "", "finance_html", report_html)
    )
    files.append(
        Rendered(f"{period_dir}/finance_report_{period_dir}.csv", "", "finance_csv", report_csv)
    )
    return files


def _inside(root: Path, relative: str) -> Path:
    """The file's path, refusing anything that would land outside the statements root."""
    path = (root / relative).resolve()
    if not path.is_relative_to(root.resolve()):
        raise RuntimeError(f"refusing to write {relative!r} outside {root}")
    return path


def _quiet(progress: bool | None) -> bool | None:
    return None if progress is None else not progress


def build_statements(
    warehouse_path: Path, out_root: Path, period: str, progress: bool | None = None
) -> dict:
    """Write every file of a calculated period and record their sha256 in the warehouse.

    Killed at any instant, a rerun completes it: each file is written aside, fsynced and renamed
    (a name only ever holds a whole file), and the hashes are recorded in one transaction after
    every file is in place."""
    out_root = Path(out_root)
    period = inputs.period(period)
    with warehouse(warehouse_path) as con:
        files = render_period(con, period, progress)
        for f in files:
            path = _inside(out_root, f.path)
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(f".{path.name}.partial")
            with open(partial, "wb") as handle:
                handle.write(f.data)
                handle.flush()
                os.fsync(handle.fileno())
            partial.replace(path)
        _record(con, period, files)
    holders = {f.rights_holder_id for f in files if f.rights_holder_id}
    return {"period": period, "folder": str(out_root / safe_name(period)), "statements": len(holders),
            "files": len(files)}  # fmt: skip


def _record(con, period: str, files: list[Rendered]) -> None:
    """Replace the period's recorded file hashes with those of `files`, in one transaction."""
    run_id = (query(con, "marts/finance_period", {"period": period}) or [{"run_id": None}])[0]["run_id"]
    with transaction(con):
        run_sql(con, "marts/statement_files_clear", {"period": period})
        for f in files:
            params = {"period": period, "kind": f.kind, "path": f.path, "sha256": f.sha256, "run_id": run_id}
            if f.rights_holder_id:
                run_sql(con, "loads/statement_file", params | {"rights_holder_id": f.rights_holder_id})
            else:
                run_sql(con, "marts/statement_period_file", params)


def record_rendered(con, period: str) -> int:
    """Record the hashes of what the warehouse renders for `period`, without writing files: a
    restored snapshot was taken before its period's final statements were recorded, and this
    puts their hashes back so `statements verify` checks the files on disk against it."""
    files = render_period(con, period, progress=False)
    _record(con, period, files)
    return len(files)


def verify_statements(
    warehouse_path: Path, out_root: Path, period: str, progress: bool | None = None
) -> dict:
    """Re-render the period (read-only) and compare with the stored sha256 and the files on
    disk. `ok` is False if any file differs, is missing, or was recorded but not rebuilt."""
    out_root = Path(out_root)
    period = inputs.period(period)
    with warehouse(warehouse_path, read_only=True) as con:
        files = render_period(con, period, progress)
        recorded = {
            r["path"]: r["sha256"]
            for r in query(con, "marts/statement_files_recorded", {"period": period})
        }
    results = []
    for f in files:
        path = _inside(out_root, f.path)
        on_disk = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
        stored = recorded.pop(f.path, None)
        status = "ok" if stored == f.sha256 == on_disk else (
            "not recorded" if stored is None else "missing" if on_disk is None
            else "stored sha256 differs" if stored != f.sha256 else "file differs"
        )  # fmt: skip
        results.append({"path": f.path, "kind": f.kind, "sha256": f.sha256, "stored": stored,
                        "on_disk": on_disk, "status": status})  # fmt: skip
    for path, stored in sorted(recorded.items()):
        results.append({"path": path, "kind": "?", "sha256": None, "stored": stored, "on_disk": None,
                        "status": "recorded but not rebuilt"})  # fmt: skip
    return {"period": period, "ok": all(r["status"] == "ok" for r in results), "files": results}


# --- the PDF ------------------------------------------------------------------------------

NAVY = "#1f3a5f"
ACCENT = "#2e86ab"
LIGHT = "#eef2f7"
RULE = "#c9d3e0"
FONT, FONT_BOLD, FONT_CJK = "TributarySans", "TributarySans-Bold", "HeiseiKakuGo-W5"
_FONT_CHARS: set[int] = set()


def _register_fonts() -> None:
    """DejaVu Sans (shipped inside matplotlib, a dependency of music21) covers Latin, Greek
    and Cyrillic and is embedded, so the PDF looks and hashes the same on every machine; CJK
    characters fall back to a standard Adobe CID font that viewers supply."""
    if _FONT_CHARS:
        return
    import matplotlib
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfbase.ttfonts import TTFont

    fonts = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    regular = TTFont(FONT, str(fonts / "DejaVuSans.ttf"))
    pdfmetrics.registerFont(regular)
    pdfmetrics.registerFont(TTFont(FONT_BOLD, str(fonts / "DejaVuSans-Bold.ttf")))
    pdfmetrics.registerFontFamily(
        FONT, normal=FONT, bold=FONT_BOLD, italic=FONT, boldItalic=FONT_BOLD
    )
    pdfmetrics.registerFont(UnicodeCIDFont(FONT_CJK))
    _FONT_CHARS.update(regular.face.charToGlyph)


def _rich(text: object) -> str:
    """Paragraph markup for any text: escaped, and characters the embedded font lacks set in
    the CJK font (a holder's name may be 東京音楽出版)."""
    out, run_cjk = [], False
    for ch in str(text if text is not None else ""):
        cjk = ord(ch) not in _FONT_CHARS and not ch.isspace()
        if cjk != run_cjk:
            out.append(f'<font name="{FONT_CJK}">' if cjk else "</font>")
            run_cjk = cjk
        out.append({"&": "&amp;", "<": "&lt;", ">": "&gt;"}.get(ch, ch))
    if run_cjk:
        out.append("</font>")
    return "".join(out)


def _money(value: Decimal) -> str:
    # '.' decimals and no thousands separators everywhere, so the text a machine extracts
    # from the PDF is the same number as in the CSV.
    return f"{value:.2f}"


def _styles():
    from reportlab.lib import colors
    from reportlab.lib.styles import ParagraphStyle

    base = ParagraphStyle(
        "base", fontName=FONT, fontSize=8, leading=10.5, textColor=colors.HexColor("#1b2635")
    )
    return {
        "base": base,
        "small": ParagraphStyle("small", parent=base, fontSize=7.5, leading=9.5),
        "muted": ParagraphStyle("muted", parent=base, fontSize=7.5, leading=9.5, textColor=colors.HexColor("#5b6b80")),
        "title": ParagraphStyle("title", parent=base, fontName=FONT_BOLD, fontSize=17, leading=21,
                                textColor=colors.HexColor(NAVY)),
        "holder": ParagraphStyle("holder", parent=base, fontName=FONT_BOLD, fontSize=12, leading=15),
        "h2": ParagraphStyle("h2", parent=base, fontName=FONT_BOLD, fontSize=11, leading=14, spaceBefore=9,
                             spaceAfter=4, textColor=colors.HexColor(NAVY)),
        "kpi_label": ParagraphStyle("kpi_label", parent=base, fontSize=7.5, textColor=colors.HexColor("#5b6b80")),
        "kpi": ParagraphStyle("kpi", parent=base, fontName=FONT_BOLD, fontSize=13, leading=16,
                              textColor=colors.HexColor(NAVY)),
    }  # fmt: skip


def _chart(works: list[dict], width: float):
    """Horizontal bars of the holder's top works by amount."""
    from reportlab.graphics.charts.barcharts import HorizontalBarChart
    from reportlab.graphics.shapes import Drawing
    from reportlab.lib import colors

    top = [w for w in works if w["amount"] > 0][:8]
    bar_h = 14
    height = bar_h * len(top) + 22
    drawing = Drawing(width, height)
    chart = HorizontalBarChart()
    chart.x, chart.y = 150, 14
    chart.width, chart.height = width - 200, bar_h * len(top)
    # Largest first from the top: the category axis runs bottom-up.
    # Drawn in whole cents: the chart library computes in binary floating point, money never does.
    chart.data = [[int(w["amount"] * 100) for w in reversed(top)]]
    names = [w["title"] if len(w["title"]) <= 34 else w["title"][:33] + "…" for w in reversed(top)]
    chart.categoryAxis.categoryNames = names
    chart.categoryAxis.labels.fontName = FONT
    chart.categoryAxis.labels.fontSize = 7
    chart.categoryAxis.labels.boxAnchor = "e"
    chart.categoryAxis.labels.dx = -4
    chart.categoryAxis.strokeColor = colors.HexColor(RULE)
    chart.categoryAxis.tickLeft = chart.categoryAxis.tickRight = 0
    chart.valueAxis.valueMin = 0
    chart.valueAxis.labels.fontName = FONT
    chart.valueAxis.labels.fontSize = 6.5
    # small amounts (cents) need a third decimal, or neighbouring ticks print the same label
    places = 2 if top[0]["amount"] >= 1 else 3
    chart.valueAxis.labelTextFormat = lambda cents: f"{Decimal(str(cents)) / 100:.{places}f}"
    chart.valueAxis.strokeColor = colors.HexColor(RULE)
    chart.valueAxis.visibleGrid = 1
    chart.valueAxis.gridStrokeColor = colors.HexColor(LIGHT)
    chart.bars[0].fillColor = colors.HexColor(ACCENT)
    chart.bars[0].strokeColor = None
    chart.barLabelFormat = lambda cents: f"{Decimal(str(cents)) / 100:.2f}"
    chart.barLabels.fontName = FONT
    chart.barLabels.fontSize = 6.5
    chart.barLabels.boxAnchor = "w"
    chart.barLabels.dx = 3
    drawing.add(chart)
    return drawing


def render_pdf(
    *, holder: dict, period: str, period_start: date, period_end: date, number: str, run_id: str,
    account: dict, works: list[dict], methods: list[dict], contracts: list[dict],
) -> bytes:  # fmt: skip
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.platypus import (
        KeepTogether,
        Paragraph,
        SimpleDocTemplate,
        Spacer,
        Table,
        TableStyle,
    )

    _register_fonts()
    st = _styles()
    currency = holder["currency"]
    P = Paragraph  # a short name keeps the table literals readable
    buf = io.BytesIO()
    doc = SimpleDocTemplate(
        buf, pagesize=A4, invariant=1, title=f"Tributary statement {number}", author="Tributary",
        subject=f"Training royalty statement {period}", creator="Tributary", producer="Tributary",
        leftMargin=16 * mm, rightMargin=16 * mm, topMargin=20 * mm, bottomMargin=16 * mm,
    )  # fmt: skip
    width = doc.width

    def page(canvas, _doc):
        canvas.saveState()
        canvas.setFillColor(colors.HexColor(NAVY))
        canvas.rect(0, A4[1] - 9 * mm, A4[0], 9 * mm, stroke=0, fill=1)
        canvas.setFillColor(colors.white)
        canvas.setFont(FONT_BOLD, 9)
        canvas.drawString(16 * mm, A4[1] - 6 * mm, "TRIBUTARY")
        canvas.setFont(FONT, 7.5)
        canvas.drawRightString(
            A4[0] - 16 * mm, A4[1] - 6 * mm, f"Training royalty statement {number}"
        )
        canvas.setFillColor(colors.HexColor("#5b6b80"))
        canvas.setFont(FONT, 6.5)
        canvas.drawString(16 * mm, 9 * mm, f"Calculation {run_id}")
        canvas.drawRightString(A4[0] - 16 * mm, 9 * mm, f"Page {canvas.getPageNumber()}")
        canvas.restoreState()

    grid = [
        ("FONTNAME", (0, 0), (-1, -1), FONT),
        ("FONTSIZE", (0, 0), (-1, -1), 8),
        ("TOPPADDING", (0, 0), (-1, -1), 2.5),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2.5),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
    ]

    def table(rows, widths, style, repeat=0):
        t = Table(rows, colWidths=widths, repeatRows=repeat)
        t.setStyle(TableStyle(grid + style))
        return t

    header_style = [
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor(LIGHT)),
        ("FONTNAME", (0, 0), (-1, 0), FONT_BOLD),
        ("TEXTCOLOR", (0, 0), (-1, 0), colors.HexColor(NAVY)),
        ("LINEBELOW", (0, 0), (-1, 0), 0.6, colors.HexColor(RULE)),
    ]

    # Title and the statement's identity
    ident = [
        ["Statement number", number], ["Period", f"{period} ({period_start.isoformat()} to {period_end.isoformat()})"],
        ["Currency", currency], ["Rights holder id", P(_rich(holder["rights_holder_id"]), st["base"])],
    ]  # fmt: skip
    ident_t = table(ident, [30 * mm, 62 * mm], [("TEXTCOLOR", (0, 0), (0, -1), colors.HexColor("#5b6b80")),
                                                ("FONTSIZE", (0, 0), (-1, -1), 7.5)])  # fmt: skip
    left = [P("Training royalty statement", st["title"]), Spacer(1, 2 * mm),
            P(_rich(holder["name"]), st["holder"]), P(f"{_rich(holder['kind']).capitalize()}", st["muted"])]  # fmt: skip
    story = [table([[left, ident_t]], [width - 94 * mm, 94 * mm], [("VALIGN", (0, 0), (-1, -1), "TOP")]),
             Spacer(1, 5 * mm)]  # fmt: skip

    # Headline figures
    kpis = [("Earned this period", account["earned"]), ("Paid out", account["payout"]),
            ("Carried forward", account["closing"])]  # fmt: skip
    cells = [
        [P(label, st["kpi_label"]), P(f"{_money(v)} {currency}", st["kpi"])] for label, v in kpis
    ]
    story.append(table([cells], [width / 3] * 3, [
        ("BACKGROUND", (0, 0), (-1, -1), colors.HexColor(LIGHT)),
        ("LINEBEFORE", (1, 0), (-1, 0), 2, colors.white),
        ("TOPPADDING", (0, 0), (-1, -1), 6), ("BOTTOMPADDING", (0, 0), (-1, -1), 6),
        ("LEFTPADDING", (0, 0), (-1, -1), 8),
    ]))  # fmt: skip

    # Statement of account
    story.append(P("Statement of account", st["h2"]))
    rows = [
        ["", f"Amount ({currency})"],
        ["Opening balance (owed to you before this period)", _money(account["opening"])],
    ]
    for platform, amount in account["earnings"].items():
        rows.append([P(f"Earnings from platform {_rich(platform)}", st["base"]), _money(amount)])
    rows.append(["Total earnings this period", _money(account["earned"])])
    bold_rows = [len(rows) - 1]
    for adj in account["adjustments"]:
        rows.append([P(f"Adjustment: {_rich(adj['memo'])} <font size=6.5 color='#5b6b80'>({_rich(adj['reference'])})</font>",
                       st["small"]), _money(adj["amount"])])  # fmt: skip
    if not account["adjustments"]:
        rows.append(["Adjustments of earlier periods", _money(Decimal("0.00"))])
    rows.append(["Paid out this period", _money(-account["payout"])])
    rows.append(["Closing balance (carried forward)", _money(account["closing"])])
    bold_rows.append(len(rows) - 1)
    story.append(table(rows, [width - 40 * mm, 40 * mm], header_style + [
        ("ALIGN", (1, 0), (1, -1), "RIGHT"),
        *[("FONTNAME", (0, r), (-1, r), FONT_BOLD) for r in bold_rows],
        *[("LINEABOVE", (0, r), (-1, r), 0.6, colors.HexColor(RULE)) for r in bold_rows],
        ("LINEBELOW", (0, -1), (-1, -1), 1.2, colors.HexColor(NAVY)),
    ]))  # fmt: skip
    if holder["min_payout"] > 0:
        note = (f"Balances are paid when they reach your minimum payout of {_money(holder['min_payout'])} "
                f"{currency}; a smaller balance is carried forward to the next period.")  # fmt: skip
    else:
        note = "Balances are paid when the period closes; whatever is not paid is carried forward."
    story.append(Spacer(1, 1.5 * mm))
    story.append(P(note, st["muted"]))

    # Top works
    if any(w["amount"] > 0 for w in works):
        story.append(KeepTogether([P("Top works this period", st["h2"]), _chart(works, width)]))

    # Earnings by work
    story.append(P("Earnings by work", st["h2"]))
    head = ["#", "Work", "ISWC / ISRC", "Generations", "Avg. share", f"Amount ({currency})"]
    body = []
    for i, w in enumerate(works, start=1):
        share = "–" if w["avg_share"] is None else f"{w['avg_share'] * 100:.3f} %"
        body.append([
            str(i),
            P(f"{_rich(w['title'])}<br/><font size=6.5 color='#5b6b80'>{_rich(w['composer'] or '')}</font>", st["small"]),
            P(f"{_rich(w['iswc'])}<br/>{_rich(w['isrc'])}", st["small"]),
            str(w["n_generations"]), share, _money(w["amount"]),
        ])  # fmt: skip
    works_total = sum((w["amount"] for w in works), Decimal("0.00"))
    body.append(
        [
            "",
            "Total of works",
            "",
            str(sum(w["n_generations"] for w in works)),
            "",
            _money(works_total),
        ]
    )
    story.append(table([head, *body], [8 * mm, width - 120 * mm, 34 * mm, 22 * mm, 22 * mm, 34 * mm],
                       header_style + [
        ("ALIGN", (3, 0), (-1, -1), "RIGHT"),
        ("FONTSIZE", (0, 1), (-1, -1), 7.5),
        ("ROWBACKGROUNDS", (0, 1), (-1, -2), [colors.white, colors.HexColor("#f7f9fb")]),
        ("FONTNAME", (0, -1), (-1, -1), FONT_BOLD),
        ("LINEABOVE", (0, -1), (-1, -1), 0.8, colors.HexColor(NAVY)),
    ], repeat=1))  # fmt: skip
    story.append(Spacer(1, 1.5 * mm))
    story.append(P(
        "Generations: how many of the platform's generations this period drew on the work (it was among "
        "the works attribution credited). Avg. share: the mean percentage of those generations' royalty "
        "that attribution assigned to the work. The amount also includes the training royalty, paid for "
        "the work's place in the model's training set whether or not a generation drew on it.",
        st["muted"]))  # fmt: skip

    # How shares were measured
    story.append(P("How your shares were measured", st["h2"]))
    for c in contracts:
        story.append(P(
            f"Platform <b>{_rich(c['platform_id'])}</b>, contract {_rich(c['contract_id'])} version "
            f"{c['contract_version']}: {c['pool_rate'] * 100:.2f} % of the platform's revenue from "
            f"{c['n_generations']} generations forms a royalty pool of {_money(c['pool_amount'])} {c['currency']}. "
            f"Each generation's part of the pool follows the catalog works the platform's own model drew on, "
            f"measured by attribution method <b>{_rich(c['method'])}</b> (top {c['top_k']} works per generation); "
            f"what attribution does not assign is spread over the model's training manifest pro rata. "
            f"Publishing rights receive {c['publishing_weight'] * 100:.1f} %, master rights "
            f"{c['master_weight'] * 100:.1f} %, then each right is divided by the registered splits.",
            st["base"]))  # fmt: skip
        story.append(Spacer(1, 2 * mm))
    if methods:
        rows = [["Platform", "Method", "Model version", "Attribution run", "Generations"]]
        rows += [[P(_rich(m["platform_id"]), st["small"]), P(_rich(m["method"]), st["small"]),
                  P(_rich(m["model_version"]), st["small"]), P(_rich(m["run_id"]), st["small"]),
                  str(m["n_generations"])] for m in methods]  # fmt: skip
        story.append(table(rows, [22 * mm, 16 * mm, 36 * mm, width - 96 * mm, 22 * mm], header_style + [
            ("ALIGN", (-1, 0), (-1, -1), "RIGHT"), ("FONTSIZE", (0, 0), (-1, -1), 7.5)]))  # fmt: skip
        params = sorted({m["params_json"] for m in methods})
        story.append(Spacer(1, 1.5 * mm))
        story.append(
            P("Attribution parameters: " + "; ".join(_rich(p) for p in params), st["muted"])
        )
    story.append(Spacer(1, 3 * mm))
    story.append(P(
        f"Questions about a line: quote statement {number} and the work's ISWC. The CSV files next to this "
        "statement list every work, platform and right (statement_*.csv) and every generation behind the "
        "output royalty (generations_*.csv); the DSR_*.tsv file carries the same money in a DDEX DSR-style "
        "layout. Amounts are rounded to the cent by the largest-remainder method, so they add up exactly.",
        st["muted"]))  # fmt: skip
    doc.build(story, onFirstPage=page, onLaterPages=page)
    return buf.getvalue()


def main(argv: list[str] | None = None) -> int:
    from settlement.config import Settings

    ap = argparse.ArgumentParser(prog="python -m settlement.statements", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("command", choices=["build", "verify"])
    ap.add_argument("--period", required=True, help="YYYY-MM")
    ap.add_argument("--warehouse", type=Path, help="default: $TRIBUTARY_HOME/warehouse.duckdb")
    ap.add_argument("--out", type=Path, help="statements root; default: $TRIBUTARY_HOME/statements")
    args = ap.parse_args(argv)
    settings = Settings.from_env()
    warehouse_path, out = args.warehouse or settings.warehouse, args.out or settings.statements
    if args.command == "build":
        result = build_statements(warehouse_path, out, args.period)
        print(f"{result['statements']} statements, {result['files']} files in {result['folder']}")
        return 0
    result = verify_statements(warehouse_path, out, args.period)
    for r in result["files"]:
        print(f"{r['status']:<24} {r['sha256'] or r['stored']}  {r['path']}")
    bad = [r for r in result["files"] if r["status"] != "ok"]
    print(f"{len(result['files']) - len(bad)} of {len(result['files'])} files verified for {args.period}"
          + (f"; {len(bad)} MISMATCH" if bad else ""))  # fmt: skip
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
