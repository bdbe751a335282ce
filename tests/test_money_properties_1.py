"""Money invariants, shard 1 of the property in tests/money_property.py (which says what is
checked and how the shards share the cases and the TRIBUTARY_PROPERTY_EXAMPLES budget)."""

from __future__ import annotations

import pytest
from hypothesis import given
from money_property import month_db, months, no_cent_appears_or_vanishes, shard_settings


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    yield from month_db(tmp_path_factory)


@shard_settings(1)
@given(case=months(shard=1))
def test_no_cent_appears_or_vanishes_1(db, case):
    no_cent_appears_or_vanishes(db, case)
