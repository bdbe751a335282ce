"""The sandbox platform's catalog: real public-domain works from the corpus inside `music21`.

Every work is one melodic line (the first part that has notes) of one piece; each tune of an
ABC opus file is its own work. The catalog is written as two Parquet files under
``HOME/catalog``:

* ``works.parquet``  - identity and registry codes (work_id, ISWC, ISRC), title, composer,
  collection, style, source path, opus number, token count;
* ``tokens.parquet`` - the tokenised line (``sandbox.tokenizer``) and its sha256.

Parsing with music21 dominates the cost, so the events extracted from each source file are
cached as JSON under ``HOME/catalog/parse_cache``, keyed by the corpus-relative path, the
music21 version and the extractor version; a rebuild only parses what changed.

Run ``python -m sandbox.corpus --home var [--limit N]`` to build the catalog and its
(synthetic) rights; see docs/catalog.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import sys
import time
import warnings
from collections import Counter
from concurrent.futures import as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from sandbox.tokenizer import STYLES, Tokenizer
from sandbox.workers import process_pool

log = logging.getLogger(__name__)

# Bump when the event extraction changes: it is part of the parse-cache key, so stale cached
# events are never mixed with new ones.
EXTRACTOR_VERSION = 1
MIN_NOTE_EVENTS = 16
MAX_VOICES = 6  # most voices an ABC file may write as separate tunes of one piece

FOLDER_STYLE: dict[str, str] = {
    "bach": "bach",
    "palestrina": "palestrina",
    "monteverdi": "monteverdi",
    "essenFolksong": "essen",
    "oneills1850": "oneills",
    "ryansMammoth": "ryansmammoth",
    "beethoven": "beethoven",
    "mozart": "mozart",
    "haydn": "haydn",
    "schumann_robert": "schumann",
    "schumann_clara": "schumann",
    "trecento": "trecento",
    "josquin": "josquin",
    "ciconia": "ciconia",
    "handel": "handel",
    "weber": "weber",
}

# Used when a file's metadata names no composer (most ABC tunes and many krn files).
FOLDER_COMPOSER: dict[str, str] = {
    "bach": "Johann Sebastian Bach",
    "palestrina": "Giovanni Pierluigi da Palestrina",
    "monteverdi": "Claudio Monteverdi",
    "essenFolksong": "Traditional (Essen Folksong Collection)",
    "oneills1850": "Traditional (O'Neill's Music of Ireland, 1850)",
    "ryansMammoth": "Traditional (Ryan's Mammoth Collection, 1883)",
    "beethoven": "Ludwig van Beethoven",
    "mozart": "Wolfgang Amadeus Mozart",
    "haydn": "Joseph Haydn",
    "schumann_robert": "Robert Schumann",
    "schumann_clara": "Clara Schumann",
    "trecento": "Anonymous (Trecento)",
    "josquin": "Josquin des Prez",
    "ciconia": "Johannes Ciconia",
    "handel": "George Frideric Handel",
    "weber": "Carl Maria von Weber",
}


@dataclass(frozen=True)
class Selection:
    """Which files of one corpus folder enter the default catalog.

    The full corpus takes far longer than the build budget (about 8 minutes on 2 cores):
    Essen alone is 8,500 tunes and a few Beethoven quartets and Trecento scores take 5-30 s
    each for one line. The subset is fixed by sorted path, so it is the same on every machine.
    """

    folder: str
    max_files: int | None = None  # first N by sorted path; None keeps all
    max_bytes: int | None = None  # skip files larger than this: cost, not musical merit
    name_prefix: str = ""


DEFAULT_SELECTION: tuple[Selection, ...] = (
    Selection("oneills1850"),  # 39 ABC opus files, ~2,000 tunes
    Selection("ryansMammoth"),  # 1,059 single-tune ABC files
    Selection("essenFolksong", name_prefix="ballad"),  # 8 opus files, ~1,170 ballads
    Selection("bach"),  # 433 chorales
    Selection("palestrina", max_files=200),
    Selection("monteverdi"),
    # String-quartet movements are mostly compressed .mxl: 60 kB there is ~0.6 MB of XML and
    # several seconds of parsing for one line, so the cap keeps the short movements only.
    Selection("mozart", max_bytes=60_000),
    Selection("haydn", max_bytes=60_000),
    Selection("josquin"),
    Selection("schumann_robert", max_bytes=60_000),
    Selection("schumann_clara", max_bytes=60_000),
    Selection("beethoven", max_bytes=60_000),
    Selection("trecento", max_bytes=150_000),
    Selection("ciconia"),
    Selection("handel"),
    Selection("weber"),
)

# Single-work, quick-to-parse folders that a small (test) catalog draws from in turn.
LIMIT_FOLDERS: tuple[str, ...] = ("bach", "ryansMammoth", "palestrina", "monteverdi", "josquin")
LIMIT_MAX_BYTES = 40_000

WORKS_SCHEMA = pa.schema(
    [
        ("work_id", pa.string()),
        ("iswc", pa.string()),
        ("isrc", pa.string()),
        ("title", pa.string()),
        ("composer", pa.string()),
        ("collection", pa.string()),
        ("style", pa.string()),
        ("source", pa.string()),
        ("opus_number", pa.int32()),
        ("n_tokens", pa.int32()),
    ]
)
TOKENS_SCHEMA = pa.schema(
    [
        ("work_id", pa.string()),
        ("style", pa.string()),
        ("tokens", pa.list_(pa.int32())),
        ("n_tokens", pa.int32()),
        ("token_sha256", pa.string()),
    ]
)


# --- identifiers ---------------------------------------------------------------------------


def corpus_root() -> Path:
    from music21 import common

    return Path(common.getCorpusFilePath())


def make_work_id(source: str, opus_number: int | None) -> str:
    """Hash of the corpus-relative path, so ids do not depend on where music21 is installed."""
    digest = hashlib.sha256(source.encode("utf-8")).hexdigest()[:10]
    return f"W{digest}#{opus_number if opus_number is not None else 0}"


def iswc_check_digit(digits: str) -> int:
    """ISWC check digit over the nine digits after the 'T' prefix (which weighs 1)."""
    if len(digits) != 9 or not digits.isdigit():
        raise ValueError(f"ISWC body must be 9 digits, got {digits!r}")
    total = 1 + sum(i * int(d) for i, d in enumerate(digits, start=1))
    return (10 - total % 10) % 10


def format_iswc(digits: str) -> str:
    return f"T-{digits[0:3]}.{digits[3:6]}.{digits[6:9]}-{iswc_check_digit(digits)}"


def is_valid_iswc(iswc: str) -> bool:
    if len(iswc) != 15 or not iswc.startswith("T-"):
        return False
    body = iswc[2:13].replace(".", "")
    if iswc[5] != "." or iswc[9] != "." or iswc[13] != "-" or not body.isdigit() or len(body) != 9:
        return False
    return iswc[14].isdigit() and int(iswc[14]) == iswc_check_digit(body)


_ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _hash_int(*parts: str) -> int:
    return int.from_bytes(hashlib.sha256("\x1f".join(parts).encode("utf-8")).digest()[:12], "big")


def _candidate_iswc(work_id: str, attempt: int) -> str:
    return format_iswc(f"{_hash_int('iswc', work_id, str(attempt)) % 10**9:09d}")


def _candidate_isrc(work_id: str, attempt: int) -> str:
    # QZ is the ISRC prefix handed to self-registering labels; the registrant code varies per
    # work so 5-digit designations rarely collide. "26" is the catalog's registration year.
    h = _hash_int("isrc", work_id, str(attempt))
    registrant = "".join(_ALNUM[(h // 36**i) % 36] for i in range(3))
    return f"QZ{registrant}26{(h // 36**3) % 100_000:05d}"


def assign_codes(work_ids: list[str]) -> dict[str, tuple[str, str]]:
    """ISWC and ISRC per work: a hash of the work_id, re-drawn in work_id order on collision.

    Registry codes must be unique; resolving collisions in sorted order keeps the result
    deterministic for a given catalog.
    """
    seen_iswc: set[str] = set()
    seen_isrc: set[str] = set()
    codes: dict[str, tuple[str, str]] = {}
    for wid in sorted(work_ids):
        attempt = 0
        while (iswc := _candidate_iswc(wid, attempt)) in seen_iswc:
            attempt += 1
        attempt = 0
        while (isrc := _candidate_isrc(wid, attempt)) in seen_isrc:
            attempt += 1
        seen_iswc.add(iswc)
        seen_isrc.add(isrc)
        codes[wid] = (iswc, isrc)
    return codes


def token_sha256(tokens: list[int]) -> str:
    return hashlib.sha256(np.asarray(tokens, dtype="<i4").tobytes()).hexdigest()


# --- source selection ----------------------------------------------------------------------


def _listing(root: Path) -> dict[str, list[str]]:
    """Corpus-relative paths of the core corpus grouped by top folder, sorted."""
    from music21 import corpus

    by_folder: dict[str, list[str]] = {}
    for p in corpus.getCorePaths():
        rel = Path(p).relative_to(root).as_posix()
        by_folder.setdefault(rel.split("/", 1)[0], []).append(rel)
    return {k: sorted(v) for k, v in by_folder.items()}


def select_sources(root: Path, limit: int | None = None) -> list[str]:
    listing = _listing(root)
    if limit is not None:
        # Round-robin over small single-work files: every collection appears even for tiny
        # limits, and the picks depend only on sorted paths.
        pools = [
            [r for r in listing.get(f, []) if (root / r).stat().st_size <= LIMIT_MAX_BYTES]
            for f in LIMIT_FOLDERS
        ]
        picked: list[str] = []
        i = 0
        while len(picked) < limit and any(i < len(p) for p in pools):
            picked.extend(p[i] for p in pools if i < len(p))
            i += 1
        return picked[:limit]  # round-robin order: build_catalog trims works by it
    chosen: list[str] = []
    for sel in DEFAULT_SELECTION:
        files = [
            r
            for r in listing.get(sel.folder, [])
            if Path(r).name.startswith(sel.name_prefix)
            and (sel.max_bytes is None or (root / r).stat().st_size <= sel.max_bytes)
        ]
        chosen.extend(files[: sel.max_files] if sel.max_files is not None else files)
    return sorted(chosen)


# --- parsing -------------------------------------------------------------------------------


def _cache_path(cache_dir: Path, source: str, m21_version: str) -> Path:
    key = hashlib.sha256(f"{source}\x1f{m21_version}\x1f{EXTRACTOR_VERSION}".encode()).hexdigest()
    return cache_dir / f"{key[:32]}.json"


def _melody_events(score: Any) -> list[list[Any]]:
    """Events of the first part with notes: the top line, which is the tune for folk music
    and the soprano/cantus for chorales and polyphony."""
    from music21 import chord, note, stream

    parts = list(score.parts) if hasattr(score, "parts") and len(score.parts) else [score]
    for part in parts:
        measures = list(part.getElementsByClass(stream.Measure))
        # A part without measures (some humdrum/xml files) is read as one long bar.
        containers = measures or [part.flatten()]
        events: list[list[Any]] = []
        for i, m in enumerate(containers):
            if i > 0:
                events.append(["bar"])
            voices = list(m.voices) if hasattr(m, "voices") else []
            # Taking only the first voice keeps it one line; interleaving voices would not be.
            src = voices[0] if voices else m
            for el in src.notesAndRests:
                ql = float(el.quarterLength)
                if ql <= 0:  # grace notes carry no duration in this vocabulary
                    continue
                if isinstance(el, chord.Chord):
                    if not el.pitches:
                        continue
                    events.append(["note", max(p.midi for p in el.pitches), ql])
                elif isinstance(el, note.Note):
                    events.append(["note", el.pitch.midi, ql])
                elif isinstance(el, note.Rest):
                    events.append(["rest", ql])
        if any(e[0] == "note" for e in events):
            while events and events[-1][0] == "bar":
                events.pop()
            return events
    return []


def _metadata(score: Any) -> tuple[str | None, str | None, int | None]:
    md = score.metadata
    if md is None:
        return None, None, None
    title = md.title or md.movementName
    composer = md.composer
    number = md.number
    try:
        number = int(str(number).strip()) if number not in (None, "") else None
    except ValueError:
        number = None
    return (str(title) if title else None, str(composer) if composer else None, number)


def parse_source(args: tuple[str, str, str]) -> tuple[str, dict[str, Any] | None, str | None, bool]:
    """Worker: return (source, parsed, error, from_cache) for one corpus file."""
    source, root, cache_dir = args
    import music21

    cache = _cache_path(Path(cache_dir), source, music21.__version__)
    if cache.exists():
        try:
            return source, json.loads(cache.read_text(encoding="utf-8")), None, True
        except (OSError, json.JSONDecodeError):
            pass  # a torn or corrupt cache file is simply re-parsed
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parsed = music21.converter.parse(
                str(Path(root) / source), forceSource=True, storePickle=False
            )
            scores = list(parsed.scores) if isinstance(parsed, music21.stream.Opus) else [parsed]
            works = []
            for position, score in enumerate(scores, start=1):
                title, composer, number = _metadata(score)
                if isinstance(parsed, music21.stream.Opus) and number is None:
                    number = position
                works.append(
                    {
                        "opus_number": number if isinstance(parsed, music21.stream.Opus) else None,
                        "title": title,
                        "composer": composer,
                        "events": _melody_events(score),
                    }
                )
    except Exception as exc:  # noqa: BLE001 - one bad file must never stop the build
        return source, None, f"{type(exc).__name__}: {exc}", False
    result = {"source": source, "music21": music21.__version__, "works": works}
    tmp = cache.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(result, separators=(",", ":")), encoding="utf-8")
    os.replace(tmp, cache)  # atomic, so a killed build never leaves a half-written entry
    return source, result, None, False


# --- build ---------------------------------------------------------------------------------


def _write_parquet(table: pa.Table, path: Path) -> None:
    tmp = path.with_suffix(".parquet.tmp")
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, path)


def _fallback_title(source: str, opus_number: int | None) -> str:
    stem = Path(source).stem
    return f"{stem} No. {opus_number}" if opus_number is not None else stem


def _works_of(tunes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The works in one parsed file.

    Some ABC files (the Josquin chansons) write each voice of one piece as its own tune
    under one title; that is one work, whose top voice (the first tune) is the line we keep.
    Done here rather than in the parser so the rule can change without re-parsing.
    """
    titles = {t["title"] for t in tunes}
    # Essen files also repeat titles across hundreds of tunes, so only a handful of tunes
    # under one title reads as voices of one piece.
    if 1 < len(tunes) <= MAX_VOICES and len(titles) == 1 and None not in titles:
        return [{**tunes[0], "opus_number": None}]
    return tunes


