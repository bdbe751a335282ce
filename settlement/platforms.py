"""Licensed platforms as the pipeline sees them."""

from __future__ import annotations

from pathlib import Path

from settlement.warehouse import query, warehouse


def registered(warehouse_path: Path) -> list[dict]:
    with warehouse(warehouse_path) as con:
        return query(con, "marts/platforms")
