"""The DuckDB archive file: safe connections for several processes, and the append-only raw writes.

DuckDB lets one process hold a file read-write and then refuses every other process, even read-only.
So:
- every writer of ours first takes an exclusive `flock` on `<archive>.lock`: our own runs queue up
  instead of failing, whatever Dagster's concurrency settings are;
- it then opens DuckDB, retrying while someone else (an analyst's shell on the archive itself) holds
  the file, up to `lock_timeout` seconds, and says who holds it if that runs out;
- writes are short: fetch first, then connect, write one transaction, close;
- after a run's writes, `publish_snapshot()` atomically replaces `<archive>.snapshot.duckdb`, a copy
  that analysts query and that no writer ever opens, so an open analyst session blocks nothing.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd

from dep_assets.archive.schema import migrate
from dep_assets.archive.sql import transaction
from dep_assets.dep_client.client import DepResponse
from dep_assets.normalize.keys import hashid_key, record_day, without_surrogates
from dep_assets.settings import DEFAULT_ARCHIVE_MEMORY_LIMIT

# Rows per row group in what we write. Below DuckDB's default (122,880), a replay's big inserts fill
# row groups while they run, and DuckDB writes each full one to the file, compressed, right away
# ("optimistic writes"): the commit then logs a few KB instead of hundreds of MB of bundle JSON to
# the WAL, and no checkpoint has to compress it all again later (`make bench`: a third less time).
ROW_GROUP_SIZE = 16_384


def _connect(path: Path) -> duckdb.DuckDBPyConnection:
    """A read-write connection to the archive file, the default catalog for every statement.

    Through ATTACH, the only way to set the row group size; DuckDB then runs an in-memory database
    beside it, so the spill directory is set to what a plain `duckdb.connect(path)` would use."""
    conn = duckdb.connect()
    try:
        conn.execute(f"SET temp_directory = '{_sql_text(str(path))}.tmp'")
        conn.execute(f"ATTACH '{_sql_text(str(path))}' AS archive (ROW_GROUP_SIZE {ROW_GROUP_SIZE})")
        conn.execute("USE archive")
    except BaseException:
        conn.close()
        raise
    return conn


def _sql_text(value: str) -> str:
    return value.replace("'", "''")


class ArchiveLockedError(RuntimeError):
    """The archive stayed locked by another process for longer than the lock timeout."""


class Archive:
    def __init__(
        self,
        path: Path,
        *,
        lock_timeout: float = 600.0,
        memory_limit: str | None = DEFAULT_ARCHIVE_MEMORY_LIMIT,
        snapshot_path: Path | None = None,
    ) -> None:
        self.path = Path(path)
        self.lock_timeout = lock_timeout
        # DuckDB's memory cap (see DEFAULT_ARCHIVE_MEMORY_LIMIT); None leaves DuckDB's own default.
        self.memory_limit = memory_limit
        self.snapshot_path = snapshot_path or self.path.with_name(self.path.stem + ".snapshot.duckdb")
        self.lock_path = self.path.with_name(self.path.name + ".lock")

    def __repr__(self) -> str:
        return f"Archive({str(self.path)!r})"

    @contextmanager
    def _process_lock(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + self.lock_timeout
        with open(self.lock_path, "a+") as handle:
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise ArchiveLockedError(
                            f"another dep-assets writer kept {self.path} for over {self.lock_timeout:.0f}s "
                            "(DEP_ARCHIVE_LOCK_TIMEOUT)"
                        ) from None
                    time.sleep(0.1)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _open(self, deadline: float) -> duckdb.DuckDBPyConnection:
        delay = 0.05
        while True:
            try:
                return _connect(self.path)
            except duckdb.IOException as error:
                if "lock" not in str(error).lower():
                    raise
                if time.monotonic() >= deadline:
                    raise ArchiveLockedError(
                        f"{self.path} stayed locked for over {self.lock_timeout:.0f}s by another process "
                        f"(DEP_ARCHIVE_LOCK_TIMEOUT). Analysts should query {self.snapshot_path.name}, "
                        f"not the archive itself. DuckDB said: {error}"
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 1.0)

    @contextmanager
    def writer(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """An exclusive read-write connection with the schema migrated; closed on exit."""
        with self._process_lock():
            conn = self._open(time.monotonic() + self.lock_timeout)
            try:
                if self.memory_limit:
                    conn.execute(f"SET memory_limit = '{self.memory_limit}'")
                migrate(conn)
                yield conn
            finally:
                conn.close()

    def publish_snapshot(self) -> Path:
        """Replace the analysts' read-only copy with the archive as it is now (atomic rename)."""
        with self._process_lock():
            if not self.path.exists():
                raise FileNotFoundError(f"no archive at {self.path} yet")
            temporary = self.snapshot_path.with_name(f".{self.snapshot_path.name}.{os.getpid()}.tmp")
            shutil.copyfile(self.path, temporary)
            os.replace(temporary, self.snapshot_path)
        return self.snapshot_path


