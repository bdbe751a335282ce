"""DDEX DSR flat-file royalty report: one TSV per rights holder, platform and period, in the
Royalty Reporting Profile (DSR Part 6) of the DDEX Digital Sales Reporting Message Suite.

Why this profile: it is the DSR profile for reporting royalties actually due to a rights
controller (not the usage data a licensor needs to compute them), which is what a training
royalty statement is. Record types and the order of their cells follow the profile's record
definitions as DDEX publishes them for RoyaltyReportingProfile 1.0.1 (DSR Part 8 record types;
the schema in DDEX's own `dsrf` library, `schemas/RoyaltyReportingProfile/1.0.1`). A file is

    HEAD                     the message header
    SY07 ...                 one summary per territory x right type the holder holds
    AS01                     a block per work: the recording (ISRC),
      MW01.01                the musical work (ISWC, composer),
      SU03.01 LI01 [LI01]    per territory: the usage (generations) and the work's money, then
                             the holder's royalty per right (share %, exact, cents)
    FOOT                     line, summary and block counts

Lines beginning with `#` are records to be ignored (DSR Part 1): the cell names of each record
type for a person reading the file, and the training-royalty facts that no DSR cell holds
(see docs/statements.md, "Where we deviate"). `validate` checks a file against these record
definitions; the tests run it on every file the statements build writes.

Everything in a file comes from the warehouse and the calculation it reports on (its creation
time is the calculation's `calculated_at`), so rebuilding a period gives the same bytes.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation

from settlement import cells

PROFILE = "RoyaltyReportingProfile"
PROFILE_VERSION = "1.0.1"
# dsrf/<Part 1 architecture>/<allowed-value sets>/<Part 8 record type definitions>: the
# versions the RoyaltyReportingProfile 1.0.1 records were published with.
MESSAGE_VERSION = "dsrf/1.1/1.2/1.2"
# Tributary has no DDEX Party Id yet: this placeholder has the DPID form (PADPIDA + letters and
# digits) and is replaced by setting TRIBUTARY_DDEX_DPID once DDEX issues one.
SENDER_DPID = os.environ.get("TRIBUTARY_DDEX_DPID", "PADPIDATRIBUTARY")
SENDER_NAME = "Tributary"
# DDEX allowed values: the pool is a revenue share fixed by the platform's licence contract
# (CommercialModelType AsPerContract); the use itself, a model trained on the work generating
# music, has no DDEX UseType, so it is a user-defined value in the standard's own syntax.
COMMERCIAL_MODEL = "AsPerContract"
USE_TYPE = "UserDefined AiModelTrainingAndGeneration"
# Tributary's right types as DDEX RightsCoverage: copying a composition into a model's
# training set and generating from it exercises the work's reproduction (mechanical) right; the
# recording's owner controls the reproduction of the sound recording.
RIGHTS_TYPE = {"publishing": "MechanicalRight", "master": "ReproductionRight"}
RESOURCE_TYPE = "SoundRecording"
# One file per holder and platform covers all the platform's territories.
FILE_TERRITORY = "MULTI"

# Record definitions: cell names in order, and for each cell M (mandatory) or O (optional) and
# its type. Types: str, int, dec, date (YYYY[-MM[-DD]]), datetime (RFC 3339), or a pattern
# / allowed-value set named below.
RECORDS: dict[str, list[tuple[str, str, str]]] = {
    "HEAD": [("RecordType", "M", "fixed"), ("MessageVersion", "M", "messageversion"),
             ("Profile", "M", "profile"), ("ProfileVersion", "M", "str"), ("MessageId", "M", "str"),
             ("MessageCreatedDateTime", "M", "datetime"), ("FileNumber", "M", "int"),
             ("NumberOfFiles", "M", "int"), ("UsageStartDate", "M", "date"), ("UsageEndDate", "M", "date"),
             ("SenderPartyId", "M", "dpid"), ("SenderName", "M", "str"),
             ("ServiceDescription", "O", "service"), ("RecipientPartyId", "O", "dpid"),
             ("RecipientName", "O", "str"), ("RepresentedRepertoire", "O", "str")],
    "SY07": [("RecordType", "M", "fixed"), ("SummaryRecordId", "M", "str"),
             ("DistributionChannel", "O", "str"), ("DistributionChannelDPID", "O", "dpid"),
             ("CommercialModel", "O", "commercialmodel"), ("UseType", "O", "usetype"),
             ("Territory", "M", "territory"), ("RightsType", "M", "rightscoverage"),
             ("ServiceDescription", "O", "service"), ("Usages", "M", "int"), ("Users", "O", "int"),
             ("Currency", "M", "currency"), ("NetRevenue", "O", "dec"), ("RightsController", "O", "str"),
             ("RightsControllerPartyId", "O", "partyid"), ("AllocatedUsages", "O", "dec"),
             ("AllocatedRevenue", "M", "dec"), ("AllocatedNetRevenue", "M", "dec")],
    "AS01": [("RecordType", "M", "fixed"), ("BlockId", "M", "str"), ("ResourceReference", "M", "str"),
             ("DspResourceId", "M", "str"), ("ISRC", "O", "isrc"), ("Title", "M", "str"),
             ("SubTitle", "O", "str"), ("DisplayArtistName", "M", "str"),
             ("DisplayArtistPartyId", "O", "partyid"), ("Duration", "M", "duration"),
             ("ResourceType", "M", "resourcetype")],
    "MW01.01": [("RecordType", "M", "fixed"), ("BlockId", "M", "str"), ("DspWorkId", "M", "str"),
                ("ISWC", "O", "iswc"), ("Title", "M", "str"), ("SubTitle", "O", "str"),
                ("ComposerAuthor", "O", "str"), ("ComposerAuthorPartyId", "O", "partyid"),
                ("Arranger", "O", "str"), ("ArrangerPartyId", "O", "partyid"),
                ("MusicPublisher", "O", "str"), ("MusicPublisherPartyId", "O", "partyid"),
                ("WorkContributor", "O", "str"), ("WorkContributorPartyId", "O", "partyid"),
                ("DataProvider", "O", "str"), ("ProprietaryWorkId", "O", "partyid")],
    "SU03.01": [("RecordType", "M", "fixed"), ("BlockId", "M", "str"), ("SalesTransactionId", "M", "str"),
                ("SummaryRecordId", "O", "str"), ("DspReleaseId", "M", "str"), ("Usages", "O", "int"),
                ("NetRevenue", "M", "dec"), ("ValidityPeriodStart", "O", "date"),
                ("ValidityPeriodEnd", "O", "date")],
    "LI01": [("RecordType", "M", "fixed"), ("BlockId", "M", "str"), ("SummaryRecordId", "O", "str"),
             ("RightsController", "M", "str"), ("RightsControllerPartyId", "O", "partyid"),
             ("RightsControllerWorkId", "O", "str"), ("RightSharePercentage", "M", "dec"),
             ("RightsType", "O", "rightscoverage"), ("AllocatedNetRevenue", "M", "dec"),
             ("AllocatedAmount", "M", "dec")],
    "FOOT": [("RecordType", "M", "fixed"), ("NumberOfLinesInFile", "M", "int"),
             ("NumberOfLinesInReport", "O", "int"), ("NumberOfSummaryRecords", "M", "int"),
             ("NumberOfBlocksInFile", "M", "int"), ("NumberOfBlocksInRecord", "O", "int")],
}  # fmt: skip
# Mandatory cells we cannot fill truthfully (docs/statements.md, "Where we deviate"): the
# warehouse holds no recording durations.
ALLOWED_EMPTY = {("AS01", "Duration")}


def file_component(text: str) -> str:
    """A part of a DSR file name: `_` separates the parts, so it may not appear inside one."""
    from settlement.statements import safe_name

    return safe_name(text).replace("_", "-")


def service_description(platform: str) -> str:
    """The ServiceDescription cell and file-name part: no spaces or underscores (Part 8)."""
    return re.sub(r"[^A-Za-z0-9.-]", "-", platform) or "-"


def transaction_id(period: str, platform: str, holder: str, work: str, territory: str) -> str:
    """Stable across reruns: it names what the usage is, not when it was written."""
    key = f"{period}\x1f{platform}\x1f{holder}\x1f{work}\x1f{territory}"
    return "TRB" + hashlib.sha256(key.encode()).hexdigest()[:24].upper()


def file_name(holder: str, platform: str, period: str, created: datetime) -> str:
    parts = ["DSR", file_component(holder), SENDER_NAME, service_description(platform), period,
             FILE_TERRITORY, "1of1", created.strftime("%Y%m%dT%H%M%S")]  # fmt: skip
    return "_".join(parts) + ".tsv"


def _iswc(value: str | None) -> str:
    """T-123.456.789-0 (the warehouse's display form) as the DSR's T1234567890."""
    compact = re.sub(r"[^0-9A-Za-z]", "", value or "").upper()
    return compact if re.fullmatch(r"T\d{10}", compact) else ""


def _isrc(value: str | None) -> str:
    compact = re.sub(r"[^0-9A-Za-z]", "", value or "").upper()
    return compact if re.fullmatch(r"[A-Z]{2}[A-Z0-9]{3}\d{7}", compact) else ""


def party_id(identifier: str) -> str:
    """A proprietary party or work id in the DDEX `namespace::id` syntax; the namespace is the
    DPID of the party that issued the id (Tributary)."""
    return f"{SENDER_DPID}::{identifier}"


def _percent(share: Decimal | None) -> Decimal | None:
    """An ownership share as DDEX writes it: a quarter is 25, not 0.25."""
    return None if share is None else (share * 100).normalize() + Decimal(0)


def render(
    *,
    period: str,
    usage_start: str,
    usage_end: str,
    holder: dict,
    platform: str,
    platform_name: str,
    lines: list[dict],
    usage: list[dict],
    created: datetime,
    run_id: str,
) -> tuple[str, bytes]:
    """(file name, bytes) of one holder's royalty report for one platform.

    `lines` are the holder's royalty lines on the platform (work x right x territory: usages,
    the work's exact money, the holder's exact part and cents), `usage` the platform's
    generations and revenue per territory."""
    holder_id, holder_name = holder["rights_holder_id"], holder["name"]
    service = service_description(platform)
    message_id = (f"TRB-DSR-{period}-{file_component(holder_id)}-{file_component(platform)}-"
                  + hashlib.sha256(run_id.encode()).hexdigest()[:12])  # fmt: skip
    records: list[list[object]] = [[
        "HEAD", MESSAGE_VERSION, PROFILE, PROFILE_VERSION, message_id,
        created.strftime("%Y-%m-%dT%H:%M:%SZ"), 1, 1, usage_start, usage_end, SENDER_DPID, SENDER_NAME,
        service, "", holder_name, "",
    ]]  # fmt: skip
    comments = [["#" + name, *[c for c, _, _ in cells_]] for name, cells_ in RECORDS.items()]
    comments.append(["#Tributary", "training royalty report", f"calculation {run_id}",
                     ("amounts are the contract currency; AllocatedAmount is the cents paid, "
                      "AllocatedNetRevenue the exact amount before rounding")])  # fmt: skip

    # Summaries: every territory where the platform was used x every right the holder holds on
    # the platform, with what the holder earned there (a territory can show 0.00).
    rights = sorted({r["right_type"] for r in lines})
    usage_by_territory = {u["territory"]: u for u in usage}
    currency = next(iter({u["currency"] for u in usage} | {r["currency"] for r in lines}), "")
    territories = sorted(set(usage_by_territory) | {r["territory"] for r in lines})
    summary_id: dict[tuple[str, str], str] = {}
    summaries = []
    for territory in territories:
        for right in rights:
            key = (territory, right)
            summary_id[key] = f"SR{len(summary_id) + 1:04d}"
            mine = [r for r in lines if r["territory"] == territory and r["right_type"] == right]
            u = usage_by_territory.get(territory, {"usages": 0, "revenue": Decimal(0)})
            summaries.append([
                "SY07", summary_id[key], platform_name, "", COMMERCIAL_MODEL, USE_TYPE, territory,
                RIGHTS_TYPE[right], service, u["usages"], "", currency, u["revenue"], holder_name,
                party_id(holder_id), "",
                sum((r["amount"] for r in mine), Decimal("0.00")),
                sum((r["holder_exact"] for r in mine), Decimal("0E-9")),
            ])  # fmt: skip
    records += summaries

    blocks: dict[str, list[dict]] = defaultdict(list)
    for line in lines:
        blocks[line["work_id"]].append(line)
    for number, work_id in enumerate(sorted(blocks), start=1):
        block = f"BL{number:06d}"
        rows = blocks[work_id]
        work = rows[0]
        composer = work["composer"] or ""
        records.append(["AS01", block, "R1", work_id, _isrc(work["isrc"]), work["title"], "",
                        composer or "Unknown", "", "", RESOURCE_TYPE])  # fmt: skip
        records.append(["MW01.01", block, work_id, _iswc(work["iswc"]), work["title"], "", composer,
                        "", "", "", "", "", "", "", SENDER_NAME, party_id(work_id)])  # fmt: skip
        by_territory: dict[str, list[dict]] = defaultdict(list)
        for r in rows:
            by_territory[r["territory"]].append(r)
        for territory in sorted(by_territory):
            here = sorted(by_territory[territory], key=lambda r: r["right_type"])
            first = here[0]
            # usages and the work's money are per work and territory, the same on every right's line
            records.append(["SU03.01", block, transaction_id(period, platform, holder_id, work_id, territory),
                            "", work_id, first["usages"], first["work_exact"], usage_start, usage_end])  # fmt: skip
            for r in here:
                records.append(["LI01", block, summary_id[(territory, r["right_type"])], holder_name,
                                party_id(holder_id), "", _percent(r["ownership_share"]),
                                RIGHTS_TYPE[r["right_type"]], r["holder_exact"], r["amount"]])  # fmt: skip
    n_lines = len(records) + len(comments) + 1
    records.append(["FOOT", n_lines, n_lines, len(summaries), len(blocks), len(blocks)])
    head, body = records[0], records[1:]
    text = "".join(cells.tsv_line(r) for r in [head, *comments, *body])
    return file_name(holder_id, platform, period, created), text.encode()


# --- validation ---------------------------------------------------------------------------

_PATTERNS = {
    "messageversion": r"dsrf/\d+(\.\d+)*/\d+(\.\d+)*/\d+(\.\d+)*",
    "dpid": r"PADPIDA[a-zA-Z0-9]+",
    "partyid": r".+::.+",
    "isrc": r"[a-zA-Z]{2}[a-zA-Z0-9]{3}[0-9]{7}",
    "iswc": r"T[0-9]{10}",
    "int": r"-?\d+",
    "dec": r"-?\d+(\.\d+)?",
    "date": r"[0-9]{4}(-[0-9]{2}){0,1}(-[0-9]{2}){0,1}",
    "datetime": r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(Z|[-+][0-9]{2}:[0-9]{2})",
    "duration": r"P(?!$)(\d+Y)?(\d+M)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?",
    "service": r"[^\s_]+",
    "str": r"(?s).+",
    "fixed": r".+",
}
# DDEX allowed-value sets (AVS) for the cells used here.
_AVS = {
    "profile": {"BasicAudioProfile", "BasicAudioProfileSRB", "UGCProfile", "AudioVisualProfile",
                "AudioVisualProfileSRB", "RoyaltyReportingProfile", "RadioBroadcastProfile",
                "FinancialReportingToRecordCompaniesProfileSRB", "MasterListProfile",
                "MasterListProfileSRB"},
    "rightscoverage": {"MakeAvailableRight", "MechanicalRight", "PerformingRight", "PrintRight",
                       "ReproductionRight", "SynchronizationRight"},
    "commercialmodel": {"AdvertisementSupportedModel", "AsPerContract", "DeviceFeeModel",
                        "FreeOfChargeModel", "PayAsYouGoModel", "PerformanceRoyaltiesModel",
                        "RightsClaimModel", "SubscriptionModel", "Unknown"},
    "usetype": {"AsPerContract", "Download", "OnDemandStream", "NonInteractiveStream", "Stream",
                "Use", "Unknown", "Perform", "Webcast", "PermanentDownload"},
    "resourcetype": {"Image", "MIDI", "SheetMusic", "Software", "SoundRecording", "Text",
                     "UserDefinedResource", "Video"},
}  # fmt: skip
_USER_DEFINED = re.compile(r"UserDefined [A-Za-z0-9]+")
# A block: AS01, then per work MW01.01 and groups of SU03.01 followed by LI01 records (the
# profile also allows RU01/RU02 usage records, which these reports do not use).
BLOCK = re.compile(r"A(M+(SL+)+)+")
_BLOCK_CODE = {"AS01": "A", "MW01.01": "M", "SU03.01": "S", "LI01": "L"}


@dataclass
class Report:
    errors: list[str]
    records: dict[str, list[dict[str, str]]]

    @property
    def ok(self) -> bool:
        return not self.errors


def _territories() -> set[str]:
    import pycountry

    return {c.alpha_2 for c in pycountry.countries} | {"Worldwide"}


def _currencies() -> set[str]:
    import pycountry

    return {c.alpha_3 for c in pycountry.currencies}


def _cell_ok(kind: str, value: str, territories: set[str], currencies: set[str]) -> bool:
    if kind in _PATTERNS:
        return re.fullmatch(_PATTERNS[kind], value) is not None
    if kind == "territory":
        return value in territories
    if kind == "currency":
        return value in currencies
    if kind in ("rightscoverage", "commercialmodel", "usetype"):
        return value in _AVS[kind] or _USER_DEFINED.fullmatch(value) is not None
    return value in _AVS[kind]


def _unescape(cell: str) -> str:
    return re.sub(r"\\(.)", r"\1", cell)


def _dec(value: str) -> Decimal:
    try:
        return Decimal(value)
    except InvalidOperation:
        return Decimal(0)


def validate(data: bytes, name: str | None = None) -> Report:
    """Check one DSR file against the Royalty Reporting Profile's record definitions: UTF-8,
    record order (HEAD, SY07 summaries, blocks, FOOT) and each block's record sequence, the
    cell count of every record type, mandatory cells, cell types and DDEX allowed values, the
    MessageVersion form, the FOOT control counts, summary references and the money control
    totals (each summary's AllocatedRevenue and AllocatedNetRevenue are the sums of its LI01
    records), and the file name against the HEAD record."""
    errors: list[str] = []
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Report([f"not UTF-8: {exc}"], {})
    if text.startswith(cells.BOM):
        errors.append("a byte-order mark precedes the HEAD record")
    if not text.endswith("\n"):
        errors.append("the last record is not terminated by a line feed")
    lines = text.split("\n")[:-1] if text.endswith("\n") else text.split("\n")
    territories, currencies = _territories(), _currencies()
    records: dict[str, list[dict[str, str]]] = defaultdict(list)
    order: list[tuple[str, dict[str, str]]] = []
    for number, line in enumerate(lines, start=1):
        if line.startswith("#") or line == "":
            continue  # records to be ignored, empty records (Part 1)
        raw = re.split(r"(?<!\\)\t", line)
        kind = raw[0]
        if kind not in RECORDS:
            errors.append(f"line {number}: record type {kind!r} is not part of {PROFILE} {PROFILE_VERSION}")
            continue
        spec = RECORDS[kind]
        if len(raw) != len(spec):
            errors.append(f"line {number}: {kind} has {len(raw)} cells, the record definition {len(spec)}")
            continue
        values = {}
        for (cell_name, need, ctype), value in zip(spec, raw, strict=True):
            value = _unescape(value)
            values[cell_name] = value
            if value == "":
                if need == "M" and (kind, cell_name) not in ALLOWED_EMPTY:
                    errors.append(f"line {number}: {kind} mandatory cell {cell_name} is empty")
                continue
            if ctype == "fixed":
                if value != kind:
                    errors.append(f"line {number}: RecordType {value!r}")
            elif not _cell_ok(ctype, value, territories, currencies):
                errors.append(f"line {number}: {kind}.{cell_name} {value!r} is not a valid {ctype}")
        records[kind].append(values)
        order.append((kind, values))

    kinds = [k for k, _ in order]
    if not kinds or kinds[0] != "HEAD" or kinds.count("HEAD") != 1:
        errors.append("the first record must be the only HEAD record")
    if not kinds or kinds[-1] != "FOOT" or kinds.count("FOOT") != 1:
        errors.append("the last record must be the only FOOT record")
    if lines and not lines[0].startswith("HEAD\t"):
        errors.append("HEAD must be the first line of the file")
    body = kinds[1:-1]
    n_summaries = 0
    while n_summaries < len(body) and body[n_summaries] == "SY07":
        n_summaries += 1
    if n_summaries == 0:
        errors.append("no SY07 summary record after HEAD")
    block_ids: list[str] = []
    blocks: dict[str, str] = {}
    for kind, values in order[1 + n_summaries:-1]:
        if kind == "SY07":
            errors.append("a SY07 summary record after the first block")
            continue
        if kind not in _BLOCK_CODE:
            errors.append(f"record {kind} inside the blocks")
            continue
        block = values["BlockId"]
        if not block_ids or block_ids[-1] != block:
            if block in blocks:
                errors.append(f"block {block} is split: its records are not contiguous")
            block_ids.append(block)
        blocks[block] = blocks.get(block, "") + _BLOCK_CODE[kind]
    for block, sequence in blocks.items():
        if not BLOCK.fullmatch(sequence):
            errors.append(f"block {block}: record sequence {sequence} is not AS01 (MW01.01 (SU03.01 LI01+)+)+")

    head = records["HEAD"][0] if records["HEAD"] else {}
    foot = records["FOOT"][0] if records["FOOT"] else {}
    if head:
        if head.get("Profile") != PROFILE or head.get("ProfileVersion") != PROFILE_VERSION:
            errors.append(f"HEAD names profile {head.get('Profile')} {head.get('ProfileVersion')}")
        if int(head.get("FileNumber") or 0) > int(head.get("NumberOfFiles") or 0):
            errors.append("HEAD FileNumber is larger than NumberOfFiles")
    if foot:
        expected = {"NumberOfLinesInFile": len(lines), "NumberOfLinesInReport": len(lines),
                    "NumberOfSummaryRecords": len(records["SY07"]), "NumberOfBlocksInFile": len(blocks),
                    "NumberOfBlocksInRecord": len(blocks)}  # fmt: skip
        for cell_name, value in expected.items():
            if foot.get(cell_name) != str(value):
                errors.append(f"FOOT {cell_name} is {foot.get(cell_name)}, the file has {value}")

    summaries = {s["SummaryRecordId"]: s for s in records["SY07"]}
    if len(summaries) != len(records["SY07"]):
        errors.append("SummaryRecordId repeats")
    amounts: dict[str, Decimal] = defaultdict(Decimal)
    exacts: dict[str, Decimal] = defaultdict(Decimal)
    for li in records["LI01"]:
        sid = li["SummaryRecordId"]
        if sid not in summaries:
            errors.append(f"LI01 points at summary {sid!r}, which does not exist")
            continue
        if li["RightsType"] and li["RightsType"] != summaries[sid]["RightsType"]:
            errors.append(f"LI01 of summary {sid} reports {li['RightsType']}, the summary {summaries[sid]['RightsType']}")
        amounts[sid] += _dec(li["AllocatedAmount"])
        exacts[sid] += _dec(li["AllocatedNetRevenue"])
    for sid, s in summaries.items():
        if _dec(s["AllocatedRevenue"]) != amounts.get(sid, Decimal(0)):
            errors.append(f"SY07 {sid} AllocatedRevenue {s['AllocatedRevenue']} is not the sum of its LI01 "
                          f"records ({amounts.get(sid, Decimal(0))})")
        if _dec(s["AllocatedNetRevenue"]) != exacts.get(sid, Decimal(0)):
            errors.append(f"SY07 {sid} AllocatedNetRevenue {s['AllocatedNetRevenue']} is not the sum of its "
                          f"LI01 records ({exacts.get(sid, Decimal(0))})")
    if name is not None and head:
        errors += _check_name(name, head)
    return Report(errors, dict(records))


_NAME = re.compile(r"DSR_([^_]+)_([^_]+)_([^_]+)_(\d{4}(?:-\d{2,3}|-Q\d|-\d{2}-\d{2})?)_([^_]*)_(\d+)of(\d+)"
                   r"_(\d{8}T\d{6})\.tsv(?:\.gz)?")


def _check_name(name: str, head: dict[str, str]) -> list[str]:
    """DSR_Recipient_Sender_Service_Period_Territory_xofy_Created.tsv (Part 1 file naming)."""
    match = _NAME.fullmatch(name)
    if not match:
        return [f"file name {name!r} does not follow DSR_Recipient_Sender_Service_Period_Territory_xofy_Created.tsv"]
    _, sender, service, _, _, x, y, created = match.groups()
    errors = []
    if sender not in (head.get("SenderPartyId"), head.get("SenderName")):
        errors.append(f"file name sender {sender!r} is neither SenderPartyId nor SenderName")
    if service != head.get("ServiceDescription"):
        errors.append(f"file name service {service!r} differs from HEAD ServiceDescription")
    if (x, y) != (head.get("FileNumber"), head.get("NumberOfFiles")):
        errors.append(f"file name {x}of{y} differs from HEAD FileNumber/NumberOfFiles")
    if created != re.sub(r"[-:]", "", head.get("MessageCreatedDateTime", ""))[:15]:
        errors.append("file name creation time differs from HEAD MessageCreatedDateTime")
    return errors
