"""`dep_victims` and `dep_stix_bundles` end to end: real Dagster runs, real DuckDB, the DEP stand-in
counting every request (a replay must make none)."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections import Counter

import dagster as dg
import stix2

from dep_assets.definitions import build_definitions
from dep_assets.settings import Settings
from dep_assets.stix_mapping import bundle_dangling_refs
from dep_assets_tests.conftest import (
    ALL_ASSETS,
    DERIVED,
    RAW,
    ROOT,
    materialize,
    query,
    sample_records,
)

EXT_RANGE = ("ext|2026-03-01", "ext|2026-03-06")


def expected_victims_per_day() -> Counter:
    """Independently of the project's code: the last version of each hashid, on its own date."""
    latest: dict[str, str] = {}
    for record in sample_records("ext"):  # files are in day order, so later versions come last
        if isinstance(record, dict) and isinstance(record.get("hashid"), str) and record["hashid"].strip():
            latest[record["hashid"].strip().lower()] = record["date"]
    return Counter(latest.values())


def check_results(result) -> dict[str, bool]:
    return {e.asset_check_evaluation_data.check_name: e.asset_check_evaluation_data.passed
            for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"}


def test_victims_and_bundles_are_derived_from_the_archive(instance, use_env, served_sample):
    result = materialize(instance, *EXT_RANGE, assets=ALL_ASSETS)

    per_day = dict(query(use_env, "SELECT announcement_date::VARCHAR, count(*) FROM dep_victims GROUP BY 1"))
    assert per_day == dict(expected_victims_per_day())
    assert query(use_env, "SELECT count(*) FROM (SELECT dataset, hashid FROM dep_victims GROUP BY ALL HAVING count(*) > 1)") == [(0,)]
    assert check_results(result) == {
        "hashid_unique_per_dataset": True,
        "every_raw_record_accounted_for": True,
        "quarantine_share_below_threshold": True,
    }

    # Quarantine: the two null hashids and the stray string, each pointing at its raw row.
    quarantined = query(
        use_env,
        "SELECT q.day::VARCHAR, q.reason, r.is_object FROM dep_quarantine q "
        "JOIN raw_records r USING (fetch_id, position) ORDER BY q.day",
    )
    assert quarantined == [
        ("2026-03-01", "missing_hashid", True),
        ("2026-03-03", "missing_hashid", True),
        ("2026-03-05", "not_an_object: got str", False),
    ]

    # Normalized values, quirk by quirk.
    row = dict(zip(
        ("hashid", "leak_link", "actor", "sector", "description", "victim_domain", "data_types"),
        query(use_env, "SELECT hashid, leak_link, actor, sector, description, victim_domain, data_types "
                       "FROM dep_victims WHERE victim = 'Alpine Kestrel Juniper AG'")[0],
    ))
    assert row == {
        "hashid": "573d7b2f9d6b0448258dc8e370fe7aebc7d5badc2aeaf7e3bc72282534f4b729",
        "leak_link": "http://leak31exampleonion.onion/post/11",
        "actor": "BlueMantis",
        "sector": "Manufacturing",
        "description": "Données personnelles — 42 GB — à publier",
        "victim_domain": "alpine-952.es",
        "data_types": ["FINANCIAL", "MEDICAL"],
    }
    assert query(use_env, "SELECT hashid, actor, leak_link FROM dep_victims WHERE victim = 'Società S.p.A.'") == [
        ("a7636e3f0c45dc40e962770d79c4f67e25aa55bdbdc7be2da53ca10866c906fd", "Akros", "https://leak20exampleonion.onion/post/2")
    ]
    assert query(use_env, "SELECT victim_is_placeholder FROM dep_victims WHERE victim = 'N/A '") == [(True,)]

    # Bundles: one per announcement but the placeholder victim (skipped, like the connector).
    victims = query(use_env, "SELECT count(*) FROM dep_victims")[0][0]
    bundles = query(use_env, "SELECT hashid, primary_id, bundle, object_count FROM stix_bundles")
    assert len(bundles) == victims - 1
    for hashid, primary_id, text, object_count in bundles:
        assert primary_id == f"incident--{uuid.uuid5(uuid.NAMESPACE_URL, 'dep-announcement:' + hashid)}"
        parsed = stix2.parse(text, allow_custom=True)
        assert len(parsed.objects) == object_count
        assert bundle_dangling_refs(json.loads(text)) == set()
    assert query(use_env, "SELECT count(*) FROM stix_objects") == [(sum(b[3] for b in bundles),)]


def test_inclusive_te_never_counts_an_announcement_twice(instance, use_env, served_sample):
    served_sample.te_inclusive = True
    materialize(instance, *EXT_RANGE, assets=ALL_ASSETS)
    # The 03-03 fetch also carried 03-04's record; it is still one victim, on 03-04.
    assert query(use_env, "SELECT count(*) FROM raw_records WHERE day = DATE '2026-03-03' AND record_day = DATE '2026-03-04'") == [(1,)]
    per_day = dict(query(use_env, "SELECT announcement_date::VARCHAR, count(*) FROM dep_victims GROUP BY 1"))
    assert per_day == dict(expected_victims_per_day())


def test_a_redated_announcement_moves_and_the_old_day_is_recomputed(instance, use_env, dep_server):
    records = sample_records("ext")
    original = next(r for r in records if r.get("victim") == "Juniper Ltd" and r["date"] == "2026-03-01")
    redated = next(r for r in records if r.get("victim") == "Juniper Ltd" and r["date"] == "2026-03-04")
    day_one = [r for r in records if isinstance(r, dict) and r.get("date") == "2026-03-01"]
    dep_server.add_records("ext", day_one)
    materialize(instance, "ext|2026-03-01", assets=ALL_ASSETS)
    juniper = "b09b29d435d7d5ed13d281ec148c6803cebb8e53fbf5b28cbcbde5e875cdebf1"
    assert query(use_env, "SELECT announcement_date::VARCHAR, versions_seen FROM dep_victims WHERE hashid = ?", [juniper]) == [("2026-03-01", 1)]
    assert query(use_env, "SELECT count(*) FROM dep_victims WHERE announcement_date = DATE '2026-03-01'") == [(7,)]

    # DEP re-dates it: day one no longer lists it, 03-04 does.
    dep_server.replace_records("ext", [r for r in day_one if r is not original] + [redated])
    materialize(instance, "ext|2026-03-04", assets=ALL_ASSETS)

    assert query(use_env, "SELECT announcement_date::VARCHAR, versions_seen, description FROM dep_victims WHERE hashid = ?", [juniper]) == [
        ("2026-03-04", 2, "Update: full dump released.")
    ]
    assert query(use_env, "SELECT day::VARCHAR FROM stix_bundles WHERE hashid = ?", [juniper]) == [("2026-03-04",)]
    assert query(use_env, "SELECT count(*) FROM dep_victims WHERE announcement_date = DATE '2026-03-01'") == [(6,)]
    # The day it left got a materialization of its own, so the UI shows it as recomputed.
    for asset in DERIVED:
        events = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=["ext|2026-03-01"]), limit=10
        ).records
        assert len(events) == 2, asset
        assert "moved" in (events[0].asset_materialization.description or "")


