"""The access log's journal: each line of the access log is appended to a file and fsynced
before the response goes out, and loaded into `portal.access_log` in batches.

Why: writing the warehouse for every page (open read-write, insert, commit, close with its
checkpoint) was half of a statement page's time (benchmarks/portal_pages.py). An fsynced
append is what makes an acknowledged view logged; the batch load is what makes it queryable.

Crash safety (kill -9 at any instant):
- a line is acknowledged only after its fsync; a kill mid-append leaves at most one torn last
  line of a view that was never answered, which the loader skips;
- a batch is taken by renaming the journal to a unique `access_log.<ns>-<pid>.loading` name
  (one rename: a line is in the journal or in exactly one batch); the batch's rows and its name
  (`portal.access_journal_loads`) are inserted in one transaction, and the file is deleted after,
  so a batch left behind by a kill is loaded on the next flush if its name is not recorded yet
  and deleted if it is: never lost, never twice.
The portal flushes on start, every `flush_s` seconds, and on shutdown.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

# the one folder fsync of every crash-safe writer (a kill series hooks it there by name)
from settlement.lifecycle import _fsync_dir
from settlement.warehouse import query, run_sql, transaction

FIELDS = ("accessed_at", "user_id", "rights_holder_id", "client", "action", "path", "subject", "status")


_JOURNALS: dict[str, AccessJournal] = {}
_JOURNALS_LOCK = threading.Lock()


def journal_for(folder: Path) -> AccessJournal:
    """One journal object per folder and process: its lock orders appends and batch renames."""
    key = str(Path(folder).resolve())
    with _JOURNALS_LOCK:
        if key not in _JOURNALS:
            _JOURNALS[key] = AccessJournal(Path(folder))
        return _JOURNALS[key]


class AccessJournal:
    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / "access_log.jsonl"
        self._lock = threading.Lock()

    def append(self, row: dict) -> None:
        """Append one access-log row and fsync it (then the view may be acknowledged)."""
        line = json.dumps({k: (row[k].isoformat() if isinstance(row[k], datetime) else row[k]) for k in FIELDS},
                          ensure_ascii=True) + "\n"  # fmt: skip
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line.encode())
                os.fsync(fd)
            finally:
                os.close(fd)

    def flush(self, connect: Callable) -> int:
        """Load every batch into the warehouse (`connect()`: a writable connection context);
        returns the rows loaded now."""
        with self._lock:
            if self.path.exists() and self.path.stat().st_size:
                os.replace(self.path, self.folder / f"access_log.{time.time_ns()}-{os.getpid()}.loading")
                _fsync_dir(self.folder)
        loaded = 0
        for batch in sorted(self.folder.glob("access_log.*.loading")):
            rows = _rows(batch)
            with connect() as con:
                if not query(con, "marts/access_journal_loaded", {"batch": batch.name}):
                    with transaction(con):
                        for row in rows:
                            run_sql(con, "loads/portal_access", {("now" if k == "accessed_at" else k): v
                                                                 for k, v in row.items()})  # fmt: skip
                        run_sql(con, "loads/access_journal_loaded", {"batch": batch.name, "rows": len(rows)})
                    loaded += len(rows)
            batch.unlink()
        return loaded


def _rows(batch: Path) -> list[dict]:
    rows = []
    for text in batch.read_bytes().decode("utf-8", "replace").split("\n"):
        try:
            row = json.loads(text)
        except ValueError:  # a torn last line: its view was never acknowledged
            continue
        if isinstance(row, dict) and set(FIELDS) <= set(row):
            row["accessed_at"] = datetime.fromisoformat(row["accessed_at"])
            rows.append({k: row[k] for k in FIELDS})
    return rows
