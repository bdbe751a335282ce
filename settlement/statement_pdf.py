"""The rights holder's PDF statement: what a person reads and can check line by line.

Every number on it is read from the rows the calculation stored (statement lines, ledger
postings, pools, payouts) and handed in by settlement/statements.py; this module only lays
them out. Text in any script: Latin, Greek and Cyrillic are set in Noto Sans, Arabic and
Hebrew in Noto Sans Arabic / Hebrew (Arabic shaped by HarfBuzz through reportlab, right-to-left
runs ordered by python-bidi), Chinese, Japanese and Korean in WenQuanYi Micro Hei; all are
Debian packages (Makefile, .ci/run) embedded as subsets, so the PDF shows the same glyphs
everywhere and its bytes do not depend on the fonts a machine has.
"""

from __future__ import annotations

import io
import json
import unicodedata
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

NAVY = "#1f3a5f"
ACCENT = "#2e86ab"
LIGHT = "#eef2f7"
RULE = "#c9d3e0"
MUTED = "#5b6b80"
FONT, FONT_BOLD = "TributarySans", "TributarySans-Bold"
NOTO = Path("/usr/share/fonts/truetype/noto")
WQY = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
# (font name, file, subfont index, bold file): the first font that has a character sets it.
FONTS = [
    (FONT, NOTO / "NotoSans-Regular.ttf", NOTO / "NotoSans-Bold.ttf"),
    ("TributaryArabic", NOTO / "NotoSansArabic-Regular.ttf", NOTO / "NotoSansArabic-Bold.ttf"),
    ("TributaryHebrew", NOTO / "NotoSansHebrew-Regular.ttf", NOTO / "NotoSansHebrew-Bold.ttf"),
    # one weight: a CJK name in a bold heading is set in the regular weight
    ("TributaryCJK", WQY, WQY),
]
PACKAGES = "fonts-noto-core fonts-wqy-microhei"
_COVERAGE: dict[str, set[int]] = {}
# Longest text set in one table cell or heading; the full text is in the appendix (and CSV).
SHORT = 160


def register_fonts() -> None:
    if _COVERAGE:
        return
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    missing = [str(p) for _, r, b in FONTS for p in (r, b) if not p.exists()]
    if missing:
        raise RuntimeError(f"statement fonts missing ({', '.join(sorted(set(missing)))}): "
                           f"install the Debian packages {PACKAGES} (`make install` does)")  # fmt: skip
    for name, regular, bold in FONTS:
        face = TTFont(name, str(regular), subfontIndex=0)
        pdfmetrics.registerFont(face)
        pdfmetrics.registerFont(TTFont(name + "-Bold", str(bold), subfontIndex=0))
        pdfmetrics.registerFontFamily(name, normal=name, bold=name + "-Bold", italic=name,
                                      boldItalic=name + "-Bold")  # fmt: skip
        _COVERAGE[name] = set(face.face.charToGlyph)
    # reportlab's graphics start every drawing in Helvetica, which would be referenced (not
    # embedded) even when nothing is set in it: drawings here start in the embedded font.
    from reportlab.graphics import shapes

    shapes.STATE_DEFAULTS["fontName"] = FONT


def _rtl(ch: str) -> bool:
    return unicodedata.bidirectional(ch) in ("R", "AL")


def visual(text: str) -> str:
    """Right-to-left runs in display order, word by word: python-bidi orders the line, then each
    right-to-left word is turned back so HarfBuzz shapes it in logical order (reportlab lays
    out words left to right and the shaper returns an RTL word's glyphs in display order)."""
    if not any(_rtl(c) for c in text):
        return text
    from bidi import get_display

    return " ".join(w[::-1] if any(_rtl(c) for c in w) else w for w in get_display(text).split(" "))


def printable(text: object) -> str:
    """Text as a person should see it: no control or bidirectional-override characters."""
    from settlement.cells import clean_text

    return clean_text("" if text is None else str(text))


def short(text: object, limit: int = SHORT) -> str:
    text = printable(text)
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def rich(text: object, limit: int | None = SHORT) -> str:
    """Paragraph markup for any text: escaped, right-to-left runs ordered, and each character
    set in the first registered font that has it (Noto Sans, Arabic, Hebrew, CJK)."""
    text = short(text, limit) if limit else printable(text)
    text = visual(text)
    out, current = [], FONT
    for ch in text:
        if ch.isspace() or ord(ch) in _COVERAGE[current]:
            font = current
        else:
            font = next((n for n, _, _ in FONTS if ord(ch) in _COVERAGE[n]), FONT)
        if font != current:
            if current != FONT:
                out.append("</font>")
            if font != FONT:
                out.append(f'<font name="{font}">')
            current = font
        out.append({"&": "&amp;", "<": "&lt;", ">": "&gt;"}.get(ch, ch))
    if current != FONT:
        out.append("</font>")
    return "".join(out)


