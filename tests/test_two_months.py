"""Two consecutive months through the real DAGs: after the first month closes, a late
generation for it arrives and a split of one of its works is corrected. The first month stays
exactly as closed; the second pays the corrections as adjustments that name the first."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.e2e

CLOSED_TABLES = ["settlement.pools", "settlement.holder_totals", "settlement.statement_lines", "settlement.closes"]


def _frame(home: Path, sql: str) -> pd.DataFrame:
    from settlement.warehouse import warehouse

    with warehouse(home / "warehouse.duckdb", read_only=True) as con:
        cur = con.execute(sql)
        return pd.DataFrame(cur.fetchall(), columns=[d[0] for d in cur.description])


def test_late_generation_and_split_correction_land_in_the_next_month(tmp_path):
    home = tmp_path
    os.environ["TRIBUTARY_HOME"] = str(home)
    if not (Path(os.environ["AIRFLOW_HOME"]) / "airflow.db").exists():
        subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)
    from sandbox import demo
    from settlement.warehouse import warehouse

    # The symbolic platform alone: late deliveries and corrections are platform-independent,
    # and the two-platform month is test_end_to_end's.
    october_cfg = replace(demo.SMALL, period="2026-10", audio=None)
    october = demo.build_sandbox(home, october_cfg)
    demo.run_month(home, october_cfg, october)
    assert _frame(home, "SELECT status FROM settlement.periods WHERE period = '2026-10'")["status"][0] == "closed"
    closed = {t: _frame(home, f"SELECT * FROM {t} WHERE period = '2026-10' ORDER BY ALL") for t in CLOSED_TABLES}

    # November's log, plus October's, plus one October generation the platform delivers late.
    november_cfg = replace(demo.SMALL, period="2026-11", seed=12, audio=None)
    november = demo.build_sandbox(home, november_cfg)
    records = [json.loads(x) for x in october["log_path"].read_text().splitlines()]
    late = dict(next(r for r in records if r["revenue"]["amount"][0] != "-"))
    late.update(generation_id="sandbox-late-0001", created_at="2026-10-02T12:00:00.000000Z",
                revenue={"amount": "5.0000", "currency": "USD"})
    combined = home / "platform" / "combined.jsonl"
    combined.write_text(
        october["log_path"].read_text() + november["log_path"].read_text() + json.dumps(late) + "\n"
    )
    november["log_path"] = combined

    # A split of a work that earned in October turns out to have been wrong all along.
    with warehouse(home / "warehouse.duckdb") as con:
        work, right = con.execute(
            "SELECT work_id, right_type FROM settlement.statement_lines WHERE period = '2026-10' "
            "AND amount > 0 ORDER BY amount DESC, work_id, right_type LIMIT 1"
        ).fetchall()[0]
        con.execute("DELETE FROM ref.splits WHERE work_id = ? AND right_type = ?", [work, right])
        con.execute("INSERT INTO ref.splits VALUES (?, ?, 'RH0001', 1, DATE '2020-01-01', NULL)", [work, right])
    # ... and in the catalog the rights team imports every month
    splits_path = home / "catalog" / "splits.parquet"
    splits = pd.read_parquet(splits_path)
    keep = ~((splits["work_id"] == work) & (splits["right_type"] == right))
    fixed = splits[keep].iloc[:1].assign(work_id=work, right_type=right, rights_holder_id="RH0001", share=Decimal(1))
    pd.concat([splits[keep], fixed]).to_parquet(splits_path, index=False)

    # The preparer (whoever triggered the run: dag.test() records "dag_test") answers November's
    # approval in Airflow himself: refused and recorded, the approval asks again, and a second
    # person's answer releases the month, all in one run.
    demo.run_month(home, november_cfg, november, repull_days=(datetime(2026, 10, 2, tzinfo=UTC),),
                   approver_name=("dag_test", "controller"))  # fmt: skip
    refusals = _frame(home, "SELECT period, answered_by FROM settlement.approval_refusals")
    assert refusals.values.tolist() == [["2026-11", "dag_test"]]
    approvals = _frame(home, "SELECT period, approved_by FROM settlement.approvals ORDER BY period")
    assert approvals.values.tolist() == [["2026-10", "demo-approver"], ["2026-11", "controller"]]

    for t in CLOSED_TABLES:  # October exactly as it was closed
        pd.testing.assert_frame_equal(_frame(home, f"SELECT * FROM {t} WHERE period = '2026-10' ORDER BY ALL"), closed[t], obj=t)
    adjustments = _frame(home, "SELECT * FROM settlement.adjustments")
    assert set(adjustments["period"]) == {"2026-11"} and set(adjustments["corrects_period"]) == {"2026-10"}
    assert adjustments["reason"].str.contains("1 late generation").all()
    assert sum(adjustments["amount"], Decimal(0)) == Decimal("1.50")  # 5.00 late revenue x 30 %
    assert "RH0001" in set(adjustments["rights_holder_id"])
    late_rows = _frame(home, "SELECT l.adjust_in_period, a.period FROM raw.late_arrivals AS l "
                             "JOIN settlement.periods AS a ON a.run_id = l.adjusted_run_id")
    assert late_rows.values.tolist() == [["2026-11", "2026-11"]]  # stamped by November's calculation
    postings = _frame(home, "SELECT transaction_id, memo, sum(amount) OVER (PARTITION BY transaction_id) AS t FROM ledger.postings WHERE transaction_id LIKE 'adjust/%'")
    assert (postings["t"] == 0).all() and postings["memo"].str.contains("corrects 2026-10").any()
    assert _frame(home, "SELECT status FROM settlement.periods WHERE period = '2026-11'")["status"][0] == "closed"
