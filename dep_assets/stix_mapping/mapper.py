"""Map one normalized DEP announcement (`Victim`) to a STIX 2.1 bundle, as a plain dict.

Plain Python: no Dagster, no stix2 objects, no pycti import on this path (pycti's ids are recomputed
here: uuid5 over RFC 8785 canonical JSON in OpenCTI's namespace; the tests prove equality with pycti).

Default options give exactly the DEP OpenCTI connector's objects and ids (the README version:
`_create_victim_identity`, `_create_incident`, the two indicators, `targets`/`indicates`), with these
differences by design, all on things the connector could not do or did non-deterministically:

- Timestamps: `created`/`modified` of every object and indicators' `valid_from` are the announcement
  date at 00:00:00.000Z (the connector used "now" except for the incident's `created`); the author's
  and the amber+strict marking's are fixed constants. The incident's custom `first_seen` is written
  exactly as the connector's stix2 serialization writes it (`2026-03-01T00:00:00Z`).
- Announcement types: the connector knew 11 values and dropped the whole record on any other (and on
  `annDataTypes: null`); we keep the record and label every type, `dep:announcement-type:<lower>`.
- Incident external reference: when there is neither a leak link, a site nor a title, the connector's
  stix2 call failed (an external reference needs url, description or external_id) and the record was
  lost; we emit the incident without `external_references`.
- STIX patterns: a `'` or `\\` in the domain made the connector's pattern invalid (record lost); we
  escape them as STIX patterning requires (`\\'`, `\\\\`). A hashid of 32/40/64 characters that is
  not hexadecimal failed stix2's hash check (record lost); we make no hash indicator for it.
- Lone surrogates in text (impossible in valid UTF-8 input) do not crash id computation
  (`surrogatepass`); the connector would have raised.
- A victim literally named like the author ("DigIntLab") has the author's id: the connector then
  replaced the author by the victim in its bundle (a self-referencing `created_by_ref`); we keep the
  author and let the incident target it.

Options (see `options.py`) follow the later connector versions: report mode (Report with the incident's
uuid, `object_refs` = every object of the bundle but the report and the marking, author included;
indicators then relate to the victim with `related-to`, as there is no incident), sector identities
(`part-of`), intrusion sets (incident `attributed-to`; in report mode the intrusion set is only listed
in `object_refs`, like the later connector: OpenCTI allows no `attributed-to` from a report), country
locations (`located-at`, `country` = ISO 3166-1 alpha-2 code, so that the Location validates), TLP
markings on every object, and a `dep:dataset:<code>` label on the primary object.

Serialization (`serialize_bundle`): compact JSON (`,` and `:` separators), keys sorted at every level,
ASCII only (non-ASCII as `\\uXXXX` escapes, like stix2's own serializer), no NaN. Identical input and
options give byte-identical output; the bundle id is uuid5 of the primary object's id and the
options' fingerprint, never random.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Iterator
from datetime import date, datetime
from functools import lru_cache
from json.encoder import (
    encode_basestring as _json_str,  # C implementation, same escaping as JCS
)
from json.encoder import (
    encode_basestring_ascii as _s,  # C implementation, as serialize_bundle writes
)
from typing import Any, NamedTuple
from uuid import NAMESPACE_URL, UUID

from dep_assets.normalize.model import Victim
from dep_assets.stix_mapping.options import MappingOptions

try:  # the compiled JSON path for incident bundles (see _fastmap.c); the Python below is the reference
    from dep_assets.stix_mapping._fastmap import (
        BATCH_FIELDS as _BATCH_FIELDS,
    )
    from dep_assets.stix_mapping._fastmap import (
        IncidentMapper as _CompiledIncidentMapper,
    )
except ImportError:  # not built (no C compiler at install): the Python path serves every option set
    _CompiledIncidentMapper = None
    _BATCH_FIELDS = ()

__all__ = [
    "AUTHOR_ID",
    "AUTHOR_NAME",
    "OPENCTI_NAMESPACE",
    "MappedBundle",
    "StixMapper",
    "author_identity",
    "bundle_dangling_refs",
    "country_code",
    "identity_id",
    "incident_id",
    "indicator_id",
    "intrusion_set_id",
    "location_id",
    "map_victim",
    "map_victim_json",
    "mapper_for",
    "marking_definition",
    "relationship_id",
    "report_id",
    "serialize_bundle",
]

# --------------------------------------------------------------------------------------------------
# Constants
# --------------------------------------------------------------------------------------------------

OPENCTI_NAMESPACE = UUID("00abedb4-aa42-466c-9c01-fed23315a9b7")  # pycti's uuid5 namespace
# Our own namespace for bundle ids (bundle ids are never stored by OpenCTI; they only need to be stable).
BUNDLE_NAMESPACE = UUID("5d3bd1c4-5f0e-5c34-9d1a-6f0b3c1d2e7a")  # a fixed constant; never change it

AUTHOR_NAME = "DigIntLab"
AUTHOR_ID = "identity--b78b3c4f-7b75-5a00-81c0-b76d4124b2ab"  # Identity.generate_id("DigIntLab", "organization")
AUTHOR_TIMESTAMP = "2024-01-01T00:00:00.000Z"  # fixed: the author must not change between bundles
LABEL = AUTHOR_NAME

_PLACEHOLDER_VICTIMS = frozenset(("", "n/a", "none"))
_HASH_TYPES = {32: "MD5", 40: "SHA-1", 64: "SHA-256"}
# STIX patterning checks hash values (stix2 rejects a non-hex SHA-256): hex only, like DEP's hashids.
_is_hex = re.compile(r"[0-9a-f]+").fullmatch

# Standard STIX 2.1 TLP marking definitions (stix2.TLP_*; OpenCTI reads TLP:WHITE as TLP:CLEAR) and
# OpenCTI's TLP:AMBER+STRICT (pycti MarkingDefinition.generate_id("TLP", "TLP:AMBER+STRICT"); the
# statement form with x_opencti_definition* is what OpenCTI connectors send).
_TLP_1_CREATED = "2017-01-20T00:00:00.000Z"
_TLP_MARKINGS: dict[str, dict[str, Any]] = {
    "clear": {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9",
        "created": _TLP_1_CREATED,
        "definition_type": "tlp",
        "name": "TLP:WHITE",
        "definition": {"tlp": "white"},
    },
    "green": {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da",
        "created": _TLP_1_CREATED,
        "definition_type": "tlp",
        "name": "TLP:GREEN",
        "definition": {"tlp": "green"},
    },
    "amber": {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82",
        "created": _TLP_1_CREATED,
        "definition_type": "tlp",
        "name": "TLP:AMBER",
        "definition": {"tlp": "amber"},
    },
    "amber+strict": {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": "marking-definition--826578e1-40ad-459f-bc73-ede076f81f37",
        "created": "2022-08-01T00:00:00.000Z",  # TLP 2.0's publication month; fixed, never "now"
        "definition_type": "statement",
        "name": "TLP:AMBER+STRICT",
        "definition": {"statement": "TLP:AMBER+STRICT"},
        "x_opencti_definition_type": "TLP",
        "x_opencti_definition": "TLP:AMBER+STRICT",
    },
    "red": {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed",
        "created": _TLP_1_CREATED,
        "definition_type": "tlp",
        "name": "TLP:RED",
        "definition": {"tlp": "red"},
    },
}

# serialize_bundle's encoder: sorted keys, compact separators, ASCII only, no NaN.
_ENCODER = json.JSONEncoder(
    sort_keys=True,
    separators=(",", ":"),
    ensure_ascii=True,
    allow_nan=False,
    check_circular=False,
)


# --------------------------------------------------------------------------------------------------
# Ids: uuid5 without building uuid.UUID objects (hashlib copy of the namespace prefix, string slicing).
# Per-announcement ids (victim, indicators, relationships) are mostly unique: not cached (a cache miss
# costs more than it saves); ids of the few shared entities (sectors, actors, countries) are.
# --------------------------------------------------------------------------------------------------

_SHA1_OPENCTI = hashlib.sha1(OPENCTI_NAMESPACE.bytes)
_SHA1_URL = hashlib.sha1(NAMESPACE_URL.bytes)
_SHA1_BUNDLE = hashlib.sha1(BUNDLE_NAMESPACE.bytes)
# First hex digit of byte 8 after setting the RFC 4122 variant bits (10xx).
_VARIANT = {c: format((int(c, 16) & 0x3) | 0x8, "x") for c in "0123456789abcdef"}


def _uuid5(namespace_sha1: Any, name: str) -> str:
    h = namespace_sha1.copy()
    h.update(name.encode("utf-8", "surrogatepass"))
    x = h.hexdigest()
    return f"{x[:8]}-{x[8:12]}-5{x[13:16]}-{_VARIANT[x[16]]}{x[17:20]}-{x[20:32]}"


def identity_id(name: str, identity_class: str) -> str:
    """pycti `Identity.generate_id(name, identity_class)`."""
    data = (
        '{"identity_class":'
        + _json_str(identity_class.lower())
        + ',"name":'
        + _json_str(name.lower().strip())
        + "}"
    )
    return "identity--" + _uuid5(_SHA1_OPENCTI, data)


def indicator_id(pattern: str) -> str:
    """pycti `Indicator.generate_id(pattern)`."""
    return "indicator--" + _uuid5(_SHA1_OPENCTI, '{"pattern":' + _json_str(pattern.strip()) + "}")


def relationship_id(relationship_type: str, source_ref: str, target_ref: str) -> str:
    """pycti `StixCoreRelationship.generate_id(type, source, target)` (no start/stop time)."""
    data = (
        '{"relationship_type":'
        + _json_str(relationship_type)
        + ',"source_ref":'
        + _json_str(source_ref)
        + ',"target_ref":'
        + _json_str(target_ref)
        + "}"
    )
    return "relationship--" + _uuid5(_SHA1_OPENCTI, data)


@lru_cache(maxsize=4096)
def _sector_id(sector: str) -> str:
    # The later connector: Identity.generate_id(sector.lower(), "class"). Few distinct values: cached.
    return identity_id(sector.lower(), "class")


def _relationship_id_fast(relationship_type: str, source_ref: str, target_ref: str) -> str:
    # Only for our own ids and relationship types (ASCII, nothing to escape).
    return "relationship--" + _uuid5(
        _SHA1_OPENCTI,
        f'{{"relationship_type":"{relationship_type}","source_ref":"{source_ref}","target_ref":"{target_ref}"}}',
    )


def incident_id(hashid: str) -> str:
    """The connector's incident id: uuid5(NAMESPACE_URL, "dep-announcement:" + hashid stripped, lower)."""
    return "incident--" + _uuid5(_SHA1_URL, "dep-announcement:" + hashid.strip().lower())


