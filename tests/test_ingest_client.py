"""The ingest client against the sandbox server with one fault at a time (seeded): what it
retries, how long it is told to wait, what it refuses, and what it says when it gives up.
Waits are recorded, never slept or timed."""

from __future__ import annotations

import json

import pytest
import requests
from test_ingest import END, START, TOKEN, _record

from sandbox.faults import FaultConfig
from sandbox.server import SandboxServer
from settlement import ingest
from settlement.ingest import (
    ClientOptions,
    GenerationLogClient,
    IngestError,
    PlatformEndpoint,
    ingest_window,
)


def _server(tmp_path, faults: FaultConfig):
    log_path = tmp_path / "log.jsonl"
    log_path.write_text("".join(json.dumps(_record(i)) + "\n" for i in range(12)))
    models = tmp_path / "models" / "mv-ok"
    models.mkdir(parents=True)
    (models / "model_version.json").write_text("{}")
    return SandboxServer(log_path, models.parent, TOKEN, faults=faults)


@pytest.fixture()
def waits(monkeypatch):
    slept: list[float] = []
    monkeypatch.setattr(ingest, "_sleep", slept.append)
    return slept


def _client(server, **opts) -> GenerationLogClient:
    options = ClientOptions(**({"timeout": 5.0, "retries": 3, "backoff": 0.01} | opts))
    return GenerationLogClient(
        PlatformEndpoint("p1", server.base_url, TOKEN), page_size=5, options=options
    )


def test_429_is_retried_after_the_servers_retry_after(tmp_path, waits):
    with _server(
        tmp_path,
        FaultConfig(seed=1, rate_limit_rate=1.0, retry_after_s=3, max_faults_per_request=1),
    ) as s:
        pages = list(_client(s).pages(START, END))
    assert sum(len(p) for p in pages) == 12
    assert waits and all(w == 3.0 for w in waits)  # Retry-After, not the backoff


def test_truncated_and_malformed_bodies_are_retried(tmp_path, waits):
    faults = FaultConfig(seed=2, truncated_rate=0.5, malformed_rate=0.5, max_faults_per_request=2)
    with _server(tmp_path, faults) as s:
        summary = ingest_window(
            tmp_path / "w.duckdb",
            tmp_path / "lake",
            s_endpoint(s),
            START,
            END,
            "r",
            client=_client(s),
        )
    assert summary["loaded_new"] == 12 and summary["received"] == summary["reported_count"]
    assert len(waits) >= 2


def s_endpoint(server) -> PlatformEndpoint:
    return PlatformEndpoint("p1", server.base_url, TOKEN)


def test_giving_up_names_the_platform_and_the_last_problem(tmp_path, waits):
    faults = FaultConfig(seed=3, error_rate=1.0, max_faults_per_request=99)
    with (
        _server(tmp_path, faults) as s,
        pytest.raises(
            IngestError, match=r"platform p1: /v1/generations failed after 4 attempts: HTTP 50[03]"
        ),
    ):
        list(_client(s).pages(START, END))
    assert len(waits) == 3 and waits == sorted(waits)  # backoff grows


def test_responses_carry_rate_limit_headers_and_documented_error_bodies(tmp_path):
    with _server(tmp_path, FaultConfig(seed=4, rate_limit_rate=1.0, max_faults_per_request=1)) as s:
        url, auth = f"{s.base_url}/v1/generations/manifest", {"Authorization": f"Bearer {TOKEN}"}
        params = {"start": "2026-10-01T00:00:00Z", "end": "2026-10-02T00:00:00Z"}
        first = requests.get(url, params=params, headers=auth, timeout=5)
        assert first.status_code == 429 and first.headers["Retry-After"] == "1"
        assert first.json()["error"] == "rate_limited"
        ok = requests.get(url, params=params, headers=auth, timeout=5)
        assert ok.status_code == 200
        for header in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"):
            assert header in ok.headers
        body = ok.json()
        assert (
            body["count"] == 12
            and body["schema_version"] == 1
            and body["revenue"] == {"USD": "1.2000"}
        )
        denied = requests.get(
            url, params=params, headers={"Authorization": "Bearer nope"}, timeout=5
        )
        assert denied.status_code == 401 and denied.json()["error"] == "unauthorized"
        assert "nope" not in denied.text


def test_credentials_for_the_library_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("TRIBUTARY_PLATFORM_P_2_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("TRIBUTARY_PLATFORM_P_2_TOKEN", "env-token-xyz")
    ep = PlatformEndpoint.from_env("p-2")
    assert ep.token == "env-token-xyz" and "env-token-xyz" not in repr(ep)
    monkeypatch.delenv("TRIBUTARY_PLATFORM_P_2_TOKEN")
    with pytest.raises(IngestError, match="TRIBUTARY_PLATFORM_P_2_TOKEN"):
        PlatformEndpoint.from_env("p-2")


def test_fault_config_reads_json_and_rejects_unknown_settings(tmp_path):
    assert FaultConfig.from_json('{"seed": 5, "error_rate": 0.5}') == FaultConfig(
        seed=5, error_rate=0.5
    )
    (tmp_path / "f.json").write_text(FaultConfig.everything(9).to_json())
    assert FaultConfig.from_json(f"@{tmp_path / 'f.json'}") == FaultConfig.everything(9)
    with pytest.raises(ValueError, match="errror_rate"):
        FaultConfig.from_json('{"errror_rate": 1}')


def test_an_exhausted_rate_limit_is_waited_out_before_the_next_call(tmp_path, waits):
    with _server(tmp_path, FaultConfig(seed=5, rate_limit_per_minute=3)) as s:
        client = _client(s, max_wait=7.0)
        client.page_size = 50
        # request 1 was the server's readiness probe, 2 the one page: one left
        assert sum(len(p) for p in client.pages(START, END)) == 12 and waits == []
        assert client.manifest(START, END)["count"] == 12  # request 3: none left now
    assert waits == [7.0]  # X-RateLimit-Reset, capped by max_wait
