"""The provenance check API: a streaming platform or distributor asks whether a track is a
generation logged by a licensed platform, and how it was attributed.

    GET  /v1/checks/sha256/{sha256}   by the file's sha256 (exact match only)
    POST /v1/checks/file              multipart upload `file`: exact hash, then fingerprint
    GET  /v1/health                   no key needed

Every /v1/checks call needs `X-API-Key` (tributary provenance keys create) and is rate-limited
per key (token bucket, the key's requests per minute). Bad input is a 4xx with a message,
never a 500: not audio/MIDI or too short -> 400, too large -> 413, bad sha256 -> 422.

The warehouse is opened read-only per request and closed at once, so the pipeline's writer
is never blocked for longer than one lookup.
"""


import hashlib
import threading
import time
from pathlib import Path
from typing import Annotated

from fastapi import Depends, FastAPI, File, HTTPException, Request, UploadFile
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader
from pydantic import BaseModel

from provenance import fingerprint, keys, lookup
from settlement.warehouse import warehouse

MAX_BYTES = 25 * 1024 * 1024  # 25 MiB: a 4-minute 16-bit stereo WAV, or any compressed track


class Error(BaseModel):
    detail: str


class Generation(BaseModel):
    platform_id: str
    platform_name: str
    generation_id: str
    model_version: str
    created_at: str
    audio_sha256: str | None = None


class Licence(BaseModel):
    status: str
    contract_id: str | None = None
    contract_version: int | None = None
    settled_period: str | None = None


class Share(BaseModel):
    work_id: str | None = None
    title: str | None = None
    residual: bool
    share: str  # exact decimal as text
    method: str
    attribution_run_id: str


class CheckResult(BaseModel):
    matched: bool
    method: str
    confidence: float | None = None
    detail: str | None = None
    generation: Generation | None = None
    licence: Licence | None = None
    attribution: list[Share] | None = None


class RateLimiter:
    """Token bucket per key: `rate` requests a minute, bursts up to `rate`.

    Our own (twenty lines) rather than slowapi/limits: the limit is per key and read from the
    key's row, and one process serves the API (behind a proxy, run one per host)."""

    def __init__(self):
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key_id: str, rate_per_minute: int) -> float:
        """0 if allowed now, else the seconds until the next request would be."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key_id, (float(rate_per_minute), now))
            tokens = min(float(rate_per_minute), tokens + (now - last) * rate_per_minute / 60.0)
            if tokens >= 1.0:
                self._buckets[key_id] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key_id] = (tokens, now)
            return (1.0 - tokens) * 60.0 / rate_per_minute


ERRORS = {
    401: {"model": Error, "description": "missing, unknown or revoked API key"},
    429: {"model": Error, "description": "rate limit of this key reached (see Retry-After)"},
}


def create_app(warehouse_path: Path, max_bytes: int = MAX_BYTES, static_dir: Path | None = None) -> FastAPI:
    app = FastAPI(
        title="Tributary provenance check API",
        version="1.0.0",
        description="Is this track a generation logged by a licensed AI music platform, and how was it "
                    "attributed? Exact sha256 first, then an audio landmark fingerprint (survives "
                    "re-encoding, trimming, gain) or a transposition-robust MIDI melody fingerprint.",
    )  # fmt: skip
    limiter = RateLimiter()
    api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="tpk_... from `tributary provenance keys create`")

    def db():
        # one short read-only connection per request, shared by the key check and the lookup
        with warehouse(warehouse_path, read_only=True) as con:
            yield con

    def client(presented: Annotated[str | None, Depends(api_key)], con: Annotated[object, Depends(db)]) -> dict:
        row = keys.check(con, presented)
        if row is None:
            raise HTTPException(401, "missing, unknown or revoked API key (header X-API-Key)")
        wait = limiter.take(row["key_id"], row["rate_per_minute"])
        if wait:
            raise HTTPException(429, f"rate limit of {row['rate_per_minute']} requests a minute reached",
                                headers={"Retry-After": str(max(1, round(wait)))})  # fmt: skip
        return row

    @app.middleware("http")
    async def refuse_large_bodies(request: Request, call_next):
        # before the multipart parser spools a huge upload to disk
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > max_bytes + 64 * 1024):
            return JSONResponse({"detail": f"the request body exceeds {max_bytes} bytes"}, status_code=413)
        return await call_next(request)

    @app.get("/v1/health", responses={200: {"description": "the API is up"}})
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/checks/sha256/{sha256}", response_model=CheckResult, responses=ERRORS)
    def check_sha256(
        sha256: Annotated[str, PathParam(pattern="^[0-9a-fA-F]{64}$", description="the file's sha256, 64 hex digits")],
        _client: Annotated[dict, Depends(client)],
        con: Annotated[object, Depends(db)],
    ) -> dict:
        """Exact match of a file's sha256 against every logged audio generation."""
        return lookup.by_sha256(con, sha256.lower())

    @app.post("/v1/checks/file", response_model=CheckResult,
              responses=ERRORS | {400: {"model": Error, "description": "not an audio or MIDI file we can read"},
                                  413: {"model": Error, "description": "file too large"}})  # fmt: skip
    def check_file(
        file: Annotated[UploadFile, File(description="an audio file (WAV, FLAC, OGG, AIFF, ...) or a MIDI file")],
        _client: Annotated[dict, Depends(client)],
        con: Annotated[object, Depends(db)],
    ) -> dict:
        """Exact sha256, then fingerprint: MIDI melody n-grams or audio landmarks."""
        data = file.file.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise HTTPException(413, f"the file exceeds {max_bytes} bytes")
        if not data:
            raise HTTPException(400, "the file is empty")
        try:
            return lookup.by_file(con, data, file.filename or "")
        except fingerprint.FingerprintError as err:
            raise HTTPException(400, f"{file.filename or 'file'} (sha256 {hashlib.sha256(data).hexdigest()}): {err}") from None

    if static_dir is not None:  # the benchmark's baseline: static files from the same server
        from fastapi.staticfiles import StaticFiles

        app.mount("/static", StaticFiles(directory=static_dir), name="static")
    return app