def report_id(hashid: str) -> str:
    """The later connector's report id: the incident's uuid with the report type."""
    return "report--" + _uuid5(_SHA1_URL, "dep-announcement:" + hashid.strip().lower())


@lru_cache(maxsize=16384)
def intrusion_set_id(actor: str) -> str:
    """The later connector's intrusion set id: uuid5(NAMESPACE_URL, "dep-actor:" + actor lower)."""
    return "intrusion-set--" + _uuid5(_SHA1_URL, "dep-actor:" + actor.lower())


@lru_cache(maxsize=4096)
def location_id(country: str) -> str:
    """The later connector's country id: uuid5(NAMESPACE_URL, "dep-country:" + country lower)."""
    return "location--" + _uuid5(_SHA1_URL, "dep-country:" + country.lower())


def _bundle_id(primary_id: str, fingerprint: str) -> str:
    return "bundle--" + _uuid5(_SHA1_BUNDLE, primary_id + "|" + fingerprint)


# --------------------------------------------------------------------------------------------------
# Countries: full name (as DEP sends it) -> ISO 3166-1 alpha-2, for Location.country
# --------------------------------------------------------------------------------------------------

_COUNTRY_TABLE = """
AD Andorra
AE United Arab Emirates|UAE
AF Afghanistan
AG Antigua and Barbuda
AI Anguilla
AL Albania
AM Armenia
AO Angola
AQ Antarctica
AR Argentina
AS American Samoa
AT Austria
AU Australia
AW Aruba
AX Åland Islands
AZ Azerbaijan
BA Bosnia and Herzegovina|Bosnia
BB Barbados
BD Bangladesh
BE Belgium
BF Burkina Faso
BG Bulgaria
BH Bahrain
BI Burundi
BJ Benin
BL Saint Barthélemy
BM Bermuda
BN Brunei|Brunei Darussalam
BO Bolivia|Bolivia, Plurinational State of
BQ Bonaire, Sint Eustatius and Saba|Caribbean Netherlands
BR Brazil|Brasil
BS Bahamas|The Bahamas
BT Bhutan
BV Bouvet Island
BW Botswana
BY Belarus
BZ Belize
CA Canada
CC Cocos (Keeling) Islands|Cocos Islands
CD Democratic Republic of the Congo|Congo, Democratic Republic of the|DR Congo|DRC|Congo-Kinshasa
CF Central African Republic
CG Republic of the Congo|Congo|Congo-Brazzaville
CH Switzerland
CI Côte d'Ivoire|Ivory Coast
CK Cook Islands
CL Chile
CM Cameroon
CN China|People's Republic of China|PRC
CO Colombia
CR Costa Rica
CU Cuba
CV Cabo Verde|Cape Verde
CW Curaçao
CX Christmas Island
CY Cyprus
CZ Czechia|Czech Republic
DE Germany|Deutschland
DJ Djibouti
DK Denmark
DM Dominica
DO Dominican Republic
DZ Algeria
EC Ecuador
EE Estonia
EG Egypt
EH Western Sahara
ER Eritrea
ES Spain|España
ET Ethiopia
FI Finland
FJ Fiji
FK Falkland Islands|Falkland Islands (Malvinas)
FM Micronesia|Federated States of Micronesia|Micronesia, Federated States of
FO Faroe Islands
FR France
GA Gabon
GB United Kingdom|UK|U.K.|Great Britain|United Kingdom of Great Britain and Northern Ireland|England|Scotland|Wales|Northern Ireland
GD Grenada
GE Georgia
GF French Guiana
GG Guernsey
GH Ghana
GI Gibraltar
GL Greenland
GM Gambia|The Gambia
GN Guinea
GP Guadeloupe
GQ Equatorial Guinea
GR Greece
GS South Georgia and the South Sandwich Islands
GT Guatemala
GU Guam
GW Guinea-Bissau
GY Guyana
HK Hong Kong
HM Heard Island and McDonald Islands
HN Honduras
HR Croatia
HT Haiti
HU Hungary
ID Indonesia
IE Ireland
IL Israel
IM Isle of Man
IN India
IO British Indian Ocean Territory
IQ Iraq
IR Iran|Iran, Islamic Republic of
IS Iceland
IT Italy|Italia
JE Jersey
JM Jamaica
JO Jordan
JP Japan
KE Kenya
KG Kyrgyzstan
KH Cambodia
KI Kiribati
KM Comoros
KN Saint Kitts and Nevis
KP North Korea|Korea, Democratic People's Republic of|Democratic People's Republic of Korea
KR South Korea|Korea|Republic of Korea|Korea, Republic of
KW Kuwait
KY Cayman Islands
KZ Kazakhstan
LA Laos|Lao People's Democratic Republic
LB Lebanon
LC Saint Lucia
LI Liechtenstein
LK Sri Lanka
LR Liberia
LS Lesotho
LT Lithuania
LU Luxembourg
LV Latvia
LY Libya
MA Morocco
MC Monaco
MD Moldova|Republic of Moldova|Moldova, Republic of
ME Montenegro
MF Saint Martin|Saint Martin (French part)
MG Madagascar
MH Marshall Islands
MK North Macedonia|Macedonia
ML Mali
MM Myanmar|Burma
MN Mongolia
MO Macao|Macau
MP Northern Mariana Islands
MQ Martinique
MR Mauritania
MS Montserrat
MT Malta
MU Mauritius
MV Maldives
MW Malawi
MX Mexico
MY Malaysia
MZ Mozambique
NA Namibia
NC New Caledonia
NE Niger
NF Norfolk Island
NG Nigeria
NI Nicaragua
NL Netherlands|The Netherlands|Holland|Netherlands, Kingdom of the
NO Norway
NP Nepal
NR Nauru
NU Niue
NZ New Zealand
OM Oman
PA Panama
PE Peru
PF French Polynesia
PG Papua New Guinea
PH Philippines|The Philippines
PK Pakistan
PL Poland
PM Saint Pierre and Miquelon
PN Pitcairn|Pitcairn Islands
PR Puerto Rico
PS Palestine|State of Palestine|Palestine, State of
PT Portugal
PW Palau
PY Paraguay
QA Qatar
RE Réunion
RO Romania
RS Serbia
RU Russia|Russian Federation
RW Rwanda
SA Saudi Arabia
SB Solomon Islands
SC Seychelles
SD Sudan
SE Sweden
SG Singapore
SH Saint Helena|Saint Helena, Ascension and Tristan da Cunha
SI Slovenia
SJ Svalbard and Jan Mayen
SK Slovakia
SL Sierra Leone
SM San Marino
SN Senegal
SO Somalia
SR Suriname
SS South Sudan
ST Sao Tome and Principe
SV El Salvador
SX Sint Maarten|Sint Maarten (Dutch part)
SY Syria|Syrian Arab Republic
SZ Eswatini|Swaziland
TC Turks and Caicos Islands
TD Chad
TF French Southern Territories
TG Togo
TH Thailand
TJ Tajikistan
TK Tokelau
TL Timor-Leste|East Timor
TM Turkmenistan
TN Tunisia
TO Tonga
TR Türkiye|Turkey
TT Trinidad and Tobago
TV Tuvalu
TW Taiwan|Taiwan, Province of China
TZ Tanzania|United Republic of Tanzania|Tanzania, United Republic of
UA Ukraine
UG Uganda
UM United States Minor Outlying Islands
US United States|USA|U.S.A.|US|U.S.|United States of America
UY Uruguay
UZ Uzbekistan
VA Holy See|Vatican|Vatican City
VC Saint Vincent and the Grenadines
VE Venezuela|Venezuela, Bolivarian Republic of
VG British Virgin Islands|Virgin Islands, British
VI United States Virgin Islands|U.S. Virgin Islands|Virgin Islands, U.S.
VN Viet Nam|Vietnam
VU Vanuatu
WF Wallis and Futuna
WS Samoa
YE Yemen
YT Mayotte
ZA South Africa
ZM Zambia
ZW Zimbabwe
"""

