"""The finance team's period report: pools per platform, money allocated, paid out and carried
forward, adjustments, exceptions, quarantined records, holders' disputes and approvals, as one
HTML page and one CSV.

Labels say what a number is: `allocated_to_holders` (the pool divided over holders by the
calculation) is not `paid_out` (money sent at the close, holders above their minimum payout)
and not `carried_forward`; counts carry no currency; every timestamp is UTC and says so.

Like the statements it is rebuilt from the warehouse alone, with no clock inside, so a rerun
for the same period gives the same bytes (its sha256 is stored in settlement.period_files).
"""

from __future__ import annotations

import html
from decimal import Decimal

from settlement import cells
from settlement.warehouse import query

CSV_COLUMNS = ["section", "item", "platform_id", "unit", "value"]


def _fmt(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value, "f")
    if hasattr(value, "hour"):  # warehouse timestamps are naive UTC
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def gather(con, period: str, period_start, disputes_as_of=None) -> dict:
    """`disputes_as_of`: show disputes as they stood then (a build passes its own time and
    records it); None: the cut-off recorded by the last build (marts/report_cutoff), so a
    re-render for `statements verify` gives the same bytes."""
    tables = {r["name"] for r in query(con, "marts/finance_tables")}
    if disputes_as_of is None:
        disputes_as_of = query(con, "marts/report_cutoff", {"period": period})[0]["disputes_as_of"]
    as_of = {"period": period, "as_of": disputes_as_of}
    return {
        "period": query(con, "marts/finance_period", {"period": period}),
        "pools": query(con, "marts/period_summary", {"period": period}),
        "ledger": query(con, "marts/finance_ledger", {"period": period}),
        "exceptions": query(con, "checks/period_exceptions", {"period": period, "period_start": period_start}),
        "approvals": query(con, "marts/finance_approvals", {"period": period})
        if "settlement.approvals" in tables else None,
        "closes": query(con, "marts/finance_closes", {"period": period})
        if "settlement.closes" in tables else None,
        "adjustments": query(con, "marts/finance_adjustments", {"period": period})
        if "settlement.adjustments" in tables else None,
        "quarantine": query(con, "marts/finance_quarantine", {"period": period}),
        "deliveries": [d for d in query(con, "marts/deliveries", {"period": period}) if d["kind"] == "statement"]
        if "settlement.deliveries" in tables else None,
        "dispute_counts": query(con, "marts/finance_dispute_counts", as_of) if as_of["as_of"] else [],
        "disputes": query(con, "marts/finance_disputes", as_of) if as_of["as_of"] else [],
        "disputes_as_of": as_of["as_of"],
    }  # fmt: skip


def render(data: dict, period: str, statements: int) -> tuple[bytes, bytes]:
    """(html, csv) of the period report."""
    return _html(data, period, statements), _csv(data, period, statements)


