"""The archive's schema, created and migrated by code: each migration runs once, in order, recorded in
`schema_version`. Never edit a released migration; append a new one."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from dep_assets.archive.sql import transaction


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "raw archive: fetches, de-duplicated payloads, records per fetch",
        (
            "CREATE SEQUENCE raw_fetch_id START 1",
            """
            CREATE TABLE raw_fetches (
                fetch_id      BIGINT PRIMARY KEY,
                dataset       VARCHAR NOT NULL,
                day           DATE NOT NULL,         -- the partition day this fetch is for
                window_start  DATE NOT NULL,         -- ts sent
                window_end    DATE NOT NULL,         -- te sent (inclusive or not: unknown, see README)
                source        VARCHAR NOT NULL,      -- api | file
                location      VARCHAR NOT NULL,      -- endpoint URL or recorded file path
                requested_at  TIMESTAMPTZ NOT NULL,
                archived_at   TIMESTAMPTZ NOT NULL,
                http_status   INTEGER,               -- NULL for a recorded file
                record_count  INTEGER NOT NULL,
                body_bytes    BIGINT NOT NULL,
                body_sha256   VARCHAR NOT NULL,
                duration_ms   DOUBLE NOT NULL,
                new_payloads  INTEGER NOT NULL,      -- records whose exact JSON was not archived before
                new_hashids   INTEGER NOT NULL,      -- hashids not seen before in this dataset
                run_id        VARCHAR                -- the Dagster run that fetched it
            )
            """,
            """
            CREATE TABLE raw_payloads (
                payload_sha256  VARCHAR PRIMARY KEY,  -- SHA-256 of the record's exact UTF-8 text
                payload         VARCHAR NOT NULL,     -- the record's JSON exactly as received
                first_fetch_id  BIGINT NOT NULL
            )
            """,
            """
            CREATE TABLE raw_records (
                fetch_id        BIGINT NOT NULL,
                position        INTEGER NOT NULL,     -- index in the response array
                dataset         VARCHAR NOT NULL,
                day             DATE NOT NULL,
                hashid          VARCHAR,              -- as found (JSON text when not a string)
                record_date     VARCHAR,              -- as found (JSON text when not a string)
                hashid_key      VARCHAR,              -- lookup key: stripped, lower-case hashid
                record_day      DATE,                 -- lookup key: the record's date, when parseable
                is_object       BOOLEAN NOT NULL,
                payload_sha256  VARCHAR NOT NULL,
                PRIMARY KEY (fetch_id, position)
            )
            """,
            """
            CREATE VIEW raw_announcements AS
            SELECT r.fetch_id, r.dataset, r.day, r.position, r.hashid, r.record_date, p.payload,
                   r.payload_sha256, r.hashid_key, r.record_day, r.is_object, f.requested_at
            FROM raw_records r
            JOIN raw_payloads p USING (payload_sha256)
            JOIN raw_fetches f USING (fetch_id)
            """,
        ),
    ),
    Migration(
        2,
        "derived tables: victims, quarantine, STIX bundles and objects; SQL convenience views",
        (
            """
            CREATE TABLE dep_victims (
                dataset                VARCHAR NOT NULL,
                hashid                 VARCHAR NOT NULL,   -- stripped, lower-case; unique per dataset
                announcement_date      DATE NOT NULL,      -- the latest version's own date
                victim                 VARCHAR,            -- as given
                victim_normalized      VARCHAR,
                victim_is_placeholder  BOOLEAN NOT NULL,
                victim_domain          VARCHAR,            -- hostname, lower-case
                victim_domain_given    VARCHAR,
                site                   VARCHAR,
                sector                 VARCHAR,
                sector_given           VARCHAR,
                actor                  VARCHAR,            -- NULL for generic values (unknown, ...)
                actor_given            VARCHAR,
                country                VARCHAR,
                country_given          VARCHAR,
                victim_country_code    VARCHAR,
                victim_city            VARCHAR,
                victim_state           VARCHAR,
                victim_address         VARCHAR,
                revenue                VARCHAR,
                amount                 VARCHAR,
                naics                  VARCHAR,
                data_types             VARCHAR[],
                leak_link              VARCHAR,            -- https// repaired
                title                  VARCHAR,
                description            VARCHAR,            -- URL-decoded once
                first_seen             TIMESTAMPTZ,        -- first fetch that brought any version
                last_seen              TIMESTAMPTZ,        -- last fetch that brought any version
                versions_seen          INTEGER NOT NULL,   -- distinct payloads seen for this hashid
                fetch_id               BIGINT NOT NULL,    -- the fetch of the version used
                position               INTEGER NOT NULL,
                payload_sha256         VARCHAR NOT NULL,
                extra_fields           VARCHAR[],          -- keys DEP sent that we do not model
                invalid_fields         VARCHAR[]           -- known keys with a value of the wrong JSON type
            )
            """,
            """
            CREATE TABLE dep_quarantine (
                dataset         VARCHAR NOT NULL,
                day             DATE NOT NULL,      -- the record's date if readable, else its fetch's day
                identity        VARCHAR NOT NULL,   -- hashid, or sha256:<payload hash> without one
                hashid          VARCHAR,
                reason          VARCHAR NOT NULL,
                reason_code     VARCHAR NOT NULL,
                fetch_id        BIGINT NOT NULL,    -- pointer to the raw row: raw_records(fetch_id, position)
                position        INTEGER NOT NULL,
                payload_sha256  VARCHAR NOT NULL
            )
            """,
            """
            CREATE TABLE stix_bundles (
                dataset          VARCHAR NOT NULL,
                day              DATE NOT NULL,
                hashid           VARCHAR NOT NULL,
                bundle_id        VARCHAR NOT NULL,
                primary_id       VARCHAR NOT NULL,   -- the incident (or report) id
                bundle           VARCHAR NOT NULL,   -- the STIX 2.1 bundle, serialized deterministically
                object_count     INTEGER NOT NULL,
                sha256           VARCHAR NOT NULL,
                mapping_version  VARCHAR NOT NULL,   -- mapping code version + options fingerprint
                mapped_at        TIMESTAMPTZ NOT NULL
            )
            """,
            # One row per object of every bundle, derived on read so it can never disagree with them.
            """
            CREATE VIEW stix_objects AS
            SELECT b.dataset, b.day, b.hashid, b.bundle_id, o ->> 'id' AS stix_id, o ->> 'type' AS stix_type,
                   o ->> 'name' AS name, o AS object
            FROM stix_bundles b, unnest(json_extract(b.bundle, '$.objects[*]')) AS t(o)
            """,
            "CREATE VIEW victims_latest AS SELECT * FROM dep_victims",
            """
            CREATE VIEW victims_monthly_by_actor AS
            SELECT dataset, date_trunc('month', announcement_date)::DATE AS month,
                   coalesce(actor, '(unattributed)') AS actor, count(*) AS victims
            FROM dep_victims GROUP BY ALL
            """,
            """
            CREATE VIEW victims_monthly_by_sector AS
            SELECT dataset, date_trunc('month', announcement_date)::DATE AS month,
                   coalesce(sector, '(unknown)') AS sector, count(*) AS victims
            FROM dep_victims GROUP BY ALL
            """,
            """
            CREATE VIEW victims_monthly_by_country AS
            SELECT dataset, date_trunc('month', announcement_date)::DATE AS month,
                   coalesce(country, '(unknown)') AS country, count(*) AS victims
            FROM dep_victims GROUP BY ALL
            """,
        ),
    ),
)

LATEST_VERSION = MIGRATIONS[-1].version


def migrate(conn: duckdb.DuckDBPyConnection) -> list[int]:
    """Bring the archive to the latest schema; returns the versions applied now."""
    conn.execute(
        """
        CREATE TABLE IF NOT EXISTS schema_version (
            version      INTEGER PRIMARY KEY,
            description  VARCHAR NOT NULL,
            applied_at   TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
        )
        """
    )
    current = conn.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchall()[0][0]
    if current > LATEST_VERSION:
        raise RuntimeError(
            f"the archive is at schema version {current}, newer than this code knows ({LATEST_VERSION}): "
            "upgrade dep-assets before writing to it"
        )
    applied = []
    for migration in MIGRATIONS:
        if migration.version <= current:
            continue
        with transaction(conn):
            for statement in migration.statements:
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_version (version, description) VALUES (?, ?)",
                [migration.version, migration.description],
            )
        applied.append(migration.version)
    return applied
