"""`dep_victims` and `dep_stix_bundles`: derived from the archive only, never from DEP.

Both use the raw asset's partitions and a single-run backfill policy, so re-mapping years of history
is one run. When an announcement moves to another day (DEP re-dated it), the day it left is
recomputed too, and a materialization is recorded for that partition so the UI shows it.
"""

import dagster as dg

from dep_assets.archive.derived import build_bundles, build_victims
from dep_assets.defs.partitions import partition_days, partition_key
from dep_assets.defs.resources import DuckDBArchiveResource
from dep_assets.normalize.model import NORMALIZER_VERSION
from dep_assets.stix_mapping import MappingOptions, StixMapper

UNIQUE_HASHID_CHECK = "hashid_unique_per_dataset"
ACCOUNTED_CHECK = "every_raw_record_accounted_for"
QUARANTINE_SHARE_CHECK = "quarantine_share_below_threshold"
MOVED = "an announcement moved from this day to a day of this run (DEP re-dated it)"

# Distinct announcements filed on each day, straight from the raw tables: the check recomputes it
# independently of the Python that built the derived tables.
_FILED_PER_DAY = """
WITH keyed AS (
    SELECT r.dataset, coalesce(r.hashid_key, 'sha256:' || r.payload_sha256) AS identity,
           coalesce(r.record_day, r.day) AS filed_day, r.fetch_id * 1000000 + r.position AS version_order
    FROM raw_records r WHERE r.dataset = $dataset
), latest AS (
    SELECT identity, max_by(filed_day, version_order) AS filed_day FROM keyed GROUP BY identity
)
SELECT filed_day, count(*) FROM latest WHERE filed_day IN (SELECT unnest($days::DATE[])) GROUP BY filed_day
"""


def build_dep_victims(partitions_def: dg.PartitionsDefinition, quarantine_max_share: float) -> dg.AssetsDefinition:
    @dg.asset(
        group_name="dep",
        partitions_def=partitions_def,
        deps=["dep_announcements_raw"],
        kinds={"duckdb", "python"},
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool="dep_archive",
        code_version=f"normalizer-{NORMALIZER_VERSION}",
        check_specs=[
            dg.AssetCheckSpec(UNIQUE_HASHID_CHECK, asset="dep_victims", description="One row per dataset + hashid across all days."),
            dg.AssetCheckSpec(ACCOUNTED_CHECK, asset="dep_victims", description="Victims + quarantined = distinct raw announcements filed on each day."),
            dg.AssetCheckSpec(QUARANTINE_SHARE_CHECK, asset="dep_victims", description=f"At most {quarantine_max_share:.0%} of the run's records quarantined (DEP_QUARANTINE_MAX_SHARE)."),
        ],
        description=(
            "One row per announcement (dataset + hashid) in `dep_victims`: its latest archived version, "
            "normalized, filed under that version's own date. Records that cannot be normalized go to "
            "`dep_quarantine` with the reason and a pointer to the raw row. Reads the archive only."
        ),
    )
    def dep_victims(context: dg.AssetExecutionContext, archive: DuckDBArchiveResource) -> dg.MaterializeResult:
        return normalize_partitions(context, archive, quarantine_max_share)

    return dep_victims


def _days_by_dataset(context: dg.AssetExecutionContext) -> dict[str, list]:
    by_dataset: dict[str, list] = {}
    for dataset, day in partition_days(context):
        by_dataset.setdefault(dataset, []).append(day)
    return by_dataset


def _record_moves(context: dg.AssetExecutionContext, dataset: str, moved_from: set, reason: str) -> None:
    for day in sorted(moved_from):
        context.log_event(
            dg.AssetMaterialization(
                asset_key=context.asset_key,
                partition=partition_key(dataset, day),
                description=reason,
                metadata={"recomputed_because": reason},
            )
        )


