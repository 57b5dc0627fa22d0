"""Settings of the STIX mapping, with the DEP OpenCTI connector's defaults.

Plain Python, no Dagster. `MappingOptions()` with no argument gives exactly the connector's objects and
ids (see `mapper.py`); every other setting adds what later connector versions and peers offer.

`MAPPING_VERSION` changes whenever the mapper's output changes for the same input and options, so
`MappingOptions.fingerprint()` (version + options) can serve as a code/data version: two runs with the
same fingerprint map the same `Victim` to byte-identical JSON.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields

# Bump on any change of the mapper's output (objects, properties, ids, serialization).
MAPPING_VERSION = "1"

PRIMARY_OBJECTS = ("incident", "report")
TLP_LEVELS = ("clear", "green", "amber", "amber+strict", "red")

_TLP_ALIASES = {"white": "clear"}
_BOOL_FIELDS = (
    "enable_site_indicator",
    "enable_hash_indicator",
    "skip_empty_victim",
    "create_sector_identities",
    "create_intrusion_sets",
    "create_country_locations",
    "dataset_label",
)


@dataclass(frozen=True)
class MappingOptions:
    """What the mapper produces. Defaults are the connector's (DEP_* settings in brackets).

    - confidence [DEP_CONFIDENCE]: integer 0..100 on every object but the author and markings.
    - enable_site_indicator [DEP_ENABLE_SITE_INDICATOR]: domain-name indicator per announcement.
    - enable_hash_indicator [DEP_ENABLE_HASH_INDICATOR]: file-hash indicator from the hashid.
    - skip_empty_victim [DEP_SKIP_EMPTY_VICTIM]: no bundle when `victim` is "", "n/a", "none" or missing.
    - primary_object [DEP_PRIMARY_OBJECT]: "incident" (connector) or "report" (later connector).
    - tlp [DEP_TLP]: None (no marking, connector) or clear/green/amber/amber+strict/red.
      Case-insensitive; a "TLP:" prefix is accepted, "white" means "clear", "" / "none" mean None.
    - create_sector_identities [DEP_CREATE_SECTOR_IDENTITIES]: sector Identity (class), victim part-of it.
    - create_intrusion_sets [DEP_CREATE_INTRUSION_SETS]: Intrusion Set from `actor`.
    - create_country_locations [DEP_CREATE_COUNTRY_LOCATIONS]: country Location, victim located-at it.
    - dataset_label: label `dep:dataset:<code>` on the primary object.
    """

    confidence: int = 70
    enable_site_indicator: bool = True
    enable_hash_indicator: bool = True
    skip_empty_victim: bool = True
    primary_object: str = "incident"
    tlp: str | None = None
    create_sector_identities: bool = False
    create_intrusion_sets: bool = False
    create_country_locations: bool = False
    dataset_label: bool = False

    def __post_init__(self) -> None:
        confidence = self.confidence
        if isinstance(confidence, bool) or not isinstance(confidence, int):
            raise ValueError(
                f"MappingOptions.confidence must be an integer from 0 to 100 (DEP_CONFIDENCE), "
                f"got {confidence!r} ({type(confidence).__name__})"
            )
        if not 0 <= confidence <= 100:
            raise ValueError(
                f"MappingOptions.confidence must be from 0 to 100 (DEP_CONFIDENCE), got {confidence}"
            )
        for name in _BOOL_FIELDS:
            value = getattr(self, name)
            if not isinstance(value, bool):
                raise ValueError(
                    f"MappingOptions.{name} must be true or false, got {value!r} "
                    f"({type(value).__name__})"
                )

        primary = self.primary_object
        if not isinstance(primary, str) or primary.strip().lower() not in PRIMARY_OBJECTS:
            raise ValueError(
                "MappingOptions.primary_object (DEP_PRIMARY_OBJECT) must be one of "
                f"{', '.join(PRIMARY_OBJECTS)}; got {primary!r}"
            )
        object.__setattr__(self, "primary_object", primary.strip().lower())

        object.__setattr__(self, "tlp", _normalize_tlp(self.tlp))

    def fingerprint(self) -> str:
        """Short stable string of MAPPING_VERSION + every option, e.g. `1-5f0c2a9d7e31`.

        Stable across processes and machines (sha256 over sorted JSON, not Python's hash()).
        """
        payload = json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))
        digest = hashlib.sha256(f"{MAPPING_VERSION}|{payload}".encode()).hexdigest()
        return f"{MAPPING_VERSION}-{digest[:12]}"

    def as_dict(self) -> dict[str, object]:
        """The options as a plain dict (for metadata and logs)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _normalize_tlp(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(
            "MappingOptions.tlp (DEP_TLP) must be None or one of "
            f"{', '.join(TLP_LEVELS)}; got {value!r} ({type(value).__name__})"
        )
    level = value.strip().lower()
    if level.startswith("tlp:"):
        level = level[4:].strip()
    if level in ("", "none"):
        return None
    level = _TLP_ALIASES.get(level, level)
    if level not in TLP_LEVELS:
        raise ValueError(
            "MappingOptions.tlp (DEP_TLP) must be None or one of "
            f"{', '.join(TLP_LEVELS)}; got {value!r}"
        )
    return level