def money(value: Decimal) -> str:
    # '.' decimals and no thousands separators, so the text a machine extracts from the PDF is
    # the same number as in the CSV.
    return f"{value:.2f}"


def exact(value: Decimal) -> str:
    return f"{value:.6f}"


def percent(share: Decimal | None) -> str:
    return "" if share is None else f"{(share * 100).normalize():f} %"


@dataclass(frozen=True)
class Issuer:
    """Who pays and answers questions; from the environment so an operator sets its own."""

    name: str
    contact: str
    dispute_days: int

    @classmethod
    def from_env(cls) -> Issuer:
        import os

        return cls(os.environ.get("TRIBUTARY_PAYER_NAME", "Tributary Royalty Services (sandbox operator)"),
                   os.environ.get("TRIBUTARY_PAYER_CONTACT", "royalties@tributary.example"),
                   int(os.environ.get("TRIBUTARY_DISPUTE_DAYS", "90")))  # fmt: skip


# Two plain sentences per attribution method, for people who do not read the parameters.
_TRAK = (
    ("The platform's own model was asked which catalog works most shaped each generation: the method "
    "(TRAK) traces how strongly each training work pulled the model towards that generation, from "
    "the model's gradients."),
    ("Works whose pull stands out clearly from the rest of the catalog share the generation's royalty "
    "in proportion to it; when none stands out, the generation is paid pro rata over the whole "
    "training set."),
)
_UNLEARNING = (
    ("For each generation the platform's model was made to briefly 'forget' it, and we measured how "
    "much worse the model then fits each training work."),
    ("Works the model forgets most along with the generation are the ones it drew on, and they share "
    "its royalty in proportion."),
)
_SIMILARITY = (
    ("The platform gave no access to its model, so each generation was compared with every catalog "
    "work by how similar they sound or read."),
    ("Works clearly more similar than the rest share the generation's royalty in proportion; "
    "otherwise the generation is paid pro rata over the training set."),
)
METHODS = {"trak": _TRAK, "unlearning": _UNLEARNING, "similarity": _SIMILARITY}


def _rule_label(m: dict) -> str:
    """The confidence rule of an attribution run as stored per generation: "p <= 0.01"."""
    rule = m.get("share_rule")
    if rule is None:
        return "not recorded"
    if rule == "pvalue":
        return f"p <= {m['alpha']:g}"
    if rule == "none":
        return "none"
    return f"{rule} >= {m['min_confidence']:g}"


def rules_by_platform(methods: list[dict]) -> list[dict]:
    """The attribution runs of marts/statement_methods summed per platform and rule (a month's
    shards are runs of their own): one sentence per platform and rule, not per shard."""
    out: dict[tuple, dict] = {}
    for m in methods:
        null_n = json.loads(m["params_json"] or "{}").get("null", {}).get("n")
        key = (m["platform_id"], m.get("share_rule"), m.get("alpha"), m.get("min_confidence"), null_n)
        row = out.setdefault(key, {**m, "n_generations": 0, "n_paid_by_attribution": 0, "n_fallback": 0})
        for k in ("n_generations", "n_paid_by_attribution", "n_fallback"):
            row[k] += m[k] or 0
    return list(out.values())


def rule_sentence(m: dict, platform: str, generations_csv: str) -> str:
    """Which rule decided a platform's generations and how many it paid by attribution, from
    the counts the run's stored decisions give (marts/statement_methods); "" for a run
    attributed before decisions were stored."""
    rule = m.get("share_rule")
    if rule is None:
        return ""
    if rule == "pvalue":
        null_n = json.loads(m["params_json"] or "{}").get("null", {}).get("n")
        test = (
            f"a generation was paid by attribution when its best match was significant at "
            f"alpha = {m['alpha']:g}: its p-value, the fraction of the model's own ordinary "
            f"outputs{f' ({null_n} of them)' if null_n else ''} that match some work at least "
            f"as strongly, was at most {m['alpha']:g}; otherwise it fell back to pro rata"
        )
    elif rule == "none":
        test = "every generation with a positive match was paid by attribution"
    else:
        test = (
            f"a generation was paid by attribution when its {rich(rule, 20)} confidence was at "
            f"least {m['min_confidence']:g}; otherwise it fell back to pro rata"
        )
    return (
        f"<b>Which rule paid each generation ({rich(platform, 60)}).</b> {test[0].upper() + test[1:]}. "
        f"Of its {m['n_generations']} generations, {m['n_paid_by_attribution']} were paid by "
        f"attribution and {m['n_fallback']} fell back. The paid_by column of "
        f"{rich(generations_csv, None)} gives each generation's rule and statistic."
    )


