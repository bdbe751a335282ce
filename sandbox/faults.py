"""Seeded fault injection for the sandbox platform: the ways a real platform misbehaves.

Two kinds of fault:

- **transport** faults hit one HTTP response: 500/503, 429 with Retry-After, a response
  slower than the client's timeout, a truncated body, a body that is not JSON. They are
  decided per (request, attempt) from the seed, and a request is faulted at most
  `max_faults_per_request` times in a row, so a client that retries always gets through.
- **content** faults change what the platform delivers: records re-delivered on a later
  page, pages out of time order, records filed late (they appear only after their window
  was first pulled and the client moved on), and records invalid by content (unknown model
  version, negative revenue, unknown currency, missing field, timestamp outside the window).
  The manifest reports what the platform says it sent, bad records included.

Configured by JSON (`--faults '{"seed": 7, "error_rate": 0.2}'`, `--faults @file.json`, or
the `SANDBOX_FAULTS` environment variable); `FaultConfig.everything(seed)` switches all on.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from dataclasses import asdict, dataclass, fields
from datetime import timedelta
from pathlib import Path

INVALID_KINDS = (
    "unknown_model_version",
    "negative_revenue",
    "unknown_currency",
    "missing_field",
    "outside_window",
)


@dataclass(frozen=True)
class FaultConfig:
    seed: int = 0
    # transport: probability that one attempt of a request fails this way
    error_rate: float = 0.0  # HTTP 500 or 503
    rate_limit_rate: float = 0.0  # HTTP 429 with Retry-After
    retry_after_s: int = 1
    slow_rate: float = 0.0  # answer after slow_s seconds (past the client's timeout)
    slow_s: float = 3.0
    truncated_rate: float = 0.0  # a valid body cut short
    malformed_rate: float = 0.0  # a 200 whose body is not JSON
    max_faults_per_request: int = 2
    # content
    duplicate_rate: float = 0.0  # a record delivered again on a later page
    out_of_order: bool = False  # pages not in created_at order
    late_rate: float = 0.0  # records filed after their window was first pulled
    invalid_rate: float = 0.0  # records broken by content, rules in turn
    latency_s: float = 0.0  # added to every page (not a fault: a slow platform)
    rate_limit_per_minute: int = 6000  # the real limit behind the X-RateLimit-* headers

    @classmethod
    def everything(cls, seed: int = 7, **override) -> FaultConfig:
        base = {
            "seed": seed, "error_rate": 0.08, "rate_limit_rate": 0.04, "slow_rate": 0.03, "truncated_rate": 0.05,
            "malformed_rate": 0.05, "duplicate_rate": 0.1, "out_of_order": True, "late_rate": 0.08, "invalid_rate": 0.08,
        }  # fmt: skip
        return cls(**(base | override))

    @classmethod
    def from_json(cls, text: str | None) -> FaultConfig:
        if not text:
            return cls()
        if text.startswith("@"):
            text = Path(text[1:]).read_text()
        data = json.loads(text)
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault setting(s): {', '.join(sorted(unknown))}")
        return cls(**data)

    @classmethod
    def from_env(cls) -> FaultConfig:
        return cls.from_json(os.environ.get("SANDBOX_FAULTS"))

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @property
    def any_transport(self) -> bool:
        return any(
            (
                self.error_rate,
                self.rate_limit_rate,
                self.slow_rate,
                self.truncated_rate,
                self.malformed_rate,
            )
        )


def rng_for(seed: int, *key: object) -> random.Random:
    """A generator that depends only on the seed and the key, never on call order or threads."""
    digest = hashlib.sha256(json.dumps([seed, *map(str, key)]).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def transport_fault(cfg: FaultConfig, request_key: str, attempt: int) -> str | None:
    """Which fault (if any) the `attempt`-th try of this request gets."""
    if attempt >= cfg.max_faults_per_request or not cfg.any_transport:
        return None
    draw = rng_for(cfg.seed, "transport", request_key, attempt).random()
    for name, rate in (
        ("error", cfg.error_rate),
        ("rate_limit", cfg.rate_limit_rate),
        ("slow", cfg.slow_rate),
        ("truncated", cfg.truncated_rate),
        ("malformed", cfg.malformed_rate),
    ):
        if draw < rate:
            return name
        draw -= rate
    return None


def corrupt(records: list[dict], cfg: FaultConfig) -> tuple[list[dict], list[dict]]:
    """Break `invalid_rate` of the records by content (rules in turn). Returns the records as
    the platform now serves them and what was planted: [{generation_id, rule}]."""
    if not cfg.invalid_rate:
        return records, []
    rng = rng_for(cfg.seed, "invalid")
    out, planted = [], []
    for rec in records:
        if rng.random() >= cfg.invalid_rate:
            out.append(rec)
            continue
        kind = INVALID_KINDS[len(planted) % len(INVALID_KINDS)]
        bad = json.loads(json.dumps(rec))
        if kind == "unknown_model_version":
            bad["model_version"] = "sbx-unlicensed-000"
        elif kind == "negative_revenue":
            bad["revenue"] = {
                "amount": "-" + str(rec["revenue"]["amount"]).lstrip("-"),
                "currency": "USD",
            }
        elif kind == "unknown_currency":
            bad["revenue"] = dict(rec["revenue"], currency="XTS")
        elif kind == "missing_field":
            bad.pop("territory", None)
        else:  # outside_window: stamped three days early, filed (and served) in its real window
            bad["_filed_at"] = rec["created_at"]
            bad["created_at"] = _shift(rec["created_at"], timedelta(days=-3))
        out.append(bad)
        planted.append({"generation_id": rec["generation_id"], "rule": kind})
    return out, planted


def _shift(created_at: str, by: timedelta) -> str:
    from datetime import UTC, datetime

    ts = datetime.fromisoformat(created_at)
    return (ts + by).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def late_mask(records: list[dict], cfg: FaultConfig) -> list[bool]:
    rng = rng_for(cfg.seed, "late")
    return [rng.random() < cfg.late_rate for _ in records]


def delivery(rows: list[dict], cfg: FaultConfig, window_key: str) -> list[dict]:
    """The order in which the platform hands out a window: maybe shuffled, with some records
    delivered a second time on a later page."""
    if not (cfg.duplicate_rate or cfg.out_of_order):
        return rows
    rng = rng_for(cfg.seed, "delivery", window_key)
    keyed = [(float(i), r) for i, r in enumerate(rows)]
    if cfg.out_of_order:
        keyed = [(rng.random() * len(rows), r) for _, r in keyed]
    dups = [
        (pos + 1 + rng.random() * 300, r) for pos, r in keyed if rng.random() < cfg.duplicate_rate
    ]
    return [r for _, r in sorted(keyed + dups, key=lambda x: x[0])]
