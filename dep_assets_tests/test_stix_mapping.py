"""The STIX mapping: connector-exact by default, valid and self-contained with every option.

The oracle is the DEP OpenCTI connector's own logic (README version), run here with stix2 and pycti the
way the connector runs them, on the raw sample records. `Victim`s are written by hand (the normalizer is
not used), following the field correspondence in `dep_assets/normalize/model.py`.
"""

from __future__ import annotations

import itertools
import json
import pickle
import re
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit
from uuid import NAMESPACE_URL, uuid5

import pycti
import pytest
import stix2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pycti.utils.opencti_stix2_splitter import OpenCTIStix2Splitter
from stix2 import v21
from stix2validator import ValidationOptions, validate_string
from stix2validator.v21.enums import COUNTRY_CODES

from dep_assets.normalize.model import Victim
from dep_assets.stix_mapping import (
    AUTHOR_ID,
    MAPPING_VERSION,
    MappingOptions,
    StixMapper,
    bundle_dangling_refs,
    country_code,
    identity_id,
    incident_id,
    indicator_id,
    map_victim,
    map_victim_json,
    marking_definition,
    relationship_id,
    serialize_bundle,
)
from dep_assets.stix_mapping.mapper import ISO_COUNTRY_CODES


def _load_sample() -> list[dict[str, Any]]:
    """shared/samples/privlist-ext-sample.json (beside the clone, as CI lays it, or /work/shared);
    else the repository's data/sample/ext, whose days begin with the same 30 records."""
    root = Path(__file__).resolve().parents[1]
    for path in (
        root.parent / "shared" / "samples" / "privlist-ext-sample.json",
        Path("/work/shared/samples/privlist-ext-sample.json"),
    ):
        if path.exists():
            return json.loads(path.read_text(encoding="utf-8"))
    records: list[dict[str, Any]] = []
    for path in sorted((root / "data" / "sample" / "ext").glob("*.json")):
        records += json.loads(path.read_text(encoding="utf-8"))
    return records[:30]


RAW = _load_sample()
assert len(RAW) == 30 and RAW[17]["victim"] == "N/A "

TIMESTAMPS = frozenset({"created", "modified", "valid_from"})  # ours are deterministic by design

# ==================================================================================================
# The oracle: the connector's _process_item (README version), with stix2 and pycti
# ==================================================================================================

KNOWN_TYPES = frozenset(
    "AI CUSTOMERS DEFENSE EMPLOYEES FINANCIAL INTERNAL IP MEDICAL PARTNERS PII SENSITIVES".split()
)


class ConnectorDropped(Exception):
    """The connector lost this record (validation or stix2 error, logged and skipped)."""


def _connector_domain(value: str | None) -> str | None:
    if not value:
        return None
    parsed = urlsplit(value if "://" in value else f"https://{value}")
    return (parsed.hostname or "").strip().lower() or None


def connector_objects(
    raw: dict[str, Any],
    *,
    confidence: int = 70,
    enable_site_indicator: bool = True,
    enable_hash_indicator: bool = True,
    skip_empty_victim: bool = True,
    accept_any_type: bool = False,
) -> list[dict[str, Any]] | None:
    """The objects of the bundle the connector sends for one raw record; None when it skips it.

    accept_any_type: the connector dropped records with announcement types outside its enum (or
    null); with True the oracle labels them the way the connector labels known ones (our behaviour).
    """
    # LeakRecord(**raw)
    if not isinstance(raw.get("hashid"), str) or not raw.get("date"):
        raise ConnectorDropped("hashid/date")
    day = date.fromisoformat(raw["date"])
    types = raw.get("annDataTypes", [])
    if types is None:
        if not accept_any_type:
            raise ConnectorDropped("annDataTypes null")
        types = []
    if not accept_any_type and any(t not in KNOWN_TYPES for t in types):
        raise ConnectorDropped(f"unknown announcement type in {types}")
    victim = raw.get("victim")
    sector = raw.get("sector")
    revenue = raw.get("revenue")
    ann_title = raw.get("annTitle")
    ann_description = raw.get("annDescription")
    ann_link = raw.get("annLink")
    if ann_link is not None:
        if ann_link.startswith("https//"):
            ann_link = "https://" + ann_link[len("https//") :]
        elif ann_link.startswith("http//"):
            ann_link = "http://" + ann_link[len("http//") :]
    site = (raw.get("site") or "").strip() or None if raw.get("site") is not None else None
    victim_domain = (
        (raw.get("victimDomain") or "").strip() or None if raw.get("victimDomain") is not None else None
    )
    indicator_domain = _connector_domain(victim_domain) or _connector_domain(site)

    # _process_item
    if skip_empty_victim and (victim or "").strip().lower() in {"", "n/a", "none"}:
        return None
    label = "DigIntLab"
    author = v21.Identity(
        id=pycti.Identity.generate_id(label, identity_class="organization"),
        name=label,
        description="We Track and Monitor the Cyber Space",
        contact_information="https://doubleextortion.com/",
        identity_class="organization",
    )
    try:
        victim_identity = None
        if victim:
            refs: list[dict[str, Any]] = []
            if ann_link:
                refs.append({"source_name": "dep", "url": ann_link, "description": ann_title})
            if site and site != ann_link:
                refs.append(
                    {
                        "source_name": "victim-site",
                        "url": f"https://{site}" if not site.startswith("http") else site,
                    }
                )
            parts = []
            if sector:
                parts.append(f"Industry sector: {sector}")
            if revenue:
                parts.append(f"Reported revenue: {revenue}")
            victim_identity = v21.Identity(
                id=pycti.Identity.generate_id(victim, identity_class="organization"),
                name=victim,
                description="\n".join(parts) or None,
                identity_class="organization",
                confidence=confidence,
                labels=[label],
                created_by_ref=author,
                external_references=refs or None,
            )

        name = victim or victim_domain or "Unknown Victim"
        description = ann_description
        if description:
            description = unquote(description)
        first_seen = datetime.combine(day, datetime.min.time(), tzinfo=UTC)
        reference: dict[str, Any] = {"source_name": "dep"}
        if ann_link:
            reference["url"] = ann_link
        elif site:
            reference["url"] = site if site.startswith("http") else f"https://{site}"
        if ann_title:
            reference["description"] = ann_title
        incident = v21.Incident(
            id=f"incident--{uuid5(NAMESPACE_URL, 'dep-announcement:' + raw['hashid'].strip().lower())}",
            name=f"DEP announcement - {name}",
            description=description,
            created=first_seen,
            confidence=confidence,
            labels=sorted({label, *(f"dep:announcement-type:{t.lower()}" for t in types)}),
            created_by_ref=author,
            external_references=[reference],
            custom_properties={"incident_type": "cybercrime", "first_seen": first_seen},
        )

        indicators = []
        if enable_site_indicator and indicator_domain:
            pattern = f"[domain-name:value = '{indicator_domain}']"
            indicators.append(
                v21.Indicator(
                    id=pycti.Indicator.generate_id(pattern),
                    name=f"Domain associated with {victim or 'unknown victim'}",
                    description="Victim domain",
                    pattern_type="stix",
                    pattern=pattern,
                    valid_from=datetime.now(UTC),
                    confidence=confidence,
                    labels=[label],
                    created_by_ref=author,
                )
            )
        hash_value = raw["hashid"].strip().lower()
        hash_type = {32: "MD5", 40: "SHA-1", 64: "SHA-256"}.get(len(hash_value))
        if enable_hash_indicator and hash_value and hash_type:
            pattern = f"[file:hashes.'{hash_type}' = '{hash_value}']"
            indicators.append(
                v21.Indicator(
                    id=pycti.Indicator.generate_id(pattern),
                    name=f"Announcement hash for {victim or 'unknown victim'}",
                    description="Hash identifier for tracking",
                    pattern_type="stix",
                    pattern=pattern,
                    valid_from=datetime.now(UTC),
                    confidence=confidence,
                    labels=[label],
                    created_by_ref=author,
                )
            )

        def relationship(rel_type: str, source: str, target: str) -> v21.Relationship:
            return v21.Relationship(
                id=pycti.StixCoreRelationship.generate_id(rel_type, source, target),
                relationship_type=rel_type,
                source_ref=source,
                target_ref=target,
                created_by_ref=author,
                confidence=confidence,
                labels=[label],
            )

        objects: list[Any] = [author]
        if victim_identity:
            objects.append(victim_identity)
        objects.append(incident)
        if victim_identity:
            objects.append(relationship("targets", incident.id, victim_identity.id))
        for indicator in indicators:
            objects.append(indicator)
            objects.append(relationship("indicates", indicator.id, incident.id))
    except stix2.exceptions.STIXError as error:
        raise ConnectorDropped(str(error)) from error
    deduped = {obj.id: obj for obj in objects}
    bundle = v21.Bundle(objects=list(deduped.values()), allow_custom=True)
    return json.loads(bundle.serialize())["objects"]


