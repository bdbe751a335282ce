"""Authorisation of the holder portal, against a real settled month (tests/portal_fixtures.py)
through FastAPI's TestClient: every route refuses another holder's data with 404 and sends
visitors who are not signed in to the sign-in page; cookie flags, CSRF, the sign-in rate limit,
no password in clear anywhere, and the access log."""

from __future__ import annotations

import html
import logging
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
from fastapi.testclient import TestClient
from portal_fixtures import AUDIO, HOSTILE_WORK, NEXT, PERIOD, USERS, A, B, build_portal_home

from portal import accounts, credentials
from portal.app import PortalConfig, create_app, secure_cookies_for
from settlement import disputes
from settlement.calculate import QualityGateError, calculate_period
from settlement.warehouse import warehouse

ROOT = Path(__file__).resolve().parents[1]


def _run(cmd, **kw):
    return subprocess.run(cmd, check=False, **kw)


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return build_portal_home(tmp_path_factory.mktemp("portal-home"))


def _app(home, **kw):
    return create_app(PortalConfig(home["settings"], "test-secret-" + "x" * 32, kw.pop("secure", False), **kw))


def _csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def sign_in(client: TestClient, user: str, password: str | None = None):
    token = _csrf(client.get("/login").text)
    return client.post("/login", data={"username": user, "password": password or USERS[user][1],
                                       "csrf_token": token, "next": "/statements"})  # fmt: skip


def _client(home, **kw) -> TestClient:
    # a browser sends a Secure cookie back over https only
    base = "https://testserver" if kw.get("secure") else "http://testserver"
    return TestClient(_app(home, **kw), follow_redirects=False, base_url=base)


def _line_url(line, action: str = "") -> str:
    _, platform, work, right, _ = line
    return f"/statements/{PERIOD}/line{action}?" + urlencode({"platform": platform, "work": work, "right": right})


def _gen(gid: str, what: str = "") -> str:
    return f"/generation{what}?platform=p1&id={gid}"


def _routes(home, holder: str) -> dict[str, list[str]]:
    """Every GET route of the portal, filled in with `holder`'s own ids."""
    lines = [x for x in home["lines"] if x[0] == holder]
    gen = next(g for g, h in AUDIO.items() if h == holder)
    symbolic = "g0001" if holder == A else "g0004"
    kinds = [k for h, k, _ in home["files"] if h == holder]
    return {
        "statements": ["/statements", f"/statements/{PERIOD}"],
        "lines": [_line_url(x) for x in lines],
        "works": ["/work?" + urlencode({"id": w}) for w in sorted({x[2] for x in lines})],
        "generations": [_gen(gen), _gen(gen, "/audio"), _gen(symbolic), _gen(symbolic, "/pianoroll.svg")],
        "downloads": [f"/statements/{PERIOD}/download?kind={quote(k, safe='')}" for k in kinds],
        "earnings": ["/earnings", "/earnings/work/USD.svg", "/earnings/platform/USD.svg", "/earnings/right_type/USD.svg"],
        "disputes": ["/disputes"],
        "alerts": ["/alerts"],
    }  # fmt: skip


def test_every_route_redirects_visitors_who_are_not_signed_in(home):
    client = _client(home)
    urls = [u for group in _routes(home, A).values() for u in group] + ["/", "/disputes/1"]
    for url in urls:
        r = client.get(url)
        assert r.status_code == 303, url
        assert r.headers["location"].startswith("/login?next="), url
    for url in (_line_url(next(x for x in home["lines"] if x[0] == A), "/disputes"), "/logout"):
        r = client.post(url, data={"reason": "x", "csrf_token": "x"})
        assert r.status_code == 303 and r.headers["location"].startswith("/login"), url
    # a forged session cookie (signed with another key) is no session
    forged = TestClient(create_app(PortalConfig(home["settings"], "another-key-" + "y" * 32, False)),
                        follow_redirects=False)  # fmt: skip
    assert sign_in(forged, "ana@a.example").status_code == 303
    client.cookies.set("tributary_session", forged.cookies.get("tributary_session"))
    assert client.get("/statements").status_code == 303