_NON_ALNUM = re.compile(r"[^0-9a-z]+")


def _country_key(name: str) -> str:
    folded = unicodedata.normalize("NFKD", name.casefold())
    folded = "".join(c for c in folded if not unicodedata.combining(c))
    return _NON_ALNUM.sub(" ", folded).strip()


def _load_countries() -> tuple[dict[str, str], frozenset[str]]:
    by_name: dict[str, str] = {}
    codes: set[str] = set()
    for line in _COUNTRY_TABLE.strip().splitlines():
        code, names = line.split(" ", 1)
        codes.add(code)
        for name in names.split("|"):
            by_name[_country_key(name)] = code
    return by_name, frozenset(codes)


_COUNTRY_BY_NAME, ISO_COUNTRY_CODES = _load_countries()


@lru_cache(maxsize=4096)
def country_code(country: str | None, given_code: str | None = None) -> str | None:
    """ISO 3166-1 alpha-2 code for a country name (DEP's `country`), else DEP's `victimCC` when it is
    a valid code; None when neither resolves (then no Location is made: STIX 2.1 needs a code)."""
    if country:
        code = _COUNTRY_BY_NAME.get(_country_key(country))
        if code:
            return code
    if given_code:
        code = given_code.strip().upper()
        if code in ISO_COUNTRY_CODES:
            return code
    return None


