"""The holder portal's requests per second for a statement page, side by side with a static
file of the same size served by the same server process.

    .venv/bin/python benchmarks/portal_pages.py --requests 200 --rounds 3 --dir /tmp/portal-bench

Builds a settled warehouse (tests/portal_fixtures.py: October calculated, approved, closed with
its statements), starts one uvicorn process serving the portal with a Starlette StaticFiles
mount next to it, signs in, and alternates rounds of sequential keep-alive requests: the
statement page of the closed month (session lookup, warehouse reads, template, access-log
write) and the static file. It then times, in this process while the server is idle, the
parts of a page that touch DuckDB: a read-only open of the warehouse, a session lookup in the
credentials file, and one access-log write (open read-write, insert, commit, close).
"""

from __future__ import annotations

import argparse
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

SECRET = "benchmark-secret-" + "x" * 32
VARIANTS = (("statement page, access log written to the warehouse per request", 0.0),
            ("statement page, access log journaled (fsync) and loaded every 2 s", 2.0))


def serve(home: Path, port: int, flush_s: float) -> None:
    import uvicorn
    from starlette.staticfiles import StaticFiles

    from portal.app import PortalConfig, create_app
    from settlement.config import Settings

    app = create_app(PortalConfig(Settings(home), SECRET, secure_cookies=False, access_log_flush_s=flush_s))
    app.mount("/static-baseline", StaticFiles(directory=home.parent / "static"), name="static-baseline")
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, server_header=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rate(client, url: str, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        r = client.get(url)
        if r.status_code != 200:
            raise SystemExit(f"{url}: HTTP {r.status_code}")
    return n / (time.perf_counter() - t0)


def _ms(fn, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=200, help="per round and kind")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/portal-bench"))
    ap.add_argument("--serve", nargs=3, metavar=("HOME", "PORT", "FLUSH_S"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        return serve(Path(args.serve[0]), int(args.serve[1]), float(args.serve[2]))

    import httpx
    from portal_fixtures import PERIOD, USERS, build_portal_home

    from portal import access_journal, credentials
    from settlement.warehouse import query, run_sql, transaction, warehouse

    shutil.rmtree(args.dir, ignore_errors=True)
    (args.dir / "static").mkdir(parents=True)
    t0 = time.perf_counter()
    home = build_portal_home(args.dir / "home")
    print(f"settled warehouse built in {time.perf_counter() - t0:.1f} s")
    db = home["settings"].warehouse
    user, page_url, static_url = "ana@a.example", f"/statements/{PERIOD}", "/static-baseline/statement.html"
    results = {}
    for label, flush_s in VARIANTS:
        port = _free_port()
        server = subprocess.Popen([sys.executable, __file__, "--serve", str(home["settings"].home), str(port), str(flush_s)])
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", follow_redirects=False, timeout=30) as client:
                for _ in range(200):
                    try:
                        client.get("/login")
                        break
                    except httpx.TransportError:
                        time.sleep(0.1)
                token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
                r = client.post("/login", data={"username": user, "password": USERS[user][1], "csrf_token": token})
                assert r.status_code == 303, r.status_code
                page = client.get(page_url)
                assert page.status_code == 200 and PERIOD in page.text
                static = args.dir / "static" / "statement.html"
                if not static.exists():
                    static.write_bytes(page.content)  # the same size, as a file
                assert len(client.get(static_url).content) == len(page.content)
                _rate(client, page_url, 5), _rate(client, static_url, 5)  # warm up
                pages, statics = [], []
                for _ in range(args.rounds):
                    pages.append(_rate(client, page_url, args.requests))
                    statics.append(_rate(client, static_url, args.requests))
        finally:
            server.terminate()  # a graceful stop loads what the journal still holds
            server.wait(timeout=60)
        results[label] = (pages, statics)
    with warehouse(db, read_only=True) as con:
        logged = con.execute("SELECT count(*) FROM portal.access_log WHERE path = ?", [page_url]).fetchone()[0]
    expected = len(VARIANTS) * (1 + 5 + args.rounds * args.requests)
    # the DuckDB parts of a page, timed here with no server running
    n = max(20, args.requests // 4)
    with warehouse(db, read_only=True) as con:
        holder = query(con, "marts/portal_user", {"user_id": user})[0]

    def read_open():
        with warehouse(db, read_only=True):
            pass

    def session_lookup():
        with credentials.connect(db, read_only=True) as con:
            query(con, "credentials/user_sessions", {"user_id": user})

    def log_write():
        with warehouse(db) as con, transaction(con):
            run_sql(con, "loads/portal_access", {
                "now": datetime.now(UTC).replace(tzinfo=None), "user_id": user,
                "rights_holder_id": holder["rights_holder_id"], "client": "benchmark", "action": "view",
                "path": "/benchmark", "subject": None, "status": 200,
            })  # fmt: skip

    journal = access_journal.AccessJournal(args.dir / "journal")

    def journal_append():
        journal.append({"accessed_at": datetime.now(UTC).replace(tzinfo=None), "user_id": user,
                        "rights_holder_id": "RH00", "client": "benchmark", "action": "view",
                        "path": "/benchmark", "subject": None, "status": 200})  # fmt: skip

    parts = {"warehouse open, read-only": _ms(read_open, n),
             "session lookup (credentials file)": _ms(session_lookup, n),
             "access-log write to the warehouse (open, insert, commit, close)": _ms(log_write, n),
             "access-log journal append (write, fsync)": _ms(journal_append, n)}  # fmt: skip

    print(f"\nstatement page {page_url}: {len(page.content):,} bytes; {args.rounds} rounds x {args.requests} "
          "sequential keep-alive requests per kind, alternating with the static file; one uvicorn process "
          "per variant")  # fmt: skip
    print(f"| request | requests/s (median of {args.rounds}) | rounds | ms per request | vs static |")
    print("| --- | ---: | --- | ---: | ---: |")
    for label, (pages, statics) in results.items():
        page_rps, static_rps = statistics.median(pages), statistics.median(statics)
        print(f"| static file, same size (StaticFiles), same process | {static_rps:,.1f} | "
              f"{', '.join(f'{x:.0f}' for x in statics)} | {1000 / static_rps:.2f} | 1.00x |")  # fmt: skip
        print(f"| {label} | {page_rps:,.1f} | {', '.join(f'{x:.1f}' for x in pages)} | {1000 / page_rps:.1f} "
              f"| {static_rps / page_rps:.1f}x slower |")  # fmt: skip
    first, last = (statistics.median(results[label][0]) for label, _ in (VARIANTS[0], VARIANTS[-1]))
    print(f"\njournaled / per-request: {last / first:.2f}x the statement pages per second")
    print(f"access-log rows of the statement page in the warehouse: {logged} (acknowledged views: {expected})")
    print("\nparts of a page that touch DuckDB or the disk (ms each, this process, no server running):")
    for name, ms in parts.items():
        print(f"  {name}: {ms:.1f} ms")


if __name__ == "__main__":
    main()
