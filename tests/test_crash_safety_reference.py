"""kill -9 at any instant, then the same command again (issue 13; what every rerun must leave:
tests/test_crash_safety_calculate.py). Here: the reference data: `fx set`, `splits change` and
`platforms add` (each one small transaction, about 0.2 s: their 20 instants fall within that)
and `catalog import` of TRIBUTARY_KILL_CATALOG_WORKS works (default 14000: the import runs
about a second), into an empty warehouse.

The catalog import killed after its transaction committed is also run deterministically: its
rerun validated the file against the stored catalog with a quadratic loop (about 280 s for 12000
works on 2 cores) and stalled the kill series."""

from __future__ import annotations

import csv
import os
from datetime import date
from decimal import Decimal

import pytest
from kill_states import killed_after, series

from settlement.catalog_csv import check_split_sums

WORKS = int(os.environ.get("TRIBUTARY_KILL_CATALOG_WORKS", "14000"))


@pytest.fixture(scope="module")
def catalog_argv(tmp_path_factory) -> list[str]:
    folder = tmp_path_factory.mktemp("catalog")
    with (folder / "works.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["work_id", "iswc", "isrc", "title", "composer", "collection", "style", "source"])
        w.writerows([f"W{i:06d}", f"T-{i % 1000:03d}.000.000-0", f"QZAAA{i:07d}", f"Work {i}", "Anon.", "c", "bach", ""]
                    for i in range(WORKS))  # fmt: skip
    with (folder / "holders.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["rights_holder_id", "name", "kind", "payout_currency", "min_payout"])
        w.writerows([f"RH{i:04d}", f"Holder {i}", "publisher", "USD", "10.00"] for i in range(200))
    with (folder / "splits.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["work_id", "right_type", "rights_holder_id", "share", "effective_from", "effective_to"])
        for i in range(WORKS):
            w.writerow([f"W{i:06d}", "publishing", f"RH{i % 200:04d}", "1", "2020-01-01", ""])
            w.writerow([f"W{i:06d}", "master", f"RH{(i + 1) % 200:04d}", "0.5", "2020-01-01", ""])
            w.writerow([f"W{i:06d}", "master", f"RH{(i + 2) % 200:04d}", "0.5", "2020-01-01", ""])
    return ["catalog", "import", "--works", str(folder / "works.csv"), "--holders", str(folder / "holders.csv"),
            "--splits", str(folder / "splits.csv")]  # fmt: skip


def test_kill_fx_set(kill_stages, tmp_path):
    series("fx set", kill_stages, "seeded",
           ["fx", "set", "--period", "2026-11", "--from", "GBP", "--to", "USD", "--rate", "1.2705", "--source", "BoE"],
           tmp_path)  # fmt: skip


def test_kill_splits_change(kill_stages, tmp_path):
    series("splits change", kill_stages, "seeded",
           ["splits", "change", "--work", "W00001", "--right", "master", "--from", "2026-11-01",
            "--holder", "RH005=0.7", "--holder", "RH006=0.3"], tmp_path)  # fmt: skip


def test_kill_platforms_add(kill_stages, tmp_path):
    series("platforms add", kill_stages, "seeded", ["platforms", "add", "p2", "Platform Two", "p2_conn"], tmp_path)


def test_kill_catalog_import(kill_stages, catalog_argv, tmp_path):
    series("catalog import", kill_stages, "empty", catalog_argv, tmp_path)


def test_catalog_import_killed_right_after_its_commit(kill_stages, catalog_argv, tmp_path):
    killed_after(kill_stages, "empty", catalog_argv, "settlement.catalog_csv:import_catalog", tmp_path)


class Rows(list):
    """A list that counts how often it is walked through."""

    walks = 0

    def __iter__(self):
        self.walks += 1
        return super().__iter__()


def test_checking_an_import_against_the_stored_catalog_walks_the_file_once():
    """The check of a re-import rebuilt the set of rights the file touches once per stored
    split (36000 x 36000 for the catalog above); it walks the file's rows a fixed number of
    times, however many splits are stored."""
    def splits(n):
        return [{"work_id": f"W{i:04d}", "right_type": "publishing", "rights_holder_id": "RH1", "share": Decimal(1),
                 "effective_from": date(2020, 1, 1), "effective_to": None} for i in range(n)]  # fmt: skip

    new = Rows(splits(300))
    assert check_split_sums(new, splits(300)) == []
    assert new.walks <= 3
