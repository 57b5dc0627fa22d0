"""One archived DEP record (its parsed JSON value) -> a `Victim`, or a `Quarantined` note saying why not.

Pure Python: no Dagster, no DuckDB. `normalize_record` never raises, whatever JSON value it is given,
and a record with a usable `hashid` and `date` always becomes a Victim: everything else about it is
cleaned as well as it can be, never a reason to lose it (the raw JSON stays in the archive anyway).

Decisions (see also fields.py):

- Only two things quarantine a record that is a JSON object: no usable `hashid` (missing, null, blank or
  not a string) and no usable `date` (missing, null, blank, not a string, or not a recognisable day).
  Placeholder victims are NOT quarantined: they give `victim_is_placeholder=True`.
- A known text field holding a non-string (number, bool, list, object) is cleaned to None and its name
  is listed in `Victim.invalid_fields`; likewise `annDataTypes` when it is neither null nor a list of
  strings (non-string items are dropped, string items kept).
- `extra_fields` lists, sorted, the keys that are not DEP's known fields.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from .fields import (
    CONNECTOR_VICTIM_PLACEHOLDERS,
    PLACEHOLDERS,
    actor_str,
    clean_str,
    decode_description,
    domain_str,
    parse_data_types,
    repair_link,
    stripped_str,
    victim_key_str,
)
from .keys import hashid_key, record_day, without_surrogates
from .model import Victim

try:  # normalize_record over a batch, compiled, for the common records (see _fastnormalize.c)
    from ._fastnormalize import COLUMNS as _BATCH_COLUMNS
    from ._fastnormalize import BatchNormalizer as _BatchNormalizer
except ImportError:  # not built (no C compiler at install): normalize_record serves every record
    _BatchNormalizer = None
    _BATCH_COLUMNS = ()

__all__ = [
    "KNOWN_FIELDS",
    "QUARANTINE_CODES",
    "Quarantined",
    "TEXT_FIELDS",
    "batch_normalizer",
    "normalize_record",
]

# DEP's text fields (string or null), in the order of dep-api.md's table.
TEXT_FIELDS: tuple[str, ...] = (
    "victim",
    "victimDomain",
    "site",
    "sector",
    "actor",
    "country",
    "revenue",
    "amount",
    "naics",
    "annLink",
    "annTitle",
    "annDescription",
    "victimCC",
    "victimCity",
    "victimState",
    "victimAddress",
)
KNOWN_FIELDS: frozenset[str] = frozenset(TEXT_FIELDS) | {"date", "hashid", "annDataTypes"}
_TEXT_TYPES = frozenset({str, type(None)})

# Stable codes: every Quarantined.reason starts with one of these, optionally followed by ": detail".
QUARANTINE_CODES: tuple[str, ...] = (
    "not_an_object",  # the record is not a JSON object ("not_an_object: got list")
    "missing_hashid",  # absent or null ("missing_hashid"), or blank ("missing_hashid: blank")
    "invalid_hashid",  # not a string ("invalid_hashid: got int")
    "missing_date",  # absent or null ("missing_date"), or blank ("missing_date: blank")
    "invalid_date",  # not a string ("invalid_date: got int")
    "unparseable_date",  # a string that is no day ("unparseable_date: '2026-13-45'")
)


@dataclass(frozen=True, slots=True)
class Quarantined:
    """A record that cannot become a Victim, and why. `hashid` and `record_day` are filled in whenever
    they could be read, so the archive can still place the record."""

    dataset: str
    reason: str  # "<code>" or "<code>: <detail>"; the code is one of QUARANTINE_CODES
    hashid: str | None
    record_day: date | None

    @property
    def code(self) -> str:
        return self.reason.partition(":")[0]


def _type_name(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _short_repr(text: str, limit: int = 80) -> str:
    """repr() of a string cut to about `limit` characters (repr escapes lone surrogates)."""
    shown = repr(text[: limit + 1])
    if len(shown) > limit:
        shown = shown[: limit - 3] + "..."
    return shown


def _quarantine_reason(record: dict, key: str | None, day: date | None) -> str:
    if key is None:
        raw = record.get("hashid")
        if raw is None:
            return "missing_hashid"
        if isinstance(raw, str):
            return "missing_hashid: blank"
        return f"invalid_hashid: got {_type_name(raw)}"
    raw = record.get("date")
    if raw is None:
        return "missing_date"
    if not isinstance(raw, str):
        return f"invalid_date: got {_type_name(raw)}"
    if not raw.strip():
        return "missing_date: blank"
    return f"unparseable_date: {_short_repr(raw)}"


def normalize_record(
    value: object,
    *,
    dataset: str,
    first_seen: datetime | None = None,
    last_seen: datetime | None = None,
    versions_seen: int = 1,
    fetch_id: int | None = None,
) -> Victim | Quarantined:
    """Normalize one archived record (the parsed JSON value) of `dataset` (a canonical code).

    The keyword-only provenance arguments are copied into the Victim unchanged. Never raises.
    """
    if not isinstance(value, dict):
        return Quarantined(dataset, f"not_an_object: got {_type_name(value)}", None, None)
    record = value
    get = record.get

    key = hashid_key(get("hashid"))
    day = record_day(get("date"))
    if key is None or day is None:
        return Quarantined(dataset, _quarantine_reason(record, key, day), key, day)

    values = tuple(map(get, TEXT_FIELDS))
    invalid: list[str] = []
    if not _TEXT_TYPES.issuperset(map(type, values)):
        # Rare path: some text field holds a non-string. Record it and treat it as null.
        cleaned = []
        for name, raw in zip(TEXT_FIELDS, values):
            if raw is None or isinstance(raw, str):
                cleaned.append(raw)
            else:
                invalid.append(name)
                cleaned.append(None)
        values = tuple(cleaned)
    (
        victim,
        victim_domain,
        site,
        sector,
        actor,
        country,
        revenue,
        amount,
        naics,
        ann_link,
        ann_title,
        ann_description,
        victim_cc,
        victim_city,
        victim_state,
        victim_address,
    ) = values

    types, types_ok = parse_data_types(get("annDataTypes"))
    if not types_ok:
        invalid.append("annDataTypes")

    extra: tuple[str, ...] = ()
    if not KNOWN_FIELDS.issuperset(record):
        extra = tuple(sorted(str(k) for k in record if k not in KNOWN_FIELDS))

    # From here every text value is a str or None.
    if victim is None:
        victim_given = victim_key = None
        placeholder = True
    else:
        victim_given = without_surrogates(victim)
        victim_key = victim_key_str(victim)
        placeholder = victim.strip().lower() in CONNECTOR_VICTIM_PLACEHOLDERS
    domain = None
    domain_given = None
    if victim_domain is not None:
        domain = domain_str(victim_domain)
        domain_given = stripped_str(victim_domain)
    site_clean = None
    if site is not None:
        site_clean = stripped_str(site)
        if domain is None:
            domain = domain_str(site)
    country_code = None if victim_cc is None else clean_str(victim_cc)

    return Victim(
        dataset=dataset,
        hashid=key,
        announcement_date=day,
        victim=victim_given,
        victim_normalized=victim_key,
        victim_is_placeholder=placeholder,
        victim_domain=domain,
        victim_domain_given=domain_given,
        site=site_clean,
        sector=None if sector is None else clean_str(sector),
        sector_given=None if sector is None else without_surrogates(sector),
        actor=None if actor is None else actor_str(actor),
        actor_given=None if actor is None else without_surrogates(actor),
        country=None if country is None else clean_str(country),
        country_given=None if country is None else without_surrogates(country),
        victim_country_code=country_code.upper() if country_code else None,
        victim_city=None if victim_city is None else clean_str(victim_city),
        victim_state=None if victim_state is None else clean_str(victim_state),
        victim_address=None if victim_address is None else clean_str(victim_address),
        revenue=None if revenue is None else without_surrogates(revenue),
        amount=None if amount is None else clean_str(amount),
        naics=None if naics is None else clean_str(naics),
        data_types=types,
        leak_link=repair_link(ann_link),
        title=None if ann_title is None else without_surrogates(ann_title),
        description=decode_description(ann_description),
        first_seen=first_seen,
        last_seen=last_seen,
        versions_seen=versions_seen,
        fetch_id=fetch_id,
        extra_fields=extra,
        invalid_fields=tuple(invalid),
    )


def batch_normalizer(columns: tuple[str, ...]) -> Any | None:
    """The compiled batch normalizer, or None where it is not built or fills other `columns`.

    `normalize(payloads, dataset, first_seen, last_seen, versions_seen, fetch_id, column_lists, kept,
    fallback)`: each payload is parsed with `json.loads`; a common record (an object with a usable
    hashid and date, text fields that are strings or null, annDataTypes null or a list of strings,
    only known keys) has its values appended to `column_lists` (one list per name of `columns`: the
    Victim's fields, tuples as lists) and its index to `kept`; any other record goes, parsed, to
    `fallback(index, record)`, in order. The values are exactly `normalize_record`'s (tested)."""
    if _BatchNormalizer is None or tuple(columns) != _BATCH_COLUMNS:
        return None
    return _BatchNormalizer(
        loads=json.loads,
        record_day=record_day,
        parse_data_types=parse_data_types,
        clean_str=clean_str,
        actor_str=actor_str,
        victim_key_str=victim_key_str,
        domain_str=domain_str,
        stripped_str=stripped_str,
        repair_link=repair_link,
        decode_description=decode_description,
        without_surrogates=without_surrogates,
        hashid_key=hashid_key,
        known_fields=KNOWN_FIELDS,
        connector_placeholders=CONNECTOR_VICTIM_PLACEHOLDERS,
        placeholders=PLACEHOLDERS,
        text_fields=TEXT_FIELDS,
    )