def test_holder_a_gets_404_for_every_route_of_holder_b(home):
    a = _client(home)
    assert sign_in(a, "ana@a.example").status_code == 303
    own = _routes(home, A)
    assert "/work?" + urlencode({"id": HOSTILE_WORK}) in own["works"]  # an id no path segment could carry
    for group, urls in own.items():
        for url in urls:
            assert a.get(url).status_code == 200, (group, url)
    b_only = _routes(home, B)
    # B's lines, works and generations: not A's, so not found. Statements, earnings and the
    # dispute list are always the signed-in holder's own: they must show nothing of B's.
    for group in ("lines", "works", "generations"):
        for url in b_only[group]:
            assert a.get(url).status_code == 404, (group, url)
    b_shas = {sha for h, _, sha in home["files"] if h == B}
    b_works = {w for h, _, w, _, _ in home["lines"] if h == B}
    for url in own["statements"] + own["earnings"] + own["disputes"] + own["alerts"]:
        text = a.get(url).text
        assert not any(sha in text for sha in b_shas), url
        assert not any(re.search(rf"\b{w}\b", text) for w in b_works), url
    # downloads: A's kinds give A's files; no kind reaches B's file or a path
    a_shas = {k: sha for h, k, sha in home["files"] if h == A}
    for kind, sha in a_shas.items():
        r = a.get(f"/statements/{PERIOD}/download?kind={quote(kind, safe='')}")
        assert r.headers["x-content-sha256"] == sha and sha not in b_shas
    for kind in ("../RH01/statement", f"{B}/pdf", "", "pdf/../../x", "dsr:../../etc/passwd"):
        assert a.get(f"/statements/{PERIOD}/download", params={"kind": kind}).status_code == 404, kind
    # a period with no statement of A's, and ids that are not ids
    for url in ("/statements/2026-09", "/statements/2026-13", "/statements/..%2F..",
                f"/statements/{PERIOD}/line?platform=p1&work=W000&right=mechanical", f"/statements/{PERIOD}/line",
                f"/statements/{PERIOD}/line?platform=p1&work=W000%00&right=master", _gen("%00"), _gen("g0000%0a"),
                "/work?id=" + "W" * 300, "/work?id=W000%27%20OR%201=1--", "/work", "/disputes/abc",
                "/disputes/99999999999999999999"):  # fmt: skip
        assert a.get(url).status_code == 404, url
    # B's dispute: B files it; A cannot see it, nor file one on B's line
    b = _client(home)
    sign_in(b, "bea@b.example")
    b_line_row = next(x for x in home["lines"] if x[0] == B)
    b_line = _line_url(b_line_row)
    r = b.post(_line_url(b_line_row, "/disputes"), data={"reason": "B's own dispute", "csrf_token": _csrf(b.get(b_line).text)})
    assert r.status_code == 303
    b_dispute = r.headers["location"]
    assert b.get(b_dispute).status_code == 200
    assert a.get(b_dispute).status_code == 404
    assert "B&#39;s own dispute" not in a.get("/disputes").text
    token = _csrf(a.get("/statements").text)
    assert a.post(_line_url(b_line_row, "/disputes"), data={"reason": "not mine", "csrf_token": token}).status_code == 404
    # a second user of holder A sees A's data, the same
    a2 = _client(home)
    sign_in(a2, "alex@a.example")
    assert a2.get(own["lines"][0]).status_code == 200 and a2.get(b_only["lines"][0]).status_code == 404


def test_session_cookie_is_httponly_samesite_and_secure_outside_loopback(home):
    r = sign_in(_client(home), "ana@a.example")
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "secure" not in cookie
    r = sign_in(_client(home, secure=True), "ana@a.example")
    assert r.status_code == 303
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "; secure" in cookie
    # what `tributary portal` decides from where it listens and where holders reach it
    assert not secure_cookies_for("127.0.0.1", None) and not secure_cookies_for("::1", "http://localhost:8470")
    assert secure_cookies_for("0.0.0.0", None) and secure_cookies_for("10.0.0.5", None)
    assert secure_cookies_for("127.0.0.1", "https://portal.example.com")


def _dispute_count(home) -> int:
    with warehouse(home["settings"].warehouse, read_only=True) as con:
        return con.execute("SELECT count(*) FROM portal.disputes").fetchone()[0]


