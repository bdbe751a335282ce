"""Disputes of statement lines: a holder files one (in the portal), finance resolves it (CLI).

A dispute is written once (portal.disputes) and every change of its state is a new row of
portal.dispute_events with who and when, each in one transaction, so a kill leaves either the
state before or the state after. Open disputes are listed by every calculation; whether they
block it is the dispute policy (TRIBUTARY_DISPUTE_POLICY: `report`, the default, lists them
with the result; `block` makes them exceptions that stop the calculation).

An upheld dispute names the open period that pays the correction (--in-period) and may record
the amount agreed with the holder. The money itself goes through the existing adjustment
mechanism: finance corrects the input that was wrong (splits, a contract) and the calculation of
that open period restates the closed month and stores the difference per holder in
settlement.adjustments, posted to the ledger with what it corrects. The portal shows the holder
those stored rows next to the resolution. A free-standing amount is never posted by itself: an
adjustment has to come from somewhere (the platform's pool or another holder), and only a
corrected input says where.
"""

from __future__ import annotations

import os
import unicodedata
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from settlement import identity, inputs
from settlement.warehouse import first, query, run_sql, transaction, warehouse

REASON_MAX = 2000
POLICIES = ("report", "block")


class DisputeError(inputs.InputError):
    """A dispute that cannot be filed or resolved as asked (the message names the rule)."""


def policy() -> str:
    value = os.environ.get("TRIBUTARY_DISPUTE_POLICY", "report").strip().lower()
    if value not in POLICIES:
        raise DisputeError(f"TRIBUTARY_DISPUTE_POLICY={value!r}: must be one of {', '.join(POLICIES)}")
    return value


def reason_text(text: str | None, what: str = "reason") -> str:
    """A person's reason: NFC, no control or format characters except line breaks, at most
    REASON_MAX characters, not empty. Refused, never silently cut."""
    text = unicodedata.normalize("NFC", (text or "").replace("\r\n", "\n"))
    bad = [ch for ch in text if ch != "\n" and unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn")]
    if bad:
        raise DisputeError(f"the {what} contains a control character (U+{ord(bad[0]):04X}); use plain text")
    text = "\n".join(" ".join(line.split()) for line in text.strip().split("\n"))
    if not text.strip():
        raise DisputeError(f"the {what} is empty; say what is wrong with the line")
    if len(text) > REASON_MAX:
        raise DisputeError(f"the {what} has {len(text)} characters; at most {REASON_MAX}")
    return text


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def file_dispute(con, *, line: dict, rights_holder_id: str, by: str, reason: str) -> int:
    """Record a dispute of `line` (a row of marts/portal_line, already checked to be the
    holder's) and its open state, in one transaction; returns its id."""
    reason = reason_text(reason)
    with transaction(con):
        dispute_id = first(con.execute("SELECT nextval('portal.dispute_seq')"))[0]
        run_sql(con, "loads/dispute", {
            "dispute_id": dispute_id, "period": line["period"], "platform_id": line["platform_id"],
            "rights_holder_id": rights_holder_id, "work_id": line["work_id"],
            "right_type": line["right_type"], "line_amount": line["amount"], "currency": line["currency"],
            "reason": reason, "by": by, "now": _now(),
        })  # fmt: skip
    return int(dispute_id)


def list_disputes(warehouse_path: Path, status: str | None = None) -> list[dict]:
    if status is not None and status not in ("open", "upheld", "rejected"):
        raise DisputeError(f"status {status!r}: must be open, upheld or rejected")
    with warehouse(warehouse_path) as con:
        return query(con, "marts/disputes_list", {"status": status})


def resolve(
    warehouse_path: Path,
    dispute_id: int,
    *,
    upheld: bool,
    reason: str,
    by: str,
    adjustment: str | None = None,
    adjustment_period: str | None = None,
) -> dict:
    """Uphold or reject an open dispute with a reason, by a person; an upheld dispute may name
    the open period that pays the correction and the amount agreed (in the line's currency)."""
    by = identity.person(by, "resolver's user name")
    reason = reason_text(reason)
    amount: Decimal | None = None
    if adjustment is not None or adjustment_period is not None:
        if not upheld:
            raise DisputeError("a rejected dispute has no adjustment; drop --adjustment/--in-period")
        if adjustment_period is None:
            raise DisputeError("an adjustment is paid in an open period: add --in-period YYYY-MM")
        if adjustment is not None:
            amount = inputs.decimal(adjustment, "adjustment", 2, Decimal("-1e15"), Decimal("1e15"))
        adjustment_period = inputs.period(adjustment_period, "adjustment period")
    with warehouse(warehouse_path) as con:
        rows = query(con, "marts/dispute_by_id", {"dispute_id": dispute_id})
        if not rows:
            raise DisputeError(f"no dispute {dispute_id}")
        status = "upheld" if upheld else "rejected"
        d = rows[0]
        same = (d["status"], d["changed_by"], d["status_reason"], d["adjustment_amount"], d["adjustment_period"]) == (
            status, by, reason, amount, adjustment_period)  # fmt: skip
        if same:  # the same answer again (a rerun after an interruption): it stands
            return d | {"already": True}
        if d["status"] != "open":
            raise DisputeError(f"dispute {dispute_id} is already {d['status']} "
                               f"(by {d['changed_by']} at {d['changed_at']:%Y-%m-%d %H:%M} UTC)")  # fmt: skip
        if adjustment_period is not None:
            state = query(con, "marts/period_state", {"period": adjustment_period})
            if state and state[0]["status"] == "closed":
                raise DisputeError(f"period {adjustment_period} is closed; an adjustment is paid in an open period")
        with transaction(con):
            run_sql(con, "loads/dispute_event", {
                "dispute_id": dispute_id, "status": status, "by": by, "now": _now(), "reason": reason,
                "adjustment_amount": amount, "adjustment_period": adjustment_period,
            })  # fmt: skip
        return query(con, "marts/dispute_by_id", {"dispute_id": dispute_id})[0]


def open_disputes(con) -> list[tuple]:
    """(rule, subject, detail) rows for the calculation's exception list."""
    return [tuple(r.values()) for r in query(con, "checks/open_disputes")]
