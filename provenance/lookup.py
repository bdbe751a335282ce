"""Answer a provenance check from the warehouse: exact sha256 first, then the fingerprint.

A match answers with the generation (platform, model version, generation id, when), its licence
(the platform's contract in force that month) and the attribution breakdown it was settled with
(the shares in force: staging.shares), all read from stored rows.
"""

from __future__ import annotations

import hashlib

from provenance import fingerprint
from settlement.warehouse import query

# An audio copy is a match when at least this many landmarks agree on one offset, and they are
# at least this share of the query's landmarks. Measured on the sandbox (tests/test_provenance.py):
# true copies (re-encoded, trimmed, louder) agree on 70-100 % of their landmarks, unrelated
# audio on under 1 % (at most a dozen).
MIN_VOTES, MIN_AUDIO_SHARE = 20, 0.10
MIN_MIDI_SHARE = 0.5  # of the query's interval n-grams found in one generation


def _answer(con, platform_id: str, generation_id: str, method: str, confidence: float) -> dict:
    rows = query(con, "marts/provenance_generation", {"platform_id": platform_id, "generation_id": generation_id})
    if not rows:
        return {"matched": False, "method": method, "detail": "no logged generation matches"}
    g = rows[0]
    period = g["created_at"].strftime("%Y-%m")
    licence = query(con, "marts/provenance_licence", {"period": period, "platform_id": platform_id})
    shares = query(con, "marts/provenance_shares", {"platform_id": platform_id, "generation_id": generation_id})
    return {
        "matched": True,
        "method": method,
        "confidence": round(confidence, 4),
        "generation": {
            "platform_id": g["platform_id"], "platform_name": g["platform_name"],
            "generation_id": g["generation_id"], "model_version": g["model_version"],
            "created_at": g["created_at"].isoformat() + "Z", "audio_sha256": g["audio_sha256"],
        },
        "licence": {
            "status": "licensed" if licence else "no contract in force",
            "contract_id": licence[0]["contract_id"] if licence else None,
            "contract_version": licence[0]["contract_version"] if licence else None,
            "settled_period": g["settled_period"],
        },
        "attribution": [
            {"work_id": s["work_id"], "title": s["title"], "residual": s["is_residual"], "share": format(s["share"], "f"),
             "method": s["method"], "attribution_run_id": s["run_id"]}
            for s in shares
        ],
    }  # fmt: skip


def by_sha256(con, sha256: str) -> dict:
    rows = query(con, "marts/provenance_by_sha256", {"sha256": sha256})
    if rows:
        return _answer(con, rows[0]["platform_id"], rows[0]["generation_id"], "sha256", 1.0)
    return {"matched": False, "method": "sha256", "detail": "no logged generation has a file with this sha256"}


def by_file(con, data: bytes, filename: str = "") -> dict:
    """Exact hash, then MIDI n-grams (a MIDI file) or audio landmarks (anything else)."""
    exact = by_sha256(con, hashlib.sha256(data).hexdigest())
    if exact["matched"]:
        return exact
    if data[:4] == b"MThd" or filename.lower().endswith((".mid", ".midi")):
        grams = fingerprint.midi_print(data)
        rows = query(con, "marts/provenance_midi_match", {"grams": grams})
        share = rows[0]["votes"] / len(grams) if rows else 0.0
        if rows and share >= MIN_MIDI_SHARE:
            return _answer(con, rows[0]["platform_id"], rows[0]["generation_id"], "midi_fingerprint", share)
        return {"matched": False, "method": "midi_fingerprint", "confidence": round(share, 4),
                "detail": "no logged generation has this melody (in any key)"}  # fmt: skip
    p = fingerprint.audio_print(data)
    if len(p.hashes) == 0:
        return {"matched": False, "method": "audio_fingerprint", "confidence": 0.0,
                "detail": "the audio holds no landmarks (silence?)"}  # fmt: skip
    rows = query(con, "marts/provenance_audio_match", {"hashes": p.hashes.tolist(), "times": p.times.tolist()})
    votes = rows[0]["votes"] if rows else 0
    share = votes / len(p.hashes)
    if votes >= MIN_VOTES and share >= MIN_AUDIO_SHARE:
        return _answer(con, rows[0]["platform_id"], rows[0]["generation_id"], "audio_fingerprint", share)
    return {"matched": False, "method": "audio_fingerprint", "confidence": round(share, 4),
            "detail": "no logged generation sounds like this file"}  # fmt: skip
