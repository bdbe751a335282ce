"""Statement delivery: when a period closes, every contact of every holder with a statement gets
one email saying the period, the amounts (read from the ledger rows the close stored, never
recomputed), a link to the holder portal and the sha256 of each of its statement files (read
from settlement.statement_files, the final ones).

Plain `smtplib`, not Airflow's SMTP provider: settlement/ never imports Airflow, and the same
code runs from the CLI, the DAG and the retry command.

What is recorded (migration 017): a delivery per period, holder and address; an attempt row,
committed before each SMTP conversation and finished after it. Outcomes:
- sent: the server accepted the mail (250);
- bounced: the server refused the address for good (5xx): not retried until someone asks;
- deferred: the server was unreachable or said "try later" (4xx): retried with exponential
  backoff, at most TRIBUTARY_DELIVERY_ATTEMPTS times per run; then the delivery is `failed` and
  `tributary deliveries retry` sends it once the server is back.
A failed delivery never fails the close: the close is finished before any mail is tried, and
delivery problems are returned and shown in the finance report, never raised.

kill -9: a delivery recorded `sent` is never sent again. A kill between the server's 250 and the
row that records it leaves the delivery `pending` with an unfinished attempt; the rerun sends it
again with the same Message-ID (`<delivery_id@tributary>`, the idempotency key), so delivery is
at-least-once and a duplicate is recognisable as the same mail.
"""

from __future__ import annotations

import os
import smtplib
import time
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from email.message import EmailMessage
from pathlib import Path

from email_validator import EmailNotValidError, validate_email

from settlement import inputs
from settlement.warehouse import query, run_sql, transaction, warehouse


@dataclass(frozen=True)
class DeliverySettings:
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    sender: str = "statements@tributary.localhost"
    portal_url: str = "http://127.0.0.1:8000"
    attempts: int = 3  # per run, per delivery
    backoff_s: float = 2.0  # first wait; doubles after each deferred attempt
    timeout_s: float = 10.0

    @classmethod
    def from_env(cls) -> DeliverySettings:
        env = os.environ.get
        return cls(
            smtp_host=env("TRIBUTARY_SMTP_HOST", cls.smtp_host),
            smtp_port=int(env("TRIBUTARY_SMTP_PORT", str(cls.smtp_port))),
            sender=env("TRIBUTARY_SMTP_FROM", cls.sender),
            portal_url=env("TRIBUTARY_PORTAL_URL", cls.portal_url).rstrip("/"),
            attempts=max(1, int(env("TRIBUTARY_DELIVERY_ATTEMPTS", str(cls.attempts)))),
            backoff_s=float(env("TRIBUTARY_DELIVERY_BACKOFF_S", str(cls.backoff_s))),
            timeout_s=float(env("TRIBUTARY_SMTP_TIMEOUT_S", str(cls.timeout_s))),
        )


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


# --- contacts ----------------------------------------------------------------------------


def contact_email(value: str, record: str = "contact") -> str:
    """A deliverable address, normalised (email-validator: syntax and domain rules, no DNS
    lookup), or InputError naming the record and the rule."""
    text = (value or "").strip()
    try:
        # test_environment: accepts `.localhost`/`.test` domains the demo and tests use
        return validate_email(text, check_deliverability=False, test_environment=True).normalized
    except EmailNotValidError as err:
        raise inputs.InputError(f"{record}: {text!r} is not an email address ({err})") from None


def add_contact(warehouse_path: Path, rights_holder_id: str, email: str, name: str = "") -> dict:
    email = contact_email(email, f"contact of {rights_holder_id}")
    if any(ch in (name or "") for ch in "\r\n<>") or not (name or "").isprintable():  # it goes into a mail
        raise inputs.InputError(f"contact {email}: name must not contain line breaks, control characters or <>")
    name = " ".join((name or "").split())[:200]
    with warehouse(warehouse_path) as con:
        if not query(con, "marts/rights_holder", {"rights_holder_id": rights_holder_id}):
            raise inputs.InputError(f"contact {email}: no rights holder {rights_holder_id!r} in the catalog")
        with transaction(con):
            run_sql(con, "loads/holder_contact",
                    {"rights_holder_id": rights_holder_id, "email": email, "name": name, "now": _now()})  # fmt: skip
    return {"rights_holder_id": rights_holder_id, "email": email, "name": name}


def remove_contact(warehouse_path: Path, rights_holder_id: str, email: str) -> None:
    email = contact_email(email, f"contact of {rights_holder_id}")
    with warehouse(warehouse_path) as con, transaction(con):
        run_sql(con, "loads/holder_contact_remove", {"rights_holder_id": rights_holder_id, "email": email})


