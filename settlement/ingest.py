"""Ingest a platform's generation log for one time window: pull, validate, land, reconcile.

Every record received ends in exactly one place: `raw.generations` (once, however often it
was delivered) or `raw.quarantine` (with the rule it broke and its raw payload). The counts
then have to match what the platform's manifest says it sent for the window.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import os
import random
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from email.utils import parsedate_to_datetime
from pathlib import Path, PurePosixPath
from urllib.parse import quote, urlsplit

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import requests

from settlement.warehouse import query, run_sql, transaction, warehouse

log = logging.getLogger(__name__)

SUPPORTED_SCHEMA_VERSIONS = {1}
# ISO 4217 codes we can settle in; anything else is quarantined rather than guessed at.
KNOWN_CURRENCIES = {"USD", "EUR", "GBP", "JPY", "CAD", "AUD", "CHF", "SEK", "BRL"}
REQUIRED = (
    "generation_id",
    "model_version",
    "created_at",
    "style",
    "output",
    "territory",
    "revenue",
)


class IngestError(RuntimeError):
    pass


class AuthenticationError(IngestError):
    pass


class HTTPStatusError(IngestError):
    """The platform answered a status that is not retried (400, 403, 404...)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class ReconciliationError(IngestError):
    pass


LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1"}
# A platform's file name: relative, at most MAX_NAME_DEPTH components (the API lists
# "checkpoints/ckpt-250.pt"), each one a safe path component.
SAFE_COMPONENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
MAX_NAME_DEPTH = 3


def _is_loopback(host: str) -> bool:
    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class PlatformEndpoint:
    platform_id: str
    base_url: str
    token: str = field(repr=False)  # never printed, never logged

    def __post_init__(self) -> None:
        # A bearer token in clear text is anyone's on the way: https, loopback excepted.
        url = urlsplit(self.base_url)
        if url.scheme == "https" and url.hostname:
            return
        if url.scheme == "http" and url.hostname and _is_loopback(url.hostname):
            return
        raise IngestError(
            f"platform {self.platform_id}: {self.base_url!r} must use https (plain http only on loopback); "
            "the bearer token would travel in clear text"
        )

    @classmethod
    def from_env(cls, platform_id: str) -> PlatformEndpoint:
        """For library use outside Airflow: TRIBUTARY_PLATFORM_<ID>_URL and _TOKEN."""
        prefix = f"TRIBUTARY_PLATFORM_{platform_id.upper().replace('-', '_')}"
        url, token = os.environ.get(f"{prefix}_URL"), os.environ.get(f"{prefix}_TOKEN")
        if not url or not token:
            raise IngestError(f"platform {platform_id}: set {prefix}_URL and {prefix}_TOKEN")
        return cls(platform_id, url, token)


@dataclass(frozen=True)
class ClientOptions:
    """How patient the client is. Defaults suit a real platform; tests shorten them by env."""

    timeout: float = 10.0  # seconds per request
    retries: int = 6  # further attempts after the first
    backoff: float = 0.5  # first wait; doubles per attempt, with jitter
    max_wait: float = 60.0  # no single wait (Retry-After included) is longer than this
    page_size: int = 200

    @classmethod
    def from_env(cls) -> ClientOptions:
        env = os.environ.get
        return cls(
            timeout=float(env("TRIBUTARY_INGEST_TIMEOUT", cls.timeout)),
            retries=int(env("TRIBUTARY_INGEST_RETRIES", cls.retries)),
            backoff=float(env("TRIBUTARY_INGEST_BACKOFF", cls.backoff)),
            max_wait=float(env("TRIBUTARY_INGEST_MAX_WAIT", cls.max_wait)),
            page_size=int(env("TRIBUTARY_INGEST_PAGE_SIZE", cls.page_size)),
        )


RETRYABLE_STATUS = (429, 500, 502, 503, 504)
_sleep = time.sleep  # one seam, so tests record waits instead of sleeping them


