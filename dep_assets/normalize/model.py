"""The normalized announcement ("victim") record: one row of the `dep_victims` table.

Plain Python, no Dagster. Text fields come in two forms where the DEP OpenCTI connector used the value
as DEP sent it: the `*_given` form feeds the connector-compatible STIX mapping, the plain form is the
cleaned value analysts query.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime


# Not frozen: a frozen dataclass's __init__ sets each of the 32 fields through object.__setattr__,
# seven times slower (3.5 us against 0.5 us a row, and a replay builds every Victim twice). Treat
# instances as values all the same: change one with dataclasses.replace(), never by assignment.
@dataclass(slots=True)
class Victim:
    dataset: str  # canonical dataset code: ext, prv, nws, vnd, dds, frm
    hashid: str  # stripped, lower-case; never empty
    announcement_date: date  # the record's own `date`

    victim: str | None  # exactly as given (None when missing or not a string)
    victim_normalized: str | None  # casefolded, whitespace collapsed; None for placeholders
    victim_is_placeholder: bool  # "", n/a, none, missing (any case, padded)

    victim_domain: str | None  # hostname, lower-case: from victimDomain, else site
    victim_domain_given: str | None  # victimDomain stripped, None when empty (connector's incident name)
    site: str | None  # stripped, None when empty

    sector: str | None  # stripped; None for "", n/a, none
    sector_given: str | None  # as given (connector's description uses it)
    actor: str | None  # stripped; None for generic values (unknown, unattributed, ...)
    actor_given: str | None  # as given
    country: str | None  # stripped; None for "", n/a, none
    country_given: str | None
    victim_country_code: str | None
    victim_city: str | None
    victim_state: str | None
    victim_address: str | None
    revenue: str | None  # as given (connector: included when truthy)
    amount: str | None
    naics: str | None

    data_types: tuple[str, ...]  # stripped, upper-case, order kept, duplicates removed; unknown kept
    leak_link: str | None  # annLink with `https//` / `http//` repaired
    title: str | None  # annTitle as given
    description: str | None  # annDescription URL-decoded once

    # Where this version came from in the archive.
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    versions_seen: int = 1
    fetch_id: int | None = None
    extra_fields: tuple[str, ...] = field(default=())  # keys DEP sent that we do not model (kept in raw)
    # Known fields whose JSON type was unexpected (a text field not a string/null, annDataTypes not a
    # list of strings/null): their cleaned value is None / () / partial; the raw JSON keeps the original.
    invalid_fields: tuple[str, ...] = field(default=())


# Bump whenever normalization gives different output for the same archived record: the Dagster asset
# uses it as its code version, so every `dep_victims` partition shows as stale and can be recomputed.
NORMALIZER_VERSION = "1"
