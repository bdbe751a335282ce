"""The audio platform end to end: its generation log and planted copies, its Generation Log API
serving audio through the real HTTP server, and ingest landing audio records in the lake and
the warehouse (a real DuckDB file), quarantining the ones whose audio is wrong or missing."""

from __future__ import annotations

import hashlib
import os

import numpy as np
import pandas as pd
import pytest
import requests
from audio_fixtures import AUDIO_CFG
from settlement_fixtures import table

from sandbox.audio_features import FeatureSettings, load_audio
from sandbox.audio_platform import NOISE_SNR_DB, apply_transform, build_audio_sandbox
from sandbox.faults import FaultConfig
from sandbox.server import SandboxServer
from settlement.ingest import PlatformEndpoint, Rejection, check_output, ingest_window

TOKEN = "audio-platform-test-token"
FS = FeatureSettings()
CFG = AUDIO_CFG
BAD_RULES = {"negative_revenue", "unknown_model_version", "audio_sha256_mismatch", "audio_missing"}


@pytest.fixture()
def sandbox(audio_sandbox):
    return audio_sandbox


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_build_is_cached(sandbox):
    home, built, _ = sandbox
    again = build_audio_sandbox(home, CFG)
    assert again["model_dir"] == built["model_dir"] and again["planted"] == built["planted"]
    assert again["stats"]["render"]["rendered"] == 0  # every excerpt came from the cache
    assert set(built["timings"]) >= {"render_s", "train_s", "generation_log_s"}


def test_records_reference_their_audio_files(sandbox):
    _, built, records = sandbox
    planted = built["planted"]
    bad = {b["generation_id"]: b["rule"] for b in planted["bad_records"]}
    assert set(bad.values()) == BAD_RULES
    assert len(records) == CFG.n_generations + len(bad)
    for rec in records:
        assert set(rec["output"]) == {"audio"}  # an audio record carries no tokens
        audio = rec["output"]["audio"]
        assert audio["format"] == "flac" and audio["sample_rate"] == FS.sample_rate
        assert audio["duration_s"] == pytest.approx(FS.n_samples / FS.sample_rate)
        path = built["audio_dir"] / audio["name"]
        if bad.get(rec["generation_id"]) == "audio_missing":
            assert not path.exists()
            continue
        assert path.stat().st_size == audio["bytes"]
        assert (_sha(path) == audio["sha256"]) == (
            bad.get(rec["generation_id"]) != "audio_sha256_mismatch"
        )
    assert len({r["generation_id"] for r in records}) == len(records)


def test_planted_copies_are_what_planted_json_says(sandbox):
    home, built, records = sandbox
    by_id = {r["generation_id"]: r for r in records}
    catalog = pd.read_parquet(home / "catalog" / "audio.parquet").set_index("work_id")
    manifest = pd.read_parquet(built["model_dir"] / "manifest.parquet")
    copies = built["planted"]["copies"]
    assert sorted(c["transform"] for c in copies) == [
        "exact",
        "noise",
        "pitch_shift",
        "time_stretch",
    ]

    def source(work_id):
        return load_audio(home / "catalog" / "audio" / catalog.loc[work_id, "file_name"], FS)

    for c in copies:
        assert c["work_id"] in set(manifest["work_id"])  # copies of training works
        rec = by_id[c["generation_id"]]
        assert rec["output"]["audio"]["sha256"] == c["audio_sha256"]
        got = load_audio(built["audio_dir"] / rec["output"]["audio"]["name"], FS)
        # the named transform of the named work is the copy, to 16-bit rounding...
        want = apply_transform(source(c["work_id"]), c["transform"], c["params"], FS)
        assert np.abs(got - want).max() < 2e-4
        # ...and the same transform of any other work is not
        other = next(w for w in catalog.index if w != c["work_id"])
        assert (
            np.abs(got - apply_transform(source(other), c["transform"], c["params"], FS)).max()
            > 0.1
        )
        p = c["params"]
        if c["transform"] == "pitch_shift":
            assert p["semitones"] in (-2, -1, 1, 2)
        elif c["transform"] == "time_stretch":
            assert p["rate"] in (0.9, 1.1)
        elif c["transform"] == "noise":
            clean = source(c["work_id"])
            gain = float(got @ clean / (clean @ clean))
            snr = 10 * np.log10(np.sum((gain * clean) ** 2) / np.sum((got - gain * clean) ** 2))
            assert p["snr_db"] == NOISE_SNR_DB and snr == pytest.approx(NOISE_SNR_DB, abs=0.5)