def test_a_remap_with_new_options_reads_only_the_archive(instance, use_env, served_sample, monkeypatch):
    materialize(instance, *EXT_RANGE, assets=RAW)
    materialize(instance, *EXT_RANGE, assets=DERIVED)
    before = dict(query(use_env, "SELECT hashid, sha256 FROM stix_bundles"))
    served_sample.reset_log()
    runs_before = len(instance.get_runs())

    # New mapping options, and nothing that could reach DEP: no credentials, a dead endpoint.
    for name in ("DEP_USERNAME", "DEP_PASSWORD", "DEP_API_KEY"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("DEP_API_ENDPOINT", "http://127.0.0.1:9/v1/dbtr/privlist")
    monkeypatch.setenv("DEP_PRIMARY_OBJECT", "report")
    monkeypatch.setenv("DEP_TLP", "amber+strict")
    monkeypatch.setenv("DEP_CREATE_INTRUSION_SETS", "true")
    monkeypatch.setenv("DEP_DATASET_LABEL", "true")
    materialize(instance, *EXT_RANGE, assets=DERIVED)

    assert served_sample.request_count == 0
    assert len(instance.get_runs()) == runs_before + 1  # six days, one run
    after = dict(query(use_env, "SELECT hashid, sha256 FROM stix_bundles"))
    assert set(after) == set(before) and all(after[h] != before[h] for h in after)
    versions = query(use_env, "SELECT DISTINCT mapping_version FROM stix_bundles")
    assert len(versions) == 1 and versions[0][0] == Settings.from_env().mapping_options().fingerprint()
    types = dict(query(use_env, "SELECT stix_type, count(*) FROM stix_objects GROUP BY 1"))
    assert types["report"] == len(after) and "incident" not in types
    assert types["marking-definition"] == len(after)  # every bundle carries its marking
    assert types["intrusion-set"] > 0
    labels = query(use_env, "SELECT DISTINCT object ->> '$.labels' FROM stix_objects WHERE stix_type = 'report'")
    assert all("dep:dataset:ext" in text for (text,) in labels)


def test_mapping_the_same_archive_twice_is_byte_identical(instance, use_env, served_sample):
    materialize(instance, *EXT_RANGE, assets=ALL_ASSETS)
    first = query(use_env, "SELECT hashid, bundle FROM stix_bundles ORDER BY hashid")
    materialize(instance, *EXT_RANGE, assets=DERIVED)
    assert query(use_env, "SELECT hashid, bundle FROM stix_bundles ORDER BY hashid") == first


def test_changing_a_mapping_option_changes_the_code_version(use_env, monkeypatch):
    def code_version() -> str:
        defs = build_definitions(Settings.from_env())
        return defs.resolve_assets_def("dep_stix_bundles").code_versions_by_key[dg.AssetKey("dep_stix_bundles")]

    default = code_version()
    monkeypatch.setenv("DEP_TLP", "green")
    assert code_version() != default
    monkeypatch.setenv("DEP_TLP", "none")
    assert code_version() == default


def test_export_command_writes_importable_bundles(instance, use_env, served_sample, tmp_path):
    materialize(instance, *EXT_RANGE, assets=ALL_ASSETS)
    out = tmp_path / "export"
    completed = subprocess.run(
        [sys.executable, "-m", "dep_assets.cli", "export-bundles", "2026-03-02", "2026-03-03", "--out", str(out)],
        env={**use_env, "PATH": "/usr/bin:/bin"}, cwd=ROOT, capture_output=True, text=True, check=False,
    )
    assert completed.returncode == 0, completed.stderr
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.json"))
    assert files == ["ext/2026-03-02.json", "ext/2026-03-03.json"]
    for path in out.rglob("*.json"):
        bundle = json.loads(path.read_text())
        stix2.parse(bundle, allow_custom=True)
        ids = [o["id"] for o in bundle["objects"]]
        assert len(ids) == len(set(ids))
        incidents = sum(o["type"] == "incident" for o in bundle["objects"])
        day = path.stem
        assert incidents == query(use_env, "SELECT count(*) FROM stix_bundles WHERE day = ?", [day])[0][0]


def test_the_readme_sql_examples_run_on_a_real_archive(instance, use_env, served_sample):
    materialize(instance, *EXT_RANGE, assets=ALL_ASSETS)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("```sql", 1)[1].split("```", 1)[0]
    statements = [s for s in block.split(";") if s.strip()]
    assert len(statements) >= 5
    answered = [len(query(use_env, statement)) for statement in statements]
    assert answered[0] > 0 and answered[1] > 0 and answered[2] == 3  # the quarantined records
