"""Kill a real process running a writing command at evenly spread instants, rerun it, and
check what it left (tests/test_crash_safety.py).

Commands run in processes forked from a forkserver that has already imported the CLI, so a
process starts in milliseconds and the instants fall inside the command's own work rather than
in interpreter start-up; each is a separate OS process, killed with SIGKILL (no handler, no
cleanup, exactly what `kill -9` does)."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

_CTX = multiprocessing.get_context("forkserver")
_CTX.set_forkserver_preload(["settlement.cli", "settlement.filedrop", "duckdb", "reportlab.platypus"])


def command(home: str, argv: list[str]) -> None:
    """What the killed process runs: the `tributary` CLI (or, for `ingest-drop`, the file-drop
    landing the ingest task runs), with TRIBUTARY_HOME = home."""
    os.environ["TRIBUTARY_HOME"] = home
    os.environ["TRIBUTARY_WAREHOUSE_LOCK_WAIT_S"] = "5"
    if argv[0] == "ingest-drop":
        from settlement.filedrop import ingest_file_drop

        ingest_file_drop(Path(home) / "warehouse.duckdb", Path(home) / "lake", argv[1], argv[2], run_id=argv[3])
        raise SystemExit(0)
    from settlement.cli import app

    app(argv, prog_name="tributary")


def start(home: Path, argv: list[str]):
    proc = _CTX.Process(target=command, args=(str(home), argv))
    proc.start()
    return proc


def run(home: Path, argv: list[str], timeout: float = 300) -> float:
    """Run the command to its end; its duration. Fails unless it exits 0."""
    t0 = time.perf_counter()
    proc = start(home, argv)
    proc.join(timeout)
    took = time.perf_counter() - t0
    assert proc.exitcode == 0, f"{argv} exited {proc.exitcode}"
    return took


def fresh(state: Path, into: Path) -> Path:
    """A private copy of a prepared TRIBUTARY_HOME (warehouse, statements, snapshots)."""
    if into.exists():
        _rmtree(into)
    shutil.copytree(state, into, symlinks=True)
    return into


def _rmtree(path: Path) -> None:
    for p in path.rglob("*"):  # snapshots are read-only
        if p.is_file():
            os.chmod(p, 0o600)
    shutil.rmtree(path)


@dataclass
class Series:
    name: str
    duration: float  # of an uninterrupted run, seconds
    instants: list[float] = field(default_factory=list)
    killed_mid_run: int = 0
    rerun_seconds: list[float] = field(default_factory=list)

    def line(self) -> str:
        return (f"{self.name}: uninterrupted {self.duration:.2f} s; {len(self.instants)} kills at "
                f"{self.instants[0]:.3f}..{self.instants[-1]:.3f} s, {self.killed_mid_run} while running; "
                f"reruns {min(self.rerun_seconds):.2f}-{max(self.rerun_seconds):.2f} s")  # fmt: skip


def kill_series(name: str, state: Path, work: Path, argv: list[str], n: int, check, reference=None) -> Series:
    """Measure the command's duration D on a copy of `state`; then n times: a fresh copy, the
    command killed at D * (i + 0.5) / n, the command run again to its end, `check(home)` (which
    returns a summary that must equal the uninterrupted run's)."""
    home = fresh(state, work / f"{name}-reference")
    series = Series(name, run(home, argv))
    expected = check(home)
    _rmtree(home)
    for i in range(n):
        home = fresh(state, work / f"{name}-{i}")
        instant = series.duration * (i + 0.5) / n
        proc = start(home, argv)
        t0 = time.perf_counter()
        time.sleep(max(0.0, instant - (time.perf_counter() - t0)))
        if proc.is_alive():
            series.killed_mid_run += 1
            os.kill(proc.pid, signal.SIGKILL)
        proc.join(60)
        assert proc.exitcode in (-signal.SIGKILL, 0), (name, i, proc.exitcode)
        series.instants.append(instant)
        series.rerun_seconds.append(run(home, argv))
        got = check(home)
        assert got == expected, (name, f"killed at {instant:.3f} s", got, expected)
        _rmtree(home)
    return series
