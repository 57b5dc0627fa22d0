"""Tests of dep_assets.normalize: exact values on the sample's quirks, and property tests that the
normalizer never raises and never loses a record that has a usable hashid and date."""

from __future__ import annotations

import dataclasses
import json
from datetime import date
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from dep_assets.normalize import (
    CONNECTOR_VICTIM_PLACEHOLDERS,
    GENERIC_ACTORS,
    KNOWN_FIELDS,
    PLACEHOLDERS,
    QUARANTINE_CODES,
    TEXT_FIELDS,
    Quarantined,
    Victim,
    actor_name,
    clean_text,
    data_types,
    decode_description,
    domain_of,
    hashid_key,
    is_generic_actor,
    is_placeholder,
    normalize_record,
    normalize_victim_name,
    parse_data_types,
    record_day,
    repair_link,
    victim_is_placeholder,
)

SAMPLE_PATH = Path("/work/shared/samples/privlist-ext-sample.json")
if not SAMPLE_PATH.exists():  # pragma: no cover - the shared sample is part of the workspace
    pytest.skip(f"sample file {SAMPLE_PATH} is missing", allow_module_level=True)
SAMPLE: list[dict] = json.loads(SAMPLE_PATH.read_text(encoding="utf-8"))


def by_hashid_prefix(prefix: str) -> dict:
    (record,) = [
        r for r in SAMPLE if isinstance(r.get("hashid"), str) and r["hashid"].strip().lower().startswith(prefix)
    ]
    return record


def norm(record: object, dataset: str = "ext") -> Victim | Quarantined:
    return normalize_record(record, dataset=dataset)


def victim_of(record: object) -> Victim:
    result = norm(record)
    assert isinstance(result, Victim), result
    return result


# ---------------------------------------------------------------------------------------------------
# keys


class TestHashidKey:
    def test_padded_upper_case(self):
        assert hashid_key("  61026AB80CC93F3F43985234DCDFC7516973D33918B81A4784359EBC92F1E208 ") == (
            "61026ab80cc93f3f43985234dcdfc7516973d33918b81a4784359ebc92f1e208"
        )

    @pytest.mark.parametrize("value", [None, "", "   ", "\t\n", 42, 4.2, True, [], {}, ["abc"]])
    def test_unusable(self, value):
        assert hashid_key(value) is None

    def test_other_lengths_kept(self):
        assert hashid_key("7AF8297A68018034CA836ACBCCE4A4D2") == "7af8297a68018034ca836acbcce4a4d2"
        assert hashid_key(" abc ") == "abc"

    def test_lone_surrogate_replaced(self):
        assert hashid_key("ab\ud800") == "ab\ufffd"


class TestRecordDay:
    @pytest.mark.parametrize(
        "value, expected",
        [
            ("2026-03-01", date(2026, 3, 1)),
            ("  2026-03-01\n", date(2026, 3, 1)),
            ("2026-03-01T10:00:00Z", date(2026, 3, 1)),
            ("2026-03-01T10:00:00", date(2026, 3, 1)),
            ("2026-03-01 10:00:00", date(2026, 3, 1)),
            ("2026-03-01T23:30:00.123456-05:00", date(2026, 3, 1)),  # the date as written
            (" 2026-03-01T00:00:00+00:00 ", date(2026, 3, 1)),
            ("2024-02-29", date(2024, 2, 29)),
        ],
    )
    def test_accepted(self, value, expected):
        assert record_day(value) == expected

    @pytest.mark.parametrize(
        "value",
        [
            None,
            "",
            "   ",
            "2026-13-45",
            "2025-02-29",
            "20260301",  # Python 3.11's fromisoformat accepts it; DEP never sends it
            "2026-W09-7",
            "2026-3-1",
            "01/03/2026",
            "2026-03-01x",
            "2026-03-01T",
            "2026-03-01T25:00:00",
            "2026-03-01Tgarbage",
            "２０２６-03-01",  # full-width digits
            "2026-03-01T10:00\ud800",
            20260301,
            1772323200.0,
            True,
            ["2026-03-01"],
            {"date": "2026-03-01"},
            "2026-03-01" + " " * 100 + "x",
        ],
    )
    def test_rejected(self, value):
        assert record_day(value) is None