def test_state_changing_forms_need_the_session_csrf_token(home):
    a = _client(home)
    sign_in(a, "ana@a.example")
    line = _line_url(next(x for x in home["lines"] if x[0] == A), "/disputes")
    before = _dispute_count(home)
    other = _client(home)
    sign_in(other, "alex@a.example")
    foreign = _csrf(other.get("/statements").text)  # a valid token, of another session
    for token in ("", "forged", foreign):
        r = a.post(line, data={"reason": "csrf probe", "csrf_token": token})
        assert r.status_code == 403, token
    assert _dispute_count(home) == before
    assert a.post("/logout", data={"csrf_token": "forged"}).status_code == 403
    assert a.get("/statements").status_code == 200  # still signed in
    fresh = _client(home)
    r = fresh.post("/login", data={"username": "ana@a.example", "password": USERS["ana@a.example"][1], "csrf_token": "x"})
    assert r.status_code == 403
    assert fresh.get("/statements").status_code == 303
    # with the token: accepted
    r = a.post("/logout", data={"csrf_token": _csrf(a.get("/statements").text)})
    assert r.status_code == 303 and a.get("/statements").status_code == 303


def test_sign_in_is_rate_limited_per_account_and_per_client(home):
    limit = accounts.RateLimit(per_account=3, per_client=5, window_s=600)
    c = _client(home, rate_limit=limit)
    for _ in range(3):
        assert sign_in(c, "ana@a.example", "wrong password!!").status_code == 401
    # the right password no longer helps this account, from any client
    assert sign_in(c, "ana@a.example").status_code == 429
    assert sign_in(_client(home, rate_limit=limit), "ana@a.example").status_code == 429
    # another account from the same client still may, until the client's own limit
    assert sign_in(c, "alex@a.example").status_code == 303
    assert sign_in(c, "nobody@x.example", "wrong password!!").status_code == 401
    assert sign_in(c, "bea@b.example", "wrong password!!").status_code == 401
    assert sign_in(c, "bea@b.example").status_code == 429  # 5 failures from this client
    with warehouse(home["settings"].warehouse, read_only=True) as con:
        refused = con.execute("SELECT count(*) FROM portal.access_log WHERE action = 'sign_in_refused' AND status = 429").fetchone()[0]
    assert refused >= 3


