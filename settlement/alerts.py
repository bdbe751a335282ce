"""Monitoring for rights holders: rules a holder sets, evaluated per period after attribution
and calculation, alerts stored once and mailed through the statement delivery path
(settlement/delivery.py: same contacts, retries, bounces and kill-safety).

Rules (ref.alert_rules, migration 017):
- share_jump --threshold F: a work's share of the period's generations is >= F times the
  previous period's (it must have drawn on at least --min-generations generations);
- near_copy --threshold S: a generation in which one of the holder's works holds >= S of the
  whole generation (a share the attribution only pays when it is confident: a near copy);
- new_platform: a platform draws on the holder's catalog for the first time.

Evaluation is one transaction of INSERT OR IGNORE keyed by sha256(rule | period | subject):
rerun (or killed and rerun) it raises nothing twice.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

from settlement import inputs
from settlement.warehouse import query, run_sql, transaction, warehouse

KINDS = {"share_jump": Decimal(3), "near_copy": Decimal("0.5"), "new_platform": Decimal(0)}


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def add_rule(warehouse_path: Path, rights_holder_id: str, kind: str, threshold: str | None = None,
             min_generations: int = 1) -> dict:
    record = f"alert rule for {rights_holder_id}"
    if kind not in KINDS:
        raise inputs.InputError(f"{record}: kind must be one of {', '.join(KINDS)}, not {kind!r}")
    try:
        value = Decimal(threshold) if threshold is not None else KINDS[kind]
    except InvalidOperation:
        raise inputs.InputError(f"{record}: threshold {threshold!r} is not a number") from None
    if kind == "share_jump" and not value > 1:
        raise inputs.InputError(f"{record}: a share_jump factor must be > 1, not {value}")
    if kind == "near_copy" and not 0 < value <= 1:
        raise inputs.InputError(f"{record}: a near_copy share must be in (0, 1], not {value}")
    if min_generations < 1:
        raise inputs.InputError(f"{record}: --min-generations must be >= 1")
    rule_id = f"AR-{uuid.uuid4().hex[:10]}"
    with warehouse(warehouse_path) as con:
        if not query(con, "marts/rights_holder", {"rights_holder_id": rights_holder_id}):
            raise inputs.InputError(f"{record}: no rights holder {rights_holder_id!r} in the catalog")
        with transaction(con):
            run_sql(con, "loads/alert_rule", {"rule_id": rule_id, "rights_holder_id": rights_holder_id, "kind": kind,
                                              "threshold": value, "min_generations": min_generations, "now": _now()})  # fmt: skip
    return {"rule_id": rule_id, "rights_holder_id": rights_holder_id, "kind": kind, "threshold": value}


def rules(warehouse_path: Path, rights_holder_id: str | None = None) -> list[dict]:
    with warehouse(warehouse_path) as con:
        return query(con, "marts/alert_rules", {"rights_holder_id": rights_holder_id})


def listed(warehouse_path: Path, period: str | None = None, rights_holder_id: str | None = None) -> list[dict]:
    with warehouse(warehouse_path) as con:
        return query(con, "marts/alerts", {"period": period, "rights_holder_id": rights_holder_id})


def evaluate(warehouse_path: Path, period: str, send: bool = True) -> dict:
    """Raise the period's alerts (once each), queue a mail per holder contact, send them.
    Mail problems are recorded (settlement.deliveries), never raised."""
    from settlement import delivery

    period = inputs.period(period)
    start = inputs.period_start(period)
    previous = f"{start.year - (start.month == 1)}-{(start.month - 2) % 12 + 1:02d}"
    params = {"period": period, "previous": previous, "now": _now()}
    with warehouse(warehouse_path) as con:
        before = len(query(con, "marts/alerts", {"period": period, "rights_holder_id": None}))
        with transaction(con):
            for kind in ("share_jump", "near_copy", "new_platform"):
                run_sql(con, f"loads/alerts_{kind}", params)
            run_sql(con, "loads/alert_deliveries_queue", params)
        raised = query(con, "marts/alerts", {"period": period, "rights_holder_id": None})
    mails = delivery.send_due(warehouse_path, period) if send else {}
    return {"period": period, "alerts": len(raised), "new": len(raised) - before, "mails": mails}
