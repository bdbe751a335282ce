"""Ingest a platform's generation log for one time window: pull, validate, land, reconcile.

Every record received ends in exactly one place: `raw.generations` (once, however often it
was delivered) or `raw.quarantine` (with the rule it broke and its raw payload). The counts
then have to match what the platform's manifest says it sent for the window.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import requests

from settlement.warehouse import query, run_sql, transaction, warehouse

log = logging.getLogger(__name__)

SUPPORTED_SCHEMA_VERSIONS = {1}
# ISO 4217 codes we can settle in; anything else is quarantined rather than guessed at.
KNOWN_CURRENCIES = {"USD", "EUR", "GBP", "JPY", "CAD", "AUD", "CHF", "SEK", "BRL"}
REQUIRED = ("generation_id", "model_version", "created_at", "style", "output", "territory", "revenue")


class IngestError(RuntimeError):
    pass


class AuthenticationError(IngestError):
    pass


class ReconciliationError(IngestError):
    pass


@dataclass(frozen=True)
class PlatformEndpoint:
    platform_id: str
    base_url: str
    token: str = field(repr=False)  # never printed, never logged


class GenerationLogClient:
    """HTTP client of the Generation Log API (docs/generation-log-api.yaml)."""

    def __init__(
        self, endpoint: PlatformEndpoint, page_size: int = 200, timeout: float = 10.0, retries: int = 5
    ):
        self.endpoint, self.page_size, self.timeout, self.retries = endpoint, page_size, timeout, retries
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {endpoint.token}"

    def _get(self, path: str, params: dict | None = None, stream: bool = False) -> requests.Response:
        url = f"{self.endpoint.base_url.rstrip('/')}{path}"
        for attempt in range(self.retries + 1):
            try:
                resp = self.session.get(url, params=params, timeout=self.timeout, stream=stream)
            except (requests.ConnectionError, requests.Timeout) as exc:
                if attempt == self.retries:
                    raise IngestError(f"{self.endpoint.platform_id}: {path} unreachable: {exc}") from exc
                time.sleep(min(2**attempt * 0.2, 10))
                continue
            if resp.status_code == 401:
                raise AuthenticationError(
                    f"platform {self.endpoint.platform_id} refused the token (HTTP 401 on {path}); "
                    "check the Airflow Connection's password"
                )
            if resp.status_code in (429, 500, 502, 503, 504) and attempt < self.retries:
                wait = float(resp.headers.get("Retry-After", min(2**attempt * 0.2, 10)))
                log.warning("%s: HTTP %s on %s, retrying in %.1fs", self.endpoint.platform_id, resp.status_code, path, wait)
                time.sleep(wait)
                continue
            if resp.status_code != 200:
                raise IngestError(
                    f"{self.endpoint.platform_id}: HTTP {resp.status_code} on {path}: {resp.text[:300]}"
                )
            return resp
        raise AssertionError("unreachable")

    def pages(self, start: datetime, end: datetime) -> Iterator[list[dict]]:
        params = {"start": _iso(start), "end": _iso(end), "page_size": self.page_size}
        cursor = None
        while True:
            body = self._get("/v1/generations", dict(params, **({"cursor": cursor} if cursor else {}))).json()
            yield body["records"]
            cursor = body.get("next_cursor")
            if not cursor:
                return

    def manifest(self, start: datetime, end: datetime) -> dict:
        return self._get("/v1/generations/manifest", {"start": _iso(start), "end": _iso(end)}).json()

    def model_versions(self) -> list[str]:
        return self._get("/v1/models").json()["model_versions"]

    def download_model_version(self, version: str, dest: Path) -> dict:
        """Fetch a licensed model version and check every file against the platform's sha256."""
        info = self._get(f"/v1/models/{version}").json()
        for f in info["files"]:
            target = dest / f["name"]
            if target.exists() and _sha256(target) == f["sha256"]:
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            data = self._get(f"/v1/models/{version}/files/{f['name']}").content
            if hashlib.sha256(data).hexdigest() != f["sha256"]:
                raise IngestError(f"{version}/{f['name']}: sha256 differs from the platform's listing")
            target.write_bytes(data)
        return info


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class Rejection:
    rule: str
    reason: str