# --------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------


@lru_cache(maxsize=8192)
def _day_stamps(day: date) -> tuple[str, str]:
    """(stix2 timestamp at 00:00:00.000Z, the connector's `first_seen` serialization)."""
    if isinstance(day, datetime):
        day = day.date()
    iso = day.isoformat()
    return f"{iso}T00:00:00.000Z", f"{iso}T00:00:00Z"


def _pattern_literal(value: str) -> str:
    """Escape a value for a STIX pattern string literal (only `'` and `\\` need it)."""
    if "\\" in value or "'" in value:
        return value.replace("\\", "\\\\").replace("'", "\\'")
    return value


def _collapse(value: str | None) -> str | None:
    """The later connector's named-field normalization: whitespace collapsed, n/a / none -> None."""
    if not value:
        return None
    collapsed = " ".join(value.split())
    if not collapsed or collapsed.lower() in ("n/a", "none"):
        return None
    return collapsed


def author_identity(marking_id: str | None = None) -> dict[str, Any]:
    """The connector's author (a fresh dict each call)."""
    author: dict[str, Any] = {
        "type": "identity",
        "spec_version": "2.1",
        "id": AUTHOR_ID,
        "created": AUTHOR_TIMESTAMP,
        "modified": AUTHOR_TIMESTAMP,
        "name": AUTHOR_NAME,
        "description": "We Track and Monitor the Cyber Space",
        "contact_information": "https://doubleextortion.com/",
        "identity_class": "organization",
    }
    if marking_id:
        author["object_marking_refs"] = [marking_id]
    return author


