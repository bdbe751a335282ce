"""Kill a real process running a writing command, rerun it, and check what it left (the
tests/test_crash_safety_*.py files).

Commands run in processes forked from a forkserver that has already imported the CLI, so a
process starts in milliseconds and the instants fall inside the command's own work rather than
in interpreter start-up; each is a separate OS process, killed with SIGKILL (no handler, no
cleanup, exactly what `kill -9` does).

Two ways to choose the instant:
- `kill_series`: at evenly spread instants over an uninterrupted run (D x (i + 0.5) / n);
- `run_killed_after`: deterministically, right after a named function returns (e.g. the
  transaction that commits a catalog import), for the narrow windows a timer rarely hits.

Knob: TRIBUTARY_KILL_RERUN_TIMEOUT_S (default 120) bounds every run; a run that does not
finish in time writes its Python stack (faulthandler) into the failure message, so a hang names
the line it spins on instead of stalling the suite. TRIBUTARY_KILL_REPORT, if set, is a file
to which every series appends one JSON line (duration, instants, each rerun's result): the kill
table of docs/BENCHMARKS.md is made from it."""

from __future__ import annotations

import faulthandler
import importlib
import json
import multiprocessing
import os
import shutil
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

_CTX = multiprocessing.get_context("forkserver")
_CTX.set_forkserver_preload(["settlement.cli", "settlement.filedrop", "duckdb", "reportlab.platypus"])
RERUN_TIMEOUT_S = float(os.environ.get("TRIBUTARY_KILL_RERUN_TIMEOUT_S", "120"))
HANG_TRACE = ".hang-traceback.txt"  # in TRIBUTARY_HOME: where a run past its time writes its stack
CPU_SECONDS = ".cpu-seconds"  # in TRIBUTARY_HOME: the CPU time of a run that ended
RETRIES = 2  # per instant, when the command ended before it (see kill_series)


def command(home: str, argv: list[str], kill_after: str | None = None, timeout: float | None = None,
            env: dict | None = None) -> None:
    """What the child process runs: the `tributary` CLI (or, for `ingest-drop`, the file-drop
    landing the ingest task runs), with TRIBUTARY_HOME = home. `kill_after` ("module:function"):
    the process SIGKILLs itself as soon as that function first returns."""
    os.environ["TRIBUTARY_HOME"] = home
    os.environ["TRIBUTARY_WAREHOUSE_LOCK_WAIT_S"] = "5"
    os.environ.update(env or {})  # e.g. the test's SMTP server (the forkserver's env is older)
    if timeout:
        trace = open(Path(home) / HANG_TRACE, "w")  # noqa: SIM115 (lives until the process ends)
        faulthandler.dump_traceback_later(timeout, exit=True, file=trace)
    if kill_after:
        _die_after(kill_after)
    try:
        if argv[0] == "ingest-drop":
            from settlement.filedrop import ingest_file_drop

            ingest_file_drop(Path(home) / "warehouse.duckdb", Path(home) / "lake", argv[1], argv[2], run_id=argv[3])
            raise SystemExit(0)
        from settlement.cli import app

        app(argv, prog_name="tributary")
    finally:  # the command's own CPU seconds (imports were done by the forkserver)
        times = os.times()
        (Path(home) / CPU_SECONDS).write_text(str(times.user + times.system))


def _die_after(target: str) -> None:
    module_name, name = target.split(":")
    module = importlib.import_module(module_name)
    original = getattr(module, name)

    def wrapper(*args, **kwargs):
        result = original(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGKILL)
        return result  # never reached

    setattr(module, name, wrapper)


def start(home: Path, argv: list[str], kill_after: str | None = None, timeout: float | None = None,
          env: dict | None = None):
    proc = _CTX.Process(target=command, args=(str(home), argv, kill_after, timeout, env))
    proc.start()
    return proc


def run(home: Path, argv: list[str], timeout: float = RERUN_TIMEOUT_S, env: dict | None = None) -> float:
    """Run the command to its end; its duration. Fails unless it exits 0 within `timeout`
    (then with the stack it was stuck in)."""
    return run_timed(home, argv, timeout, env)[0]


def run_timed(home: Path, argv: list[str], timeout: float = RERUN_TIMEOUT_S, env: dict | None = None) -> tuple[float, float]:
    """`run`, returning its wall and CPU seconds (on cores shared with other jobs the CPU
    time says what the command costs on an idle machine, the wall time what it took here)."""
    t0 = time.perf_counter()
    proc = start(home, argv, timeout=timeout, env=env)
    proc.join(timeout + 30)
    took = time.perf_counter() - t0
    if proc.is_alive():
        proc.kill()
        proc.join()
    trace, cpu = Path(home) / HANG_TRACE, Path(home) / CPU_SECONDS
    stack = trace.read_text() if trace.exists() else ""
    trace.unlink(missing_ok=True)
    cpu_seconds = float(cpu.read_text()) if cpu.exists() else float("nan")
    cpu.unlink(missing_ok=True)
    assert proc.exitcode == 0, f"{argv} exited {proc.exitcode} after {took:.1f} s\n{stack}"
    return took, cpu_seconds


