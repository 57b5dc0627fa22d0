"""Derived tables, computed from the raw archive alone: `dep_victims`, `dep_quarantine`, `stix_bundles`.

No DEP call happens here, so history can be replayed and re-mapped at will.

Identity of an announcement: (dataset, hashid key); a record without a usable hashid is identified by
its payload's SHA-256. Its *latest version* is the one from the most recent fetch that returned it,
and it is filed under that version's own date (or, when the date is unreadable, the day of that
fetch). So each announcement sits on exactly one day, and moves when DEP re-dates it.

How the work is split: DuckDB (reads, deletes, inserts, one transaction) stays in the calling
process; the per-record Python (JSON parsing, normalization, STIX mapping) runs on batches of a few
thousand rows, in a pool of worker processes when there is more than one batch. Batches travel as
Arrow IPC and come back in order, with a bounded number in flight: memory depends on the batch size,
not on the length of history, and the output is the same, row for row, whatever the worker count.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime
from operator import attrgetter

import duckdb
import pyarrow as pa

from dep_assets.archive.sql import transaction
from dep_assets.normalize import Victim, normalize_record
from dep_assets.stix_mapping import MappingOptions, StixMapper, incident_id, report_id

# Rows per unit of work: small enough to balance two workers and bound memory (a bundle is ~4 KB of
# JSON), large enough that DuckDB and Arrow overheads stay small (measured by `make bench`).
BATCH_ROWS = 2_500

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

VICTIM_COLUMNS = (
    "dataset", "hashid", "announcement_date", "victim", "victim_normalized", "victim_is_placeholder",
    "victim_domain", "victim_domain_given", "site", "sector", "sector_given", "actor", "actor_given",
    "country", "country_given", "victim_country_code", "victim_city", "victim_state", "victim_address",
    "revenue", "amount", "naics", "data_types", "leak_link", "title", "description", "first_seen",
    "last_seen", "versions_seen", "fetch_id", "position", "payload_sha256", "extra_fields", "invalid_fields",
)  # fmt: skip
_VICTIM_MODEL_FIELDS = tuple(c for c in VICTIM_COLUMNS if c not in ("position", "payload_sha256"))
# Victim fields holding tuples (data_types, extra_fields, invalid_fields): lists in DuckDB.
_TUPLE_FIELDS = frozenset(f.name for f in fields(Victim) if str(f.type).startswith("tuple"))
# Victim(*values) is several times cheaper than Victim(**values); used only while the model's fields
# start with exactly these, in this order (checked here, once).
_VICTIM_POSITIONAL = [f.name for f in fields(Victim)][: len(_VICTIM_MODEL_FIELDS)] == list(_VICTIM_MODEL_FIELDS)
QUARANTINE_COLUMNS = (
    "dataset", "day", "identity", "hashid", "reason", "reason_code", "fetch_id", "position", "payload_sha256",
)  # fmt: skip



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


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def own_peak_rss_mb() -> float:
    """This process's own high-water RSS (VmHWM), 0 where /proc is not available. Unlike ru_maxrss it
    does not include what a spawned worker briefly shared with its parent before exec."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _in_days(days: Iterable[date]) -> list[date]:
    return sorted(set(days))


