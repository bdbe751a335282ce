"""Ingest throughput: records per second from Generation Log API pages and from a file drop,
each into raw Parquet + DuckDB, with the time split by phase so the bottleneck is named.

    .venv/bin/python -m benchmarks.ingest [--http 20000] [--drop 1000000]

Everything is measured in this one run on this machine (nothing compared across runs). The
HTTP path uses the real sandbox server on loopback (page_size 1000, no faults); the file drop
is JSON Lines and Parquet files plus manifest.json on local disk.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sandbox.server import SandboxServer
from settlement.filedrop import ingest_file_drop
from settlement.ingest import GenerationLogClient, PlatformEndpoint, ingest_window, validate

START = datetime(2026, 10, 1, tzinfo=UTC)
END = START + timedelta(days=1)
TOKEN = "bench-token"


def records(n: int) -> list[dict]:
    step = 86400 / n
    return [
        {
            "schema_version": 1,
            "generation_id": f"b{i:08d}",
            "model_version": "mv-ok",
            "created_at": (START + timedelta(seconds=i * step)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "style": "bach",
            "prompt": "a piece in the style of bach",
            "output": {"tokens": [1, 5 + i % 50, 30, 31, 32, 33, 34, 35, 36, 37, 38, 2]},
            "territory": ("US", "GB", "DE", "JP")[i % 4],
            "revenue": {"amount": f"0.{i % 9000 + 1000:04d}", "currency": "USD"},
        }
        for i in range(n)
    ]


def manifest(recs: list[dict]) -> dict:
    total = sum((Decimal(r["revenue"]["amount"]) for r in recs), Decimal(0))
    return {"platform_id": "bench", "start": "2026-10-01T00:00:00Z", "end": "2026-10-02T00:00:00Z",
            "count": len(recs), "revenue": {"USD": str(total)}}  # fmt: skip


def bench_http(n: int, work: Path) -> dict:
    recs = records(n)
    log_path = work / "http" / "log.jsonl"
    log_path.parent.mkdir(parents=True)
    log_path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    models = work / "http" / "models" / "mv-ok"
    models.mkdir(parents=True)
    (models / "model_version.json").write_text("{}")
    with SandboxServer(log_path, models.parent, TOKEN) as server:
        endpoint = PlatformEndpoint("bench", server.base_url, TOKEN)
        client = GenerationLogClient(endpoint, page_size=1000)
        t0 = time.perf_counter()
        pulled = [rec for page in client.pages(START, END) for rec in page]
        pull_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        for rec in pulled:
            validate(rec, {"mv-ok"}, START, END)
        validate_s = time.perf_counter() - t0
        t0, c0 = time.perf_counter(), time.process_time()
        summary = ingest_window(
            work / "http.duckdb", work / "lake", endpoint, START, END, "bench", client=client
        )
        total_s, cpu_s = time.perf_counter() - t0, time.process_time() - c0
    assert summary["loaded_new"] == n, summary
    return {"n": n, "total_s": total_s, "cpu_s": cpu_s, "pull_s": pull_s, "validate_s": validate_s,
            "land_s": max(total_s - pull_s - validate_s, 0.0)}  # fmt: skip


def bench_drop(n: int, work: Path, fmt: str) -> dict:
    recs = records(n)
    drop = work / f"drop-{fmt}"
    drop.mkdir()
    if fmt == "jsonl":
        for k in range(4):
            part = recs[k * n // 4 : (k + 1) * n // 4]
            (drop / f"part-{k}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in part))
    else:
        pq.write_table(pa.Table.from_pylist(recs), drop / "part-0.parquet")
    (drop / "manifest.json").write_text(json.dumps(manifest(recs)))
    del recs
    timings: dict = {}
    t0, c0 = time.perf_counter(), time.process_time()
    summary = ingest_file_drop(
        work / f"drop-{fmt}.duckdb",
        work / f"lake-{fmt}",
        "bench",
        str(drop),
        "bench",
        {"mv-ok"},
        timings,
    )
    total_s, cpu_s = time.perf_counter() - t0, time.process_time() - c0
    assert summary["loaded_new"] == n, summary
    return {"n": n, "total_s": total_s, "cpu_s": cpu_s, **{f"{k}_s": v for k, v in timings.items()}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--http", type=int, default=20_000, help="records served over HTTP")
    ap.add_argument("--drop", type=int, default=1_000_000, help="records in each file drop")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("TRIBUTARY_INGEST_TIMEOUT", "60")
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    with tempfile.TemporaryDirectory(prefix="tributary-bench-") as tmp:
        work = Path(tmp)
        http = bench_http(args.http, work)
        jsonl = bench_drop(args.drop, work, "jsonl")
        parquet = bench_drop(args.drop, work, "parquet")

    def rate(r: dict) -> float:
        return r["n"] / r["total_s"]

    print(f"cores: {os.cpu_count()}  python: {sys.version.split()[0]}  load average before: {load}")
    print("| source | records | wall s | records/s (wall) | CPU s (this process) | records per CPU s "
          "| phases, wall s | bottleneck |")  # fmt: skip
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- | --- |")
    for name, r, phases in [
        (
            "HTTP pages (page_size 1000; CPU excludes the server)",
            http,
            ("pull", "validate", "land"),
        ),
        ("file drop, JSON Lines (4 files)", jsonl, ("read", "validate", "land")),
        ("file drop, Parquet (1 file)", parquet, ("read", "validate", "land")),
    ]:
        split = {p: r[f"{p}_s"] for p in phases}
        worst = max(split, key=split.get)
        shares = ", ".join(f"{p} {v:.2f}" for p, v in split.items())
        print(f"| {name} | {r['n']:,} | {r['total_s']:.2f} | {rate(r):,.0f} | {r['cpu_s']:.2f} "
              f"| {r['n'] / r['cpu_s']:,.0f} | {shares} | {worst} ({split[worst] / r['total_s']:.0%}) |")  # fmt: skip
    print(f"ratio file drop JSONL / HTTP: {rate(jsonl) / rate(http):.1f}x; "
          f"Parquet / HTTP: {rate(parquet) / rate(http):.1f}x; target >= 50,000 records/s for a file drop: "
          f"{'met' if min(rate(jsonl), rate(parquet)) >= 50_000 else 'NOT met'}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
