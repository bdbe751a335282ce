"""Portal users: argon2id password hashes, creating users, checking a sign-in, and the sign-in
rate limit.

Only argon2-cffi's PHC string is stored, in portal/credentials.duckdb (never the warehouse); a
password is never written, logged or put in an exception message.
"""

from __future__ import annotations

import re
import threading
import time
import unicodedata
from collections import defaultdict, deque
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from portal import credentials
from settlement import identity, inputs
from settlement.warehouse import query, run_sql, transaction, warehouse

HASHER = PasswordHasher()  # argon2id with the library's current (RFC 9106 low-memory) defaults
# Verified against when the user does not exist, so an unknown name costs as long as a wrong
# password and the response time does not say which names exist.
_DUMMY_HASH = HASHER.hash("not a password of anyone")
PASSWORD_MIN, PASSWORD_MAX = 12, 1024
USER_ID = re.compile(r"^[a-z0-9][a-z0-9._@+-]{0,127}$")


class AccountError(inputs.InputError):
    """A user that cannot be created as asked (the message names the rule, never the password)."""


def user_id(text: str) -> str:
    """A sign-in name: NFKC, trimmed, lower case; letters, digits and . _ @ + - only."""
    value = unicodedata.normalize("NFKC", text or "").strip().casefold()
    if not USER_ID.match(value):
        raise AccountError(f"user name {value[:60]!r}: use 1-128 of a-z 0-9 . _ @ + - (an email address will do)")
    return value


def check_password(password: str) -> str:
    if len(password) < PASSWORD_MIN:
        raise AccountError(f"the password is too short: at least {PASSWORD_MIN} characters")
    if len(password) > PASSWORD_MAX:
        raise AccountError(f"the password is too long: at most {PASSWORD_MAX} characters")
    return password


def add_user(warehouse_path: Path, *, user: str, rights_holder_id: str, display_name: str, password: str,
             by: str) -> dict:  # fmt: skip
    """Create a user of an existing holder organisation (one transaction)."""
    uid = user_id(user)
    by = identity.person(by, "creator's user name")
    name = " ".join((display_name or uid).split())[:200]
    digest = HASHER.hash(check_password(password))
    now = datetime.now(UTC).replace(tzinfo=None)
    with warehouse(warehouse_path) as con:
        holders = {r["rights_holder_id"] for r in query(con, "marts/catalog_holder_ids")}
        if rights_holder_id not in holders:
            raise AccountError(f"no rights holder {rights_holder_id!r} in the catalog")
        if query(con, "marts/portal_user", {"user_id": uid}):
            raise AccountError(f"user {uid} already exists")
        # The password first, then the user (see portal/credentials.py). The warehouse stays
        # open meanwhile, so no other writer can add the same user in between.
        with credentials.connect(warehouse_path) as secrets, transaction(secrets):
            run_sql(secrets, "credentials/password_set", {"user_id": uid, "password_hash": digest, "now": now})
        with transaction(con):
            run_sql(con, "loads/portal_user", {
                "user_id": uid, "rights_holder_id": rights_holder_id, "display_name": name,
                "by": by, "now": now,
            })  # fmt: skip
    return {"user_id": uid, "rights_holder_id": rights_holder_id, "display_name": name}


def disable_user(warehouse_path: Path, *, user: str, by: str) -> dict:
    """Disable a user and end its sessions (one transaction); disabling again changes nothing."""
    uid = user_id(user)
    by = identity.person(by, "user name of whoever disables")
    with warehouse(warehouse_path) as con:
        rows = query(con, "marts/portal_user", {"user_id": uid})
        if not rows:
            raise AccountError(f"no user {uid}")
        now = datetime.now(UTC).replace(tzinfo=None)
        with transaction(con):
            run_sql(con, "loads/portal_user_disable", {"user_id": uid, "now": now})
        # Then its sessions end; run again (a rerun after a kill), this ends any left open.
        with credentials.connect(warehouse_path) as secrets, transaction(secrets):
            run_sql(secrets, "credentials/sessions_end_user", {"user_id": uid, "now": now})
        row = query(con, "marts/portal_user", {"user_id": uid})[0]
    return {"user_id": uid, "disabled_at": row["disabled_at"], "by": by}


def list_users(warehouse_path: Path) -> list[dict]:
    with warehouse(warehouse_path, read_only=True) as con:
        return query(con, "marts/portal_users")


def password_hash(warehouse_path: Path, uid: str) -> str | None:
    with credentials.connect(warehouse_path, read_only=True) as con:
        rows = query(con, "credentials/password", {"user_id": uid})
    return rows[0]["password_hash"] if rows else None


def verify(row: dict | None, stored_hash: str | None, password: str) -> bool:
    """Whether `password` is the user's (row of marts/portal_user, or None for no such user;
    its stored hash, or None)."""
    if stored_hash is None:
        row = None
    try:
        HASHER.verify(stored_hash if row else _DUMMY_HASH, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    return row is not None and row["disabled_at"] is None


@dataclass
class RateLimit:
    """Failed sign-ins allowed per account and per client address within `window_s`. Kept in
    the server's memory: one portal process per warehouse (docs/portal.md), and a restart
    forgets at most one window of failures."""

    per_account: int = 5
    per_client: int = 20
    window_s: float = 900.0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._failures: dict[str, deque[float]] = defaultdict(deque)

    def _recent(self, key: str, now: float) -> deque[float]:
        q = self._failures[key]
        while q and q[0] <= now - self.window_s:
            q.popleft()
        return q

    def blocked(self, account: str, client: str) -> bool:
        now = time.monotonic()
        with self._lock:
            return (len(self._recent(f"a:{account}", now)) >= self.per_account
                    or len(self._recent(f"c:{client}", now)) >= self.per_client)  # fmt: skip

    def failed(self, account: str, client: str) -> None:
        now = time.monotonic()
        with self._lock:
            self._recent(f"a:{account}", now).append(now)
            self._recent(f"c:{client}", now).append(now)

    def succeeded(self, account: str) -> None:
        with self._lock:
            self._failures.pop(f"a:{account}", None)