def catalog_share_summary(generations: list[dict]) -> list[dict]:
    """Per platform and group method, from the holder's per-generation rows (the stored
    attribution.group_shares values, marts/statement_generations): how many generations carry a
    share attributable to the holder's catalog, and the largest, as stored."""
    out: dict[tuple, dict] = {}
    for g in generations:
        if g.get("catalog_share") is None or g.get("royalty") != "output":
            continue
        key = (g["platform_id"], g["catalog_share_method"])
        row = out.setdefault(key, {"platform_id": key[0], "method": key[1], "ids": set(), "top": None})
        row["ids"].add(g["generation_id"])
        if row["top"] is None or g["catalog_share"] > row["top"][0]:
            row["top"] = (g["catalog_share"], g["generation_id"])
    return [{**r, "n_generations": len(r.pop("ids"))} for _, r in sorted(out.items())]


def catalog_share_sentence(c: dict, platform: str, generations_csv: str) -> str:
    """The line saying what share of each generation is attributable to the holder's catalog:
    where to read it, the largest, and that it does not change the payment."""
    share, gid = c["top"]
    return (
        f"<b>Share of each generation attributable to your catalog ({rich(platform, 60)}).</b> "
        f"For {c['n_generations']} of this month's generations that paid you, the platform's "
        f"contract also measures how much of each is attributable to your whole catalog (method "
        f"{rich(c['method'], 30)}: the model with all your works unlearned, compared with every "
        f"other holder's); the catalog_share column of {rich(generations_csv, None)} gives it per "
        f"generation; the largest is {share:f} (generation {rich(gid, 60)}). It is for information: "
        "what you are paid follows each work's attribution share and the contract's rule."
    )


def _styles():
    from reportlab.lib import colors
    from reportlab.lib.styles import ParagraphStyle

    base = ParagraphStyle("base", fontName=FONT, fontSize=8, leading=10.5,
                          textColor=colors.HexColor("#1b2635"), shaping=1, splitLongWords=1)  # fmt: skip
    return {
        "base": base,
        "small": ParagraphStyle("small", parent=base, fontSize=7.5, leading=9.5),
        "tiny": ParagraphStyle("tiny", parent=base, fontSize=6.5, leading=8, textColor=colors.HexColor(MUTED)),
        "muted": ParagraphStyle("muted", parent=base, fontSize=7.5, leading=9.5, textColor=colors.HexColor(MUTED)),
        "right": ParagraphStyle("right", parent=base, fontSize=7.5, leading=9.5, alignment=2),
        "title": ParagraphStyle("title", parent=base, fontName=FONT_BOLD, fontSize=17, leading=21,
                                textColor=colors.HexColor(NAVY)),
        "holder": ParagraphStyle("holder", parent=base, fontName=FONT_BOLD, fontSize=12, leading=15),
        "h2": ParagraphStyle("h2", parent=base, fontName=FONT_BOLD, fontSize=11, leading=14, spaceBefore=9,
                             spaceAfter=4, textColor=colors.HexColor(NAVY), keepWithNext=1),
        "kpi_label": ParagraphStyle("kpi_label", parent=base, fontSize=7.5, textColor=colors.HexColor(MUTED)),
        "kpi": ParagraphStyle("kpi", parent=base, fontName=FONT_BOLD, fontSize=13, leading=16,
                              textColor=colors.HexColor(NAVY)),
    }  # fmt: skip


