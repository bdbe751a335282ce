"""The portal's secrets: argon2id password hashes and session digests, in their own DuckDB
file, TRIBUTARY_HOME/portal/credentials.duckdb (folder and file readable by the owner only).

Not in the warehouse, because everything in the warehouse is for auditors: `tributary audit
query` reads it, every period snapshot is a copy of it, and DuckDB has no per-table grants, so
the only sure way to keep a secret from them is for it not to be there. What an auditor needs
(users and their holders, disputes and their events, the access log) stays in the warehouse.
A restore of the warehouse from a snapshot leaves this file alone: passwords and sessions are
never rolled back.

DuckDB writes one database per transaction, so a change to both files is two transactions, in
an order that makes a kill between them harmless and a rerun complete it:
- a new user: its password here first, then its row in the warehouse (a password without a user
  signs nobody in; the rerun sets it again);
- disabling: the warehouse first (a disabled user's sessions are refused whatever this file
  says), then its sessions end here (the rerun ends them).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from settlement.warehouse import _open, run_sql


def path_for(warehouse_path: Path) -> Path:
    return Path(warehouse_path).parent / "portal" / "credentials.duckdb"


def ensure(warehouse_path: Path) -> Path:
    """Create the file and its tables if missing (idempotent); its path."""
    path = path_for(warehouse_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    con = _open(path, read_only=False)
    try:
        run_sql(con, "credentials/schema")
    finally:
        con.close()
    os.chmod(path, 0o600)
    return path


@contextmanager
def connect(warehouse_path: Path, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    path = path_for(warehouse_path)
    if not path.exists():
        ensure(warehouse_path)
    con = _open(path, read_only=read_only)
    try:
        yield con
    finally:
        con.close()
