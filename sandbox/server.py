"""The sandbox platform's HTTP server: the Generation Log API on loopback.

    python -m sandbox.server --log var/platform/sandbox/generations.jsonl \
        --models var/platform/sandbox/models --token-env SANDBOX_TOKEN --port 8765

API (docs/generation-log-api.yaml): every call needs `Authorization: Bearer <token>`.
- GET /v1/generations?start=&end=&page_size=&cursor=   records with start <= created_at < end
- GET /v1/generations/manifest?start=&end=             how many records and how much revenue
- GET /v1/models, /v1/models/{version}, /v1/models/{version}/files/{name}   licensed models
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import requests
import uvicorn
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, JSONResponse

MAX_PAGE = 1000
# The platform's training data stays with the platform: licensors receive the manifest
# (work ids and token hashes) and check it against their own copy of the catalog.
PRIVATE_FILES = {"train_tokens.parquet"}


def _parse_ts(value: str, name: str) -> datetime:
    try:
        ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise HTTPException(400, {"error": "bad_request", "message": f"{name}: {exc}"}) from exc
    if ts.tzinfo is None:
        raise HTTPException(400, {"error": "bad_request", "message": f"{name} must carry a UTC offset"})
    return ts


def _record_time(record: dict) -> datetime:
    """When the platform itself filed a record. It files by its own clock, treating a time
    without offset as UTC, so a sloppy record still reaches clients (who must reject it)."""
    ts = datetime.fromisoformat(str(record["created_at"]).replace("Z", "+00:00"))
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
    except (ValueError, KeyError, json.JSONDecodeError) as exc:
        raise HTTPException(400, {"error": "bad_cursor", "message": str(exc)}) from exc


def create_app(log_path: Path, models_dir: Path, token: str) -> FastAPI:
    records = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    records.sort(key=lambda r: (r["created_at"], r["generation_id"]))
    stamps = [_record_time(r) for r in records]
    app = FastAPI(title="Sandbox platform: Generation Log API", version="1.0")

    def authorised(request: Request) -> None:
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(given, token):
            raise HTTPException(
                401,
                {"error": "unauthorized", "message": "missing or wrong bearer token"},
                headers={"WWW-Authenticate": "Bearer"},
            )

    def window(start: str, end: str) -> list[dict]:
        lo, hi = _parse_ts(start, "start"), _parse_ts(end, "end")
        if hi <= lo:
            raise HTTPException(400, {"error": "bad_request", "message": "end must be after start"})
        return [r for r, ts in zip(records, stamps, strict=True) if lo <= ts < hi]

    @app.exception_handler(HTTPException)
    async def error_body(_: Request, exc: HTTPException) -> JSONResponse:
        body = exc.detail if isinstance(exc.detail, dict) else {"error": "error", "message": str(exc.detail)}
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    @app.get("/v1/generations", dependencies=[Depends(authorised)])
    def generations(
        start: str, end: str, page_size: int = Query(200, ge=1, le=MAX_PAGE), cursor: str | None = None
    ) -> dict:
        rows = window(start, end)
        offset = _decode_cursor(cursor, start, end) if cursor else 0
        page = rows[offset : offset + page_size]
        nxt = offset + len(page)
        return {
            "records": page,
            "next_cursor": _encode_cursor(start, end, nxt) if nxt < len(rows) else None,
        }

    @app.get("/v1/generations/manifest", dependencies=[Depends(authorised)])
    def manifest(start: str, end: str) -> dict:
        rows = window(start, end)
        revenue: dict[str, Decimal] = defaultdict(Decimal)
        for r in rows:
            revenue[r["revenue"]["currency"]] += Decimal(r["revenue"]["amount"])
        return {
            "start": start,
            "end": end,
            "count": len(rows),
            "revenue": {cur: str(amount) for cur, amount in sorted(revenue.items())},
        }

    def model_dir(version: str) -> Path:
        path = models_dir / version
        if "/" in version or ".." in version or not (path / "model_version.json").exists():
            raise HTTPException(404, {"error": "not_found", "message": f"no model version {version!r}"})
        return path

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
        path = (root / name).resolve()
        if root not in path.parents or not path.is_file() or path.name in PRIVATE_FILES:
            raise HTTPException(404, {"error": "not_found", "message": f"no file {name!r}"})
        return FileResponse(path)

    return app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SandboxServer:
    """Runs the server as its own process, as a real platform would be: started, waited for,
    stopped. Used by the demo and the end-to-end tests."""

    def __init__(self, log_path: Path, models_dir: Path, token: str, port: int | None = None):
        self.log_path, self.models_dir, self.token = log_path, models_dir, token
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> SandboxServer:
        env = dict(os.environ, SANDBOX_TOKEN=self.token)
        cmd = [
            sys.executable, "-m", "sandbox.server", "--log", str(self.log_path),
            "--models", str(self.models_dir), "--port", str(self.port), "--token-env", "SANDBOX_TOKEN",
        ]  # fmt: skip
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sandbox server exited: {self.proc.stderr.read().decode()[-2000:]}")
            try:
                requests.get(f"{self.base_url}/v1/models", timeout=1)
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
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--log", type=Path, required=True, help="generation log, JSON Lines")
    ap.add_argument("--models", type=Path, required=True, help="folder of licensed model versions")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8765)
    ap.add_argument("--token-env", default="SANDBOX_TOKEN", help="variable holding the bearer token")
    args = ap.parse_args()
    token = os.environ.get(args.token_env)
    if not token:
        sys.exit(f"set {args.token_env} to the bearer token clients must present")
    app = create_app(args.log, args.models, token)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
