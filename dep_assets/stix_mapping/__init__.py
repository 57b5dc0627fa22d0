"""STIX 2.1 mapping of normalized DEP announcements, compatible with the DEP OpenCTI connector.

Pure Python (no Dagster, no stix2 objects on the hot path). Default `MappingOptions()` reproduce the
connector's objects and ids exactly; see `mapper.py` for the documented differences.
"""

from dep_assets.stix_mapping.mapper import (
    AUTHOR_ID,
    AUTHOR_NAME,
    OPENCTI_NAMESPACE,
    MappedBundle,
    StixMapper,
    author_identity,
    bundle_dangling_refs,
    country_code,
    identity_id,
    incident_id,
    indicator_id,
    intrusion_set_id,
    location_id,
    map_victim,
    map_victim_json,
    mapper_for,
    marking_definition,
    relationship_id,
    report_id,
    serialize_bundle,
)
from dep_assets.stix_mapping.options import (
    MAPPING_VERSION,
    PRIMARY_OBJECTS,
    TLP_LEVELS,
    MappingOptions,
)

__all__ = [
    "AUTHOR_ID",
    "AUTHOR_NAME",
    "MAPPING_VERSION",
    "OPENCTI_NAMESPACE",
    "MappedBundle",
    "PRIMARY_OBJECTS",
    "TLP_LEVELS",
    "MappingOptions",
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
