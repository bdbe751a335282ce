"""The portal's writes survive kill -9 of the server at any instant: while a holder files
disputes, the real `tributary portal` process is SIGKILLed at instants spread over the filing
and started again. Every dispute the server acknowledged is there, every dispute there is whole
(its filing and exactly one `open` state), none is doubled, and the holder's session survives
the restarts (it lives in TRIBUTARY_HOME, signed with the key kept there). The same for the
access log, which is journaled and loaded in batches: every acknowledged view is in
`portal.access_log` exactly once."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from portal_fixtures import PERIOD, USERS, build_portal_home

from portal.access_journal import AccessJournal
from settlement.warehouse import warehouse

ROOT = Path(__file__).resolve().parents[1]
KILLS = 4


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(env: dict, port: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "settlement.cli", "portal", "--port", str(port)], cwd=ROOT,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 60
    while True:
        try:
            requests.get(f"http://127.0.0.1:{port}/login", timeout=2)
            return proc
        except requests.ConnectionError:
            assert proc.poll() is None and time.monotonic() < deadline, "portal did not start"
            time.sleep(0.1)


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return build_portal_home(tmp_path_factory.mktemp("portal-kill"))


def test_disputes_filed_while_the_server_is_killed_are_whole_and_never_lost(home):
    env = dict(os.environ, TRIBUTARY_HOME=str(home["settings"].home), TRIBUTARY_WAREHOUSE_LOCK_WAIT_S="10")
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    server = _start(env, port)
    s = requests.Session()
    token = re.search(r'name="csrf_token" value="([^"]+)"', s.get(f"{base}/login").text).group(1)
    s.post(f"{base}/login", data={"username": "ana@a.example", "password": USERS["ana@a.example"][1], "csrf_token": token})
    line = f"{base}/statements/{PERIOD}/line?platform=p1&work=W000&right=master"
    token = re.search(r'name="csrf_token" value="([^"]+)"', s.get(line).text).group(1)
    acknowledged: list[int] = []
    stop = threading.Event()

    def file_disputes() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            try:
                r = s.post(line.replace("/line?", "/line/disputes?"), timeout=15, allow_redirects=False,
                           data={"reason": f"dispute {n}", "csrf_token": token})  # fmt: skip
            except requests.RequestException:
                time.sleep(0.05)  # the server is down: try again once it is back
                continue
            if r.status_code == 303:
                acknowledged.append(int(r.headers["location"].rsplit("/", 1)[1]))

    worker = threading.Thread(target=file_disputes)
    worker.start()
    try:
        for i in range(KILLS):
            time.sleep(0.15 + 0.1 * i)  # instants spread over the filings in flight
            os.kill(server.pid, signal.SIGKILL)
            server.wait()
            server = _start(env, port)
        # wait (on a loaded machine a restart takes seconds) until a filing made after the
        # last restart is acknowledged: the session outlived every restart
        at_last_kill, deadline = len(acknowledged), time.monotonic() + 90
        while len(acknowledged) <= at_last_kill and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stop.set()
        worker.join(60)
        server.terminate()
        server.wait(30)
    assert len(acknowledged) > at_last_kill, acknowledged
    with warehouse(home["settings"].warehouse, read_only=True) as con:
        filed = con.execute("SELECT dispute_id, reason FROM portal.disputes ORDER BY dispute_id").fetchall()
        events = con.execute("SELECT dispute_id, seq, status FROM portal.dispute_events ORDER BY ALL").fetchall()
    ids = [d for d, _ in filed]
    assert set(acknowledged) <= set(ids)  # nothing acknowledged is lost
    assert events == [(d, 1, "open") for d in ids]  # every dispute whole, one open state each
    reasons = [r for _, r in filed]
    assert len(reasons) == len(set(reasons))  # none doubled


def test_views_acknowledged_while_the_server_is_killed_are_logged_exactly_once(home):
    # a short flush interval, so kills also land in the middle of batch loads
    env = dict(os.environ, TRIBUTARY_HOME=str(home["settings"].home), TRIBUTARY_WAREHOUSE_LOCK_WAIT_S="10",
               TRIBUTARY_PORTAL_LOG_FLUSH_S="0.2")  # fmt: skip
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    server = _start(env, port)
    s = requests.Session()
    token = re.search(r'name="csrf_token" value="([^"]+)"', s.get(f"{base}/login").text).group(1)
    s.post(f"{base}/login", data={"username": "alex@a.example", "password": USERS["alex@a.example"][1],
                                  "csrf_token": token})  # fmt: skip
    acknowledged: list[str] = []
    stop = threading.Event()

    def view() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            path = f"/statements?view={n}"
            try:
                r = s.get(base + path, timeout=15, allow_redirects=False)
            except requests.RequestException:
                time.sleep(0.05)
                continue
            if r.status_code == 200:
                acknowledged.append(path)

    worker = threading.Thread(target=view)
    worker.start()
    try:
        for i in range(6):
            time.sleep(0.13 + 0.11 * i)
            os.kill(server.pid, signal.SIGKILL)
            server.wait()
            server = _start(env, port)
        time.sleep(0.5)
    finally:
        stop.set()
        worker.join(60)
        server.terminate()  # a graceful stop loads what the journal still holds
        server.wait(30)
    assert len(acknowledged) >= 6, acknowledged
    with warehouse(home["settings"].warehouse, read_only=True) as con:
        logged = [r[0] for r in con.execute("SELECT path FROM portal.access_log WHERE user_id = 'alex@a.example' "
                                            "AND path LIKE '/statements?view=%'").fetchall()]  # fmt: skip
    assert set(acknowledged) <= set(logged)  # nothing acknowledged is lost
    assert len(logged) == len(set(logged))  # nothing doubled
    assert not list((home["settings"].home / "portal").glob("access_log.*.loading"))


def test_the_journal_skips_a_torn_line_and_never_loads_a_batch_twice(home, tmp_path):
    journal = AccessJournal(tmp_path)
    row = {"user_id": "ana@a.example", "rights_holder_id": "RH00", "client": "127.0.0.1", "action": "view",
           "subject": None, "status": 200}  # fmt: skip
    from datetime import datetime

    for n in range(3):
        journal.append(row | {"accessed_at": datetime(2026, 12, 1, 10, n), "path": f"/journal-test?{n}"})
    with open(journal.path, "ab") as f:  # a kill in the middle of an append: never acknowledged
        f.write(b'{"accessed_at": "2026-12-01T10:09:00", "user_id": "ana@a.ex')

    def connect():
        return warehouse(home["settings"].warehouse)

    assert journal.flush(connect) == 3
    # a kill after a batch's transaction and before its file was deleted: the rerun drops it
    journal.append(row | {"accessed_at": datetime(2026, 12, 1, 11, 0), "path": "/journal-test?again"})
    os.replace(journal.path, tmp_path / "access_log.1-1.loading")
    with warehouse(home["settings"].warehouse) as con:
        con.execute("INSERT INTO portal.access_journal_loads VALUES ('access_log.1-1.loading', 1)")
    assert journal.flush(connect) == 0 and not list(tmp_path.glob("*.loading"))
    with warehouse(home["settings"].warehouse, read_only=True) as con:
        paths = sorted(r[0] for r in con.execute("SELECT path FROM portal.access_log WHERE path LIKE '/journal-test%'").fetchall())
    assert paths == ["/journal-test?0", "/journal-test?1", "/journal-test?2"]
