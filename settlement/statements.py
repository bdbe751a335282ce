"""Payout statements: one folder per rights holder per period (CSV + PDF), plus a period summary.

Files are byte-for-byte reproducible (sorted rows, no timestamps inside, reportlab's
invariant mode), and their sha256 are stored in the warehouse so a rerun can be verified.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import unicodedata
from decimal import Decimal
from pathlib import Path

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from settlement.warehouse import query, run_sql, warehouse

LINE_COLUMNS = [
    "platform_id", "work_id", "iswc", "isrc", "title", "composer", "right_type",
    "n_generations", "amount", "currency", "output_royalty", "training_royalty",
]  # fmt: skip


def safe_name(identifier: str) -> str:
    """A file-system-safe folder name for an id or a name: no separators, no `..`, never empty.
    Non-Latin letters are kept (they are valid in file names); anything else becomes `_`."""
    text = unicodedata.normalize("NFC", identifier)
    text = re.sub(r"[^\w.-]", "_", text, flags=re.UNICODE).strip("._")
    text = re.sub(r"\.{2,}", "_", text)
    return text[:120] or "_"


def _csv_bytes(rows: list[dict], columns: list[str]) -> bytes:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({c: row[c] for c in columns})
    return buf.getvalue().encode()


def _pdf_bytes(holder: dict, period: str, lines: list[dict], run_id: str) -> bytes:
    styles = getSampleStyleSheet()
    buf = io.BytesIO()
    doc = SimpleDocTemplate(
        buf, pagesize=A4, invariant=1, title=f"Tributary statement {period} {holder['rights_holder_id']}",
        leftMargin=15 * mm, rightMargin=15 * mm, topMargin=15 * mm, bottomMargin=15 * mm,
    )  # fmt: skip
    total = sum((r["amount"] for r in lines), Decimal(0))
    story = [
        Paragraph("Tributary training royalty statement", styles["Title"]),
        Paragraph(f"Rights holder: <b>{_esc(holder['name'])}</b> ({holder['rights_holder_id']}, {holder['kind']})", styles["Normal"]),
        Paragraph(f"Period: <b>{period}</b> &nbsp; Currency: <b>{holder['currency']}</b>", styles["Normal"]),
        Paragraph(f"Total earned this period: <b>{total:.2f} {holder['currency']}</b>", styles["Heading2"]),
        Paragraph(
            "Each generation's royalty follows the works the platform's model drew on (output royalty, "
            "measured by gradient attribution, TRAK method) and the rest is spread over the model's "
            f"training manifest (training royalty). Calculation run: {run_id}.",
            styles["Normal"],
        ),
        Spacer(1, 4 * mm),
    ]  # fmt: skip
    header = ["Work", "ISWC", "Platform", "Right", "Gens", "Amount"]
    body = [
        [_esc(r["title"])[:40], r["iswc"], r["platform_id"], r["right_type"], str(r["n_generations"]), f"{r['amount']:.2f}"]
        for r in lines
    ]
    body.append(["Total", "", "", "", "", f"{total:.2f}"])
    table = Table([header, *body], repeatRows=1, colWidths=[62 * mm, 32 * mm, 25 * mm, 22 * mm, 14 * mm, 22 * mm])
    table.setStyle(
        TableStyle(
            [
                ("FONTSIZE", (0, 0), (-1, -1), 7.5),
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#dde4ee")),
                ("ALIGN", (4, 0), (-1, -1), "RIGHT"),
                ("LINEABOVE", (0, -1), (-1, -1), 0.8, colors.black),
                ("FONTNAME", (0, -1), (-1, -1), "Helvetica-Bold"),
            ]
        )
    )
    story.append(table)
    doc.build(story)
    return buf.getvalue()


def _esc(text: str | None) -> str:
    return (text or "").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _write(path: Path, data: bytes) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def build_statements(warehouse_path: Path, out_root: Path, period: str) -> dict:
    """Write every holder's statement for a calculated period and the period summary."""
    period_dir = out_root / safe_name(period)
    with warehouse(warehouse_path) as con:
        state = query(con, "marts/period_run", {"period": period})
        if not state or state[0]["status"] == "open":
            raise RuntimeError(f"period {period} has not been calculated")
        run_id = state[0]["run_id"]
        holders = query(con, "marts/period_holders", {"period": period})
        written = []
        for holder in holders:
            lines = query(con, "marts/holder_statement_lines", {"period": period, "rights_holder_id": holder["rights_holder_id"]})
            folder = period_dir / safe_name(holder["rights_holder_id"])
            for kind, data in (
                ("csv", _csv_bytes(lines, LINE_COLUMNS)),
                ("pdf", _pdf_bytes(holder, period, lines, run_id)),
            ):
                path = folder / f"statement_{safe_name(period)}_{safe_name(holder['rights_holder_id'])}.{kind}"
                digest = _write(path, data)
                run_sql(
                    con, "loads/statement_file",
                    {"period": period, "rights_holder_id": holder["rights_holder_id"], "kind": kind,
                     "path": str(path.relative_to(out_root)), "sha256": digest, "run_id": run_id},
                )  # fmt: skip
                written.append(path)
        summary = query(con, "marts/period_summary", {"period": period})
        cols = list(summary[0]) if summary else ["period"]
        _write(period_dir / "period_summary.csv", _csv_bytes(summary, cols))
        _write(
            period_dir / "period_summary.json",
            json.dumps({"period": period, "run_id": run_id, "platforms": summary, "statements": len(holders)},
                       default=str, indent=1, sort_keys=True).encode(),
        )  # fmt: skip
    return {"period": period, "folder": str(period_dir), "statements": len(holders), "files": len(written)}
