"""One month settled end to end on the embedded default: `make demo`.

Builds the catalog and the sandbox platform's model (both cached between runs), starts the
platform's HTTP server on loopback, runs the three Airflow DAGs through real Airflow
(`dag.test()` against the project's own SQLite metadata database), stops the server and
prints what happened.

    python -m sandbox.demo [--period 2026-10] [--generations 600] [--small]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import sys
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
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


@dataclass(frozen=True)
class DemoConfig:
    period: str = "2026-10"
    n_generations: int = 600
    catalog_limit: int | None = None  # None: the full catalog (>= 2,000 works)
    train_steps: int | None = None  # None: the demo default of sandbox.train
    model_size: str = "demo"  # "demo" or "tiny"
    days: int | None = None  # ingest only the first N days (tests); None: the whole month
    seed: int = 11


SMALL = DemoConfig(n_generations=60, catalog_limit=60, train_steps=60, model_size="tiny", days=2)


def build_sandbox(home: Path, cfg: DemoConfig) -> dict:
    """Catalog, rights, the platform's model version and its generation log (all cached)."""
    import pandas as pd

    from sandbox import corpus, rights, train
    from sandbox.model import GPTConfig
    from sandbox.platform import PlatformSpec, build_generation_log
    from sandbox.tokenizer import Tokenizer

    t0 = time.perf_counter()
    stats = corpus.build_catalog(home, limit=cfg.catalog_limit)
    rights.build_rights(home)
    log.info("catalog ready in %.1fs: %s", time.perf_counter() - t0, stats.get("n_works", stats))

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
    from settlement.reference import Contract, import_catalog, register_contract, register_platform
    from settlement.warehouse import warehouse

    with warehouse(home / "warehouse.duckdb") as con:
        import_catalog(con, home / "catalog")
        register_platform(con, PLATFORM_ID, "Sandbox Music AI (local)", CONN_ID)
        # min_confidence 6, not the default 5: near copies score z >= 7 on the sandbox and
        # ordinary samples up to about 6 (docs/attribution.md), so output share goes to copies.
        register_contract(
            con,
            Contract(
                contract_id="SBX-2026",
                platform_id=PLATFORM_ID,
                shares_policy={"min_confidence": 6.0},
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
    from sandbox.server import SandboxServer

    token = secrets.token_urlsafe(24)
    register(home, cfg)
    timings = {}
    with SandboxServer(sandbox["log_path"], sandbox["model_dir"].parent, token) as server:
        os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = json.dumps(
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
    from settlement.warehouse import query, warehouse

    with warehouse(home / "warehouse.duckdb", read_only=True) as con:
        return query(con, "marts/demo_report", {"period": period})[0]


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
    Console().print(table)
    print("timings: " + ", ".join(f"{k}={v:.1f}s" for k, v in timings.items()))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--period", default=DemoConfig.period)
    ap.add_argument("--generations", type=int, default=DemoConfig.n_generations)
    ap.add_argument("--small", action="store_true", help="small catalog and tiny model (a minute)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("airflow", "sqlalchemy", "alembic", "httpx", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    cfg = replace(SMALL if args.small else DemoConfig(), period=args.period)
    if not args.small:
        cfg = replace(cfg, n_generations=args.generations)
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