class GenerationLogClient:
    """HTTP client of the Generation Log API (docs/generation-log-api.yaml)."""

    def __init__(
        self,
        endpoint: PlatformEndpoint,
        page_size: int | None = None,
        timeout: float | None = None,
        retries: int | None = None,
        options: ClientOptions | None = None,
    ):
        opts = options or ClientOptions.from_env()
        if timeout is not None or retries is not None:
            opts = replace(
                opts,
                timeout=timeout or opts.timeout,
                retries=opts.retries if retries is None else retries,
            )
        self.endpoint, self.page_size, self.options = endpoint, page_size or opts.page_size, opts
        self.session = requests.Session()
        # The token lives only in this header; requests never logs headers and neither do we.
        self.session.headers["Authorization"] = f"Bearer {endpoint.token}"
        self._rng = random.Random()

    def _wait(self, attempt: int, retry_after: str | None = None) -> float:
        if retry_after:
            try:
                wait = float(retry_after)
            except ValueError:  # an HTTP-date
                try:
                    wait = (parsedate_to_datetime(retry_after) - datetime.now(UTC)).total_seconds()
                except (TypeError, ValueError):
                    wait = self.options.backoff * 2**attempt
        else:
            # Full jitter: concurrent workers retrying one platform do not retry in step.
            wait = self.options.backoff * 2**attempt * (0.5 + self._rng.random() / 2)
        return max(0.0, min(wait, self.options.max_wait))

    def _get(
        self, path: str, params: dict | None = None, stream: bool = False
    ) -> requests.Response:
        return self._request(path, params, stream=stream)[0]

    def _get_json(self, path: str, params: dict | None = None, shape=None) -> dict:
        return self._request(path, params, shape=shape or (lambda b: isinstance(b, dict)))[1]

    def _request(self, path: str, params: dict | None, stream: bool = False, shape=None):
        """GET with retries. Connection errors, timeouts, 429/5xx and bodies that are cut short
        or not the JSON the API promises are all retried; 401 and other 4xx are not."""
        url = f"{self.endpoint.base_url.rstrip('/')}{path}"
        pid, problem = self.endpoint.platform_id, ""
        for attempt in range(self.options.retries + 1):
            retry_after = None
            try:
                resp = self.session.get(
                    url, params=params, timeout=self.options.timeout, stream=stream
                )
            except requests.RequestException as exc:
                problem = f"{type(exc).__name__}"
            else:
                if resp.status_code == 401:
                    raise AuthenticationError(
                        f"platform {pid} refused the token (HTTP 401 on {path}); "
                        "check the Airflow Connection's password"
                    )
                if resp.status_code in RETRYABLE_STATUS:
                    problem, retry_after = (
                        f"HTTP {resp.status_code}",
                        resp.headers.get("Retry-After"),
                    )
                elif resp.status_code != 200:
                    raise HTTPStatusError(
                        resp.status_code,
                        f"platform {pid}: HTTP {resp.status_code} on {path}: {resp.text[:300]}",
                    )
                else:
                    self._respect_rate_limit(resp)
                    if shape is None:
                        return resp, None
                    try:
                        body = resp.json()
                        if shape(body):
                            return resp, body
                        problem = "response body misses required fields"
                    except (ValueError, requests.RequestException):
                        problem = f"response body is not complete JSON ({len(resp.content)} bytes)"
            if attempt == self.options.retries:
                break
            wait = self._wait(attempt, retry_after)
            log.warning("%s: %s on %s, retry %d in %.1fs", pid, problem, path, attempt + 1, wait)
            _sleep(wait)
        raise IngestError(
            f"platform {pid}: {path} failed after {self.options.retries + 1} attempts: {problem}"
        )

    def _respect_rate_limit(self, resp: requests.Response) -> None:
        """Out of requests for this rate-limit window: wait for its reset instead of being
        refused with a 429 on the next call."""
        if resp.status_code == 200 and resp.headers.get("X-RateLimit-Remaining") == "0":
            try:
                wait = min(float(resp.headers.get("X-RateLimit-Reset", "1")), self.options.max_wait)
            except ValueError:
                wait = 1.0
            log.info("%s: rate limit reached, waiting %.1fs", self.endpoint.platform_id, wait)
            _sleep(wait)

    def pages(self, start: datetime, end: datetime) -> Iterator[list[dict]]:
        params = {"start": _iso(start), "end": _iso(end), "page_size": self.page_size}
        cursor = None
        while True:
            body = self._get_json(
                "/v1/generations",
                dict(params, **({"cursor": cursor} if cursor else {})),
                shape=lambda b: (
                    isinstance(b, dict)
                    and isinstance(b.get("records"), list)
                    and "next_cursor" in b
                ),
            )
            yield body["records"]
            cursor = body.get("next_cursor")
            if not cursor:
                return

    def manifest(self, start: datetime, end: datetime) -> dict:
        return self._get_json(
            "/v1/generations/manifest",
            {"start": _iso(start), "end": _iso(end)},
            shape=lambda b: (
                isinstance(b, dict)
                and isinstance(b.get("count"), int)
                and isinstance(b.get("revenue"), dict)
            ),
        )

    def model_versions(self) -> list[str]:
        return self._get_json(
            "/v1/models",
            shape=lambda b: isinstance(b, dict) and isinstance(b.get("model_versions"), list),
        )["model_versions"]

    def download_model_version(self, version: str, dest: Path) -> dict:
        """Fetch a licensed model version and check every file against the platform's sha256."""
        info = self._get_json(
            f"/v1/models/{version}",
            shape=lambda b: isinstance(b, dict) and isinstance(b.get("files"), list),
        )
        for f in info["files"]:
            target = model_file_target(dest, f.get("name") if isinstance(f, dict) else None)
            if target.exists() and _sha256(target) == f["sha256"]:
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            data = self._get(f"/v1/models/{version}/files/{f['name']}").content
            if hashlib.sha256(data).hexdigest() != f["sha256"]:
                raise IngestError(
                    f"{version}/{f['name']}: sha256 differs from the platform's listing"
                )
            target.write_bytes(data)
        return info