def validate(rec: dict, model_versions: set[str], start: datetime, end: datetime) -> dict | Rejection:
    """A loadable row, or the first rule the record breaks, in words that name the record."""
    gid = rec.get("generation_id") if isinstance(rec, dict) else None
    who = f"generation {gid!r}" if gid else "record without generation_id"
    if not isinstance(rec, dict):
        return Rejection("not_an_object", f"{who}: record is not a JSON object")
    missing = [k for k in REQUIRED if rec.get(k) in (None, "")]
    if missing:
        return Rejection("missing_field", f"{who}: missing field(s) {', '.join(missing)}")
    if rec.get("schema_version", 1) not in SUPPORTED_SCHEMA_VERSIONS:
        return Rejection("schema_version", f"{who}: schema_version {rec.get('schema_version')!r} not supported")
    try:
        created = datetime.fromisoformat(str(rec["created_at"]).replace("Z", "+00:00"))
        if created.tzinfo is None:
            raise ValueError("no UTC offset")
    except ValueError as exc:
        return Rejection("bad_timestamp", f"{who}: created_at {rec['created_at']!r}: {exc}")
    if not start <= created < end:
        return Rejection(
            "outside_window", f"{who}: created_at {rec['created_at']} outside window [{_iso(start)}, {_iso(end)})"
        )
    if rec["model_version"] not in model_versions:
        return Rejection("unknown_model_version", f"{who}: model_version {rec['model_version']!r} is not licensed")
    revenue = rec["revenue"]
    try:
        amount = Decimal(str(revenue["amount"]))
        currency = str(revenue["currency"])
    except (InvalidOperation, KeyError, TypeError):
        return Rejection("bad_revenue", f"{who}: revenue {revenue!r} is not {{amount, currency}}")
    if not amount.is_finite() or amount < 0:
        return Rejection("negative_revenue", f"{who}: revenue amount {revenue['amount']} is negative")
    if amount != amount.quantize(Decimal("0.000001")):
        return Rejection("revenue_precision", f"{who}: revenue {amount} has more than 6 decimals")
    if currency not in KNOWN_CURRENCIES:
        return Rejection("unknown_currency", f"{who}: currency {currency!r} is not supported")
    tokens = rec["output"].get("tokens") if isinstance(rec["output"], dict) else None
    if not isinstance(tokens, list) or not tokens or not all(isinstance(t, int) for t in tokens):
        return Rejection("bad_output", f"{who}: output.tokens must be a non-empty list of integers")
    territory = str(rec["territory"])
    if len(territory) != 2 or not territory.isalpha() or not territory.isupper():
        return Rejection("bad_territory", f"{who}: territory {territory!r} is not an ISO 3166 alpha-2 code")
    return {
        "generation_id": str(gid),
        "model_version": rec["model_version"],
        "created_at": created.astimezone(UTC).replace(tzinfo=None),
        "style": str(rec["style"]),
        "prompt": rec.get("prompt"),
        "output_tokens": tokens,
        "territory": territory,
        "revenue_amount": amount,
        "revenue_currency": currency,
    }


def _parseable_amount(rec: dict) -> tuple[str, Decimal] | None:
    try:
        return str(rec["revenue"]["currency"]), Decimal(str(rec["revenue"]["amount"]))
    except (InvalidOperation, KeyError, TypeError):
        return None


RAW_SCHEMA = pa.schema(
    [
        ("platform_id", pa.string()),
        ("generation_id", pa.string()),
        ("model_version", pa.string()),
        ("created_at", pa.timestamp("us")),
        ("style", pa.string()),
        ("prompt", pa.string()),
        ("output_tokens", pa.list_(pa.int32())),
        ("territory", pa.string()),
        ("revenue_amount", pa.decimal128(18, 6)),
        ("revenue_currency", pa.string()),
    ]
)


