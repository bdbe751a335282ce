"""The DuckDB warehouse: connecting, migrating, and running the SQL files under `sql/`.

Every statement the warehouse runs lives in `sql/`; Python only picks the file and binds
named parameters, so an auditor can read the whole data model without reading Python.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

SQL_DIR = Path(__file__).resolve().parents[1] / "sql"
_MIGRATED: set[str] = set()


class WarehouseError(RuntimeError):
    """A warehouse operation that cannot go ahead, with the reason in words."""


def sql_text(name: str) -> str:
    """The text of `sql/<name>.sql`, e.g. sql_text("marts/pools")."""
    path = SQL_DIR / f"{name}.sql"
    if not path.exists():
        raise WarehouseError(f"no SQL file {path}")
    return path.read_text()


def migrate(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Apply numbered migrations once each, in order; returns the ones applied now."""
    con.execute(
        "CREATE TABLE IF NOT EXISTS main.schema_migrations "
        "(name VARCHAR PRIMARY KEY, sha256 VARCHAR NOT NULL, applied_at TIMESTAMP NOT NULL)"
    )
    done = dict(con.execute("SELECT name, sha256 FROM main.schema_migrations").fetchall())
    applied = []
    for path in sorted((SQL_DIR / "migrations").glob("*.sql")):
        text = path.read_text()
        digest = hashlib.sha256(text.encode()).hexdigest()
        if path.name in done:
            if done[path.name] != digest:
                raise WarehouseError(
                    f"migration {path.name} was edited after it was applied; "
                    "add a new numbered migration instead"
                )
            continue
        con.execute("BEGIN")
        con.execute(text)
        con.execute(
            "INSERT INTO main.schema_migrations VALUES (?, ?, now()::TIMESTAMP)",
            [path.name, digest],
        )
        con.execute("COMMIT")
        applied.append(path.name)
    # Views hold no data, so they are (re)created on every connect: staging first, the
    # auditor views built on them after.
    for folder in ("staging", "views"):
        for path in sorted((SQL_DIR / folder).glob("*.sql")):
            con.execute(path.read_text())
    return applied


def _open(path: Path, read_only: bool) -> duckdb.DuckDBPyConnection:
    """DuckDB lets one process hold a writable file (and no other process read it meanwhile).
    Tasks on parallel workers each hold it briefly, so a conflicting lock is waited out
    (TRIBUTARY_WAREHOUSE_LOCK_WAIT_S, default 120 s) instead of failing the task."""
    deadline = time.monotonic() + float(os.environ.get("TRIBUTARY_WAREHOUSE_LOCK_WAIT_S", "120"))
    delay = 0.05
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() >= deadline:
                raise
            time.sleep(delay + random.uniform(0, delay))
            delay = min(delay * 2, 1.0)


def connect(path: Path | str, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    path = Path(path)
    if read_only:
        if not path.exists():
            raise WarehouseError(f"no warehouse at {path}")
        return _open(path, read_only=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    con = _open(path, read_only=False)
    key = str(path.resolve())
    if key not in _MIGRATED:  # once per process and file: tasks connect often, briefly
        migrate(con)
        _MIGRATED.add(key)
    return con


@contextmanager
def warehouse(path: Path | str, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """A short-lived connection: DuckDB allows one writing process, so tasks hold it briefly."""
    con = connect(path, read_only=read_only)
    try:
        yield con
    finally:
        con.close()


def statements(text: str) -> list[str]:
    """Split a SQL file into statements. Convention: a statement ends with `;` at line end."""
    # Comments go first: they may mention $params or hold a `;`.
    text = re.sub(r"--[^\n]*", "", text)
    return [p for p in re.split(r";[ \t]*(?:\n|$)", text) if p.strip()]


def run_sql(
    con: duckdb.DuckDBPyConnection, name: str, params: Mapping[str, Any] | None = None
) -> duckdb.DuckDBPyConnection:
    """Run the statements of one file of `sql/` with named parameters ($name in the SQL)."""
    for number, stmt in enumerate(statements(sql_text(name)), start=1):
        # DuckDB rejects parameters a statement does not use, so bind only the ones named.
        used = {k: v for k, v in (params or {}).items() if re.search(rf"\${k}\b", stmt)}
        try:
            con.execute(stmt, used) if used else con.execute(stmt)
        except duckdb.Error as exc:
            first = next(line for line in stmt.splitlines() if line.strip())
            raise type(exc)(f"sql/{name}.sql, statement {number} ({first.strip()[:60]}): {exc}") from exc
    return con


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    con.execute("BEGIN")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    else:
        con.execute("COMMIT")


def first(cursor: duckdb.DuckDBPyConnection) -> tuple | None:
    """The first row of a result, consuming the rest: DuckDB keeps a half-read result open and
    refuses other work on the connection until it is drained."""
    rows = cursor.fetchall()
    return rows[0] if rows else None


def query(con: duckdb.DuckDBPyConnection, name: str, params: Mapping[str, Any] | None = None) -> list[dict]:
    """Rows of a one-statement file of `sql/` as dicts; DECIMALs stay Decimal."""
    text = sql_text(name)
    used = {k: v for k, v in (params or {}).items() if re.search(rf"\$({k})\b", text)}
    cur = con.execute(text, used) if used else con.execute(text)
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]