def model_version_dir(models_root: Path, platform_id: str, version: str) -> Path:
    """Where a platform's model version is kept: one safe path component under the platform's
    folder (the version string comes from the platform)."""
    if not isinstance(version, str) or not SAFE_COMPONENT.match(version):
        raise IngestError(f"platform {platform_id}: model version {version!r} refused: it must be one path "
                          "component of letters, digits, '.', '_' or '-'")  # fmt: skip
    return models_root / platform_id / version


def model_file_target(dest: Path, name) -> Path:
    """The local path of a file a platform lists, checked: relative, no '..', no empty or
    hidden component, allowed characters only, and resolving inside `dest`."""
    parts = PurePosixPath(name).parts if isinstance(name, str) and name else ()
    ok = (
        0 < len(parts) <= MAX_NAME_DEPTH
        and "/".join(parts) == name
        and all(SAFE_COMPONENT.match(part) and part not in (".", "..") for part in parts)
    )
    target = dest.joinpath(*parts) if ok else None
    if not ok or not target.resolve().is_relative_to(dest.resolve()):
        raise IngestError(
            f"platform file name {name!r} refused: it must be a relative name of at most {MAX_NAME_DEPTH} parts, "
            "each of letters, digits, '.', '_' or '-', inside the model's folder"
        )
    return target


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class Rejection:
    rule: str
    reason: str


def validate(
    rec: dict, model_versions: set[str], start: datetime, end: datetime
) -> dict | Rejection:
    """A loadable row, or the first rule the record breaks, in words that name the record."""
    gid = rec.get("generation_id") if isinstance(rec, dict) else None
    who = f"generation {gid!r}" if gid else "record without generation_id"
    if not isinstance(rec, dict):
        return Rejection("not_an_object", f"{who}: record is not a JSON object")
    missing = [k for k in REQUIRED if rec.get(k) in (None, "")]
    if missing:
        return Rejection("missing_field", f"{who}: missing field(s) {', '.join(missing)}")
    if rec.get("schema_version", 1) not in SUPPORTED_SCHEMA_VERSIONS:
        return Rejection(
            "schema_version", f"{who}: schema_version {rec.get('schema_version')!r} not supported"
        )
    try:
        created = datetime.fromisoformat(str(rec["created_at"]))
        if created.tzinfo is None:
            raise ValueError("no UTC offset")
    except ValueError as exc:
        return Rejection("bad_timestamp", f"{who}: created_at {rec['created_at']!r}: {exc}")
    if not start <= created < end:
        return Rejection(
            "outside_window",
            f"{who}: created_at {rec['created_at']} outside window [{_iso(start)}, {_iso(end)})",
        )
    if rec["model_version"] not in model_versions:
        return Rejection(
            "unknown_model_version",
            f"{who}: model_version {rec['model_version']!r} is not licensed",
        )
    revenue = rec["revenue"]
    try:
        amount = Decimal(str(revenue["amount"]))
        currency = str(revenue["currency"])
    except (InvalidOperation, KeyError, TypeError):
        return Rejection("bad_revenue", f"{who}: revenue {revenue!r} is not {{amount, currency}}")
    if not amount.is_finite() or amount < 0:
        return Rejection(
            "negative_revenue", f"{who}: revenue amount {revenue['amount']} is negative"
        )
    if amount != amount.quantize(Decimal("0.000001")):
        return Rejection("revenue_precision", f"{who}: revenue {amount} has more than 6 decimals")
    if currency not in KNOWN_CURRENCIES:
        return Rejection("unknown_currency", f"{who}: currency {currency!r} is not supported")
    output = check_output(rec["output"], who)
    if isinstance(output, Rejection):
        return output
    territory = str(rec["territory"])
    if len(territory) != 2 or not territory.isalpha() or not territory.isupper():
        return Rejection(
            "bad_territory", f"{who}: territory {territory!r} is not an ISO 3166 alpha-2 code"
        )
    return {
        "generation_id": str(gid),
        "model_version": rec["model_version"],
        "created_at": created.astimezone(UTC).replace(tzinfo=None),
        "style": str(rec["style"]),
        "prompt": rec.get("prompt"),
        "territory": territory,
        "revenue_amount": amount,
        "revenue_currency": currency,
        **output,
    }


