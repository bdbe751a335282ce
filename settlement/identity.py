"""Who did something: the one place where a person's name becomes an identity, and where the
second-person rule (the preparer of a month never approves it) is decided.

The CLI (`tributary settle calculate/approve`) and Airflow's approval task both reach it through
settlement.lifecycle and settlement.calculate, so "alice ", "ALICE" and "ａｌｉｃｅ" are one
person everywhere.
"""

from __future__ import annotations

import unicodedata

from settlement.inputs import InputError


def person(name: str | None, role: str = "user name") -> str:
    """NFKC, format characters (zero-width spaces...) removed, inner whitespace collapsed,
    trimmed, case-folded. Empty or whitespace-only names are refused."""
    text = unicodedata.normalize("NFKC", name or "")
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")
    text = " ".join(text.split()).casefold()
    if not text:
        raise InputError(f"the {role} is empty; say who you are (e.g. --by alice)")
    return text


# Who prepares a month nobody triggered by hand: the scheduler's scheduled runs. A service is
# never a person, so it can prepare but never approve.
SCHEDULER = "airflow-scheduler"
SERVICE_IDENTITIES = frozenset({SCHEDULER})


def second_person(preparer: str | None, approver: str | None, period: str) -> str:
    """The approver's identity, if it is a person and not the preparer; InputError otherwise."""
    who = person(approver, "approver's user name")
    if who in SERVICE_IDENTITIES:
        raise SecondPersonError(
            f"period {period}: {who!r} is a service identity; only a person can approve a month"
        )
    if preparer is not None and person(preparer, "preparer's user name") == who:
        raise SecondPersonError(
            f"period {period} was calculated by {person(preparer)!r}; a second person must approve it "
            f"({approver!r} is the same person)"
        )
    return who


class SecondPersonError(InputError):
    """The approver is the preparer."""
