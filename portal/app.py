"""The holder portal's web application (FastAPI, Jinja2 templates rendered on the server).

Every page runs as the signed-in user's holder: each query takes that holder's id from the
session, never from the URL, so another holder's statement, line, work, generation, file or
dispute is simply not found (404). Pages read the warehouse read-only; the two writes (a
dispute, a line of the access log) are one transaction each.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import mimetypes
import os
import re
import secrets
import threading
import time
from collections import defaultdict
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote, urlsplit

from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException
from starlette.middleware.sessions import SessionMiddleware

from portal import accounts, credentials, svg
from portal.access_journal import journal_for
from settlement import disputes, inputs
from settlement.config import Settings
from settlement.warehouse import query, run_sql, transaction, warehouse

log = logging.getLogger("tributary.portal")
TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
RIGHTS = ("publishing", "master")
# An id from a URL: any printable text the warehouse might hold, bounded; looked up with bound
# parameters only, so its content never reaches SQL or a path.
_ID = re.compile(r"^[^\x00-\x1f\x7f]{1,200}$")
SESSION_COOKIE = "tributary_session"
SESSION_MAX_AGE_S = 8 * 3600


@dataclass
class PortalConfig:
    settings: Settings
    secret_key: str
    secure_cookies: bool
    rate_limit: accounts.RateLimit = field(default_factory=accounts.RateLimit)
    # Access-log rows are journaled (fsynced) per request and loaded into the warehouse at most
    # this many seconds later (portal/access_journal.py); 0: loaded at once, every request.
    access_log_flush_s: float = 0.0


def is_loopback(host: str) -> bool:
    if host in ("localhost", "testserver"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def secure_cookies_for(host: str, public_url: str | None) -> bool:
    """Session cookies are Secure (https only) unless the portal is reachable on loopback only:
    listening on loopback with no public address, or a public address on loopback too."""
    public_host = urlsplit(public_url).hostname if public_url else host
    return not (is_loopback(host) and is_loopback(public_host or ""))


def secret_key(home: Path) -> str:
    """TRIBUTARY_PORTAL_SECRET, or a random key kept in TRIBUTARY_HOME/portal/secret_key (made
    once, written aside and renamed, readable by the owner only)."""
    if os.environ.get("TRIBUTARY_PORTAL_SECRET"):
        return os.environ["TRIBUTARY_PORTAL_SECRET"]
    path = home / "portal" / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".secret_key.{os.getpid()}.partial")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(48))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    return path.read_text().strip()


class SignInRequired(Exception):
    pass


def _money(value) -> str:
    return "" if value is None else format(value, "f")


TEMPLATES.env.filters["money"] = _money
TEMPLATES.env.filters["when"] = lambda v: "" if v is None else f"{v:%Y-%m-%d %H:%M}"
TEMPLATES.env.filters["urlpart"] = lambda v: quote(str(v), safe="")


def create_app(config: PortalConfig) -> FastAPI:
    settings = config.settings
    app = FastAPI(title="Tributary holder portal", docs_url=None, redoc_url=None, openapi_url=None)
    # Signed (itsdangerous) session cookie: HttpOnly always, SameSite=Lax, Secure unless the
    # portal is only reachable on loopback.
    app.add_middleware(SessionMiddleware, secret_key=config.secret_key, session_cookie=SESSION_COOKIE,
                       max_age=SESSION_MAX_AGE_S, same_site="lax", https_only=config.secure_cookies)  # fmt: skip
    db_lock = threading.Lock()  # one DuckDB connection of this process at a time

    @contextmanager
    def read():
        with db_lock, warehouse(settings.warehouse, read_only=True) as con:
            yield con

    journal = journal_for(settings.home / "portal")
    flushed = {"at": 0.0}

    @contextmanager
    def writable():
        with warehouse(settings.warehouse) as con:
            yield con

    def flush_access_log() -> int:
        with db_lock:
            flushed["at"] = time.monotonic()
            return journal.flush(writable)

    def record(request: Request, user: dict | None, action: str, subject: str | None = None,
               status: int = 200) -> None:  # fmt: skip
        journal.append({
            "accessed_at": _now(), "user_id": user and user["user_id"],
            "rights_holder_id": user and user["rights_holder_id"], "client": _client(request),
            "action": action, "path": (request.url.path + (f"?{request.url.query}" if request.url.query else ""))[:500], "subject": subject, "status": status,
        })  # fmt: skip
        if time.monotonic() - flushed["at"] >= config.access_log_flush_s:
            flush_access_log()

    def flush_loop(stop: threading.Event) -> None:
        while not stop.wait(max(config.access_log_flush_s, 0.1)):
            try:
                flush_access_log()
            except Exception:  # the journal keeps the rows; the next flush loads them
                log.exception("loading the access-log journal failed; retrying at the next flush")

    @asynccontextmanager
    async def lifespan(_app):
        flush_access_log()  # what a killed process journaled but never loaded
        stop = threading.Event()
        thread = threading.Thread(target=flush_loop, args=(stop,), name="access-log-flush", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=30)
            flush_access_log()

    app.router.lifespan_context = lifespan
    app.state.flush_access_log = flush_access_log

    credentials.ensure(settings.warehouse)

    # Live sessions this process has seen: session digest -> (user, started). A session ends
    # by sign-out (here: the entry goes) or because its user is disabled (the warehouse row,
    # checked on every request), so the credentials file is read once per session and process,
    # not on every page (it cost about 20 ms: benchmarks/portal_pages.py).
    live: dict[str, tuple[str, datetime]] = {}

    def user_of(request: Request, con) -> dict:
        token = request.session.get("sid")
        rows = []
        if isinstance(token, str):
            sid, now = _session_id(token), _now()
            if sid not in live:
                with credentials.connect(settings.warehouse, read_only=True) as secrets:
                    found = query(secrets, "credentials/session_user", {
                        "session_id": sid, "now": now, "max_age_s": SESSION_MAX_AGE_S,
                    })  # fmt: skip
                if found:
                    live[sid] = (found[0]["user_id"], found[0]["started_at"])
            if sid in live and (now - live[sid][1]).total_seconds() >= SESSION_MAX_AGE_S:
                live.pop(sid, None)
            if sid in live:
                rows = query(con, "marts/portal_session_user", {"user_id": live[sid][0]})
        if not rows:
            request.session.clear()
            raise SignInRequired()
        return rows[0]

    def write(name: str, params: dict) -> None:
        with db_lock, warehouse(settings.warehouse) as con, transaction(con):
            run_sql(con, name, params)

    def write_secret(name: str, params: dict) -> None:
        with db_lock, credentials.connect(settings.warehouse) as con, transaction(con):
            run_sql(con, name, params)

    def csrf_token(request: Request) -> str:
        if "csrf" not in request.session:
            request.session["csrf"] = secrets.token_urlsafe(32)
        return request.session["csrf"]

    def check_csrf(request: Request, token: str) -> None:
        # Our own check, not a library's: one token per session, compared in constant time,
        # on every POST; SameSite=Lax already keeps other sites' POSTs from carrying the cookie.
        expected = request.session.get("csrf")
        if not expected or not hmac.compare_digest(str(expected), str(token or "")):
            raise HTTPException(403, "the form is out of date or was not sent by this portal; reload the page")

    def page(request: Request, name: str, user: dict | None, code: int = 200, **context) -> HTMLResponse:
        return TEMPLATES.TemplateResponse(request, name, {"user": user, "csrf": csrf_token(request), **context},
                                          status_code=code)  # fmt: skip

    @app.exception_handler(SignInRequired)
    async def _sign_in(request: Request, exc: SignInRequired):
        return RedirectResponse(f"/login?next={quote(request.url.path, safe='/')}", status_code=303)

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException):
        message = {404: "Not found.", 405: "Not allowed."}.get(exc.status_code, str(exc.detail))
        return TEMPLATES.TemplateResponse(request, "error.html", {"user": None, "status": exc.status_code,
                                          "message": message}, status_code=exc.status_code)  # fmt: skip

    # sign-in ---------------------------------------------------------------------------
    @app.get("/login", response_class=HTMLResponse)
    def login_form(request: Request, next: str = "/"):
        return page(request, "login.html", None, next=_local(next), error=None)

    @app.post("/login")
    def login(request: Request, username: str = Form(""), password: str = Form(""),
              csrf_token: str = Form(""), next: str = Form("/")):  # fmt: skip
        check_csrf(request, csrf_token)
        client = _client(request)
        try:
            uid = accounts.user_id(username)
        except inputs.InputError:
            uid = "-"
        if config.rate_limit.blocked(uid, client):
            record(request, None, "sign_in_refused", f"rate limit {uid}", 429)
            return page(request, "login.html", None, 429, next=_local(next),
                        error="Too many failed sign-ins. Wait a few minutes and try again.")
        with read() as con:
            row = query(con, "marts/portal_user", {"user_id": uid})
        row = row[0] if row else None
        with db_lock:
            stored = accounts.password_hash(settings.warehouse, uid)
        if not accounts.verify(row, stored, password):
            config.rate_limit.failed(uid, client)
            record(request, None, "sign_in_refused", uid, 401)
            return page(request, "login.html", None, 401, next=_local(next), error="Wrong user name or password.")
        config.rate_limit.succeeded(uid)
        request.session.clear()  # a new session (and CSRF token) at every sign-in
        token = secrets.token_urlsafe(32)
        write_secret("credentials/session_start", {"session_id": _session_id(token), "user_id": row["user_id"],
                                             "client": client, "now": _now()})  # fmt: skip
        request.session.update({"sid": token, "csrf": secrets.token_urlsafe(32)})
        record(request, row, "sign_in", row["user_id"])
        return RedirectResponse(_local(next), status_code=303)

    @app.post("/logout")
    def logout(request: Request, csrf_token: str = Form("")):
        with read() as con:
            user = user_of(request, con)
        check_csrf(request, csrf_token)
        write_secret("credentials/session_end", {"session_id": _session_id(request.session["sid"]), "now": _now()})
        live.pop(_session_id(request.session["sid"]), None)
        request.session.clear()
        record(request, user, "sign_out")
        return RedirectResponse("/login", status_code=303)

    # statements --------------------------------------------------------------------------
    @app.get("/")
    def home(request: Request):
        with read() as con:
            user_of(request, con)
        return RedirectResponse("/statements", status_code=303)

    def own_list(request: Request, mart: str, template: str, key: str, params: dict | None = None,
                 newest_first: bool = False):
        """A page listing the signed-in holder's own rows of one mart, its view logged."""
        with read() as con:
            user = user_of(request, con)
            rows = query(con, mart, {**(params or {}), "rights_holder_id": user["rights_holder_id"]})
        record(request, user, "view")
        return page(request, template, user, **{key: rows[::-1] if newest_first else rows})

    @app.get("/statements", response_class=HTMLResponse)
    def statements(request: Request):
        return own_list(request, "marts/portal_statements", "statements.html", "statements")

    @app.get("/statements/{period}", response_class=HTMLResponse)
    def statement(request: Request, period: str):
        with read() as con:
            user = user_of(request, con)
            period = _period(period)
            hid = user["rights_holder_id"]
            files = query(con, "marts/portal_statement_files", {"period": period, "rights_holder_id": hid})
            if not files:
                raise HTTPException(404)
            lines = query(con, "marts/holder_statement_lines", {"period": period, "rights_holder_id": hid})
            status = query(con, "marts/period_state", {"period": period})
            disputed = defaultdict(list)
            for d in query(con, "marts/portal_disputes", {"rights_holder_id": hid}):
                if d["period"] == period:
                    disputed[(d["platform_id"], d["work_id"], d["right_type"])].append(d)
        record(request, user, "view", period)
        return page(request, "statement.html", user, period=period, files=files, lines=lines,
                    period_status=status[0]["status"] if status else "open", disputed=disputed,
                    total=sum((r["amount"] for r in lines), Decimal("0.00")))  # fmt: skip

    @app.get("/statements/{period}/download")
    def download(request: Request, period: str, kind: str = ""):
        with read() as con:
            user = user_of(request, con)
            period = _period(period)
            files = query(con, "marts/portal_statement_files", {"period": period, "rights_holder_id": user["rights_holder_id"]})
        row = next((f for f in files if f["kind"] == kind), None)
        if row is None:
            raise HTTPException(404)
        path = (settings.statements / row["path"]).resolve()
        if not path.is_relative_to(settings.statements.resolve()) or not path.is_file():
            raise HTTPException(404)
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != row["sha256"]:
            # Never hand out a file that is not the one recorded: finance rebuilds it.
            log.error("statement file %s differs from its recorded sha256", row["path"])
            record(request, user, "download", row["sha256"], 409)
            raise HTTPException(409, "this file differs from the one recorded; finance has been told")
        record(request, user, "download", row["sha256"])
        media = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return Response(data, media_type=media, headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(path.name)}",
            "X-Content-SHA256": row["sha256"], "Cache-Control": "private, no-store",
        })  # fmt: skip

    def _line(con, user: dict, period: str, platform_id: str, work_id: str, right_type: str) -> dict:
        if right_type not in RIGHTS or not _ID.match(platform_id) or not _ID.match(work_id):
            raise HTTPException(404)
        rows = query(con, "marts/portal_line", {"period": period, "rights_holder_id": user["rights_holder_id"],
                                                "platform_id": platform_id, "work_id": work_id, "right_type": right_type})
        if not rows:
            raise HTTPException(404)
        return rows[0]

    # Ids travel as query parameters, not path segments: a work or generation id is free text
    # from a catalog or a platform and may hold "/" (which no path segment can carry).
    @app.get("/statements/{period}/line", response_class=HTMLResponse)
    def line(request: Request, period: str, platform: str = "", work: str = "", right: str = "",
             error: str | None = None):  # fmt: skip
        platform_id, work_id, right_type = platform, work, right
        with read() as con:
            user = user_of(request, con)
            period = _period(period)
            row = _line(con, user, period, platform_id, work_id, right_type)
            params = {"period": period, "rights_holder_id": user["rights_holder_id"], "platform_id": platform_id,
                      "work_id": work_id, "right_type": right_type}
            gens = query(con, "marts/portal_line_generations", params)
            amounts = {g["generation_id"]: g for g in query(con, "marts/statement_generations",
                                                              {"period": period, "rights_holder_id": user["rights_holder_id"]})
                       if g["platform_id"] == platform_id and g["work_id"] == work_id and g["right_type"] == right_type}
            line_disputes = [d for d in query(con, "marts/portal_disputes", {"rights_holder_id": user["rights_holder_id"]})
                             if (d["period"], d["platform_id"], d["work_id"], d["right_type"]) == (period, platform_id, work_id, right_type)]
        record(request, user, "view", f"{period} {platform_id} {work_id} {right_type}")
        return page(request, "line.html", user, 422 if error else 200, line=row, generations=gens, amounts=amounts,
                    training=amounts.get(None), disputes=line_disputes, error=error, reason_max=disputes.REASON_MAX)

    @app.post("/statements/{period}/line/disputes")
    def file_dispute(request: Request, period: str, platform: str = "", work: str = "", right: str = "",
                     reason: str = Form(""), csrf_token: str = Form("")):  # fmt: skip
        platform_id, work_id, right_type = platform, work, right
        with read() as con:
            user = user_of(request, con)
        check_csrf(request, csrf_token)
        with read() as con:
            period = _period(period)
            row = _line(con, user, period, platform_id, work_id, right_type)
        try:
            text = disputes.reason_text(reason[: disputes.REASON_MAX * 4])
        except disputes.DisputeError as exc:
            return line(request, period, platform_id, work_id, right_type, error=str(exc))  # same page, the rule
        with db_lock, warehouse(settings.warehouse) as con:
            dispute_id = disputes.file_dispute(con, line=row, rights_holder_id=user["rights_holder_id"],
                                               by=user["user_id"], reason=text)  # fmt: skip
        record(request, user, "dispute", str(dispute_id))
        return RedirectResponse(f"/disputes/{dispute_id}", status_code=303)

    # generations, works, earnings ----------------------------------------------------------
    def _generation(con, user: dict, platform_id: str, generation_id: str) -> list[dict]:
        if not _ID.match(platform_id) or not _ID.match(generation_id):
            raise HTTPException(404)
        rows = query(con, "marts/portal_generation", {"rights_holder_id": user["rights_holder_id"],
                                                      "platform_id": platform_id, "generation_id": generation_id})
        if not rows:
            raise HTTPException(404)
        return rows

    @app.get("/generation", response_class=HTMLResponse)
    def generation(request: Request, platform: str = "", id: str = ""):
        platform_id, generation_id = platform, id
        with read() as con:
            user = user_of(request, con)
            rows = _generation(con, user, platform_id, generation_id)
        # next to the generation: the holder's own works it paid, as the catalog renders them
        works = list(dict.fromkeys(r["work_id"] for r in rows))
        excerpts = catalog_excerpts(settings, works)
        record(request, user, "view", f"generation {platform_id} {generation_id}")
        return page(request, "generation.html", user, rows=rows, g=rows[0],
                    excerpts=[(w, next(r["title"] for r in rows if r["work_id"] == w)) for w in works if w in excerpts])

    @app.get("/work/audio")
    def work_audio(request: Request, id: str = ""):
        """The catalog's rendered excerpt of one of the holder's own works (a work with a line
        of the holder's, as on /work); anything else is 404."""
        work_id = id
        with read() as con:
            user = user_of(request, con)
            if not _ID.match(work_id) or not query(con, "marts/portal_work_lines", {
                    "rights_holder_id": user["rights_holder_id"], "work_id": work_id}):  # fmt: skip
                raise HTTPException(404)
        excerpt = catalog_excerpts(settings, [work_id]).get(work_id)
        if excerpt is None:
            raise HTTPException(404)
        path, sha256 = excerpt
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != sha256:
            log.error("catalog excerpt of %r differs from the sha256 the catalog recorded", work_id)
            raise HTTPException(409, "this recording differs from the one the catalog recorded")
        record(request, user, "download", sha256)
        media = "audio/flac" if path.suffix == ".flac" else (mimetypes.guess_type(path.name)[0] or "application/octet-stream")
        return Response(data, media_type=media, headers={"Cache-Control": "private, no-store", "X-Content-SHA256": sha256})

    @app.get("/generation/audio")
    def generation_audio(request: Request, platform: str = "", id: str = ""):
        platform_id, generation_id = platform, id
        with read() as con:
            user = user_of(request, con)
            g = _generation(con, user, platform_id, generation_id)[0]
        if not g["audio_path"]:
            raise HTTPException(404)
        path = (settings.lake / g["audio_path"]).resolve()
        if not path.is_relative_to(settings.lake.resolve()) or not path.is_file():
            raise HTTPException(404)
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != g["audio_sha256"]:
            log.error("audio %s differs from its sha256 at ingest", g["audio_path"])
            raise HTTPException(409, "this recording differs from the one ingested")
        record(request, user, "download", g["audio_sha256"])
        media = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if path.suffix == ".flac":
            media = "audio/flac"
        return Response(data, media_type=media, headers={"Cache-Control": "private, no-store",
                                                          "X-Content-SHA256": g["audio_sha256"]})

    @app.get("/generation/pianoroll.svg")
    def generation_roll(request: Request, platform: str = "", id: str = ""):
        platform_id, generation_id = platform, id
        with read() as con:
            user = user_of(request, con)
            g = _generation(con, user, platform_id, generation_id)[0]
        vocab = svg.vocabulary(g["model_path"], settings.home)
        if not g["output_tokens"] or vocab is None:
            raise HTTPException(404)
        record(request, user, "view", f"piano roll {platform_id} {generation_id}")
        return Response(svg.piano_roll(svg.notes(list(g["output_tokens"]), vocab), generation_id),
                        media_type="image/svg+xml", headers={"Cache-Control": "private, no-store"})

    @app.get("/work", response_class=HTMLResponse)
    def work(request: Request, id: str = ""):
        work_id = id
        with read() as con:
            user = user_of(request, con)
            if not _ID.match(work_id):
                raise HTTPException(404)
            rows = query(con, "marts/portal_work_lines", {"rights_holder_id": user["rights_holder_id"], "work_id": work_id})
        if not rows:
            raise HTTPException(404)
        record(request, user, "view", f"work {work_id}")
        return page(request, "work.html", user, lines=rows, work=rows[0])

    def _earnings(con, user: dict) -> dict[str, dict[str, list[dict]]]:
        by: dict[str, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
        for r in query(con, "marts/portal_earnings", {"rights_holder_id": user["rights_holder_id"]}):
            by[r["dimension"]][r["currency"]].append(r)
        return by

    @app.get("/earnings", response_class=HTMLResponse)
    def earnings(request: Request):
        with read() as con:
            user = user_of(request, con)
            by = _earnings(con, user)
        record(request, user, "view")
        return page(request, "earnings.html", user, by=by)

    @app.get("/earnings/{dimension}/{currency}.svg")
    def earnings_svg(request: Request, dimension: str, currency: str):
        with read() as con:
            user = user_of(request, con)
            rows = _earnings(con, user).get(dimension, {}).get(currency)
        if not rows:
            raise HTTPException(404)
        return Response(svg.earnings_chart(rows, currency), media_type="image/svg+xml",
                        headers={"Cache-Control": "private, no-store"})

    # alerts (settlement/alerts.py raises them; the alert mails link here) --------------------
    @app.get("/alerts", response_class=HTMLResponse)
    def alert_list(request: Request):
        return own_list(request, "marts/alerts", "alerts.html", "alerts", {"period": None}, newest_first=True)

    # disputes -----------------------------------------------------------------------------
    @app.get("/disputes", response_class=HTMLResponse)
    def dispute_list(request: Request):
        return own_list(request, "marts/portal_disputes", "disputes.html", "disputes")

    @app.get("/disputes/{dispute_id}", response_class=HTMLResponse)
    def dispute(request: Request, dispute_id: str):
        with read() as con:
            user = user_of(request, con)
            if not re.fullmatch(r"[0-9]{1,18}", dispute_id):
                raise HTTPException(404)
            rows = query(con, "marts/portal_dispute", {"dispute_id": int(dispute_id), "rights_holder_id": user["rights_holder_id"]})
            if not rows:
                raise HTTPException(404)
            events = query(con, "marts/dispute_events", {"dispute_id": int(dispute_id)})
            d = rows[0]
            adjustments = query(con, "marts/portal_dispute_adjustments", {
                "adjustment_period": d["adjustment_period"], "period": d["period"],
                "platform_id": d["platform_id"], "rights_holder_id": user["rights_holder_id"],
            }) if d["status"] == "upheld" and d["adjustment_period"] else []  # fmt: skip
        record(request, user, "view", f"dispute {dispute_id}")
        return page(request, "dispute.html", user, d=d, events=events, adjustments=adjustments)

    return app


def _period(text: str) -> str:
    try:
        return inputs.period(text)
    except inputs.InputError:
        raise HTTPException(404) from None


def catalog_excerpts(settings: Settings, work_ids: list[str]) -> dict[str, tuple[Path, str]]:
    """work id -> (file, recorded sha256) of the audio catalog's rendered excerpts
    (TRIBUTARY_HOME/catalog/audio.parquet, written by sandbox/audio_render.py). A file name is
    the catalog's, so it is checked like any input: a plain name whose file lies under
    catalog/audio inside TRIBUTARY_HOME, or the work has no excerpt here."""
    import pyarrow.parquet as pq  # only pages with evidence need it

    index = settings.catalog / "audio.parquet"
    if not work_ids or not index.is_file():
        return {}
    try:
        table = pq.read_table(index, columns=["work_id", "file_name", "file_sha256"],
                              filters=[("work_id", "in", list(work_ids))]).to_pylist()  # fmt: skip
    except Exception:  # an unreadable or foreign catalog index: no excerpts, said in the log
        log.exception("cannot read %s", index)
        return {}
    folder = (settings.catalog / "audio").resolve()
    found = {}
    for row in table:
        name, sha = row["file_name"], row["file_sha256"]
        if not isinstance(name, str) or not isinstance(sha, str) or not re.fullmatch(r"[0-9a-f]{64}", sha):
            continue
        if not re.fullmatch(r"[\w.-]{1,200}", name) or name.startswith("."):
            continue
        path = (folder / name).resolve()
        if path.parent == folder and path.is_relative_to(settings.home.resolve()) and path.is_file():
            found[row["work_id"]] = (path, sha)
    return found


def _local(target: str) -> str:
    """Only a path of this site to go on to after signing in (never //host or a scheme)."""
    if not isinstance(target, str) or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/statements"
    return target if re.fullmatch(r"[\w\-./%~:@]{1,500}", target) else "/statements"


def _session_id(token: str | None) -> str:
    """What portal/credentials.duckdb keeps of a session token: its sha256, so the file holds
    nothing that would let anyone who reads it sign in."""
    return hashlib.sha256((token or "").encode()).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _client(request: Request) -> str:
    return request.client.host if request.client else "-"