def normalize_partitions(
    context: dg.AssetExecutionContext, archive: DuckDBArchiveResource, quarantine_max_share: float
) -> dg.MaterializeResult:
    store = archive.get_archive()
    totals = {"victims": 0, "quarantined": 0, "placeholders": 0}
    reasons: dict[str, int] = {}
    samples: list[str] = []
    accounted: list[str] = []
    with store.writer() as conn:
        for dataset, days in _days_by_dataset(context).items():
            outcome = build_victims(conn, dataset, days, workers=archive.workers, on_quarantine=context.log.warning)
            totals["victims"] += outcome.victims
            totals["quarantined"] += outcome.quarantined
            totals["placeholders"] += outcome.placeholders
            for code, count in outcome.reasons.items():
                reasons[code] = reasons.get(code, 0) + count
            samples += outcome.quarantine_samples
            _record_moves(context, dataset, outcome.moved_from, MOVED)
            accounted += _accounting_mismatches(conn, dataset, days)
        duplicates = conn.execute(
            "SELECT dataset, hashid, count(*) FROM dep_victims GROUP BY ALL HAVING count(*) > 1 LIMIT 10"
        ).fetchall()
    store.publish_snapshot()

    seen = totals["victims"] + totals["quarantined"]
    share = totals["quarantined"] / seen if seen else 0.0
    return dg.MaterializeResult(
        metadata={
            **totals,
            "quarantine_reasons": dg.MetadataValue.json(reasons),
            "quarantine_examples": dg.MetadataValue.md("\n".join(f"- {s}" for s in samples) or "none"),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=UNIQUE_HASHID_CHECK,
                passed=not duplicates,
                metadata={"duplicates": dg.MetadataValue.json([list(map(str, d)) for d in duplicates])},
            ),
            dg.AssetCheckResult(
                check_name=ACCOUNTED_CHECK,
                passed=not accounted,
                metadata={"mismatches": dg.MetadataValue.json(accounted)},
            ),
            dg.AssetCheckResult(
                check_name=QUARANTINE_SHARE_CHECK,
                passed=share <= quarantine_max_share,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"share": round(share, 4), "threshold": quarantine_max_share},
            ),
        ],
    )


def _accounting_mismatches(conn, dataset: str, days: list) -> list[str]:  # type: ignore[no-untyped-def]
    params = {"dataset": dataset, "days": sorted(set(days))}
    expected = dict(conn.execute(_FILED_PER_DAY, params).fetchall())
    got = dict(
        conn.execute(
            """
            SELECT d, count(*) FROM (
                SELECT announcement_date AS d FROM dep_victims WHERE dataset = $dataset
                UNION ALL SELECT day FROM dep_quarantine WHERE dataset = $dataset
            ) WHERE d IN (SELECT unnest($days::DATE[])) GROUP BY d
            """,
            params,
        ).fetchall()
    )
    return [
        f"{dataset}|{day}: {expected.get(day, 0)} raw announcements, {got.get(day, 0)} victims + quarantined"
        for day in sorted(set(expected) | set(got))
        if expected.get(day, 0) != got.get(day, 0)
    ]


def build_dep_stix_bundles(partitions_def: dg.PartitionsDefinition, options: MappingOptions) -> dg.AssetsDefinition:
    mapper = StixMapper(options)
    mapping_version = mapper.fingerprint

    @dg.asset(
        group_name="dep",
        partitions_def=partitions_def,
        deps=["dep_victims"],
        kinds={"duckdb", "python"},
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool="dep_archive",
        # The options are part of the code version: changing DEP_TLP or any mapping switch marks
        # every partition stale in the UI, ready for a one-run re-map.
        code_version=f"mapping-{mapping_version}",
        metadata={"mapping_options": dg.MetadataValue.json(vars(options)), "mapping_version": mapping_version},
        description=(
            "One STIX 2.1 bundle per announcement in `stix_bundles` (view `stix_objects`: one row per "
            "object), mapped from `dep_victims` with the DEP connector's ids; every timestamp comes from "
            "the announcement, so re-mapping the same input is byte-identical."
        ),
    )
    def dep_stix_bundles(context: dg.AssetExecutionContext, archive: DuckDBArchiveResource) -> dg.MaterializeResult:
        store = archive.get_archive()
        bundles = skipped = objects = 0
        with store.writer() as conn:
            for dataset, days in _days_by_dataset(context).items():
                outcome = build_bundles(conn, dataset, days, mapper, mapping_version, workers=archive.workers)
                bundles += outcome.bundles
                skipped += outcome.skipped
                objects += outcome.objects
                _record_moves(context, dataset, outcome.moved_from, MOVED)
        store.publish_snapshot()
        context.log.info(f"mapped {bundles} bundles ({objects} objects), skipped {skipped} placeholder victims")
        return dg.MaterializeResult(
            metadata={
                "bundles": bundles,
                "objects": objects,
                "skipped_placeholder_victims": skipped,
                "mapping_version": mapping_version,
            },
        )

    return dep_stix_bundles
