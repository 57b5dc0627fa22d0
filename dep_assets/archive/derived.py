"""Derived tables, computed from the raw archive alone: `dep_victims`, `dep_quarantine`, `stix_bundles`.

No DEP call happens here, so history can be replayed and re-mapped at will. Work is streamed in
batches, so memory depends on the batch size, not on the length of history.

Identity of an announcement: (dataset, hashid key); a record without a usable hashid is identified by
its payload's SHA-256. Its *latest version* is the one from the most recent fetch that returned it,
and it is filed under that version's own date (or, when the date is unreadable, the day of that
fetch). So each announcement sits on exactly one day, and moves when DEP re-dates it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime
from operator import attrgetter

import duckdb
import pyarrow as pa

from dep_assets.normalize import Quarantined, Victim, normalize_record
from dep_assets.stix_mapping import StixMapper, incident_id, report_id

BATCH_ROWS = 20_000
# A bundle is ~4 KB of JSON, held three times while its batch is written (Python str, Arrow, DuckDB's
# append buffer): smaller batches keep that near 60 MB, at no cost in speed (measured by `make bench`).
BUNDLE_BATCH_ROWS = 5_000

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


def _in_days(days: Iterable[date]) -> list[date]:
    return sorted(set(days))


def build_victims(
    conn: duckdb.DuckDBPyConnection,
    dataset: str,
    days: Iterable[date],
    *,
    batch_rows: int = BATCH_ROWS,
    on_quarantine: Callable[[str], None] | None = None,
) -> VictimsOutcome:
    """Recompute `dep_victims` and `dep_quarantine` for `days` of `dataset`, in one transaction."""
    day_list = _in_days(days)
    outcome = VictimsOutcome()
    conn.execute("BEGIN TRANSACTION")
    try:
        conn.execute(
            f"CREATE OR REPLACE TEMP TABLE filed AS SELECT *, row_number() OVER (ORDER BY filed_day, identity) AS seq "
            f"FROM ({_LATEST_VERSIONS}) WHERE filed_day IN (SELECT unnest($days::DATE[]))",
            {"dataset": dataset, "days": day_list},
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
                {"dataset": dataset, "days": day_list},
            ).fetchall()
        }
        for table, day_column, id_column in (
            ("dep_victims", "announcement_date", "hashid"),
            ("dep_quarantine", "day", "identity"),
        ):
            conn.execute(
                f"DELETE FROM {table} WHERE dataset = $dataset AND ("
                f"{day_column} IN (SELECT unnest($days::DATE[])) OR {id_column} IN (SELECT identity FROM filed))",
                {"dataset": dataset, "days": day_list},
            )

        batches = _batches(
            conn, "SELECT f.*, p.payload FROM filed f JOIN raw_payloads p USING (payload_sha256)", "f.seq", batch_rows
        )
        for batch in batches:
            victims: list[Victim] = []
            kept: list[int] = []  # each victim's row in the batch
            quarantined = []
            for index, (payload, first_seen, last_seen, versions_seen, fetch_id) in enumerate(
                zip(
                    batch["payload"], batch["first_seen"], batch["last_seen"], batch["versions_seen"],
                    batch["fetch_id"], strict=True,
                )  # fmt: skip
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
                    outcome.placeholders += result.victim_is_placeholder
                else:
                    row = {name: values[index] for name, values in batch.items()}
                    quarantined.append(_quarantine_row(result, row, dataset))
                    code = result.code
                    outcome.reasons[code] = outcome.reasons.get(code, 0) + 1
                    line = (
                        f"partition {dataset}|{row['filed_day']}, record fetch {row['fetch_id']} position "
                        f"{row['position']} (hashid {row['hashid_key']!r}): {result.reason}"
                    )
                    if len(outcome.quarantine_samples) < 20:
                        outcome.quarantine_samples.append(line)
                    if on_quarantine is not None:
                        on_quarantine(line)
            _insert_columns(conn, "dep_victims", _victim_columns(victims, kept, batch))
            _insert(conn, "dep_quarantine", QUARANTINE_COLUMNS, quarantined)
            outcome.victims += len(victims)
            outcome.quarantined += len(quarantined)
        conn.execute("DROP TABLE filed")
        conn.execute("COMMIT")
    except Exception:
        conn.execute("ROLLBACK")
        raise
    return outcome


def _batches(conn: duckdb.DuckDBPyConnection, select: str, seq: str, batch_rows: int) -> Iterator[dict[str, list]]:
    """Rows of a temp table numbered by `seq`, a batch at a time, as Python lists by column name, each
    batch fully read before the caller writes on the same connection (DuckDB allows one open result
    per connection)."""
    start = 1
    while True:
        # `sql(...).to_arrow_table()`, not `execute(...).to_arrow_table()`: the latter copies the rows once more.
        table = conn.sql(f"{select} WHERE {seq} BETWEEN ? AND ? ORDER BY {seq}", params=[start, start + batch_rows - 1]).to_arrow_table()
        if table.num_rows == 0:
            return
        yield {name: _python_values(table.column(name)) for name in table.column_names}
        start += batch_rows


def _python_values(column: pa.ChunkedArray) -> list:
    """`column.to_pylist()`. Dates and timestamps (first_seen, last_seen, days: few distinct values, and
    converting each one costs) are converted once per distinct value: the same objects, much faster."""
    if not (pa.types.is_timestamp(column.type) or pa.types.is_date(column.type)):
        return column.to_pylist()
    encoded = column.combine_chunks().dictionary_encode()
    distinct = encoded.dictionary.to_pylist()
    return [None if i is None else distinct[i] for i in encoded.indices.to_pylist()]


def _victim_columns(victims: list[Victim], kept: list[int], batch: dict[str, list]) -> dict[str, list]:
    """The `dep_victims` rows of `victims`, by column; position and payload_sha256 come from the batch."""
    columns: dict[str, list] = {}
    for name in VICTIM_COLUMNS:
        if name in ("position", "payload_sha256"):
            source = batch[name]
            columns[name] = [source[i] for i in kept]
        elif name in _TUPLE_FIELDS:
            columns[name] = [list(v) for v in map(attrgetter(name), victims)]
        else:
            columns[name] = list(map(attrgetter(name), victims))
    return columns


def _quarantine_row(result: Quarantined, row: dict, dataset: str) -> tuple:
    return (
        dataset,
        row["filed_day"],
        row["identity"],
        row["hashid_key"],
        result.reason,
        result.code,
        row["fetch_id"],
        row["position"],
        row["payload_sha256"],
    )


def _insert(conn: duckdb.DuckDBPyConnection, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
    if not rows:
        return
    arrays = list(zip(*rows, strict=True))
    _insert_columns(conn, table, {name: list(values) for name, values in zip(columns, arrays, strict=True)})


def _insert_columns(conn: duckdb.DuckDBPyConnection, table: str, columns: dict[str, list]) -> None:
    """Append rows given as equal-length lists by column name."""
    if not columns or not next(iter(columns.values())):
        return
    # Through a relation, not `conn.register()`: inside an open transaction a registered object stays
    # referenced until the transaction ends, even after `unregister()` (duckdb-python issue 469), so a
    # whole-history run kept every batch's Arrow copy (all the bundles' text, once more) until COMMIT.
    names = ", ".join(columns)
    conn.from_arrow(pa.table(columns)).query(
        "incoming_rows", f"INSERT INTO {table} ({names}) SELECT {names} FROM incoming_rows"
    )


# ---------------------------------------------------------------------------------------------------
# STIX bundles
# ---------------------------------------------------------------------------------------------------

@dataclass
class BundlesOutcome:
    bundles: int = 0
    skipped: int = 0  # placeholders skipped by DEP_SKIP_EMPTY_VICTIM
    objects: int = 0
    moved_from: set[date] = field(default_factory=set)


def _victims_from_columns(batch: dict[str, list]) -> Iterator[Victim]:
    """`victims_from_rows` for a batch by column: the same Victims."""
    columns = []
    for name in _VICTIM_MODEL_FIELDS:
        values = batch[name]
        if name in _TUPLE_FIELDS:
            values = [tuple(v or ()) for v in values]
        columns.append(values)
    if _VICTIM_POSITIONAL:
        for values in zip(*columns, strict=True):
            yield Victim(*values)
    else:
        for values in zip(*columns, strict=True):
            yield Victim(**dict(zip(_VICTIM_MODEL_FIELDS, values, strict=True)))


def victims_from_rows(rows: list[dict]) -> Iterator[Victim]:
    for row in rows:
        values = {name: row[name] for name in _VICTIM_MODEL_FIELDS}
        values["data_types"] = tuple(values["data_types"] or ())
        values["extra_fields"] = tuple(values["extra_fields"] or ())
        values["invalid_fields"] = tuple(values["invalid_fields"] or ())
        yield Victim(**values)


def build_bundles(
    conn: duckdb.DuckDBPyConnection,
    dataset: str,
    days: Iterable[date],
    mapper: StixMapper,
    mapping_version: str,
    *,
    batch_rows: int = BUNDLE_BATCH_ROWS,
) -> BundlesOutcome:
    """Recompute `stix_bundles` for `days` of `dataset` from `dep_victims`, in one transaction."""
    day_list = _in_days(days)
    outcome = BundlesOutcome()
    params = {"dataset": dataset, "days": day_list}
    conn.execute("BEGIN TRANSACTION")
    try:
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
        batches = _batches(conn, "SELECT * FROM to_map", "seq", batch_rows)
        primary_id = report_id if mapper.options.primary_object == "report" else incident_id
        mapped_at = datetime.now(UTC)
        for batch in batches:
            days, hashids, bundle_ids, primary_ids, texts, object_counts, digests = [], [], [], [], [], [], []
            for victim in _victims_from_columns(batch):
                text = mapper.map_json(victim)
                if text is None:
                    outcome.skipped += 1
                    continue
                days.append(victim.announcement_date)
                hashids.append(victim.hashid)
                bundle_ids.append(_bundle_id(text))
                primary_ids.append(primary_id(victim.hashid))
                texts.append(text)
                object_counts.append(_object_count(text))
                digests.append(hashlib.sha256(text.encode("utf-8")).hexdigest())
            count = len(texts)
            columns = dict(
                zip(
                    BUNDLE_COLUMNS,
                    (
                        [dataset] * count, days, hashids, bundle_ids, primary_ids, texts, object_counts, digests,
                        [mapping_version] * count, [mapped_at] * count,
                    ),  # fmt: skip
                    strict=True,
                )
            )
            del texts  # the batch's text lives in `columns` until inserted, then goes
            _insert_columns(conn, "stix_bundles", columns)
            del columns
            outcome.bundles += count
            outcome.objects += sum(object_counts)
        conn.execute("DROP TABLE to_map")
        conn.execute("COMMIT")
    except Exception:
        conn.execute("ROLLBACK")
        raise
    return outcome


BUNDLE_COLUMNS = (
    "dataset", "day", "hashid", "bundle_id", "primary_id", "bundle", "object_count", "sha256",
    "mapping_version", "mapped_at",
)  # fmt: skip


# The mapper serializes with sorted keys and escapes every quote inside strings, so the bundle starts
# with its id and `"spec_version":"2.1"` occurs exactly once per object: no need to parse it again.
_BUNDLE_PREFIX = '{"id":"'


def _bundle_id(text: str) -> str:
    assert text.startswith(_BUNDLE_PREFIX), text[:40]
    return text[len(_BUNDLE_PREFIX) : text.index('"', len(_BUNDLE_PREFIX))]


def _object_count(text: str) -> int:
    return text.count('"spec_version":"2.1"')
