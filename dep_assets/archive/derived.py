"""Derived tables, computed from the raw archive alone: `dep_victims`, `dep_quarantine`, `stix_bundles`.

No DEP call happens here, so history can be replayed and re-mapped at will.

Identity of an announcement: (dataset, hashid key); a record without a usable hashid is identified by
its payload's SHA-256. Its *latest version* is the one from the most recent fetch that returned it,
and it is filed under that version's own date (or, when the date is unreadable, the day of that
fetch). So each announcement sits on exactly one day, and moves when DEP re-dates it.

How the work is split: this module does the DuckDB side in the calling process, in one transaction
per call (deletes, inserts); the rows to transform stream out of the archive through a second
connection as Arrow batch files in a scratch directory, and the per-record Python runs on them in
`dep_assets.transform`.

The rows stream in windows of whole days, about `WINDOW_ROWS` rows each, each window sorted on its
own: a single sorted query over a multi-year range would hold every row of it (with its payload)
in DuckDB's sort at once, so the memory of a replay would grow with the length of history.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import duckdb
import pyarrow as pa

from dep_assets.archive.sql import transaction
from dep_assets.stix_mapping import StixMapper
from dep_assets.transform import (
    VICTIM_MODEL_FIELDS,
    InOrder,
    map_batch,
    normalize_batch,
    prestart_workers,
    put_batch,
    take_batch,
)

# Rows per unit of work: small enough to balance two workers and bound memory (a bundle is ~4 KB of
# JSON: a worker peaks at ~200 MB), large enough that the per-batch costs (DuckDB statements, Arrow
# files, hand-overs) stay small. `make bench`: 5,000 ~5% faster than 2,500, 10,000 no faster.
BATCH_ROWS = 5_000
# Rows DuckDB sorts at once (a window of whole days): ~25 MB of payloads, a few of bundles' victims.
WINDOW_ROWS = 25_000

# The latest version of every announcement of one dataset, with where it is filed.
_LATEST_VERSIONS = """
WITH keyed AS (
    SELECT r.fetch_id, r.position, r.day, r.record_day, r.hashid_key, r.payload_sha256, f.requested_at,
           coalesce(r.hashid_key, 'sha256:' || r.payload_sha256) AS identity,
           r.fetch_id * 1000000 + r.position AS version_order
    FROM raw_records r JOIN raw_fetches f USING (fetch_id)
    WHERE r.dataset = $dataset
)
SELECT identity,
       any_value(hashid_key) AS hashid_key,
       max_by(fetch_id, version_order) AS fetch_id,
       max_by(position, version_order) AS position,
       max_by(coalesce(record_day, day), version_order) AS filed_day,
       max_by(payload_sha256, version_order) AS payload_sha256,
       count(DISTINCT payload_sha256)::INTEGER AS versions_seen,
       min(requested_at) AS first_seen,
       max(requested_at) AS last_seen