# ---------------------------------------------------------------------------------------------------
# field helpers


class TestFieldHelpers:
    @pytest.mark.parametrize(
        "value, expected",
        [
            ("https//leak20exampleonion.onion/post/2", "https://leak20exampleonion.onion/post/2"),
            ("http//leak7exampleonion.onion/post/5", "http://leak7exampleonion.onion/post/5"),
            ("http://leak12exampleonion.onion/post/1", "http://leak12exampleonion.onion/post/1"),
            ("https://x.onion/https//y", "https://x.onion/https//y"),
            (" https//x.onion", " https//x.onion"),  # the connector does not strip annLink
            ("", None),
            (None, None),
            (12, None),
        ],
    )
    def test_repair_link(self, value, expected):
        assert repair_link(value) == expected

    @pytest.mark.parametrize(
        "value, expected",
        [
            ("acme.it", "acme.it"),
            ("  FJORD-529.COM.BR ", "fjord-529.com.br"),
            ("https://www.yarrow-604.co.uk/about?x=1", "www.yarrow-604.co.uk"),
            ("http://User@Example.COM:8080/x", "example.com"),
            ("example.com/path?q=1#frag", "example.com"),
            ("ftp://files.example.org", "files.example.org"),
            ("[", None),  # urlsplit raises ValueError: Invalid IPv6 URL
            ("http://[x", None),
            ("https://[not-an-ip]/", None),
            ("[::1]", "::1"),
            ("", None),
            ("   ", None),
            ("/just/a/path", None),
            ("https://", None),
            (None, None),
            (3, None),
            (["acme.it"], None),
        ],
    )
    def test_domain_of(self, value, expected):
        assert domain_of(value) == expected

    @pytest.mark.parametrize(
        "value, expected",
        [
            ("Company%20data%20will%20be%20published.", "Company data will be published."),
            ("Donn%C3%A9es%20personnelles%20%E2%80%94%2042%20GB", "Données personnelles — 42 GB"),
            ("Leaked records available: finance, HR & legal; 100% authentic.",
             "Leaked records available: finance, HR & legal; 100% authentic."),
            ("100%", "100%"),
            ("%ZZ and %4", "%ZZ and %4"),
            ("%2541", "%41"),  # decoded once only
            ("bad byte %FF here", "bad byte \ufffd here"),
            ("Données personnelles — 42 GB — à publier", "Données personnelles — 42 GB — à publier"),
            ("", ""),
            (None, None),
            (5, None),
        ],
    )
    def test_decode_description(self, value, expected):
        assert decode_description(value) == expected

    @pytest.mark.parametrize(
        "value, expected",
        [
            ("", True),
            ("n/a", True),
            ("N/A ", True),
            ("  None\t", True),
            ("NONE", True),
            (None, True),
            (0, True),
            (["n/a"], True),
            ("null", False),  # not in the connector's set
            ("unknown", False),
            ("-", False),
            ("n / a", False),
            ("Acme", False),
        ],
    )
    def test_victim_is_placeholder_is_the_connectors_set(self, value, expected):
        assert victim_is_placeholder(value) is expected

    def test_connector_set(self):
        assert CONNECTOR_VICTIM_PLACEHOLDERS == {"", "n/a", "none"}
        assert CONNECTOR_VICTIM_PLACEHOLDERS <= PLACEHOLDERS <= GENERIC_ACTORS

    @pytest.mark.parametrize("value", ["", " ", "n/a", "N/A", "none", "Null", "-", "unknown", "Not  Available", None, 1])
    def test_is_placeholder(self, value):
        assert is_placeholder(value)
        assert clean_text(value) is None

    @pytest.mark.parametrize("value", ["Manufacturing", "Other", "NA", "0"])
    def test_not_placeholder(self, value):
        assert not is_placeholder(value)
        assert clean_text(f"  {value} ") == value

    @pytest.mark.parametrize(
        "value",
        ["unknown", "Unknown", "Unattributed", "ransomware group", "Ransomware  Group ", "anonymous", "n/a", "",
         "unknown group", None, 7],
    )
    def test_generic_actors(self, value):
        assert is_generic_actor(value)
        assert actor_name(value) is None

    @pytest.mark.parametrize("value", ["LockBit", " Akros ", "BlueMantis"])
    def test_real_actors(self, value):
        assert not is_generic_actor(value)
        assert actor_name(value) == value.strip()

    @pytest.mark.parametrize(
        "value, expected",
        [
            ("Müller AG", "müller ag"),
            ("  Acme   S.p.A.\t", "acme s.p.a."),
            ("ＡＣＭＥ Ｇｍｂｈ", "acme gmbh"),  # NFKC
            ("Straße", "strasse"),  # casefold
            ("N/A ", None),
            ("none", None),
            ("", None),
            ("Ｎ/Ａ", None),  # not a connector placeholder, but one once normalized
            ("Unknown", None),
            (None, None),
            (42, None),
        ],
    )
    def test_normalize_victim_name(self, value, expected):
        assert normalize_victim_name(value) == expected

    @pytest.mark.parametrize(
        "value, expected, valid",
        [
            (["PII", "CREDENTIALS"], ("PII", "CREDENTIALS"), True),
            ([" pii ", "PII", "financial", "", "  "], ("PII", "FINANCIAL"), True),
            ([], (), True),
            (None, (), True),
            ("PII", (), False),
            ({"PII": 1}, (), False),
            (42, (), False),
            (["PII", 3, None, ["AI"], "AI"], ("PII", "AI"), False),
        ],
    )
    def test_data_types(self, value, expected, valid):
        assert parse_data_types(value) == (expected, valid)
        assert data_types(value) == expected


