"""Normalization of archived DEP records into `Victim` rows. Pure Python: no Dagster, no DuckDB."""

from .fields import (
    CONNECTOR_VICTIM_PLACEHOLDERS,
    GENERIC_ACTORS,
    KNOWN_DATA_TYPES,
    PLACEHOLDERS,
    actor_name,
    clean_text,
    data_types,
    decode_description,
    domain_of,
    given_text,
    is_generic_actor,
    is_placeholder,
    normalize_victim_name,
    parse_data_types,
    repair_link,
    stripped_or_none,
    victim_is_placeholder,
)
from .keys import hashid_key, record_day, without_surrogates
from .model import Victim
from .normalizer import (
    KNOWN_FIELDS,
    QUARANTINE_CODES,
    TEXT_FIELDS,
    Quarantined,
    normalize_record,
)

__all__ = [
    "CONNECTOR_VICTIM_PLACEHOLDERS",
    "GENERIC_ACTORS",
    "KNOWN_DATA_TYPES",
    "KNOWN_FIELDS",
    "PLACEHOLDERS",
    "QUARANTINE_CODES",
    "TEXT_FIELDS",
    "Quarantined",
    "Victim",
    "actor_name",
    "clean_text",
    "data_types",
    "decode_description",
    "domain_of",
    "given_text",
    "hashid_key",
    "is_generic_actor",
    "is_placeholder",
    "normalize_record",
    "normalize_victim_name",
    "parse_data_types",
    "record_day",
    "repair_link",
    "stripped_or_none",
    "victim_is_placeholder",
    "without_surrogates",
]
