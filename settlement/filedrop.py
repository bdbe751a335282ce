"""File drops: a platform that delivers files instead of an API.

A drop is one directory on any fsspec filesystem (local path, `s3://`, `gs://`, `memory://`...)
holding the window's records as Parquet (`*.parquet`) or JSON Lines (`*.jsonl`, `*.json`),
one record per row/line in the Generation Log API's record schema, and `manifest.json`:

    {"platform_id": "p1", "start": "2026-10-01T00:00:00Z", "end": "2026-10-02T00:00:00Z",
     "count": 1234, "revenue": {"USD": "123.450000"}, "schema_version": 1}

`count` is the number of distinct records the platform sent (a record in two files counts
once), `revenue` their amounts per currency, bad records included: the same contract as the
API's manifest endpoint. Validation, dedup, quarantine, reconciliation and landing are the
API path's; validation runs as one vectorised DuckDB pass (sql/loads/ingest_filedrop_stage.sql)
instead of a Python loop per record, which is what makes a drop of a million records quick.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path, PurePosixPath

import duckdb
import fsspec
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.json as pajson
from fsspec.implementations.local import LocalFileSystem

from settlement.ingest import (
    KNOWN_CURRENCIES,
    QUARANTINE_COLUMNS,
    RAW_SCHEMA,
    IngestError,
    ReconciliationError,
    _iso,
    _write_raw_parquet,
    land,
    manifest_digest,
)
from settlement.warehouse import query, run_sql, sql_text, warehouse

log = logging.getLogger(__name__)

RECORD_SUFFIXES = {".parquet": "parquet", ".jsonl": "json", ".json": "json", ".ndjson": "json"}


def _parse_time(value: str, what: str) -> datetime:
    ts = datetime.fromisoformat(str(value))
    if ts.tzinfo is None:
        raise IngestError(f"file drop manifest: {what} {value!r} has no UTC offset")
    return ts.astimezone(UTC)


# The record schema (docs/generation-log-api.yaml) as pyarrow types, for the fast path.
RECORD_SCHEMA = pa.schema(
    [
        ("schema_version", pa.int64()),
        ("generation_id", pa.string()),
        ("model_version", pa.string()),
        ("created_at", pa.string()),
        ("style", pa.string()),
        ("prompt", pa.string()),
        ("output", pa.struct([("tokens", pa.list_(pa.int64()))])),
        ("territory", pa.string()),
        ("revenue", pa.struct([("amount", pa.string()), ("currency", pa.string())])),
    ]
)


@dataclass
class DropFile:
    name: str  # path inside the drop
    path: str  # path on the filesystem
    kind: str  # "json" | "parquet"
    typed: pa.Table | None = None  # fast path: parsed into RECORD_SCHEMA
    lines: pa.Table | None = None  # raw-line path: one JSON text per record


def read_drop(uri: str) -> tuple[dict, list[DropFile], fsspec.AbstractFileSystem]:
    """The drop's manifest and its record files, each typed (fast path) or as raw lines."""
    fs, root = fsspec.core.url_to_fs(uri)
    root = root.rstrip("/")
    manifest_path = f"{root}/manifest.json"
    if not fs.exists(manifest_path):
        raise IngestError(f"file drop {uri}: no manifest.json alongside the records")
    with fs.open(manifest_path, "rb") as fh:
        manifest = json.load(fh)
    # pyarrow reads local files natively (C++ I/O, no GIL); other filesystems go through
    # fsspec's handler.
    if isinstance(fs, LocalFileSystem):
        arrow_fs = pafs.LocalFileSystem()
    else:
        arrow_fs = pafs.PyFileSystem(pafs.FSSpecHandler(fs))
    files = []
    for path in sorted(fs.find(root)):
        kind = RECORD_SUFFIXES.get(PurePosixPath(path).suffix)
        if kind is None or path == manifest_path:
            continue
        f = DropFile(path[len(root) + 1 :], path, kind)
        try:
            if kind == "json":
                with arrow_fs.open_input_stream(path) as fh:
                    f.typed = pajson.read_json(fh, parse_options=_JSON_OPTIONS)
            else:
                table = ds.dataset(path, format="parquet", filesystem=arrow_fs).to_table()
                f.typed = _conform(table)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, KeyError) as exc:
            # Not typeable as a whole (a malformed line, a field of another type): every
            # record is then parsed on its own, so one bad record is one quarantine row.
            log.info("file drop %s: %s read record by record (%s)", uri, f.name, str(exc)[:200])
            f.lines = _as_lines(fs, f, arrow_fs)
        files.append(f)
    if not files:
        raise IngestError(f"file drop {uri}: no record files (*.parquet, *.jsonl)")
    return manifest, files, fs