# ---------------------------------------------------------------------------------------------------
# dep_victims and dep_quarantine
# ---------------------------------------------------------------------------------------------------


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
    params = {"dataset": dataset, "days": _in_days(days)}
    outcome = VictimsOutcome()
    with transaction(conn):
        # What is filed on these days, with its payload, numbered for batching.
        conn.execute(
            "CREATE OR REPLACE TEMP TABLE filed AS "
            "SELECT l.*, p.payload, row_number() OVER (ORDER BY l.filed_day, l.identity) AS seq "
            f"FROM ({_LATEST_VERSIONS}) l JOIN raw_payloads p USING (payload_sha256) "
            "WHERE l.filed_day IN (SELECT unnest($days::DATE[]))",
            params,
        )
        outcome.moved_from = {
            d
            for (d,) in conn.execute(
                """
                SELECT DISTINCT announcement_date FROM dep_victims
                WHERE dataset = $dataset AND hashid IN (SELECT identity FROM filed)
                  AND announcement_date NOT IN (SELECT unnest($days::DATE[]))
                UNION
                SELECT DISTINCT day FROM dep_quarantine
                WHERE dataset = $dataset AND identity IN (SELECT identity FROM filed)
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
                f"DELETE FROM {table} WHERE dataset = $dataset AND ("
                f"{day_column} IN (SELECT unnest($days::DATE[])) OR {id_column} IN (SELECT identity FROM filed))",
                params,
            )
        batches = _batches(conn, "filed", batch_rows)
        outcome.workers = _pool_size(conn, "filed", batch_rows, workers)
        for result in _in_order(normalize_batch, ((dataset, b) for b in batches), outcome.workers):
            _insert_ipc(conn, "dep_victims", result.victims)
            _insert_ipc(conn, "dep_quarantine", result.quarantine)
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
        conn.execute("DROP TABLE filed")
    return outcome


@dataclass
class NormalizedBatch:
    victims: bytes  # Arrow IPC stream of dep_victims rows
    quarantine: bytes  # Arrow IPC stream of dep_quarantine rows
    victim_count: int
    placeholders: int
    reasons: dict[str, int]
    quarantine_lines: list[str]  # "partition, record, reason", one per quarantined record
    peak_rss_mb: float  # of the process that ran it


def normalize_batch(dataset: str, batch: bytes) -> NormalizedBatch:
    """Normalize one batch of `filed` rows (Arrow IPC): pure Python, runs in a worker process."""
    rows = _columns(_read_ipc(batch))
    victims: list[Victim] = []
    kept: list[int] = []  # each victim's row in the batch
    quarantine: dict[str, list] = {name: [] for name in QUARANTINE_COLUMNS}
    reasons: dict[str, int] = {}
    lines: list[str] = []
    placeholders = 0
    for index, (payload, first_seen, last_seen, versions_seen, fetch_id) in enumerate(
        zip(rows["payload"], rows["first_seen"], rows["last_seen"], rows["versions_seen"], rows["fetch_id"], strict=True)
    ):
        result = normalize_record(
            json.loads(payload),
            dataset=dataset,
            first_seen=first_seen,
            last_seen=last_seen,
            versions_seen=versions_seen,
            fetch_id=fetch_id,
        )
        if isinstance(result, Victim):
            victims.append(result)
            kept.append(index)
            placeholders += result.victim_is_placeholder
            continue
        values = {
            "dataset": dataset,
            "day": rows["filed_day"][index],
            "identity": rows["identity"][index],
            "hashid": rows["hashid_key"][index],
            "reason": result.reason,
            "reason_code": result.code,
            "fetch_id": rows["fetch_id"][index],
            "position": rows["position"][index],
            "payload_sha256": rows["payload_sha256"][index],
        }
        for name, value in values.items():
            quarantine[name].append(value)
        reasons[result.code] = reasons.get(result.code, 0) + 1
        lines.append(
            f"partition {dataset}|{values['day']}, record fetch {values['fetch_id']} position "
            f"{values['position']} (hashid {values['hashid']!r}): {result.reason}"
        )
    return NormalizedBatch(
        victims=_write_ipc(_victim_columns(victims, kept, rows)),
        quarantine=_write_ipc(quarantine),
        victim_count=len(victims),
        placeholders=placeholders,
        reasons=reasons,
        quarantine_lines=lines,
        peak_rss_mb=own_peak_rss_mb(),
    )


def _victim_columns(victims: list[Victim], kept: list[int], rows: dict[str, list]) -> dict[str, list]:
    """The `dep_victims` rows of `victims`, by column; position and payload_sha256 come from the batch."""
    columns: dict[str, list] = {}
    for name in VICTIM_COLUMNS:
        if name in ("position", "payload_sha256"):
            source = rows[name]
            columns[name] = [source[i] for i in kept]
        elif name in _TUPLE_FIELDS:
            columns[name] = [list(v) for v in map(attrgetter(name), victims)]
        else:
            columns[name] = list(map(attrgetter(name), victims))
    return columns


# ---------------------------------------------------------------------------------------------------
# stix_bundles
# ---------------------------------------------------------------------------------------------------


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
        conn.execute(
            f"CREATE OR REPLACE TEMP TABLE to_map AS SELECT {', '.join(_VICTIM_MODEL_FIELDS)}, "
            "row_number() OVER (ORDER BY announcement_date, hashid) AS seq FROM dep_victims "
            "WHERE dataset = $dataset AND announcement_date IN (SELECT unnest($days::DATE[]))",
            params,
        )
        constants = {"dataset": dataset, "mapping_version": mapping_version, "mapped_at": datetime.now(UTC)}
        tasks = ((mapper.options, b) for b in _batches(conn, "to_map", batch_rows))
        outcome.workers = _pool_size(conn, "to_map", batch_rows, workers)
        for result in _in_order(map_batch, tasks, outcome.workers):
            _insert_ipc(conn, "stix_bundles", result.bundles, constants)
            outcome.bundles += result.bundle_count
            outcome.skipped += result.skipped
            outcome.objects += result.objects
            outcome.worker_peak_rss_mb = max(outcome.worker_peak_rss_mb, result.peak_rss_mb)
        conn.execute("DROP TABLE to_map")
    return outcome


@dataclass
class MappedBatch:
    bundles: bytes  # Arrow IPC stream of stix_bundles rows (without the run's constant columns)
    bundle_count: int
    skipped: int
    objects: int
    peak_rss_mb: float  # of the process that ran it


_MAPPERS: dict[MappingOptions, StixMapper] = {}


def map_batch(options: MappingOptions, batch: bytes) -> MappedBatch:
    """Map one batch of `to_map` rows (Arrow IPC) to bundles: pure Python, runs in a worker process."""
    mapper = _MAPPERS.get(options) or _MAPPERS.setdefault(options, StixMapper(options))
    primary_id = report_id if options.primary_object == "report" else incident_id
    columns: dict[str, list] = {name: [] for name in ("day", "hashid", "bundle_id", "primary_id", "bundle", "object_count", "sha256")}
    skipped = 0
    for victim in _victims_from_columns(_columns(_read_ipc(batch))):
        text = mapper.map_json(victim)
        if text is None:
            skipped += 1
            continue
        columns["day"].append(victim.announcement_date)
        columns["hashid"].append(victim.hashid)
        columns["bundle_id"].append(_bundle_id(text))
        columns["primary_id"].append(primary_id(victim.hashid))
        columns["bundle"].append(text)
        columns["object_count"].append(_object_count(text))
        columns["sha256"].append(hashlib.sha256(text.encode("utf-8")).hexdigest())
    return MappedBatch(
        bundles=_write_ipc(columns),
        bundle_count=len(columns["bundle"]),
        skipped=skipped,
        objects=sum(columns["object_count"]),
        peak_rss_mb=own_peak_rss_mb(),
    )


def _victims_from_columns(rows: dict[str, list]) -> Iterator[Victim]:
    """The Victims of a batch of `dep_victims` rows given by column."""
    columns = []
    for name in _VICTIM_MODEL_FIELDS:
        values = rows[name]
        if name in _TUPLE_FIELDS:
            values = [tuple(v or ()) for v in values]
        columns.append(values)
    if _VICTIM_POSITIONAL:
        for values in zip(*columns, strict=True):
            yield Victim(*values)
    else:
        for values in zip(*columns, strict=True):
            yield Victim(**dict(zip(_VICTIM_MODEL_FIELDS, values, strict=True)))


# The mapper serializes with sorted keys and escapes every quote inside strings, so the bundle starts
# with its id and `"spec_version":"2.1"` occurs exactly once per object: no need to parse it again.
_BUNDLE_PREFIX = '{"id":"'


def _bundle_id(text: str) -> str:
    assert text.startswith(_BUNDLE_PREFIX), text[:40]
    return text[len(_BUNDLE_PREFIX) : text.index('"', len(_BUNDLE_PREFIX))]


def _object_count(text: str) -> int:
    return text.count('"spec_version":"2.1"')


# ---------------------------------------------------------------------------------------------------
# Batches, workers, Arrow
# ---------------------------------------------------------------------------------------------------


def _batches(conn: duckdb.DuckDBPyConnection, table: str, batch_rows: int) -> Iterator[bytes]:
    """Rows of a temp table numbered by `seq`, a batch at a time, as Arrow IPC (without `seq`). Each
    batch is read whole before the caller writes on the same connection (DuckDB allows one open
    result per connection)."""
    start = 1
    while True:
        # `sql(...).to_arrow_table()`, not `execute(...)`: the latter copies the rows once more.
        batch = conn.sql(
            f"SELECT * EXCLUDE (seq) FROM {table} WHERE seq BETWEEN ? AND ? ORDER BY seq",
            params=[start, start + batch_rows - 1],
        ).to_arrow_table()
        if batch.num_rows == 0:
            return
        yield _table_ipc(batch)
        start += batch_rows


def _pool_size(conn: duckdb.DuckDBPyConnection, table: str, batch_rows: int, workers: int | None) -> int:
    """Worker processes worth starting: none (work inline) for a single batch, as in a daily run."""
    rows = conn.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
    wanted = default_workers() if workers is None else workers
    return wanted if rows > batch_rows and wanted > 1 else 0


def _in_order(fn: Callable, tasks: Iterator[tuple], workers: int) -> Iterator:
    """`fn(*task)` for every task, results in task order; in `workers` processes when > 0.

    At most two tasks per worker are in flight, so memory stays bounded whatever the number of tasks.
    `spawn`, not `fork`: the calling process has DuckDB threads running. As always with `spawn`, a
    script that calls this needs the `if __name__ == "__main__":` guard (Dagster's processes have it).
    """
    if workers <= 0:
        for task in tasks:
            yield fn(*task)
        return
    with ProcessPoolExecutor(
        max_workers=workers, mp_context=multiprocessing.get_context("spawn"), initializer=_start_worker
    ) as pool:
        pending: deque = deque()
        for task in tasks:
            pending.append(pool.submit(fn, *task))
            if len(pending) > 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _start_worker() -> None:
    # Arrow's default allocator keeps freed memory for reuse; a worker handles one batch at a time,
    # so giving it back to the system keeps each worker's footprint at about one batch.
    pa.set_memory_pool(pa.system_memory_pool())


def _columns(table: pa.Table) -> dict[str, list]:
    return {name: _python_values(table.column(name)) for name in table.column_names}


def _python_values(column: pa.ChunkedArray) -> list:
    """`column.to_pylist()`. Dates and timestamps (few distinct values, and converting each one costs)
    are converted once per distinct value: the same objects, much faster."""
    if not (pa.types.is_timestamp(column.type) or pa.types.is_date(column.type)):
        return column.to_pylist()
    encoded = column.combine_chunks().dictionary_encode()
    distinct = encoded.dictionary.to_pylist()
    return [None if i is None else distinct[i] for i in encoded.indices.to_pylist()]


def _table_ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def _write_ipc(columns: dict[str, list]) -> bytes:
    return _table_ipc(pa.table(columns))


def _read_ipc(data: bytes) -> pa.Table:
    return pa.ipc.open_stream(data).read_all()


def _insert_ipc(
    conn: duckdb.DuckDBPyConnection, table: str, data: bytes, constants: dict[str, object] | None = None
) -> None:
    """Append the rows of an Arrow IPC stream; `constants` fill the columns every row shares."""
    rows = _read_ipc(data)
    if rows.num_rows == 0:
        return
    for name, value in (constants or {}).items():
        rows = rows.append_column(name, pa.array([value] * rows.num_rows))
    names = ", ".join(rows.column_names)
    # Through a relation, not `conn.register()`: inside an open transaction a registered object stays
    # referenced until the transaction ends, even after `unregister()` (duckdb-python issue 469), so a
    # whole-history run would keep every batch (all the bundles' text, once more) until COMMIT.
    conn.from_arrow(rows).query("incoming_rows", f"INSERT INTO {table} ({names}) SELECT {names} FROM incoming_rows")