# --- outputs: tokens or audio ----------------------------------------------------------------

AUDIO_FORMATS = {"flac": (b"fLaC",), "wav": (b"RIFF", b"RIFX")}  # what the first bytes must be
MAX_AUDIO_BYTES = 64 * 1024 * 1024
# Attempts at one audio file whose body arrives short or broken: a transport fault clears in
# a few tries (the sandbox faults one request at most twice in a row), while a platform that
# serves the wrong file would cost the whole client retry budget per record.
AUDIO_ATTEMPTS = 4
_SHA256 = re.compile(r"[0-9a-f]{64}")


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def check_output(output, who: str) -> dict | Rejection:
    """The output columns of a record, or why its output is unusable.

    An output is either tokens (a non-empty list of integers) or audio (a file the platform
    serves at /v1/generations/{id}/audio, described by sha256, bytes, format, sample_rate
    and duration_s: docs/generation-log-api.yaml). The audio is fetched and checked later,
    by fetch_audio_outputs; here only its description is."""
    out = output if isinstance(output, dict) else {}
    tokens, audio = out.get("tokens"), out.get("audio")
    if tokens is not None and audio is not None:
        return Rejection("bad_output", f"{who}: output has both tokens and audio; a record "
                         "carries one of them")  # fmt: skip
    none = {"output_kind": "tokens", "output_tokens": None, "output_audio_path": None,
            "output_audio_sha256": None, "output_audio_bytes": None,
            "output_audio_sample_rate": None, "output_audio_duration_s": None}  # fmt: skip
    if audio is None:
        if not isinstance(tokens, list) or not tokens or not all(_is_int(t) for t in tokens):
            return Rejection("bad_output", f"{who}: output.tokens must be a non-empty list of "
                             "integers (or output.audio must describe an audio file)")  # fmt: skip
        return none | {"output_tokens": tokens}
    if not isinstance(audio, dict):
        return Rejection("bad_output", f"{who}: output.audio must be an object")
    sha, size, fmt = audio.get("sha256"), audio.get("bytes"), audio.get("format")
    rate, duration = audio.get("sample_rate"), audio.get("duration_s")
    is_number = isinstance(duration, int | float) and not isinstance(duration, bool)
    checks = [
        (isinstance(sha, str) and bool(_SHA256.fullmatch(sha)), "sha256 must be 64 hex digits"),
        (_is_int(size) and 0 < size <= MAX_AUDIO_BYTES, f"bytes must be in 1..{MAX_AUDIO_BYTES}"),
        (fmt in AUDIO_FORMATS, f"format must be one of {sorted(AUDIO_FORMATS)}"),
        (_is_int(rate) and 8000 <= rate <= 192000, "sample_rate must be an integer 8000..192000"),
        (is_number and 0 < duration <= 3600, "duration_s must be a number in (0, 3600]"),
    ]
    problem = next((why for ok, why in checks if not ok), None)
    if problem:
        return Rejection("bad_output", f"{who}: output.audio.{problem}")
    return none | {
        "output_kind": "audio",
        "output_audio_sha256": sha,
        "output_audio_bytes": size,
        "output_audio_sample_rate": rate,
        "output_audio_duration_s": float(duration),
        "_audio_format": fmt,  # where the file lands; not a column
    }


