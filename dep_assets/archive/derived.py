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
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import duckdb
import pyarrow as pa

from dep_assets.normalize import Quarantined, Victim, normalize_record
from dep_assets.stix_mapping import StixMapper, incident_id, report_id

BATCH_ROWS = 20_000

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
        for rows in batches:
            victims, quarantined = [], []
            for row in rows:
                result = normalize_record(
                    json.loads(row["payload"]),
                    dataset=dataset,
                    first_seen=row["first_seen"],
                    last_seen=row["last_seen"],
                    versions_seen=row["versions_seen"],
                    fetch_id=row["fetch_id"],
                )
                if isinstance(result, Victim):
                    victims.append(_victim_row(result, row))
                    outcome.placeholders += result.victim_is_placeholder
                else:
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
            _insert(conn, "dep_victims", VICTIM_COLUMNS, victims)
            _insert(conn, "dep_quarantine", QUARANTINE_COLUMNS, quarantined)
            outcome.victims += len(victims)
            outcome.quarantined += len(quarantined)
        conn.execute("DROP TABLE filed")
        conn.execute("COMMIT")
    except Exception:
        conn.execute("ROLLBACK")
        raise
    return outcome


def _batches(conn: duckdb.DuckDBPyConnection, select: str, seq: str, batch_rows: int) -> Iterator[list[dict]]:
    """Rows of a temp table numbered by `seq`, a batch at a time, each batch fully read before the
    caller writes on the same connection (DuckDB allows one open result per connection)."""
    start = 1
    while True:
        rows = conn.execute(f"{select} WHERE {seq} BETWEEN ? AND ? ORDER BY {seq}", [start, start + batch_rows - 1]).to_arrow_table()
        if rows.num_rows == 0:
            return
        yield rows.to_pylist()
        start += batch_rows


def _victim_row(victim: Victim, row: dict) -> tuple:
    values = [getattr(victim, name) for name in _VICTIM_MODEL_FIELDS]
    values = [list(v) if isinstance(v, tuple) else v for v in values]
    index = VICTIM_COLUMNS.index("position")
    values[index:index] = [row["position"], row["payload_sha256"]]
    return tuple(values)


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
    frame = pa.table({name: list(values) for name, values in zip(columns, arrays, strict=True)})
    conn.register("incoming_rows", frame)
    try:
        conn.execute(f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(columns)} FROM incoming_rows")
    finally:
        conn.unregister("incoming_rows")


# ---------------------------------------------------------------------------------------------------
# STIX bundles
# ---------------------------------------------------------------------------------------------------

@dataclass
class BundlesOutcome:
    bundles: int = 0
    skipped: int = 0  # placeholders skipped by DEP_SKIP_EMPTY_VICTIM
    objects: int = 0
    moved_from: set[date] = field(default_factory=set)


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
    batch_rows: int = BATCH_ROWS,
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
        for rows in batches:
            out = []
            for victim in victims_from_rows(rows):
                text = mapper.map_json(victim)
                if text is None:
                    outcome.skipped += 1
                    continue
                object_count = _object_count(text)
                out.append(
                    (
                        dataset,
                        victim.announcement_date,
                        victim.hashid,
                        _bundle_id(text),
                        primary_id(victim.hashid),
                        text,
                        object_count,
                        hashlib.sha256(text.encode("utf-8")).hexdigest(),
                        mapping_version,
                        mapped_at,
                    )
                )
                outcome.objects += object_count
            _insert(conn, "stix_bundles", BUNDLE_COLUMNS, out)
            outcome.bundles += len(out)
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
