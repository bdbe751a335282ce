"""Statement delivery (issue 17): a closed month mails every holder contact its period, amounts
and statement files' sha256 through a real SMTP server on loopback (aiosmtpd); a server that
stops mid-run gives recorded retries and failures, never a blocked close, and `tributary
deliveries retry` delivers once it is back; kill -9 never doubles a mail recorded as sent."""

from __future__ import annotations

import hashlib
import os
import re
from decimal import Decimal
from pathlib import Path

import pytest
from mailbox_server import Mailbox, free_port
from settlement_fixtures import seed_warehouse
from typer.testing import CliRunner

from settlement import delivery, statements
from settlement.calculate import calculate_period
from settlement.cli import app
from settlement.lifecycle import approve_period, close_period
from settlement.warehouse import query, warehouse

PERIOD = "2026-10"
CONTACTS = [("RH00", "ada@label.example"), ("RH00", "finance@label.example"),
            ("RH01", "bo@publisher.example"), ("RH02", "cy@estate.example")]  # fmt: skip


def _approved_month(home: Path) -> Path:
    db = home / "warehouse.duckdb"
    seed_warehouse(db, n_works=6, n_generations=30, n_holders=3)
    with warehouse(db) as con:  # RH00 carries forward: its mail says so
        con.execute("UPDATE ref.rights_holders SET min_payout = 1000000 WHERE rights_holder_id = 'RH00'")
    for holder, email in CONTACTS:
        delivery.add_contact(db, holder, email, name=f"Contact of {holder}")
    calculate_period(db, PERIOD, run_id="calc-10", by="alice")
    statements.build_statements(db, home / "statements", PERIOD)  # the draft finance reviews
    approve_period(db, PERIOD, by="bob")
    return db


@pytest.fixture
def smtp_env(monkeypatch, tmp_path):
    port = free_port()
    monkeypatch.setenv("TRIBUTARY_HOME", str(tmp_path))
    monkeypatch.setenv("TRIBUTARY_SMTP_PORT", str(port))
    monkeypatch.setenv("TRIBUTARY_PORTAL_URL", "https://portal.example.test/")
    monkeypatch.setenv("TRIBUTARY_DELIVERY_ATTEMPTS", "3")
    monkeypatch.setenv("TRIBUTARY_DELIVERY_BACKOFF_S", "0.01")
    return port


def _parse(body: str) -> dict:
    body = body.replace("\r\n", "\n")
    money = {k: Decimal(v) for k, v in re.findall(
        r"^\s+(Earned in \S+|Paid out at the close|Balance carried forward):\s+(-?\d+\.\d+) USD$", body, re.MULTILINE)}  # fmt: skip
    files = dict(re.findall(r"^\s+(\S+)\s+sha256 ([0-9a-f]{64})$", body, re.MULTILINE))
    link = re.search(r"(https?://\S+)", body).group(1)
    return {"money": money, "files": files, "link": link}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_closed_month_mails_each_contact_its_amount_and_sha256(tmp_path, smtp_env):
    db, out = _approved_month(tmp_path), tmp_path / "statements"
    with Mailbox(port=smtp_env) as box:
        closed = close_period(db, PERIOD, by="bob", snapshots=tmp_path / "snap", deliver_to=out)
        assert closed["status"] == "closed" and closed["deliveries"]["sent"] == len(CONTACTS)
        assert len(box.messages) == len(CONTACTS)  # one mail per contact
        # the close run again (after an interruption, say): nobody gets a second mail
        close_period(db, PERIOD, by="bob", snapshots=tmp_path / "snap", deliver_to=out)
        assert len(box.messages) == len(CONTACTS)
    with warehouse(db, read_only=True) as con:
        balances = {r["rights_holder_id"]: r for r in query(con, "marts/holder_balances", {"period": PERIOD})}
        files = query(con, "marts/statement_files_recorded", {"period": PERIOD})
        final = query(con, "marts/final_statements", {"period": PERIOD})
    assert final, "the mails quote the final statements, built after the close"
    assert statements.verify_statements(db, out, PERIOD)["ok"]
    by_to = {m["to"][0]: m for m in box.messages}
    assert sorted(by_to) == sorted(e for _, e in CONTACTS)
    for holder, email in CONTACTS:
        mail = _parse(by_to[email]["body"])
        b = balances[holder]
        assert mail["money"] == {f"Earned in {PERIOD}": b["earned"], "Paid out at the close": b["paid_out"] or 0,
                                 "Balance carried forward": b["closing"]}  # fmt: skip
        mine = {Path(f["path"]).name: f for f in files if f["rights_holder_id"] == holder}
        assert mail["files"] == {name: f["sha256"] for name, f in mine.items()} and len(mine) >= 3
        for f in mine.values():  # the hash in the mail is the file's on disk
            assert _sha(out / f["path"]) == mail["files"][Path(f["path"]).name]
        assert mail["link"] == f"https://portal.example.test/statements/{PERIOD}"
    assert balances["RH00"]["paid_out"] in (None, 0) and balances["RH00"]["closing"] > 0
    assert _parse(by_to["ada@label.example"]["body"])["money"]["Balance carried forward"] > 0
    report = (out / PERIOD / f"finance_report_{PERIOD}.html").read_text()
    assert f"All {len(CONTACTS)} statement mails delivered" in report