class AudioRejected(Exception):
    def __init__(self, rule: str, reason: str):
        super().__init__(reason)
        self.rule, self.reason = rule, reason


def audio_lake_path(platform_id: str, sha256: str, fmt: str) -> str:
    """Where an audio output lives, relative to the lake: named by its content alone, never by
    anything the platform named it."""
    return f"audio/platform={platform_id}/{sha256}.{fmt}"


def fetch_audio(
    client: GenerationLogClient, lake: Path, row: dict, landed_sha: str | None = None
) -> str:
    """Download a validated audio row's file into the lake and return its lake-relative path;
    AudioRejected(rule, reason) if it cannot be had as described.

    A short or broken body is retried like any transport fault; a longer one is refused; a
    full-size body with another sha256 is fetched once more, then refused. landed_sha: the
    sha256 this generation was landed with before; if it is the record's and the lake still
    holds those bytes, nothing is fetched (so every generation is fetched from the platform
    at least once, even when another generation landed the same bytes)."""
    gid, sha, size, fmt = (row["generation_id"], row["output_audio_sha256"],
                           row["output_audio_bytes"], row["_audio_format"])  # fmt: skip
    rel = audio_lake_path(client.endpoint.platform_id, sha, fmt)
    dest = lake / rel
    landed = landed_sha == sha and dest.is_file() and dest.stat().st_size == size
    if landed and _sha256(dest) == sha:
        return rel
    who = f"generation {gid!r}"
    path = f"/v1/generations/{quote(gid, safe='')}/audio"
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    wrong_sha = 0
    rule, reason = "audio_unreachable", f"{who}: audio could not be fetched"
    try:
        for attempt in range(AUDIO_ATTEMPTS):
            try:
                resp = client._get(path, stream=True)
            except AuthenticationError:
                raise
            except HTTPStatusError as exc:
                if exc.status == 404:
                    raise AudioRejected("audio_missing", f"{who}: the platform has no audio "
                                        f"file for it (HTTP 404 on {path})") from None  # fmt: skip
                raise AudioRejected("audio_unreachable", f"{who}: {exc}") from None
            except IngestError as exc:
                raise AudioRejected("audio_unreachable", f"{who}: {exc}") from None
            h, got = hashlib.sha256(), 0
            try:
                with tmp.open("wb") as fh:
                    for chunk in resp.iter_content(1 << 16):
                        got += len(chunk)
                        if got > size:
                            break  # longer than declared: never read an unbounded body
                        h.update(chunk)
                        fh.write(chunk)
            except requests.RequestException as exc:
                rule = "audio_unreachable"
                reason = f"{who}: audio body broke off ({type(exc).__name__})"
            else:
                if got > size:  # no transport fault makes a body longer: refused at once
                    raise AudioRejected("audio_size_mismatch", f"{who}: audio is longer than "
                                        f"the {size} bytes the record says")  # fmt: skip
                if got != size:
                    rule, reason = "audio_size_mismatch", (
                        f"{who}: audio is {got} bytes, the record says {size}")
                elif h.hexdigest() != sha:
                    rule, reason = "audio_sha256_mismatch", (
                        f"{who}: audio sha256 {h.hexdigest()} differs from the record's {sha}")
                    wrong_sha += 1
                    if wrong_sha >= 2:  # the same full-size bytes twice: the record is wrong
                        break
                    continue
                else:
                    with tmp.open("rb") as fh:
                        head = fh.read(4)
                    if not head.startswith(AUDIO_FORMATS[fmt]):
                        raise AudioRejected("audio_format_mismatch",
                                            f"{who}: audio bytes are not {fmt} (starts {head!r})")
                    os.replace(tmp, dest)  # whole and checked, or not there at all
                    return rel
            finally:
                resp.close()
            if attempt < AUDIO_ATTEMPTS - 1:
                _sleep(client._wait(attempt))
        raise AudioRejected(rule, reason)
    finally:
        tmp.unlink(missing_ok=True)


