"""The holder portal in a real Chromium (Debian's package, driven by Playwright for Python)
against the real `tributary portal` server on loopback and a real settled month: sign in, open
a statement, download its PDF and check its sha256 against the warehouse, drill from a line to
a generation and play its audio, look at a piano roll and the earnings, file a dispute; finance
resolves it with the CLI; the holder sees the resolution.

Screenshots of each page go to the test's folder; TRIBUTARY_UPDATE_SCREENSHOTS=1 also copies
them to docs/img/ (docs/portal.md shows them)."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from portal_fixtures import HOSTILE_WORK, PERIOD, USERS, A, build_portal_home

from settlement.warehouse import warehouse

ROOT = Path(__file__).resolve().parents[1]
# Debian's /usr/bin/chromium is a shell wrapper; Playwright starts the binary itself.
CHROMIUM = next((p for p in ("/usr/lib/chromium/chromium", "/usr/bin/chromium") if Path(p).exists()), None)

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def portal(tmp_path_factory):
    home = build_portal_home(tmp_path_factory.mktemp("portal-browser"))
    port = _free_port()
    env = dict(os.environ, TRIBUTARY_HOME=str(home["settings"].home))
    log = (home["settings"].home / "portal.log").open("w")
    server = subprocess.Popen([sys.executable, "-m", "settlement.cli", "portal", "--port", str(port)],
                              cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if requests.get(f"{url}/login", timeout=2).status_code == 200:
                break
        except requests.ConnectionError:
            pass
        assert server.poll() is None and time.monotonic() < deadline, (home["settings"].home / "portal.log").read_text()
        time.sleep(0.2)
    yield home, url, env
    server.terminate()
    server.wait(timeout=30)
    log.close()


def test_holder_signs_in_drills_down_plays_downloads_disputes_and_sees_the_resolution(portal, tmp_path):
    from playwright.sync_api import sync_playwright

    assert CHROMIUM, "Debian's chromium package is missing: `make install` (or .ci/run) installs it"
    home, url, env = portal
    shots: list[Path] = []

    def shot(page, name: str) -> None:
        path = tmp_path / f"portal-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        shots.append(path)

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"])
        context = browser.new_context(accept_downloads=True, viewport={"width": 1200, "height": 800})
        page = context.new_page()
        # not signed in: the portal sends the browser to the sign-in page
        page.goto(f"{url}/statements")
        assert page.url.startswith(f"{url}/login")
        page.fill("input[name=username]", "ana@a.example")
        page.fill("input[name=password]", USERS["ana@a.example"][1])
        shot(page, "sign-in")
        page.click("button[type=submit]")
        page.wait_for_url(f"{url}/statements")
        assert "Statements of Holder RH00" in page.inner_text("h1")
        shot(page, "statements")

        page.click(f"a[href='/statements/{PERIOD}']")
        page.wait_for_url(f"{url}/statements/{PERIOD}")
        shot(page, "statement")
        with page.expect_download() as info:
            page.click("a[data-kind=pdf]")
        pdf = Path(info.value.path()).read_bytes()
        with warehouse(home["settings"].warehouse, read_only=True) as con:
            recorded = con.execute("SELECT sha256 FROM settlement.statement_files WHERE period = ? AND "
                                   "rights_holder_id = ? AND kind = 'pdf'", [PERIOD, A]).fetchone()[0]  # fmt: skip
        assert pdf.startswith(b"%PDF") and hashlib.sha256(pdf).hexdigest() == recorded
        assert recorded in page.inner_text("body")  # the page shows the digest it served

        # a work whose id holds "/", "?", "&", "#" and "%" opens from its link like any other
        page.click(f"a[href='/work?id={quote(HOSTILE_WORK, safe='')}']")
        assert HOSTILE_WORK in page.inner_text("h1")
        page.go_back()

        # line -> generation -> its audio
        page.click("a.line[href$='work=W000&right=master']")
        page.wait_for_url(f"{url}/statements/{PERIOD}/line?platform=p1&work=W000&right=master")
        shot(page, "line")
        page.click("a.generation:text('g0000')")
        page.wait_for_url(f"{url}/generation?platform=p1&id=g0000")
        audio = page.evaluate("""async () => {
            const a = document.querySelector('#generation-audio');
            a.muted = true;
            await a.play();
            await new Promise(r => setTimeout(r, 400));
            return {readyState: a.readyState, duration: a.duration, currentTime: a.currentTime, error: a.error};
        }""")
        assert audio["error"] is None and audio["readyState"] >= 2, audio
        assert abs(audio["duration"] - 1.5) < 0.05 and audio["currentTime"] > 0, audio
        shot(page, "generation-audio")

        # a symbolic generation's piano roll, and the earnings chart
        page.goto(f"{url}/generation?platform=p1&id=g0001")
        assert page.evaluate("() => document.querySelector('#piano-roll').naturalWidth") > 0
        shot(page, "generation-piano-roll")
        page.goto(f"{url}/earnings")
        assert page.evaluate("() => [...document.images].every(i => i.complete && i.naturalWidth > 0)")
        shot(page, "earnings")

        # a dispute, filed in the browser
        page.goto(f"{url}/statements/{PERIOD}/line?platform=p1&work=W000&right=master")
        page.fill("textarea[name=reason]", "Our split of W000 master is 100 %, the line looks short.")
        page.click("text=File dispute")
        page.wait_for_url(f"{url}/disputes/*")
        assert page.inner_text("#dispute-status") == "open"
        dispute_id = page.url.rsplit("/", 1)[1]
        shot(page, "dispute-open")

        # finance resolves it on the command line
        listed = subprocess.run([sys.executable, "-m", "settlement.cli", "disputes", "list", "--status", "open"],
                                cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
        assert listed.returncode == 0 and dispute_id in listed.stdout
        done = subprocess.run([sys.executable, "-m", "settlement.cli", "disputes", "resolve", dispute_id, "--rejected",
                               "--reason", "The split register shows 100 %; the line pays it in full.", "--by", "carol"],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr

        page.reload()
        assert page.inner_text("#dispute-status") == "rejected"
        assert "The split register shows 100 %" in page.inner_text("#resolution")
        assert "carol" in page.inner_text("#resolution")
        shot(page, "dispute-resolved")
        page.goto(f"{url}/disputes")
        shot(page, "disputes")
        browser.close()

    if os.environ.get("TRIBUTARY_UPDATE_SCREENSHOTS") == "1":
        (ROOT / "docs" / "img").mkdir(parents=True, exist_ok=True)
        for path in shots:
            shutil.copyfile(path, ROOT / "docs" / "img" / path.name)
    # the server loads its access-log journal into the warehouse every 2 s (portal/access_journal.py)
    for _ in range(300):
        with warehouse(home["settings"].warehouse, read_only=True) as con:
            actions = {r[0] for r in con.execute("SELECT action FROM portal.access_log WHERE user_id = 'ana@a.example'").fetchall()}
        if {"sign_in", "view", "download", "dispute"} <= actions:
            break
        time.sleep(0.1)
    assert {"sign_in", "view", "download", "dispute"} <= actions
