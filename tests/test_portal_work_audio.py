"""The holder's own work next to a generation: the audio catalog's rendered excerpt
(TRIBUTARY_HOME/catalog/audio.parquet and catalog/audio/, as sandbox/audio_render.py writes
them), served only for the signed-in holder's own works, only from under TRIBUTARY_HOME, and
only while the file still has the sha256 the catalog recorded."""

from __future__ import annotations

import hashlib
import re
from urllib.parse import quote

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from portal_fixtures import A_WORKS, AUDIO, B_WORKS, HOSTILE_WORK, A, _flac, build_portal_home
from test_portal_auth import _client, sign_in

from settlement.warehouse import query, warehouse


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    home = build_portal_home(tmp_path_factory.mktemp("portal-work-audio"))
    catalog = home["settings"].catalog
    (catalog / "audio").mkdir(parents=True)
    outside = home["settings"].home.parent / "outside.flac"
    outside.write_bytes(_flac(0.5, 220.0))
    rows, files = [], {}
    for i, work in enumerate(A_WORKS + B_WORKS):
        data = _flac(1.0, 330.0 + 40 * i)
        name = f"{hashlib.sha256(work.encode()).hexdigest()[:16]}.flac"
        (catalog / "audio" / name).write_bytes(data)
        files[work] = data
        rows.append({"work_id": work, "file_name": name, "file_sha256": hashlib.sha256(data).hexdigest()})
    # hostile catalog rows: a name that climbs out of catalog/audio, and a file changed since
    rows[1]["file_name"] = "../../outside.flac"
    rows[1]["file_sha256"] = hashlib.sha256(outside.read_bytes()).hexdigest()
    (catalog / "audio" / rows[2]["file_name"]).write_bytes(b"not the rendered excerpt")
    pq.write_table(pa.Table.from_pylist(rows), catalog / "audio.parquet")
    return home | {"excerpts": files}


def test_a_holder_hears_its_own_works_and_nothing_else(home):
    own, climbs, changed = A_WORKS[0], A_WORKS[1], A_WORKS[2]
    assert changed == HOSTILE_WORK
    visitor = _client(home).get(f"/work/audio?id={quote(own)}")
    assert visitor.status_code == 303 and visitor.headers["location"].startswith("/login")
    c = _client(home)
    assert sign_in(c, "ana@a.example").status_code == 303
    r = c.get(f"/work/audio?id={quote(own)}")
    assert r.status_code == 200 and r.content == home["excerpts"][own] and r.headers["content-type"] == "audio/flac"
    assert r.headers["x-content-sha256"] == hashlib.sha256(r.content).hexdigest()
    for work in B_WORKS:  # another holder's works, although the catalog has them
        assert c.get(f"/work/audio?id={quote(work)}").status_code == 404
    assert c.get(f"/work/audio?id={quote(climbs)}").status_code == 404  # outside catalog/audio
    assert c.get(f"/work/audio?id={quote(changed, safe='')}").status_code == 409  # not the recorded bytes
    for hostile in ("", "W999", "../warehouse.duckdb", "W000\x00", "x" * 500):
        assert c.get("/work/audio", params={"id": hostile}).status_code == 404
    b = _client(home)
    assert sign_in(b, "bea@b.example").status_code == 303
    assert b.get(f"/work/audio?id={quote(own)}").status_code == 404
    assert b.get(f"/work/audio?id={quote(B_WORKS[0])}").status_code == 200


def test_the_generation_page_plays_the_holders_works_it_paid_next_to_it(home):
    c = _client(home)
    sign_in(c, "ana@a.example")
    generation = next(g for g, holder in AUDIO.items() if holder == A)
    with warehouse(home["settings"].warehouse, read_only=True) as con:
        paid = {r["work_id"] for r in query(con, "marts/portal_generation", {
            "rights_holder_id": A, "platform_id": "p1", "generation_id": generation})}  # fmt: skip
    page = c.get(f"/generation?platform=p1&id={generation}").text
    players = set(re.findall(r'class="work-audio" controls preload="none" src="/work/audio\?id=([^"]+)"', page))
    # every work of A it paid that has a usable excerpt, and none of another holder's
    expected = {quote(w, safe="") for w in paid if w != A_WORKS[1]}
    assert paid and players == expected and not paid & set(B_WORKS)
    assert 'id="generation-audio"' in page