def contacts(warehouse_path: Path, rights_holder_id: str | None = None) -> list[dict]:
    with warehouse(warehouse_path) as con:
        return query(con, "marts/holder_contacts", {"rights_holder_id": rights_holder_id})


# --- composing ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Mail:
    delivery_id: str
    to: str
    message: EmailMessage
    amounts: str  # what the mail says, recorded on the attempt
    files_sha256: str


def _compose_alert(row: dict, s: DeliverySettings) -> Mail:
    period, name = row["period"], " ".join(row["holder_name"].split())
    kind = row["alert_kind"].replace("_", " ")
    lines = [f"Dear {name},", "", f"a monitoring rule you set raised an alert for {period} ({kind}):", "",
             f"  {row['alert_detail']}", "", f"Your alerts in the portal: {s.portal_url}/alerts", "",
             f"Delivery id: {row['delivery_id']}", "-- Tributary"]  # fmt: skip
    msg = EmailMessage()
    msg["Subject"] = f"Tributary alert ({kind}) for {name}: {row['alert_subject']}"
    msg["From"], msg["To"] = s.sender, row["email"]
    msg["Message-ID"] = f"<{row['delivery_id']}@tributary>"
    msg["X-Tributary-Delivery"] = row["delivery_id"]
    msg.set_content("\n".join(lines) + "\n")
    return Mail(row["delivery_id"], row["email"], msg, "", "")


def _compose(row: dict, balances: list[dict], files: list[dict], s: DeliverySettings) -> Mail:
    if row.get("kind") == "alert":
        return _compose_alert(row, s)
    period, name = row["period"], " ".join(row["holder_name"].split())  # a header holds one line
    lines = [
        f"Dear {name},",
        "",
        f"your Tributary royalty statement for {period} is ready.",
        "",
    ]
    amounts = []
    zero = Decimal("0.00")  # a ledger sum over no posting (nothing paid out) is NULL
    for b in balances:  # one block per payout currency, as the close stored them
        cur, earned, paid, closing = b["currency"], b["earned"] or zero, b["paid_out"] or zero, b["closing"] or zero
        amounts.append(f"{cur} earned={earned} paid_out={paid} carried_forward={closing}")
        lines += [
            f"  Earned in {period}:        {earned} {cur}",
            f"  Paid out at the close:   {paid} {cur}",
            f"  Balance carried forward: {closing} {cur}",
        ]
    lines += ["", f"Your statements in the portal: {s.portal_url}/statements/{period}", "",
              "Statement files and their sha256 (compare after downloading):"]  # fmt: skip
    for f in files:
        lines.append(f"  {Path(f['path']).name}  sha256 {f['sha256']}")
    lines += ["", f"Delivery id: {row['delivery_id']}", "-- Tributary"]
    msg = EmailMessage()
    msg["Subject"] = f"Tributary statement {period} for {name}"
    msg["From"] = s.sender
    msg["To"] = row["email"]
    msg["Message-ID"] = f"<{row['delivery_id']}@tributary>"
    msg["X-Tributary-Delivery"] = row["delivery_id"]
    msg.set_content("\n".join(lines) + "\n")
    return Mail(row["delivery_id"], row["email"], msg, "; ".join(amounts),
                ",".join(f"{Path(f['path']).name}={f['sha256']}" for f in files))  # fmt: skip


# --- sending -----------------------------------------------------------------------------


def _send(mail: Mail, s: DeliverySettings) -> tuple[str, int | None, str]:
    """One SMTP conversation: (outcome, smtp code, detail). Never raises for a mail problem."""
    try:
        with smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.timeout_s) as smtp:
            smtp.send_message(mail.message, from_addr=s.sender, to_addrs=[mail.to])
        return "sent", 250, "accepted"
    except smtplib.SMTPRecipientsRefused as err:
        code, text = next(iter(err.recipients.values()))
        return ("bounced" if code >= 500 else "deferred"), code, _text(text)
    except smtplib.SMTPResponseException as err:
        return ("bounced" if err.smtp_code >= 500 else "deferred"), err.smtp_code, _text(err.smtp_error)
    except (smtplib.SMTPException, OSError) as err:  # OSError: refused, reset, timed out
        return "deferred", None, f"{type(err).__name__}: {err}"[:500]


def _text(value) -> str:
    return (value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value))[:500]