def _chart(top: list[dict], width: float, currency: str):
    """Horizontal bars of the holder's top works, in whole cents (the stored line cents): the
    chart library computes in binary floating point, money never does, so ticks are whole
    cents and labels are those integers written as currency."""
    from reportlab.graphics.charts.barcharts import HorizontalBarChart
    from reportlab.graphics.shapes import Drawing, String
    from reportlab.lib import colors

    bar_h = 14
    height = bar_h * len(top) + 34
    drawing = Drawing(width, height)
    chart = HorizontalBarChart()
    chart.x, chart.y = 170, 26
    chart.width, chart.height = width - 220, bar_h * len(top)
    cents = [int(w["amount"] * 100) for w in reversed(top)]  # the category axis runs bottom-up
    chart.data = [cents]
    chart.categoryAxis.categoryNames = [short(w["title"], 38) for w in reversed(top)]
    chart.categoryAxis.labels.fontName = "TributaryCJK" if any(
        any(ord(c) > 0x2E80 for c in w["title"]) for w in top) else FONT  # fmt: skip
    chart.categoryAxis.labels.fontSize = 7
    chart.categoryAxis.labels.boxAnchor = "e"
    chart.categoryAxis.labels.dx = -4
    chart.categoryAxis.strokeColor = colors.HexColor(RULE)
    chart.categoryAxis.tickLeft = chart.categoryAxis.tickRight = 0
    top_cents = max(cents + [1])
    step = max(1, -(-top_cents // 5))  # whole cents, at most ~5 intervals
    chart.valueAxis.valueMin = 0
    chart.valueAxis.valueMax = step * -(-top_cents // step)
    chart.valueAxis.valueStep = step
    chart.valueAxis.labels.fontName = FONT
    chart.valueAxis.labels.fontSize = 6.5
    chart.valueAxis.labelTextFormat = lambda c: money(Decimal(round(c)) / 100)
    chart.valueAxis.strokeColor = colors.HexColor(RULE)
    chart.valueAxis.visibleGrid = 1
    chart.valueAxis.gridStrokeColor = colors.HexColor(LIGHT)
    chart.bars[0].fillColor = colors.HexColor(ACCENT)
    chart.bars[0].strokeColor = None
    chart.barLabelFormat = lambda c: money(Decimal(round(c)) / 100)
    chart.barLabels.fontName = FONT
    chart.barLabels.fontSize = 6.5
    chart.barLabels.boxAnchor = "w"
    chart.barLabels.dx = 3
    drawing.add(chart)
    drawing.add(String(chart.x + chart.width / 2, 4, f"Amount ({currency}), rounded to the cent",
                       fontName=FONT, fontSize=7, fillColor=colors.HexColor(MUTED), textAnchor="middle"))  # fmt: skip
    return drawing


def _figure(drawing, alt: str):
    """The chart wrapped in a marked-content sequence with an Alt entry (PDF 32000-1, 14.9.3):
    an alternative description for software that cannot see the bars. reportlab writes no
    structure tree, so the description sits on the content itself."""
    from reportlab.platypus import Flowable

    class Figure(Flowable):
        def wrap(self, aw, ah):
            return drawing.wrap(aw, ah)

        def draw(self):
            alt_hex = (b"\xfe\xff" + alt.encode("utf-16-be")).hex().upper()
            self.canv._code.append(f"/Figure <</Alt <{alt_hex}>>> BDC")
            drawing.drawOn(self.canv, 0, 0)
            self.canv._code.append("EMC")

    return Figure()


def _numbered_canvas(footer_left: str, header_right: str):
    """A canvas that writes 'Page x of y' once the number of pages is known."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.pdfgen.canvas import Canvas

    class NumberedCanvas(Canvas):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._pages = []

        def showPage(self):
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self):
            total = len(self._pages)
            for state in self._pages:
                self.__dict__.update(state)
                self._decorate(total)
                super().showPage()
            super().save()

        def _decorate(self, total: int) -> None:
            self.saveState()
            self.setFillColor(colors.HexColor(NAVY))
            self.rect(0, A4[1] - 9 * mm, A4[0], 9 * mm, stroke=0, fill=1)
            self.setFillColor(colors.white)
            self.setFont(FONT_BOLD, 9)
            self.drawString(16 * mm, A4[1] - 6 * mm, "TRIBUTARY")
            self.setFont(FONT, 7.5)
            self.drawRightString(A4[0] - 16 * mm, A4[1] - 6 * mm, header_right)
            self.setFillColor(colors.HexColor(MUTED))
            self.setFont(FONT, 6.5)
            self.drawString(16 * mm, 9 * mm, footer_left)
            self.drawRightString(A4[0] - 16 * mm, 9 * mm, f"Page {self._pageNumber} of {total}")
            self.restoreState()

    return NumberedCanvas


def render_pdf(
    *, holder: dict, period: str, period_start: date, period_end: date, number: str, issued: date,
    final: bool, issuer: Issuer, account: dict, works: list[dict], platforms: list[dict],
    payments: list[dict], methods: list[dict], contracts: list[dict], run_id: str,
    lines_csv: str, generations_csv: str, platform_names: dict[str, str],
    catalog_shares: list[dict] | None = None,
) -> bytes:  # fmt: skip
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.platypus import (
        CondPageBreak,
        KeepTogether,
        PageBreak,
        Paragraph,
        SimpleDocTemplate,
        Spacer,
        Table,
        TableStyle,
    )

    register_fonts()
    st = _styles()
    currency = holder["currency"]
    P = Paragraph  # a short name keeps the table literals readable
    buf = io.BytesIO()
    doc = SimpleDocTemplate(
        buf, pagesize=A4, invariant=1, title=f"Tributary training royalty statement {number}",
        author=issuer.name, subject=f"Training royalty statement for {short(holder['name'], 120)}, {period}",
        creator="Tributary", producer="Tributary", lang="en", displayDocTitle=1, initialFontName=FONT,
        leftMargin=16 * mm, rightMargin=16 * mm, topMargin=20 * mm, bottomMargin=16 * mm,
    )  # fmt: skip
    width = doc.width
    grid = [("FONTNAME", (0, 0), (-1, -1), FONT), ("FONTSIZE", (0, 0), (-1, -1), 8),
            ("TOPPADDING", (0, 0), (-1, -1), 2.5), ("BOTTOMPADDING", (0, 0), (-1, -1), 2.5),
            ("VALIGN", (0, 0), (-1, -1), "MIDDLE")]  # fmt: skip
    header_style = [("BACKGROUND", (0, 0), (-1, 0), colors.HexColor(LIGHT)),
                    ("FONTNAME", (0, 0), (-1, 0), FONT_BOLD),
                    ("TEXTCOLOR", (0, 0), (-1, 0), colors.HexColor(NAVY)),
                    ("LINEBELOW", (0, 0), (-1, 0), 0.6, colors.HexColor(RULE))]  # fmt: skip

    def table(rows, widths, style, repeat=0):
        t = Table(rows, colWidths=widths, repeatRows=repeat)
        t.setStyle(TableStyle(grid + style))
        return t

    shortened: list[tuple[str, str]] = []  # (what, full text) of every text shown shortened

    def name_cell(label: str, text: object, style="base", limit=SHORT) -> Paragraph:
        full = printable(text)
        if len(full) > limit:
            shortened.append((label, full))
        return P(rich(full, limit), st[style])

    # Title and identity
    ident = [["Statement number", number],
             ["Period", f"{period} ({period_start.isoformat()} to {period_end.isoformat()})"],
             ["Issued", issued.isoformat() + ("" if final else " (draft: the period is not closed yet)")],
             ["Currency", currency],
             ["Rights holder id", name_cell("Rights holder id", holder["rights_holder_id"], "small", 60)]]  # fmt: skip
    ident_t = table(ident, [28 * mm, 66 * mm], [("TEXTCOLOR", (0, 0), (0, -1), colors.HexColor(MUTED)),
                                                ("FONTSIZE", (0, 0), (-1, -1), 7.5),
                                                ("VALIGN", (0, 0), (-1, -1), "TOP")])  # fmt: skip
    left = [P("Training royalty statement", st["title"]), Spacer(1, 2 * mm),
            name_cell("Rights holder name", holder["name"], "holder", 120),
            P(rich(str(holder["kind"]).capitalize()), st["muted"])]  # fmt: skip
    story = [table([[left, ident_t]], [width - 96 * mm, 96 * mm], [("VALIGN", (0, 0), (-1, -1), "TOP")]),
             Spacer(1, 4 * mm)]  # fmt: skip

    # Headline figures
    kpis = [("Earned this period", account["earned"]), ("Paid out", account["payout"]),
            ("Carried forward", account["closing"])]  # fmt: skip
    cells = [[P(label, st["kpi_label"]), P(f"{money(v)} {currency}", st["kpi"])] for label, v in kpis]
    story.append(table([cells], [width / 3] * 3, [
        ("BACKGROUND", (0, 0), (-1, -1), colors.HexColor(LIGHT)),
        ("LINEBEFORE", (1, 0), (-1, 0), 2, colors.white),
        ("TOPPADDING", (0, 0), (-1, -1), 6), ("BOTTOMPADDING", (0, 0), (-1, -1), 6),
        ("LEFTPADDING", (0, 0), (-1, -1), 8)]))  # fmt: skip

    # Payment and who pays
    if payments:
        pay = "; ".join(
            f"{money(p['amount'])} {p['currency']} on {p['paid_on'].isoformat()}, reference {p['reference']}"
            + ("" if p["payout_currency"] in (None, p["currency"]) else
               f" (you receive {money(p['payout_amount'])} {p['payout_currency']} at {p['fx_rate']:f}, {p['fx_source']})")
            for p in payments)  # fmt: skip
    elif final:
        pay = (f"no payment this period: your balance of {money(account['closing'])} {currency} is below your "
               f"minimum payout of {money(holder['min_payout'])} {currency} and is carried forward")  # fmt: skip
    else:
        pay = "payments are made when the period closes; this draft shows what is owed so far"
    payer = [[P("Paid by", st["kpi_label"]), P(rich(issuer.name), st["small"])],
             [P("Payment", st["kpi_label"]), P(rich(pay, None), st["small"])],
             [P("Questions", st["kpi_label"]), P(rich(issuer.contact), st["small"])]]  # fmt: skip
    story += [Spacer(1, 2 * mm), table(payer, [24 * mm, width - 24 * mm], [("VALIGN", (0, 0), (-1, -1), "TOP")])]

    # Statement of account
    rows = [["", f"Amount ({currency})"],
            ["Opening balance (owed to you before this period)", money(account["opening"])]]  # fmt: skip
    for platform, amount in account["earnings"].items():
        rows.append([name_cell("Platform", f"Earnings from {platform_names.get(platform, platform)}", "base"),
                     money(amount)])  # fmt: skip
    rows.append(["Total earnings this period", money(account["earned"])])
    bold_rows = [len(rows) - 1]
    for adj in account["adjustments"]:
        rows.append([P(f"Adjustment: {rich(adj['memo'])} <font size=6.5 color='{MUTED}'>({rich(adj['reference'])})</font>",
                       st["small"]), money(adj["amount"])])  # fmt: skip
    if not account["adjustments"]:
        rows.append(["Adjustments of earlier periods", money(Decimal("0.00"))])
    rows.append(["Paid out this period", money(-account["payout"])])
    rows.append(["Closing balance (carried forward)", money(account["closing"])])
    bold_rows.append(len(rows) - 1)
    story.append(KeepTogether([P("Statement of account", st["h2"]), table(rows, [width - 40 * mm, 40 * mm], header_style + [
        ("ALIGN", (1, 0), (1, -1), "RIGHT"),
        *[("FONTNAME", (0, r), (-1, r), FONT_BOLD) for r in bold_rows],
        *[("LINEABOVE", (0, r), (-1, r), 0.6, colors.HexColor(RULE)) for r in bold_rows],
        ("LINEBELOW", (0, -1), (-1, -1), 1.2, colors.HexColor(NAVY))])]))  # fmt: skip
    if holder["min_payout"] > 0:
        note = (f"Balances are paid when they reach your minimum payout of {money(holder['min_payout'])} "
                f"{currency}; a smaller balance is carried forward to the next period.")  # fmt: skip
    else:
        note = "Balances are paid when the period closes; whatever is not paid is carried forward."
    dispute_by = date.fromordinal(issued.toordinal() + issuer.dispute_days)
    story += [Spacer(1, 1.5 * mm), P(note, st["muted"]), Spacer(1, 1.5 * mm), P(
        f"<b>Disputes.</b> If a line looks wrong, write to {rich(issuer.contact)} within {issuer.dispute_days} "
        f"days of the issue date (by {dispute_by.isoformat()}), quoting statement {number} and the work's "
        "ISWC or id. We answer from the same rows this statement was printed from; a correction is paid as an "
        "adjustment in the next open period and named on that statement.", st["muted"])]  # fmt: skip

    # Where the money came from, per platform
    rows = [[P(f"<b>{h}</b>", st["small"] if i < 2 else st["right"]) for i, h in enumerate(
        ["Platform", "Contract", "Pool rate", "Platform revenue", "Generations", "Drew on your works",
         f"Exact ({currency})", f"Amount ({currency})"])]]  # fmt: skip
    for p in platforms:
        c = next((c for c in contracts if c["platform_id"] == p["platform_id"]), None)
        rows.append([name_cell("Platform", p["platform_name"], "small", 60),
                     P(rich(c["contract_id"] if c else "", 40), st["small"]),
                     f"{c['pool_rate'] * 100:.2f} %" if c else "",
                     f"{money(p['revenue'])} {p['currency']}" if p["revenue"] is not None else "",
                     str(p["n_generations"] or 0), str(p["n_drawing"]), exact(p["exact_amount"]),
                     money(p["amount"])])  # fmt: skip
    story.append(KeepTogether([P("Where the money came from", st["h2"]), table(
        rows, [28 * mm, 26 * mm, 14 * mm, 22 * mm, 21 * mm, 20 * mm, width - 153 * mm, 22 * mm], header_style + [
            ("ALIGN", (2, 0), (-1, -1), "RIGHT"), ("FONTSIZE", (0, 0), (-1, -1), 7.5),
            ("VALIGN", (0, 0), (-1, 0), "BOTTOM")], repeat=1)]))  # fmt: skip
    story.append(Spacer(1, 1.5 * mm))
    story.append(P(
        "Each platform pays a share of its revenue (the pool rate) into a royalty pool every month. "
        "Generations: the platform's generations this month; drew on your works: how many of them "
        "attribution credited at least one of your works with a share.", st["muted"]))  # fmt: skip

    # Top works
    top = [w for w in works if w["amount"] > 0][:8]
    if top:
        alt = (f"Bar chart of your {len(top)} highest-earning works this period, amounts in {currency}: "
               + "; ".join(f"{short(w['title'], 80)} {money(w['amount'])}" for w in top) + ".")  # fmt: skip
        story.append(CondPageBreak(len(top) * 14 + 80))
        story.append(P("Top works this period", st["h2"]))
        story.append(_figure(_chart(top, width, currency), alt))

    # Earnings by work
    # A long statement lists its top 40 works and every work of at least 0.01, and groups the
    # rest (each under 0.01) into one line; the CSV lists every one.
    threshold = Decimal("0.01")
    listed, grouped = works, []
    if len(works) > 40:
        listed = [w for i, w in enumerate(works) if i < 40 or w["exact_amount"] >= threshold]
        grouped = works[len(listed):]
    head = ["#", "Work", "Your rights", "Generations", f"Exact ({currency})", f"Amount ({currency})"]
    body = []
    for i, w in enumerate(listed, start=1):
        rights = [f"Publishing {percent(w['publishing_share'])}" if w["publishing_share"] is not None else "",
                  f"Master {percent(w['master_share'])}" if w["master_share"] is not None else ""]  # fmt: skip
        ids = " · ".join(x for x in (w["iswc"], w["isrc"]) if x)
        body.append([
            str(i),
            P(f"{rich(w['title'], 120)}<br/><font size=6.5 color='{MUTED}'>{rich(w['composer'] or '', 80)}"
              f"<br/>{rich(ids, 60)}</font>", st["small"]),
            P("<br/>".join(r for r in rights if r), st["small"]),
            str(w["n_generations"]), exact(w["exact_amount"]), money(w["amount"]),
        ])  # fmt: skip
        if len(printable(w["title"])) > 120:
            shortened.append((f"Title of work {w['work_id']}", printable(w["title"])))
    if grouped:
        body.append(["", P(f"{len(grouped)} more works that earned less than {money(threshold)} {currency} "
                           "each (every one is listed in the statement CSV)", st["small"]),
                     "", "", exact(sum((w["exact_amount"] for w in grouped), Decimal(0))),
                     money(sum((w["amount"] for w in grouped), Decimal("0.00")))])  # fmt: skip
    works_total = sum((w["amount"] for w in works), Decimal("0.00"))
    works_exact = sum((w["exact_amount"] for w in works), Decimal(0))
    body.append(["", f"Total of {len(works)} works", "", "", exact(works_exact), money(works_total)])
    story.append(CondPageBreak(25 * mm))
    story.append(P("Earnings by work", st["h2"]))
    story.append(table([head, *body], [8 * mm, width - 116 * mm, 30 * mm, 20 * mm, 28 * mm, 30 * mm],
                       header_style + [
        ("ALIGN", (3, 0), (-1, -1), "RIGHT"), ("VALIGN", (0, 1), (-1, -1), "TOP"),
        ("FONTSIZE", (0, 1), (-1, -1), 7.5),
        ("ROWBACKGROUNDS", (0, 1), (-1, -2), [colors.white, colors.HexColor("#f7f9fb")]),
        ("FONTNAME", (0, -1), (-1, -1), FONT_BOLD),
        ("LINEABOVE", (0, -1), (-1, -1), 0.8, colors.HexColor(NAVY))], repeat=1))  # fmt: skip
    drawing = sum(p["n_drawing"] for p in platforms)
    story.append(Spacer(1, 1.5 * mm))
    story.append(P(
        f"<b>How amounts are rounded.</b> The calculation keeps each line's exact amount (the Exact column, "
        f"shown to 6 decimals; 18 in the CSV) and rounds your total for the month to the cent once. That "
        f"total is divided into cents over your lines by the largest-remainder method: each line gets its "
        f"exact amount rounded down to the cent, and the cents still missing go one each to the lines with "
        f"the largest remainders. So a line of 0.0063 can show 0.01 and one of 0.0041 0.00, and the Amount "
        f"column always adds up exactly to your total. Generations: how many of the month's generations "
        f"drew on the work; a generation can draw on several works, so the column does not add up "
        f"({drawing} generations drew on at least one of your works).", st["muted"]))  # fmt: skip

    # How shares were measured
    story.append(P("How your shares were measured", st["h2"]))
    for c in contracts:
        if c["platform_id"] not in account["earnings"] and c["platform_id"] not in {p["platform_id"] for p in platforms}:
            continue
        training = c["training_share"] or Decimal(0)
        story.append(P(
            f"<b>{rich(c['platform_name'], 80)}</b> (contract {rich(c['contract_id'], 40)}, version "
            f"{c['contract_version']}): {c['pool_rate'] * 100:.2f} % of the platform's revenue of "
            f"{money(c['revenue'])} {c['currency']} from {c['n_generations']} generations"
            + (f", plus {c['fee_per_generation']:f} {c['currency']} per generation" if c["fee_per_generation"] else "")
            + f", forms a royalty pool of {money(c['pool_amount'])} {c['currency']}. "
            + (f"{training * 100:.2f} % of each generation's part is a training royalty, spread over every work "
               f"in the model's training set by its number of training examples; the rest follows attribution. "
               if training else "Each generation's part follows attribution. ")
            + f"Publishing rights receive {c['publishing_weight'] * 100:.1f} % of a work's amount, master rights "
            f"{c['master_weight'] * 100:.1f} %, then each right is divided by the registered ownership shares.",
            st["base"]))  # fmt: skip
        story.append(Spacer(1, 1.5 * mm))
    for method in sorted({m["method"] for m in methods}):
        first, second = METHODS.get(method, (f"Method {method}.", "See the appendix for its parameters."))
        story.append(P(f"<b>Attribution ({rich(method, 40)}).</b> {first} {second}", st["base"]))
        story.append(Spacer(1, 1.5 * mm))
    for m in rules_by_platform(methods):
        sentence = rule_sentence(m, platform_names.get(m["platform_id"], m["platform_id"]), generations_csv)
        if sentence:
            story.append(P(sentence, st["base"]))
            story.append(Spacer(1, 1.5 * mm))
    for c in catalog_share_summary(catalog_shares or []):
        story.append(P(catalog_share_sentence(c, platform_names.get(c["platform_id"], c["platform_id"]),
                                              generations_csv), st["base"]))  # fmt: skip
        story.append(Spacer(1, 1.5 * mm))
    story.append(P(
        f"Files next to this statement: {rich(lines_csv, None)} lists every line (platform, work, right, "
        f"ownership share, exact and rounded amount); {rich(generations_csv, None)} lists every generation "
        "behind the output royalty; the DSR_*.tsv files carry the same money in the DDEX DSR Royalty "
        "Reporting Profile for royalty software.", st["muted"]))  # fmt: skip

    # Appendix: what an auditor needs, not a reader
    story.append(PageBreak())
    story.append(P("Appendix: calculation and attribution runs", st["h2"]))
    story.append(P(f"Calculation run: {rich(run_id, None)}", st["small"]))
    if methods:
        rows = [["Platform", "Method", "Model version", "Attribution run", "Rule", "Generations",
                 "Attributed", "Fell back"]]
        rows += [[P(rich(platform_names.get(m["platform_id"], m["platform_id"]), 60), st["small"]),
                  P(rich(m["method"], 40), st["small"]), P(rich(m["model_version"], 80), st["small"]),
                  P(rich(m["run_id"], 200), st["tiny"]), P(rich(_rule_label(m), 40), st["small"]),
                  str(m["n_generations"]), str(m["n_paid_by_attribution"]), str(m["n_fallback"])]
                 for m in methods]  # fmt: skip
        story.append(Spacer(1, 2 * mm))
        story.append(table(rows, [22 * mm, 13 * mm, 26 * mm, width - 136 * mm, 18 * mm, 20 * mm, 19 * mm,
                                  18 * mm], header_style + [
            ("ALIGN", (-3, 0), (-1, -1), "RIGHT"), ("FONTSIZE", (0, 0), (-1, -1), 7.5),
            ("VALIGN", (0, 0), (-1, -1), "TOP")], repeat=1))  # fmt: skip
        story.append(Spacer(1, 2 * mm))
        story.append(P("Attribution parameters, as recorded with each run:", st["small"]))
        for params in sorted({m["params_json"] for m in methods}):
            story.append(P(rich(params, 4000), st["tiny"]))
    if shortened:
        story.append(P("Names shown shortened above, in full", st["h2"]))
        for label, full in shortened:
            story.append(P(f"<b>{rich(label, 80)}:</b> {rich(full, None)}", st["tiny"]))

    canvas = _numbered_canvas(f"Statement {number} · {issuer.name}", f"Training royalty statement {number}")
    doc.build(story, canvasmaker=canvas)
    return buf.getvalue()