# ==================================================================================================
# Victims written by hand from the sample records (index in the sample file -> Victim)
# ==================================================================================================


def _victim(**fields: Any) -> Victim:
    values: dict[str, Any] = {
        "dataset": "ext",
        "victim_normalized": None,
        "victim_is_placeholder": False,
        "victim_domain": None,
        "victim_domain_given": None,
        "site": None,
        "sector": None,
        "sector_given": None,
        "actor": None,
        "actor_given": None,
        "country": None,
        "country_given": None,
        "victim_country_code": None,
        "victim_city": None,
        "victim_state": None,
        "victim_address": None,
        "revenue": None,
        "amount": None,
        "naics": None,
        "data_types": (),
        "leak_link": None,
        "title": None,
        "description": None,
    }
    values.update(fields)
    if values["victim"] is not None and values["victim_normalized"] is None:
        values["victim_normalized"] = " ".join(values["victim"].casefold().split()) or None
    return Victim(**values)


LONG_X = RAW[3]["annDescription"]
assert set(LONG_X) == {"x"} and len(LONG_X) == 5000

SAMPLE_VICTIMS: dict[int, Victim] = {
    0: _victim(  # unknown type CREDENTIALS (connector dropped it), padded upper-case hashid
        hashid="61026ab80cc93f3f43985234dcdfc7516973d33918b81a4784359ebc92f1e208",
        announcement_date=date(2026, 3, 1),
        victim="Müller AG",
        victim_domain="mller-795.fr",
        victim_domain_given="mller-795.fr",
        site="mller-795.fr",
        sector="Transportation/Logistics",
        sector_given="Transportation/Logistics",
        actor="Akros",
        actor_given="Akros",
        country="Italy",
        country_given="Italy",
        victim_country_code="IT",
        victim_city="Osaka",
        victim_state="Piedmont",
        victim_address="Via Esempio 1",
        amount="2.1 TB",
        naics="621111",
        data_types=("PII", "CREDENTIALS"),
        leak_link="http://leak12exampleonion.onion/post/1",
        description="Company data including employee records will be published.",
    ),
    1: _victim(  # sector "n/a" (given as is), `https//` repaired, no site
        hashid="a7636e3f0c45dc40e962770d79c4f67e25aa55bdbdc7be2da53ca10866c906fd",
        announcement_date=date(2026, 3, 1),
        victim="Società S.p.A.",
        victim_domain="societ-215.fr",
        victim_domain_given="societ-215.fr",
        sector_given="n/a",
        actor="Akros",
        actor_given="Akros",
        country="Germany",
        country_given="Germany",
        victim_country_code="DE",
        victim_city="Abidjan",
        naics="5415",
        data_types=("FINANCIAL", "PII"),
        leak_link="https://leak20exampleonion.onion/post/2",
        description="Company data including employee records will be published.",
    ),
    3: _victim(  # site is a full URL, title set, 5000-character description
        hashid="cbd739966bbb3ee4e34f1cd6102ba684146a9cfff28cce4a2f71eea59581aee4",
        announcement_date=date(2026, 3, 1),
        victim="Yarrow Orchard S.r.l.",
        victim_domain="yarrow-604.co.uk",
        victim_domain_given="yarrow-604.co.uk",
        site="https://www.yarrow-604.co.uk/about?x=1",
        sector="Education",
        sector_given="Education",
        actor_given="unknown",
        country="Spain",
        country_given="Spain",
        naics="621111",
        data_types=("DEFENSE", "AI", "CUSTOMERS"),
        leak_link="http://leak21exampleonion.onion/post/4",
        title="yarrow-604.co.uk",
        description=LONG_X,
    ),
    4: _victim(  # MD5-length hashid, `http//` repaired, URL-encoded description, domain from site
        hashid="7af8297a68018034ca836acbcce4a4d2",
        announcement_date=date(2026, 3, 1),
        victim="Borealis Harbor Xenon Group",
        victim_domain="borealis-353.es",
        site="borealis-353.es",
        sector="Legal Services",
        sector_given="Legal Services",
        actor_given="unknown",
        country="France",
        country_given="France",
        naics="5415",
        data_types=("MEDICAL",),
        leak_link="http://leak7exampleonion.onion/post/5",
        title="Borealis Harbor Xenon Group leak",
        description="Company data including employee records will be published.",
    ),
    7: _victim(  # victimDomain padded upper case
        hashid="542f8f6067e2e6cc47fa9f14f585bfdc624a6cdf047d687db0eb78aa1eb634d7",
        announcement_date=date(2026, 3, 1),
        victim="Fjord Tidal Yarrow Group",
        victim_domain="fjord-529.com.br",
        victim_domain_given="FJORD-529.COM.BR",
        site="fjord-529.com.br",
        sector="Transportation/Logistics",
        sector_given="Transportation/Logistics",
        actor_given="ransomware group",
        country="Côte d'Ivoire",
        country_given="Côte d'Ivoire",
        victim_country_code="CI",
        naics="332",
        data_types=("DEFENSE", "MEDICAL"),
        leak_link="http://leak3exampleonion.onion/post/8",
        title="Fjord Tidal Yarrow Group",
        description="Company data including employee records will be published.",
    ),
    8: _victim(  # no description, no site, no actor
        hashid="45b789fd9ea93770c0dec714d728d405cfaa4b6912569a3dc34955472c03d212",
        announcement_date=date(2026, 3, 2),
        victim="Meridian Vertex Group",
        victim_domain="meridian-74.org",
        victim_domain_given="MERIDIAN-74.ORG",
        sector="Healthcare",
        sector_given="Healthcare",
        country="United Kingdom",
        country_given="United Kingdom",
        victim_country_code="GB",
        amount="500000",
        data_types=("DEFENSE", "IP"),
        leak_link="http://leak19exampleonion.onion/post/9",
        title="Meridian Vertex Group leak",
    ),
    11: _victim(  # sector "", non-ASCII description
        hashid="7f9878c478116c2fcd96cbb51575d1b03ce406b8c3a2883e305456f7dae97ba2",
        announcement_date=date(2026, 3, 2),
        victim="Yarrow GmbH",
        victim_domain="yarrow-308.es",
        victim_domain_given="yarrow-308.es",
        site="yarrow-308.es",
        sector_given="",
        actor="BlueMantis",
        actor_given="BlueMantis",
        country="Italy",
        country_given="Italy",
        victim_country_code="IT",
        data_types=("IP", "MEDICAL", "SENSITIVES"),
        leak_link="http://leak35exampleonion.onion/post/12",
        description="Données personnelles — 42 GB — à publier",
    ),
    13: _victim(  # annDataTypes null (connector dropped it), domain from a site URL
        hashid="98ba7da371893b6cac2f6e611ea406b810b79b4f7d30d6ad100aa4c16af5435a",
        announcement_date=date(2026, 3, 2),
        victim="Cedar Meridian Willow AG",
        victim_domain="www.cedar-51.com",
        site="https://www.cedar-51.com/about?x=1",
        sector="Education",
        sector_given="Education",
        actor="PaperKite",
        actor_given="PaperKite",
        naics="332",
        leak_link="http://leak40exampleonion.onion/post/14",
        title="Cedar Meridian Willow AG",
        description="Cedar Meridian Willow AG data will be published. Employees and customers affected.",
    ),
    15: _victim(  # sector and revenue: two description lines; no domain at all
        hashid="ca3d7b1c66fbfe5cde7f0739677b24c405f426def7fe300e3fb920316410a66f",
        announcement_date=date(2026, 3, 2),
        victim="Iris Cedar Holdings",
        sector="Legal Services",
        sector_given="Legal Services",
        actor_given="Unattributed",
        country="Germany",
        country_given="Germany",
        victim_country_code="DE",
        revenue="$25M",
        data_types=("MEDICAL", "SENSITIVES", "INTERNAL"),
        leak_link="http://leak37exampleonion.onion/post/16",
        title="iris-242.es",
        description="Iris Cedar Holdings data will be published. Employees and customers affected.",
    ),
    17: _victim(  # placeholder victim: skipped
        hashid="a31ff1c79031692228c1dfa90a8f7e850aaaec510e8b1d423d5254add3dc9e6d",
        announcement_date=date(2026, 3, 3),
        victim="N/A ",
        victim_is_placeholder=True,
        victim_domain="pioneer-678.co.uk",
        site="pioneer-678.co.uk",
        sector="Legal Services",
        sector_given="Legal Services",
        actor="NightOwl",
        actor_given="NightOwl",
        country="France",
        country_given="France",
        victim_country_code="FR",
        revenue="$1.2B",
        data_types=("FINANCIAL",),
        leak_link="http://leak25exampleonion.onion/post/18",
        description="Company data including employee records will be published.",
    ),
    20: _victim(  # no annLink, no site: the incident's reference has only a description
        hashid="6568a855703c79fd7413ba186c714526c4beed37a666ad3b6c527d9f36d9fb03",
        announcement_date=date(2026, 3, 3),
        victim="Pioneer SA",
        victim_domain="pioneer-801.it",
        victim_domain_given="pioneer-801.it",
        sector="Financial Services",
        sector_given="Financial Services",
        actor="BlueMantis",
        actor_given="BlueMantis",
        data_types=("PII",),
        title="Pioneer SA leak",
        description="Pioneer SA data will be published. Employees and customers affected.",
    ),
    22: _victim(  # site "" (None), annDataTypes null (connector dropped it), revenue, no description
        hashid="f630e314957f3a73a2156f21e7d4e8159f7992389342446e6285ecf339a3eef5",
        announcement_date=date(2026, 3, 3),
        victim="Harbor Willow Cedar SA",
        victim_domain="harbor-991.org",
        victim_domain_given="harbor-991.org",
        sector="Construction",
        sector_given="Construction",
        actor="NightOwl",
        actor_given="NightOwl",
        country="United States",
        country_given="United States",
        victim_country_code="US",
        revenue="$4M",
        leak_link="http://leak19exampleonion.onion/post/23",
        title="Harbor Willow Cedar SA",
    ),
    28: _victim(  # no annLink: the incident points at https://<site>
        hashid="db19a0989ef5b5833e96d0df7161c73cca955973f230e7c097d36764fc914430",
        announcement_date=date(2026, 3, 3),
        victim="Harbor Ltd",
        victim_domain="harbor-999.ca",
        victim_domain_given="harbor-999.ca",
        site="harbor-999.ca",
        sector="Financial Services",
        sector_given="Financial Services",
        actor_given="unknown",
        country="Brazil",
        country_given="Brazil",
        data_types=("PII", "CREDENTIALS"),
        title="Harbor Ltd leak",
        description="Leaked records available: finance, HR & legal; 100% authentic.",
    ),
}
# Records the connector lost because of its closed announcement-type enum (we keep them).
CONNECTOR_DROPPED_TYPES = {0, 13, 22, 28}


