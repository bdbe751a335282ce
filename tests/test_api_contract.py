"""The Generation Log API's contract (docs/generation-log-api.yaml) and its reference server
(sandbox/server.py) agree exactly: schemathesis generates requests from the spec, valid and
invalid, sends them to the real server on loopback and runs all of its checks (status codes,
response schemas and headers, content types, negative data rejected, schema-valid data
accepted, auth enforced, unsupported methods). Issue 13, finding 9: it found 4 failures
(FastAPI's undocumented 422s, start == end rejected)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sandbox.server import SandboxServer

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "docs" / "generation-log-api.yaml"
TOKEN = "contract-test-token-9f"


def _platform(tmp_path: Path) -> tuple[Path, Path]:
    """Thirty token generations and three audio ones (whose files the audio route serves)."""
    import hashlib

    start = datetime(2026, 10, 1, tzinfo=UTC)
    records = [
        {"schema_version": 1, "generation_id": f"g{i:03d}", "model_version": "sandbox-2026.10",
         "created_at": (start + timedelta(hours=i)).isoformat().replace("+00:00", "Z"), "style": "bach",
         "prompt": None, "output": {"tokens": [1, 2, 3]}, "territory": "US",
         "revenue": {"amount": "0.0125", "currency": "USD"}}
        for i in range(30)
    ]  # fmt: skip
    (tmp_path / "audio").mkdir()
    for i in range(30, 33):
        body = b"fLaC" + bytes(range(i, i + 60))  # the route serves bytes; it never decodes them
        (tmp_path / "audio" / f"a{i:03d}.flac").write_bytes(body)
        records.append(
            {"schema_version": 1, "generation_id": f"a{i:03d}", "model_version": "sandbox-2026.10",
             "created_at": (start + timedelta(hours=i)).isoformat().replace("+00:00", "Z"), "style": "bach",
             "prompt": None, "territory": "US", "revenue": {"amount": "0.0125", "currency": "USD"},
             "output": {"audio": {"name": f"a{i:03d}.flac", "sha256": hashlib.sha256(body).hexdigest(),
                                  "bytes": len(body), "format": "flac", "sample_rate": 16000, "channels": 1,
                                  "duration_s": 4.0}}}
        )  # fmt: skip
    log = tmp_path / "log.jsonl"
    log.write_text("".join(json.dumps(r) + "\n" for r in records))
    model = tmp_path / "models" / "sandbox-2026.10"
    (model / "checkpoints").mkdir(parents=True)
    (model / "model_version.json").write_text(json.dumps({"model_version": "sandbox-2026.10"}))
    (model / "config.json").write_text("{}")
    (model / "checkpoints" / "ckpt-250.pt").write_bytes(b"weights")
    return log, tmp_path / "models"


def test_the_reference_server_conforms_to_the_spec(tmp_path):
    log, models = _platform(tmp_path)
    with SandboxServer(log, models, TOKEN) as server:
        done = subprocess.run(
            [str(Path(sys.executable).parent / "schemathesis"), "run", str(SPEC), "--url", server.base_url,
             "--checks", "all", "-H", f"Authorization: Bearer {TOKEN}", "--max-examples", "100", "--seed", "13",
             "--no-color", "--report-dir", str(tmp_path / "report")],
            check=False, capture_output=True, text=True, timeout=600, cwd=tmp_path,
        )  # fmt: skip
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-6000:]
    assert "Selected: 6/6" in out and "Tested: 6" in out  # the audio route included
    assert "failure" not in out.split("SUMMARY")[-1], out[-3000:]
