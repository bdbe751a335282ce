"""Catalog import from the CSV files a rights team keeps: works, rights holders, splits.

Every row is checked before anything is written; one bad row refuses the whole import and
each problem is reported with its file, line and rule, so the sender can fix them all in one go.
Valid files are loaded through the same SQL as the Parquet catalog (`loads/ref_catalog`).

We validate in Python rather than with DuckDB's CSV reader: the reader stops at the first
value it cannot cast, and finance needs every bad row named at once, with the rule it broke.
"""

from __future__ import annotations

import csv
import io
import re
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from settlement import inputs
from settlement.reference import import_catalog
from settlement.warehouse import query, warehouse

WORK_COLUMNS = ["work_id", "iswc", "isrc", "title", "composer", "collection", "style", "source"]
HOLDER_COLUMNS = ["rights_holder_id", "name", "kind", "payout_currency", "min_payout"]
SPLIT_COLUMNS = ["work_id", "right_type", "rights_holder_id", "share", "effective_from", "effective_to"]
REQUIRED = {
    "works": {"work_id", "iswc", "isrc", "title", "collection", "style"},
    "holders": {"rights_holder_id", "name", "kind", "payout_currency"},
    "splits": {"work_id", "right_type", "rights_holder_id", "share", "effective_from"},
}
ISWC = re.compile(r"^T-\d{3}\.\d{3}\.\d{3}-\d$")
ISRC = re.compile(r"^[A-Z]{2}[A-Z0-9]{3}\d{7}$")
RIGHT_TYPES = ("publishing", "master")
# Splits of one work and right must sum to exactly 1 at every date where anyone owns it: the
# same rule as the calculation's split_sum gate (sql/checks/period_exceptions.sql), so an
# import never accepts what the month will then refuse.
SPLIT_TOLERANCE = Decimal(0)
MIN_PAYOUT_MAX = inputs.AMOUNT_2_MAX


@dataclass(frozen=True)
class RowError:
    file: str
    line: int  # as an editor shows it: the header is line 1
    column: str
    rule: str
    value: str

    def __str__(self) -> str:
        at = f"{self.file}:{self.line}" if self.line else self.file
        return f"{at}: {self.column}: {self.rule} (got {self.value!r})"


@dataclass(frozen=True)
class FileError:
    """A problem with a whole file (its encoding), already worded as `file:line: rule`."""

    message: str

    def __str__(self) -> str:
        return self.message


class CatalogImportError(ValueError):
    def __init__(self, errors: list[RowError]):
        self.errors = errors
        shown = "\n".join(f"  - {e}" for e in errors[:50])
        more = f"\n  ... and {len(errors) - 50} more" if len(errors) > 50 else ""
        super().__init__(f"{len(errors)} problem(s) in the catalog files; nothing was imported:\n{shown}{more}")


def _read(path: Path, kind: str, columns: list[str], errors: list[RowError]) -> list[tuple[int, dict]]:
    if not path.is_file():
        errors.append(RowError(path.name, 0, "-", "file not found", str(path)))
        return []
    try:
        text = inputs.decode_text(path.read_bytes(), path.name)
    except inputs.InputError as exc:
        errors.append(FileError(str(exc)))
        return []
    with io.StringIO(text, newline="") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        missing = REQUIRED[kind] - set(header)
        if missing:
            errors.append(RowError(path.name, 1, ",".join(sorted(missing)), "required column missing", ",".join(header)))
            return []
        unknown = set(header) - set(columns)
        if unknown:
            errors.append(RowError(path.name, 1, ",".join(sorted(unknown)), f"unknown column (expected {columns})", ""))
        rows = []
        for line, raw in enumerate(reader, start=2):
            rows.append((line, {c: (raw.get(c) or "").strip() for c in columns}))
    return rows


def _decimal(text: str, places: int, low: Decimal = Decimal(0), high: Decimal = MIN_PAYOUT_MAX,
             low_open: bool = False) -> Decimal | None:  # fmt: skip
    try:
        return inputs.decimal(text, "value", places, low, high, low_open)
    except inputs.InputError:
        return None


def _date(text: str) -> date | None:
    try:
        return inputs.day(text, "date")
    except inputs.InputError:
        return None


def split_key(s: dict) -> tuple:
    return (s["work_id"], s["right_type"], s["rights_holder_id"], s["effective_from"])