def _strip_timestamps(obj: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in obj.items() if key not in TIMESTAMPS}


def _objects(bundle: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {obj["id"]: obj for obj in bundle["objects"]}


# ==================================================================================================
# Ids
# ==================================================================================================


def test_known_ids_from_the_mapping_doc() -> None:
    assert incident_id("a" * 64) == "incident--c343b09a-9905-5d1a-88b1-88968c5b0cf7"
    assert identity_id("Example Victim", "organization") == "identity--c4f2205b-a322-58f8-8310-ac0d11114a2a"
    assert (
        indicator_id("[domain-name:value = 'example.com']")
        == "indicator--7a77fc31-d147-5d72-a862-2102ca88d002"
    )
    assert (
        indicator_id(f"[file:hashes.'SHA-256' = '{'a' * 64}']")
        == "indicator--597b21d5-03c5-530f-9758-54d6796f0768"
    )
    assert identity_id("DigIntLab", "organization") == AUTHOR_ID == "identity--b78b3c4f-7b75-5a00-81c0-b76d4124b2ab"


def test_known_ids_appear_in_a_mapped_bundle() -> None:
    victim = _victim(
        hashid="a" * 64,
        announcement_date=date(2026, 3, 1),
        victim="Example Victim",
        victim_domain="example.com",
        victim_domain_given="example.com",
    )
    ids = set(_objects(map_victim(victim, MappingOptions())))  # type: ignore[arg-type]
    assert {
        AUTHOR_ID,
        "incident--c343b09a-9905-5d1a-88b1-88968c5b0cf7",
        "identity--c4f2205b-a322-58f8-8310-ac0d11114a2a",
        "indicator--7a77fc31-d147-5d72-a862-2102ca88d002",
        "indicator--597b21d5-03c5-530f-9758-54d6796f0768",
    } <= ids


@settings(max_examples=300, deadline=None)
@given(
    name=st.text(max_size=60),
    identity_class=st.sampled_from(["organization", "class", "Individual"]),
    pattern=st.text(max_size=80),
    rel_type=st.text(max_size=20),
    source=st.text(max_size=40),
    target=st.text(max_size=40),
)
def test_ids_equal_pyctis(
    name: str, identity_class: str, pattern: str, rel_type: str, source: str, target: str
) -> None:
    assert identity_id(name, identity_class) == pycti.Identity.generate_id(name, identity_class)
    assert indicator_id(pattern) == pycti.Indicator.generate_id(pattern)
    assert relationship_id(rel_type, source, target) == pycti.StixCoreRelationship.generate_id(
        rel_type, source, target
    )


@settings(max_examples=200, deadline=None)
@given(hashid=st.text(max_size=70))
def test_incident_id_is_the_connectors(hashid: str) -> None:
    expected = f"incident--{uuid5(NAMESPACE_URL, 'dep-announcement:' + hashid.strip().lower())}"
    assert incident_id(hashid) == expected


# ==================================================================================================
# Default options: exactly the connector's objects
# ==================================================================================================


@pytest.mark.parametrize("index", sorted(SAMPLE_VICTIMS))
def test_default_mapping_equals_the_connector(index: int) -> None:
    raw = RAW[index]
    victim = SAMPLE_VICTIMS[index]
    ours = map_victim(victim, MappingOptions())

    if index in CONNECTOR_DROPPED_TYPES:
        with pytest.raises(ConnectorDropped):
            connector_objects(raw)
    expected = connector_objects(raw, accept_any_type=True)

    if expected is None:
        assert ours is None
        return
    assert ours is not None
    assert ours["type"] == "bundle"
    # Same objects, same ids, same order.
    assert [obj["id"] for obj in ours["objects"]] == [obj["id"] for obj in expected]
    for mine, theirs in zip(ours["objects"], expected, strict=True):
        assert _strip_timestamps(mine) == _strip_timestamps(theirs), mine["id"]
        assert set(mine) == set(theirs)  # timestamps present on both sides too

    day = victim.announcement_date.isoformat() + "T00:00:00.000Z"
    for obj in ours["objects"]:
        assert obj["spec_version"] == "2.1"
        if obj["id"] == AUTHOR_ID:
            assert obj["created"] == obj["modified"] == "2024-01-01T00:00:00.000Z"
            continue
        assert obj["created"] == obj["modified"] == day
        if obj["type"] == "indicator":
            assert obj["valid_from"] == day
    incident = next(obj for obj in ours["objects"] if obj["type"] == "incident")
    assert incident["first_seen"] == victim.announcement_date.isoformat() + "T00:00:00Z"


EDGE_VARIANTS = {
    "empty title": ({"annTitle": ""}, {"title": ""}),
    "site equals the leak link": (
        {"site": "http://leak20exampleonion.onion/post/2", "annLink": "http://leak20exampleonion.onion/post/2"},
        {"site": "http://leak20exampleonion.onion/post/2", "leak_link": "http://leak20exampleonion.onion/post/2"},
    ),
    "site with scheme, no link": (
        {"site": "http://acme.example/x", "annLink": None},
        {"site": "http://acme.example/x", "leak_link": None},
    ),
    "empty link": ({"annLink": "", "site": "acme.example"}, {"leak_link": "", "site": "acme.example"}),
    "empty description": ({"annDescription": ""}, {"description": ""}),
    "empty revenue and sector": ({"revenue": "", "sector": ""}, {"revenue": "", "sector_given": ""}),
    "revenue only": ({"revenue": "$1B", "sector": None}, {"revenue": "$1B", "sector_given": None}),
    "no victim domain, no site": (
        {"victimDomain": None, "site": None},
        {"victim_domain": None, "victim_domain_given": None, "site": None},
    ),
    "SHA-1 hashid": ({"hashid": " " + "AB" * 20}, {"hashid": "ab" * 20}),
}


@pytest.mark.parametrize("variant", sorted(EDGE_VARIANTS))
def test_edge_variants_equal_the_connector(variant: str) -> None:
    raw_changes, victim_changes = EDGE_VARIANTS[variant]
    expected = connector_objects(dict(RAW[1], **raw_changes))
    ours = map_victim(replace(SAMPLE_VICTIMS[1], **victim_changes))
    assert expected is not None and ours is not None
    assert [_strip_timestamps(obj) for obj in ours["objects"]] == [_strip_timestamps(obj) for obj in expected]


def test_unknown_announcement_types_are_labelled() -> None:
    bundle = map_victim(SAMPLE_VICTIMS[0])
    incident = next(obj for obj in bundle["objects"] if obj["type"] == "incident")  # type: ignore[index]
    assert incident["labels"] == [
        "DigIntLab",
        "dep:announcement-type:credentials",
        "dep:announcement-type:pii",
    ]


def test_connector_options_confidence_and_indicator_switches() -> None:
    raw, victim = RAW[1], SAMPLE_VICTIMS[1]
    for options in (
        MappingOptions(confidence=15),
        MappingOptions(enable_site_indicator=False),
        MappingOptions(enable_hash_indicator=False),
        MappingOptions(enable_site_indicator=False, enable_hash_indicator=False, confidence=100),
    ):
        expected = connector_objects(
            raw,
            confidence=options.confidence,
            enable_site_indicator=options.enable_site_indicator,
            enable_hash_indicator=options.enable_hash_indicator,
        )
        ours = map_victim(victim, options)
        assert expected is not None and ours is not None
        assert [_strip_timestamps(obj) for obj in ours["objects"]] == [
            _strip_timestamps(obj) for obj in expected
        ]


def test_incident_without_link_site_or_title_has_no_reference() -> None:
    raw = dict(RAW[20], annTitle=None)
    with pytest.raises(ConnectorDropped, match="external_references"):
        connector_objects(raw)
    bundle = map_victim(replace(SAMPLE_VICTIMS[20], title=None))
    incident = next(obj for obj in bundle["objects"] if obj["type"] == "incident")  # type: ignore[index]
    assert "external_references" not in incident
    stix2.parse(serialize_bundle(bundle), allow_custom=True)  # type: ignore[arg-type]


# ==================================================================================================
# skip_empty_victim, hash types, escaping, edge cases
# ==================================================================================================


@pytest.mark.parametrize("placeholder", [None, "", "   ", "n/a", "N/A ", " None", "NONE"])
def test_skip_empty_victim(placeholder: str | None) -> None:
    victim = replace(SAMPLE_VICTIMS[1], victim=placeholder, victim_is_placeholder=True)
    assert map_victim(victim, MappingOptions()) is None
    assert map_victim_json(victim, MappingOptions()) is None

    bundle = map_victim(victim, MappingOptions(skip_empty_victim=False))
    assert bundle is not None
    objects = bundle["objects"]
    incident = next(obj for obj in objects if obj["type"] == "incident")
    victims = [obj for obj in objects if obj["type"] == "identity" and obj["id"] != AUTHOR_ID]
    if placeholder:  # the connector: a non-empty string is a victim, "n/a" included
        assert [obj["name"] for obj in victims] == [placeholder]
        assert incident["name"] == f"DEP announcement - {placeholder}"
    else:
        assert victims == []
        assert incident["name"] == "DEP announcement - societ-215.fr"
        assert not any(obj.get("relationship_type") == "targets" for obj in objects)
    expected = connector_objects(
        dict(RAW[1], victim=placeholder), skip_empty_victim=False
    )
    assert [_strip_timestamps(obj) for obj in objects] == [_strip_timestamps(obj) for obj in expected]  # type: ignore[union-attr]


def test_unknown_victim_name() -> None:
    victim = replace(
        SAMPLE_VICTIMS[15], victim=None, victim_domain_given=None, victim_domain=None, hashid="b" * 40
    )
    bundle = map_victim(victim, MappingOptions(skip_empty_victim=False))
    names = {obj["type"]: obj["name"] for obj in bundle["objects"] if obj["type"] != "relationship"}  # type: ignore[index]
    assert names["incident"] == "DEP announcement - Unknown Victim"
    assert names["indicator"] == "Announcement hash for unknown victim"


@pytest.mark.parametrize(
    ("hashid", "hash_type"),
    [
        ("a" * 32, "MD5"),
        ("0123456789abcdef" * 2 + "01234567", "SHA-1"),
        ("f" * 64, "SHA-256"),
        ("a" * 31, None),
        ("a" * 33, None),
        ("a" * 65, None),
        ("abc", None),
        ("z" * 64, None),  # not hexadecimal: stix2 rejects the pattern (the connector lost the record)
    ],
)
def test_hash_indicator_by_length(hashid: str, hash_type: str | None) -> None:
    victim = replace(SAMPLE_VICTIMS[1], hashid=hashid)
    bundle = map_victim(victim)
    indicators = [obj for obj in bundle["objects"] if obj["type"] == "indicator"]  # type: ignore[index]
    hash_indicators = [obj for obj in indicators if obj["pattern"].startswith("[file:")]
    if hash_type is None:
        assert hash_indicators == []
    else:
        (indicator,) = hash_indicators
        pattern = f"[file:hashes.'{hash_type}' = '{hashid}']"
        assert indicator["pattern"] == pattern
        assert indicator["id"] == pycti.Indicator.generate_id(pattern)
        assert indicator["name"] == "Announcement hash for Società S.p.A."
    if hashid == "z" * 64:
        with pytest.raises(ConnectorDropped, match="SHA-256"):
            connector_objects(dict(RAW[1], hashid=hashid))
    else:
        expected = connector_objects(dict(RAW[1], hashid=hashid))
        assert [_strip_timestamps(o) for o in bundle["objects"]] == [  # type: ignore[index]
            _strip_timestamps(o) for o in expected  # type: ignore[union-attr]
        ]
    stix2.parse(serialize_bundle(bundle), allow_custom=True)  # type: ignore[arg-type]
    without = map_victim(victim, MappingOptions(enable_hash_indicator=False))
    assert not any(
        obj["type"] == "indicator" and obj["pattern"].startswith("[file:") for obj in without["objects"]  # type: ignore[index]
    )


def test_domain_pattern_is_escaped() -> None:
    victim = replace(SAMPLE_VICTIMS[1], victim_domain="a'b\\c.example")
    bundle = map_victim(victim)
    (indicator,) = [o for o in bundle["objects"] if o["type"] == "indicator" and "domain" in o["pattern"]]  # type: ignore[index]
    assert indicator["pattern"] == "[domain-name:value = 'a\\'b\\\\c.example']"
    parsed = stix2.parse(serialize_bundle(bundle), allow_custom=True)  # type: ignore[arg-type]
    assert any(getattr(obj, "pattern", None) == indicator["pattern"] for obj in parsed.objects)


def test_victim_named_like_the_author() -> None:
    victim = replace(SAMPLE_VICTIMS[1], victim=" digintlab ")
    bundle = map_victim(victim)
    ids = [obj["id"] for obj in bundle["objects"]]  # type: ignore[index]
    assert len(ids) == len(set(ids))
    author = bundle["objects"][0]  # type: ignore[index]
    assert author["name"] == "DigIntLab" and "created_by_ref" not in author
    targets = [o for o in bundle["objects"] if o.get("relationship_type") == "targets"]  # type: ignore[index]
    assert [o["target_ref"] for o in targets] == [AUTHOR_ID]
    assert not bundle_dangling_refs(bundle)  # type: ignore[arg-type]


# ==================================================================================================
# Options
# ==================================================================================================


def test_options_defaults_are_the_connectors() -> None:
    options = MappingOptions()
    assert options.as_dict() == {
        "confidence": 70,
        "enable_site_indicator": True,
        "enable_hash_indicator": True,
        "skip_empty_victim": True,
        "primary_object": "incident",
        "tlp": None,
        "create_sector_identities": False,
        "create_intrusion_sets": False,
        "create_country_locations": False,
        "dataset_label": False,
    }


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"confidence": -1}, "confidence"),
        ({"confidence": 101}, "confidence"),
        ({"confidence": "70"}, "confidence"),
        ({"confidence": True}, "confidence"),
        ({"confidence": 70.0}, "confidence"),
        ({"primary_object": "bundle"}, "primary_object"),
        ({"primary_object": None}, "primary_object"),
        ({"tlp": "purple"}, "tlp"),
        ({"tlp": 1}, "tlp"),
        ({"enable_site_indicator": "yes"}, "enable_site_indicator"),
        ({"skip_empty_victim": 1}, "skip_empty_victim"),
        ({"dataset_label": None}, "dataset_label"),
    ],
)
def test_options_are_validated(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MappingOptions(**kwargs)


@pytest.mark.parametrize(
    ("given", "normalized"),
    [
        (None, None),
        ("", None),
        ("none", None),
        ("TLP:AMBER+STRICT", "amber+strict"),
        (" Amber ", "amber"),
        ("white", "clear"),
        ("TLP:CLEAR", "clear"),
        ("red", "red"),
    ],
)
def test_tlp_is_normalized(given: str | None, normalized: str | None) -> None:
    assert MappingOptions(tlp=given).tlp == normalized
    assert MappingOptions(tlp=given) == MappingOptions(tlp=normalized)


def test_primary_object_is_normalized() -> None:
    assert MappingOptions(primary_object=" Report ").primary_object == "report"


def test_fingerprint() -> None:
    default = MappingOptions().fingerprint()
    assert re.fullmatch(rf"{re.escape(MAPPING_VERSION)}-[0-9a-f]{{12}}", default)
    assert MappingOptions().fingerprint() == default
    assert MappingOptions(tlp="TLP:RED").fingerprint() == MappingOptions(tlp="red").fingerprint()
    variants = [
        MappingOptions(confidence=71),
        MappingOptions(enable_site_indicator=False),
        MappingOptions(enable_hash_indicator=False),
        MappingOptions(skip_empty_victim=False),
        MappingOptions(primary_object="report"),
        MappingOptions(tlp="amber"),
        MappingOptions(create_sector_identities=True),
        MappingOptions(create_intrusion_sets=True),
        MappingOptions(create_country_locations=True),
        MappingOptions(dataset_label=True),
    ]
    fingerprints = {options.fingerprint() for options in variants}
    assert len(fingerprints) == len(variants) and default not in fingerprints


# ==================================================================================================
# Option combinations: valid STIX, accepted by OpenCTI's splitter, self-contained
# ==================================================================================================

BOOLEAN_SETS = [
    {"enable_site_indicator": True, "enable_hash_indicator": True, "dataset_label": True},
    {"enable_site_indicator": False, "enable_hash_indicator": False, "dataset_label": False},
]
COMBOS = [
    MappingOptions(
        primary_object=primary,
        tlp=tlp,
        create_sector_identities=sectors,
        create_intrusion_sets=actors,
        create_country_locations=countries,
        skip_empty_victim=skip,
        **booleans,  # type: ignore[arg-type]
    )
    for primary, tlp, sectors, actors, countries, booleans, skip in itertools.product(
        ("incident", "report"),
        (None, "clear", "green", "amber", "amber+strict", "red"),
        (False, True),
        (False, True),
        (False, True),
        BOOLEAN_SETS,
        (True, False),
    )
]
# A rich record, a sparse one (no link, no site, no description), one without a victim name, and the
# placeholder one (skipped unless skip_empty_victim is off).
COMBO_VICTIMS = {
    "rich": SAMPLE_VICTIMS[0],
    "sparse": SAMPLE_VICTIMS[20],
    "no-name": replace(SAMPLE_VICTIMS[15], victim=None, victim_is_placeholder=True),
    "placeholder": SAMPLE_VICTIMS[17],
}
EXPECTED_WARNINGS = {
    "103",  # uuid5 ids (deterministic on purpose)
    "202",  # incident targets identity, indicator indicates incident, incident attributed-to, part-of
    "302",  # the connector's external references have a URL and no hash
    "401",  # custom properties (incident_type, first_seen, x_opencti_*)
}


def _combo_id(options: MappingOptions) -> str:
    return ",".join(f"{key}={value}" for key, value in options.as_dict().items() if value != MappingOptions().as_dict()[key]) or "default"


def _bundles(options: MappingOptions) -> list[tuple[str, dict[str, Any], str]]:
    out = []
    for label, victim in COMBO_VICTIMS.items():
        bundle = map_victim(victim, options)
        if bundle is None:
            assert options.skip_empty_victim and label in ("no-name", "placeholder")
            assert map_victim_json(victim, options) is None
            continue
        text = serialize_bundle(bundle)
        assert map_victim_json(victim, options) == text
        out.append((label, bundle, text))
    return out


@pytest.mark.parametrize("options", COMBOS, ids=_combo_id)
def test_every_combination_is_valid_and_self_contained(options: MappingOptions) -> None:
    validation = ValidationOptions(version="2.1")
    for label, bundle, text in _bundles(options):
        # stix2 accepts it (patterns, required properties, Location constraints, ...)
        parsed = stix2.parse(text, allow_custom=True)
        assert len(parsed.objects) == len(bundle["objects"])

        # stix2-validator: valid, with only the expected warnings
        result = validate_string(text, validation)
        assert result.is_valid, (label, [str(error) for error in result.errors])
        codes = {re.search(r"\{(\d+)\}", warning).group(1) for warning in result.warnings}  # type: ignore[union-attr]
        assert codes <= EXPECTED_WARNINGS, (label, result.warnings)

        # no reference outside the bundle, no duplicate id
        assert bundle_dangling_refs(bundle) == set(), label
        ids = [obj["id"] for obj in bundle["objects"]]
        assert len(ids) == len(set(ids)), label

        # author and marking ride in every bundle; every other object is authored and marked
        objects = _objects(bundle)
        assert AUTHOR_ID in objects
        marking_ids = [i for i in ids if i.startswith("marking-definition--")]
        if options.tlp is None:
            assert marking_ids == []
        else:
            (marking_id,) = marking_ids
            assert marking_id == marking_definition(options.tlp)["id"]
        for obj in bundle["objects"]:
            if obj["type"] == "marking-definition":
                assert "object_marking_refs" not in obj
                continue
            if options.tlp is None:
                assert "object_marking_refs" not in obj
            else:
                assert obj["object_marking_refs"] == [marking_ids[0]]
            if obj["id"] != AUTHOR_ID:
                assert obj["created_by_ref"] == AUTHOR_ID
                assert obj["confidence"] == options.confidence

        # the primary object
        primary_type = options.primary_object
        primaries = [obj for obj in bundle["objects"] if obj["type"] in ("incident", "report")]
        assert [obj["type"] for obj in primaries] == [primary_type]
        primary = primaries[0]
        assert ("dep:dataset:ext" in primary["labels"]) == options.dataset_label
        assert all(
            not label_.startswith("dep:dataset:")
            for obj in bundle["objects"]
            if obj is not primary
            for label_ in obj.get("labels", ())
        )


@pytest.mark.parametrize("options", COMBOS[::7] + [MappingOptions()], ids=_combo_id)
def test_pycti_splitter_strips_nothing(options: MappingOptions) -> None:
    for label, bundle, text in _bundles(options):
        expectations, incompatible, bundles = OpenCTIStix2Splitter().split_bundle_with_expectations(
            text, use_json=True, event_version=None, cleanup_inconsistent_bundle=True
        )
        assert incompatible == [], label
        assert expectations == len(bundle["objects"]), label
        split = [obj for part in bundles for obj in json.loads(part)["objects"]]
        assert len(split) == len(bundle["objects"]), label
        by_id = {obj["id"]: obj for obj in split}
        for original in bundle["objects"]:
            after = by_id[original["id"]]
            for key, value in original.items():
                if key.endswith(("_ref", "_refs")):
                    assert after.get(key) == value, (label, original["id"], key)
            # External references: OpenCTI keeps those it can identify (url or external_id); the
            # connector's description-only incident reference (no annLink, no site) is dropped for
            # the connector's bundles exactly as for ours.
            kept = [r for r in original.get("external_references", ()) if r.get("url") or r.get("external_id")]
            assert after.get("external_references", []) == kept, (label, original["id"])


# ==================================================================================================
# Options: the later connector's objects
# ==================================================================================================

ALL_ON = MappingOptions(
    create_sector_identities=True,
    create_intrusion_sets=True,
    create_country_locations=True,
    dataset_label=True,
)


def test_sector_intrusion_set_location_incident_mode() -> None:
    victim = SAMPLE_VICTIMS[0]
    bundle = map_victim(victim, ALL_ON)
    objects = _objects(bundle)  # type: ignore[arg-type]
    victim_id = pycti.Identity.generate_id("Müller AG", "organization")
    incident = f"incident--{uuid5(NAMESPACE_URL, 'dep-announcement:' + victim.hashid)}"

    sector_id = pycti.Identity.generate_id("transportation/logistics", identity_class="class")
    sector = objects[sector_id]
    assert (sector["type"], sector["name"], sector["identity_class"]) == ("identity", "Transportation/Logistics", "class")
    assert "description" not in objects[victim_id]  # the sector is an object now, not a description line

    intrusion_set_id = f"intrusion-set--{uuid5(NAMESPACE_URL, 'dep-actor:akros')}"
    assert objects[intrusion_set_id]["name"] == "Akros"
    assert objects[intrusion_set_id]["type"] == "intrusion-set"

    location_id = f"location--{uuid5(NAMESPACE_URL, 'dep-country:italy')}"
    location = objects[location_id]
    assert (location["name"], location["country"], location["x_opencti_location_type"]) == ("Italy", "IT", "Country")

    relationships = {
        (obj["relationship_type"], obj["source_ref"], obj["target_ref"]): obj["id"]
        for obj in bundle["objects"]  # type: ignore[index]
        if obj["type"] == "relationship"
    }
    for triple in [
        ("part-of", victim_id, sector_id),
        ("attributed-to", incident, intrusion_set_id),
        ("located-at", victim_id, location_id),
        ("targets", incident, victim_id),
    ]:
        assert relationships[triple] == pycti.StixCoreRelationship.generate_id(*triple)
    assert objects[incident]["labels"] == [
        "DigIntLab",
        "dep:announcement-type:credentials",
        "dep:announcement-type:pii",
        "dep:dataset:ext",
    ]


def test_report_mode() -> None:
    victim = SAMPLE_VICTIMS[0]
    options = replace(ALL_ON, primary_object="report", tlp="green")
    bundle = map_victim(victim, options)
    objects = bundle["objects"]  # type: ignore[index]
    report = objects[-1]
    assert report["type"] == "report"
    assert report["id"] == "report--" + incident_id(victim.hashid).split("--", 1)[1]
    assert report["published"] == report["created"] == "2026-03-01T00:00:00.000Z"
    assert report["report_types"] == ["threat-report"]
    assert report["name"] == "DEP announcement - Müller AG"
    assert report["description"] == victim.description
    # every other object but the marking, author included (the later connector's object_refs)
    assert report["object_refs"] == [
        obj["id"] for obj in objects if obj["type"] not in ("report", "marking-definition")
    ]
    assert AUTHOR_ID in report["object_refs"]
    assert not any(obj["type"] == "incident" for obj in objects)
    victim_id = pycti.Identity.generate_id("Müller AG", "organization")
    related = sorted(
        obj["source_ref"] for obj in objects if obj["type"] == "relationship" and obj["relationship_type"] == "related-to"
    )
    assert related == sorted(obj["id"] for obj in objects if obj["type"] == "indicator")
    assert all(
        obj["target_ref"] == victim_id for obj in objects if obj.get("relationship_type") == "related-to"
    )
    # intrusion set is in the report (no attributed-to from a report: OpenCTI refuses it)
    assert f"intrusion-set--{uuid5(NAMESPACE_URL, 'dep-actor:akros')}" in report["object_refs"]
    assert not any(obj.get("relationship_type") == "attributed-to" for obj in objects)


def test_tlp_marking_definitions() -> None:
    for level, constant in [
        ("clear", stix2.TLP_WHITE),
        ("green", stix2.TLP_GREEN),
        ("amber", stix2.TLP_AMBER),
        ("red", stix2.TLP_RED),
    ]:
        assert marking_definition(level) == json.loads(constant.serialize())
    strict = marking_definition("amber+strict")
    assert strict["id"] == pycti.MarkingDefinition.generate_id("TLP", "TLP:AMBER+STRICT")
    assert strict["id"] == "marking-definition--826578e1-40ad-459f-bc73-ede076f81f37"
    assert (strict["x_opencti_definition_type"], strict["x_opencti_definition"]) == ("TLP", "TLP:AMBER+STRICT")
    v21.MarkingDefinition(**strict, allow_custom=True)  # stix2 accepts it


def test_location_needs_an_iso_code() -> None:
    options = MappingOptions(create_country_locations=True)
    unknown = replace(SAMPLE_VICTIMS[0], country="Atlantis", victim_country_code=None)
    assert not any(obj["type"] == "location" for obj in map_victim(unknown, options)["objects"])  # type: ignore[index]
    fallback = replace(SAMPLE_VICTIMS[0], country="Atlantis", victim_country_code="it")
    (location,) = [obj for obj in map_victim(fallback, options)["objects"] if obj["type"] == "location"]  # type: ignore[index]
    assert (location["name"], location["country"]) == ("Atlantis", "IT")
    no_victim = replace(SAMPLE_VICTIMS[15], victim=None)
    bundle = map_victim(no_victim, replace(ALL_ON, skip_empty_victim=False))
    assert not any(obj["type"] in ("location", "identity") and obj["id"] != AUTHOR_ID for obj in bundle["objects"])  # type: ignore[index]


def test_country_table() -> None:
    assert ISO_COUNTRY_CODES <= set(COUNTRY_CODES)
    for name, code in [
        ("Italy", "IT"),
        ("United Kingdom", "GB"),
        ("united  states", "US"),
        ("USA", "US"),
        ("Côte d'Ivoire", "CI"),
        ("Cote d’Ivoire", "CI"),
        ("Korea, Republic of", "KR"),
        ("Türkiye", "TR"),
        ("Czech Republic", "CZ"),
    ]:
        assert country_code(name) == code, name
    assert country_code("Atlantis") is None
    assert country_code("Atlantis", " de ") == "DE"
    assert country_code("Atlantis", "XX") is None
    for raw in RAW:
        country = raw.get("country")
        if country and country.lower() != "n/a":
            assert country_code(country) == (raw.get("victimCC") or country_code(country))


# ==================================================================================================
# Determinism and serialization
# ==================================================================================================


def test_same_input_is_byte_identical() -> None:
    for options in (MappingOptions(), replace(ALL_ON, primary_object="report", tlp="amber+strict")):
        for victim in SAMPLE_VICTIMS.values():
            first = map_victim(victim, options)
            second = map_victim(victim, replace(options))  # equal options, another instance
            assert first == second
            mapper = StixMapper(options)
            assert mapper(victim) == mapper.map(victim) == first
            assert mapper.map_json(victim) == map_victim_json(victim, options)
            mapped = mapper.map_bundle(victim)
            if first is None:
                assert mapped is None
            else:
                assert serialize_bundle(first) == serialize_bundle(second)  # type: ignore[arg-type]
                assert serialize_bundle(first) == map_victim_json(victim, options)
                assert first["id"].startswith("bundle--") and first["id"][22] == "5"  # uuid5
                # What the archive stores beside the text comes from the same bundle.
                primary = next(o for o in first["objects"] if o["type"] in ("incident", "report"))
                assert mapped == (serialize_bundle(first), first["id"], primary["id"], len(first["objects"]))


def test_map_victim_rejects_other_options() -> None:
    with pytest.raises(TypeError, match="MappingOptions"):
        map_victim(SAMPLE_VICTIMS[1], {"confidence": 70})  # type: ignore[arg-type]


def test_serialization_format() -> None:
    text = map_victim_json(SAMPLE_VICTIMS[11])
    assert text is not None
    assert text.isascii() and ", " not in text[:200] and ": " not in text[:200]
    assert text == json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"))
    assert "Donn\\u00e9es personnelles" in text


def test_bundle_id_depends_on_announcement_and_options() -> None:
    a = map_victim(SAMPLE_VICTIMS[1])["id"]  # type: ignore[index]
    assert map_victim(SAMPLE_VICTIMS[4])["id"] != a  # type: ignore[index]
    assert map_victim(SAMPLE_VICTIMS[1], MappingOptions(confidence=50))["id"] != a  # type: ignore[index]


def _json_from_python(script: str, given: Any, env: dict[str, str] | None = None) -> Any:
    """What `script` prints as JSON, run by a new interpreter from the repository root with
    `given` pickled on its standard input."""
    result = subprocess.run(
        [sys.executable, "-c", script],
        input=pickle.dumps(given),
        capture_output=True,
        check=True,
        env=env,
        cwd=Path(__file__).resolve().parents[1],
        timeout=120,
    )
    return json.loads(result.stdout)


def test_byte_identical_in_another_process() -> None:
    victims = [v for v in SAMPLE_VICTIMS.values()]
    options = [MappingOptions(), replace(ALL_ON, primary_object="report", tlp="red")]
    script = (
        "import pickle, sys, json\n"
        "from dep_assets.stix_mapping import map_victim_json\n"
        "victims, options = pickle.load(sys.stdin.buffer)\n"
        "out = [[map_victim_json(v, o) for v in victims] for o in options]\n"
        "print(json.dumps([out, [o.fingerprint() for o in options]]))\n"
    )
    out, fingerprints = _json_from_python(
        script, (victims, options), env={"PYTHONHASHSEED": "12345", "PATH": "/usr/bin:/bin"}
    )
    assert fingerprints == [o.fingerprint() for o in options]
    assert out == [[map_victim_json(v, o) for v in victims] for o in options]


def test_results_are_fresh_objects() -> None:
    """pycti's splitter mutates the dicts it is given: one bundle must not leak into the next."""
    options = MappingOptions(tlp="amber")
    first = map_victim(SAMPLE_VICTIMS[1], options)
    reference = serialize_bundle(map_victim(SAMPLE_VICTIMS[1], options))  # type: ignore[arg-type]
    OpenCTIStix2Splitter().split_bundle_with_expectations(
        first, use_json=False, event_version=None, cleanup_inconsistent_bundle=True
    )
    assert serialize_bundle(map_victim(SAMPLE_VICTIMS[1], options)) == reference  # type: ignore[arg-type]


def test_dangling_refs_are_detected() -> None:
    bundle = map_victim(SAMPLE_VICTIMS[1])
    assert bundle_dangling_refs(bundle) == set()  # type: ignore[arg-type]
    bundle["objects"] = bundle["objects"][1:]  # type: ignore[index]  # drop the author
    assert bundle_dangling_refs(bundle) == {AUTHOR_ID}  # type: ignore[arg-type]


# ==================================================================================================
# Arbitrary text never breaks the mapping
# ==================================================================================================

TRICKY = st.sampled_from(["", " ", "'", "\\", "n/a", "None", "http", "https://x", "é", "\n", "\x00", "'; DROP", "a" * 64])
TEXT = st.none() | st.text(max_size=30) | TRICKY
HYPOTHESIS_OPTIONS = [
    MappingOptions(),
    MappingOptions(skip_empty_victim=False),
    replace(ALL_ON, skip_empty_victim=False, tlp="amber+strict"),
    replace(ALL_ON, primary_object="report", skip_empty_victim=False, tlp="clear"),
]


@st.composite
def victims(draw: st.DrawFn) -> Victim:
    return Victim(
        dataset=draw(st.sampled_from(["ext", "prv", "nws", "vnd", "dds", "frm"]) | st.text(max_size=5)),
        hashid=draw(
            st.text(alphabet="0123456789abcdef", min_size=32, max_size=32)
            | st.text(alphabet="0123456789abcdef", min_size=40, max_size=40)
            | st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)
            | st.text(min_size=1, max_size=70)
        ),
        announcement_date=draw(st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31))),
        victim=draw(TEXT),
        victim_normalized=draw(TEXT),
        victim_is_placeholder=draw(st.booleans()),
        victim_domain=draw(TEXT),
        victim_domain_given=draw(TEXT),
        site=draw(TEXT),
        sector=draw(TEXT),
        sector_given=draw(TEXT),
        actor=draw(TEXT),
        actor_given=draw(TEXT),
        country=draw(TEXT | st.sampled_from(["Italy", "Côte d'Ivoire", "USA"])),
        country_given=draw(TEXT),
        victim_country_code=draw(TEXT | st.sampled_from(["IT", "de", "XX"])),
        victim_city=draw(TEXT),
        victim_state=draw(TEXT),
        victim_address=draw(TEXT),
        revenue=draw(TEXT),
        amount=draw(TEXT),
        naics=draw(TEXT),
        data_types=tuple(draw(st.lists(st.text(max_size=12) | st.sampled_from(["PII", "AI"]), max_size=4))),
        leak_link=draw(TEXT),
        title=draw(TEXT),
        description=draw(TEXT | st.text(max_size=300)),
    )


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(victim=victims(), options=st.sampled_from(HYPOTHESIS_OPTIONS))
def test_arbitrary_text_never_breaks_the_bundle(victim: Victim, options: MappingOptions) -> None:
    bundle = map_victim(victim, options)
    text = map_victim_json(victim, options)
    if bundle is None:
        assert options.skip_empty_victim
        assert (victim.victim or "").strip().lower() in ("", "n/a", "none")
        assert text is None
        return
    assert serialize_bundle(bundle) == text
    parsed = stix2.parse(text, allow_custom=True)
    assert len(parsed.objects) == len(bundle["objects"])
    assert bundle_dangling_refs(bundle) == set()
    ids = [obj["id"] for obj in bundle["objects"]]
    assert len(ids) == len(set(ids))


