"""One month settled end to end on the embedded default: `make demo`.

Two licensed platforms report generations in the same month, under different contracts: the
symbolic sandbox (a nanoGPT over note tokens) and the audio sandbox (a diffusers U-Net over
log-mel spectrograms of catalog works rendered through FluidSynth). Builds the catalog and
both platforms' models (cached between runs; the audio platform is built in a second process
while the symbolic one trains, each on one core), starts both platforms' HTTP servers on
loopback, runs the three Airflow DAGs through real Airflow (`dag.test()` against the
project's own SQLite metadata database), stops the servers and prints what happened.

    python -m sandbox.demo [--period 2026-10] [--generations 600] [--small]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import secrets
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("AIRFLOW_HOME", str(ROOT / ".airflow"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(ROOT / "dags"))
# dag.test() cannot finish a run of a DAG with a deadline alert (dags/_common.close_deadline)
os.environ.setdefault("TRIBUTARY_CLOSE_DEADLINE", "off")

log = logging.getLogger("tributary.demo")
PLATFORM_ID = "sandbox"
CONN_ID = "sandbox_platform"
AUDIO_PLATFORM_ID = "sandbox-audio"
AUDIO_CONN_ID = "sandbox_audio_platform"
# The audio platform of the demo month (sandbox.audio_platform.AudioSandboxConfig fields):
# 300 catalog works rendered, 120 generations of which 8 planted copies (exact, pitch-shifted,
# time-stretched, noisy), the DEMO model (800 steps, about 2 minutes on one core).
# null_samples: the model's own samples stored as the null of the audio contract's calibrated
# rule (alpha 0.05): 200 = 10/alpha, half the ~20/alpha guidance, because sampling and
# Griffin-Lim cost 0.6-1.3 s a piece on a shared core (README "Timings").
AUDIO_DEMO = {"n_works": 300, "n_generations": 120, "null_samples": 200}
AUDIO_SMALL = {"n_works": 24, "n_generations": 16, "model_size": "tiny", "train_steps": 120,
               "copies_per_transform": 1, "null_samples": 60}  # fmt: skip


@dataclass(frozen=True)
class DemoConfig:
    period: str = "2026-10"
    n_generations: int = 600
    catalog_limit: int | None = None  # None: the full catalog (>= 2,000 works)
    train_steps: int | None = None  # None: the demo default of sandbox.train
    model_size: str = "demo"  # "demo" or "tiny"
    days: int | None = None  # ingest only the first N days (tests); None: the whole month
    seed: int = 11
    # The audio platform (AudioSandboxConfig overrides); None: the symbolic platform alone.
    audio: dict | None = field(default_factory=lambda: dict(AUDIO_DEMO))
    # Calibrated confidence (docs/attribution.md): each contract pays a generation by output
    # share when its top match is significant at the contract's alpha against a null of the
    # model's own samples, stored beside the model version when it is built. A null needs at
    # least 1/alpha - 1 pieces to reach alpha at all and ~20/alpha to hold it
    # (docs/BENCHMARKS.md, "Calibrated confidence"); its cost is about one attribution per
    # piece, once per model version (cached), plus sampling it.
    # Measured on the demo month (docs/BENCHMARKS.md): at alpha 0.01 its 3 planted near copies
    # (2 tokens changed) fall back, p 0.026-0.048, because on 4,891 works 5 % of the model's
    # own ordinary samples reach their z; at 0.05 they are paid (and 35 of 600 generations
    # by attribution). The demo's symbolic contract chooses 0.05 with 400 samples (20/alpha;
    # 1,000 samples for 0.01 took 322 s to draw at load 10).
    alpha: float = 0.05
    null_samples: int = 400
    # The audio null is slower to draw (AUDIO_DEMO), so the audio contract tests at 0.05.
    audio_alpha: float = 0.05


SMALL = DemoConfig(
    n_generations=60, catalog_limit=60, train_steps=60, model_size="tiny", days=2, audio=AUDIO_SMALL,
    alpha=0.01, null_samples=200, audio_alpha=0.05,
)  # fmt: skip


def build_sandbox(home: Path, cfg: DemoConfig) -> dict:
    """Catalog, rights, both platforms' model versions and generation logs (all cached).

    Returns the symbolic platform's paths and facts, with the audio platform's under "audio"
    (sandbox.audio_platform.build_audio_sandbox) when cfg.audio is set."""
    from sandbox import corpus, rights

    t0 = time.perf_counter()
    stats = corpus.build_catalog(home, limit=cfg.catalog_limit)
    rights.build_rights(home)
    log.info("catalog ready in %.1fs: %s", time.perf_counter() - t0, stats.get("n_works", stats))
    with ExitStack() as stack:
        # The audio platform builds in a second process (its own core) while this one trains
        # the symbolic model: both are single-threaded, so the month's build costs the longer
        # of the two, not their sum.
        audio = _start_audio_build(home, cfg, stack)
        sandbox = _build_symbolic(home, cfg)
        if audio is not None:
            sandbox["audio"] = audio.result()
            log.info("audio platform ready: %s", sandbox["audio"]["timings"])
    return sandbox


def _start_audio_build(home: Path, cfg: DemoConfig, stack: ExitStack):
    if cfg.audio is None:
        return None
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from sandbox.audio_platform import AudioSandboxConfig, build_audio_sandbox

    audio_cfg = AudioSandboxConfig(
        **{"platform_id": AUDIO_PLATFORM_ID, **cfg.audio, "period": cfg.period, "days": cfg.days}
    )
    if not audio_cfg.null_samples:
        raise ValueError("the audio contract's calibrated rule needs cfg.audio['null_samples'] > 0")
    # spawn: a fresh interpreter, not a fork of one that holds torch's and Airflow's threads
    pool = stack.enter_context(
        ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
    )
    return pool.submit(build_audio_sandbox, home, audio_cfg)


def _build_symbolic(home: Path, cfg: DemoConfig) -> dict:
    """The symbolic platform's model version and generation log (cached)."""
    import pandas as pd

    from sandbox import train
    from sandbox.model import GPTConfig
    from sandbox.platform import PlatformSpec, build_generation_log
    from sandbox.tokenizer import Tokenizer

    platform_root = home / "platform" / PLATFORM_ID
    tokens = pd.read_parquet(home / "catalog" / "tokens.parquet")
    size = train.DEMO_CONFIG if cfg.model_size == "demo" else train.TINY_CONFIG
    recipe = dict(train.DEMO_TRAIN)
    if cfg.train_steps:
        recipe = dict(recipe, steps=cfg.train_steps)
    marker = platform_root / "models" / "LATEST.json"
    # format 2: model_version.json names its adapter's entry point (attribution/registry.py)
    key = {"size": size, "recipe": recipe, "n": len(tokens), "works": tokens["token_sha256"].str[:8].sum()[:64], "format": 2}
    known = json.loads(marker.read_text()) if marker.exists() else {}
    if known.get("key") == key and (platform_root / "models" / known["model_version"]).exists():
        model_dir = platform_root / "models" / known["model_version"]
        log.info("model version %s already trained", known["model_version"])
    else:
        t0 = time.perf_counter()
        model_dir = train.train_model_version(
            [list(map(int, t)) for t in tokens["tokens"]],
            list(tokens["work_id"]),
            platform_root / "models",
            GPTConfig(vocab_size=Tokenizer().vocab_size, **size),
            seed=0,
            **recipe,
        )
        marker.write_text(json.dumps({"key": key, "model_version": model_dir.name}))
        log.info("trained %s in %.1fs", model_dir.name, time.perf_counter() - t0)
    _store_null(model_dir, cfg.null_samples)

    start, end = _month(cfg.period)
    if cfg.days:
        end = start + timedelta(days=cfg.days)
    spec = PlatformSpec(PLATFORM_ID, start, end, cfg.n_generations, seed=cfg.seed)
    log_path = platform_root / f"generations-{cfg.period}.jsonl"
    platform_log = build_generation_log(model_dir, spec, log_path)
    return {
        "model_dir": model_dir, "log_path": log_path, "planted": platform_log["planted"],
        "start": start, "end": end,
    }  # fmt: skip