def check_split_sums(new_splits: list[dict], known_splits=(), report=None) -> list[str]:
    """Problems (as words) with the shares in force of every work and right that `new_splits`
    touch, merged over `known_splits` (new rows replace stored ones with the same key). At
    every date where ownership changes, the shares in force sum to exactly 1, or to 0 where
    nobody owns the right any more (the split_sum gate's rule; the orphan_work gate catches a
    work that earns without an owner)."""
    # The set of touched rights is built once: rebuilding it per stored split made a re-import
    # of a 12k-work catalog quadratic (36k x 36k, minutes of CPU before the first write).
    touched = {(n["work_id"], n["right_type"]) for n in new_splits}
    merged = {split_key(s): s for s in known_splits if (s["work_id"], s["right_type"]) in touched}
    merged.update({split_key(s): s for s in new_splits})
    by_right = defaultdict(list)
    for s in merged.values():
        by_right[(s["work_id"], s["right_type"])].append(s)
    problems = []
    for (work, right), rows in sorted(by_right.items()):
        dates = {s["effective_from"] for s in rows} | {s["effective_to"] for s in rows if s["effective_to"]}
        for day in sorted(dates):
            total = sum(
                (s["share"] for s in rows if s["effective_from"] <= day and (s["effective_to"] is None or day < s["effective_to"])),
                Decimal(0),
            )  # fmt: skip
            if total != 0 and abs(total - 1) > SPLIT_TOLERANCE:
                lines = sorted(str(s["_line"]) for s in rows if s.get("_line"))
                where = f" (lines {','.join(lines)})" if lines else ""
                message = f"splits of {work}/{right} in force on {day} sum to {total}, not 1{where}"
                problems.append(message)
                if report:
                    report(min((s["_line"] for s in rows if s.get("_line")), default=0), message, str(total))
    return problems