_JSON_OPTIONS = pajson.ParseOptions(
    explicit_schema=RECORD_SCHEMA, unexpected_field_behavior="ignore"
)


def _conform(table: pa.Table) -> pa.Table:
    """A Parquet table in RECORD_SCHEMA: missing columns become nulls (then quarantined as
    missing fields); a column of an incompatible type raises, and the file goes record by record."""
    cols = []
    for fld in RECORD_SCHEMA:
        if fld.name in table.column_names:
            col = table[fld.name]
            if pa.types.is_timestamp(col.type):
                col = pa.array(
                    [None if v is None else v.isoformat() for v in col.to_pylist()], pa.string()
                )
            cols.append(col.cast(fld.type))
        else:
            cols.append(pa.nulls(table.num_rows, fld.type))
    return pa.Table.from_arrays(cols, schema=RECORD_SCHEMA)


def _as_lines(fs, f: DropFile, arrow_fs) -> pa.Table:
    if f.kind == "json":
        with fs.open(f.path, "rb") as fh:
            lines = [
                ln for ln in fh.read().decode("utf-8", errors="replace").splitlines() if ln.strip()
            ]
    else:
        rows = ds.dataset(f.path, format="parquet", filesystem=arrow_fs).to_table().to_pylist()
        lines = [json.dumps(r, default=str, sort_keys=True) for r in rows]
    return pa.table(
        {
            "line": pa.array(lines, pa.string()),
            "line_no": pa.array(range(1, len(lines) + 1), pa.int64()),
        }
    )


def _payloads(fs, files: dict[str, DropFile], rejected: list[dict]) -> None:
    """Attach the payload as delivered to rejected records of fast-path files (rare: only
    files with a rejection are read again)."""
    wanted: dict[str, list[dict]] = {}
    for row in rejected:
        if row["line"] is None:
            wanted.setdefault(row["source"], []).append(row)
    for name, rows in wanted.items():
        f = files[name]
        if f.kind == "json":
            with fs.open(f.path, "rb") as fh:
                lines = [
                    ln
                    for ln in fh.read().decode("utf-8", errors="replace").splitlines()
                    if ln.strip()
                ]
            for row in rows:
                row["line"] = lines[row["line_no"] - 1]
        else:
            table = f.typed.take(pa.array([row["line_no"] - 1 for row in rows]))
            for row, rec in zip(rows, table.to_pylist(), strict=True):
                row["line"] = json.dumps(rec, sort_keys=True)