def run_killed_after(home: Path, argv: list[str], target: str, env: dict | None = None) -> None:
    """Run the command and SIGKILL it right after `target` ("module:function") first returns."""
    proc = start(home, argv, kill_after=target, env=env)
    proc.join(RERUN_TIMEOUT_S)
    if proc.is_alive():
        proc.kill()
        proc.join()
    assert proc.exitcode == -signal.SIGKILL, f"{argv} did not reach {target} (exit {proc.exitcode})"


def fresh(state: Path, into: Path) -> Path:
    """A private copy of a prepared TRIBUTARY_HOME (warehouse, statements, snapshots)."""
    if into.exists():
        rmtree(into)
    shutil.copytree(state, into, symlinks=True)
    return into


def rmtree(path: Path) -> None:
    for p in path.rglob("*"):  # snapshots are read-only
        if p.is_file():
            os.chmod(p, 0o600)
    shutil.rmtree(path)


@dataclass
class Series:
    name: str
    duration: float  # of an uninterrupted run, seconds
    cpu: float  # CPU seconds of that run
    instants: list[float] = field(default_factory=list)
    killed: list[bool] = field(default_factory=list)  # False: the run had already ended
    rerun_seconds: list[float] = field(default_factory=list)
    results: list[str] = field(default_factory=list)  # per rerun: "ok" or what failed
    retries: int = 0  # runs that ended before their instant, tried again at a shorter D

    @property
    def killed_mid_run(self) -> int:
        return sum(self.killed)

    def line(self) -> str:
        return (f"{self.name}: uninterrupted {self.duration:.2f} s ({self.cpu:.2f} CPU s); {len(self.instants)} kills at "
                f"{self.instants[0]:.3f}..{self.instants[-1]:.3f} s, {self.killed_mid_run} while running; "
                f"reruns {min(self.rerun_seconds):.2f}-{max(self.rerun_seconds):.2f} s; "
                f"{self.results.count('ok')} reruns ok; {self.retries} instants tried again")  # fmt: skip

    def report(self) -> None:
        if path := os.environ.get("TRIBUTARY_KILL_REPORT"):
            with open(path, "a") as f:
                f.write(json.dumps(asdict(self)) + "\n")


def kill_series(name: str, state: Path, work: Path, argv: list[str], n: int, check) -> Series:
    """Measure the command's duration D on copies of `state`; then n times: a fresh copy, the
    command killed at D * (i + 0.5) / n, the command run again to its end, `check(home)` (which
    returns a summary that must equal the uninterrupted run's).

    On cores shared with other jobs a run's duration varies. D is the shorter of two
    uninterrupted runs (the first process of a forkserver also imports what the command loads
    lazily), and when a run ends before its instant, D becomes that run's duration and the
    same fraction of it is tried again (at most RETRIES times), so that the instants stay
    inside the command as it runs now."""
    home = fresh(state, work / f"{name}-reference")
    first = run_timed(home, argv)
    expected = check(home)
    rmtree(home)
    home = fresh(state, work / f"{name}-reference")
    wall, cpu = min(first, run_timed(home, argv))
    series = Series(name, wall, cpu)
    rmtree(home)
    duration = wall
    try:
        for i in range(n):
            for attempt in range(RETRIES + 1):
                home = fresh(state, work / f"{name}-{i}")
                instant = duration * (i + 0.5) / n
                proc = start(home, argv)
                t0 = time.perf_counter()
                proc.join(instant)  # returns at once if the command ends first
                ended = time.perf_counter() - t0
                alive = proc.is_alive()
                if alive:
                    os.kill(proc.pid, signal.SIGKILL)
                proc.join(60)
                assert proc.exitcode in (-signal.SIGKILL, 0), (name, i, proc.exitcode)
                if alive or attempt == RETRIES:
                    break
                duration = min(duration, ended)
                series.retries += 1
            series.instants.append(instant)
            series.killed.append(alive)
            took = float("nan")
            try:
                took = run(home, argv)
                got = check(home)
                assert got == expected, ("differs from an uninterrupted run", got, expected)
            except AssertionError as err:
                series.rerun_seconds.append(took)
                series.results.append(f"FAILED: {str(err).splitlines()[0][:200]}")
                raise AssertionError(f"{name}: killed at {instant:.3f} s ({'mid-run' if alive else 'after it ended'}), "
                                     f"then: {err}") from None  # fmt: skip
            series.rerun_seconds.append(took)
            series.results.append("ok")
            rmtree(home)
    finally:
        series.report()
    return series