def test_smtp_stopped_mid_run_retries_records_failures_and_close_completes(tmp_path, smtp_env):
    db, out = _approved_month(tmp_path), tmp_path / "statements"
    with Mailbox(port=smtp_env, stop_after=1) as box:  # accepts one mail, then stops listening
        closed = close_period(db, PERIOD, by="bob", snapshots=tmp_path / "snap", deliver_to=out)
        first = list(box.messages)
    assert closed["status"] == "closed" and closed["snapshot_sha256"]  # the close stands
    assert closed["deliveries"] | {"run_id": None} == {"period": PERIOD, "run_id": None, "mails": 4, "sent": 1,
                                                       "bounced": 0, "failed": 3, "pending": 0}  # fmt: skip
    assert len(first) == 1
    rows = delivery.deliveries(db, PERIOD)
    failed = [r for r in rows if r["status"] == "failed"]
    # the first failure retried with backoff (3 attempts); the server being down, the others
    # were tried once each in this run
    assert len(failed) == 3 and all("ConnectionRefused" in r["last_error"] for r in failed)
    assert sorted(r["attempts"] for r in failed) == [1, 1, 3]
    with warehouse(db, read_only=True) as con:
        attempts = query(con, "marts/delivery_attempt_log", {"period": PERIOD})
    assert sorted(a["outcome"] for a in attempts) == ["deferred"] * 5 + ["sent"]
    assert all(a["finished_at"] is not None for a in attempts)
    # the finance report says what was not delivered, and its recorded hash matches the file
    report = (out / PERIOD / f"finance_report_{PERIOD}.html").read_text()
    assert "3 statement mail(s) not delivered" in report and "tributary deliveries retry" in report
    assert statements.verify_statements(db, out, PERIOD)["ok"]

    run = CliRunner().invoke
    with Mailbox(port=smtp_env) as box:  # the mail server is back
        result = run(app, ["deliveries", "retry", "--period", PERIOD])
        assert result.exit_code == 0, result.output
        second = list(box.messages)
        assert run(app, ["deliveries", "retry"]).exit_code == 0  # nothing left: nothing sent
        assert len(box.messages) == 3
    everyone = first + second
    assert sorted(m["to"][0] for m in everyone) == sorted(e for _, e in CONTACTS)  # each once
    assert len({m["message_id"] for m in everyone}) == 4
    assert {r["status"] for r in delivery.deliveries(db, PERIOD)} == {"sent"}
    assert "All 4 statement mails delivered" in (out / PERIOD / f"finance_report_{PERIOD}.html").read_text()
    assert statements.verify_statements(db, out, PERIOD)["ok"]
    listed = run(app, ["deliveries", "list", "--period", PERIOD])
    assert listed.exit_code == 0 and listed.output.count("sent") >= 4