def test_passwords_are_never_stored_or_logged_in_clear(home, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    password = "Pa55-word that must never be seen"
    env = {"TRIBUTARY_HOME": str(home["settings"].home), "PATH": "/usr/bin:/bin"}
    out = _run([sys.executable, "-m", "settlement.cli", "portal", "users", "add", "cli@a.example",
                          "--holder", A, "--by", "carol", "--password-stdin"],
                         input=password + "\n", capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert password not in out.stdout + out.stderr
    # too short, unknown holder: exit 2 with the rule, never the password
    bad = _run([sys.executable, "-m", "settlement.cli", "portal", "users", "add", "x@a.example",
                          "--holder", "NOPE", "--by", "carol", "--password-stdin"],
                         input="short\n", capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)  # fmt: skip
    assert bad.returncode == 2 and "short" not in bad.stdout.replace("too short", "") and "Traceback" not in bad.stderr
    c = _client(home)
    assert sign_in(c, "cli@a.example", password).status_code == 303
    assert sign_in(_client(home), "cli@a.example", password + "x").status_code == 401
    with credentials.connect(home["settings"].warehouse, read_only=True) as con:
        h = con.execute("SELECT password_hash FROM passwords WHERE user_id = 'cli@a.example'").fetchone()[0]
    with warehouse(home["settings"].warehouse, read_only=True) as con:
        texts = [str(v) for table in ("portal.users", "portal.access_log", "portal.disputes")
                 for row in con.execute(f"SELECT * FROM {table}").fetchall() for v in row]  # fmt: skip
    assert h.startswith("$argon2id$") and password not in h
    assert not any(password in t for t in texts)
    assert password.encode() not in home["settings"].warehouse.read_bytes()
    assert password not in caplog.text
    for name in ("ana@a.example", "bea@b.example"):
        assert USERS[name][1].encode() not in home["settings"].warehouse.read_bytes()


def test_access_log_records_who_viewed_and_downloaded_what(home):
    a = _client(home)
    sign_in(a, "ana@a.example")
    a.get(f"/statements/{PERIOD}")
    sha = next(s for h, k, s in home["files"] if h == A and k == "pdf")
    assert a.get(f"/statements/{PERIOD}/download?kind=pdf").status_code == 200
    with warehouse(home["settings"].warehouse, read_only=True) as con:
        rows = con.execute("SELECT user_id, rights_holder_id, action, path, subject FROM portal.access_log "
                           "WHERE user_id = 'ana@a.example' ORDER BY access_id").fetchall()  # fmt: skip
    assert ("ana@a.example", A, "view", f"/statements/{PERIOD}", PERIOD) in rows
    assert ("ana@a.example", A, "download", f"/statements/{PERIOD}/download?kind=pdf", sha) in rows
    assert any(r[2] == "sign_in" for r in rows)


def test_dispute_reasons_are_checked_and_disputes_gate_the_next_calculation(home, monkeypatch):
    a = _client(home)
    sign_in(a, "ana@a.example")
    line = next(x for x in home["lines"] if x[0] == A)
    url = _line_url(line)
    token = _csrf(a.get(url).text)
    before = _dispute_count(home)
    for reason in ("", "   ", "x" * (disputes.REASON_MAX + 1), "bell\x07", "rtl\u202eoverride"):
        r = a.post(_line_url(line, "/disputes"), data={"reason": reason, "csrf_token": token})
        assert r.status_code == 422, repr(reason[:20])
    assert _dispute_count(home) == before
    r = a.post(_line_url(line, "/disputes"), data={"reason": "=HYPERLINK(\"x\") <script>alert(1)</script>\nsecond line",
                                        "csrf_token": token})  # fmt: skip
    assert r.status_code == 303
    page = a.get(r.headers["location"]).text
    assert "<script>alert(1)" not in page and "&lt;script&gt;" in page
    dispute_id = int(r.headers["location"].rsplit("/", 1)[1])
    db = home["settings"].warehouse
    # an open dispute: listed by the calculation (policy report), blocking it under policy block
    monkeypatch.setenv("TRIBUTARY_DISPUTE_POLICY", "block")
    with pytest.raises(QualityGateError, match=f"dispute_open: dispute {dispute_id}"):
        calculate_period(db, NEXT, run_id="calc-again", by="alice")
    monkeypatch.setenv("TRIBUTARY_DISPUTE_POLICY", "report")
    result = calculate_period(db, NEXT, run_id="calc-again", by="alice")
    assert any(d[1] == f"dispute {dispute_id}" for d in result["open_disputes"])
    # finance resolves it with the CLI; a second resolution is refused
    env = {"TRIBUTARY_HOME": str(home["settings"].home), "PATH": "/usr/bin:/bin", "COLUMNS": "300"}
    cli = [sys.executable, "-m", "settlement.cli", "disputes"]
    listed = _run([*cli, "list", "--status", "open"], capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    assert listed.returncode == 0 and str(dispute_id) in listed.stdout
    # the holder's text is data, never a formula in finance's spreadsheet
    exported = _run([*cli, "list", "--csv"], capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    assert exported.returncode == 0 and "'=HYPERLINK" in exported.stdout and ',=HYPERLINK' not in exported.stdout
    done = _run([*cli, "resolve", str(dispute_id), "--upheld", "--reason", "split corrected",
                           "--adjustment", "1.25", "--in-period", "2026-11", "--by", "Carol"],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    again = _run([*cli, "resolve", str(dispute_id), "--rejected", "--reason", "no", "--by", "dan"],
                           capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)  # fmt: skip
    assert again.returncode == 2 and "already upheld" in again.stdout
    page = a.get(f"/disputes/{dispute_id}").text
    assert "upheld" in page and "split corrected" in page and "1.25" in page and "carol" in page
    with warehouse(db, read_only=True) as con:
        events = con.execute("SELECT seq, status, changed_by FROM portal.dispute_events WHERE dispute_id = ? ORDER BY seq",
                             [dispute_id]).fetchall()  # fmt: skip
    assert events == [(1, "open", "ana@a.example"), (2, "upheld", "carol")]
    result = calculate_period(db, NEXT, run_id="calc-third", by="alice")
    assert not any(d[1] == f"dispute {dispute_id}" for d in result.get("open_disputes", []))


def test_signing_out_ends_the_session_even_for_a_copied_cookie(home):
    a = _client(home)
    sign_in(a, "ana@a.example")
    copied = a.cookies.get("tributary_session")
    assert a.post("/logout", data={"csrf_token": _csrf(a.get("/statements").text)}).status_code == 303
    thief = _client(home)
    thief.cookies.set("tributary_session", copied)
    r = thief.get("/statements")
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    with credentials.connect(home["settings"].warehouse, read_only=True) as con:
        sessions = con.execute("SELECT session_id, ended_at FROM sessions WHERE user_id = 'ana@a.example'").fetchall()
    assert sessions and all(len(sid) == 64 for sid, _ in sessions)  # digests, never the cookie's token
    assert any(ended is not None for _, ended in sessions)


def test_a_disabled_user_cannot_sign_in_and_its_sessions_end(home):
    c = _client(home)
    password = "a temporary contractor password"
    accounts.add_user(home["settings"].warehouse, user="temp@a.example", rights_holder_id=A,
                      display_name="Temp", password=password, by="carol")  # fmt: skip
    assert sign_in(c, "temp@a.example", password).status_code == 303
    assert c.get("/statements").status_code == 200
    env = {"TRIBUTARY_HOME": str(home["settings"].home), "PATH": "/usr/bin:/bin"}
    out = _run([sys.executable, "-m", "settlement.cli", "portal", "users", "disable", "temp@a.example", "--by", "carol"],
               capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert c.get("/statements").status_code == 303  # the open session ended
    assert sign_in(_client(home), "temp@a.example", password).status_code == 401
    listed = _run([sys.executable, "-m", "settlement.cli", "portal", "users", "list"],
                  capture_output=True, text=True, cwd=ROOT, env=env | {"COLUMNS": "300"}, timeout=120)  # fmt: skip
    assert "temp@a.example" in listed.stdout and "$argon2" not in listed.stdout


def test_finance_commands_refuse_bad_input_with_the_rule_and_exit_2(home, monkeypatch):
    from typer.testing import CliRunner

    from settlement.cli import app

    monkeypatch.setenv("TRIBUTARY_HOME", str(home["settings"].home))
    runner = CliRunner()
    cases = {
        ("disputes", "resolve", "999999", "--rejected", "--reason", "x", "--by", "carol"): "no dispute 999999",
        ("disputes", "list", "--status", "bogus"): "must be open, upheld or rejected",
        ("disputes", "resolve", "1", "--rejected", "--reason", "x", "--by", "carol", "--in-period", "2026-11"):
            "a rejected dispute has no adjustment",
        ("disputes", "resolve", "1", "--upheld", "--reason", "", "--by", "carol"): "reason is empty",
        ("disputes", "resolve", "1", "--upheld", "--reason", "x", "--by", "carol", "--adjustment", "1e3",
         "--in-period", "2026-11"): "plain notation",
        ("portal", "users", "add", "bad/name", "--holder", A, "--by", "carol", "--password-stdin"): "user name",
        ("portal", "users", "add", "new@a.example", "--holder", "../../etc", "--by", "carol", "--password-stdin"):
            "no rights holder",
        ("portal", "users", "disable", "nobody@x.example", "--by", "carol"): "no user",
    }  # fmt: skip
    for args, rule in cases.items():
        r = runner.invoke(app, list(args), input="a long enough password\n")
        assert r.exit_code == 2 and rule in r.output and "Traceback" not in r.output, (args, r.output)


def test_alerts_page_shows_the_holders_own_alerts_only(home, tmp_path):
    """The alert mails link to /alerts: each holder sees the alerts its rules raised there,
    never another holder's."""
    import shutil

    from settlement import alerts
    from settlement.config import Settings

    # a copy of the settled home: raising alerts writes to its warehouse
    settings = Settings(tmp_path / "home")
    shutil.copytree(home["settings"].home, settings.home)
    for holder in (A, B):
        # near_copy at a tiny share: every generation that paid one of the holder's works
        alerts.add_rule(settings.warehouse, holder, "near_copy", "0.000001")
    alerts.evaluate(settings.warehouse, PERIOD, send=False)
    mine = alerts.listed(settings.warehouse, PERIOD, A)
    theirs = alerts.listed(settings.warehouse, PERIOD, B)
    assert mine and theirs
    client = TestClient(create_app(PortalConfig(settings, "test-secret-" + "x" * 32, False)),
                        follow_redirects=False)  # fmt: skip
    assert sign_in(client, "ana@a.example").status_code == 303
    page = client.get("/alerts").text
    assert page.count("<tr>") == 1 + len(mine)  # the header and A's alerts, nothing else
    for row in mine:
        assert html.escape(row["detail"], quote=False) in page or html.escape(row["detail"]) in page, row
    b_works = {w for h, _, w, _, _ in home["lines"] if h == B} - {w for h, _, w, _, _ in home["lines"] if h == A}
    assert not any(re.search(rf"\b{w}\b", page) for w in b_works)
