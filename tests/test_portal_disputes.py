"""An upheld dispute paid through the existing adjustment mechanism, end to end on a real
warehouse: holder A disputes its October line (October is closed) in the portal; under the
blocking policy November cannot be calculated while the dispute is open; finance upholds it
for November with the CLI and corrects the split that was wrong; November's calculation
restates October and stores the difference as adjustments; A sees the resolution and the
adjustment the calculation stored, to the cent."""

from __future__ import annotations

import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from portal_fixtures import NEXT, PERIOD, USERS, A, B, build_portal_home

from portal.app import PortalConfig, create_app
from settlement.calculate import QualityGateError, calculate_period
from settlement.warehouse import warehouse

ROOT = Path(__file__).resolve().parents[1]


def _cli(env, *args):
    return subprocess.run([sys.executable, "-m", "settlement.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip


def test_upheld_dispute_is_paid_as_an_adjustment_the_holder_sees(tmp_path, monkeypatch):
    home = build_portal_home(tmp_path / "home")
    db = home["settings"].warehouse
    env = {"TRIBUTARY_HOME": str(home["settings"].home), "PATH": "/usr/bin:/bin"}
    client = TestClient(create_app(PortalConfig(home["settings"], "k" * 40, False)), follow_redirects=False)
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
    client.post("/login", data={"username": "ana@a.example", "password": USERS["ana@a.example"][1], "csrf_token": token})
    url = f"/statements/{PERIOD}/line?platform=p1&work=W000&right=master"
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get(url).text).group(1)
    r = client.post(url.replace("/line?", "/line/disputes?"), data={"csrf_token": token,
                                             "reason": "We co-own W003 master (50 %) since 2020; October misses it."})
    assert r.status_code == 303
    dispute_id = r.headers["location"].rsplit("/", 1)[1]

    monkeypatch.setenv("TRIBUTARY_DISPUTE_POLICY", "block")
    with pytest.raises(QualityGateError, match="dispute_open"):
        calculate_period(db, NEXT, run_id="calc-blocked", by="alice")

    done = _cli(env, "disputes", "resolve", dispute_id, "--upheld", "--in-period", NEXT, "--adjustment", "0.01",
                "--reason", "Agreed: the split register was wrong; corrected from October.", "--by", "carol")
    assert done.returncode == 0, done.stdout + done.stderr
    # an adjustment is never paid into a closed month
    closed = _cli(env, "disputes", "resolve", dispute_id, "--upheld", "--in-period", PERIOD, "--reason", "x", "--by", "carol")
    assert closed.returncode == 2
    page = client.get(f"/disputes/{dispute_id}").text
    assert "upheld" in page and f"No adjustment calculated in {NEXT} yet" in page

    changed = _cli(env, "splits", "change", "--work", "W003", "--right", "master", "--from", f"{PERIOD}-01",
                   "--holder", f"{A}=0.5", "--holder", f"{B}=0.5")  # fmt: skip
    assert changed.returncode == 0, changed.stdout + changed.stderr
    result = calculate_period(db, NEXT, run_id="calc-corrected", by="alice")  # no longer blocked
    assert result["adjustments"] > 0 and "open_disputes" not in result
    with warehouse(db, read_only=True) as con:
        stored = dict(con.execute("SELECT rights_holder_id, amount FROM settlement.adjustments WHERE period = ? "
                                  "AND corrects_period = ? AND platform_id = 'p1'", [NEXT, PERIOD]).fetchall())  # fmt: skip
    assert stored[A] > 0 and stored[A] + stored[B] == 0  # moved from B to A, nothing created
    page = client.get(f"/disputes/{dispute_id}").text
    shown = re.search(r'<table id="adjustments">.*?</table>', page, re.DOTALL).group(0)
    assert f"{stored[A]:f} USD" in shown and f"corrects {PERIOD}" in shown
    assert Decimal(re.search(r'id="agreed-adjustment">([0-9.]+)', page).group(1)) == Decimal("0.01")