def fetch_audio_outputs(client, warehouse_path: Path, lake: Path, rows: dict, rejected: dict,
                        received: dict) -> dict:  # fmt: skip
    """Land the audio of every audio row; a row whose audio cannot be had as its record
    describes moves to the quarantine with the rule. Returns counts."""
    counts = {"audio_outputs": 0, "audio_quarantined": 0}
    audio_keys = [k for k, r in rows.items() if r["output_kind"] == "audio"]
    landed = {}
    if audio_keys:
        with warehouse(warehouse_path) as con:
            params = {"platform_id": client.endpoint.platform_id}
            landed = {r["generation_id"]: r["audio_sha256"]
                      for r in query(con, "marts/ingest_landed_audio", params)}  # fmt: skip
    for key in audio_keys:
        row = rows[key]
        try:
            row["output_audio_path"] = fetch_audio(client, Path(lake), row,
                                                   landed.get(row["generation_id"]))  # fmt: skip
            counts["audio_outputs"] += 1
            log.debug("%s: audio of %s at %s", client.endpoint.platform_id, key,
                      row["output_audio_path"])  # fmt: skip
        except AudioRejected as exc:
            rec = received[key]
            payload = json.dumps(rec, sort_keys=True)
            digest = hashlib.sha256(payload.encode()).hexdigest()
            rejected[digest] = (rec, Rejection(exc.rule, exc.reason), payload)
            del rows[key]
            counts["audio_quarantined"] += 1
        row.pop("_audio_format", None)
    return counts


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
        # an audio output (output_kind 'audio'): where it landed, relative to the lake, and
        # what the platform declared about it (raw.generation_audio in the warehouse)
        ("output_kind", pa.string()),
        ("output_audio_path", pa.string()),
        ("output_audio_sha256", pa.string()),
        ("output_audio_bytes", pa.int64()),
        ("output_audio_sample_rate", pa.int32()),
        ("output_audio_duration_s", pa.float64()),
    ]
)


def ingest_window(
    warehouse_path: Path,
    lake: Path,
    endpoint: PlatformEndpoint,
    start: datetime,
    end: datetime,
    run_id: str,
    page_size: int | None = None,
    client: GenerationLogClient | None = None,
) -> dict:
    """Pull [start, end) from one platform and land it. Safe to re-run: nothing doubles."""
    client = client or GenerationLogClient(endpoint, page_size=page_size)
    licensed = set(client.model_versions())
    for attempt in range(2):
        received, rows, rejected = _pull(client, licensed, start, end)
        manifest = client.manifest(start, end)
        try:
            _reconcile(endpoint.platform_id, start, end, manifest, received)
            break
        except ReconciliationError:
            # The platform may have filed records while we paged; one fresh pull tells a
            # moving window from a real mismatch.
            if attempt:
                raise
            log.warning(
                "%s: window %s did not reconcile, pulling it again",
                endpoint.platform_id,
                _iso(start),
            )
    audio = fetch_audio_outputs(client, warehouse_path, lake, rows, rejected, received)

    table = pa.Table.from_pylist(
        [dict(r, platform_id=endpoint.platform_id) for r in rows.values()], schema=RAW_SCHEMA
    )
    raw_file = _write_raw_parquet(table, lake, endpoint.platform_id, start, end)
    quarantine = _quarantine_frame(endpoint.platform_id, rejected)
    summary = {
        "platform_id": endpoint.platform_id,
        "window_start": _iso(start),
        "window_end": _iso(end),
        "received": len(received),
        "valid": table.num_rows,
        "quarantined": len(rejected),
        "reported_count": int(manifest["count"]),
        "reported_revenue": str(
            sum((Decimal(v) for v in manifest["revenue"].values()), Decimal(0))
        ),
        "manifest_sha256": manifest_digest(manifest),
        "raw_file": str(raw_file) if raw_file else None,
        **audio,
    }
    summary |= land(
        warehouse_path, endpoint.platform_id, start, end, run_id, table, quarantine, summary
    )
    log.info("ingest %s", summary)
    return summary


def _pull(client: GenerationLogClient, licensed: set[str], start: datetime, end: datetime):
    rows: dict[str, dict] = {}
    rejected: dict[str, tuple[dict, Rejection, str]] = {}
    received: dict[str, dict] = {}  # distinct records by generation id, for reconciliation
    for n, page in enumerate(client.pages(start, end)):
        log.debug("%s: page %d, %d records", client.endpoint.platform_id, n, len(page))
        for rec in page:
            payload = json.dumps(rec, sort_keys=True)
            digest = hashlib.sha256(payload.encode()).hexdigest()
            key = (
                str(rec.get("generation_id"))
                if isinstance(rec, dict) and rec.get("generation_id")
                else digest
            )
            if key in received:
                if json.dumps(received[key], sort_keys=True) == payload:
                    continue  # the same record delivered twice counts once
                rej = Rejection(
                    "conflicting_duplicate",
                    f"generation {key!r}: delivered twice with different content",
                )
                rejected[digest] = (rec, rej, payload)
                rows.pop(key, None)
                continue
            received[key] = rec
            outcome = validate(rec, licensed, start, end)
            if isinstance(outcome, Rejection):
                rejected[digest] = (rec, outcome, payload)
            else:
                rows[key] = outcome
    return received, rows, rejected


