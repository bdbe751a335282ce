"""Reference data: the catalog and its rights, platforms, contracts and licensed model versions."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb

from settlement.warehouse import WarehouseError, query, run_sql, sql_text, transaction


@dataclass(frozen=True)
class Contract:
    """A platform's licence: how much of its revenue becomes the royalty pool, and how the pool
    is measured out. publishing/master weights split each work's amount between the two rights."""

    contract_id: str
    platform_id: str
    version: int = 1
    effective_from: date = date(2020, 1, 1)
    effective_to: date | None = None
    currency: str = "USD"
    pool_rate: Decimal = Decimal("0.300000")
    publishing_weight: Decimal = Decimal("0.500000")
    master_weight: Decimal = Decimal("0.500000")
    method: str = "trak"
    top_k: int = 8
    fee_per_generation: Decimal = Decimal(0)
    minimum_guarantee: Decimal = Decimal(0)
    training_share: Decimal = Decimal(0)


def import_catalog(con: duckdb.DuckDBPyConnection, catalog_dir: Path) -> dict:
    paths = {
        "works_path": catalog_dir / "works.parquet",
        "holders_path": catalog_dir / "rights_holders.parquet",
        "splits_path": catalog_dir / "splits.parquet",
    }
    for path in paths.values():
        if not path.exists():
            raise WarehouseError(f"catalog file missing: {path} (build it with `python -m sandbox.corpus`)")
    with transaction(con):
        run_sql(con, "loads/ref_catalog", {k: str(v) for k, v in paths.items()})
    return query(con, "marts/catalog_counts")[0]


def register_platform(con: duckdb.DuckDBPyConnection, platform_id: str, name: str, conn_id: str) -> None:
    run_sql(con, "loads/ref_platform", {"platform_id": platform_id, "name": name, "conn_id": conn_id})


def register_contract(con: duckdb.DuckDBPyConnection, contract: Contract) -> None:
    params = asdict(contract)
    params.update({k: str(v) for k, v in params.items() if isinstance(v, Decimal)})
    run_sql(con, "loads/ref_contract", params)


def register_fx_rate(
    con: duckdb.DuckDBPyConnection, period: str, from_currency: str, to_currency: str, rate: Decimal, source: str
) -> None:
    if rate <= 0:
        raise WarehouseError(f"FX rate {from_currency}/{to_currency} for {period} must be positive, got {rate}")
    run_sql(
        con, "loads/ref_fx_rate",
        {"period": period, "from_currency": from_currency, "to_currency": to_currency, "rate": str(rate), "source": source},
    )  # fmt: skip


def register_model_version(
    con: duckdb.DuckDBPyConnection, platform_id: str, model_dir: Path, catalog_tokens: Path
) -> dict:
    """Check a fetched model version's manifest against our catalog, then record it.

    A manifest naming a work we do not know, or whose tokens differ from our copy of the
    work, is refused: paying on it would pay for the wrong thing."""
    info = json.loads((model_dir / "model_version.json").read_text())
    manifest = model_dir / "manifest.parquet"
    if not manifest.exists():
        raise WarehouseError(f"model version {info['model_version']} has no training manifest")
    bad = con.execute(
        sql_text("checks/manifest_against_catalog"),
        {"manifest_path": str(manifest), "tokens_path": str(catalog_tokens)},
    ).fetchall()
    if bad:
        listed = "; ".join(f"example {i} work {w}: {rule}" for i, w, rule in bad)
        raise WarehouseError(f"model version {info['model_version']}: manifest rejected: {listed}")
    with transaction(con):
        run_sql(
            con,
            "loads/ref_model_version",
            {
                "platform_id": platform_id,
                "model_version": info["model_version"],
                "model_sha256": info["model_sha256"],
                "manifest_sha256": info["manifest_sha256"],
                "local_path": str(model_dir),
                "now": datetime.now(UTC).replace(tzinfo=None),
                "manifest_path": str(manifest),
            },
        )
    return info