# ---------------------------------------------------------------------------------------------------
# normalize_record on the sample


def test_every_sample_record_normalizes():
    results = [norm(r) for r in SAMPLE]
    quarantined = [r for r in results if isinstance(r, Quarantined)]
    assert len(results) == 30
    assert [(q.reason, q.hashid, q.record_day) for q in quarantined] == [
        ("missing_hashid", None, date(2026, 3, 1)),
        ("missing_hashid", None, date(2026, 3, 3)),
    ]
    assert all(q.dataset == "ext" and q.code == "missing_hashid" for q in quarantined)
    for record, result in zip(SAMPLE, results):
        if isinstance(result, Victim):
            assert result.hashid == hashid_key(record["hashid"])
            assert result.extra_fields == ()
            assert result.invalid_fields == ()


def test_full_record_padded_upper_hashid_unknown_data_type():
    v = victim_of(by_hashid_prefix("61026ab8"))
    assert v == Victim(
        dataset="ext",
        hashid="61026ab80cc93f3f43985234dcdfc7516973d33918b81a4784359ebc92f1e208",
        announcement_date=date(2026, 3, 1),
        victim="Müller AG",
        victim_normalized="müller ag",
        victim_is_placeholder=False,
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
        revenue=None,
        amount="2.1 TB",
        naics="621111",
        data_types=("PII", "CREDENTIALS"),
        leak_link="http://leak12exampleonion.onion/post/1",
        title=None,
        description="Company data including employee records will be published.",
    )