def manifest_digest(manifest: dict) -> str:
    """What a manifest says (count and revenue), as a digest: a change means new records."""
    core = {
        "count": int(manifest["count"]),
        "revenue": {k: str(v) for k, v in manifest["revenue"].items()},
    }
    return hashlib.sha256(json.dumps(core, sort_keys=True).encode()).hexdigest()


def _write_raw_parquet(
    table: pa.Table, lake: Path, platform_id: str, start: datetime, end: datetime
):
    if not table.num_rows:
        return None
    part = lake / "raw" / "generations" / f"platform={platform_id}" / f"date={start:%Y-%m-%d}"
    part.mkdir(parents=True, exist_ok=True)
    # One file per window, named by the window: a re-pull replaces it instead of adding one.
    # Written aside and renamed, so a killed process never leaves half a file under the name.
    raw_file = part / f"window-{start:%Y%m%dT%H%M%S}-{end:%Y%m%dT%H%M%S}.parquet"
    tmp = raw_file.with_suffix(f".{os.getpid()}.tmp")
    # A writer killed mid-file left its temporary file behind: one process lands a platform's
    # windows at a time (the ingest DAG runs one at a time), so any other is a leftover.
    for leftover in part.glob(f"{raw_file.stem}.*.tmp"):
        leftover.unlink(missing_ok=True)
    # Rows in a fixed order, so the same records always make the same bytes: a rerun of a
    # window (after a kill, or a re-pull) rewrites the file, and the digest every earlier
    # ingest row and settlement manifest recorded for it must still match. A window's valid
    # rows are deduplicated, so generation_id orders them completely.
    pq.write_table(table.sort_by([("generation_id", "ascending")]), tmp)
    os.replace(tmp, raw_file)
    return raw_file


QUARANTINE_COLUMNS = [
    "platform_id",
    "payload_sha256",
    "generation_id",
    "rule",
    "reason",
    "raw_payload",
]


def _quarantine_frame(platform_id: str, rejected: dict) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "platform_id": platform_id,
                "payload_sha256": digest,
                "generation_id": rec.get("generation_id") if isinstance(rec, dict) else None,
                "rule": rej.rule,
                "reason": rej.reason,
                "raw_payload": payload,
            }
            for digest, (rec, rej, payload) in rejected.items()
        ],
        columns=QUARANTINE_COLUMNS,
    )


def land(
    warehouse_path: Path,
    platform_id: str,
    start: datetime,
    end: datetime,
    run_id: str,
    table,
    quarantine,
    summary: dict,
) -> dict:
    """One transaction: flag late arrivals, insert new generations and quarantine rows, log
    the window, move the watermark. Killed half way, it leaves nothing behind."""
    params = {
        "platform_id": platform_id,
        "window_start": start.astimezone(UTC).replace(tzinfo=None),
        "window_end": end.astimezone(UTC).replace(tzinfo=None),
        "run_id": run_id,
        "now": datetime.now(UTC).replace(tzinfo=None),
        # The landed file's digest goes into the run manifest of every settlement that reads it.
        "raw_file_sha256": _sha256(Path(summary["raw_file"])) if summary.get("raw_file") else None,
    }
    with warehouse(warehouse_path) as con, transaction(con):
        count = {"platform_id": platform_id}
        before = query(con, "marts/row_counts", count)[0]["raw_generations"]
        late_before = query(con, "marts/ingest_late_count", count)[0]["n"]
        con.register("staged_generations", table)
        # Flagged before the insert: "new" means not in raw.generations yet.
        run_sql(con, "loads/raw_late_arrivals", params)
        run_sql(con, "loads/raw_generations", params)
        run_sql(con, "loads/raw_generation_audio", params)
        after = query(con, "marts/row_counts", count)[0]["raw_generations"]
        con.register("staged_quarantine", quarantine)
        run_sql(con, "loads/raw_quarantine", params)
        n_valid = summary.get("valid", table.num_rows)
        out = {
            "loaded_new": after - before,
            "already_loaded": n_valid - (after - before),
            "late_flagged": query(con, "marts/ingest_late_count", count)[0]["n"] - late_before,
        }
        run_sql(con, "loads/ingest_window", dict(params, **summary, **out))
        run_sql(con, "loads/ingest_watermark", params)
        con.unregister("staged_generations")
        con.unregister("staged_quarantine")
    return out


