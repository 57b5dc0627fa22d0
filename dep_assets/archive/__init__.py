"""The DuckDB archive: schema migrations, safe connections, append-only raw writes (no Dagster)."""

from dep_assets.archive.schema import LATEST_VERSION, migrate
from dep_assets.archive.store import (
    Archive,
    ArchivedFetch,
    ArchiveLockedError,
    archive_response,
)

__all__ = ["LATEST_VERSION", "Archive", "ArchiveLockedError", "ArchivedFetch", "archive_response", "migrate"]