def _deliver_one(warehouse_path: Path, mail: Mail, s: DeliverySettings, run_id: str) -> str:
    status = "pending"
    for attempt in range(s.attempts):
        with warehouse(warehouse_path) as con, transaction(con):
            run_sql(con, "loads/delivery_attempt_start", {
                "delivery_id": mail.delivery_id, "run_id": run_id, "now": _now(),
                "amounts": mail.amounts, "files_sha256": mail.files_sha256,
            })  # fmt: skip
        # no warehouse connection is held while talking to the mail server
        outcome, code, detail = _send(mail, s)
        last = attempt == s.attempts - 1
        status = {"sent": "sent", "bounced": "bounced"}.get(outcome, "failed" if last else "pending")
        with warehouse(warehouse_path) as con, transaction(con):
            run_sql(con, "loads/delivery_attempt_end", {
                "delivery_id": mail.delivery_id, "now": _now(), "outcome": outcome, "smtp_code": code,
                "detail": detail, "status": status, "last_error": None if outcome == "sent" else detail,
            })  # fmt: skip
        if outcome != "deferred":
            break
        if not last:
            time.sleep(s.backoff_s * 2**attempt)
    return status


def _due(con, period: str | None, retry: bool, bounced: bool) -> list[dict]:
    return [dict(r) for r in query(con, "marts/deliveries_due", {"period": period, "retry": retry, "bounced": bounced})]


def send_due(warehouse_path: Path, period: str | None, settings: DeliverySettings | None = None,
             retry: bool = False, bounced: bool = False, statements_root: Path | None = None) -> dict:
    """Send every due mail (of `period`, or of every period): pending ones, and with `retry`
    the failed ones. Returns counts by final status; refreshes the finance report of each
    period touched when `statements_root` is given."""
    s = settings or DeliverySettings.from_env()
    run_id = f"delivery@{uuid.uuid4().hex[:12]}"
    with warehouse(warehouse_path) as con:
        due = _due(con, period, retry, bounced)
        mails, cache = [], {}
        for row in due:
            p = row["period"]
            if p not in cache:
                cache[p] = (query(con, "marts/holder_balances", {"period": p}),
                            query(con, "marts/statement_files_recorded", {"period": p}))  # fmt: skip
            balances, files = cache[p]
            mails.append(_compose(row, [b for b in balances if b["rights_holder_id"] == row["rights_holder_id"]],
                                  [f for f in files if f["rights_holder_id"] == row["rights_holder_id"]], s))  # fmt: skip
    counts = {"sent": 0, "bounced": 0, "failed": 0, "pending": 0}
    for mail in mails:
        status = _deliver_one(warehouse_path, mail, s, run_id)
        counts[status] += 1
        if status == "failed" and s.attempts > 1:
            # the server stayed unreachable through every retry: the rest get one attempt each
            # (recorded failed for `deliveries retry`), not a full backoff each
            s = replace(s, attempts=1)
    if statements_root is not None:
        from settlement import statements  # statements imports the finance report, which reads us

        # Every period with statement mails, not only those sent now: a run killed between
        # recording its mails and rewriting the report leaves nothing due, and the rerun must
        # still rewrite it (alerts are not in the finance report).
        with warehouse(warehouse_path) as con:
            periods = {d["period"] for d in query(con, "marts/deliveries", {"period": period}) if d["kind"] == "statement"}
        for p in sorted(periods):
            statements.refresh_finance_report(warehouse_path, statements_root, p)
    return {"run_id": run_id, "mails": len(mails), **counts}


def deliver_period(warehouse_path: Path, statements_root: Path, period: str,
                   settings: DeliverySettings | None = None) -> dict:
    """After a close: make sure the final statements are written and recorded, queue a mail per
    holder contact, send what is due. Never raises for a mail problem (they are recorded)."""
    from settlement import statements

    period = inputs.period(period)
    with warehouse(warehouse_path) as con:
        closed = query(con, "marts/period_close_row", {"period": period})
        if not closed:
            raise inputs.InputError(f"period {period} is not closed; statements are delivered after the close")
        any_contact = query(con, "marts/holder_contacts", {"rights_holder_id": None})
        final = query(con, "marts/final_statements", {"period": period})
    if not any_contact:
        return {"period": period, "mails": 0, "note": "no holder contacts registered (tributary contacts add)"}
    if not final:
        statements.build_statements(warehouse_path, statements_root, period)
    with warehouse(warehouse_path) as con, transaction(con):
        run_sql(con, "loads/deliveries_queue", {"period": period, "now": _now()})
    return {"period": period, **send_due(warehouse_path, period, settings, statements_root=statements_root)}


def deliveries(warehouse_path: Path, period: str | None = None) -> list[dict]:
    with warehouse(warehouse_path, read_only=True) as con:
        return query(con, "marts/deliveries", {"period": period})