def test_placeholder_victim_is_kept_not_quarantined():
    v = victim_of(by_hashid_prefix("a31ff1c7"))
    assert v == Victim(
        dataset="ext",
        hashid="a31ff1c79031692228c1dfa90a8f7e850aaaec510e8b1d423d5254add3dc9e6d",
        announcement_date=date(2026, 3, 3),
        victim="N/A ",
        victim_normalized=None,
        victim_is_placeholder=True,
        victim_domain="pioneer-678.co.uk",
        victim_domain_given=None,
        site="pioneer-678.co.uk",
        sector="Legal Services",
        sector_given="Legal Services",
        actor="NightOwl",
        actor_given="NightOwl",
        country="France",
        country_given="France",
        victim_country_code="FR",
        victim_city="Turin",
        victim_state="Texas",
        victim_address="Via Esempio 1",
        revenue="$1.2B",
        amount=None,
        naics="621111",
        data_types=("FINANCIAL",),
        leak_link="http://leak25exampleonion.onion/post/18",
        title=None,
        description="Company data including employee records will be published.",
    )
    assert len(v.hashid) == 64


def test_https_slash_slash_link_and_na_sector():
    v = victim_of(by_hashid_prefix("a7636e3f"))
    assert v.leak_link == "https://leak20exampleonion.onion/post/2"
    assert (v.sector, v.sector_given) == (None, "n/a")
    assert v.site is None  # key missing
    assert (v.victim_domain, v.victim_domain_given) == ("societ-215.fr", "societ-215.fr")
    assert (v.amount, v.revenue) == (None, None)
    assert (v.victim_state, v.victim_address) == (None, None)


def test_http_slash_slash_link_32_char_hashid_encoded_description_site_fallback():
    v = victim_of(by_hashid_prefix("7af8297a"))
    assert v.hashid == "7af8297a68018034ca836acbcce4a4d2"
    assert len(v.hashid) == 32
    assert v.leak_link == "http://leak7exampleonion.onion/post/5"
    assert v.description == "Company data including employee records will be published."
    assert v.victim_domain_given is None
    assert (v.victim_domain, v.site) == ("borealis-353.es", "borealis-353.es")
    assert (v.actor, v.actor_given) == (None, "unknown")
    assert v.revenue is None
    assert v.victim_country_code is None  # the extended fields are missing


def test_multibyte_encoded_description_na_country_ransomware_group():
    v = victim_of(by_hashid_prefix("2d3cdd93"))
    assert v.description == "Données personnelles — 42 GB — à publier"
    assert (v.country, v.country_given) == (None, "n/a")
    assert (v.actor, v.actor_given) == (None, "ransomware group")
    assert v.revenue == "$25M"
    assert v.data_types == ("SENSITIVES",)


def test_encoded_description_with_umlaut():
    v = victim_of(by_hashid_prefix("ae368aa3"))
    assert v.description == "Zephyr Müller Summit Holdings data will be published. Employees and customers affected."


def test_literal_percent_is_not_an_escape():
    v = victim_of(by_hashid_prefix("868705b2"))
    assert v.description == "Leaked records available: finance, HR & legal; 100% authentic."
    assert v.leak_link == "https://leak8exampleonion.onion/post/24"
    assert (v.sector, v.sector_given) == (None, "n/a")
    assert v.data_types == ()


def test_already_decoded_description_unchanged():
    v = victim_of(by_hashid_prefix("7f9878c4"))
    assert v.description == "Données personnelles — 42 GB — à publier"
    assert v.leak_link == "http://leak35exampleonion.onion/post/12"
    assert (v.sector, v.sector_given) == (None, "")  # "" sector
    assert v.victim_city is None


def test_victim_domain_with_spaces_and_upper_case():
    v = victim_of(by_hashid_prefix("542f8f60"))
    assert v.victim_domain == "fjord-529.com.br"
    assert v.victim_domain_given == "FJORD-529.COM.BR"  # stripped, case kept (the connector's name)
    v = victim_of(by_hashid_prefix("45b789fd"))
    assert (v.victim_domain, v.victim_domain_given) == ("meridian-74.org", "MERIDIAN-74.ORG")
    assert v.description is None  # annDescription missing
    assert (v.actor, v.actor_given) == (None, None)  # actor missing
    v = victim_of(by_hashid_prefix("1955ebb6"))
    assert (v.victim_domain, v.victim_domain_given) == ("mller-857.it", "MLLER-857.IT")


