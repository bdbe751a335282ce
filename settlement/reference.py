"""Reference data: the catalog and its rights, platforms, contracts and licensed model versions."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb

from settlement import inputs
from settlement.warehouse import WarehouseError, query, run_sql, sql_text, transaction


@dataclass(frozen=True)
class Contract:
    """A platform's licence: how much of its revenue becomes the royalty pool, and how the pool
    is measured out. publishing/master weights split each work's amount between the two rights.

    shares_policy: the shares policy's confidence, min_confidence, min_share and alpha (the
    significance level of confidence "pvalue"), variants and catalog_versions (robust
    matching) (attribution.shares.SharesPolicy; top_k is the contract's own, and the
    training royalty is training_share). method_params: the method's parameters, by name
    (attribution.pipeline.METHOD_PARAMS), e.g. {"curvature": "gram"} for TRAK. Empty means
    the product defaults.

    group_method: "" (none), or the group-wise method that also gives, per generation, the
    share attributable to each rights holder's catalog (attribution.groups.GROUP_METHOD_PARAMS:
    "group-unlearning", "trak-sum"), with its group_params. Informational: statements show it
    next to each generation; payouts stay on the per-work shares and the confidence rule."""

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
    shares_policy: dict = field(default_factory=dict)
    method_params: dict = field(default_factory=dict)
    group_method: str = ""
    group_params: dict = field(default_factory=dict)


# The policy fields a contract may set: top_k and the training royalty have columns of their
# own, so a second place to say them could only disagree.
CONTRACT_POLICY_FIELDS = (
    "confidence", "min_confidence", "min_share", "alpha", "variants", "catalog_versions"
)


def check_attribution_terms(contract: Contract) -> None:
    """Refuse a contract whose attribution terms the attribution task would reject later."""
    # Imported here: the attribution package pulls in torch, which the rest of this module's
    # callers (the CLI) do not need.
    from attribution.pipeline import METHOD_PARAMS
    from attribution.shares import SharesPolicy

    where = f"contract {contract.contract_id} v{contract.version}"
    if contract.method not in METHOD_PARAMS:
        raise WarehouseError(f"{where}: method {contract.method!r} is not one of {sorted(METHOD_PARAMS)}")
    bad = sorted(set(contract.shares_policy) - set(CONTRACT_POLICY_FIELDS))
    if bad:
        raise WarehouseError(f"{where}: shares_policy may set only {list(CONTRACT_POLICY_FIELDS)}, not {bad}")
    try:
        SharesPolicy.from_dict({"top_k": contract.top_k, **contract.shares_policy})
    except (TypeError, ValueError) as e:
        raise WarehouseError(f"{where}: shares_policy: {e}") from e
    bad = sorted(set(contract.method_params) - set(METHOD_PARAMS[contract.method]))
    if bad:
        raise WarehouseError(
            f"{where}: method_params {bad} are not parameters of {contract.method!r}"
            f" (it takes {list(METHOD_PARAMS[contract.method])})"
        )
    check_group_method(contract.group_method, contract.group_params, where)


def check_group_method(method: str, params, where: str) -> None:
    """The contract's group method and its parameters (attribution.groups.check_group_terms),
    refused with a message naming the contract and the rule."""
    from attribution.groups import check_group_terms

    if not method:
        if params:
            raise WarehouseError(f"{where}: group_params {params!r} given without a group_method")
        return
    if not isinstance(method, str):
        raise WarehouseError(f"{where}: group_method must be a method name, not {method!r}")
    try:
        check_group_terms(method, params)
    except ValueError as e:
        raise WarehouseError(f"{where}: {e}") from e


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
    check_attribution_terms(contract)
    inputs.currency(contract.currency, f"contract {contract.contract_id} v{contract.version}: currency")
    params = asdict(contract)
    params.update({k: str(v) for k, v in params.items() if isinstance(v, Decimal)})
    params["shares_policy_json"] = json.dumps(params.pop("shares_policy"), sort_keys=True)
    params["method_params_json"] = json.dumps(params.pop("method_params"), sort_keys=True)
    params["group_params_json"] = json.dumps(params.pop("group_params"), sort_keys=True)
    run_sql(con, "loads/ref_contract", params)


def register_fx_rate(
    con: duckdb.DuckDBPyConnection, period: str, from_currency: str, to_currency: str, rate: Decimal | str, source: str
) -> None:
    """One rate per currency pair and period. Refused (InputError, naming the rule): a period
    that is not YYYY-MM, a code outside ISO 4217, the same currency twice, a rate that is not
    positive and finite with at most 8 decimals, an empty source, and any change to a closed
    period's rates: a correction is a new rate in an open period."""
    period = inputs.period(period)
    from_currency = inputs.currency(from_currency, "--from")
    to_currency = inputs.currency(to_currency, "--to")
    if from_currency == to_currency:
        raise inputs.InputError(f"--from and --to are both {from_currency}: a rate converts between two different currencies")
    rate = inputs.fx_rate(rate)
    if not str(source or "").strip():
        raise inputs.InputError("--source is empty: say where the rate comes from (e.g. 'ECB reference 2026-10-30')")
    if query(con, "marts/period_is_closed", {"period": period})[0]["closed"]:
        raise inputs.InputError(
            f"period {period} is closed: its FX rates are fixed; a correction is a new rate in an open period"
        )
    run_sql(
        con, "loads/ref_fx_rate",
        {"period": period, "from_currency": from_currency, "to_currency": to_currency, "rate": str(rate),
         "source": source.strip()},
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