def ingest_file_drop(
    warehouse_path: Path,
    lake: Path,
    platform_id: str,
    uri: str,
    run_id: str,
    model_versions: set[str] | None = None,
    timings: dict | None = None,
) -> dict:
    """Validate, dedup, reconcile and land one file drop. Safe to re-run: nothing doubles.
    `timings`, if given, receives seconds per phase (read, validate, land) for benchmarks."""
    clock = _Clock(timings)
    manifest, files, fs = read_drop(uri)
    clock.lap("read")
    if manifest.get("platform_id", platform_id) != platform_id:
        raise IngestError(
            f"file drop {uri}: manifest is for platform {manifest['platform_id']!r}, not {platform_id!r}"
        )
    start, end = _parse_time(manifest["start"], "start"), _parse_time(manifest["end"], "end")
    if model_versions is None:
        with warehouse(warehouse_path) as wh:
            rows = query(wh, "marts/ingest_licensed_versions", {"platform_id": platform_id})
        model_versions = {r["model_version"] for r in rows}

    con = duckdb.connect()  # scratch: the warehouse is locked only for the final load
    con.execute("SET TimeZone = 'UTC'")
    run_sql(con, "loads/ingest_filedrop_init")
    for index, f in enumerate(files):
        where = {"source": f.name, "file_index": index}
        if f.typed is not None:
            numbered = f.typed.append_column(
                "line_no", pa.array(range(1, f.typed.num_rows + 1), pa.int64())
            )
            con.register("drop_typed", numbered)
            run_sql(con, "loads/ingest_filedrop_typed", where)
            con.unregister("drop_typed")
        else:
            con.register("drop_lines", f.lines)
            run_sql(con, "loads/ingest_filedrop_lines", where)
            con.unregister("drop_lines")
    params = {
        "window_start": start,
        "window_end": end,
        "currencies": sorted(KNOWN_CURRENCIES),
        "licensed": sorted(model_versions),
        "platform_id": platform_id,
    }
    run_sql(con, "loads/ingest_filedrop_check", params)
    received = query(con, "marts/ingest_filedrop_received")
    _reconcile_drop(platform_id, uri, start, end, manifest, received)
    valid = con.sql(sql_text("marts/ingest_filedrop_valid"), params={"platform_id": platform_id})
    valid = valid.to_arrow_table().cast(RAW_SCHEMA)
    rejected = query(con, "marts/ingest_filedrop_rejected", {"platform_id": platform_id})
    con.close()
    _payloads(fs, {f.name: f for f in files}, rejected)
    quarantine = pa.Table.from_pylist(
        [
            {
                "platform_id": platform_id,
                "payload_sha256": hashlib.sha256(r["line"].encode()).hexdigest(),
                "generation_id": r["generation_id"],
                "rule": r["rule"],
                "reason": r["reason"],
                "raw_payload": r["line"],
            }
            for r in rejected
        ],
        schema=pa.schema([(c, pa.string()) for c in QUARANTINE_COLUMNS]),
    )
    clock.lap("validate")

    raw_file = _write_raw_parquet(valid, lake, platform_id, start, end)
    summary = {
        "platform_id": platform_id,
        "source": uri,
        "window_start": _iso(start),
        "window_end": _iso(end),
        "received": sum(r["n"] for r in received),
        "valid": valid.num_rows,
        "quarantined": quarantine.num_rows,
        "reported_count": int(manifest["count"]),
        "reported_revenue": str(
            sum((Decimal(v) for v in manifest["revenue"].values()), Decimal(0))
        ),
        "manifest_sha256": manifest_digest(manifest),
        "raw_file": str(raw_file) if raw_file else None,
    }
    summary |= land(warehouse_path, platform_id, start, end, run_id, valid, quarantine, summary)
    clock.lap("land")
    log.info("file drop %s", summary)
    return summary


class _Clock:
    """Wall and CPU seconds per phase: on a shared machine the CPU time says what the work
    costs, the wall time what it took."""

    def __init__(self, sink: dict | None):
        self.sink, self.t, self.cpu = sink, time.perf_counter(), time.process_time()

    def lap(self, name: str) -> None:
        now, cpu = time.perf_counter(), time.process_time()
        if self.sink is not None:
            self.sink[name] = now - self.t
            self.sink[f"{name}_cpu"] = cpu - self.cpu
        self.t, self.cpu = now, cpu


def _reconcile_drop(platform_id, uri, start, end, manifest: dict, received: list[dict]) -> None:
    window = f"[{_iso(start)}, {_iso(end)})"
    n = sum(r["n"] for r in received)
    if int(manifest["count"]) != n:
        raise ReconciliationError(
            f"platform {platform_id}, window {window} (file drop {uri}): manifest reports "
            f"{manifest['count']} records, received {n} (difference {int(manifest['count']) - n})"
        )
    got = {
        r["currency"]: Decimal(r["revenue"])
        for r in received
        if r["currency"] and r["revenue"] is not None
    }
    for currency in sorted(set(manifest["revenue"]) | {c for c, v in got.items() if v}):
        reported = Decimal(str(manifest["revenue"].get(currency, "0")))
        diff = reported - got.get(currency, Decimal(0))
        if diff != 0:
            raise ReconciliationError(
                f"platform {platform_id}, window {window} (file drop {uri}): manifest reports {reported} "
                f"{currency}, received {got.get(currency, Decimal(0))} (difference {diff})"
            )