def _store_null(model_dir: Path, n: int) -> None:
    """The symbolic model version's null set: n of its own samples (fixed seed), cached beside
    it with the size it was drawn for."""
    from sandbox import train

    stamp = model_dir / f"{train.NULL_TOKENS_FILE}.json"
    if (model_dir / train.NULL_TOKENS_FILE).exists() and stamp.exists() and json.loads(stamp.read_text()) == {"n": n}:
        return
    t0 = time.perf_counter()
    train.store_null_samples(model_dir, n)
    stamp.write_text(json.dumps({"n": n}))
    log.info("null set of %d samples for %s in %.1fs", n, model_dir.name, time.perf_counter() - t0)


def _month(period: str) -> tuple[datetime, datetime]:
    start = datetime.strptime(period, "%Y-%m").replace(tzinfo=UTC)
    end = (start + timedelta(days=32)).replace(day=1)
    return start, end


def run_dag(dag, period: str | None = None, conf: dict | None = None):
    """One real Airflow run, as a person triggers it: what to work on named by params (the
    `period`, or `conf` such as {"day": "2026-10-02"} for one ingest day) and no logical date,
    so no demo run ever holds a date the schedule will want (the scheduler skips a scheduled
    run whose logical date a manual run already took). Raises if any task failed; returns the
    run."""
    conf = dict(conf or {}, **({"period": period} if period else {}))
    run = dag.test(logical_date=None, run_conf=conf or None)
    if run is None or str(run.state) not in ("success", "DagRunState.SUCCESS"):
        failed = [ti.task_id for ti in (run.get_task_instances() if run else []) if str(ti.state) == "failed"]
        raise RuntimeError(f"DAG {dag.dag_id} run for {conf or 'new data'} ended {run and run.state}: failed {failed}")
    return run