# ---------------------------------------------------------------------------------------------------
# The compiled JSON path (_fastmap.c) against the Python reference (`StixMapper._map`)
# ---------------------------------------------------------------------------------------------------

try:
    from dep_assets.stix_mapping import _fastmap
except ImportError:  # built at install when a C compiler is there (pyproject: optional)
    _fastmap = None
pytestmark_compiled = pytest.mark.skipif(_fastmap is None, reason="the C extension is not built")
# Every option set the compiled path serves, in a few variations; the others run the Python.
COMPILED_OPTIONS = [
    MappingOptions(),
    MappingOptions(tlp="amber+strict", dataset_label=True, confidence=5),
    MappingOptions(skip_empty_victim=False, enable_site_indicator=False),
    MappingOptions(skip_empty_victim=False, enable_hash_indicator=False, tlp="clear"),
]
# Any text, lone surrogates, control characters and astral code points included.
any_text = st.text(alphabet=st.characters(blacklist_categories=()), max_size=30)
some_text = st.none() | any_text | st.sampled_from(["", " ", "n/a", "None", "DigIntLab", "http://x.io", "x.io"])


@pytestmark_compiled
def test_the_compiled_path_serves_exactly_the_incident_options() -> None:
    for options in COMPILED_OPTIONS:
        assert StixMapper(options).compiled, options
    for options in (
        MappingOptions(primary_object="report"),
        MappingOptions(create_sector_identities=True),
        MappingOptions(create_intrusion_sets=True),
        MappingOptions(create_country_locations=True),
    ):
        assert not StixMapper(options).compiled, options


