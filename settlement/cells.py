"""Cells of the files a person may open in a spreadsheet (statement CSVs, per-generation CSVs,
DSR TSVs, finance report CSV, period summary).

A name, title or composer comes from catalogs, platforms and imports we do not control, so a
cell may start with `=`, `+`, `-`, `@` (a formula to Excel, LibreOffice and Google Sheets:
`=HYPERLINK(...)`, `+cmd|' /C calc'!A0`), or carry NUL, line breaks or right-to-left override
characters that make a cell read as something it is not. The OWASP CSV-injection rule is
applied by `defusedcsv` (a formula-leading cell that is not a number gets a leading `'`);
before that, control and bidirectional-override characters are removed, which also removes
the tab and carriage return that OWASP lists as formula prefixes. Numbers (Decimals, ints)
are written in plain notation and never changed, so every amount is the warehouse's amount
to the last digit. The raw text stays in the warehouse; only the file cell is neutralised.
"""

from __future__ import annotations

import io
import re
import unicodedata
from decimal import Decimal
from numbers import Number

from defusedcsv import csv as defused

# Explicit directional formatting characters (LRE, RLE, PDF, LRO, RLO, LRI, RLI, FSI, PDI) and
# the Arabic letter mark: they reorder how a cell is displayed (an RLO can make `exe.txt`
# read `txt.exe`). Letters of right-to-left scripts are kept; only the overrides go.
_BIDI_CONTROLS = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u061c")
# The UTF-8 byte-order mark: spreadsheet software reads a CSV without it as the machine's
# legacy code page, so `東京音楽出版` or `Dvořák` would open garbled.
BOM = "\ufeff"


def clean_text(text: str) -> str:
    """Text without control characters (category Cc: NUL, tab, CR, LF, ...), bidirectional
    overrides or unpaired surrogates; runs of whitespace become one space."""
    kept = "".join(
        " " if unicodedata.category(ch) == "Cc" and ch in "\t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85"
        else "" if unicodedata.category(ch) in ("Cc", "Cs") or ch in _BIDI_CONTROLS
        else ch
        for ch in text
    )  # fmt: skip
    return re.sub(r"\s+", " ", kept).strip()


def cell(value: object) -> object:
    """A file cell: numbers unchanged (Decimals in plain notation: str() would write 0E-9),
    text cleaned (the formula rule is applied by the writer)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, Number):
        return value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return clean_text(str(value))


def tsv_line(values: list[object]) -> str:
    """One record of a tab-separated file (the DSR flat file), cells cleaned and neutralised by
    defusedcsv's writer. Cleaning leaves no tab or line break inside a cell; a backslash is
    escaped with a backslash, the flat-file standard's escape character."""
    out = io.StringIO()
    defused.writer(out, delimiter="\t", quoting=defused.QUOTE_NONE, quotechar=None,
                   escapechar="\\", lineterminator="\n").writerow([cell(v) for v in values])  # fmt: skip
    return out.getvalue()


def csv_bytes(columns: list[str], rows: list[dict] | list[list]) -> bytes:
    """A CSV a spreadsheet opens safely: UTF-8 with a byte-order mark, every cell cleaned and
    neutralised by defusedcsv's writer; dict rows are written in `columns` order."""
    out = io.StringIO()
    out.write(BOM)
    writer = defused.writer(out, lineterminator="\n")
    writer.writerow([cell(c) for c in columns])
    for row in rows:
        values = [row[c] for c in columns] if isinstance(row, dict) else row
        writer.writerow([cell(v) for v in values])
    return out.getvalue().encode()


FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


def is_dangerous(text: str) -> bool:
    """The OWASP test, for checks: a cell that a spreadsheet would run as a formula."""
    return text.startswith(FORMULA_PREFIXES) and not _NUMBER.match(text)