def load_dags() -> dict:
    sys.path.insert(0, str(ROOT / "dags"))
    import attribute_generations
    import ingest_generation_logs
    import monthly_settlement

    return {
        "ingest": ingest_generation_logs.ingest_generation_logs(),
        "attribute": attribute_generations.attribute_generations(),
        "settle": monthly_settlement.monthly_settlement(),
    }


def register(home: Path, cfg: DemoConfig) -> None:
    from settlement.warehouse import warehouse

    _register(home, cfg)
    # Every holder gets a statement contact (synthetic, like the rights), so the close mails them.
    from settlement import delivery
    from settlement.warehouse import query

    with warehouse(home / "warehouse.duckdb") as con:
        holders = [r["rights_holder_id"] for r in query(con, "marts/catalog_holder_ids")]
    for holder in holders:
        local = re.sub(r"[^a-z0-9]+", "-", holder.lower()).strip("-") or "holder"
        delivery.add_contact(home / "warehouse.duckdb", holder, f"statements@{local}.holders.tributary.test",
                             name=f"Royalties team {holder}")  # fmt: skip


def _register(home: Path, cfg: DemoConfig) -> None:
    from settlement.reference import Contract, import_catalog, register_contract, register_platform
    from settlement.warehouse import warehouse

    with warehouse(home / "warehouse.duckdb") as con:
        import_catalog(con, home / "catalog")
        register_platform(con, PLATFORM_ID, "Sandbox Music AI (local)", CONN_ID)
        # The calibrated rule: output share only for a generation whose top match an ordinary
        # sample of the model reaches with probability <= alpha (its null is stored beside the
        # model version), whatever the catalog's size (docs/attribution.md).
        register_contract(
            con,
            Contract(
                contract_id="SBX-2026",
                platform_id=PLATFORM_ID,
                shares_policy={"confidence": "pvalue", "alpha": cfg.alpha},
                method_params={"curvature": "kfac-gram"},
            ),
        )
        if cfg.audio is not None:
            register_platform(con, AUDIO_PLATFORM_ID, "Sandbox Audio AI (local)", AUDIO_CONN_ID)
            # Another licence on other terms: a quarter of revenue, a fifth of the pool spread
            # over the whole training manifest (training royalty), D-TRAK-style gradients of
            # the denoising loss, output share only for confident matches.
            register_contract(
                con,
                Contract(
                    contract_id="SBX-AUDIO-2026",
                    platform_id=AUDIO_PLATFORM_ID,
                    pool_rate=Decimal("0.250000"),
                    training_share=Decimal("0.200000"),
                    shares_policy={"confidence": "pvalue", "alpha": cfg.audio_alpha},
                    method_params={"curvature": "kfac-gram"},
                ),
            )


