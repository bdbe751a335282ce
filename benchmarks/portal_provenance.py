"""Requests per second of the provenance check API against a 10^5-generation log, side by side
with a static file served by the same server (a StaticFiles mount of the same FastAPI app, same
uvicorn process, same client), and the ratio. Run:

    .venv/bin/python benchmarks/portal_provenance.py [--generations 100000] [--seconds 8]

The log is synthetic (say so when quoting): 10^5 audio generations with random file sha256,
three attribution shares each, and `--landmarks` random landmark hashes per generation in the
fingerprint index (real sandbox audio has ~2000 per 4 s clip; the index holds the same kind of
rows). One more generation is a real 4 s audio file (a synthesised melody) indexed by the real
fingerprint, so the fingerprint lookup runs the real path end to end on a full-size index.

Endpoints are a list (ENDPOINTS); the portal's statement page is one more entry:
(name, method, path, kwargs) measured the same way.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import multiprocessing
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _melody_wav(seconds: float = 4.0, sr: int = 16000, seed: int = 7) -> bytes:
    import soundfile as sf

    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    y = np.zeros_like(t)
    step = 0.25
    for i in range(int(seconds / step)):
        f = 220 * 2 ** (rng.integers(0, 24) / 12)
        seg = (t >= i * step) & (t < (i + 1) * step)
        y[seg] += np.sin(2 * np.pi * f * t[seg]) + 0.4 * np.sin(4 * np.pi * f * t[seg])
    buf = io.BytesIO()
    sf.write(buf, (0.3 * y).astype(np.float32), sr, format="WAV")
    return buf.getvalue()


def build(home: Path, generations: int, landmarks: int) -> dict:
    """A warehouse with a synthetic 10^5-generation log and its fingerprint index."""
    from provenance import fingerprint, keys
    from settlement.reference import Contract, register_contract, register_platform
    from settlement.warehouse import warehouse

    db = home / "warehouse.duckdb"
    wav = _melody_wav()
    p = fingerprint.audio_print(wav)
    with warehouse(db) as con:
        register_platform(con, "bench", "Bench Platform", "bench_conn")
        register_contract(con, Contract("BENCH", "bench"))
        con.execute(f"""INSERT INTO raw.generations SELECT 'bench', 'g' || lpad(CAST(i AS VARCHAR), 7, '0'), 'mv1',
            TIMESTAMP '2026-10-01' + INTERVAL (i % 2678400) SECOND, 'bach', NULL, NULL, 'US', 0.01, 'USD',
            TIMESTAMP '2026-10-01', TIMESTAMP '2026-11-01', 'bench', now()::TIMESTAMP FROM range({generations}) t(i)""")
        con.execute(f"""INSERT INTO raw.generation_audio SELECT 'bench', 'g' || lpad(CAST(i AS VARCHAR), 7, '0'),
            'audio/x.flac', sha256('gen' || i), 1000, 16000, 4.0, 'bench', now()::TIMESTAMP FROM range({generations}) t(i)""")
        con.execute(f"""INSERT INTO attribution.shares SELECT 'run', 'bench', 'g' || lpad(CAST(i AS VARCHAR), 7, '0'),
            CASE WHEN k < 2 THEN 'W' || ((i * 7 + k) % 5000) END, k = 2, [0.5, 0.3, 0.2][k + 1], 1.0, k + 1, 'trak', 'mv1'
            FROM range({generations}) t(i), range(3) s(k)""")
        con.execute(f"""INSERT INTO provenance.landmarks SELECT (hash(i, j) % 33554432)::BIGINT,
            'bench', 'g' || lpad(CAST(i AS VARCHAR), 7, '0'), (j * 3)::INTEGER
            FROM range({generations}) t(i), range({landmarks}) s(j)""")
        con.execute("""INSERT INTO provenance.prints SELECT platform_id, generation_id, 'audio', count(*), 'bench',
            now()::TIMESTAMP FROM provenance.landmarks GROUP BY ALL""")
        # the real file: one more generation, its real landmarks
        sha = hashlib.sha256(wav).hexdigest()
        con.execute("""INSERT INTO raw.generations VALUES ('bench', 'g-real', 'mv1', TIMESTAMP '2026-10-02', 'bach', NULL,
            NULL, 'US', 0.01, 'USD', TIMESTAMP '2026-10-01', TIMESTAMP '2026-11-01', 'bench', now()::TIMESTAMP)""")
        con.execute("INSERT INTO raw.generation_audio VALUES ('bench', 'g-real', 'audio/r.flac', ?, 1000, 16000, 4.0, 'bench', now()::TIMESTAMP)",
                    [sha])  # fmt: skip
        con.executemany("INSERT INTO provenance.landmarks VALUES (?, 'bench', 'g-real', ?)",
                        list(zip(p.hashes.tolist(), p.times.tolist(), strict=True)))  # fmt: skip
        n_landmarks = con.execute("SELECT count(*) FROM provenance.landmarks").fetchone()[0]
    key = keys.create(db, "bench", rate_per_minute=100_000)  # the highest a key may have
    static = home / "static"
    static.mkdir()
    # a file the size of a holder's statement PDF (~60 KB)
    (static / "statement.pdf").write_bytes(np.random.default_rng(1).bytes(60_000))
    trimmed = _trim(wav)
    return {"db": db, "static": static, "key": key, "sha": sha, "wav": wav, "trimmed": trimmed,
            "n_landmarks": n_landmarks, "generations": generations + 1}  # fmt: skip


def _trim(wav: bytes) -> bytes:
    import soundfile as sf

    y, sr = sf.read(io.BytesIO(wav), dtype="float32")
    buf = io.BytesIO()
    sf.write(buf, y[len(y) // 10:] * 0.5, sr, format="WAV")
    return buf.getvalue()


def _serve(db: str, static: str, port: int) -> None:
    import uvicorn

    from provenance.app import create_app

    uvicorn.run(create_app(Path(db), static_dir=Path(static)), host="127.0.0.1", port=port, log_level="warning")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure(url: str, method: str, kwargs: dict, seconds: float, clients: int, check) -> dict:
    """Requests per second with `clients` keep-alive connections for `seconds`."""
    done, errors, stop = [0] * clients, [0] * clients, threading.Event()

    def worker(i: int) -> None:
        s = requests.Session()
        while not stop.is_set():
            r = s.request(method, url, timeout=60, **kwargs)
            if r.status_code == 200 and check(r):
                done[i] += 1
            else:
                errors[i] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    took = time.perf_counter() - t0
    return {"rps": sum(done) / took, "ok": sum(done), "errors": sum(errors)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--generations", type=int, default=100_000)
    ap.add_argument("--landmarks", type=int, default=50, help="synthetic landmarks per generation")
    ap.add_argument("--seconds", type=float, default=8.0, help="per endpoint")
    ap.add_argument("--clients", type=int, default=4)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        b = build(Path(tmp), args.generations, args.landmarks)
        print(f"log: {b['generations']} generations, {b['n_landmarks']} landmarks in the index "
              f"(built in {time.perf_counter() - t0:.1f} s; synthetic, see the docstring)")  # fmt: skip
        port = _free_port()
        server = multiprocessing.get_context("spawn").Process(target=_serve, args=(str(b["db"]), str(b["static"]), port))
        server.start()
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    requests.get(f"{base}/v1/health", timeout=1)
                    break
                except requests.ConnectionError:
                    time.sleep(0.1)
            key = {"X-API-Key": b["key"]}
            matched = lambda gid: lambda r: r.json().get("generation", {}).get("generation_id") == gid
            endpoints = [  # (name, method, path, kwargs, check); the portal's statement page goes here
                ("static file (60 KB, StaticFiles)", "GET", "/static/statement.pdf", {}, lambda r: len(r.content) == 60_000),
                ("provenance: sha256 lookup", "GET", f"/v1/checks/sha256/{b['sha']}", {"headers": key}, matched("g-real")),
                ("provenance: file upload, exact hash", "POST", "/v1/checks/file",
                 {"headers": key, "files": {"file": ("a.wav", b["wav"])}}, matched("g-real")),
                ("provenance: file upload, fingerprint (trimmed + gain)", "POST", "/v1/checks/file",
                 {"headers": key, "files": {"file": ("b.wav", b["trimmed"])}}, matched("g-real")),
            ]  # fmt: skip
            results = []
            for name, method, path, kwargs, check in endpoints:
                for _ in range(3):  # warm-up: imports (librosa) and caches load on first use
                    requests.request(method, base + path, timeout=120, **kwargs)
                r = measure(base + path, method, kwargs, args.seconds, args.clients, check)
                results.append((name, r))
                print(f"{name:58s} {r['rps']:9.1f} req/s  ({r['ok']} ok, {r['errors']} errors)", flush=True)
        finally:
            server.terminate()
            server.join()
        base_rps = results[0][1]["rps"]
        print(f"\nratios to the static file, same server, same run ({os.cpu_count()} CPUs, {args.clients} clients):")
        for name, r in results[1:]:
            print(f"  {name:56s} {r['rps'] / base_rps:7.3f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