@pytestmark_compiled
@pytest.mark.parametrize("options", COMPILED_OPTIONS, ids=_combo_id)
def test_compiled_bundles_equal_the_python_for_every_sample(options: MappingOptions) -> None:
    mapper = StixMapper(options)
    victims = [*SAMPLE_VICTIMS.values(), *COMBO_VICTIMS.values()]
    for victim in victims:
        assert mapper.map_bundle(victim) == mapper._map(victim, True)
    assert sum(mapper.map_bundle(v) is not None for v in victims) >= len(SAMPLE_VICTIMS) - 2


@pytestmark_compiled
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    options=st.sampled_from(COMPILED_OPTIONS),
    name=some_text,
    hashid=st.sampled_from(["a" * 32, "B" * 40, "0123456789abcdef" * 4, " abc ", "zz" * 16]) | any_text,
    day=st.dates(),
    texts=st.lists(some_text, min_size=9, max_size=9),
    data_types=st.lists(any_text, max_size=4).map(tuple),
)
def test_compiled_bundles_equal_the_python_for_any_victim(options, name, hashid, day, texts, data_types) -> None:
    link, site, title, sector, revenue, domain, domain_given, description, dataset = texts
    victim = _victim(
        victim=name,
        hashid=hashid,
        announcement_date=day,
        leak_link=link,
        site=site,
        title=title,
        sector_given=sector,
        revenue=revenue,
        victim_domain=domain,
        victim_domain_given=domain_given,
        description=description,
        dataset=dataset,
        data_types=data_types,
    )
    mapper = StixMapper(options)
    try:
        expected = mapper._map(victim, True)
    except Exception as error:  # the reference refuses it: so must the compiled path
        with pytest.raises(type(error)):
            mapper.map_bundle(victim)
        return
    assert mapper.map_bundle(victim) == expected