def run_month(
    home: Path,
    cfg: DemoConfig,
    sandbox: dict,
    repull_days: tuple[datetime, ...] = (),
    approver_name: str | tuple[str, ...] = "demo-approver",
) -> dict:
    """Start the platform, run the three DAGs for the period, stop the platform.

    `repull_days`: days whose months are ingested again first (late deliveries)."""
    from sandbox.mailsink import mail_sink
    from sandbox.server import SandboxServer

    register(home, cfg)
    timings = {}
    with ExitStack() as servers:
        # One server (and one token) per platform, as two licensees would run them.
        platforms = [(CONN_ID, sandbox["log_path"], sandbox["model_dir"].parent, None)]
        if "audio" in sandbox:
            a = sandbox["audio"]
            platforms.append((AUDIO_CONN_ID, a["log_path"], a["models_dir"], a["audio_dir"]))
        for conn_id, log_path, models, audio_dir in platforms:
            token = secrets.token_urlsafe(24)
            server = servers.enter_context(SandboxServer(log_path, models, token, audio_dir=audio_dir))
            os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(
                {"conn_type": "http", "host": "127.0.0.1", "port": server.port, "schema": "http", "password": token}
            )
        dags = load_dags()
        t0 = time.perf_counter()
        for month in sorted({f"{day:%Y-%m}" for day in repull_days}):
            run_dag(dags["ingest"], month)  # late deliveries: the month pulled again, day by day
        run_dag(dags["ingest"], cfg.period)  # every daily window of the month, each reconciled
        timings["ingest_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        run_dag(dags["attribute"])
        timings["attribute_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    with mail_sink(home):  # the close mails every holder contact (TRIBUTARY_HOME/outbox/)
        settle_month(cfg.period, approver_name, dags["settle"])
    timings["settle_s"] = time.perf_counter() - t0
    return timings


def settle_month(period: str, approver_name: str | tuple[str, ...] = "demo-approver", settle_dag=None):
    """The monthly settlement run for `period` (param, null logical date), its approval answered
    in Airflow's Required Actions by `approver_name`. The preparer is the user who triggered the
    run: `dag.test()` records "dag_test"; an answer by that name is refused and asked again."""
    from sandbox import required_actions

    settle_dag = settle_dag or load_dags()["settle"]
    stop_approver = required_actions.answer_when_asked("monthly_settlement", approver_name)
    try:
        return run_dag(settle_dag, period)
    finally:
        stop_approver.set()


def report(home: Path, period: str) -> dict:
    """The month's headline numbers, with one line per platform under "platforms"."""
    from settlement.warehouse import query, warehouse

    with warehouse(home / "warehouse.duckdb", read_only=True) as con:
        summary = query(con, "marts/demo_report", {"period": period})[0]
        summary["platforms"] = query(con, "marts/demo_report_platforms", {"period": period})
    return summary


def print_report(summary: dict, home: Path, timings: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Tributary: period {summary['period']} settled")
    table.add_column("what")
    table.add_column("value", justify="right")
    for label, key in [
        ("generations ingested", "generations_ingested"),
        ("records quarantined", "quarantined"),
        ("generations attributed", "attributed"),
        ("attribution rejections", "attribution_rejected"),
        ("revenue (USD)", "revenue"),
        ("royalty pool (USD)", "pool"),
        ("total paid to rights holders (USD)", "total_paid"),
        ("  paid out at close (USD)", "paid_out"),
        ("  carried forward, under threshold (USD)", "carried_forward"),
        ("period status", "status"),
        ("statements written", "statements"),
    ]:
        table.add_row(label, str(summary[key]))
    table.add_row("pool - paid", str(summary["pool"] - summary["total_paid"]))
    table.add_row("statements folder", str(home / "statements" / summary["period"]))
    console = Console()
    console.print(table)
    per = Table(title="by platform")
    for col in ("platform", "contract", "generations", "of them audio", "pool", "paid"):
        per.add_column(col, justify="left" if col in ("platform", "contract") else "right")
    for p in summary["platforms"]:
        per.add_row(p["platform_id"], p["contract_id"], str(p["generations"]), str(p["audio_outputs"]),
                    f"{p['pool']} {p['currency']}", f"{p['paid']} {p['currency']}")  # fmt: skip
    console.print(per)
    print("timings: " + ", ".join(f"{k}={v:.1f}s" for k, v in timings.items()))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--period", default=DemoConfig.period)
    ap.add_argument("--generations", type=int, default=DemoConfig.n_generations)
    ap.add_argument("--small", action="store_true", help="small catalog and tiny models (a minute)")
    ap.add_argument("--no-audio", action="store_true", help="the symbolic platform alone")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("airflow", "sqlalchemy", "alembic", "httpx", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    cfg = replace(SMALL if args.small else DemoConfig(), period=args.period)
    if not args.small:
        cfg = replace(cfg, n_generations=args.generations)
    if args.no_audio:
        cfg = replace(cfg, audio=None)
    home = Path(os.environ.get("TRIBUTARY_HOME", ROOT / "var")).resolve()
    os.environ["TRIBUTARY_HOME"] = str(home)
    t0 = time.perf_counter()
    sandbox = build_sandbox(home, cfg)
    timings = {"build_s": time.perf_counter() - t0}
    timings |= run_month(home, cfg, sandbox)
    summary = report(home, cfg.period)
    print_report(summary, home, timings)
    if summary["pool"] != summary["total_paid"]:
        print("RECONCILIATION FAILED: total paid differs from the pool", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
