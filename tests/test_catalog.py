"""The sandbox catalog and its synthetic rights, built small (a few corpus files) in tmp_path."""

from __future__ import annotations

import hashlib
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sandbox.corpus import (
    STYLES,
    TOKENS_SCHEMA,
    WORKS_SCHEMA,
    assign_codes,
    build_catalog,
    is_valid_iswc,
    iswc_check_digit,
    make_work_id,
    token_sha256,
)
from sandbox.rights import SHARE_TYPE, build_rights
from sandbox.tokenizer import Tokenizer

LIMIT = 12
FILES = ("works.parquet", "tokens.parquet", "rights_holders.parquet", "splits.parquet")


def _digests(home: Path) -> dict[str, str]:
    return {f: hashlib.sha256((home / "catalog" / f).read_bytes()).hexdigest() for f in FILES}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Two builds into one home (the second must hit the parse cache) and one into another."""
    home = tmp_path_factory.mktemp("catalog_a")
    other = tmp_path_factory.mktemp("catalog_b")
    first = build_catalog(home, limit=LIMIT, workers=2)
    build_rights(home)
    digests_first = _digests(home)
    second = build_catalog(home, limit=LIMIT, workers=2)
    build_rights(home)
    build_catalog(other, limit=LIMIT, workers=1)
    build_rights(other)
    return {
        "home": home,
        "first": first,
        "second": second,
        "digests_first": digests_first,
        "digests_second": _digests(home),
        "digests_other": _digests(other),
    }


def _read(built: dict, name: str) -> pa.Table:
    return pq.read_table(built["home"] / "catalog" / name)


def test_small_catalog_spans_several_collections(built: dict) -> None:
    stats = built["first"]
    assert 0 < stats["works"] <= LIMIT
    assert stats["collections"] >= 4
    assert stats["failed_files"] == 0
    works = _read(built, "works.parquet")
    assert works.schema.equals(WORKS_SCHEMA)
    assert _read(built, "tokens.parquet").schema.equals(TOKENS_SCHEMA)
    assert set(works["style"].to_pylist()) <= set(STYLES)
    ids = works["work_id"].to_pylist()
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


def test_second_build_reads_parse_cache(built: dict) -> None:
    assert built["first"]["parsed_files"] == built["first"]["files"]
    assert built["second"]["parsed_files"] == 0
    assert built["second"]["cached_files"] == built["first"]["files"]


def test_builds_are_byte_identical_and_ids_stable(built: dict) -> None:
    # Same inputs, different home, one worker instead of two: nothing may change.
    assert built["digests_first"] == built["digests_second"] == built["digests_other"]


def test_work_id_depends_only_on_corpus_path_and_number() -> None:
    assert make_work_id("bach/bwv1.6.mxl", None) == make_work_id("bach/bwv1.6.mxl", None)
    assert make_work_id("bach/bwv1.6.mxl", None).endswith("#0")
    assert make_work_id("oneills1850/0001-0050.abc", 3).endswith("#3")
    assert make_work_id("a.abc", 1) != make_work_id("a.abc", 2)


def test_iswc_and_isrc_are_well_formed_and_unique(built: dict) -> None:
    works = _read(built, "works.parquet")
    iswcs = works["iswc"].to_pylist()
    isrcs = works["isrc"].to_pylist()
    assert all(is_valid_iswc(c) for c in iswcs)
    assert len(set(iswcs)) == len(iswcs) and len(set(isrcs)) == len(isrcs)
    for isrc in isrcs:
        assert len(isrc) == 12 and isrc[:2] == "QZ" and isrc[3:5].isalnum()
        assert isrc[5:7].isdigit() and isrc[7:].isdigit()


def test_iswc_check_digit_known_value() -> None:
    # T-034.524.680-1 is the ISWC standard's worked example.
    assert iswc_check_digit("034524680") == 1
    assert is_valid_iswc("T-034.524.680-1")
    assert not is_valid_iswc("T-034.524.680-2")


def test_code_collisions_are_redrawn() -> None:
    codes = assign_codes([f"W{i:010x}#0" for i in range(20_000)])
    assert len({c[0] for c in codes.values()}) == 20_000
    assert len({c[1] for c in codes.values()}) == 20_000


def test_tokens_validate_and_match_their_hash(built: dict) -> None:
    tok = Tokenizer()
    tokens = _read(built, "tokens.parquet").to_pylist()
    works = {w["work_id"]: w for w in _read(built, "works.parquet").to_pylist()}
    assert {t["work_id"] for t in tokens} == set(works)
    for row in tokens:
        ids = [int(i) for i in row["tokens"]]
        tok.validate(ids)
        assert ids[-1] == tok.eos
        assert tok.decode(ids)[1] == f"<style:{row['style']}>"
        assert row["n_tokens"] == len(ids) == works[row["work_id"]]["n_tokens"]
        assert row["token_sha256"] == token_sha256(ids)
    assert len({t["token_sha256"] for t in tokens}) == len(tokens)


def test_splits_sum_to_exactly_one(built: dict) -> None:
    splits = _read(built, "splits.parquet")
    assert splits.schema.field("share").type == SHARE_TYPE
    holders = {h["rights_holder_id"]: h for h in _read(built, "rights_holders.parquet").to_pylist()}
    totals: dict[tuple[str, str], Decimal] = {}
    for row in splits.to_pylist():
        assert row["rights_holder_id"] in holders
        assert row["right_type"] in ("publishing", "master")
        assert row["share"] > 0 and row["effective_to"] is None
        key = (row["work_id"], row["right_type"])
        totals[key] = totals.get(key, Decimal(0)) + row["share"]
    work_ids = set(_read(built, "works.parquet")["work_id"].to_pylist())
    assert set(totals) == {(w, rt) for w in work_ids for rt in ("publishing", "master")}
    assert all(t == Decimal("1.000000") for t in totals.values())


def test_rights_holders_are_synthetic_and_well_formed(built: dict) -> None:
    holders = _read(built, "rights_holders.parquet").to_pylist()
    assert {h["kind"] for h in holders} <= {"publisher", "label", "estate"}
    assert all(h["payout_currency"] == "USD" for h in holders)
    assert all(Decimal(h["min_payout_usd"]) >= 0 for h in holders)
    assert any(not h["name"].isascii() for h in holders)


def test_rights_scale_to_a_full_catalog(tmp_path: Path) -> None:
    # The full catalog has thousands of works; check the split shape there without parsing.
    n = 3000
    ids = [f"W{i:010x}#0" for i in range(n)]
    (tmp_path / "catalog").mkdir()
    pq.write_table(pa.table({"work_id": ids}), tmp_path / "catalog" / "works.parquet")
    stats = build_rights(tmp_path)
    assert 40 <= stats["holders"] <= 80
    assert 0.25 <= stats["multi_holder_share"] <= 0.35
    splits = pq.read_table(tmp_path / "catalog" / "splits.parquet").to_pylist()
    per_holder: dict[str, int] = {}
    for row in splits:
        per_holder[row["rights_holder_id"]] = per_holder.get(row["rights_holder_id"], 0) + 1
    top = sorted(per_holder.values(), reverse=True)
    assert top[0] > 5 * top[len(top) // 2]  # a few holders own many works