def validate(works_csv: Path, holders_csv: Path, splits_csv: Path, known_works=(), known_holders=(),
             known_splits=()):  # fmt: skip
    """Typed rows of the three files, or CatalogImportError listing every problem."""
    errors: list[RowError] = []
    works_rows = _read(works_csv, "works", WORK_COLUMNS, errors)
    holder_rows = _read(holders_csv, "holders", HOLDER_COLUMNS, errors)
    split_rows = _read(splits_csv, "splits", SPLIT_COLUMNS, errors)

    def bad(path: Path, line: int, column: str, rule: str, value: str) -> None:
        errors.append(RowError(path.name, line, column, rule, value))

    def required(path: Path, line: int, row: dict, kind: str) -> None:
        for c in sorted(REQUIRED[kind]):
            if not row[c]:
                bad(path, line, c, "required value is empty", row[c])

    works, seen = [], {}
    for line, r in works_rows:
        required(works_csv, line, r, "works")
        if r["work_id"] in seen:
            bad(works_csv, line, "work_id", f"duplicate work (first on line {seen[r['work_id']]})", r["work_id"])
        seen.setdefault(r["work_id"], line)
        if r["iswc"] and not ISWC.match(r["iswc"]):
            bad(works_csv, line, "iswc", "not an ISWC (T-123.456.789-0)", r["iswc"])
        if r["isrc"] and not ISRC.match(r["isrc"]):
            bad(works_csv, line, "isrc", "not an ISRC (CC-XXX-YY-NNNNN without dashes)", r["isrc"])
        works.append({c: r[c] or None for c in WORK_COLUMNS})

    holders, seen = [], {}
    for line, r in holder_rows:
        required(holders_csv, line, r, "holders")
        if r["rights_holder_id"] in seen:
            bad(holders_csv, line, "rights_holder_id", f"duplicate holder (first on line {seen[r['rights_holder_id']]})",
                r["rights_holder_id"])  # fmt: skip
        seen.setdefault(r["rights_holder_id"], line)
        if r["payout_currency"] and r["payout_currency"] not in inputs.ISO_4217:
            bad(holders_csv, line, "payout_currency", "not an ISO 4217 currency code (e.g. USD, EUR)", r["payout_currency"])
        threshold = _decimal(r["min_payout"] or "0", 2)
        if threshold is None:
            bad(holders_csv, line, "min_payout", f"must be an amount >= 0 and < {MIN_PAYOUT_MAX:f} with at most "
                "2 decimals, in plain notation", r["min_payout"])  # fmt: skip
        holders.append({**{c: r[c] for c in HOLDER_COLUMNS[:4]}, "min_payout_usd": threshold or Decimal(0)})

    work_ids = {w["work_id"] for w in works} | set(known_works)
    holder_ids = {h["rights_holder_id"] for h in holders} | set(known_holders)
    splits, seen = [], {}
    for line, r in split_rows:
        required(splits_csv, line, r, "splits")
        if r["work_id"] and r["work_id"] not in work_ids:
            bad(splits_csv, line, "work_id", "unknown work (not in works.csv nor in the warehouse)", r["work_id"])
        if r["rights_holder_id"] and r["rights_holder_id"] not in holder_ids:
            bad(splits_csv, line, "rights_holder_id", "unknown rights holder (not in holders.csv nor in the warehouse)",
                r["rights_holder_id"])  # fmt: skip
        if r["right_type"] not in RIGHT_TYPES:
            bad(splits_csv, line, "right_type", f"must be one of {RIGHT_TYPES}", r["right_type"])
        share = _decimal(r["share"], 6, Decimal(0), Decimal("1.000001"), low_open=True)
        if r["share"] and (share is None or not Decimal(0) < share <= 1):
            bad(splits_csv, line, "share", "must be a fraction in (0, 1] with at most 6 decimals", r["share"])
        start = _date(r["effective_from"])
        if r["effective_from"] and start is None:
            bad(splits_csv, line, "effective_from", f"not a date (YYYY-MM-DD, {inputs.EARLIEST} to {inputs.LATEST})",
                r["effective_from"])  # fmt: skip
        end = _date(r["effective_to"]) if r["effective_to"] else None
        if r["effective_to"] and end is None:
            bad(splits_csv, line, "effective_to", "not a date (YYYY-MM-DD) or empty", r["effective_to"])
        if start and end and end <= start:
            bad(splits_csv, line, "effective_to", f"must be after effective_from {start}", r["effective_to"])
        key = (r["work_id"], r["right_type"], r["rights_holder_id"], r["effective_from"])
        if key in seen:
            bad(splits_csv, line, "rights_holder_id", f"duplicate split (first on line {seen[key]})", r["rights_holder_id"])
        seen.setdefault(key, line)
        if share is not None and start is not None:
            splits.append({"work_id": r["work_id"], "right_type": r["right_type"],
                           "rights_holder_id": r["rights_holder_id"], "share": share,
                           "effective_from": start, "effective_to": end, "_line": line})  # fmt: skip

    # At every date where a work's ownership of a right changes, the shares in force sum to 1:
    # the file's rows over the warehouse's (a row with the same work, right, holder and start
    # replaces the stored one: that is how an old row gets its end date).
    check_split_sums(splits, known_splits, lambda line, msg, total: bad(splits_csv, line, "share", msg, total))
    if errors:
        raise CatalogImportError(errors)
    for s in splits:
        del s["_line"]
    return works, holders, splits


SCHEMAS = {
    "works": pa.schema([(c, pa.string()) for c in WORK_COLUMNS]),
    "rights_holders": pa.schema(
        [(c, pa.string()) for c in HOLDER_COLUMNS[:4]] + [("min_payout_usd", pa.decimal128(18, 2))]
    ),
    "splits": pa.schema([
        ("work_id", pa.string()), ("right_type", pa.string()), ("rights_holder_id", pa.string()),
        ("share", pa.decimal128(9, 6)), ("effective_from", pa.date32()), ("effective_to", pa.date32()),
    ]),
}


def import_catalog_csv(warehouse_path: Path, works_csv: Path, holders_csv: Path, splits_csv: Path) -> dict:
    """Validate the three files, then load them in one transaction. Returns catalog counts."""
    with warehouse(warehouse_path) as con:  # splits may name works and holders imported before
        known_works = [r["work_id"] for r in query(con, "marts/catalog_work_ids")]
        known_holders = [r["rights_holder_id"] for r in query(con, "marts/catalog_holder_ids")]
        known_splits = query(con, "marts/catalog_splits")
    works, holders, splits = validate(works_csv, holders_csv, splits_csv, known_works, known_holders, known_splits)
    with tempfile.TemporaryDirectory(prefix="catalog-") as tmp:
        folder = Path(tmp)
        for name, rows in (("works", works), ("rights_holders", holders), ("splits", splits)):
            pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMAS[name]), folder / f"{name}.parquet")
        with warehouse(warehouse_path) as con:
            counts = import_catalog(con, folder)
    return {"works_in_file": len(works), "holders_in_file": len(holders), "splits_in_file": len(splits), **counts}

