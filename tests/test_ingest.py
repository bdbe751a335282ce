"""Ingest against the real sandbox HTTP server on loopback and a real DuckDB file."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import pytest
from settlement_fixtures import table

from sandbox.server import SandboxServer
from settlement.ingest import AuthenticationError, PlatformEndpoint, ingest_window

START, END = datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 10, 2, tzinfo=UTC)
TOKEN = "s3cret-token-for-tests"


def _record(n: int, **override) -> dict:
    rec = {
        "schema_version": 1,
        "generation_id": f"g{n:03d}",
        "model_version": "mv-ok",
        "created_at": f"2026-10-01T{n % 24:02d}:00:00.000000Z",
        "style": "bach",
        "prompt": "p",
        "output": {"tokens": [1, 5, 30, 2]},
        "territory": "US",
        "revenue": {"amount": "0.1000", "currency": "USD"},
    }
    rec.update(override)
    return rec


BAD = {
    "negative_revenue": _record(90, revenue={"amount": "-0.0100", "currency": "USD"}),
    "unknown_model_version": _record(91, model_version="mv-unlicensed"),
    "unknown_currency": _record(92, revenue={"amount": "0.1000", "currency": "XYZ"}),
    "missing_field": {k: v for k, v in _record(93).items() if k != "territory"},
    "bad_timestamp": _record(94, created_at="2026-10-01T05:00:00"),
    "bad_output": _record(95, output={"tokens": "not a list"}),
}


@pytest.fixture()
def platform(tmp_path):
    log_path = tmp_path / "log.jsonl"
    records = [_record(i) for i in range(25)] + list(BAD.values())
    log_path.write_text("".join(json.dumps(r) + "\n" for r in records))
    models = tmp_path / "models"
    (models / "mv-ok").mkdir(parents=True)
    (models / "mv-ok" / "model_version.json").write_text(json.dumps({"model_version": "mv-ok"}))
    with SandboxServer(log_path, models, TOKEN) as server:
        yield server, tmp_path


def _ingest(server, home, token=TOKEN, page_size=7):
    endpoint = PlatformEndpoint("p1", server.base_url, token)
    return ingest_window(
        home / "w.duckdb", home / "lake", endpoint, START, END, run_id="r1", page_size=page_size
    )


def test_every_record_is_loaded_once_or_quarantined_with_its_rule(platform):
    server, home = platform
    summary = _ingest(server, home)
    assert summary["received"] == summary["reported_count"] == 25 + len(BAD)
    assert summary["loaded_new"] == 25 and summary["quarantined"] == len(BAD)
    rules = dict(
        table(home / "w.duckdb", "SELECT rule, reason FROM raw.quarantine").values.tolist()
    )
    assert set(rules) == set(BAD)
    assert "g090" in rules["negative_revenue"] and "negative" in rules["negative_revenue"]
    assert "territory" in rules["missing_field"]
    raw = table(home / "w.duckdb", "SELECT * FROM raw.quarantine WHERE rule = 'unknown_currency'")
    assert json.loads(raw["raw_payload"][0])["revenue"]["currency"] == "XYZ"
    parquet = list(
        (home / "lake" / "raw" / "generations" / "platform=p1" / "date=2026-10-01").glob(
            "*.parquet"
        )
    )
    assert len(parquet) == 1


def test_re_ingesting_a_window_adds_nothing(platform):
    server, home = platform
    _ingest(server, home)
    before = table(home / "w.duckdb", "SELECT * FROM raw.generations ORDER BY ALL")
    second = _ingest(server, home, page_size=50)  # other page boundaries, same records
    assert second["loaded_new"] == 0 and second["already_loaded"] == 25
    assert table(home / "w.duckdb", "SELECT * FROM raw.generations ORDER BY ALL").equals(before)
    assert table(home / "w.duckdb", "SELECT count(*) AS n FROM raw.quarantine")["n"][0] == len(BAD)


def test_wrong_token_is_a_clear_error_and_never_logged(platform, caplog):
    server, home = platform
    caplog.set_level(logging.DEBUG)
    with pytest.raises(AuthenticationError, match="refused the token") as err:
        _ingest(server, home, token="wrong-token-value")
    assert "wrong-token-value" not in str(err.value)
    assert "wrong-token-value" not in caplog.text
    assert TOKEN not in caplog.text
    assert "wrong-token-value" not in repr(
        PlatformEndpoint("p1", server.base_url, "wrong-token-value")
    )