@pytestmark_compiled
@settings(max_examples=300, deadline=None)
@given(name=any_text, namespace=st.binary(min_size=16, max_size=16))
def test_compiled_uuid5_is_the_mappers(name: str, namespace: bytes) -> None:
    import hashlib

    from dep_assets.stix_mapping.mapper import _uuid5

    assert _fastmap.uuid5(namespace, name) == _uuid5(hashlib.sha1(namespace), name)
    assert _fastmap.uuid5(namespace, name * 40) == _uuid5(hashlib.sha1(namespace), name * 40)  # many blocks


def _map_columns(mapper: StixMapper, victims: list) -> list[tuple]:
    """`mapper.map_columns` of `victims` by column, read back: (row, text, bundle id, primary id,
    SHA-256, object count) per bundle."""
    columns = tuple([getattr(v, name) for v in victims] for name in mapper.batch_fields)
    rows, offsets, text, bundle_ids, primary_ids, digests, counts = mapper.map_columns(columns)
    ends = memoryview(offsets).cast("q").tolist()
    assert ends[0] == 0 and len(ends) == len(rows) // 4 + 1 == len(bundle_ids) // 44 + 1
    return [
        (
            row,
            text[ends[i] : ends[i + 1]].decode("ascii"),
            bundle_ids[44 * i : 44 * (i + 1)].decode(),
            primary_ids[46 * i : 46 * (i + 1)].decode(),
            digests[64 * i : 64 * (i + 1)].decode(),
            count,
        )
        for i, (row, count) in enumerate(zip(memoryview(rows).cast("i").tolist(), memoryview(counts).cast("i").tolist()))
    ]


