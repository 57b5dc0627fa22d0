"""Lookup keys shared by the archive and the normalizer: one definition of each.

Pure Python (no Dagster, no DuckDB). Neither function ever raises, whatever it is given.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from functools import lru_cache

__all__ = ["hashid_key", "record_day"]

# Lone UTF-16 surrogates (json.loads turns the escape "\ud800" into one) cannot be encoded as UTF-8, so
# DuckDB and every file writer would reject them. Every text we emit has them replaced by U+FFFD.
_SURROGATE = re.compile("[\ud800-\udfff]")


def without_surrogates(text: str) -> str:
    """`text` with each lone surrogate replaced by U+FFFD (the same object when there is none)."""
    if text.isascii():
        return text
    return _SURROGATE.sub("\ufffd", text)


def hashid_key(value: object) -> str | None:
    """DEP's announcement id as a key: stripped and lower-cased, as the connector does.

    Returns None for a non-string or a string that is empty once stripped. Any length and any
    characters are kept (the hash indicator, not the key, cares whether it is 32/40/64 hex digits);
    a lone surrogate becomes U+FFFD so the key can be stored.
    """
    if not isinstance(value, str):
        return None
    key = value.strip().lower()
    if not key:
        return None
    return without_surrogates(key)


# YYYY-MM-DD in ASCII digits only (`\d` would accept any Unicode digit, and Python 3.11's
# date.fromisoformat would accept `20260301` or week dates, which are not DEP's format).
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


@lru_cache(maxsize=8192)
def _parse_day(text: str) -> date | None:
    text = text.strip()
    if _DAY.fullmatch(text, 0, 10) is None:
        return None
    try:
        if len(text) == 10:
            return date(int(text[0:4]), int(text[5:7]), int(text[8:10]))
        # An ISO datetime: "2026-03-01T10:00:00Z", "2026-03-01 10:00:00", with or without fraction
        # or offset. The whole text must parse; the date is taken as written (no zone conversion).
        if text[10] not in "T ":
            return None
        return datetime.fromisoformat(text).date()
    except (ValueError, OverflowError):  # UnicodeEncodeError (lone surrogate) is a ValueError
        return None


def record_day(value: object) -> date | None:
    """The announcement day of DEP's `date` field, or None when it is not a recognisable day.

    Accepts "YYYY-MM-DD" (surrounding whitespace allowed) and ISO datetimes beginning with one
    ("2026-03-01T10:00:00Z", "2026-03-01 10:00:00", "2026-03-01T23:30:00-05:00"): the date part as
    written, with no time-zone conversion. Anything else (other formats, impossible dates such as
    "2026-13-45", numbers, None...) gives None. Never raises.
    """
    if not isinstance(value, str):
        return None
    if len(value) > 64:  # no valid form is that long; keeps junk out of the cache
        return None
    return _parse_day(value)