def test_refused_address_is_a_bounce_not_retried(tmp_path, smtp_env):
    db, out = _approved_month(tmp_path), tmp_path / "statements"
    with Mailbox(port=smtp_env, refuse={"cy@estate.example"}) as box:
        closed = close_period(db, PERIOD, by="bob", snapshots=tmp_path / "snap", deliver_to=out)
        assert closed["deliveries"]["bounced"] == 1 and closed["deliveries"]["sent"] == 3
        assert CliRunner().invoke(app, ["deliveries", "retry"]).exit_code == 0  # bounces wait for a fix
        assert len(box.messages) == 3
    bounced = [r for r in delivery.deliveries(db, PERIOD) if r["status"] == "bounced"]
    assert [(b["email"], b["attempts"]) for b in bounced] == [("cy@estate.example", 1)]
    assert "550" in bounced[0]["last_error"] or "no such mailbox" in bounced[0]["last_error"]


@pytest.mark.parametrize("argv, rule", [
    (["contacts", "add", "RH00", "not-an-address"], "is not an email address"),
    (["contacts", "add", "RH00", "a@b.example\nBcc: x@y.example"], "is not an email address"),
    (["contacts", "add", "RH99", "a@b.example"], "no rights holder 'RH99'"),
    (["contacts", "add", "RH00", "a@b.example", "--name", "Eve\r\nBcc: x@y"], "line breaks"),
])  # fmt: skip
def test_bad_contacts_exit_2_naming_the_record_and_rule(tmp_path, smtp_env, argv, rule):
    seed_warehouse(tmp_path / "warehouse.duckdb", n_holders=1)
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 2, result.output
    assert rule in " ".join(result.output.split()) and "Traceback" not in result.output


def test_contacts_cli_add_and_list(tmp_path, smtp_env):
    seed_warehouse(tmp_path / "warehouse.duckdb", n_holders=2)
    run = CliRunner().invoke
    assert run(app, ["contacts", "add", "RH01", " Ops@Label.EXAMPLE ", "--name", "Ops"]).exit_code == 0
    listed = run(app, ["contacts", "list"])
    assert listed.exit_code == 0 and "Ops@label.example" in listed.output


def test_month_not_closed_is_not_delivered(tmp_path, smtp_env):
    _approved_month(tmp_path)
    result = CliRunner().invoke(app, ["deliveries", "send", PERIOD])
    assert result.exit_code == 2 and "is not closed" in result.output


# --- kill -9 ---------------------------------------------------------------------------------

def _files_match_records(db: Path, root: Path) -> bool:
    """Every recorded statement and period file (the finance report included) has its sha256 on
    disk: what `statements verify` would find stale after a kill, checked without re-rendering."""
    with warehouse(db, read_only=True) as con:
        files = query(con, "marts/statement_files_recorded", {"period": PERIOD})
    return bool(files) and all(_sha(root / f["path"]) == f["sha256"] for f in files)


