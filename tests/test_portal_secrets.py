"""The portal's secrets are not for auditors: password hashes and session digests live in
TRIBUTARY_HOME/portal/credentials.duckdb, so neither `tributary audit query` nor a period
snapshot (a copy of the warehouse) can read them, while disputes, their events and the access
log stay readable. A restore from a snapshot rolls back neither the credentials nor what
holders did in the portal after it."""

from __future__ import annotations

import shutil
import stat

import pytest
from portal_fixtures import PERIOD, USERS, A, build_portal_home
from test_portal_auth import _client, sign_in

from portal import credentials
from settlement import audit, disputes, lifecycle
from settlement.config import Settings
from settlement.warehouse import query, warehouse


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return build_portal_home(tmp_path_factory.mktemp("portal-secrets"))


def _file_dispute(db, reason: str) -> int:
    with warehouse(db) as con:
        line = query(con, "marts/portal_line", {"period": PERIOD, "rights_holder_id": A, "platform_id": "P0",
                                                "work_id": "W000", "right_type": "publishing"})  # fmt: skip
        if not line:  # the fixture's first line of holder A, whatever its platform and right
            row = con.execute("SELECT platform_id, work_id, right_type FROM settlement.statement_lines "
                              "WHERE period = ? AND rights_holder_id = ? ORDER BY ALL LIMIT 1", [PERIOD, A]).fetchone()  # fmt: skip
            line = query(con, "marts/portal_line", {"period": PERIOD, "rights_holder_id": A, "platform_id": row[0],
                                                    "work_id": row[1], "right_type": row[2]})  # fmt: skip
        return disputes.file_dispute(con, line=line[0], rights_holder_id=A, by="ana@a.example", reason=reason)


def _secrets(db) -> list[str]:
    with credentials.connect(db, read_only=True) as con:
        return ([r[0] for r in con.execute("SELECT password_hash FROM passwords").fetchall()]
                + [r[0] for r in con.execute("SELECT session_id FROM sessions").fetchall()])  # fmt: skip


def test_auditors_and_snapshots_never_read_password_hashes_or_sessions(home, tmp_path):
    db = home["settings"].warehouse
    c = _client(home)
    assert sign_in(c, "ana@a.example").status_code == 303 and c.get("/statements").status_code == 200
    _file_dispute(db, "the share of W000 looks too low")
    secrets = _secrets(db)
    assert sum(s.startswith("$argon2id$") for s in secrets) == len(USERS) and len(secrets) > len(USERS)
    snapshot = tmp_path / "snapshot-now.duckdb"
    with warehouse(db) as con:
        lifecycle.publish_snapshot(con, snapshot)
    for source in (db, snapshot):
        for sql in ("SELECT password_hash FROM portal.users", "SELECT * FROM portal.sessions",
                    "SELECT * FROM main.passwords", "SELECT * FROM duckdb_tables() WHERE sql ILIKE '%argon2%'"):
            try:
                _, rows = audit.run_query(source, sql)
            except audit.AuditRefused:
                continue
            assert rows == [], (source, sql)
        columns, users = audit.run_query(source, "SELECT * FROM portal.users")
        assert "password_hash" not in columns and len(users) == len(USERS)
        assert not any(str(v).startswith("$argon2") for row in users for v in row)
        # what an auditor does need is there: disputes with their state changes, the access log
        _, events = audit.run_query(source, "SELECT status, changed_by FROM portal.dispute_events")
        assert ("open", "ana@a.example") in events
        _, log = audit.run_query(source, "SELECT user_id, action FROM portal.access_log")
        assert ("ana@a.example", "sign_in") in log and ("ana@a.example", "view") in log
        data = source.read_bytes()
        assert not any(s.encode() in data for s in secrets)
    path = credentials.path_for(db)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_a_restore_keeps_users_sessions_and_disputes_made_after_the_snapshot(home, tmp_path):
    copy = tmp_path / "home"
    shutil.copytree(home["settings"].home, copy)
    settings = Settings(copy)
    db = settings.warehouse
    c = _client({**home, "settings": settings})
    assert sign_in(c, "alex@a.example").status_code == 303  # a session started after October's close
    late = _file_dispute(db, "filed after the October snapshot")
    with warehouse(db, read_only=True) as con:
        before = {t: set(con.execute(f"SELECT * FROM portal.{t}").fetchall())
                  for t in ("users", "disputes", "dispute_events", "access_log", "access_journal_loads")}  # fmt: skip
    assert before["users"] and before["access_journal_loads"] and any(d[0] == late for d in before["disputes"])
    lifecycle.restore_snapshot(db, copy / "snapshots" / f"warehouse-{PERIOD}.duckdb")
    with warehouse(db, read_only=True) as con:
        after = {t: set(con.execute(f"SELECT * FROM portal.{t}").fetchall()) for t in before}
    for table, rows in before.items():
        assert rows <= after[table], table
    assert c.get("/statements").status_code == 200  # the session survived the restore
    assert sign_in(_client({**home, "settings": settings}), "bea@b.example").status_code == 303
    assert _file_dispute(db, "a new dispute after the restore") > late  # the sequence moved past