def _one_by_one(mapper: StixMapper, victims: list) -> list[tuple]:
    import hashlib

    return [
        (row, m.text, m.bundle_id, m.primary_id, hashlib.sha256(m.text.encode()).hexdigest(), m.object_count)
        for row, m in enumerate(map(mapper._map, victims, [True] * len(victims)))
        if m is not None
    ]


@pytestmark_compiled
@pytest.mark.parametrize("options", COMPILED_OPTIONS, ids=_combo_id)
def test_a_compiled_batch_equals_the_python_victim_by_victim(options: MappingOptions) -> None:
    mapper = StixMapper(options)
    victims = [*SAMPLE_VICTIMS.values(), *COMBO_VICTIMS.values()]
    expected = _one_by_one(mapper, victims)
    assert _map_columns(mapper, victims) == expected
    assert len(expected) >= len(SAMPLE_VICTIMS) - 2
    if options.skip_empty_victim:  # placeholders are skipped, and the rows say which victims were mapped
        assert len(expected) < len(victims)
    # A batch's null data_types (None, not ()) maps as no types; an empty batch gives empty buffers.
    bare = [replace(v, data_types=None) if not v.data_types else v for v in victims]
    assert _map_columns(mapper, bare) == expected
    assert _map_columns(mapper, []) == []
    assert mapper.map_columns(tuple([] for _ in mapper.batch_fields))[1] == bytes(8)