def test_server_serves_audio_by_generation_id_only(sandbox):
    _, built, records = sandbox
    bad = {b["rule"]: b["generation_id"] for b in built["planted"]["bad_records"]}
    rec = next(r for r in records if r["generation_id"] not in bad.values())
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with SandboxServer(built["log_path"], built["models_dir"], TOKEN) as server:
        url = f"{server.base_url}/v1/generations/{rec['generation_id']}/audio"
        resp = requests.get(url, headers=auth, timeout=10)
        assert resp.status_code == 200 and resp.headers["content-type"] == "audio/flac"
        assert hashlib.sha256(resp.content).hexdigest() == rec["output"]["audio"]["sha256"]
        assert requests.get(url, timeout=10).status_code == 401
        assert (
            requests.get(url, headers={"Authorization": "Bearer wrong"}, timeout=10).status_code
            == 401
        )
        for gid in ("no-such-generation", bad["audio_missing"], "..%2F..%2Fmodels", "%2E%2E"):
            r = requests.get(
                f"{server.base_url}/v1/generations/{gid}/audio", headers=auth, timeout=10
            )
            assert r.status_code == 404, gid  # unmatched or unknown: never a file
        # the training inputs stay with the platform
        mv = built["model_dir"].name
        listing = requests.get(f"{server.base_url}/v1/models/{mv}", headers=auth, timeout=10).json()
        assert "train_inputs.npy" not in {f["name"] for f in listing["files"]}
        r = requests.get(
            f"{server.base_url}/v1/models/{mv}/files/train_inputs.npy", headers=auth, timeout=10
        )
        assert r.status_code == 404


def _ingest(server, home, built, run_id="r1"):
    endpoint = PlatformEndpoint(built["platform_id"], server.base_url, TOKEN)
    return ingest_window(home / "w.duckdb", home / "lake", endpoint, built["start"], built["end"],
                         run_id=run_id, page_size=5)  # fmt: skip


def test_ingest_lands_audio_content_addressed_and_quarantines_bad_audio(sandbox, tmp_path):
    _, built, records = sandbox
    home = tmp_path
    with SandboxServer(built["log_path"], built["models_dir"], TOKEN) as server:
        summary = _ingest(server, home, built)
        assert summary["received"] == summary["reported_count"] == len(records)
        assert (
            summary["loaded_new"] == CFG.n_generations
            and summary["audio_outputs"] == CFG.n_generations
        )
        rules = table(home / "w.duckdb", "SELECT generation_id, rule, reason FROM raw.quarantine")
        assert set(rules["rule"]) == BAD_RULES
        planted = {b["generation_id"]: b["rule"] for b in built["planted"]["bad_records"]}
        assert dict(zip(rules["generation_id"], rules["rule"], strict=True)) == planted
        for reason in rules["reason"]:
            assert "generation '" in reason  # names the record
        audio = table(
            home / "w.duckdb", "SELECT * FROM raw.generation_audio ORDER BY generation_id"
        )
        by_id = {r["generation_id"]: r["output"]["audio"] for r in records}
        assert len(audio) == CFG.n_generations
        for row in audio.itertuples():
            assert row.audio_sha256 == by_id[row.generation_id]["sha256"]
            assert (
                row.audio_path == f"audio/platform={built['platform_id']}/{row.audio_sha256}.flac"
            )
            landed = home / "lake" / row.audio_path
            assert _sha(landed) == row.audio_sha256
            assert (
                landed.read_bytes()
                == (built["audio_dir"] / by_id[row.generation_id]["name"]).read_bytes()
            )
        outputs = table(home / "w.duckdb", "SELECT * FROM staging.generation_outputs")
        assert set(outputs["output_kind"]) == {"audio"} and outputs["output_tokens"].isna().all()
        assert set(outputs["output_audio_sha256"]) == set(audio["audio_sha256"])
        # nothing outside the lake's content-addressed folder: no platform file name is used
        files = {
            p.relative_to(home / "lake").as_posix()
            for p in (home / "lake").rglob("*")
            if p.is_file()
        }
        assert {f for f in files if f.startswith("audio/")} == set(audio["audio_path"])

        # a rerun adds nothing; a landed file that was damaged is fetched again
        damaged = home / "lake" / audio["audio_path"].iloc[0]
        damaged.write_bytes(b"not the audio")
        before = table(home / "w.duckdb", "SELECT * FROM raw.generation_audio ORDER BY ALL")
        again = _ingest(server, home, built, run_id="r2")
        assert again["loaded_new"] == 0 and again["already_loaded"] == CFG.n_generations
        assert table(home / "w.duckdb", "SELECT * FROM raw.generation_audio ORDER BY ALL").equals(
            before
        )
        assert _sha(damaged) == audio["audio_sha256"].iloc[0]
        assert table(home / "w.duckdb", "SELECT count(*) AS n FROM raw.quarantine")["n"][0] == len(
            BAD_RULES
        )


