"""The auditor's query: exactly one read-only SELECT (or WITH ... SELECT) statement.

Two locks, so neither alone has to be perfect:
1. the statement is parsed by DuckDB itself (`duckdb.extract_statements`) and refused unless
   it is one statement of type SELECT: COPY, EXPORT, ATTACH, INSTALL/LOAD, SET, PRAGMA, CALL,
   DML and a second statement hidden after a `;` never run;
2. it runs on a read-only connection with `enable_external_access=false` (no file is read or
   written, no extension loaded: read_csv, read_text, glob, COPY ... TO all fail) and
   `lock_configuration=true` (no setting can be changed back from inside the query).
"""

from __future__ import annotations

from pathlib import Path

import duckdb

SANDBOX = {
    "enable_external_access": False,
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
    "lock_configuration": True,  # last: it freezes everything above
}
RULE = "auditors run exactly one read-only SELECT (or WITH ... SELECT) statement"
MAX_ROWS = 100_000


class AuditRefused(ValueError):
    """A query the sandbox does not run; the message names the rule."""


def check(sql: str) -> None:
    try:
        found = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise AuditRefused(f"the query does not parse: {str(exc).splitlines()[0]}") from None
    if len(found) != 1:
        raise AuditRefused(f"{RULE}; got {len(found)} statements")
    kind = found[0].type.name
    if kind != "SELECT":
        raise AuditRefused(f"{RULE}; got a {kind} statement")


def run_query(path: Path, sql: str) -> tuple[list[str], list[tuple]]:
    """(column names, rows) of the auditor's query on the warehouse or a snapshot at `path`."""
    check(sql)
    path = Path(path)
    if not path.is_file():
        raise AuditRefused(f"no warehouse at {path}")
    try:
        con = duckdb.connect(str(path), read_only=True, config=dict(SANDBOX))
    except duckdb.Error as exc:
        raise AuditRefused(f"cannot open {path} read-only: {str(exc).splitlines()[0]}") from None
    try:
        cur = con.execute(sql)
        columns = [d[0] for d in cur.description] if cur.description else []
        rows = cur.fetchmany(MAX_ROWS)
    except duckdb.PermissionException:
        raise AuditRefused(
            "reading or writing files is disabled for auditors (enable_external_access=false); "
            "query the warehouse's tables and views"
        ) from None
    except duckdb.Error as exc:
        raise AuditRefused(str(exc).strip()) from None
    finally:
        con.close()
    return columns, rows