def marking_definition(tlp: str) -> dict[str, Any]:
    """The marking definition for a TLP level (as normalized by MappingOptions); a fresh dict."""
    try:
        template = _TLP_MARKINGS[tlp]
    except KeyError:
        raise ValueError(f"unknown TLP level {tlp!r}; expected one of {', '.join(_TLP_MARKINGS)}") from None
    marking = dict(template)
    marking["definition"] = dict(template["definition"])
    return marking


# --------------------------------------------------------------------------------------------------
# The mapper
# --------------------------------------------------------------------------------------------------


class MappedBundle(NamedTuple):
    """A bundle's JSON text with the facts the archive stores beside it (known while mapping)."""

    text: str  # serialize_bundle(bundle)
    bundle_id: str
    primary_id: str  # the incident (or report)
    object_count: int


class StixMapper:
    """A mapping compiled for one `MappingOptions`.

    `map(victim)` returns the bundle as a dict (`map_victim`); `map_json(victim)` returns its
    serialization directly, byte-identical to `serialize_bundle(map(victim))` and several times
    faster (JSON text assembled from templates, user text escaped by the C JSON string encoder).
    Both run the same code (`_map`), so their decisions cannot diverge.
    """

    __slots__ = (
        "options",
        "fingerprint",
        "_confidence",
        "_confidence_json",
        "_marking_id",
        "_omr",
        "_tlp",
        "_report",
        "_site",
        "_hash",
        "_skip",
        "_sectors",
        "_actors",
        "_countries",
        "_dataset_label",
        "_author_json",
        "_marking_json",
        "_compiled",
    )

    def __init__(self, options: MappingOptions | None = None) -> None:
        options = options or MappingOptions()
        self.options = options
        self.fingerprint = options.fingerprint()
        self._confidence = options.confidence
        self._confidence_json = str(int(options.confidence))
        self._tlp = options.tlp
        self._marking_id = _TLP_MARKINGS[options.tlp]["id"] if options.tlp else None
        self._omr = f'"object_marking_refs":["{self._marking_id}"],' if self._marking_id else ""
        self._report = options.primary_object == "report"
        self._site = options.enable_site_indicator
        self._hash = options.enable_hash_indicator
        self._skip = options.skip_empty_victim
        self._sectors = options.create_sector_identities
        self._actors = options.create_intrusion_sets
        self._countries = options.create_country_locations
        self._dataset_label = options.dataset_label
        self._author_json = _ENCODER.encode(author_identity(self._marking_id))
        self._marking_json = _ENCODER.encode(marking_definition(options.tlp)) if options.tlp else None
        # The compiled path writes incident bundles without sector, intrusion set or country objects
        # (the connector's defaults); any other option set runs `_map`.
        self._compiled = None
        if _CompiledIncidentMapper is not None and not (
            self._report or self._sectors or self._actors or self._countries
        ):
            self._compiled = _CompiledIncidentMapper(
                skip_empty_victim=self._skip,
                site_indicator=self._site,
                hash_indicator=self._hash,
                dataset_label=self._dataset_label,
                confidence_json=self._confidence_json,
                omr=self._omr,
                author_json=self._author_json,
                marking_json=self._marking_json,
                fingerprint=self.fingerprint,
                placeholders=_PLACEHOLDER_VICTIMS,
                encode=_json_str,
                mapped_bundle=MappedBundle,
                author_id=AUTHOR_ID,
                label=LABEL,
                opencti_namespace=OPENCTI_NAMESPACE.bytes,
                url_namespace=NAMESPACE_URL.bytes,
                bundle_namespace=BUNDLE_NAMESPACE.bytes,
            )

    @property
    def compiled(self) -> bool:
        """Whether `map_json` / `map_bundle` run the compiled path for these options."""
        return self._compiled is not None

    @property
    def batch_fields(self) -> tuple[str, ...] | None:
        """The Victim fields `map_columns` reads, in its order; None when these options run the
        Python (then map each Victim with `map_bundle`)."""
        return None if self._compiled is None else _BATCH_FIELDS

    def map_columns(self, columns: tuple[list, ...]) -> tuple[bytes, ...]:
        """The bundles of a batch of victims given by column (`batch_fields`; a null data_types may be
        None), compiled path only, as Arrow buffers: (rows, offsets, text, bundle_ids, primary_ids,
        digests, object_counts). `rows` (int32) index the victims mapped, in order (the others are
        skipped); `offsets` (int64) and `text` are the bundles as a large_string array, byte for byte
        `map_bundle(...).text`; bundle ids, primary ids and the texts' SHA-256 (hex) are fixed-width
        ASCII of 44, 46 and 64 bytes; `object_counts` int32."""
        if self._compiled is None:
            raise ValueError("map_columns: these mapping options run the Python path (see batch_fields)")
        return self._compiled.map_columns(columns)

    def map(self, victim: Victim) -> dict[str, Any] | None:
        """The bundle as a plain dict (fresh dicts and lists every call), None when skipped."""
        return self._map(victim, False)  # type: ignore[return-value]

    def map_json(self, victim: Victim) -> str | None:
        """`serialize_bundle(self.map(victim))`, computed directly; None when skipped."""
        mapped = self.map_bundle(victim)
        return None if mapped is None else mapped.text

    def map_bundle(self, victim: Victim) -> MappedBundle | None:
        """`map_json` with the bundle's id, primary object id and object count; None when skipped."""
        if self._compiled is not None:
            return self._compiled.map_bundle(victim)
        return self._map(victim, True)  # type: ignore[return-value]

    __call__ = map

    # The one implementation. `as_json` only chooses how each object is written: every decision is
    # taken once, above the `if as_json` branches. In the JSON branches keys are written in sorted
    # order (serialize_bundle sorts keys) and every value not produced here is escaped with `_s`.
    def _map(self, victim: Victim, as_json: bool) -> dict[str, Any] | MappedBundle | None:  # noqa: C901
        name = victim.victim
        if self._skip and (name is None or name.strip().lower() in _PLACEHOLDER_VICTIMS):
            return None

        created, first_seen = _day_stamps(victim.announcement_date)
        confidence = self._confidence
        omr = self._omr
        hashid = victim.hashid.strip().lower()
        link = victim.leak_link
        site = victim.site
        title = victim.title
        sectors = self._sectors
        if as_json:
            # confidence, created and created_by_ref open every object but the location and author.
            head = f'{{"confidence":{self._confidence_json},"created":"{created}","created_by_ref":"{AUTHOR_ID}",'
            objects: list[Any] = [self._author_json]
        else:
            objects = [author_identity()]
        ids = [AUTHOR_ID]

        # Victim identity ---------------------------------------------------------------------
        victim_ref: str | None = None
        if name:
            victim_ref = identity_id(name, "organization")
            # A victim named like the author has the author's id: the author stands for it.
            if victim_ref != AUTHOR_ID:
                parts = []
                sector_given = victim.sector_given
                if sector_given and not sectors:
                    parts.append("Industry sector: " + sector_given)
                if victim.revenue:
                    parts.append("Reported revenue: " + victim.revenue)
                description = "\n".join(parts) if parts else None
                refs = []
                if link:
                    ref = {"source_name": "dep", "url": link}
                    if title is not None:
                        ref["description"] = title
                    refs.append(ref)
                if site and site != link:
                    refs.append(
                        {
                            "source_name": "victim-site",
                            "url": site if site.startswith("http") else "https://" + site,
                        }
                    )
                if as_json:
                    objects.append(
                        head
                        + ("" if description is None else f'"description":{_s(description)},')
                        + (f'"external_references":[{",".join(map(_ref_json, refs))}],' if refs else "")
                        + f'"id":"{victim_ref}","identity_class":"organization","labels":["{LABEL}"],'
                        f'"modified":"{created}","name":{_s(name)},{omr}"spec_version":"2.1","type":"identity"}}'
                    )
                else:
                    obj: dict[str, Any] = {
                        "type": "identity",
                        "spec_version": "2.1",
                        "id": victim_ref,
                        "created": created,
                        "modified": created,
                        "name": name,
                        "identity_class": "organization",
                        "confidence": confidence,
                        "labels": [LABEL],
                        "created_by_ref": AUTHOR_ID,
                    }
                    if description is not None:
                        obj["description"] = description
                    if refs:
                        obj["external_references"] = refs
                    objects.append(obj)
                ids.append(victim_ref)

        # Primary object: common parts ----------------------------------------------------------
        uuid_part = _uuid5(_SHA1_URL, "dep-announcement:" + hashid)
        primary_name = "DEP announcement - " + (name or victim.victim_domain_given or "Unknown Victim")
        data_types = victim.data_types
        if data_types or self._dataset_label:
            label_set = {LABEL}
            for data_type in data_types:
                if data_type:
                    label_set.add("dep:announcement-type:" + data_type.lower())
            if self._dataset_label and victim.dataset:
                label_set.add("dep:dataset:" + victim.dataset)
            primary_labels = sorted(label_set)
        else:
            primary_labels = [LABEL]
        primary_ref: dict[str, str] | None = {"source_name": "dep"}
        if link:
            primary_ref["url"] = link  # type: ignore[index]
        elif site:
            primary_ref["url"] = site if site.startswith("http") else "https://" + site  # type: ignore[index]
        if title:
            primary_ref["description"] = title  # type: ignore[index]
        if len(primary_ref) == 1:  # type: ignore[arg-type]
            primary_ref = None  # nothing to point at: the connector failed here
        primary_description = victim.description

        # Indicators: (id, name, description, pattern) -----------------------------------------
        indicators: list[tuple[str, str, str, str]] = []
        suffix = name or "unknown victim"
        domain = victim.victim_domain
        if self._site and domain:
            pattern = "[domain-name:value = '" + _pattern_literal(domain) + "']"
            indicators.append(
                (indicator_id(pattern), "Domain associated with " + suffix, "Victim domain", pattern)
            )
        if self._hash and hashid:
            hash_type = _HASH_TYPES.get(len(hashid))
            if hash_type and _is_hex(hashid):
                pattern = f"[file:hashes.'{hash_type}' = '{hashid}']"
                indicators.append(
                    (
                        indicator_id(pattern),
                        "Announcement hash for " + suffix,
                        "Hash identifier for tracking",
                        pattern,
                    )
                )

        # Optional entities (later connector): resolved here, written below ----------------------
        sector = _collapse(victim.sector) if sectors and victim_ref else None
        actor = _collapse(victim.actor) if self._actors else None
        country = _collapse(victim.country) if self._countries and victim_ref else None
        code = country_code(country, victim.victim_country_code) if country else None
        if not code:
            country = None

        # Relationships are written by one local function for both forms.
        if as_json:

            def relationship(rel_type: str, source: str, target: str) -> None:
                rid = _relationship_id_fast(rel_type, source, target)
                objects.append(
                    f'{head}"id":"{rid}","labels":["{LABEL}"],"modified":"{created}",{omr}'
                    f'"relationship_type":"{rel_type}","source_ref":"{source}","spec_version":"2.1",'
                    f'"target_ref":"{target}","type":"relationship"}}'
                )
                ids.append(rid)

        else:

            def relationship(rel_type: str, source: str, target: str) -> None:
                rid = _relationship_id_fast(rel_type, source, target)
                objects.append(
                    {
                        "type": "relationship",
                        "spec_version": "2.1",
                        "id": rid,
                        "created": created,
                        "modified": created,
                        "relationship_type": rel_type,
                        "source_ref": source,
                        "target_ref": target,
                        "created_by_ref": AUTHOR_ID,
                        "confidence": confidence,
                        "labels": [LABEL],
                    }
                )
                ids.append(rid)

        def add_indicator(indicator: tuple[str, str, str, str]) -> None:
            ind_id, ind_name, ind_description, ind_pattern = indicator
            if as_json:
                objects.append(
                    f'{head}"description":"{ind_description}","id":"{ind_id}","labels":["{LABEL}"],'
                    f'"modified":"{created}","name":{_s(ind_name)},{omr}"pattern":{_s(ind_pattern)},'
                    f'"pattern_type":"stix","pattern_version":"2.1","spec_version":"2.1",'
                    f'"type":"indicator","valid_from":"{created}"}}'
                )
            else:
                objects.append(
                    {
                        "type": "indicator",
                        "spec_version": "2.1",
                        "id": ind_id,
                        "created": created,
                        "modified": created,
                        "name": ind_name,
                        "description": ind_description,
                        "pattern": ind_pattern,
                        "pattern_type": "stix",
                        "pattern_version": "2.1",
                        "valid_from": created,
                        "confidence": confidence,
                        "labels": [LABEL],
                        "created_by_ref": AUTHOR_ID,
                    }
                )
            ids.append(ind_id)

        def add_extras() -> str | None:
            """Sector, intrusion set, location and their victim relationships; the set's id."""
            intrusion_ref = None
            if sector:
                sector_ref = _sector_id(sector)
                if as_json:
                    objects.append(
                        f'{head}"id":"{sector_ref}","identity_class":"class","labels":["{LABEL}"],'
                        f'"modified":"{created}","name":{_s(sector)},{omr}"spec_version":"2.1","type":"identity"}}'
                    )
                else:
                    objects.append(
                        {
                            "type": "identity",
                            "spec_version": "2.1",
                            "id": sector_ref,
                            "created": created,
                            "modified": created,
                            "name": sector,
                            "identity_class": "class",
                            "confidence": confidence,
                            "labels": [LABEL],
                            "created_by_ref": AUTHOR_ID,
                        }
                    )
                ids.append(sector_ref)
                relationship("part-of", victim_ref, sector_ref)  # type: ignore[arg-type]
            if actor:
                intrusion_ref = intrusion_set_id(actor)
                if as_json:
                    objects.append(
                        f'{head}"id":"{intrusion_ref}","labels":["{LABEL}"],"modified":"{created}",'
                        f'"name":{_s(actor)},{omr}"spec_version":"2.1","type":"intrusion-set"}}'
                    )
                else:
                    objects.append(
                        {
                            "type": "intrusion-set",
                            "spec_version": "2.1",
                            "id": intrusion_ref,
                            "created": created,
                            "modified": created,
                            "name": actor,
                            "confidence": confidence,
                            "labels": [LABEL],
                            "created_by_ref": AUTHOR_ID,
                        }
                    )
                ids.append(intrusion_ref)
            if country:
                country_ref = location_id(country)
                if as_json:
                    objects.append(
                        f'{{"confidence":{self._confidence_json},"country":{_s(code)},"created":"{created}",'
                        f'"created_by_ref":"{AUTHOR_ID}","id":"{country_ref}","labels":["{LABEL}"],'
                        f'"modified":"{created}","name":{_s(country)},{omr}"spec_version":"2.1",'
                        f'"type":"location","x_opencti_location_type":"Country"}}'
                    )
                else:
                    objects.append(
                        {
                            "type": "location",
                            "spec_version": "2.1",
                            "id": country_ref,
                            "created": created,
                            "modified": created,
                            "name": country,
                            "country": code,
                            "x_opencti_location_type": "Country",
                            "confidence": confidence,
                            "labels": [LABEL],
                            "created_by_ref": AUTHOR_ID,
                        }
                    )
                ids.append(country_ref)
                relationship("located-at", victim_ref, country_ref)  # type: ignore[arg-type]
            return intrusion_ref

        # Assemble ------------------------------------------------------------------------------
        if not self._report:
            primary_id = "incident--" + uuid_part
            if as_json:
                objects.append(
                    head
                    + ("" if primary_description is None else f'"description":{_s(primary_description)},')
                    + ("" if primary_ref is None else f'"external_references":[{_ref_json(primary_ref)}],')
                    + f'"first_seen":"{first_seen}","id":"{primary_id}","incident_type":"cybercrime",'
                    f'"labels":[{",".join(map(_s, primary_labels))}],"modified":"{created}",'
                    f'"name":{_s(primary_name)},{omr}"spec_version":"2.1","type":"incident"}}'
                )
            else:
                incident: dict[str, Any] = {
                    "type": "incident",
                    "spec_version": "2.1",
                    "id": primary_id,
                    "created": created,
                    "modified": created,
                    "name": primary_name,
                    "confidence": confidence,
                    "labels": primary_labels,
                    "created_by_ref": AUTHOR_ID,
                    "incident_type": "cybercrime",
                    "first_seen": first_seen,
                }
                if primary_description is not None:
                    incident["description"] = primary_description
                if primary_ref is not None:
                    incident["external_references"] = [primary_ref]
                objects.append(incident)
            ids.append(primary_id)
            if victim_ref:
                relationship("targets", primary_id, victim_ref)
            for indicator in indicators:
                add_indicator(indicator)
                relationship("indicates", indicator[0], primary_id)
            intrusion_ref = add_extras()
            if intrusion_ref:
                relationship("attributed-to", primary_id, intrusion_ref)
        else:
            primary_id = "report--" + uuid_part
            add_extras()
            for indicator in indicators:
                add_indicator(indicator)
            if victim_ref:
                for indicator in indicators:
                    relationship("related-to", indicator[0], victim_ref)
            if as_json:
                objects.append(
                    head
                    + (f'"description":{_s(primary_description)},' if primary_description else "")
                    + ("" if primary_ref is None else f'"external_references":[{_ref_json(primary_ref)}],')
                    + f'"id":"{primary_id}","labels":[{",".join(map(_s, primary_labels))}],'
                    f'"modified":"{created}","name":{_s(primary_name)},{omr}'
                    f'"object_refs":[{",".join(map(_s, ids))}],"published":"{created}",'
                    f'"report_types":["threat-report"],"spec_version":"2.1","type":"report"}}'
                )
            else:
                report: dict[str, Any] = {
                    "type": "report",
                    "spec_version": "2.1",
                    "id": primary_id,
                    "created": created,
                    "modified": created,
                    "name": primary_name,
                    "published": created,
                    "report_types": ["threat-report"],
                    "confidence": confidence,
                    "labels": primary_labels,
                    "created_by_ref": AUTHOR_ID,
                    "object_refs": list(ids),
                }
                if primary_description:
                    report["description"] = primary_description
                if primary_ref is not None:
                    report["external_references"] = [primary_ref]
                objects.append(report)

        bundle_id = _bundle_id(primary_id, self.fingerprint)
        if as_json:
            if self._marking_json:
                objects.insert(0, self._marking_json)
            return MappedBundle(
                f'{{"id":"{bundle_id}","objects":[{",".join(objects)}],"type":"bundle"}}',
                bundle_id,
                primary_id,
                len(objects),
            )
        if self._marking_id:
            marking_id = self._marking_id
            for obj in objects:
                obj["object_marking_refs"] = [marking_id]
            objects.insert(0, marking_definition(self._tlp))  # type: ignore[arg-type]
        return {"type": "bundle", "id": bundle_id, "objects": objects}