def test_ingest_gets_audio_through_transport_faults(sandbox, tmp_path, monkeypatch):
    _, built, _ = sandbox
    monkeypatch.setenv("TRIBUTARY_INGEST_BACKOFF", "0.01")
    faults = FaultConfig(seed=5, error_rate=0.15, truncated_rate=0.3, malformed_rate=0.15)
    with SandboxServer(built["log_path"], built["models_dir"], TOKEN, faults=faults) as server:
        summary = _ingest(server, tmp_path, built)
        injected = requests.get(f"{server.base_url}/_sandbox/faults", timeout=10).json()[
            "transport"
        ]
    assert injected.get("truncated", 0) + injected.get("malformed", 0) > 0
    assert summary["loaded_new"] == CFG.n_generations and summary["quarantined"] == len(BAD_RULES)
    rules = set(table(tmp_path / "w.duckdb", "SELECT rule FROM raw.quarantine")["rule"])
    assert rules == BAD_RULES


@pytest.mark.parametrize(
    "audio, field",
    [
        ({"bytes": 10, "format": "flac", "sample_rate": 16000, "duration_s": 4.0}, "sha256"),
        (
            {
                "sha256": "A" * 64,
                "bytes": 10,
                "format": "flac",
                "sample_rate": 16000,
                "duration_s": 4,
            },
            "sha256",
        ),
        (
            {
                "sha256": "a" * 64,
                "bytes": 0,
                "format": "flac",
                "sample_rate": 16000,
                "duration_s": 4,
            },
            "bytes",
        ),
        (
            {
                "sha256": "a" * 64,
                "bytes": True,
                "format": "flac",
                "sample_rate": 16000,
                "duration_s": 4,
            },
            "bytes",
        ),
        (
            {
                "sha256": "a" * 64,
                "bytes": 10,
                "format": "mp3",
                "sample_rate": 16000,
                "duration_s": 4,
            },
            "format",
        ),
        (
            {
                "sha256": "a" * 64,
                "bytes": 10,
                "format": "../x",
                "sample_rate": 16000,
                "duration_s": 4,
            },
            "format",
        ),
        (
            {
                "sha256": "a" * 64,
                "bytes": 10,
                "format": "wav",
                "sample_rate": "16k",
                "duration_s": 4,
            },
            "sample_rate",
        ),
        (
            {
                "sha256": "a" * 64,
                "bytes": 10,
                "format": "wav",
                "sample_rate": 16000,
                "duration_s": -1,
            },
            "duration_s",
        ),
        ("file.flac", "audio must be an object"),
    ],
)
def test_a_bad_audio_description_is_quarantined_naming_the_field(audio, field):
    out = check_output({"audio": audio}, "generation 'g1'")
    assert isinstance(out, Rejection) and out.rule == "bad_output"
    assert field in out.reason and "'g1'" in out.reason


def test_an_output_is_tokens_or_audio_never_both():
    audio = {
        "sha256": "a" * 64,
        "bytes": 10,
        "format": "wav",
        "sample_rate": 16000,
        "duration_s": 1,
    }
    both = check_output({"tokens": [1, 2], "audio": audio}, "generation 'g1'")
    assert isinstance(both, Rejection) and "both" in both.reason
    assert check_output({"tokens": [1, 2]}, "g")["output_kind"] == "tokens"
    ok = check_output({"audio": audio}, "g")
    assert ok["output_kind"] == "audio" and ok["output_tokens"] is None
    assert isinstance(check_output({}, "g"), Rejection)


def test_audio_generations_need_fluidsynth_only_for_rendering():
    # CI installs the distribution's packages (.ci/run, Makefile); say so if they are missing
    assert os.path.exists("/usr/share/sounds/sf2/TimGM6mb.sf2") or os.environ.get(
        "TRIBUTARY_SOUNDFONT"
    )


def test_the_models_own_samples_are_stored_as_its_null(sandbox, tmp_path):
    """store_null_samples renders the audio model's samples like its generations and stores
    their model inputs beside the model version; the adapter's null_items() serves them (the
    calibrated rule's null), a second call with the same size keeps the file, and a model
    version without one says how to make it."""
    import shutil

    import numpy as np

    from sandbox.audio_adapter import load
    from sandbox.audio_features import input_sha256
    from sandbox.audio_platform import store_null_samples
    from sandbox.audio_train import NULL_INPUTS_FILE

    _, built, _ = sandbox
    mv_dir = tmp_path / built["model_dir"].name
    shutil.copytree(built["model_dir"], mv_dir)
    adapter = load(mv_dir)
    with pytest.raises(FileNotFoundError, match="store_null_samples"):
        adapter.null_items()
    path = store_null_samples(mv_dir, 3, workers=1)
    assert path == mv_dir / NULL_INPUTS_FILE
    stamp = path.stat().st_mtime_ns
    items = adapter.null_items()
    assert len(items) == 3 and all(x.shape == FS.shape and np.isfinite(x).all() for x in items)
    assert len({input_sha256(x) for x in items}) == 3  # three different samples
    trained = set(adapter.mv.manifest["input_sha256"])
    assert not {adapter.content_sha256(x) for x in items} & trained
    assert store_null_samples(mv_dir, 3, workers=1) == path and path.stat().st_mtime_ns == stamp
    assert not list(mv_dir.glob(".*tmp*"))  # written aside and renamed, nothing left behind
