"""Daily x dataset partitions: one partition is one day of one DEP dataset."""

from datetime import date

import dagster as dg

from dep_assets.settings import Settings

DATE_DIMENSION = "date"
DATASET_DIMENSION = "dataset"


def build_partitions(settings: Settings) -> dg.MultiPartitionsDefinition:
    return dg.MultiPartitionsDefinition(
        {
            DATE_DIMENSION: dg.DailyPartitionsDefinition(
                start_date=settings.start_date.isoformat(),
                # Include today: DEP publishes during the day and the schedule re-reads it.
                end_offset=1,
                timezone="UTC",
            ),
            DATASET_DIMENSION: dg.StaticPartitionsDefinition(list(settings.datasets)),
        }
    )


def partition_days(context: dg.AssetExecutionContext) -> list[tuple[str, date]]:
    """The (dataset, day) pairs of this run, sorted: one for a normal run, many in a single-run backfill."""
    partitions_def = context.assets_def.partitions_def
    assert isinstance(partitions_def, dg.MultiPartitionsDefinition)
    pairs = []
    for key in context.partition_keys:
        dims = partitions_def.get_partition_key_from_str(key).keys_by_dimension
        pairs.append((dims[DATASET_DIMENSION], date.fromisoformat(dims[DATE_DIMENSION])))
    return sorted(pairs)


def partition_key(dataset: str, day: date) -> str:
    return dg.MultiPartitionKey({DATASET_DIMENSION: dataset, DATE_DIMENSION: day.isoformat()})
