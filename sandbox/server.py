"""The sandbox platform's HTTP server: the Generation Log API on loopback.

    python -m sandbox.server --log var/platform/sandbox/generations.jsonl \
        --models var/platform/sandbox/models --token-env SANDBOX_TOKEN --port 8765

API (docs/generation-log-api.yaml): every call needs `Authorization: Bearer <token>`.
- GET /v1/generations?start=&end=&page_size=&cursor=   records with start <= created_at < end
- GET /v1/generations/manifest?start=&end=             how many records and how much revenue
- GET /v1/models, /v1/models/{version}, /v1/models/{version}/files/{name}   licensed models
- GET /v1/generations/{generation_id}/audio   the audio file of an audio generation

Every answer carries X-RateLimit-Limit/Remaining/Reset; past the limit it is a 429 with
Retry-After. `--faults JSON` (or SANDBOX_FAULTS) switches on seeded fault injection
(sandbox/faults.py): errors, throttling, slow and broken bodies, duplicates, disorder, late
and invalid records.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Self

import requests
import uvicorn
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from sandbox.faults import FaultConfig, corrupt, delivery, late_mask, transport_fault

MAX_PAGE = 1000
# Model versions and file-name parts the server serves: one safe path component each.
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
# The platform's training data stays with the platform: licensors receive the manifest
# (work ids and token hashes) and check it against their own copy of the catalog.
PRIVATE_FILES = {"train_tokens.parquet", "train_inputs.npy"}
AUDIO_MEDIA_TYPES = {"flac": "audio/flac", "wav": "audio/wav"}


def _parse_ts(value: str, name: str) -> datetime:
    try:
        ts = datetime.fromisoformat(value)
    except ValueError as exc:
        raise HTTPException(400, {"error": "bad_request", "message": f"{name}: {exc}"}) from exc
    if ts.tzinfo is None:
        raise HTTPException(
            400, {"error": "bad_request", "message": f"{name} must carry a UTC offset"}
        )
    return ts


def _record_time(record: dict) -> datetime:
    """When the platform itself filed a record. It files by its own clock, treating a time
    without offset as UTC, so a sloppy record still reaches clients (who must reject it)."""
    ts = datetime.fromisoformat(str(record["created_at"]))
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def _encode_cursor(start: str, end: str, offset: int) -> str:
    raw = json.dumps({"s": start, "e": end, "o": offset}).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _decode_cursor(cursor: str, start: str, end: str) -> int:
    try:
        spec = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        if spec["s"] != start or spec["e"] != end:
            raise ValueError("cursor belongs to another window")
        return int(spec["o"])
    except (ValueError, KeyError, TypeError, json.JSONDecodeError) as exc:
        # A cursor is an opaque name of a page: one this server did not issue for this window
        # names no page (404), as docs/generation-log-api.yaml says.
        raise HTTPException(404, {"error": "bad_cursor", "message": f"no page for this cursor: {exc}"}) from exc


def create_app(
    log_path: Path,
    models_dir: Path,
    token: str,
    faults: FaultConfig | None = None,
    audio_dir: Path | None = None,
) -> FastAPI:
    """audio_dir: where the log's audio files are (default: the log's folder/audio)."""
    faults = faults or FaultConfig()
    records = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    audio_names = _audio_names(records)
    records.sort(key=lambda r: (r["created_at"], r["generation_id"]))
    records, planted_invalid = corrupt(records, faults)
    # A record is filed by the platform's clock; a corrupted timestamp keeps its filing time.
    stamps = [_record_time({"created_at": r.pop("_filed_at", r["created_at"])}) for r in records]
    late = late_mask(records, faults)
    state = {
        "released": set(),
        "pulled": set(),
        "attempts": defaultdict(int),
        "rate": [0.0, 0],
        "injected": defaultdict(int),
    }
    lock = threading.Lock()
    app = FastAPI(title="Sandbox platform: Generation Log API", version="1.1")
    app.state.planted_invalid = planted_invalid
    app.state.late_ids = {
        r["generation_id"] for r, is_late in zip(records, late, strict=True) if is_late
    }

    def authorised(request: Request) -> None:
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(given, token):
            raise HTTPException(
                401,
                {"error": "unauthorized", "message": "missing or wrong bearer token"},
                headers={"WWW-Authenticate": "Bearer"},
            )

    def bounds(start: str, end: str) -> tuple[datetime, datetime]:
        # [start, end) with end <= start holds no record: an empty window, as the API spec says
        return _parse_ts(start, "start"), _parse_ts(end, "end")

    def window(start: str, end: str) -> list[dict]:
        lo, hi = bounds(start, end)
        with lock:
            # Late records of a window pulled before become visible once the client asks about
            # another window: the platform filed them after the first pull.
            for plo, phi in list(state["pulled"]):
                if phi <= lo or plo >= hi:
                    state["released"].add((plo, phi))
                    state["pulled"].discard((plo, phi))
            released = set(state["released"])
        return [
            r
            for r, ts, is_late in zip(records, stamps, late, strict=True)
            if lo <= ts < hi and (not is_late or any(a <= ts < b for a, b in released))
        ]

    @app.middleware("http")
    async def rate_limit_and_faults(request: Request, call_next):
        now = time.time()
        with lock:
            if now - state["rate"][0] >= 60:
                state["rate"] = [now, 0]
            state["rate"][1] += 1
            used, reset = state["rate"][1], int(state["rate"][0] + 60 - now) + 1
            key = f"{request.url.path}?{sorted(request.query_params.multi_items())}"
            attempt = state["attempts"][key]
            state["attempts"][key] += 1
            on_log = request.url.path.startswith("/v1/generations")
            fault = transport_fault(faults, key, attempt) if on_log else None
            if fault:
                state["injected"][fault] += 1
        limit = faults.rate_limit_per_minute
        headers = {
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": str(max(limit - used, 0)),
            "X-RateLimit-Reset": str(reset),
        }
        if used > limit or fault == "rate_limit":
            retry = reset if used > limit else faults.retry_after_s
            body = {"error": "rate_limited", "message": f"too many requests; retry after {retry} s"}
            return JSONResponse(body, 429, headers=headers | {"Retry-After": str(retry)})
        if fault == "error":
            code = 500 if attempt % 2 == 0 else 503
            body = {"error": "unavailable", "message": f"injected HTTP {code}"}
            return JSONResponse(body, code, headers=headers)
        if fault == "slow":
            await _sleep(faults.slow_s)
        response = await call_next(request)
        for k, v in headers.items():
            response.headers[k] = v
        if fault in ("truncated", "malformed") and response.status_code == 200:
            body = b"".join([chunk async for chunk in response.body_iterator])
            cut = (
                body[: max(len(body) // 2, 1)]
                if fault == "truncated"
                else b"<html>502 Bad Gateway</html>"
            )
            return Response(cut, 200, headers=headers, media_type="application/json")
        return response

    # Every error has the API's Error body (docs/generation-log-api.yaml): FastAPI's own 422 for
    # a malformed parameter is the documented 400, and the router's 404/405 speak it too.
    @app.exception_handler(StarletteHTTPException)
    async def error_body(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        if isinstance(exc.detail, dict):
            body = exc.detail
        else:
            kind = {401: "unauthorized", 404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "bad_request")
            body = {"error": kind, "message": str(exc.detail)}
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def bad_parameter(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(x) for x in e.get('loc', ())[1:]) or 'request'}: {e.get('msg', 'invalid')}"
            for e in exc.errors()
        )
        return JSONResponse({"error": "bad_request", "message": problems}, status_code=400)

    @app.get("/v1/generations", dependencies=[Depends(authorised)])
    def generations(
        start: str,
        end: str,
        page_size: int = Query(200, ge=1, le=MAX_PAGE),
        cursor: str | None = None,
    ) -> dict:
        if faults.latency_s:
            time.sleep(faults.latency_s)
        rows = delivery(window(start, end), faults, f"{start}/{end}")
        offset = _decode_cursor(cursor, start, end) if cursor else 0
        page = rows[offset : offset + page_size]
        nxt = offset + len(page)
        if nxt >= len(rows):
            with lock:
                state["pulled"].add(bounds(start, end))
        return {
            "records": page,
            "next_cursor": _encode_cursor(start, end, nxt) if nxt < len(rows) else None,
        }

    @app.get("/v1/generations/manifest", dependencies=[Depends(authorised)])
    def manifest(start: str, end: str) -> dict:
        rows = window(start, end)
        revenue: dict[str, Decimal] = defaultdict(Decimal)
        for r in rows:
            if isinstance(r.get("revenue"), dict):
                revenue[r["revenue"]["currency"]] += Decimal(r["revenue"]["amount"])
        return {
            "start": start,
            "end": end,
            "schema_version": 1,
            "count": len(rows),
            "revenue": {cur: str(amount) for cur, amount in sorted(revenue.items())},
        }

    def model_dir(version: str) -> Path:
        # Checked before the file system sees it: a hostile name is just a name we do not have.
        path = models_dir / version
        if not SAFE_NAME.match(version) or not (path / "model_version.json").exists():
            raise HTTPException(
                404, {"error": "not_found", "message": f"no model version {version!r}"}
            )
        return path

    @app.get("/healthz")
    def healthz() -> dict:
        return {"ok": True}

    @app.get("/_sandbox/faults")
    def injected() -> dict:
        """Sandbox only, not part of the API: which faults were injected, for tests to check."""
        with lock:
            return {
                "transport": dict(state["injected"]),
                "late_released_windows": len(state["released"]),
                "invalid": planted_invalid,
                "late_ids": sorted(app.state.late_ids),
            }

    @app.get("/v1/models", dependencies=[Depends(authorised)])
    def models() -> dict:
        return {"model_versions": sorted(p.name for p in models_dir.iterdir() if p.is_dir())}

    @app.get("/v1/models/{version}", dependencies=[Depends(authorised)])
    def model(version: str) -> dict:
        root = model_dir(version)
        files = sorted(p for p in root.rglob("*") if p.is_file() and p.name not in PRIVATE_FILES)
        return {
            "model_version": version,
            "info": json.loads((root / "model_version.json").read_text()),
            "files": [
                {
                    "name": p.relative_to(root).as_posix(),
                    "bytes": p.stat().st_size,
                    "sha256": hashlib.sha256(p.read_bytes()).hexdigest(),
                }
                for p in files
            ],
        }

    @app.get("/v1/models/{version}/files/{name:path}", dependencies=[Depends(authorised)])
    def model_file(version: str, name: str) -> FileResponse:
        root = model_dir(version).resolve()
        parts = name.split("/")
        safe = len(parts) <= 3 and all(SAFE_NAME.match(part) for part in parts)
        path = (root / name).resolve() if safe else root
        if root not in path.parents or not path.is_file() or path.name in PRIVATE_FILES:
            raise HTTPException(404, {"error": "not_found", "message": f"no file {name!r}"})
        return FileResponse(path, media_type="application/octet-stream")  # as the spec says, whatever the suffix

    add_audio_route(app, audio_dir or log_path.parent / "audio", audio_names, authorised)
    return app


def _audio_names(records: list[dict]) -> dict[str, tuple[str, str]]:
    """generation_id -> (file name, format) for the log's audio outputs, read before fault
    injection touches the records: what the platform itself stored."""
    names = {}
    for r in records:
        audio = r.get("output", {}).get("audio") if isinstance(r.get("output"), dict) else None
        if isinstance(audio, dict) and isinstance(audio.get("name"), str):
            names[str(r.get("generation_id"))] = (audio["name"], str(audio.get("format", "flac")))
    return names


def add_audio_route(
    app: FastAPI, audio_dir: Path, names: dict[str, tuple[str, str]], authorised
) -> None:
    """GET /v1/generations/{generation_id}/audio: the generation's audio file.

    The request names a generation, never a file: the id is looked up in the log, and the
    file name the log gives must be a plain name inside audio_dir (the platform's own data
    is checked like anyone's before it touches the file system)."""
    root = Path(audio_dir).resolve()

    @app.get("/v1/generations/{generation_id}/audio", dependencies=[Depends(authorised)])
    def generation_audio(generation_id: str) -> FileResponse:
        missing = HTTPException(
            404, {"error": "not_found", "message": f"no audio for generation {generation_id!r}"}
        )
        name, fmt = names.get(generation_id, (None, None))
        if not name or fmt not in AUDIO_MEDIA_TYPES or Path(name).name != name:
            raise missing
        path = (root / name).resolve()
        if path.parent != root or not path.is_file():
            raise missing
        return FileResponse(path, media_type=AUDIO_MEDIA_TYPES[fmt])


async def _sleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SandboxServer:
    """Runs the server as its own process, as a real platform would be: started, waited for,
    stopped. Used by the demo and the end-to-end tests."""

    def __init__(
        self,
        log_path: Path,
        models_dir: Path,
        token: str,
        port: int | None = None,
        faults: FaultConfig | None = None,
        audio_dir: Path | None = None,
    ):
        self.log_path, self.models_dir, self.token, self.faults = (
            log_path,
            models_dir,
            token,
            faults,
        )
        self.audio_dir = audio_dir
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Self:
        env = dict(os.environ, SANDBOX_TOKEN=self.token)
        cmd = [
            sys.executable, "-m", "sandbox.server", "--log", str(self.log_path),
            "--models", str(self.models_dir), "--port", str(self.port), "--token-env", "SANDBOX_TOKEN",
        ]  # fmt: skip
        if self.faults:
            cmd += ["--faults", self.faults.to_json()]
        if self.audio_dir:
            cmd += ["--audio", str(self.audio_dir)]
        self.proc = subprocess.Popen(
            cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"sandbox server exited: {self.proc.stderr.read().decode()[-2000:]}"
                )
            try:
                requests.get(f"{self.base_url}/healthz", timeout=1)
                return self
            except requests.ConnectionError:
                time.sleep(0.2)
        self.__exit__()
        raise RuntimeError(f"sandbox server did not answer on {self.base_url} within 60 s")

    def __exit__(self, *exc) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--log", type=Path, required=True, help="generation log, JSON Lines")
    ap.add_argument("--models", type=Path, required=True, help="folder of licensed model versions")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8765)
    ap.add_argument(
        "--token-env", default="SANDBOX_TOKEN", help="variable holding the bearer token"
    )
    ap.add_argument(
        "--faults",
        default=os.environ.get("SANDBOX_FAULTS"),
        help="fault injection, JSON or @file (sandbox/faults.py)",
    )
    ap.add_argument(
        "--audio", type=Path, default=None, help="audio files (default: LOG's folder/audio)"
    )
    args = ap.parse_args()
    token = os.environ.get(args.token_env)
    if not token:
        sys.exit(f"set {args.token_env} to the bearer token clients must present")
    app = create_app(
        args.log, args.models, token, FaultConfig.from_json(args.faults), audio_dir=args.audio
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
