"""Rules for values a person or a file hands us: periods, currencies, rates, amounts, text files.

Every check raises InputError with a message that names the value and the rule, so the CLI can
print it and exit 2 instead of showing a traceback. The warehouse never sees an unchecked value.
"""

from __future__ import annotations

import codecs
import re
from datetime import date
from decimal import Decimal, InvalidOperation

import pycountry

PERIOD_RE = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
# Plain decimal notation only: "1e309", "NaN", "Infinity", "1_000" and "+5" are refused.
PLAIN_DECIMAL = re.compile(r"^-?\d+(\.\d+)?$")
FX_RATE_PLACES = 8
FX_RATE_MAX = Decimal("1e10")  # DECIMAL(18, 8) holds 10 integer digits
AMOUNT_2_MAX = Decimal("1e16")  # DECIMAL(18, 2)
EARLIEST, LATEST = date(1900, 1, 1), date(2999, 12, 31)
# Codes that ISO 4217 lists but that are not money a royalty is paid in: precious metals,
# SDRs, bond units, testing and "no currency".
_NOT_MONEY = {"XAU", "XAG", "XPT", "XPD", "XDR", "XBA", "XBB", "XBC", "XBD", "XSU", "XUA", "XTS", "XXX"}
# pycountry ships the ISO 4217 list (maintained by Debian's iso-codes); we use it rather than
# keep our own copy of ~180 codes.
ISO_4217 = frozenset(c.alpha_3 for c in pycountry.currencies) - _NOT_MONEY


class InputError(ValueError):
    """A value that breaks a rule; the message names the value and the rule."""


def period(text: str, what: str = "period") -> str:
    """A settlement period: exactly YYYY-MM with a month 01-12 (2026-1 and 2026-13 are refused)."""
    value = str(text)
    match = PERIOD_RE.match(value)
    if not match or not 1900 <= int(match.group(1)) <= 2999:
        raise InputError(f"{what} {value!r} is not a period: use YYYY-MM with a month 01-12 (e.g. 2026-10)")
    return value


def period_start(text: str) -> date:
    value = period(text)
    return date(int(value[:4]), int(value[5:]), 1)


def currency(text: str, what: str = "currency") -> str:
    """An ISO 4217 currency code, as written (three capitals): 'usd' or 'USX' are refused."""
    value = str(text)
    if value not in ISO_4217:
        raise InputError(f"{what} {value!r} is not an ISO 4217 currency code (e.g. USD, EUR, JPY)")
    return value


def decimal(text: str | Decimal, what: str, places: int, low: Decimal, high: Decimal,
            low_open: bool = False) -> Decimal:  # fmt: skip
    """A finite decimal in plain notation with at most `places` decimals, low <= x < high
    (low < x with `low_open`)."""
    raw = str(text).strip()
    if not PLAIN_DECIMAL.match(raw):
        raise InputError(f"{what} {raw!r} is not a decimal number in plain notation (e.g. 1.0842)")
    try:
        value = Decimal(raw)
    except InvalidOperation:  # the pattern makes this unreachable; kept so no traceback escapes
        raise InputError(f"{what} {raw!r} is not a number") from None
    if -value.as_tuple().exponent > places:
        raise InputError(f"{what} {raw} has more than {places} decimals; round it yourself, we do not")
    too_low = value <= low if low_open else value < low
    if too_low or value >= high:
        bound = f"> {low}" if low_open else f">= {low}"
        raise InputError(f"{what} {raw} is out of range: must be {bound} and < {high:f}")
    return value


def fx_rate(text: str | Decimal) -> Decimal:
    """Units of the target currency per unit of the source: positive, finite, at most 8 decimals."""
    return decimal(text, "FX rate", FX_RATE_PLACES, Decimal(0), FX_RATE_MAX, low_open=True)


def day(text: str, what: str) -> date:
    try:
        value = date.fromisoformat(str(text))
    except ValueError:
        raise InputError(f"{what} {text!r} is not a date (YYYY-MM-DD)") from None
    if not EARLIEST <= value <= LATEST:
        raise InputError(f"{what} {text} is out of range ({EARLIEST} to {LATEST})")
    return value


def decode_text(data: bytes, name: str) -> str:
    """The text of a file a person exported. UTF-8 (with or without BOM) and UTF-16 with a BOM
    are read; anything else (Latin-1, Windows-1252, UTF-16 without BOM) is refused with where the
    first undecodable byte is, rather than guessed: a guessed encoding silently changes names."""
    for bom, codec in ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
                       (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")):  # fmt: skip
        if data.startswith(bom):
            try:
                return data.decode(codec)
            except UnicodeDecodeError as exc:
                raise InputError(f"{name}: starts with a {codec.upper()} byte order mark but is not "
                                 f"valid {codec.upper()} (byte {exc.start})") from None  # fmt: skip
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(
            f"{name}:{line}: not UTF-8 text (byte 0x{data[exc.start]:02X} at offset {exc.start}); "
            "save the file as UTF-8 (or UTF-16 with a byte order mark) and import it again"
        ) from None
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise InputError(f"{name}:{line}: contains NUL characters; it is not a text file "
                         "(UTF-16 without a byte order mark?)")  # fmt: skip
    return text