@pytest.mark.parametrize("step", [
    "settlement.statements:build_statements",  # final statements written, no mail queued
    "settlement.delivery:_send",  # the server said 250, nothing recorded yet
    "settlement.delivery:_deliver_one",  # one mail recorded sent, the others not tried
    "settlement.statements:refresh_finance_report",  # every mail sent, the report's hash stale
])  # fmt: skip
def test_close_killed_while_delivering_never_doubles_a_recorded_mail(tmp_path, smtp_env, step):
    from killing import run, run_killed_after

    _approved_month(tmp_path)
    close, env = ["period", "close", PERIOD, "--by", "bob"], {"TRIBUTARY_SMTP_PORT": str(smtp_env)}
    with Mailbox(port=smtp_env) as box:
        run_killed_after(tmp_path, close, step, env=env)
        after_kill = list(box.messages)
        db = tmp_path / "warehouse.duckdb"
        sent_before = {r["delivery_id"] for r in delivery.deliveries(db, PERIOD) if r["status"] == "sent"}
        run(tmp_path, close, env=env)  # the rerun finishes the delivery
        rerun = box.messages[len(after_kill):]
    rows = delivery.deliveries(db, PERIOD)
    assert sorted(r["email"] for r in rows) == sorted(e for _, e in CONTACTS)
    assert {r["status"] for r in rows} == {"sent"}
    resent = {m["message_id"] for m in rerun}
    assert not resent & {f"<{d}@tributary>" for d in sent_before}  # recorded sent: never again
    ids = [m["message_id"] for m in after_kill + rerun]
    assert set(ids) == {f"<{r['delivery_id']}@tributary>" for r in rows}
    # at-least-once: only the mail whose 250 was not yet recorded is sent twice, same Message-ID
    assert len(ids) == len(CONTACTS) + (step == "settlement.delivery:_send")
    assert statements.verify_statements(db, tmp_path / "statements", PERIOD)["ok"]
    assert _files_match_records(db, tmp_path / "statements")


def test_deliveries_send_killed_at_many_instants(tmp_path, smtp_env):
    """`deliveries send` killed at N evenly spread instants of an uninterrupted run (real
    processes from tests/killing.py's forkserver, SIGKILL), then run again: every contact's mail
    is recorded sent; no mail recorded sent before the kill arrives again; at most the one mail
    in flight arrives twice, with the same Message-ID."""
    from killing import fresh, rmtree, run, start

    state = tmp_path / "state"
    state.mkdir()
    db = _approved_month(state)
    for i in range(12):  # more contacts: a longer run to kill inside
        delivery.add_contact(db, f"RH0{i % 3}", f"extra{i}@holders.example")
    close_period(db, PERIOD, by="bob", snapshots=state / "snap")  # closed, nothing mailed yet
    statements.build_statements(db, state / "statements", PERIOD)
    argv, env = ["deliveries", "send", PERIOD], {"TRIBUTARY_SMTP_PORT": str(smtp_env)}
    n = int(os.environ.get("TRIBUTARY_KILL_INSTANTS", "20"))
    killed = 0
    with Mailbox(port=smtp_env, delay_s=0.03) as box:
        home = fresh(state, tmp_path / "reference")
        duration = run(home, argv, env=env)
        expected = {r["delivery_id"] for r in delivery.deliveries(home / "warehouse.duckdb", PERIOD)}
        assert len(expected) == len(CONTACTS) + 12 and len(box.messages) == len(expected)
        rmtree(home)
        for i in range(n):
            home = fresh(state, tmp_path / f"kill-{i}")
            db_i, first = home / "warehouse.duckdb", len(box.messages)
            proc = start(home, argv, env=env)
            proc.join(duration * (i + 0.5) / n)
            if proc.is_alive():
                os.kill(proc.pid, 9)
                killed += 1
            proc.join(60)
            recorded = {r["delivery_id"] for r in delivery.deliveries(db_i, PERIOD) if r["status"] == "sent"}
            before_rerun = len(box.messages)
            run(home, argv, env=env)
            rows = delivery.deliveries(db_i, PERIOD)
            assert {r["delivery_id"] for r in rows} == expected and {r["status"] for r in rows} == {"sent"}, i
            again = [m["message_id"] for m in box.messages[before_rerun:]]
            assert not set(again) & {f"<{d}@tributary>" for d in recorded}, i
            got = [m["message_id"] for m in box.messages[first:]]
            assert set(got) == {f"<{d}@tributary>" for d in expected}, i
            assert len(got) - len(expected) <= 1, (i, len(got))  # only the mail in flight, twice
            assert _files_match_records(db_i, home / "statements"), i
            rmtree(home)
    assert killed >= n // 2, f"only {killed} of {n} runs were still going at their instant"