def _csv(data: dict, period: str, statements: int) -> bytes:
    rows: list[list[object]] = []
    for p in data["period"]:
        for key in ("status", "run_id", "calculated_by", "calculated_at", "inputs_sha256"):
            rows.append(["period", key, "", "UTC" if key == "calculated_at" else "", p[key]])
    for p in data["pools"]:
        items = [("contract_id", "", p["contract_id"]), ("contract_version", "", p["contract_version"]),
                 ("n_generations", "generations", p["n_generations"]), ("revenue", p["currency"], p["revenue"]),
                 ("pool_rate", "fraction of revenue", p["pool_rate"]), ("pool_amount", p["currency"], p["pool_amount"]),
                 ("allocated_to_holders", p["currency"], p["total_paid"]),
                 ("holders_allocated", "holders", p["holders_paid"])]  # fmt: skip
        rows += [["pool", key, p["platform_id"], unit, value] for key, unit, value in items]
    for r in data["ledger"]:
        for key in ("opening", "earned", "adjusted", "paid_out", "carried_forward"):
            rows.append(["ledger", key, "", r["currency"], r[key]])
        rows.append(["ledger", "holders_paid", "", "holders", r["holders_paid"]])
        rows.append(["ledger", "holders_carrying_forward", "", "holders", r["holders_carrying_forward"]])
    for a in data["adjustments"] or []:
        rows.append(["adjustment", f"corrects {a['corrects_period']}: {a['reasons']}", a["platform_id"],
                     a["currency"], a["amount"]])  # fmt: skip
    for e in data["exceptions"]:
        values = list(e.values())
        rows.append(["exception", values[0], values[1], "", values[2]])
    for q in data["quarantine"]:
        rows.append(["quarantined", f"{q['rule']}: {q['reason']}", q["platform_id"], "record", q["generation_id"]])
    for d in data["dispute_counts"]:
        rows.append(["disputes", d["status"], "", "disputes", d["disputes"]])
        if d["currency"]:
            rows.append(["disputes", f"{d['status']} disputed amount", "", d["currency"], d["disputed_amount"]])
    for d in data["disputes"]:
        item = (f"dispute {d['dispute_id']} {d['status']}: {d['rights_holder_id']} {d['line_period']} "
                f"{d['work_id']} {d['right_type']}")
        rows.append(["dispute", item, d["platform_id"], d["currency"], d["line_amount"]])
    for a in data["approvals"] or []:
        rows.append(["approval", f"approved by {a['approved_by']} at {_fmt(a['approved_at'])}", "", "", a["run_id"]])
    for c in data["closes"] or []:
        rows.append(["close", f"closed by {c['closed_by']} at {_fmt(c['closed_at'])}", "", "", c["run_id"]])
    rows.append(["statements", "holders with a statement", "", "holders", statements])
    for d in data.get("deliveries") or []:  # statement mails (settlement/delivery.py)
        rows.append(["delivery", f"{d['status']}: {d['email']} ({d['attempts']} attempts)"
                     + (f": {d['last_error']}" if d["last_error"] else ""), d["rights_holder_id"], "mail", d["status"]])  # fmt: skip
    return cells.csv_bytes(CSV_COLUMNS, [[_fmt(v) if not isinstance(v, (int, Decimal)) else v for v in row]
                                         for row in rows])  # fmt: skip


