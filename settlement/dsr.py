"""DDEX DSR-style royalty report: one flat-file TSV per rights holder, platform and period.

In the spirit of the DDEX DSR flat-file standard (HEAD, summary records, blocks of records,
FOOT), not a certified profile: training royalties have no DSR profile yet. Where we deviate
and why is written down in docs/statements.md. Record order in a file:

    HEAD
    SY02 ...             one per territory x currency of the platform (summary records)
    MW01 / AS01 / RU01.. one block per work: the composition (ISWC), the recording (ISRC),
                         then one royalty line per right x territory
    FOOT                 line, summary, block counts and the control total of the royalty lines

Everything in a file comes from the warehouse and the calculation it reports on (its creation
time is the calculation's `calculated_at`), so rebuilding a period gives the same bytes.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from datetime import datetime
from decimal import Decimal

MESSAGE_VERSION = "dsrf/tributary-training/1.0"
PROFILE = "TrainingRoyaltyProfile"
PROFILE_VERSION = "0.1"
SENDER_ID = "TRIBUTARY"
SENDER_NAME = "Tributary"
COMMERCIAL_MODEL = "TrainingRoyalty"
USE_TYPE = "AIGeneration"
# One file per holder and platform covers all the platform's territories.
FILE_TERRITORY = "MULTI"

RECORDS = {
    "HEAD": ["RecordType", "MessageVersion", "Profile", "ProfileVersion", "MessageId",
             "MessageCreatedDateTime", "FileNumber", "NumberOfFiles", "UsageStartDate",
             "UsageEndDate", "SenderPartyId", "SenderName", "ServiceDescription",
             "RecipientPartyId", "RecipientName", "CalculationRunId"],
    "SY02": ["RecordType", "SummaryRecordId", "DistributionChannel", "CommercialModel", "UseType",
             "Territory", "ServiceDescription", "Usages", "NetRevenue", "Currency",
             "RoyaltyAmount", "NumberOfRoyaltyLines"],
    "MW01": ["RecordType", "BlockId", "MusicalWorkId", "ISWC", "Title", "ComposerAuthor"],
    "AS01": ["RecordType", "BlockId", "ResourceReference", "ISRC", "Title"],
    "RU01": ["RecordType", "BlockId", "SummaryRecordId", "TransactionId", "RightType", "Territory",
             "Usages", "Currency", "RoyaltyAmount"],
    "FOOT": ["RecordType", "NumberOfLinesInFile", "NumberOfLinesInReport", "NumberOfSummaryRecords",
             "NumberOfBlocksInFile", "NumberOfBlocksInReport", "NumberOfRoyaltyLines",
             "TotalRoyaltyAmount", "Currency"],
}  # fmt: skip


def cell(value: object) -> str:
    """A TSV cell: '.' decimals, no thousands separators, no tabs or line breaks inside."""
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value, "f")
    return " ".join(str(value).split())


def file_component(text: str) -> str:
    """A part of a DSR file name: `_` separates the parts, so it may not appear inside one."""
    from settlement.statements import safe_name

    return safe_name(text).replace("_", "-")


def transaction_id(
    period: str, platform: str, holder: str, work: str, right: str, territory: str
) -> str:
    """Stable across reruns: it names what the line is, not when it was made."""
    key = f"{period}\x1f{platform}\x1f{holder}\x1f{work}\x1f{right}\x1f{territory}"
    return "TRB" + hashlib.sha256(key.encode()).hexdigest()[:24].upper()


def file_name(holder: str, platform: str, period: str, created: datetime) -> str:
    parts = ["DSR", file_component(holder), SENDER_ID, file_component(platform), period,
             FILE_TERRITORY, "1of1", created.strftime("%Y%m%dT%H%M%S")]  # fmt: skip
    return "_".join(parts) + ".tsv"


def render(
    *,
    period: str,
    usage_start: str,
    usage_end: str,
    holder: dict,
    platform: str,
    lines: list[dict],
    usage: list[dict],
    created: datetime,
    run_id: str,
) -> tuple[str, bytes]:
    """(file name, bytes) of one holder's DSR-style report for one platform.

    `lines` are the holder's royalty lines on the platform (work x right x territory, cents),
    `usage` the platform's generations and revenue per territory."""
    holder_id = holder["rights_holder_id"]
    message_id = (
        f"TRB-DSR-{period}-{file_component(holder_id)}-{file_component(platform)}-"
        + (hashlib.sha256(run_id.encode()).hexdigest()[:12])
    )
    rows: list[list[object]] = [[
        "HEAD", MESSAGE_VERSION, PROFILE, PROFILE_VERSION, message_id,
        created.strftime("%Y-%m-%dT%H:%M:%SZ"), 1, 1, usage_start, usage_end,
        SENDER_ID, SENDER_NAME, platform, holder_id, holder["name"], run_id,
    ]]  # fmt: skip

    # Summary records: every territory where the platform was used, with what this holder
    # earned there (a territory can show usage and 0.00 royalty).
    per_territory: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for line in lines:
        per_territory[(line["territory"], line["currency"])].append(line)
    summary_ids: dict[tuple[str, str], str] = {}
    keys = sorted({(u["territory"], u["currency"]) for u in usage} | set(per_territory))
    usage_by_key = {(u["territory"], u["currency"]): u for u in usage}
    for number, key in enumerate(keys, start=1):
        summary_ids[key] = f"SR{number:04d}"
        u = usage_by_key.get(key, {"usages": 0, "revenue": Decimal(0)})
        royalty = sum((r["amount"] for r in per_territory.get(key, [])), Decimal("0.00"))
        rows.append(["SY02", summary_ids[key], platform, COMMERCIAL_MODEL, USE_TYPE, key[0], platform,
                     u["usages"], u["revenue"], key[1], royalty, len(per_territory.get(key, []))])  # fmt: skip

    blocks: dict[str, list[dict]] = defaultdict(list)
    for line in lines:
        blocks[line["work_id"]].append(line)
    n_royalty = 0
    for number, work_id in enumerate(sorted(blocks), start=1):
        block_id = f"BL{number:06d}"
        work = blocks[work_id][0]
        rows.append(["MW01", block_id, work_id, work["iswc"], work["title"], work["composer"]])
        rows.append(["AS01", block_id, work_id, work["isrc"], work["title"]])
        for line in sorted(blocks[work_id], key=lambda r: (r["right_type"], r["territory"])):
            rows.append([
                "RU01", block_id, summary_ids[(line["territory"], line["currency"])],
                transaction_id(period, platform, holder_id, work_id, line["right_type"], line["territory"]),
                line["right_type"], line["territory"], line["usages"], line["currency"], line["amount"],
            ])  # fmt: skip
            n_royalty += 1
    total = sum((r["amount"] for r in lines), Decimal("0.00"))
    currencies = sorted({r["currency"] for r in lines} | {k[1] for k in keys})
    n_lines = len(rows) + 1
    rows.append(["FOOT", n_lines, n_lines, len(keys), len(blocks), len(blocks), n_royalty, total,
                 ",".join(currencies)])  # fmt: skip
    text = "".join("\t".join(cell(v) for v in row) + "\n" for row in rows)
    return file_name(holder_id, platform, period, created), text.encode()
