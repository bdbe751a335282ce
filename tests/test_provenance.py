"""The provenance check API (issue 17) over real HTTP on loopback, against a warehouse the real
ingest filled from the audio sandbox platform: a generation is found from its exact file and
from re-encoded, trimmed (first 10 % cut) and gain-changed copies; a symbolic generation from a
transposed MIDI file; catalog works never generated give "no match"; bad input is a 4xx with
a message, never a 500; schemathesis finds nothing against the committed OpenAPI document."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import threading
import time
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import requests
import soundfile as sf
from mailbox_server import free_port
from typer.testing import CliRunner

from provenance import keys
from provenance.app import create_app
from sandbox.server import SandboxServer
from settlement.cli import app as cli_app
from settlement.ingest import PlatformEndpoint, ingest_window
from settlement.reference import Contract, register_contract, register_platform
from settlement.warehouse import warehouse

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "docs" / "provenance-api.yaml"
TOKEN = "provenance-test-token"
MELODY = [60, 62, 64, 65, 67, 65, 64, 62, 60, 67, 69, 71, 72, 71, 69, 67, 65, 64]


class Server:
    """uvicorn serving the app on a free loopback port, in a thread."""

    def __init__(self, app):
        import uvicorn

        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self):
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(10)


def _symbolic(home: Path) -> None:
    """A symbolic platform's generation whose tokens play MELODY, through the sandbox tokenizer."""
    from sandbox.tokenizer import Tokenizer

    tok = Tokenizer()
    model = home / "models" / "sym-1"
    model.mkdir(parents=True)
    (model / "tokenizer.json").write_text(tok.to_json())
    tokens = tok.encode([("note", p, 0.5) for p in MELODY], "bach")
    with warehouse(home / "warehouse.duckdb") as con:
        register_platform(con, "sym", "Symbolic Platform", "sym_conn")
        con.execute("INSERT INTO ref.model_versions VALUES ('sym', 'sym-1', 'x', 'y', ?, now()::TIMESTAMP)", [str(model)])
        con.execute("""INSERT INTO raw.generations VALUES ('sym', 'sym-g1', 'sym-1', TIMESTAMP '2026-10-05 10:00:00', 'bach',
                       NULL, ?, 'US', 0.01, 'USD', TIMESTAMP '2026-10-05', TIMESTAMP '2026-10-06', 'test', now()::TIMESTAMP)""",
                    [tokens])  # fmt: skip


@pytest.fixture(scope="module")
def prov(audio_sandbox, tmp_path_factory):
    """The audio sandbox's log ingested for real into a warehouse, shares for its generations,
    one symbolic generation, `tributary provenance index` run, an API key and the server."""
    sandbox_home, built, _ = audio_sandbox
    home = tmp_path_factory.mktemp("provenance-home")
    db = home / "warehouse.duckdb"
    with SandboxServer(built["log_path"], built["models_dir"], TOKEN) as server:
        ingest_window(db, home / "lake", PlatformEndpoint("sandbox-audio", server.base_url, TOKEN),
                      built["start"], built["end"], run_id="ingest-test")  # fmt: skip
    catalog = pq.read_table(sandbox_home / "catalog" / "audio.parquet").to_pylist()
    with warehouse(db) as con:
        register_platform(con, "sandbox-audio", "Sandbox Audio AI", "sandbox_audio_platform")
        register_contract(con, Contract("SBX-AUDIO", "sandbox-audio", pool_rate=Decimal("0.25")))
        for w in catalog:
            con.execute("INSERT OR IGNORE INTO ref.works VALUES (?, 'T-000.000.000-0', 'QZAAA2600000', ?, 'c', 'test', ?, NULL)",
                        [w["work_id"], f"Title of {w['work_id']}", w["style"]])  # fmt: skip
        gens = [r[0] for r in con.execute("SELECT generation_id FROM raw.generations ORDER BY 1").fetchall()]
        for i, gid in enumerate(gens):  # what an attribution run stored: two works and a residual
            a, b = catalog[i % len(catalog)]["work_id"], catalog[(i + 1) % len(catalog)]["work_id"]
            for rank, (work, share) in enumerate([(a, "0.5"), (b, "0.3"), (None, "0.2")], start=1):
                con.execute("INSERT INTO attribution.shares VALUES ('run-a', 'sandbox-audio', ?, ?, ?, ?, 1.0, ?, 'trak', 'mv')",
                            [gid, work, work is None, Decimal(share), 0 if work is None else rank])  # fmt: skip
    _symbolic(home)
    os.environ["TRIBUTARY_HOME"] = str(home)
    try:
        result = CliRunner().invoke(cli_app, ["provenance", "index"])
        assert result.exit_code == 0, result.output
        key = CliRunner().invoke(cli_app, ["provenance", "keys", "create", "Streamly Inc.", "--rate", "1000"]).output.strip()
    finally:
        os.environ.pop("TRIBUTARY_HOME", None)
    audio = {r["generation_id"]: home / "lake" / r["audio_path"]
             for r in _rows(db, "SELECT generation_id, audio_path FROM raw.generation_audio")}  # fmt: skip
    planted = json.loads(built["log_path"].with_suffix(".planted.json").read_text())["planted"]["copies"]
    with Server(create_app(db, max_bytes=4 * 1024 * 1024)) as api:
        yield {"home": home, "db": db, "url": api.url, "key": key, "audio": audio, "catalog": catalog,
               "catalog_dir": sandbox_home / "catalog" / "audio", "planted": planted}  # fmt: skip