def _table(headers: list[str], rows: list[list[object]], numeric: set[int] | None = None) -> str:
    numeric = numeric or set()
    head = "".join(
        f"<th{' class=n' if i in numeric else ''}>{html.escape(h)}</th>"
        for i, h in enumerate(headers)
    )
    body = "".join(
        "<tr>" + "".join(
            f"<td{' class=n' if i in numeric else ''}>{html.escape(_fmt(v))}</td>" for i, v in enumerate(row)
        ) + "</tr>"
        for row in rows
    )  # fmt: skip
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _html(data: dict, period: str, statements: int) -> bytes:
    p = data["period"][0] if data["period"] else {}
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Tributary finance report {html.escape(period)}</title>",
        ("<style>body{font-family:DejaVu Sans,Helvetica,Arial,sans-serif;margin:2em;color:#1b2635}"
        "h1{color:#1f3a5f}h2{color:#1f3a5f;border-bottom:1px solid #c9d3e0;padding-bottom:.2em}"
        "table{border-collapse:collapse;margin:.5em 0 1.5em}th,td{padding:.3em .7em;border-bottom:1px solid #e3e8ef}"
        "th{background:#eef2f7;text-align:left}.n{text-align:right;font-variant-numeric:tabular-nums}"
        ".muted{color:#5b6b80}</style></head><body>"),
        f"<h1>Finance period report {html.escape(period)}</h1>",
        _table(
            ["status", "calculation run", "prepared by", "calculated at (UTC)", "inputs sha256"],
            [[p.get("status"), p.get("run_id"), p.get("calculated_by"), p.get("calculated_at"), p.get("inputs_sha256")]],
        ),
        "<h2>Royalty pool per platform</h2>",
        _table(
            ["platform", "contract", "currency", "generations", "revenue", "pool rate", "pool", "allocated to holders", "holders allocated"],
            [[r["platform_id"], f"{r['contract_id']} v{r['contract_version']}", r["currency"], r["n_generations"],
              r["revenue"], r["pool_rate"], r["pool_amount"], r["total_paid"], r["holders_paid"]] for r in data["pools"]],
            numeric={3, 4, 5, 6, 7, 8},
        ),
        ("<p class=muted>Allocated: the pool divided over rights holders by the calculation (it always "
        "equals the pool). What was actually sent is <b>paid out</b> below; the rest is carried forward "
        "to the next period (holders below their minimum payout).</p>"),
        "<h2>Paid and carried forward (ledger)</h2>",
        _table(
            ["currency", "opening", "earned", "adjustments", "paid out", "carried forward", "holders paid", "holders carrying forward"],
            [[r["currency"], r["opening"], r["earned"], r["adjusted"], r["paid_out"], r["carried_forward"],
              r["holders_paid"], r["holders_carrying_forward"]] for r in data["ledger"]],
            numeric={1, 2, 3, 4, 5, 6, 7},
        ),
        "<h2>Adjustments of closed periods</h2>",
        _table(["corrects period", "platform", "currency", "holders", "amount", "reasons"],
               [list(a.values()) for a in data["adjustments"]], numeric={3, 4})
        if data["adjustments"] else
        f"<p class=muted>{'No adjustments in this period.' if data['adjustments'] is not None else 'This warehouse has no adjustments table yet.'}</p>",
        "<h2>Exceptions and quarantined records</h2>",
        _table(["rule", "subject", "detail"], [list(e.values()) for e in data["exceptions"]])
        if data["exceptions"] else "<p class=muted>No calculation exceptions: every generation has a contract, "
        "rates, attribution and fully split works.</p>",
        (f"<p>{len(data['quarantine'])} record(s) the platforms sent for this period were quarantined at ingest "
         "and are <b>not paid</b> until the platform sends a corrected record:</p>"
         + _table(["platform", "rule", "generation", "reason", "window start (UTC)", "quarantined at (UTC)"],
                  [list(q.values()) for q in data["quarantine"]]))
        if data["quarantine"] else "<p class=muted>No records were quarantined for this period.</p>",
        # The cut-off itself is not printed: a restore from a snapshot (taken before the final
        # build) re-renders these bytes, and they must match the files on disk.
        "<h2>Disputes (as they stood when this report was built)</h2>",
        _table(["status", "currency", "disputes", "disputed line amount"],
               [[d["status"], d["currency"] or "", d["disputes"], d["disputed_amount"] if d["currency"] else ""]
                for d in data["dispute_counts"]], numeric={2, 3}),
        _table(["dispute", "status", "holder", "line period", "platform", "work", "right", "line amount", "currency",
                "filed by", "filed at (UTC)", "last change by", "reason for the status", "adjustment", "paid in"],
               [[d["dispute_id"], d["status"], d["rights_holder_id"], d["line_period"], d["platform_id"], d["work_id"],
                 d["right_type"], d["line_amount"], d["currency"], d["filed_by"], d["filed_at"], d["changed_by"],
                 d["status_reason"], d["adjustment_amount"], d["adjustment_period"]] for d in data["disputes"]],
               numeric={7, 13})
        if data["disputes"] else "<p class=muted>No disputes for this period.</p>",
        "<h2>Approvals and close</h2>",
        _table(["calculation run", "approved by", "approved at (UTC)", "prepared by"], [list(a.values()) for a in data["approvals"]])
        if data["approvals"] else
        f"<p class=muted>{'Not approved yet.' if data['approvals'] is not None else 'This warehouse has no approvals table yet.'}</p>",
        _table(["calculation run", "closed by", "closed at (UTC)", "snapshot", "snapshot sha256"], [list(c.values()) for c in data["closes"]])
        if data["closes"] else "<p class=muted>Not closed yet.</p>",
        f"<p class=muted>{statements} rights holder statements in this period.</p>",
        "<h2>Statement delivery</h2>",
        _deliveries_html(data.get("deliveries")),
        "</body></html>",
    ]  # fmt: skip
    return ("\n".join(parts) + "\n").encode()


def _deliveries_html(rows: list[dict] | None) -> str:
    """Statement mails of the period; anything not delivered first, so finance sees it."""
    if not rows:
        return "<p class=muted>No statement mails yet (they are sent when the period closes).</p>"
    undelivered = [r for r in rows if r["status"] != "sent"]
    head = (f"<p><b>{len(undelivered)} statement mail(s) not delivered</b>: "
            "retry with <code>tributary deliveries retry</code> once the mail server is back "
            "(a bounce needs the address fixed first).</p>") if undelivered else (
            f"<p class=muted>All {len(rows)} statement mails delivered.</p>")  # fmt: skip
    order = sorted(rows, key=lambda r: (r["status"] == "sent", r["rights_holder_id"], r["email"]))
    return head + _table(["holder", "address", "status", "attempts", "last error", "sent at (UTC)"],
                         [[r["rights_holder_id"], r["email"], r["status"], r["attempts"], r["last_error"], r["sent_at"]]
                          for r in order], numeric={3})  # fmt: skip