def watermark(warehouse_path: Path, platform_id: str) -> datetime | None:
    """End of the platform's contiguous reconciled windows: where the next pull resumes."""
    with warehouse(warehouse_path) as con:
        rows = query(con, "marts/ingest_watermark", {"platform_id": platform_id})
    return rows[0]["watermark"].replace(tzinfo=UTC) if rows else None


def _last_manifest(
    warehouse_path: Path, platform_id: str, start: datetime, end: datetime
) -> str | None:
    params = {
        "platform_id": platform_id,
        "window_start": start.astimezone(UTC).replace(tzinfo=None),
        "window_end": end.astimezone(UTC).replace(tzinfo=None),
    }
    with warehouse(warehouse_path) as con:
        rows = query(con, "marts/ingest_last_manifest", params)
    return rows[0]["manifest_sha256"] if rows else None


def ingest_platform(
    warehouse_path: Path,
    lake: Path,
    endpoint: PlatformEndpoint,
    start: datetime,
    end: datetime,
    run_id: str,
    window: timedelta | None = None,
    lookback: int = 2,
    max_catchup: int = 31,
    page_size: int | None = None,
) -> dict:
    """Incremental pull of one platform for a data interval.

    1. catch up: windows between the stored watermark and `start` that a missed run skipped;
    2. the interval itself, window by window (always pulled: a rerun re-checks it, adds nothing);
    3. late data: the `lookback` windows before `start` that were ingested already are checked
       against a fresh manifest and pulled again only if the platform now reports more.
    """
    step = window or (end - start)
    client = GenerationLogClient(endpoint, page_size=page_size)
    mark = watermark(warehouse_path, endpoint.platform_id)
    catchup: list[tuple[datetime, datetime]] = []
    if mark is not None and mark < start:
        t = start
        while t > mark and len(catchup) < max_catchup:
            catchup.insert(0, (max(t - step, mark), t))
            t -= step
    planned = catchup + [(t, min(t + step, end)) for t in _steps(start, end, step)]
    done, failed = [], []
    for a, b in planned:
        # A window that does not reconcile is one bad day, not a reason to leave the rest of
        # the month unpulled: the others land, the run still fails naming it, and the month's
        # completeness gate names the missing day until a rerun lands it.
        try:
            done.append(ingest_window(warehouse_path, lake, endpoint, a, b, run_id, client=client))
        except ReconciliationError as err:
            log.error("%s", err)
            failed.append(str(err))
    rechecked = []
    for k in range(lookback, 0, -1):
        a, b = start - k * step, start - (k - 1) * step
        if (a, b) in planned:
            continue
        seen = _last_manifest(warehouse_path, endpoint.platform_id, a, b)
        if seen is None or manifest_digest(client.manifest(a, b)) == seen:
            continue
        log.info(
            "%s: window %s grew since it was pulled; pulling late records",
            endpoint.platform_id,
            _iso(a),
        )
        rechecked.append(ingest_window(warehouse_path, lake, endpoint, a, b, run_id, client=client))
    windows = done + rechecked
    if failed:
        listed = "\n".join(f"  - {f}" for f in failed)
        raise ReconciliationError(
            f"platform {endpoint.platform_id}: {len(failed)} of {len(planned)} window(s) did not reconcile "
            f"({len(done)} landed):\n{listed}"
        )
    return {
        "platform_id": endpoint.platform_id,
        "windows": len(windows),
        "late_windows": len(rechecked),
        "loaded_new": sum(w["loaded_new"] for w in windows),
        "quarantined": sum(w["quarantined"] for w in windows),
        "late_flagged": sum(w["late_flagged"] for w in windows),
        "watermark": _iso(mark)
        if (mark := watermark(warehouse_path, endpoint.platform_id))
        else None,
    }


def _steps(start: datetime, end: datetime, step: timedelta) -> Iterator[datetime]:
    t = start
    while t < end:
        yield t
        t += step


def _reconcile(
    platform_id: str, start: datetime, end: datetime, manifest: dict, received: dict
) -> None:
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
