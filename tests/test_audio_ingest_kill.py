"""SIGKILL while audio outputs are being fetched, at several instants, then a rerun: every
audio generation lands once, every landed file holds exactly the bytes its name promises."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from audio_fixtures import AUDIO_CFG
from settlement_fixtures import table

from sandbox.server import SandboxServer

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "audio-kill-test-token"

SCRIPT = """
import logging, sys
from datetime import datetime
from pathlib import Path
from settlement.ingest import PlatformEndpoint, ingest_window
logging.basicConfig(level=logging.DEBUG, stream=sys.stderr, format="%(name)s %(message)s")
home = Path(sys.argv[1])
ingest_window(home / "w.duckdb", home / "lake", PlatformEndpoint.from_env("sandbox-audio"),
              datetime.fromisoformat(sys.argv[2]), datetime.fromisoformat(sys.argv[3]),
              run_id=sys.argv[4], page_size=4)
print("DONE", file=sys.stderr, flush=True)
"""


def _start(server, home: Path, built: dict, run_id: str) -> subprocess.Popen:
    env = dict(
        os.environ,
        PYTHONPATH=str(ROOT),
        TRIBUTARY_PLATFORM_SANDBOX_AUDIO_URL=server.base_url,
        TRIBUTARY_PLATFORM_SANDBOX_AUDIO_TOKEN=TOKEN,
    )
    cmd = [sys.executable, "-c", SCRIPT, str(home), built["start"].isoformat(),
           built["end"].isoformat(), run_id]  # fmt: skip
    return subprocess.Popen(cmd, env=env, cwd=ROOT, stderr=subprocess.PIPE, text=True)


def test_sigkill_while_fetching_audio_then_rerun_lands_everything_once(audio_sandbox, tmp_path):
    _, built, _ = audio_sandbox
    home = tmp_path
    with SandboxServer(built["log_path"], built["models_dir"], TOKEN) as server:
        killed_at = []
        for n in (1, 5, 9):  # after the n-th audio file of a run
            proc = _start(server, home, built, f"killed-{n}")
            seen = 0
            for line in proc.stderr:
                if "audio of" in line:
                    seen += 1
                    if seen == n:
                        os.kill(proc.pid, signal.SIGKILL)
                        break
            proc.wait(timeout=60)
            killed_at.append(proc.returncode)
            # killed before the landing transaction: nothing in the warehouse yet, and any
            # audio file under its final name is whole
            if (home / "w.duckdb").exists():
                assert (
                    table(home / "w.duckdb", "SELECT count(*) AS n FROM raw.generations")["n"][0]
                    == 0
                )
            for f in (home / "lake" / "audio").rglob("*.flac"):
                assert hashlib.sha256(f.read_bytes()).hexdigest() == f.stem
        assert killed_at == [-signal.SIGKILL] * 3, "an ingest finished before it could be killed"
        rerun = _start(server, home, built, "again")
        _, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0 and "DONE" in err, err[-2000:]
    audio = table(home / "w.duckdb", "SELECT * FROM raw.generation_audio")
    assert len(audio) == audio["generation_id"].nunique() == AUDIO_CFG.n_generations
    assert set(audio["ingest_run_id"]) == {"again"}
    for row in audio.itertuples():
        landed = home / "lake" / row.audio_path
        assert hashlib.sha256(landed.read_bytes()).hexdigest() == row.audio_sha256
    finals = sorted(p.name for p in (home / "lake" / "audio").rglob("*.flac"))
    assert finals == sorted(f"{s}.flac" for s in set(audio["audio_sha256"]))
