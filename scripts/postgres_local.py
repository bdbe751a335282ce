#!/usr/bin/env python3
"""A throwaway PostgreSQL server on loopback, from the distribution's own binaries.

For the multi-worker test and for trying Airflow on PostgreSQL by hand. Installs nothing:
it finds `initdb`/`pg_ctl` (PG_BIN, then PATH, then /usr/lib/postgresql/*/bin, newest
first) and says how to install them when they are missing (`apt-get install -y postgresql`).

    python3 scripts/postgres_local.py start DIR [--port N] [--db airflow] [--user airflow] [--no-fsync]
        initdb into DIR/data (first time only), start postgres on 127.0.0.1 (a free port unless
        --port), create the role and database, print the SQLAlchemy URL on stdout.
    python3 scripts/postgres_local.py url DIR      print the URL of a server started in DIR
    python3 scripts/postgres_local.py stop DIR     stop it (fast shutdown; the data stays)
    python3 scripts/postgres_local.py bindir       print the folder of the binaries, exit 3 if none

PostgreSQL refuses to run as root: when started by root, the server runs as the `postgres`
system user (created with `useradd --system` if the package did not create it; --os-user to
pick another) and DIR is handed to that user, so DIR's parents must be traversable by it
(a folder directly under /tmp is; pytest's tmp_path under /tmp/pytest-of-root is not).

Only standard-library Python, so it runs before or without the project's virtualenv.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

INSTALL_HINT = (
    "PostgreSQL server binaries (initdb, pg_ctl) not found. Install them with "
    "`apt-get install -y postgresql` (Debian/Ubuntu) or set PG_BIN to their folder."
)


class PostgresError(RuntimeError):
    pass


def _version_key(path: str) -> tuple:
    m = re.search(r"/(\d+)(?:\.(\d+))?/bin$", path)
    return (int(m.group(1)), int(m.group(2) or 0)) if m else (0, 0)


def find_bindir() -> Path | None:
    """The folder holding initdb, pg_ctl, postgres and psql, or None."""
    candidates: list[str] = []
    if os.environ.get("PG_BIN"):
        candidates.append(os.environ["PG_BIN"])
    found = shutil.which("initdb")
    if found:
        candidates.append(str(Path(found).resolve().parent))
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run([pg_config, "--bindir"], check=False, capture_output=True, text=True, timeout=10)
            if out.returncode == 0:
                candidates.append(out.stdout.strip())
        except (OSError, subprocess.SubprocessError):
            pass
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)
    candidates += sorted(glob.glob("/usr/pgsql-*/bin"), reverse=True)  # RHEL family
    for c in candidates:
        d = Path(c)
        if all((d / b).exists() for b in ("initdb", "pg_ctl", "postgres", "psql")):
            return d
    return None


def _os_user(requested: str | None) -> str | None:
    """The user the server runs as: None means "as myself" (not root)."""
    if os.geteuid() != 0:
        return None
    name = requested or "postgres"
    try:
        pwd.getpwnam(name)
    except KeyError:
        print(f"postgres_local: creating system user {name!r} (PostgreSQL refuses to run as root)", file=sys.stderr)
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name], check=True
        )
    return name


def _as(user: str | None, argv: list[str], **kw) -> subprocess.CompletedProcess:
    cmd = argv if user is None else ["runuser", "-u", user, "--", *argv]
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    return subprocess.run(cmd, check=False, **kw)


def _check(proc: subprocess.CompletedProcess, what: str) -> None:
    if proc.returncode != 0:
        raise PostgresError(f"{what} failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _state_file(root: Path) -> Path:
    return root / "connection.json"


def _url(state: dict) -> str:
    return (
        f"postgresql+psycopg2://{state['user']}:{state['password']}"
        f"@127.0.0.1:{state['port']}/{state['db']}"
    )


def start(
    root: Path,
    port: int | None = None,
    db: str = "airflow",
    user: str = "airflow",
    os_user: str | None = None,
    fsync: bool = True,
) -> dict:
    """Start (initdb first if needed) and return {"url", "port", "db", "user", "password", ...}."""
    bindir = find_bindir()
    if bindir is None:
        raise PostgresError(INSTALL_HINT)
    root = Path(root).resolve()
    runas = _os_user(os_user)
    data, sock, logfile = root / "data", root / "run", root / "postgres.log"
    root.mkdir(parents=True, exist_ok=True)
    sock.mkdir(exist_ok=True)
    if runas is not None:
        pw = pwd.getpwnam(runas)
        for p in (root, sock):
            os.chown(p, pw.pw_uid, pw.pw_gid)
        if logfile.exists():
            os.chown(logfile, pw.pw_uid, pw.pw_gid)
        if _as(runas, ["test", "-w", str(root)]).returncode != 0:
            raise PostgresError(
                f"{root} is not writable by user {runas!r}: one of its parent folders is private. "
                "Use a folder directly under /tmp (or another world-traversable place)."
            )
    os.chmod(root, 0o700)

    state_path = _state_file(root)
    state = json.loads(state_path.read_text()) if state_path.exists() else {}
    if not (data / "PG_VERSION").exists():
        _check(
            _as(runas, [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-E", "UTF8",
                        "--no-locale", "--auth-local=trust", "--auth-host=scram-sha-256"]),
            "initdb",
        )  # fmt: skip
        state = {"db": db, "user": user, "password": secrets.token_urlsafe(18), "created": False}

    opts = [
        "-c listen_addresses=127.0.0.1",
        f"-c unix_socket_directories={sock}",
        "-c max_connections=200",  # scheduler, api-server, dag-processor, triggerer, task workers
    ]
    if not fsync:  # test clusters only: much faster DDL (airflow db migrate), no crash safety
        opts += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
    attempts = 1 if port else 5
    for attempt in range(attempts):
        chosen = port or _free_port()
        proc = _as(runas, [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(logfile), "-w", "-t", "60",
                           "-o", " ".join(opts + [f"-c port={chosen}"]), "start"])  # fmt: skip
        if proc.returncode == 0:
            break
        if attempt == attempts - 1:
            tail = logfile.read_text(errors="replace")[-3000:] if logfile.exists() else ""
            raise PostgresError(f"pg_ctl start failed:\n{proc.stdout}\n{proc.stderr}\n{tail}")
        time.sleep(0.5)
    state.update(port=chosen, socket_dir=str(sock), bindir=str(bindir), os_user=runas, data=str(data))

    if not state.get("created"):
        psql = [str(bindir / "psql"), "-h", str(sock), "-p", str(chosen), "-U", "postgres", "-d", "postgres",
                "-v", "ON_ERROR_STOP=1", "-q"]  # fmt: skip
        password = state["password"].replace("'", "''")
        _check(_as(runas, psql + ["-c", f"CREATE ROLE \"{state['user']}\" LOGIN PASSWORD '{password}'"]), "create role")
        _check(_as(runas, psql + ["-c", f"CREATE DATABASE \"{state['db']}\" OWNER \"{state['user']}\""]), "create database")
        state["created"] = True
    state["url"] = _url(state)
    state_path.write_text(json.dumps(state, indent=1))
    os.chmod(state_path, 0o600)
    return state


def stop(root: Path) -> bool:
    """Fast shutdown; True if a server was running. Falls back to SIGTERM/SIGKILL of the postmaster."""
    root = Path(root).resolve()
    data = root / "data"
    pidfile = data / "postmaster.pid"
    if not pidfile.exists():
        return False
    state = json.loads(_state_file(root).read_text()) if _state_file(root).exists() else {}
    bindir = Path(state["bindir"]) if state.get("bindir") else find_bindir()
    if bindir is not None:
        proc = _as(state.get("os_user"), [str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "-t", "30", "stop"])
        if proc.returncode == 0:
            return True
    try:
        pid = int(pidfile.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return False
    for sig, wait in ((15, 10), (9, 5)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return True
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
            time.sleep(0.2)
    return True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("start", help="initdb if needed, start on 127.0.0.1, print the SQLAlchemy URL")
    s.add_argument("dir", type=Path)
    s.add_argument("--port", type=int)
    s.add_argument("--db", default="airflow")
    s.add_argument("--user", default="airflow")
    s.add_argument("--os-user", help="user the server runs as when started by root (default postgres)")
    s.add_argument("--no-fsync", action="store_true", help="faster, not crash-safe: for test clusters")
    s.add_argument("--json", action="store_true", help="print the whole connection record as JSON")
    u = sub.add_parser("url", help="print the URL of the server started in DIR")
    u.add_argument("dir", type=Path)
    t = sub.add_parser("stop", help="stop the server started in DIR")
    t.add_argument("dir", type=Path)
    sub.add_parser("bindir", help="print the folder of the PostgreSQL binaries (exit 3 if none)")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "bindir":
            found = find_bindir()
            if found is None:
                print(INSTALL_HINT, file=sys.stderr)
                return 3
            print(found)
        elif args.cmd == "start":
            state = start(args.dir, args.port, args.db, args.user, args.os_user, fsync=not args.no_fsync)
            print(json.dumps(state) if args.json else state["url"])
        elif args.cmd == "url":
            print(json.loads(_state_file(args.dir.resolve()).read_text())["url"])
        elif args.cmd == "stop":
            print("stopped" if stop(args.dir) else "not running")
    except PostgresError as err:
        print(f"postgres_local: {err}", file=sys.stderr)
        return 3 if INSTALL_HINT in str(err) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
