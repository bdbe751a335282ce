"""`tributary provenance index`: fingerprint every logged generation not fingerprinted yet.

Audio generations: the file the ingest landed in the lake (content-addressed, its sha256
checked at ingest). Symbolic generations: the melody of the output tokens, read through the
model version's `tokenizer.json` (a vocabulary whose pitch tokens are `<p:MIDI>`); a platform
whose model ships no such vocabulary gets no MIDI fingerprint (recorded with 0 hashes).

Crash-safe: each generation's hashes and its row in provenance.prints are written in one
transaction (batched), so a kill leaves whole generations indexed and the rerun does the rest;
nothing is indexed twice.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from provenance import fingerprint
from settlement.warehouse import query, run_sql, transaction, warehouse

BATCH = int(os.environ.get("TRIBUTARY_PROVENANCE_BATCH", "32"))  # generations a transaction
_PITCH = re.compile(r"<p:(\d+)>")


def _token_pitches(tokens: list[int], model_dir: str | None, cache: dict) -> list[int] | None:
    if not model_dir:
        return None
    if model_dir not in cache:
        path = Path(model_dir) / "tokenizer.json"
        vocab = json.loads(path.read_text()).get("vocab") if path.exists() else None
        cache[model_dir] = {i: int(m.group(1)) for i, t in enumerate(vocab or []) if (m := _PITCH.fullmatch(t))}
    pitch_of = cache[model_dir]
    return [pitch_of[t] for t in tokens if t in pitch_of] if pitch_of else None


def _print_row(row: dict, lake: Path, cache: dict) -> tuple[str, list]:
    """(kind, hashes) of one generation: audio landmarks as (hash, t) pairs, or MIDI n-grams."""
    if row["audio_path"]:
        path = (lake / row["audio_path"]).resolve()
        if not path.is_relative_to(lake.resolve()) or not path.exists():
            return "audio", []
        try:
            p = fingerprint.audio_print(path.read_bytes())
        except fingerprint.FingerprintError:
            return "audio", []
        return "audio", list(zip(p.hashes.tolist(), p.times.tolist(), strict=True))
    pitches = _token_pitches(list(row["output_tokens"] or []), row["local_path"], cache)
    if not pitches or len(pitches) <= fingerprint.MIDI_NGRAM:
        return "midi", []
    return "midi", fingerprint.interval_ngrams(pitches)


def index(warehouse_path: Path, lake: Path, limit: int | None = None) -> dict:
    run_id = f"provenance.index@{uuid.uuid4().hex[:12]}"
    done = {"audio": 0, "midi": 0, "empty": 0}
    cache: dict = {}
    while limit is None or sum(done.values()) < limit:
        with warehouse(warehouse_path) as con:
            rows = query(con, "marts/provenance_unindexed", {"limit": BATCH})
        if not rows:
            break
        prints = [(row, *_print_row(row, lake, cache)) for row in rows]  # no connection held
        now = datetime.now(UTC).replace(tzinfo=None)
        with warehouse(warehouse_path) as con, transaction(con):
            for row, kind, hashes in prints:
                key = {"platform_id": row["platform_id"], "generation_id": row["generation_id"]}
                run_sql(con, "loads/provenance_print_clear", key)
                if kind == "audio" and hashes:
                    arr = np.asarray(hashes, dtype=np.int64)
                    frame = {"hash": arr[:, 0], "t": arr[:, 1].astype(np.int32)}
                    _append(con, "loads/provenance_landmarks", frame, key)
                elif hashes:
                    _append(con, "loads/provenance_midi_grams", {"gram": np.asarray(hashes, dtype=object)}, key)
                run_sql(con, "loads/provenance_print", key | {"kind": kind, "n_hashes": len(hashes), "run_id": run_id,
                                                              "now": now})  # fmt: skip
                done[kind if hashes else "empty"] += 1
    return {"run_id": run_id, **done}


def _append(con, load: str, columns: dict, key: dict) -> None:
    """Bulk-insert one generation's hashes through a registered pandas frame (one statement)."""
    import pandas as pd

    n = len(next(iter(columns.values())))
    frame = pd.DataFrame({**columns, "platform_id": [key["platform_id"]] * n,
                          "generation_id": [key["generation_id"]] * n})  # fmt: skip
    con.register("provenance_rows", frame)
    try:
        run_sql(con, load)
    finally:
        con.unregister("provenance_rows")