def test_site_as_full_url():
    v = victim_of(by_hashid_prefix("98ba7da3"))
    assert v.site == "https://www.cedar-51.com/about?x=1"
    assert v.victim_domain == "www.cedar-51.com"  # no victimDomain: hostname of site
    assert v.victim_domain_given is None
    assert v.leak_link == "http://leak40exampleonion.onion/post/14"
    assert v.data_types == ()  # annDataTypes null
    assert (v.country, v.country_given) == (None, None)  # country missing
    v = victim_of(by_hashid_prefix("cbd73996"))
    assert v.site == "https://www.yarrow-604.co.uk/about?x=1"
    assert v.victim_domain == "yarrow-604.co.uk"  # victimDomain first
    assert v.data_types == ("DEFENSE", "AI", "CUSTOMERS")
    assert v.description == SAMPLE[3]["annDescription"]


def test_unattributed_actor_and_missing_domains():
    v = victim_of(by_hashid_prefix("ca3d7b1c"))
    assert (v.actor, v.actor_given) == (None, "Unattributed")
    assert (v.victim_domain, v.victim_domain_given, v.site) == (None, None, None)


def test_empty_site_falls_back_to_nothing_and_null_data_types():
    v = victim_of(by_hashid_prefix("f630e314"))
    assert v.site is None  # ""
    assert v.victim_domain == "harbor-991.org"
    assert v.data_types == ()
    assert v.description is None
    assert v.victim_city is None and v.victim_address == "Via Esempio 1"


def test_missing_ann_link_and_empty_revenue():
    v = victim_of(by_hashid_prefix("6568a855"))
    assert v.leak_link is None
    assert v.description == "Pioneer SA data will be published. Employees and customers affected."
    v = victim_of(by_hashid_prefix("3cfd6172"))
    assert v.revenue == ""  # as given: the connector only uses a truthy revenue
    assert v.data_types == ()  # annDataTypes null
    assert v.actor is None


def test_updated_announcement_same_key():
    first, second = [victim_of(r) for r in SAMPLE if r.get("hashid") == SAMPLE[2]["hashid"]]
    assert first.hashid == second.hashid
    assert (first.announcement_date, second.announcement_date) == (date(2026, 3, 1), date(2026, 3, 4))
    assert second.description == "Update: full dump released."


def test_unknown_data_type_kept():
    v = victim_of(by_hashid_prefix("db19a098"))
    assert v.data_types == ("PII", "CREDENTIALS")


# ---------------------------------------------------------------------------------------------------
# normalize_record on edge cases

BASE = {"hashid": "A" * 64, "date": "2026-03-01", "victim": "Example Victim"}


@pytest.mark.parametrize(
    "value, reason",
    [
        ([BASE], "not_an_object: got list"),
        (None, "not_an_object: got null"),
        ("{}", "not_an_object: got str"),
        (42, "not_an_object: got int"),
        ({}, "missing_hashid"),
        ({"date": "2026-03-01"}, "missing_hashid"),
        ({"hashid": None, "date": "2026-03-01"}, "missing_hashid"),
        ({"hashid": "  ", "date": "2026-03-01"}, "missing_hashid: blank"),
        ({"hashid": 123, "date": "2026-03-01"}, "invalid_hashid: got int"),
        ({"hashid": ["a"], "date": "2026-03-01"}, "invalid_hashid: got list"),
        ({"hashid": "ab"}, "missing_date"),
        ({"hashid": "ab", "date": None}, "missing_date"),
        ({"hashid": "ab", "date": " "}, "missing_date: blank"),
        ({"hashid": "ab", "date": 20260301}, "invalid_date: got int"),
        ({"hashid": "ab", "date": "2026-13-45"}, "unparseable_date: '2026-13-45'"),
        ({"hashid": "ab", "date": "x" * 500}, "unparseable_date: '" + "x" * 76 + "..."),
        ({"hashid": "ab", "date": "2026-03-01\ud800"}, "unparseable_date: '2026-03-01\\ud800'"),
    ],
)
def test_quarantine_reasons(value, reason):
    result = norm(value, dataset="prv")
    assert isinstance(result, Quarantined)
    assert result.reason == reason
    assert result.dataset == "prv"
    assert result.code in QUARANTINE_CODES
    result.reason.encode("utf-8")  # storable