def _ref_json(ref: dict[str, str]) -> str:
    """An external reference as serialize_bundle writes it (keys: description, source_name, url)."""
    description = ref.get("description")
    url = ref.get("url")
    return (
        "{"
        + ("" if description is None else f'"description":{_s(description)},')
        + f'"source_name":{_s(ref["source_name"])}'
        + ("" if url is None else f',"url":{_s(url)}')
        + "}"
    )


_MAPPERS: dict[MappingOptions, StixMapper] = {}
_DEFAULT_OPTIONS = MappingOptions()


def mapper_for(options: MappingOptions | None = None) -> StixMapper:
    """The StixMapper of `options` (default options for None), compiled once per process and kept."""
    if options is None:
        options = _DEFAULT_OPTIONS
    elif not isinstance(options, MappingOptions):
        raise TypeError(f"options must be MappingOptions, got {type(options).__name__}")
    mapper = _MAPPERS.get(options)
    if mapper is None:
        mapper = _MAPPERS[options] = StixMapper(options)
    return mapper


def map_victim(victim: Victim, options: MappingOptions | None = None) -> dict[str, Any] | None:
    """The STIX 2.1 bundle (plain dict) for one announcement; None when skipped (skip_empty_victim).

    Every call returns fresh dicts and lists: callers may mutate the result (pycti's splitter does).
    """
    return mapper_for(options).map(victim)


def serialize_bundle(bundle: dict[str, Any]) -> str:
    """Deterministic compact JSON: keys sorted at every level, `,`/`:` separators, ASCII only."""
    return _ENCODER.encode(bundle)


def map_victim_json(victim: Victim, options: MappingOptions | None = None) -> str | None:
    """`serialize_bundle(map_victim(victim, options))`, byte for byte, built directly (faster)."""
    return mapper_for(options).map_json(victim)


def _iter_refs(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key.endswith("_ref") and isinstance(item, str):
                yield item
            elif key.endswith("_refs") and isinstance(item, list):
                yield from (ref for ref in item if isinstance(ref, str))
            else:
                yield from _iter_refs(item)
    elif isinstance(value, list):
        for item in value:
            yield from _iter_refs(item)


def bundle_dangling_refs(bundle: dict[str, Any]) -> set[str]:
    """Ids referenced by any `*_ref` / `*_refs` (at any depth) that no object of the bundle has."""
    ids = {obj.get("id") for obj in bundle.get("objects", ())}
    return {ref for ref in _iter_refs(bundle.get("objects", ())) if ref not in ids}
