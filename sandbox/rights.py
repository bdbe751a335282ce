"""SYNTHETIC rights data for the sandbox catalog: holders and ownership splits.

Every work in the sandbox catalog is in the public domain; nobody collects royalties on it.
To exercise settlement end to end we invent, deterministically from a seed, who "owns" the
publishing and master rights of each work. The holder names, their kinds, minimum payouts and
every split below are FICTITIOUS: any resemblance to a real company or estate is accidental,
and none of it may be read as a statement about the real rights in these works.

Written under ``HOME/catalog``:

* ``rights_holders.parquet`` - rights_holder_id, name, kind (publisher|label|estate),
  payout_currency, min_payout_usd (decimal string);
* ``splits.parquet`` - work_id, right_type (publishing|master), rights_holder_id,
  share decimal128(9,6), effective_from, effective_to. For every work and right type the
  shares sum to exactly 1.000000.

Shape of the invented market: about 70% of works have a single holder per right type, the
rest two or three; holder popularity follows a Zipf-like curve so a few holders own many
works, as in real catalogs, which is what makes statement sizes and payout thresholds
interesting. Splits of a work depend only on (seed, work_id, right type, number of holders),
so adding works does not reshuffle the others as long as the holder count is unchanged.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import os
import random
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

SHARE_TYPE = pa.decimal128(9, 6)
SHARE_UNITS = 1_000_000  # 1.000000 in the smallest unit decimal128(9,6) can hold
EFFECTIVE_FROM = dt.date(2020, 1, 1)
SINGLE_HOLDER_RATE = 0.70
MIN_HOLDERS, MAX_HOLDERS = 4, 80

# Fictitious names. Kept in a fixed order: holder ids are assigned by position.
PUBLISHERS: tuple[str, ...] = (
    "Northgate Music Publishing",
    "Édition Müller & Söhne",
    "東京音楽出版",
    "Harrow & Vale Songs",
    "Blue Meridian Publishing",
    "Casa Editrice Lombardi",
    "Kestrel Lane Music",
    "Fjordlys Musikkforlag",
    "Ostrava Hudební Nakladatelství",
    "Saltmarsh Songs Ltd",
    "Éditions de la Rive Gauche",
    "Brightwater Publishing Group",
    "Palisade Music Rights",
    "Amber Coast Publishing",
    "Ediciones Sierra Alta",
    "Millbrook Catalog Partners",
    "Wolkenstein Verlag",
    "Redfern & Hale Music",
    "Cedar Hollow Publishing",
    "Lantern Row Songs",
    "Κυκλάδες Μουσικές Εκδόσεις",
    "Quarry Hill Music",
    "Greywether Publishing",
    "Iron Bridge Songs",
    "Willowmere Editions",
    "Edizioni Musicali Corvina",
    "Tallgrass Publishing",
    "Hollin Crag Music",
    "Seabrook & Finch",
    "Editora Música Atlântica",
    "Lindenhof Musikverlag",
    "Copperleaf Songs",
)
LABELS: tuple[str, ...] = (
    "Riverbend Records",
    "Stoneleigh Recordings",
    "Helix Audio Works",
    "Marigold Sound",
    "Tidewater Records",
    "Nordlicht Tonträger",
    "Cobalt Hour Records",
    "Juniper Street Label",
    "Foxglove Phonographic",
    "Sunken Bell Records",
    "Parallax Masters",
    "Vesper Lane Audio",
    "Kettle Drum Records",
    "Orchard Press Recordings",
    "Salt & Cedar Records",
    "Wildfell Sound",
    "Ember Coast Records",
    "Halcyon Tape Co.",
    "Meridian Masters Ltd",
    "Larkspur Recordings",
    "Driftwood Phonograph",
    "Pale Harbor Records",
    "Sonora Vinilo",
    "Gray Owl Records",
    "Northwind Recordings",
    "Basalt Records",
    "Thistledown Audio",
    "Quayside Phonographic",
    "Morrow & Pike Records",
    "Lumen Tape Works",
    "Rookery Records",
    "Silver Birch Masters",
)
ESTATES: tuple[str, ...] = (
    "Estate of Margarethe Albrecht",
    "The Okonkwo Family Trust",
    "Estate of Siobhán Ní Bhriain",
    "Harland Heirs Trust",
    "Estate of Giuseppe Ferraro",
    "The Lindqvist Estate",
    "Estate of Amelia Thornbury",
    "Rosenthal Family Estate",
    "Estate of Tomás Echeverría",
    "The Whitcombe Trust",
    "Estate of Dvořák-Novák",
    "Estate of Hana Kobayashi",
    "The Abernethy Estate",
    "Estate of Pieter van Dam",
    "The Castellane Heirs",
    "Estate of Ruth Adeyemi",
)
MIN_PAYOUTS: tuple[str, ...] = ("0.00", "5.00", "10.00", "25.00", "50.00")

HOLDERS_SCHEMA = pa.schema(
    [
        ("rights_holder_id", pa.string()),
        ("name", pa.string()),
        ("kind", pa.string()),
        ("payout_currency", pa.string()),
        ("min_payout_usd", pa.string()),
    ]
)
SPLITS_SCHEMA = pa.schema(
    [
        ("work_id", pa.string()),
        ("right_type", pa.string()),
        ("rights_holder_id", pa.string()),
        ("share", SHARE_TYPE),
        ("effective_from", pa.date32()),
        ("effective_to", pa.date32()),
    ]
)


def _rng(seed: int, *parts: str) -> random.Random:
    # A string seed is hashed with SHA-512 by `random`, so it is stable across processes and
    # Python builds, unlike hash() which is salted per process.
    return random.Random("\x1f".join([str(seed), *parts]))


def holder_count(n_works: int) -> int:
    """About 40-80 holders for a catalog of thousands of works, a handful for a test one."""
    return max(MIN_HOLDERS, min(MAX_HOLDERS, round(math.sqrt(n_works))))


def make_holders(n: int, seed: int) -> list[dict[str, str]]:
    # Interleave kinds so that even a small catalog has publishers, labels and estates, and
    # the first holders include the non-Latin names that statements must render.
    pools = {"publisher": list(PUBLISHERS), "label": list(LABELS), "estate": list(ESTATES)}
    pattern = ("publisher", "label", "publisher", "label", "estate")
    rng = _rng(seed, "holders")
    holders: list[dict[str, str]] = []
    i = 0
    while len(holders) < n:
        kind = pattern[i % len(pattern)]
        i += 1
        if not pools[kind]:
            if not any(pools.values()):
                raise ValueError(f"only {len(holders)} synthetic holder names for {n} holders")
            continue
        holders.append(
            {
                "rights_holder_id": f"RH{len(holders) + 1:04d}",
                "name": pools[kind].pop(0),
                "kind": kind,
                "payout_currency": "USD",
                "min_payout_usd": rng.choices(MIN_PAYOUTS, weights=(4, 3, 2, 1, 1))[0],
            }
        )
    return holders


def _split_units(rng: random.Random, k: int) -> list[int]:
    """k shares in millionths summing to exactly SHARE_UNITS, each at least 10%."""
    if k == 1:
        return [SHARE_UNITS]
    floor = SHARE_UNITS // 10
    free = SHARE_UNITS - k * floor
    # Whole percent points keep the invented contracts looking like real ones (e.g. 60/40).
    cuts = sorted(rng.randint(0, free // 10_000) * 10_000 for _ in range(k - 1))
    edges = [0, *cuts, free]
    units = [floor + edges[i + 1] - edges[i] for i in range(k)]
    units.sort(reverse=True)
    assert sum(units) == SHARE_UNITS
    return units


def build_rights(home: Path, seed: int = 7) -> dict:
    """Read HOME/catalog/works.parquet and write synthetic holders and splits next to it."""
    out = Path(home) / "catalog"
    work_ids = sorted(pq.read_table(out / "works.parquet", columns=["work_id"])["work_id"].to_pylist())
    holders = make_holders(holder_count(len(work_ids)), seed)
    eligible = {
        "publishing": [h["rights_holder_id"] for h in holders if h["kind"] != "label"],
        "master": [h["rights_holder_id"] for h in holders if h["kind"] != "publisher"],
    }
    # Zipf-like popularity, shuffled per right type so the biggest publisher is not also
    # the biggest label by construction.
    weights: dict[str, list[float]] = {}
    for right_type, ids in eligible.items():
        ranks = list(range(1, len(ids) + 1))
        _rng(seed, "ranks", right_type).shuffle(ranks)
        weights[right_type] = [1.0 / r**1.1 for r in ranks]

    rows: list[dict] = []
    multi = 0
    for wid in work_ids:
        work_multi = _rng(seed, wid, "multi").random() >= SINGLE_HOLDER_RATE
        for right_type in ("publishing", "master"):
            rng = _rng(seed, wid, right_type)
            ids, w = eligible[right_type], weights[right_type]
            k = min(rng.choice((2, 2, 3)) if work_multi else 1, len(ids))
            chosen: list[str] = []
            while len(chosen) < k:
                pick = rng.choices(ids, weights=w)[0]
                if pick not in chosen:
                    chosen.append(pick)
            for holder_id, units in zip(chosen, _split_units(rng, k), strict=True):
                rows.append(
                    {
                        "work_id": wid,
                        "right_type": right_type,
                        "rights_holder_id": holder_id,
                        "share": Decimal(units).scaleb(-6),
                        "effective_from": EFFECTIVE_FROM,
                        "effective_to": None,
                    }
                )
        multi += work_multi
    rows.sort(key=lambda r: (r["work_id"], r["right_type"], r["rights_holder_id"]))

    _write(pa.Table.from_pylist(holders, schema=HOLDERS_SCHEMA), out / "rights_holders.parquet")
    _write(pa.Table.from_pylist(rows, schema=SPLITS_SCHEMA), out / "splits.parquet")
    works_per_holder = Counter(r["rights_holder_id"] for r in rows)
    return {
        "holders": len(holders),
        "splits": len(rows),
        "works": len(work_ids),
        "multi_holder_share": multi / len(work_ids) if work_ids else 0.0,
        "top_holders": works_per_holder.most_common(5),
        "seed": seed,
        "digest": hashlib.sha256(
            b"".join((out / f).read_bytes() for f in ("rights_holders.parquet", "splits.parquet"))
        ).hexdigest(),
    }


def _write(table: pa.Table, path: Path) -> None:
    tmp = path.with_suffix(".parquet.tmp")
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, path)