def test_quarantine_keeps_what_it_could_read():
    q = norm({"hashid": " AB ", "date": "garbage"})
    assert (q.hashid, q.record_day) == ("ab", None)
    q = norm({"hashid": None, "date": "2026-03-01T10:00:00Z"})
    assert (q.hashid, q.record_day) == (None, date(2026, 3, 1))


def test_minimal_record():
    v = victim_of({"hashid": "AB", "date": "2026-03-01"})
    assert v.hashid == "ab"
    assert v.victim is None and v.victim_is_placeholder and v.victim_normalized is None
    assert all(
        getattr(v, f) is None
        for f in ("victim_domain", "victim_domain_given", "site", "sector", "actor", "country", "revenue",
                  "leak_link", "title", "description", "victim_country_code")
    )
    assert v.data_types == ()
    assert (v.extra_fields, v.invalid_fields) == ((), ())


def test_extra_fields_sorted_and_provenance():
    v = normalize_record(
        {**BASE, "zeta": 1, "alpha": None, "annDataTypes": ["pii"]},
        dataset="ext",
        versions_seen=3,
        fetch_id=9,
    )
    assert v.extra_fields == ("alpha", "zeta")
    assert (v.versions_seen, v.fetch_id) == (3, 9)
    assert v.data_types == ("PII",)


def test_non_string_keys_in_extra_fields():
    # json.loads never makes them, but a caller might pass such a dict.
    v = victim_of({**BASE, 1: "x", None: 2})
    assert v.extra_fields == ("1", "None")


def test_non_string_text_fields_become_none_and_are_recorded():
    v = victim_of({**BASE, "victim": 42, "revenue": 25000000, "naics": 5415, "sector": ["IT"],
                   "annLink": {"u": 1}, "annDataTypes": "PII", "site": True})
    assert v.victim is None and v.victim_is_placeholder
    assert (v.revenue, v.naics, v.sector, v.sector_given, v.leak_link, v.site) == (None,) * 6
    assert v.data_types == ()
    assert v.invalid_fields == ("victim", "site", "sector", "revenue", "naics", "annLink", "annDataTypes")


def test_lone_surrogates_are_replaced_everywhere():
    record = {name: "a\ud800b" for name in TEXT_FIELDS}
    record.update(hashid="AB\udfff", date="2026-03-01", annDataTypes=["p\ud800"])
    v = victim_of(record)
    for f in dataclasses.fields(v):
        value = getattr(v, f.name)
        for text in value if isinstance(value, tuple) else (value,):
            if isinstance(text, str):
                text.encode("utf-8")
    assert v.hashid == "ab\ufffd"
    assert v.victim == "a\ufffdb"


def test_victim_placeholder_variants():
    for text, placeholder in [("", True), ("  n/a", True), ("NONE", True), ("null", False), ("-", False)]:
        v = victim_of({**BASE, "victim": text})
        assert v.victim == text
        assert v.victim_is_placeholder is placeholder
        if placeholder:
            assert v.victim_normalized is None