def _rows(db: Path, sql: str) -> list[dict]:
    with warehouse(db, read_only=True) as con:
        cur = con.execute(sql)
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def _post(prov, data: bytes, name: str = "track.wav", key: str | None = None) -> requests.Response:
    return requests.post(f"{prov['url']}/v1/checks/file", files={"file": (name, data)},
                         headers={"X-API-Key": key or prov["key"]}, timeout=60)  # fmt: skip


def _copies(data: bytes) -> dict[str, bytes]:
    import librosa

    y, sr = sf.read(io.BytesIO(data), dtype="float32")
    out = {}
    b = io.BytesIO()  # re-encoded: FLAC -> 8-bit WAV at 11.025 kHz
    sf.write(b, librosa.resample(y, orig_sr=sr, target_sr=11025), 11025, format="WAV", subtype="PCM_U8")
    out["re-encoded"] = b.getvalue()
    b = io.BytesIO()  # trimmed: the first 10 % cut
    sf.write(b, y[len(y) // 10:], sr, format="WAV")
    out["trimmed"] = b.getvalue()
    b = io.BytesIO()  # gain: 10 dB quieter
    sf.write(b, y * 10 ** (-10 / 20), sr, format="FLAC")
    out["gain"] = b.getvalue()
    b = io.BytesIO()  # all three at once, louder, resampled up to 22.05 kHz
    sf.write(b, np.clip(librosa.resample(y[len(y) // 10:], orig_sr=sr, target_sr=22050) * 1.8, -1, 1), 22050,
             format="OGG", subtype="VORBIS")  # fmt: skip
    out["trimmed, resampled, louder, OGG"] = b.getvalue()
    return out


def test_generation_found_from_exact_reencoded_trimmed_and_gain_changed_copies(prov):
    exact_copy = next(c["generation_id"] for c in prov["planted"] if c["transform"] == "exact")
    model_output = next(g for g in sorted(prov["audio"]) if g not in {c["generation_id"] for c in prov["planted"]})
    shares = {r["generation_id"]: r for r in _rows(prov["db"], "SELECT generation_id, list(share ORDER BY rank) AS s FROM attribution.shares GROUP BY 1")}
    for gid in (exact_copy, model_output):
        data = prov["audio"][gid].read_bytes()
        r = _post(prov, data, "upload.flac")
        assert r.status_code == 200 and r.json()["matched"] and r.json()["method"] == "sha256", r.text
        by_hash = requests.get(f"{prov['url']}/v1/checks/sha256/{hashlib.sha256(data).hexdigest()}",
                               headers={"X-API-Key": prov["key"]}, timeout=30).json()  # fmt: skip
        assert by_hash["generation"]["generation_id"] == gid
        for name, copy in _copies(data).items():
            r = _post(prov, copy, f"copy-{name}.bin")
            body = r.json()
            assert r.status_code == 200 and body["matched"], (gid, name, r.text)
            assert body["method"] == "audio_fingerprint" and body["generation"]["generation_id"] == gid, (name, body)
            assert body["confidence"] >= 0.2, (name, body["confidence"])  # unrelated audio: < 0.01
            assert body["generation"]["platform_id"] == "sandbox-audio" and body["generation"]["model_version"]
            assert body["licence"] == {"status": "licensed", "contract_id": "SBX-AUDIO", "contract_version": 1,
                                       "settled_period": None}  # fmt: skip
            # the breakdown is the stored one, to the digit
            assert [Decimal(s["share"]) for s in body["attribution"]] == [
                Decimal(x) for x in sorted(shares[gid]["s"], key=lambda v: v == Decimal("0.2"))]
            assert body["attribution"][-1]["residual"] and not body["attribution"][0]["residual"]


def test_catalog_works_never_generated_are_no_match(prov):
    copied = {c["work_id"].split("#")[0] for c in prov["planted"]}
    never = [w for w in prov["catalog"] if w["work_id"].split("#")[0] not in copied]
    assert len(never) >= 5
    for w in never:
        r = _post(prov, (prov["catalog_dir"] / w["file_name"]).read_bytes(), w["file_name"])
        assert r.status_code == 200, r.text
        assert r.json()["matched"] is False and r.json()["confidence"] < 0.05, (w["work_id"], r.json())


def test_transposed_midi_finds_the_symbolic_generation(prov):
    import pretty_midi

    for shift in (0, 5, -3):
        pm = pretty_midi.PrettyMIDI(initial_tempo=96)
        inst = pretty_midi.Instrument(program=0)
        for i, p in enumerate(MELODY):
            inst.notes.append(pretty_midi.Note(velocity=80, pitch=p + shift, start=i * 0.4, end=i * 0.4 + 0.35))
        pm.instruments.append(inst)
        buf = io.BytesIO()
        pm.write(buf)
        body = _post(prov, buf.getvalue(), "tune.mid").json()
        assert body["matched"] and body["method"] == "midi_fingerprint", body
        assert body["generation"]["generation_id"] == "sym-g1" and body["licence"]["status"] == "no contract in force"
    other = pretty_midi.PrettyMIDI()
    inst = pretty_midi.Instrument(program=0)
    inst.notes += [pretty_midi.Note(velocity=80, pitch=p, start=i * 0.3, end=i * 0.3 + 0.2)
                   for i, p in enumerate([60, 67, 59, 72, 55, 64, 61, 70, 58, 66])]  # fmt: skip
    other.instruments.append(inst)
    buf = io.BytesIO()
    other.write(buf)
    assert _post(prov, buf.getvalue(), "other.mid").json()["matched"] is False


def _wav(seconds: float) -> bytes:
    b = io.BytesIO()
    sf.write(b, np.zeros(int(16000 * seconds), dtype=np.float32), 16000, format="WAV")
    return b.getvalue()


@pytest.mark.parametrize("case, status, words", [
    ("text", 400, "not a readable audio file"),
    ("empty", 400, "empty"),
    ("too short", 400, "must last"),
    ("bad midi", 400, "not a readable MIDI file"),
    ("huge", 413, "exceeds"),
    ("bad hash", 422, "pattern"),
    ("no key", 401, "API key"),
    ("wrong key", 401, "API key"),
])  # fmt: skip
def test_bad_input_is_a_4xx_with_a_message(prov, case, status, words):
    url, key = prov["url"], prov["key"]
    if case == "bad hash":
        r = requests.get(f"{url}/v1/checks/sha256/not-a-hash", headers={"X-API-Key": key}, timeout=30)
    elif case == "no key":
        r = requests.get(f"{url}/v1/checks/sha256/{'0' * 64}", timeout=30)
    elif case == "wrong key":
        r = _post(prov, _wav(1), key=key[:-4] + "AAAA")
    else:
        data, name = {"text": (b"=cmd|' /C calc'!A0\nhello", "notes.txt"), "empty": (b"", "x.wav"),
                      "too short": (_wav(0.1), "short.wav"), "bad midi": (b"MThd\x00\x00\x00\x06garbage", "x.mid"),
                      "huge": (b"\0" * (5 * 1024 * 1024), "huge.wav")}[case]  # fmt: skip
        r = _post(prov, data, name)
    assert r.status_code == status, (case, r.status_code, r.text)
    assert words in r.text, r.text


def test_rate_limit_per_key(prov):
    key = keys.create(prov["db"], "Tiny Client", rate_per_minute=3)
    url = f"{prov['url']}/v1/checks/sha256/{'a' * 64}"
    codes = [requests.get(url, headers={"X-API-Key": key}, timeout=30) for _ in range(4)]
    assert [r.status_code for r in codes] == [200, 200, 200, 429]
    assert int(codes[-1].headers["Retry-After"]) >= 1 and "rate limit" in codes[-1].json()["detail"]
    # another key is not slowed down by this one
    assert requests.get(url, headers={"X-API-Key": prov["key"]}, timeout=30).status_code == 200


def test_committed_openapi_is_the_served_one(prov):
    import yaml

    served = requests.get(f"{prov['url']}/openapi.json", timeout=30).json()
    assert yaml.safe_load(SPEC.read_text()) == served, "regenerate: python -m provenance.openapi > docs/provenance-api.yaml"


def test_schemathesis_against_the_openapi_document(prov, tmp_path):
    done = subprocess.run(
        [str(Path(sys.executable).parent / "schemathesis"), "run", str(SPEC), "--url", prov["url"],
         # every check but "schema-valid data accepted": a schema cannot say "a decodable audio
         # file", so random schema-valid bytes are rightly refused with a 400 naming the rule
         "--checks", "all", "--exclude-checks", "positive_data_acceptance",
         "-H", f"X-API-Key: {prov['key']}", "--max-examples", "40", "--seed", "17",
         "--no-color", "--report-dir", str(tmp_path / "report")],
        check=False, capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )  # fmt: skip
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-6000:]
    assert "Tested: 3" in out, out[-3000:]


def test_index_killed_then_rerun_indexes_every_generation_once(prov, tmp_path):
    """kill -9 inside the indexing transaction, then the command again: same prints and hashes
    as the uninterrupted index."""
    import shutil

    home = tmp_path / "home"
    shutil.copytree(prov["home"], home)
    with warehouse(home / "warehouse.duckdb") as con:
        con.execute("DELETE FROM provenance.landmarks; DELETE FROM provenance.midi_grams; DELETE FROM provenance.prints")
    expected = _counts(prov["db"])
    script = "import sys, killing; killing.command(sys.argv[1], sys.argv[3:], sys.argv[2] or None)"
    env = os.environ | {"PYTHONPATH": str(Path(__file__).parent), "TRIBUTARY_PROVENANCE_BATCH": "4"}
    index = ["provenance", "index"]
    for kill_after, argv in [("provenance.index:_append", index),  # inside the first batch's transaction
                             ("", [*index, "--limit", "8"]),  # two batches committed
                             ("provenance.index:_append", index),  # inside the third
                             ("", index)]:  # fmt: skip
        done = subprocess.run([sys.executable, "-c", script, str(home), kill_after, *argv],
                              env=env, check=False, capture_output=True, timeout=300)  # fmt: skip
        assert done.returncode == (-9 if kill_after else 0), done.stderr[-2000:]
    assert _counts(home / "warehouse.duckdb") == expected


def _counts(db: Path) -> dict:
    return _rows(db, """SELECT (SELECT count(*) FROM provenance.prints) AS prints,
                               (SELECT count(*) FROM provenance.landmarks) AS landmarks,
                               (SELECT sum(hash % 1000003) FROM provenance.landmarks) AS landmark_sum,
                               (SELECT count(*) FROM provenance.midi_grams) AS grams""")[0]  # fmt: skip


def test_when_generated_is_stored(prov):
    assert _rows(prov["db"], "SELECT min(created_at) AS t FROM raw.generations")[0]["t"] > datetime(2026, 1, 1)