def ingest_window(
    warehouse_path: Path,
    lake: Path,
    endpoint: PlatformEndpoint,
    start: datetime,
    end: datetime,
    run_id: str,
    page_size: int = 200,
) -> dict:
    """Pull [start, end) from one platform and land it. Safe to re-run: nothing doubles."""
    client = GenerationLogClient(endpoint, page_size=page_size)
    licensed = set(client.model_versions())
    rows: dict[str, dict] = {}
    rejected: dict[str, tuple[dict, Rejection, str]] = {}
    received: dict[str, dict] = {}  # distinct records by payload, for reconciliation
    for page in client.pages(start, end):
        for rec in page:
            payload = json.dumps(rec, sort_keys=True)
            digest = hashlib.sha256(payload.encode()).hexdigest()
            key = str(rec.get("generation_id")) if isinstance(rec, dict) and rec.get("generation_id") else digest
            if key in received:
                if json.dumps(received[key], sort_keys=True) == payload:
                    continue  # the same record delivered twice counts once
                rej = Rejection("conflicting_duplicate", f"generation {key!r}: delivered twice with different content")
                rejected[digest] = (rec, rej, payload)
                rows.pop(key, None)
                continue
            received[key] = rec
            outcome = validate(rec, licensed, start, end)
            if isinstance(outcome, Rejection):
                rejected[digest] = (rec, outcome, payload)
            else:
                rows[key] = outcome

    manifest = client.manifest(start, end)
    _reconcile(endpoint.platform_id, start, end, manifest, received)

    table = pa.Table.from_pylist(
        [dict(r, platform_id=endpoint.platform_id) for r in rows.values()], schema=RAW_SCHEMA
    )
    raw_file = None
    if table.num_rows:
        part = lake / "raw" / "generations" / f"platform={endpoint.platform_id}" / f"date={start:%Y-%m-%d}"
        part.mkdir(parents=True, exist_ok=True)
        # One file per window, named by the window: a re-pull replaces it instead of adding one.
        raw_file = part / f"window-{start:%Y%m%dT%H%M%S}-{end:%Y%m%dT%H%M%S}.parquet"
        pq.write_table(table, raw_file)

    now = datetime.now(UTC).replace(tzinfo=None)
    quarantine = pd.DataFrame(
        [
            {
                "platform_id": endpoint.platform_id,
                "payload_sha256": digest,
                "generation_id": rec.get("generation_id") if isinstance(rec, dict) else None,
                "rule": rej.rule,
                "reason": rej.reason,
                "raw_payload": payload,
            }
            for digest, (rec, rej, payload) in rejected.items()
        ],
        columns=["platform_id", "payload_sha256", "generation_id", "rule", "reason", "raw_payload"],
    )
    params = {
        "platform_id": endpoint.platform_id,
        "window_start": start.astimezone(UTC).replace(tzinfo=None),
        "window_end": end.astimezone(UTC).replace(tzinfo=None),
        "run_id": run_id,
        "now": now,
    }
    with warehouse(warehouse_path) as con, transaction(con):
        count = {"platform_id": endpoint.platform_id}
        before = query(con, "marts/row_counts", count)[0]["raw_generations"]
        con.register("staged_generations", table)
        run_sql(con, "loads/raw_generations", params)
        after = query(con, "marts/row_counts", count)[0]["raw_generations"]
        con.register("staged_quarantine", quarantine)
        run_sql(con, "loads/raw_quarantine", params)
        summary = {
            "platform_id": endpoint.platform_id,
            "window_start": _iso(start),
            "window_end": _iso(end),
            "received": len(received),
            "valid": table.num_rows,
            "loaded_new": after - before,
            "already_loaded": table.num_rows - (after - before),
            "quarantined": len(rejected),
            "reported_count": int(manifest["count"]),
            "reported_revenue": str(sum((Decimal(v) for v in manifest["revenue"].values()), Decimal(0))),
            "raw_file": str(raw_file) if raw_file else None,
        }
        run_sql(con, "loads/ingest_window", dict(params, **summary))
    log.info("ingest %s", summary)
    return summary


def _reconcile(platform_id: str, start: datetime, end: datetime, manifest: dict, received: dict) -> None:
    """Loaded + quarantined must be what the platform says it sent, by count and by revenue."""
    window = f"[{_iso(start)}, {_iso(end)})"
    if int(manifest["count"]) != len(received):
        raise ReconciliationError(
            f"platform {platform_id}, window {window}: manifest reports {manifest['count']} records, "
            f"received {len(received)} (difference {int(manifest['count']) - len(received)})"
        )
    got: dict[str, Decimal] = {}
    for rec in received.values():
        parsed = _parseable_amount(rec) if isinstance(rec, dict) else None
        if parsed:
            got[parsed[0]] = got.get(parsed[0], Decimal(0)) + parsed[1]
    for currency, reported in manifest["revenue"].items():
        diff = Decimal(reported) - got.get(currency, Decimal(0))
        if diff != 0:
            raise ReconciliationError(
                f"platform {platform_id}, window {window}: manifest reports {reported} {currency}, "
                f"received {got.get(currency, Decimal(0))} (difference {diff})"
            )
