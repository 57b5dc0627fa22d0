"""Small pure helpers that clean one DEP field each. No Dagster, no DuckDB; none of them ever raises.

Where the DEP OpenCTI connector used a field, the helper reproduces the connector's cleaning exactly
(`repair_link`, `domain_of`, `decode_description`, `victim_is_placeholder`), so the STIX mapping built
on our values gives the connector's objects and ids.

Conventions shared by every helper:

- A value that is not a string (None, number, bool, list, object) gives None (or `()` / True where
  the return type says so). The normalizer records such fields in `Victim.invalid_fields`; the raw JSON
  stays in the archive.
- Lone UTF-16 surrogates (which `json.loads` produces from escapes such as "\\ud800") are replaced by
  U+FFFD in every returned string, so every value can be written as UTF-8 (DuckDB, Parquet, JSON).
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from urllib.parse import urlsplit

from .keys import without_surrogates

try:  # urllib.parse.unquote, compiled (_unquote.c): the same result, ~30x faster
    from ._unquote import unquote
except ImportError:  # not built (no C compiler at install)
    from urllib.parse import unquote

__all__ = [
    "CONNECTOR_VICTIM_PLACEHOLDERS",
    "GENERIC_ACTORS",
    "KNOWN_DATA_TYPES",
    "PLACEHOLDERS",
    "actor_name",
    "clean_text",
    "data_types",
    "decode_description",
    "domain_of",
    "given_text",
    "is_generic_actor",
    "is_placeholder",
    "normalize_victim_name",
    "parse_data_types",
    "repair_link",
    "stripped_or_none",
    "victim_is_placeholder",
]

# The connector's skip rule (DEP_SKIP_EMPTY_VICTIM): `(victim or "").strip().lower()` in this set.
CONNECTOR_VICTIM_PLACEHOLDERS: frozenset[str] = frozenset({"", "n/a", "none"})

# Values that mean "no value" in the descriptive fields (sector, country, the extended location fields,
# amount, naics) and in `victim_normalized`. Compared after casefolding and collapsing whitespace.
# Deliberately absent: "na" (Namibia's country code), "other" (a real sector), "0".
PLACEHOLDERS: frozenset[str] = CONNECTOR_VICTIM_PLACEHOLDERS | frozenset(
    {
        "n.a.",
        "n.a",
        "null",
        "nil",
        "nan",
        "undefined",
        "-",
        "--",
        "---",
        "?",
        "??",
        "???",
        "unknown",
        "not available",
        "not specified",
        "unspecified",
        "undisclosed",
    }
)

# `actor` values that name no group (they become actor=None; `actor_given` keeps the text). Compared
# after casefolding and collapsing whitespace. Includes every PLACEHOLDERS value.
GENERIC_ACTORS: frozenset[str] = PLACEHOLDERS | frozenset(
    {
        "unknown group",
        "unknown actor",
        "unknown threat actor",
        "unknown ransomware",
        "unknown ransomware group",
        "unattributed",
        "not attributed",
        "anonymous",
        "anon",
        "unidentified",
        "unidentified group",
        "unnamed",
        "unnamed group",
        "no group",
        "ransomware",
        "ransomware group",
        "ransomware gang",
        "ransomware actor",
        "ransomware operator",
        "threat actor",
        "hacker",
        "hackers",
        "hacker group",
        "other",
        "others",
        "various",
        "multiple",
        "generic",
    }
)

# The announcement types the connector's enum knows. Others occur (e.g. CREDENTIALS) and are kept.
KNOWN_DATA_TYPES: tuple[str, ...] = (
    "AI",
    "CUSTOMERS",
    "DEFENSE",
    "EMPLOYEES",
    "FINANCIAL",
    "INTERNAL",
    "IP",
    "MEDICAL",
    "PARTNERS",
    "PII",
    "SENSITIVES",
)


def _fold(text: str) -> str:
    """Comparison key: casefolded, whitespace collapsed, stripped."""
    return " ".join(text.casefold().split())


# The cleaning of short, much-repeated values (sector, country, actor, city...) is memoized: the
# caches are bounded, and only strings up to _CACHE_MAX_LEN characters go through them.
_CACHE_SIZE = 8192
_CACHE_MAX_LEN = 256


def _memoized(impl):
    cached = lru_cache(maxsize=_CACHE_SIZE)(impl)

    def call(text: str):
        return cached(text) if len(text) <= _CACHE_MAX_LEN else impl(text)

    call.__doc__ = impl.__doc__
    call.cache_clear = cached.cache_clear  # type: ignore[attr-defined]
    return call


def _clean_impl(text: str) -> str | None:
    text = text.strip()
    if _fold(text) in PLACEHOLDERS:
        return None
    return without_surrogates(text)


def _actor_impl(text: str) -> str | None:
    text = text.strip()
    if _fold(text) in GENERIC_ACTORS:
        return None
    return without_surrogates(text)


def _stripped_impl(text: str) -> str | None:
    text = text.strip()
    return without_surrogates(text) if text else None


# A bare host name ("acme.it", "FJORD-529.COM.BR"): urlsplit("https://" + text).hostname is exactly
# text.lower() for these (no userinfo, port, path, brackets or characters urlsplit removes), so the
# common case skips urlsplit. Tested against urlsplit in test_normalize.py.
_BARE_HOST = re.compile(r"[A-Za-z0-9._-]+")


def _domain_impl(text: str) -> str | None:
    text = text.strip()
    if not text:
        return None
    if _BARE_HOST.fullmatch(text) is not None:
        return text.lower()
    try:
        host = urlsplit(text if "://" in text else "https://" + text).hostname
    except ValueError:
        return None
    if not host:
        return None
    host = host.strip().lower()
    return without_surrogates(host) if host else None


def _victim_key_impl(text: str) -> str | None:
    if text.isascii():
        key = " ".join(text.lower().split())
    else:
        key = unicodedata.normalize("NFKC", text).casefold()
        # casefold can undo NFKC (e.g. U+0345); normalize again so the key is stable.
        key = without_surrogates(" ".join(unicodedata.normalize("NFKC", key).split()))
    if key in PLACEHOLDERS:
        return None
    return key


# Memoized: values that repeat across announcements (sector, country, actor, city...).
clean_str = _memoized(_clean_impl)
actor_str = _memoized(_actor_impl)
# Not memoized: values nearly unique to each announcement (victim, its domain and site), where a cache
# would only cost time.
stripped_str = _stripped_impl
domain_str = _domain_impl
victim_key_str = _victim_key_impl


def given_text(value: object) -> str | None:
    """The string as DEP gave it (no stripping); None for anything that is not a string."""
    if isinstance(value, str):
        return without_surrogates(value)
    return None


def is_placeholder(value: object) -> bool:
    """True when `value` carries no information: not a string, or a PLACEHOLDERS value (any case,
    padded, e.g. "", "  N/A ", "none", "null", "-", "unknown")."""
    if not isinstance(value, str):
        return True
    return _fold(value) in PLACEHOLDERS


def clean_text(value: object) -> str | None:
    """A string stripped, or None when it is not a string or is a placeholder (see PLACEHOLDERS)."""
    if not isinstance(value, str):
        return None
    return clean_str(value)


def stripped_or_none(value: object) -> str | None:
    """The connector's `strip_optional_text` (site, victimDomain): stripped, None when empty or not
    a string. Placeholders are kept (the connector keeps them)."""
    if not isinstance(value, str):
        return None
    return stripped_str(value)


def victim_is_placeholder(value: object) -> bool:
    """The connector's DEP_SKIP_EMPTY_VICTIM test, exactly: `victim.strip().lower()` is "", "n/a" or
    "none"; also True when the victim is missing or not a string."""
    if not isinstance(value, str):
        return True
    return value.strip().lower() in CONNECTOR_VICTIM_PLACEHOLDERS


def normalize_victim_name(value: object) -> str | None:
    """A matching key for victim names: NFKC, casefolded, whitespace collapsed, stripped.

    None for non-strings, for the connector's placeholders and for every PLACEHOLDERS value once
    normalized (so "Ｎ/Ａ" and "Unknown" give None too, although the connector would not skip them).
    """
    if not isinstance(value, str):
        return None
    return victim_key_str(value)


def is_generic_actor(value: object) -> bool:
    """True when `actor` names no group: not a string, or a GENERIC_ACTORS value (any case, padded)."""
    if not isinstance(value, str):
        return True
    return _fold(value) in GENERIC_ACTORS


def actor_name(value: object) -> str | None:
    """`actor` stripped; None for non-strings and generic values (see GENERIC_ACTORS)."""
    if not isinstance(value, str):
        return None
    return actor_str(value)


def repair_link(value: object) -> str | None:
    """annLink with the scrape bug repaired as the connector does: a leading `https//` or `http//`
    becomes `https://` / `http://`. Otherwise unchanged (not stripped, like the connector); "" and
    non-strings give None."""
    if not isinstance(value, str) or not value:
        return None
    if value.startswith("https//"):
        value = "https://" + value[7:]
    elif value.startswith("http//"):
        value = "http://" + value[6:]
    return without_surrogates(value)


def domain_of(value: object) -> str | None:
    """The lower-case hostname of a domain or URL, as the connector's `_normalize_domain` computes it
    on its stripped `victimDomain`/`site`: `https://` is prefixed when the text has no `://`.

    None for non-strings, blank text, text without a hostname, and text `urlsplit` rejects (it raises
    ValueError on e.g. "[" or "http://[x]"; the connector would then fail the whole record).
    """
    if not isinstance(value, str):
        return None
    return domain_str(value)


def decode_description(value: object) -> str | None:
    """annDescription URL-decoded once (`urllib.parse.unquote`, UTF-8, invalid bytes become U+FFFD), as
    the connector does. A `%` not followed by two hex digits stays ("100% authentic"). "" stays ""
    (the connector leaves an empty description alone). Non-strings give None."""
    if not isinstance(value, str):
        return None
    if "%" in value:
        value = unquote(value)
    return without_surrogates(value)


def parse_data_types(value: object) -> tuple[tuple[str, ...], bool]:
    """annDataTypes cleaned, and whether the value had the expected shape.

    A list of strings gives each stripped and upper-cased, empty ones dropped, duplicates removed
    keeping the first occurrence, unknown values (e.g. CREDENTIALS) kept. None gives `()` (valid).
    Anything else gives `()` and False; in a list, non-string items are dropped and make it False.
    """
    if value is None:
        return (), True
    if not isinstance(value, list):
        return (), False
    valid = True
    out: dict[str, None] = {}
    for item in value:
        if isinstance(item, str):
            text = item.strip().upper()
            if text:
                out[without_surrogates(text)] = None
        else:
            valid = False
    return tuple(out), valid


def data_types(value: object) -> tuple[str, ...]:
    """annDataTypes cleaned (see `parse_data_types`); `()` for null and for any non-list."""
    return parse_data_types(value)[0]