# ---------------------------------------------------------------------------------------------------
# property tests

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text()
)
# Fragments that reach the interesting branches of the helpers (escapes, link repair, IPv6 brackets,
# placeholders, lone surrogates, NFKC-sensitive characters, whitespace).
FRAGMENTS = st.sampled_from(
    ["%", "%2", "%20", "%C3%A9", "%FF", "https//", "http//", "://", "[", "]", "[::1]", "@", ":", "/", "?", "#",
     "n/a", "N/A", "none", "unknown", "ransomware group", " ", "\t", "\n", "\u3000", "\ud800", "\udfff", "ß",
     "Ｎ", "\ufb01", "İ", "\u0345", "2026-03-01", "T", "Z", "\x00", "\uff03", "a", "é"]
)
INTERESTING_TEXT = st.text() | st.lists(FRAGMENTS | st.text(max_size=4), max_size=8).map("".join)
JSON_VALUES = st.recursive(
    JSON_SCALARS | INTERESTING_TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
FIELD_VALUES = JSON_VALUES | INTERESTING_TEXT | st.lists(INTERESTING_TEXT, max_size=4)
ALL_KNOWN = sorted(KNOWN_FIELDS)
VALID_RECORD = st.fixed_dictionaries(
    {"hashid": st.sampled_from(["A" * 64, " 7AF8297A68018034CA836ACBCCE4A4D2 ", "x"]),
     "date": st.sampled_from(["2026-03-01", " 2026-03-01 ", "2026-03-01T10:00:00Z"])},
    optional={name: FIELD_VALUES for name in ALL_KNOWN if name not in ("hashid", "date")},
)
PROPERTY_SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check_invariants(value: object, result: object) -> None:
    assert isinstance(result, (Victim, Quarantined))
    if isinstance(result, Quarantined):
        assert result.code in QUARANTINE_CODES
        result.reason.encode("utf-8")
        if not isinstance(value, dict):
            assert result.code == "not_an_object"
        return
    assert isinstance(value, dict)
    assert result.hashid == hashid_key(value["hashid"])
    assert result.hashid
    assert result.announcement_date == record_day(value["date"])
    assert result.victim_is_placeholder == victim_is_placeholder(value.get("victim"))
    if result.victim_is_placeholder:
        assert result.victim_normalized is None
    assert list(result.extra_fields) == sorted(result.extra_fields)
    assert not set(result.extra_fields) & KNOWN_FIELDS
    assert set(result.invalid_fields) <= KNOWN_FIELDS
    assert len(set(result.data_types)) == len(result.data_types)
    assert all(t and t == t.strip().upper() for t in result.data_types)
    for f in dataclasses.fields(result):
        field_value = getattr(result, f.name)
        for text in field_value if isinstance(field_value, tuple) else (field_value,):
            if isinstance(text, str):
                text.encode("utf-8")  # no lone surrogates: every text can be stored


@PROPERTY_SETTINGS
@given(JSON_VALUES)
def test_any_json_value_as_a_record(value):
    check_invariants(value, norm(value))


@PROPERTY_SETTINGS
@given(st.dictionaries(st.sampled_from(ALL_KNOWN) | st.text(max_size=6), FIELD_VALUES, max_size=12))
def test_any_object_as_a_record(value):
    result = norm(value)
    check_invariants(value, result)
    usable = hashid_key(value.get("hashid")) is not None and record_day(value.get("date")) is not None
    assert isinstance(result, Victim) == usable


@PROPERTY_SETTINGS
@given(VALID_RECORD, st.dictionaries(st.text(max_size=6), JSON_VALUES, max_size=3))
def test_valid_hashid_and_date_always_give_a_victim(record, extra):
    record = {**extra, **record}
    result = norm(record)
    assert isinstance(result, Victim)
    check_invariants(record, result)


@PROPERTY_SETTINGS
@given(st.sampled_from(ALL_KNOWN), FIELD_VALUES)
def test_each_known_field_with_any_value(name, field_value):
    record = {**SAMPLE[0], name: field_value}
    result = norm(record)
    check_invariants(record, result)
    if name not in ("hashid", "date"):
        assert isinstance(result, Victim)
        assert result.hashid == hashid_key(SAMPLE[0]["hashid"])
        if field_value is not None and not isinstance(field_value, (str, list)):
            assert name in result.invalid_fields
    else:
        usable = hashid_key(record["hashid"]) is not None and record_day(record["date"]) is not None
        assert isinstance(result, Victim) == usable


@PROPERTY_SETTINGS
@given(FIELD_VALUES)
def test_helpers_never_raise(value):
    for helper in (hashid_key, record_day, repair_link, domain_of, decode_description, normalize_victim_name,
                   victim_is_placeholder, is_placeholder, clean_text, actor_name, is_generic_actor, data_types):
        helper(value)


@PROPERTY_SETTINGS
@given(st.dates(), st.sampled_from(["", " ", "\n"]), st.sampled_from(["", "T10:00:00Z", " 00:00:00", "T23:59:59.5+02:00"]))
def test_record_day_roundtrip(day, pad, suffix):
    assert record_day(f"{pad}{day.isoformat()}{suffix}{pad}") == day


# Oracles written from stix-mapping.md's description of the connector, without caching or shortcuts.


def oracle_domain(value: str) -> str | None:
    value = value.strip()
    if not value:
        return None
    parsed = urlsplit(value if "://" in value else "https://" + value)
    return (parsed.hostname or "").strip().lower() or None


@PROPERTY_SETTINGS
@given(INTERESTING_TEXT)
def test_string_helpers_agree_with_the_connector_rules(text):
    assume(not any("\ud800" <= c <= "\udfff" for c in text))
    assert hashid_key(text) == (text.strip().lower() or None)
    assert victim_is_placeholder(text) == (text.strip().lower() in {"", "n/a", "none"})
    try:
        expected_domain = oracle_domain(text)
    except ValueError:
        expected_domain = None
    assert domain_of(text) == expected_domain
    assert decode_description(text) == unquote(text)
    if text.startswith("https//"):
        assert repair_link(text) == "https://" + text[7:]
    elif text.startswith("http//"):
        assert repair_link(text) == "http://" + text[6:]
    else:
        assert repair_link(text) == (text or None)


@PROPERTY_SETTINGS
@given(st.from_regex(r"[A-Za-z0-9._-]{1,20}", fullmatch=True) | st.from_regex(r"[ -~]{0,12}", fullmatch=True))
def test_domain_fast_path_matches_urlsplit(text):
    try:
        expected = oracle_domain(text)
    except ValueError:
        expected = None
    assert domain_of(text) == expected


def test_long_values_bypass_the_caches():
    long_sector = "  " + "Manufacturing " * 100 + " "
    assert clean_text(long_sector) == long_sector.strip()
    assert clean_text(" " * 1000 + "n/a" + " " * 1000) is None
    assert actor_name("unknown" + " " * 500 + "group") is None
    v = victim_of({**BASE, "sector": long_sector, "actor": "X" * 10_000})
    assert v.sector == long_sector.strip()
    assert v.actor == "X" * 10_000


# Percent-escapes of every kind (valid UTF-8, broken sequences, bad hex, a lone %), mixed with any text.
_percent_text = st.lists(
    st.sampled_from(["%", "%e2", "%82", "%AC", "%c3%a9", "%f0%9f%98%80", "%ZZ", "%2", "%41", "%ff", "%80", "%E2%82"])
    | st.text(alphabet=st.characters(blacklist_categories=()), max_size=3),
    max_size=12,
).map("".join)


@settings(max_examples=1000, deadline=None)
@given(text=_percent_text)
def test_url_decoding_is_urllibs(text: str) -> None:
    """The compiled unquote (when built) gives exactly urllib.parse.unquote's result."""
    from dep_assets.normalize import fields

    assert fields.unquote(text) == unquote(text)
