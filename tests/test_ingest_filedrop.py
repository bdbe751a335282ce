"""File drops: Parquet or JSON Lines plus manifest.json in a directory on an fsspec
filesystem, with the API path's validation, dedup, quarantine and reconciliation."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from decimal import Decimal

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from settlement_fixtures import table
from test_ingest import BAD, END, START, _record

from settlement.filedrop import ingest_file_drop
from settlement.ingest import ReconciliationError, validate

GOOD = [_record(i) for i in range(25)]
RECORDS = GOOD + list(BAD.values())


def _manifest(records, **override) -> dict:
    revenue: dict[str, Decimal] = {}
    for r in {r["generation_id"]: r for r in records}.values():
        if isinstance(r.get("revenue"), dict):
            cur = r["revenue"]["currency"]
            revenue[cur] = revenue.get(cur, Decimal(0)) + Decimal(r["revenue"]["amount"])
    return {
        "platform_id": "p1", "start": "2026-10-01T00:00:00Z", "end": "2026-10-02T00:00:00Z",
        "count": len({r["generation_id"] for r in records}),
        "revenue": {k: str(v) for k, v in revenue.items()}, "schema_version": 1,
    } | override  # fmt: skip


def _jsonl_drop(root, records, manifest=None, split=2):
    root.mkdir(parents=True, exist_ok=True)
    half = len(records) // split
    (root / "part-0.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records[:half]))
    (root / "part-1.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records[half:]))
    (root / "manifest.json").write_text(json.dumps(manifest or _manifest(records)))
    return str(root)


def _ingest(home, uri, run_id="r1"):
    return ingest_file_drop(
        home / "w.duckdb", home / "lake", "p1", uri, run_id, model_versions={"mv-ok"}
    )


def test_jsonl_drop_loads_valid_and_quarantines_bad_with_the_same_rules_as_the_api(tmp_path):
    dup = dict(GOOD[3])  # the same record in a second file counts once
    uri = _jsonl_drop(tmp_path / "drop", RECORDS + [dup])
    summary = _ingest(tmp_path, uri)
    assert summary["received"] == summary["reported_count"] == len(RECORDS)
    assert summary["loaded_new"] == 25 and summary["quarantined"] == len(BAD)
    rules = dict(
        table(
            tmp_path / "w.duckdb", "SELECT generation_id, rule FROM raw.quarantine"
        ).values.tolist()
    )
    # The vectorised pass and the per-record validate() agree on every record.
    for rec in BAD.values():
        assert rules[rec["generation_id"]] == validate(rec, {"mv-ok"}, START, END).rule
    gens = table(tmp_path / "w.duckdb", "SELECT * FROM raw.generations ORDER BY generation_id")
    assert gens["revenue_amount"][0] == Decimal("0.100000") and isinstance(
        gens["revenue_amount"][0], Decimal
    )
    assert list(gens["output_tokens"][0]) == [1, 5, 30, 2]
    assert gens["created_at"][1] == datetime(2026, 10, 1, 1, 0)


def test_rerunning_a_drop_adds_nothing(tmp_path):
    uri = _jsonl_drop(tmp_path / "drop", RECORDS)
    _ingest(tmp_path, uri)
    before = table(tmp_path / "w.duckdb", "SELECT * FROM raw.generations ORDER BY ALL")
    again = _ingest(tmp_path, uri, run_id="r2")
    assert again["loaded_new"] == 0 and again["already_loaded"] == 25
    assert table(tmp_path / "w.duckdb", "SELECT * FROM raw.generations ORDER BY ALL").equals(before)
    assert table(tmp_path / "w.duckdb", "SELECT count(*) AS n FROM raw.quarantine")["n"][0] == len(
        BAD
    )


def test_parquet_drop_on_an_fsspec_memory_filesystem(tmp_path):
    fs = fsspec.filesystem("memory")
    # one schema per Parquet file: no record without territory, none with tokens not a list
    good = [r for r in RECORDS if "territory" in r and isinstance(r["output"]["tokens"], list)]
    with fs.open("/drops/p1/part-0.parquet", "wb") as fh:
        pq.write_table(pa.Table.from_pylist(good), fh)
    with fs.open("/drops/p1/manifest.json", "w") as fh:
        fh.write(json.dumps(_manifest(good)))
    summary = _ingest(tmp_path, "memory://drops/p1")
    assert summary["loaded_new"] == 25 and summary["quarantined"] == len(good) - 25


def test_a_drop_that_does_not_match_its_manifest_fails_naming_platform_window_and_difference(
    tmp_path,
):
    uri = _jsonl_drop(tmp_path / "drop", RECORDS, _manifest(RECORDS, count=len(RECORDS) + 2))
    with pytest.raises(
        ReconciliationError, match=r"platform p1, window \[2026-10-01T00:00:00Z.*difference 2"
    ):
        _ingest(tmp_path, uri)
    uri = _jsonl_drop(tmp_path / "drop2", RECORDS, _manifest(RECORDS, revenue={"USD": "1.00"}))
    with pytest.raises(ReconciliationError, match="difference"):
        _ingest(tmp_path, uri)
    assert (
        not (tmp_path / "w.duckdb").exists()
        or table(tmp_path / "w.duckdb", "SELECT count(*) AS n FROM raw.generations")["n"][0] == 0
    )


def test_a_rerun_of_a_window_rewrites_the_same_bytes(tmp_path):
    """A window's Parquet file is rewritten by every ingest of it (a rerun after a kill, a
    re-sent drop); each ingest row records the file's digest. The same records in another order
    must give the same bytes, or the digests recorded earlier stop matching the file (found by
    the ingest kill series: a run killed after its commit, rerun, left two digests)."""
    uri = _jsonl_drop(tmp_path / "drop", RECORDS)
    _ingest(tmp_path, uri)
    again = _jsonl_drop(tmp_path / "again", list(reversed(RECORDS)))
    _ingest(tmp_path, again, run_id="r2")
    files = sorted((tmp_path / "lake").rglob("*.parquet"))
    assert len(files) == 1
    digests = table(tmp_path / "w.duckdb", "SELECT raw_file_sha256 FROM raw.ingest_windows")
    on_disk = hashlib.sha256(files[0].read_bytes()).hexdigest()
    assert list(digests["raw_file_sha256"]) == [on_disk, on_disk]
