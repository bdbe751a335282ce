"""API keys of provenance clients: `tpk_<key_id>_<secret>`, only sha256(secret) stored."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import UTC, datetime
from pathlib import Path

from settlement import inputs
from settlement.warehouse import query, run_sql, transaction, warehouse

_KEY = re.compile(r"tpk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")


def create(warehouse_path: Path, client: str, rate_per_minute: int = 60) -> str:
    """A new key for `client`; the only time the whole key is shown."""
    client = " ".join((client or "").split())
    if not client or len(client) > 200 or not client.isprintable():
        raise inputs.InputError(f"client {client!r}: a printable name of 1-200 characters is required")
    if not 1 <= rate_per_minute <= 100_000:
        raise inputs.InputError(f"client {client}: --rate must be 1-100000 requests a minute, not {rate_per_minute}")
    key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    with warehouse(warehouse_path) as con, transaction(con):
        run_sql(con, "loads/provenance_key", {
            "key_id": key_id, "client": client, "secret_sha256": hashlib.sha256(secret.encode()).hexdigest(),
            "rate_per_minute": rate_per_minute, "now": datetime.now(UTC).replace(tzinfo=None),
        })  # fmt: skip
    return f"tpk_{key_id}_{secret}"


def revoke(warehouse_path: Path, key_id: str) -> None:
    with warehouse(warehouse_path) as con, transaction(con):
        run_sql(con, "loads/provenance_key_revoke", {"key_id": key_id, "now": datetime.now(UTC).replace(tzinfo=None)})


def listed(warehouse_path: Path) -> list[dict]:
    with warehouse(warehouse_path) as con:
        return query(con, "marts/provenance_keys")


def check(con, presented: str | None) -> dict | None:
    """The key's row if `presented` is a live key, else None (constant-time secret compare)."""
    m = _KEY.fullmatch(presented or "")
    if not m:
        return None
    rows = query(con, "marts/provenance_key", {"key_id": m.group(1)})
    if not rows:
        return None
    digest = hashlib.sha256(m.group(2).encode()).hexdigest()
    return rows[0] if hmac.compare_digest(digest, rows[0]["secret_sha256"]) else None