FROM keyed
GROUP BY identity
"""

@dataclass
class VictimsOutcome:
    victims: int = 0
    quarantined: int = 0
    placeholders: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    moved_from: set[date] = field(default_factory=set)  # other days that lost an announcement to these
    quarantine_samples: list[str] = field(default_factory=list)  # "partition, record, reason" lines
    workers: int = 0  # transform worker processes used (0: inline)
    worker_peak_rss_mb: float = 0.0  # the largest peak RSS of a process that ran a batch


@dataclass
class BundlesOutcome:
    bundles: int = 0
    skipped: int = 0  # placeholders skipped by DEP_SKIP_EMPTY_VICTIM
    objects: int = 0
    moved_from: set[date] = field(default_factory=set)
    workers: int = 0
    worker_peak_rss_mb: float = 0.0


def _in_days(days: Iterable[date]) -> list[date]:
    return sorted(set(days))


# ---------------------------------------------------------------------------------------------------
# dep_victims and dep_quarantine
# ---------------------------------------------------------------------------------------------------

# The latest versions filed on the days asked for, without payloads (small rows), for one run: a temp
# table of the reading connection, so the whole-history aggregation runs once.
_FILED_VERSIONS = f"""
CREATE TEMP TABLE filed_versions AS
SELECT * FROM ({_LATEST_VERSIONS}) WHERE filed_day IN (SELECT unnest($days::DATE[]))
"""
# One window of them with their payloads, in a stable order (the batches' order).
_FILED_WINDOW = """
SELECT f.*, p.payload
FROM filed_versions f JOIN raw_payloads p USING (payload_sha256)
WHERE f.filed_day IN (SELECT unnest($days::DATE[]))
ORDER BY f.filed_day, f.identity
"""


def build_victims(
    conn: duckdb.DuckDBPyConnection,
    dataset: str,
    days: Iterable[date],
    *,
    batch_rows: int = BATCH_ROWS,
    workers: int | None = None,
    on_quarantine: Callable[[str], None] | None = None,
) -> VictimsOutcome:
    """Recompute `dep_victims` and `dep_quarantine` for `days` of `dataset`, in one transaction."""
    prestart_workers(workers)
    params = {"dataset": dataset, "days": _in_days(days)}
    outcome = VictimsOutcome()
    with transaction(conn):
        # What was filed on these days goes; the latest versions filed on them now come in below.
        for table, day_column in (("dep_victims", "announcement_date"), ("dep_quarantine", "day")):
            conn.execute(
                f"DELETE FROM {table} WHERE dataset = $dataset AND {day_column} IN (SELECT unnest($days::DATE[]))",
                params,
            )
        with tempfile.TemporaryDirectory(prefix="dep-assets-victims-", ignore_cleanup_errors=True) as scratch:
            batches = InOrder(
                normalize_batch, ((dataset, b) for b in _stream_filed(conn, params, batch_rows, scratch)), workers
            )
            for result in batches:
                _insert_batch(conn, "dep_victims", result.victims)
                _insert_batch(conn, "dep_quarantine", result.quarantine)
                outcome.victims += result.victim_count
                outcome.quarantined += len(result.quarantine_lines)
                outcome.placeholders += result.placeholders
                outcome.worker_peak_rss_mb = max(outcome.worker_peak_rss_mb, result.peak_rss_mb)
                for code, count in result.reasons.items():
                    outcome.reasons[code] = outcome.reasons.get(code, 0) + count
                for line in result.quarantine_lines:
                    if len(outcome.quarantine_samples) < 20:
                        outcome.quarantine_samples.append(line)
                    if on_quarantine is not None:
                        on_quarantine(line)
            outcome.workers = batches.workers_used
        outcome.moved_from = _move_out(conn, params)
    return outcome


def _move_out(conn: duckdb.DuckDBPyConnection, params: dict) -> set[date]:
    """Remove, from other days, the announcements just filed on `days` (re-dated by DEP, or once
    quarantined under another day); returns those other days. Every announcement filed on `days`
    is now a victim or quarantined there, so the rows just written name them all: the
    whole-history latest-version query need not run a second time."""
    conn.execute(
        "CREATE OR REPLACE TEMP TABLE filed_identities AS "
        "SELECT hashid AS identity FROM dep_victims "
        "WHERE dataset = $dataset AND announcement_date IN (SELECT unnest($days::DATE[])) "
        "UNION SELECT identity FROM dep_quarantine WHERE dataset = $dataset AND day IN (SELECT unnest($days::DATE[]))",
        params,
    )
    moved_from = {
        d
        for (d,) in conn.execute(
            """
            SELECT DISTINCT announcement_date FROM dep_victims
            WHERE dataset = $dataset AND hashid IN (SELECT identity FROM filed_identities)
              AND announcement_date NOT IN (SELECT unnest($days::DATE[]))
            UNION
            SELECT DISTINCT day FROM dep_quarantine
            WHERE dataset = $dataset AND identity IN (SELECT identity FROM filed_identities)
              AND day NOT IN (SELECT unnest($days::DATE[]))
            """,
            params,
        ).fetchall()
    }
    for table, day_column, id_column in (
        ("dep_victims", "announcement_date", "hashid"),
        ("dep_quarantine", "day", "identity"),
    ):
        conn.execute(
            f"DELETE FROM {table} WHERE dataset = $dataset AND {day_column} NOT IN (SELECT unnest($days::DATE[])) "
            f"AND {id_column} IN (SELECT identity FROM filed_identities)",
            params,
        )
    conn.execute("DROP TABLE filed_identities")
    return moved_from


# ---------------------------------------------------------------------------------------------------
# stix_bundles
# ---------------------------------------------------------------------------------------------------

# The victims of the days to map, with the fields the mapping reads (all of them for the Python path,
# fewer for the compiled one: see StixMapper.batch_fields).
_TO_MAP = """
SELECT {fields} FROM dep_victims
WHERE dataset = $dataset AND announcement_date IN (SELECT unnest($days::DATE[]))
ORDER BY announcement_date, hashid
"""


def build_bundles(
    conn: duckdb.DuckDBPyConnection,
    dataset: str,
    days: Iterable[date],
    mapper: StixMapper,
    mapping_version: str,
    *,
    batch_rows: int = BATCH_ROWS,
    workers: int | None = None,
) -> BundlesOutcome:
    """Recompute `stix_bundles` for `days` of `dataset` from `dep_victims`, in one transaction."""
    prestart_workers(workers)
    params = {"dataset": dataset, "days": _in_days(days)}
    outcome = BundlesOutcome()
    with transaction(conn):
        outcome.moved_from = {
            d
            for (d,) in conn.execute(
                """
                SELECT DISTINCT b.day FROM stix_bundles b JOIN dep_victims v
                  ON v.dataset = b.dataset AND v.hashid = b.hashid
                WHERE b.dataset = $dataset AND v.announcement_date IN (SELECT unnest($days::DATE[]))
                  AND b.day NOT IN (SELECT unnest($days::DATE[]))
                """,
                params,
            ).fetchall()
        }
        conn.execute(
            """
            DELETE FROM stix_bundles WHERE dataset = $dataset AND (
                day IN (SELECT unnest($days::DATE[]))
                OR hashid IN (SELECT hashid FROM dep_victims
                              WHERE dataset = $dataset AND announcement_date IN (SELECT unnest($days::DATE[]))))
            """,
            params,
        )
        constants = {"dataset": dataset, "mapping_version": mapping_version, "mapped_at": datetime.now(UTC)}
        with tempfile.TemporaryDirectory(prefix="dep-assets-bundles-", ignore_cleanup_errors=True) as scratch:
            batches = InOrder(
                map_batch,
                (
                    (mapper.options, b)
                    for b in _stream_to_map(conn, params, mapper.batch_fields or VICTIM_MODEL_FIELDS, batch_rows, scratch)
                ),
                workers,
            )
            for result in batches:
                _insert_batch(conn, "stix_bundles", result.bundles, constants)
                outcome.bundles += result.bundle_count
                outcome.skipped += result.skipped
                outcome.objects += result.objects
                outcome.worker_peak_rss_mb = max(outcome.worker_peak_rss_mb, result.peak_rss_mb)
            outcome.workers = batches.workers_used
    return outcome


# ---------------------------------------------------------------------------------------------------
# Reading and writing batches
# ---------------------------------------------------------------------------------------------------


def _stream_filed(conn: duckdb.DuckDBPyConnection, params: dict, batch_rows: int, directory: str) -> Iterator[str]:
    """What is filed on `params["days"]`, with payloads, as batch files (see `_stream`)."""
    with _reader(conn) as reader:
        reader.execute(_FILED_VERSIONS, params)
        per_day = reader.execute("SELECT filed_day, count(*) FROM filed_versions GROUP BY ALL ORDER BY 1").fetchall()
        yield from _stream(reader, _FILED_WINDOW, {}, per_day, batch_rows, directory)


def _stream_to_map(
    conn: duckdb.DuckDBPyConnection, params: dict, fields: Iterable[str], batch_rows: int, directory: str
) -> Iterator[str]:
    """The `dep_victims` rows of `params["days"]`, their `fields`, as batch files (see `_stream`)."""
    with _reader(conn) as reader:
        per_day = reader.execute(
            "SELECT announcement_date, count(*) FROM dep_victims "
            "WHERE dataset = $dataset AND announcement_date IN (SELECT unnest($days::DATE[])) GROUP BY ALL ORDER BY 1",
            params,
        ).fetchall()
        query = _TO_MAP.format(fields=", ".join(fields))
        yield from _stream(reader, query, params, per_day, batch_rows, directory)


@contextmanager
def _reader(conn: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """A second connection to `conn`'s database, for reading while `conn` writes.

    DuckDB allows one open result per connection, and `conn` writes between batches. This one sees
    what is committed, which is what is read (the raw archive, or the victims committed before the
    bundles are built). Its temp tables go with it.
    """
    reader = conn.cursor()
    try:
        ((catalog,),) = conn.execute("SELECT current_database()").fetchall()
        reader.execute(f'USE "{catalog}"')
        yield reader
    finally:
        reader.close()


def _stream(
    reader: duckdb.DuckDBPyConnection,
    query: str,
    params: dict,
    per_day: list[tuple[date, int]],
    batch_rows: int,
    directory: str,
) -> Iterator[str]:
    """The rows of `query` (which reads the days of `$days`), `batch_rows` at a time, as Arrow IPC
    batch files in `directory`: one window of days (`per_day`: rows per day, in day order) at a time."""
    number = 0
    for window in _day_windows(per_day, WINDOW_ROWS):
        # `sql(...)`, not `execute(...)`: the latter copies the rows once more on the way to Arrow.
        for batch in reader.sql(query, params={**params, "days": window}).to_arrow_reader(batch_rows):
            if batch.num_rows:
                yield put_batch(batch, f"{directory}/{number:06d}.arrow")
                number += 1


def _day_windows(per_day: list[tuple[date, int]], rows: int) -> Iterator[list[date]]:
    """Consecutive days, grouped into windows of at most `rows` rows (a bigger day alone)."""
    window: list[date] = []
    size = 0
    for day, count in per_day:
        if window and size + count > rows:
            yield window
            window, size = [], 0
        window.append(day)
        size += count
    if window:
        yield window


def _insert_batch(
    conn: duckdb.DuckDBPyConnection, table: str, path: str, constants: dict[str, object] | None = None
) -> None:
    """Append the rows of a batch file (taken); `constants` fill the columns every row shares."""
    rows = take_batch(path)
    if rows.num_rows == 0:
        return
    for name, value in (constants or {}).items():
        rows = rows.append_column(name, pa.array([value] * rows.num_rows))
    names = ", ".join(rows.column_names)
    # Through a relation, not `conn.register()`: inside an open transaction a registered object stays
    # referenced until the transaction ends, even after `unregister()` (duckdb-python issue 469), so a
    # whole-history run would keep every batch (all the bundles' text, once more) until COMMIT.
    conn.from_arrow(rows).query("incoming_rows", f"INSERT INTO {table} ({names}) SELECT {names} FROM incoming_rows")
