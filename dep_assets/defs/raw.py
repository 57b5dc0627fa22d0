"""`dep_announcements_raw`: fetch each (dataset, day) partition from DEP and archive it as received."""

import hashlib
from dataclasses import dataclass
from datetime import date

import dagster as dg

from dep_assets.archive import ArchivedFetch, archive_response
from dep_assets.defs.partitions import partition_days
from dep_assets.defs.resources import DepApiResource, DuckDBArchiveResource
from dep_assets.dep_client import (
    DepAuthError,
    DepConfigurationError,
    DepError,
    DepResponse,
)

PREVIEW_RECORDS = 5


@dataclass(frozen=True)
class _Archived:
    """What the run keeps of one archived partition (not the body: a year's backfill must fit in memory)."""

    dataset: str
    day: date
    fetch: ArchivedFetch
    source: str
    fetch_seconds: float


PREVIEW_COLUMNS = ("partition", "position", "hashid", "date", "victim", "actor")


def _preview_rows(response: DepResponse, limit: int) -> list[dg.TableRecord]:
    rows = []
    for position, record in enumerate(response.records[:limit]):
        value = record.value if isinstance(record.value, dict) else {"victim": f"<{type(record.value).__name__}>"}
        rows.append(
            dg.TableRecord(
                {
                    "partition": f"{response.dataset}|{response.day}",
                    "position": position,
                    "hashid": str(value.get("hashid"))[:64],
                    "date": str(value.get("date")),
                    "victim": str(value.get("victim"))[:80],
                    "actor": str(value.get("actor")),
                }
            )
        )
    return rows


def _partition_table(results: list[_Archived]) -> dg.TableMetadataValue:
    columns = ("partition", "fetch_id", "records", "new_hashids", "known_hashids", "new_payloads", "bytes", "fetch_ms")
    return dg.MetadataValue.table(
        [
            dg.TableRecord(
                {
                    "partition": f"{r.dataset}|{r.day}",
                    "fetch_id": r.fetch.fetch_id,
                    "records": r.fetch.records,
                    "new_hashids": r.fetch.new_hashids,
                    "known_hashids": r.fetch.known_hashids,
                    "new_payloads": r.fetch.new_payloads,
                    "bytes": r.fetch.body_bytes,
                    "fetch_ms": round(r.fetch_seconds * 1000, 1),
                }
            )
            for r in results
        ],
        schema=dg.TableSchema(
            columns=[dg.TableColumn(c, "string" if c == "partition" else "int") for c in columns]
        ),
    )


def build_dep_announcements_raw(partitions_def: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    @dg.asset(
        group_name="dep",
        partitions_def=partitions_def,
        kinds={"duckdb", "python"},
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool="dep_archive",
        code_version="1",
        description=(
            "Every DEP response, exactly as received, appended to the DuckDB archive: one fetch per "
            "(dataset, day) partition into `raw_fetches`, one row per record into `raw_records` (payloads "
            "de-duplicated in `raw_payloads`; the view `raw_announcements` joins them)."
        ),
    )
    def dep_announcements_raw(
        context: dg.AssetExecutionContext, dep: DepApiResource, archive: DuckDBArchiveResource
    ) -> dg.MaterializeResult:
        return fetch_and_archive(context, dep, archive)

    return dep_announcements_raw


def fetch_and_archive(
    context: dg.AssetExecutionContext, dep: DepApiResource, archive: DuckDBArchiveResource
) -> dg.MaterializeResult:
    """Fetch every partition of the run, archiving each in its own short transaction."""
    store = archive.get_archive()
    source = dep.source(notify=context.log.warning)
    results: list[_Archived] = []
    preview: list[dg.TableRecord] = []
    failures: list[str] = []
    for dataset, day in partition_days(context):
        try:
            response = source.fetch_day(dataset, day)
        except (DepAuthError, DepConfigurationError):
            raise  # every other partition would fail the same way
        except DepError as error:
            # One bad day must not stop a year-long backfill: record it and go on, fail at the end.
            failures.append(f"{dataset}|{day}: {error}")
            context.log.error(f"partition {dataset}|{day} not archived: {error}")
            continue
        with store.writer() as conn:  # short write window: the fetch is already done
            fetch = archive_response(conn, response, run_id=context.run.run_id)
        results.append(_Archived(dataset, day, fetch, response.source, response.duration_seconds))
        preview += _preview_rows(response, PREVIEW_RECORDS - len(preview))
        context.log.info(
            f"archived {dataset}|{day}: fetch {fetch.fetch_id}, {fetch.records} records "
            f"({fetch.new_hashids} new hashids, {fetch.known_hashids} already archived, "
            f"{fetch.records_without_hashid} without hashid), {fetch.body_bytes} bytes"
        )
    if results:
        store.publish_snapshot()
    if failures:
        raise dg.Failure(
            description=(
                f"{len(failures)} of {len(failures) + len(results)} partition(s) could not be fetched"
                + ("; the others are archived" if results else "")
                + ". Re-run the failed partitions:\n"
                + "\n".join(failures)
            ),
            metadata={"failed_partitions": dg.MetadataValue.json([f.split(":", 1)[0] for f in failures])},
        )

    def total(attribute: str) -> int:
        return sum(getattr(r.fetch, attribute) for r in results)

    return dg.MaterializeResult(
        metadata={
            "records": total("records"),
            "new_hashids": total("new_hashids"),
            "known_hashids": total("known_hashids"),
            "new_payloads": total("new_payloads"),
            "records_without_hashid": total("records_without_hashid"),
            "bytes": total("body_bytes"),
            "fetch_seconds": round(sum(r.fetch_seconds for r in results), 3),
            "partitions_in_run": len(results),
            "fetch_ids": dg.MetadataValue.json([r.fetch.fetch_id for r in results]),
            "source": results[0].source if results else "none",
            "partitions": _partition_table(results),
            "preview": dg.MetadataValue.table(
                preview, schema=dg.TableSchema(columns=[dg.TableColumn(c, "string") for c in PREVIEW_COLUMNS])
            ),
        },
        # The archive changes on every fetch; the body hashes say whether DEP's answer did.
        data_version=dg.DataVersion(_bodies_digest(results)),
    )


def _bodies_digest(results: list[_Archived]) -> str:
    joined = "\n".join(f"{r.dataset}|{r.day}|{r.fetch.body_sha256}" for r in results)
    return hashlib.sha256(joined.encode()).hexdigest()[:16]