@dataclass(frozen=True)
class ArchivedFetch:
    fetch_id: int
    records: int
    new_payloads: int
    new_hashids: int
    known_hashids: int
    records_without_hashid: int
    body_bytes: int
    body_sha256: str
    duration_ms: float


def found_text(record: object, field: str) -> str | None:
    """A field as found: the string itself, JSON text for any other value, NULL when absent."""
    if not isinstance(record, dict) or field not in record:
        return None
    value = record[field]
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return without_surrogates(text)  # a JSON escape like "\ud800" decodes to text DuckDB cannot store


def archive_response(conn: duckdb.DuckDBPyConnection, response: DepResponse, *, run_id: str | None = None) -> ArchivedFetch:
    """Append one fetch and all its records in a single transaction: all of it, or nothing."""
    rows = []
    for position, record in enumerate(response.records):
        value = record.value
        is_object = isinstance(value, dict)
        raw_hashid = value.get("hashid") if is_object else None
        raw_date = value.get("date") if is_object else None
        rows.append(
            {
                "position": position,
                "hashid": found_text(value, "hashid"),
                "record_date": found_text(value, "date"),
                "hashid_key": hashid_key(raw_hashid),
                "record_day": record_day(raw_date),
                "is_object": is_object,
                "payload_sha256": hashlib.sha256(record.text.encode("utf-8")).hexdigest(),
                "payload": record.text,
            }
        )
    incoming = pd.DataFrame(
        rows,
        columns=["position", "hashid", "record_date", "hashid_key", "record_day", "is_object", "payload_sha256", "payload"],
    ).astype(
        {
            "position": "int32",
            "hashid": "string[pyarrow]",
            "record_date": "string[pyarrow]",
            "hashid_key": "string[pyarrow]",
            "record_day": "object",
            "is_object": "bool",
            "payload_sha256": "string[pyarrow]",
            "payload": "string[pyarrow]",
        }
    )
    body_sha256 = response.body_sha256
    conn.register("incoming_records", incoming)
    try:
        with transaction(conn):
            fetch_id = conn.execute("SELECT nextval('raw_fetch_id')").fetchall()[0][0]
            new_payloads = conn.execute(
                """
                INSERT INTO raw_payloads
                SELECT payload_sha256, any_value(payload), ? FROM incoming_records i
                WHERE NOT EXISTS (SELECT 1 FROM raw_payloads p WHERE p.payload_sha256 = i.payload_sha256)
                GROUP BY payload_sha256
                """,
                [fetch_id],
            ).fetchall()[0][0]
            new_hashids, distinct_hashids = conn.execute(
                """
                SELECT count(DISTINCT hashid_key) FILTER (WHERE NOT EXISTS (
                           SELECT 1 FROM raw_records r WHERE r.dataset = ? AND r.hashid_key = i.hashid_key)),
                       count(DISTINCT hashid_key)
                FROM incoming_records i WHERE hashid_key IS NOT NULL
                """,
                [response.dataset],
            ).fetchall()[0]
            conn.execute(
                """
                INSERT INTO raw_records
                SELECT ?, position, ?, ?, hashid, record_date, hashid_key, CAST(record_day AS DATE),
                       is_object, payload_sha256
                FROM incoming_records
                """,
                [fetch_id, response.dataset, response.day],
            )
            duration_ms = round(response.duration_seconds * 1000, 3)
            conn.execute(
                """
                INSERT INTO raw_fetches VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
                [
                    fetch_id,
                    response.dataset,
                    response.day,
                    response.window_start,
                    response.window_end,
                    response.source,
                    response.location,
                    response.requested_at,
                    datetime.now(UTC),
                    response.http_status,
                    len(rows),
                    len(response.body),
                    body_sha256,
                    duration_ms,
                    new_payloads,
                    new_hashids,
                    run_id,
                ],
            )
    finally:
        conn.unregister("incoming_records")
    return ArchivedFetch(
        fetch_id=fetch_id,
        records=len(rows),
        new_payloads=new_payloads,
        new_hashids=new_hashids,
        known_hashids=distinct_hashids - new_hashids,
        records_without_hashid=sum(1 for row in rows if row["hashid_key"] is None),
        body_bytes=len(response.body),
        body_sha256=body_sha256,
        duration_ms=duration_ms,
    )
