"""A settled month for the portal tests: the settlement fixtures' warehouse with splits and
shares set so each of two holders has works, lines and generations of its own, one audio
generation per holder (a real FLAC in the lake, recorded with its sha256 the way ingest does)
and symbolic generations with real sandbox tokens; calculated with the real calculation,
statements built with the real builder, and two portal users per holder."""

from __future__ import annotations

import hashlib
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import numpy as np
import soundfile as sf
from settlement_fixtures import seed_warehouse

from sandbox.tokenizer import Tokenizer
from settlement import lifecycle, statements
from settlement.calculate import calculate_period
from settlement.config import Settings
from settlement.warehouse import warehouse

PERIOD = "2026-10"  # closed
NEXT = "2026-11"  # calculated, open to corrections
A, B = "RH00", "RH01"
USERS = {  # user -> (holder, password)
    "ana@a.example": (A, "correct horse battery A"),
    "alex@a.example": (A, "second user of holder A"),
    "bea@b.example": (B, "correct horse battery B"),
}
# A work id is free text from a catalog: this one holds a slash, a query and a fragment marker.
HOSTILE_WORK = "Wé/002 ?&#%"
WORKS = ("W000", "W001", HOSTILE_WORK, "W003", "W004", "W005")
A_WORKS, B_WORKS = WORKS[:3], WORKS[3:]
AUDIO = {"g0000": A, "g0003": B}  # one audio generation paying each holder


def _flac(seconds: float, freq: float) -> bytes:
    import io

    sr = 16_000
    t = np.arange(int(sr * seconds)) / sr
    out = io.BytesIO()
    sf.write(out, (0.3 * np.sin(2 * np.pi * freq * t)).astype("float32"), sr, format="FLAC")
    return out.getvalue()


def build_portal_home(home: Path) -> dict:
    settings = Settings(home)
    db = settings.warehouse
    seed_warehouse(db, n_works=6, n_generations=12, n_holders=3, seed=1)
    tok = Tokenizer()
    model_dir = settings.models / "p1" / "mv1"
    model_dir.mkdir(parents=True)
    (model_dir / "tokenizer.json").write_text(tok.to_json())
    with warehouse(db) as con:
        for table in ("ref.works", "ref.training_manifest"):
            con.execute(f"UPDATE {table} SET work_id = ? WHERE work_id = 'W002'", [HOSTILE_WORK])
        con.execute("DELETE FROM ref.splits")
        for w in WORKS:
            holder = A if w in A_WORKS else B
            for right in ("publishing", "master"):
                con.execute("INSERT INTO ref.splits VALUES (?, ?, ?, 1, DATE '2020-01-01', NULL)", [w, right, holder])
        con.execute("UPDATE ref.model_versions SET local_path = ?", [str(model_dir)])
        # generation i draws on work i % 6 only: 0.6 attributed, 0.4 residual
        con.execute("DELETE FROM attribution.shares")
        for i in range(12):
            gid, w = f"g{i:04d}", WORKS[i % 6]
            con.execute("INSERT INTO attribution.shares VALUES ('run1', 'p1', ?, ?, false, 0.6, 1.0, 1, 'trak', 'mv1')", [gid, w])
            con.execute("INSERT INTO attribution.shares VALUES ('run1', 'p1', ?, NULL, true, 0.4, NULL, 0, 'trak', 'mv1')", [gid])
            events = [("note", 60 + (i + k) % 12, 0.5 + 0.5 * (k % 2)) for k in range(24)]
            con.execute("UPDATE raw.generations SET output_tokens = ? WHERE generation_id = ?", [tok.encode(events, "bach"), gid])
        for gid, holder in AUDIO.items():
            data = _flac(1.5, 440.0 if holder == A else 330.0)
            sha = hashlib.sha256(data).hexdigest()
            rel = f"audio/platform=p1/{sha}.flac"
            (settings.lake / rel).parent.mkdir(parents=True, exist_ok=True)
            (settings.lake / rel).write_bytes(data)
            con.execute("UPDATE raw.generations SET output_tokens = NULL WHERE generation_id = ?", [gid])
            con.execute("INSERT INTO raw.generation_audio VALUES ('p1', ?, ?, ?, ?, 16000, 1.5, 'ingest', ?)",
                        [gid, rel, sha, len(data), datetime(2026, 11, 1)])
    # October settled and closed (its statements final), November calculated (a draft): the
    # portal shows months, and a dispute meets "the next calculation" in November.
    calculate_period(db, PERIOD, run_id="calc-portal", by="alice")
    lifecycle.approve_period(db, PERIOD, by="bob")
    lifecycle.close_period(db, PERIOD, by="bob", snapshots=settings.home / "snapshots")
    statements.build_statements(db, settings.statements, PERIOD)
    with warehouse(db) as con:
        con.execute(
            "INSERT INTO raw.generations SELECT platform_id, replace(generation_id, 'g', 'n'), model_version,"
            " created_at + INTERVAL 31 DAY, style, prompt, output_tokens, territory, revenue_amount * 2,"
            " revenue_currency, TIMESTAMP '2026-11-01', TIMESTAMP '2026-12-01', ingest_run_id, loaded_at"
            " FROM raw.generations WHERE generation_id LIKE 'g%' AND output_tokens IS NOT NULL"
        )
        con.execute(
            "INSERT INTO attribution.shares SELECT run_id, platform_id, replace(generation_id, 'g', 'n'), work_id,"
            " is_residual, share, score, rank, method, model_version FROM attribution.shares"
            " WHERE generation_id IN (SELECT replace(generation_id, 'n', 'g') FROM raw.generations"
            " WHERE generation_id LIKE 'n%')"
        )
        # the month's ingest window reconciles with what landed
        con.execute("UPDATE raw.ingest_windows SET received = (SELECT count(*) FROM raw.generations WHERE"
                    " generation_id LIKE 'n%'), reported_count = (SELECT count(*) FROM raw.generations WHERE"
                    " generation_id LIKE 'n%') WHERE window_start = TIMESTAMP '2026-11-01'")  # fmt: skip
    calculate_period(db, NEXT, run_id="calc-portal-next", by="alice")
    statements.build_statements(db, settings.statements, NEXT)
    from portal import accounts

    for user, (holder, password) in USERS.items():
        accounts.add_user(db, user=user, rights_holder_id=holder, display_name=user.split("@")[0].title(),
                          password=password, by="carol")  # fmt: skip
    with warehouse(db, read_only=True) as con:
        lines = con.execute("SELECT rights_holder_id, platform_id, work_id, right_type, amount FROM "
                            "settlement.statement_lines WHERE period = ? ORDER BY ALL", [PERIOD]).fetchall()  # fmt: skip
        files = con.execute("SELECT rights_holder_id, kind, sha256 FROM settlement.statement_files "
                            "WHERE period = ? ORDER BY ALL", [PERIOD]).fetchall()  # fmt: skip
    assert {r[0] for r in lines} >= {A, B} and sum((r[4] for r in lines), Decimal(0)) > 0
    return {"settings": settings, "lines": lines, "files": files}
