"""Rights holder statements for a period, and the command that builds and verifies them.

For each holder with earnings or a balance, in `statements/PERIOD/HOLDER/`:
  statement_PERIOD_HOLDER.pdf          what a person reads (statement of account, works, chart,
                                       how shares were measured)
  statement_PERIOD_HOLDER.csv          every statement line (work x platform x right), exact and
                                       rounded, same totals as the PDF
  generations_PERIOD_HOLDER.csv        per-generation detail of the output royalty
  DSR_HOLDER_Tributary_PLATFORM_...tsv DDEX DSR Royalty Reporting Profile (settlement/dsr.py)
and for the period: period_summary.{csv,json}, finance_report_PERIOD.{html,csv}.

Files are byte-for-byte reproducible: they are rendered from the warehouse alone (sorted rows,
no clock, reportlab's invariant mode, subset fonts from Debian packages), and their
sha256 are stored in settlement.statement_files / settlement.period_files, so
`python -m settlement.statements verify --period P` can prove a rerun gives the same bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import unicodedata
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

from tqdm import tqdm

from settlement import cells, dsr, finance_report, inputs, statement_pdf
from settlement.warehouse import query, run_sql, transaction, warehouse

LINE_COLUMNS = [
    "statement_number", "period", "rights_holder_id", "rights_holder_name", "platform_id", "platform_name", "contract_id",
    "pool_rate", "work_id", "iswc", "isrc", "title", "composer", "right_type", "ownership_share",
    "n_generations", "output_royalty", "training_royalty", "exact_amount", "amount", "currency",
]  # fmt: skip
# One row per generation that drew on a work (its output royalty) and one per statement line
# for the training royalty; `amount` is the line's cents divided over its rows, so a holder's
# rows sum to the statement to the cent. Read from settlement.generation_amounts.
GENERATION_COLUMNS = [
    "statement_number", "period", "rights_holder_id", "platform_id", "royalty", "generation_id", "created_at",
    "territory", "work_id", "iswc", "isrc", "right_type", "revenue_amount", "revenue_currency", "fx_rate",
    "fee", "generation_pool", "attribution_share", "right_weight", "holder_split", "exact_royalty", "amount",
    "currency", "attribution_run_id", "paid_by", "share_rule", "alpha", "min_confidence", "confidence",
    "p_value", "catalog_share", "catalog_share_method", "output_kind", "output_audio_file",
    "output_audio_sha256",
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


def _csv_bytes(rows: list[dict], columns: list[str]) -> bytes:
    """UTF-8 with a byte-order mark, every cell safe to open in a spreadsheet (settlement/cells.py)."""
    return cells.csv_bytes(columns, rows)


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
    name = [r["name"] for r in query(con, "marts/rights_holder", {"rights_holder_id": rights_holder_id})]
    lines = [ids | {"rights_holder_name": name[0] if name else ""} | r
             for r in query(con, "marts/holder_statement_lines", params)]  # fmt: skip
    generations = [ids | r for r in query(con, "marts/statement_generations", params)]
    return lines, generations


def render_period(con, period: str, progress: bool | None = None, disputes_as_of=None) -> list[Rendered]:
    """Every file of a calculated period, rendered in memory from the warehouse.

    `progress`: a bar per holder on stderr (None: only when stderr is a terminal).
    `disputes_as_of`: see finance_report.gather (None: the cut-off of the last build)."""
    start = _period_start(period)
    state = query(con, "marts/finance_period", {"period": period})
    if not state or state[0]["status"] == "open" or state[0]["run_id"] is None:
        raise RuntimeError(f"period {period} has not been calculated")
    run_id, calculated_at = state[0]["run_id"], state[0]["calculated_at"]
    closes = query(con, "marts/finance_closes", {"period": period})
    final = bool(closes)
    # The statement is issued when the period closes (a draft on the day it was calculated):
    # a date from the warehouse, so a rebuild prints the same one.
    issued = (closes[0]["closed_at"] if final else calculated_at).date()
    issuer = statement_pdf.Issuer.from_env()
    holders = query(con, "marts/period_holders", {"period": period})
    methods = query(con, "marts/statement_methods", {"period": period})
    contracts = query(con, "marts/statement_contracts", {"period": period})
    platform_names = {r["platform_id"]: r["name"] for r in query(con, "marts/platforms")}
    usage = query(con, "marts/dsr_usage", {"period": period})
    dsr_lines: dict[str, list[dict]] = defaultdict(list)
    for row in query(con, "marts/dsr_lines", {"period": period}):
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
        if sum((w["amount"] for w in works), Decimal("0.00")) != lines_total:
            raise RuntimeError(f"holder {hid}: works on the PDF do not sum to the statement lines")
        detail_total = sum((r["amount"] for r in generations), Decimal("0.00"))
        if detail_total != sum((r["amount"] for r in query(con, "marts/holder_statement_total", params)), Decimal("0.00")):
            raise RuntimeError(f"holder {hid}: per-generation rows sum to {detail_total}, not to the statement")
        platforms = query(con, "marts/statement_platforms", params)
        mine = {r["platform_id"] for r in platforms}
        lines_csv, generations_csv = f"statement_{tag}.csv", f"generations_{tag}.csv"
        pdf = statement_pdf.render_pdf(
            holder=holder, period=period, period_start=start, period_end=_period_end(period),
            number=number, issued=issued, final=final, issuer=issuer, account=account, works=works,
            platforms=platforms, payments=query(con, "marts/statement_payment", params),
            methods=[m for m in methods if m["platform_id"] in mine],
            contracts=[c for c in contracts if c["platform_id"] in mine], run_id=run_id,
            lines_csv=lines_csv, generations_csv=generations_csv, platform_names=platform_names,
            catalog_shares=generations,
        )  # fmt: skip
        files += [
            Rendered(f"{folder}/statement_{tag}.pdf", hid, "pdf", pdf),
            Rendered(f"{folder}/{lines_csv}", hid, "csv", _csv_bytes(lines, LINE_COLUMNS)),
            Rendered(f"{folder}/{generations_csv}", hid, "generations_csv",
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
                holder=holder, platform=platform, platform_name=platform_names.get(platform, platform),
                lines=by_platform[platform], usage=[u for u in usage if u["platform_id"] == platform],
                created=calculated_at, run_id=run_id,
            )  # fmt: skip
            files.append(Rendered(f"{folder}/{name}", hid, f"dsr:{platform}", data))

    summary = query(con, "marts/period_summary", {"period": period})
    cols = list(summary[0]) if summary else ["period"]
    files.append(
        Rendered(f"{period_dir}/period_summary.csv", "", "summary_csv", _csv_bytes(summary, cols))
    )
    summary_json = json.dumps(
        {"period": period, "run_id": run_id, "statements": len(holders),
         "platforms": [{k: v if isinstance(v, int) else cells.cell(v) for k, v in r.items()} for r in summary]},
        indent=1, sort_keys=True, ensure_ascii=False,
    )  # fmt: skip
    files.append(
        Rendered(f"{period_dir}/period_summary.json", "", "summary_json", summary_json.encode())
    )
    return files + _finance_report_files(con, period, len(holders), disputes_as_of)


def _finance_report_files(con, period: str, n_statements: int, disputes_as_of=None) -> list[Rendered]:
    period_dir = safe_name(period)
    report_html, report_csv = finance_report.render(
        finance_report.gather(con, period, _period_start(period), disputes_as_of), period, n_statements
    )
    return [
        Rendered(f"{period_dir}/finance_report_{period_dir}.html", "", "finance_html", report_html),
        Rendered(f"{period_dir}/finance_report_{period_dir}.csv", "", "finance_csv", report_csv),
    ]


def refresh_finance_report(warehouse_path: Path, out_root: Path, period: str) -> None:
    """Rewrite a period's finance report alone (its deliveries section changed: mails sent,
    bounced, failed) and record its new sha256; the holders' files are left as they are.
    Killed, the report on disk or its hash may be stale: the next delivery run or `statements
    build` rewrites both."""
    with warehouse(warehouse_path) as con:
        n = len(query(con, "marts/period_holders", {"period": period}))
        files = _finance_report_files(con, period, n)
        _write(out_root, files)
        run_id = (query(con, "marts/finance_period", {"period": period}) or [{"run_id": None}])[0]["run_id"]
        with transaction(con):
            for f in files:
                run_sql(con, "marts/statement_period_file",
                        {"period": period, "kind": f.kind, "path": f.path, "sha256": f.sha256, "run_id": run_id})  # fmt: skip


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
        # The finance report shows disputes as they stand now; _record keeps this cut-off.
        as_of = datetime.now(UTC).replace(tzinfo=None)
        files = render_period(con, period, progress, disputes_as_of=as_of)
        _write(out_root, files)
        _record(con, period, files, as_of)
    holders = {f.rights_holder_id for f in files if f.rights_holder_id}
    return {"period": period, "folder": str(out_root / safe_name(period)), "statements": len(holders),
            "files": len(files)}  # fmt: skip


def _write(out_root: Path, files: list[Rendered]) -> None:
    for f in files:
        path = _inside(out_root, f.path)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.partial")
        with open(partial, "wb") as handle:
            handle.write(f.data)
            handle.flush()
            os.fsync(handle.fileno())
        partial.replace(path)


def _record(con, period: str, files: list[Rendered], disputes_as_of=None) -> None:
    """Replace the period's recorded file hashes with those of `files` (and the finance report's
    disputes cut-off they were rendered with), in one transaction."""
    run_id = (query(con, "marts/finance_period", {"period": period}) or [{"run_id": None}])[0]["run_id"]
    with transaction(con):
        run_sql(con, "marts/statement_files_clear", {"period": period})
        if disputes_as_of is not None:
            run_sql(con, "loads/report_cutoff", {"period": period, "disputes_as_of": disputes_as_of})
        for f in files:
            params = {"period": period, "kind": f.kind, "path": f.path, "sha256": f.sha256, "run_id": run_id}
            if f.rights_holder_id:
                run_sql(con, "loads/statement_file", params | {"rights_holder_id": f.rights_holder_id})
            else:
                run_sql(con, "marts/statement_period_file", params)
        if query(con, "marts/finance_closes", {"period": period}):  # built after the close: final
            run_sql(con, "loads/final_statements", {"period": period, "now": datetime.now(UTC).replace(tzinfo=None)})


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