def build_catalog(home: Path, limit: int | None = None, workers: int = 2) -> dict:
    """Parse (or read from cache) the selected corpus files and write works/tokens Parquet.

    Returns stats: works, works_per_collection, files, parsed_files, cached_files,
    failed_files, skipped_short, duplicates, seconds.
    """
    from tqdm import tqdm

    started = time.perf_counter()
    home = Path(home)
    out = home / "catalog"
    cache_dir = out / "parse_cache"
    cache_dir.mkdir(parents=True, exist_ok=True)
    root = corpus_root()
    sources = select_sources(root, limit)
    # Largest first so one slow file does not finish alone at the end of the pool.
    ordered = sorted(sources, key=lambda s: (-(root / s).stat().st_size, s))
    jobs = [(s, str(root), str(cache_dir)) for s in ordered]

    parsed: dict[str, dict[str, Any]] = {}
    failed: list[str] = []
    n_parsed = n_cached = 0
    bar = tqdm(total=len(jobs), desc="catalog", unit="file", disable=None, file=sys.stderr)

    def _collect(res: tuple[str, dict[str, Any] | None, str | None, bool]) -> None:
        nonlocal n_parsed, n_cached
        source, result, error, from_cache = res
        bar.update(1)
        if result is None:
            log.warning("skipping %s: music21 could not parse it (%s)", source, error)
            failed.append(source)
            return
        parsed[source] = result
        if from_cache:
            n_cached += 1
        else:
            n_parsed += 1

    if workers > 1 and len(jobs) > 1:
        with process_pool(workers) as pool:
            for res in as_completed([pool.submit(parse_source, job) for job in jobs]):
                _collect(res.result())
    else:
        for job in jobs:
            _collect(parse_source(job))
    bar.close()

    tok = Tokenizer()
    rows: list[dict[str, Any]] = []
    skipped_short = 0
    for source in sorted(parsed):
        folder = source.split("/", 1)[0]
        style = FOLDER_STYLE.get(folder, "other")
        assert style in STYLES
        for w in _works_of(parsed[source]["works"]):
            events = [tuple(e) for e in w["events"]]
            if sum(1 for e in events if e[0] == "note") < MIN_NOTE_EVENTS:
                skipped_short += 1
                continue
            tokens = tok.encode(events, style)
            rows.append(
                {
                    "work_id": make_work_id(source, w["opus_number"]),
                    "title": w["title"] or _fallback_title(source, w["opus_number"]),
                    "composer": w["composer"] or FOLDER_COMPOSER.get(folder, "Anonymous"),
                    "collection": folder,
                    "style": style,
                    "source": source,
                    "opus_number": w["opus_number"],
                    "tokens": tokens,
                    "n_tokens": len(tokens),
                    "token_sha256": token_sha256(tokens),
                }
            )
    if limit is not None:
        # A multi-work file can overshoot; keep works of the earliest picked files.
        rank = {src: i for i, src in enumerate(sources)}
        rows.sort(key=lambda r: (rank[r["source"]], r["work_id"]))
        rows = rows[:limit]
    rows.sort(key=lambda r: r["work_id"])
    ids = [r["work_id"] for r in rows]
    if len(set(ids)) != len(ids):
        dup = next(i for i, c in Counter(ids).items() if c > 1)
        raise RuntimeError(f"work_id collision {dup}: two works share a source and number")

    # The corpus holds some pieces twice (e.g. chorales harmonised twice over one melody);
    # identical lines would split one work's royalties between two ids, so keep the first.
    seen: set[str] = set()
    unique: list[dict[str, Any]] = []
    for r in rows:
        if r["token_sha256"] in seen:
            continue
        seen.add(r["token_sha256"])
        unique.append(r)
    duplicates = len(rows) - len(unique)

    codes = assign_codes([r["work_id"] for r in unique])
    works = pa.Table.from_pylist(
        [
            {
                **{k: r[k] for k in WORKS_SCHEMA.names if k not in ("iswc", "isrc")},
                "iswc": codes[r["work_id"]][0],
                "isrc": codes[r["work_id"]][1],
            }
            for r in unique
        ],
        schema=WORKS_SCHEMA,
    )
    tokens = pa.Table.from_pylist(
        [{k: r[k] for k in TOKENS_SCHEMA.names} for r in unique], schema=TOKENS_SCHEMA
    )
    _write_parquet(works, out / "works.parquet")
    _write_parquet(tokens, out / "tokens.parquet")

    per_collection = Counter(r["collection"] for r in unique)
    return {
        "works": len(unique),
        "works_per_collection": dict(sorted(per_collection.items())),
        "collections": len(per_collection),
        "composers": len({r["composer"] for r in unique}),
        "files": len(sources),
        "parsed_files": n_parsed,
        "cached_files": n_cached,
        "failed_files": len(failed),
        "failed_sources": sorted(failed),
        "skipped_short": skipped_short,
        "duplicates": duplicates,
        "seconds": round(time.perf_counter() - started, 2),
    }


def main(argv: list[str] | None = None) -> int:
    from sandbox.rights import build_rights

    ap = argparse.ArgumentParser(prog="python -m sandbox.corpus", description=__doc__.split("\n")[0])
    ap.add_argument("--home", type=Path, default=Path("var"))
    ap.add_argument("--limit", type=int, default=None, help="small deterministic catalog")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    stats = build_catalog(args.home, limit=args.limit, workers=args.workers)
    rights = build_rights(args.home)
    print(f"catalog at {args.home / 'catalog'}")
    print(f"{'collection':<18}{'works':>7}")
    for coll, n in stats["works_per_collection"].items():
        print(f"{coll:<18}{n:>7}")
    print(f"{'total':<18}{stats['works']:>7}  ({stats['composers']} composers)")
    print(
        f"files {stats['files']} (parsed {stats['parsed_files']}, cached {stats['cached_files']}, "
        f"failed {stats['failed_files']}); skipped short {stats['skipped_short']}; "
        f"duplicates {stats['duplicates']}; {stats['seconds']:.1f}s"
    )
    print(
        f"rights (synthetic): {rights['holders']} holders, {rights['splits']} split rows, "
        f"{rights['multi_holder_share']:.0%} of works with several holders"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