@pytestmark_compiled
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    options=st.sampled_from(COMPILED_OPTIONS),
    rows=st.lists(
        st.tuples(some_text, st.dates(), st.lists(some_text, min_size=9, max_size=9), st.lists(any_text, max_size=3)),
        max_size=6,
    ),
)
def test_a_compiled_batch_of_any_victims_equals_the_python(options, rows) -> None:
    victims = [
        _victim(
            victim=name, hashid=texts[0] or "h", announcement_date=day, leak_link=texts[1], site=texts[2],
            title=texts[3], sector_given=texts[4], revenue=texts[5], victim_domain=texts[6],
            victim_domain_given=texts[7], description=texts[8], data_types=tuple(types),
        )  # fmt: skip
        for name, day, texts, types in rows
    ]
    mapper = StixMapper(options)
    try:
        expected = _one_by_one(mapper, victims)
    except Exception as error:  # the reference refuses one: so does the batch
        with pytest.raises(type(error)):
            _map_columns(mapper, victims)
        return
    assert _map_columns(mapper, victims) == expected


@pytestmark_compiled
def test_a_batch_refuses_columns_it_cannot_read() -> None:
    mapper = StixMapper()
    with pytest.raises(TypeError, match="tuple of 13 lists"):
        mapper.map_columns([[]] * 13)
    with pytest.raises(ValueError, match="column announcement_date is not a list as long as the others"):
        mapper.map_columns(([None], [], *([None] for _ in range(11))))
    with pytest.raises(ValueError, match="run the Python path"):
        StixMapper(MappingOptions(primary_object="report")).map_columns(())


@pytestmark_compiled
@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=300) | st.integers(0, 70).map(lambda n: b"\x61" * n * 64))
def test_compiled_sha256_is_hashlibs(data: bytes) -> None:
    import hashlib

    expected = hashlib.sha256(data).hexdigest()
    assert _fastmap.sha256_hex(data) == expected  # the x86 SHA instructions where the CPU has them
    assert _fastmap.sha256_hex(data, True) == expected  # the portable C


def test_without_the_extension_the_python_writes_the_same_bytes() -> None:
    """An install without a C compiler runs the Python path: same bundles, byte for byte."""
    victims = [*SAMPLE_VICTIMS.values(), *COMBO_VICTIMS.values()]
    script = (
        "import pickle, sys, json\n"
        "sys.modules['dep_assets.stix_mapping._fastmap'] = None  # as if it was never built\n"
        "from dep_assets.stix_mapping import StixMapper\n"
        "victims, options = pickle.load(sys.stdin.buffer)\n"
        "mappers = [StixMapper(o) for o in options]\n"
        "assert not any(m.compiled for m in mappers)\n"
        "print(json.dumps([[m.map_json(v) for v in victims] for m in mappers]))\n"
    )
    expected = [[StixMapper(o).map_json(v) for v in victims] for o in COMPILED_OPTIONS]
    assert _json_from_python(script, (victims, COMPILED_OPTIONS)) == expected
    assert sum(text is not None for texts in expected for text in texts) > 3 * len(SAMPLE_VICTIMS)
