"""The Dagster code location: DEP -> archive -> victims -> STIX -> OpenCTI.

Settings are read and validated here, at load; a bad setting stops the code location with a message
listing every problem. No credential is needed to load: the UI and the demo work on a fresh clone.
"""

import os

import dagster as dg

from dep_assets.defs.derived import build_dep_stix_bundles, build_dep_victims
from dep_assets.defs.partitions import build_partitions
from dep_assets.defs.raw import build_dep_announcements_raw
from dep_assets.defs.resources import DepApiResource, DuckDBArchiveResource
from dep_assets.defs.schedules import build_refresh_schedule
from dep_assets.settings import DEP_SECRET_VARIABLES, Settings


def _secret(name: str) -> dg.EnvVar | None:
    # EnvVar keeps the value out of run config and the UI; only set variables are wired, so a missing
    # credential surfaces as our message naming it, at fetch time, not as a load error.
    return dg.EnvVar(name) if os.environ.get(name, "").strip() else None


def build_definitions(settings: Settings) -> dg.Definitions:
    partitions = build_partitions(settings)
    secrets = {name: _secret(name) for name in DEP_SECRET_VARIABLES}
    dep = DepApiResource(
        api_endpoint=settings.api_endpoint,
        login_endpoint=settings.login_endpoint,
        client_id=settings.client_id,
        username=secrets["DEP_USERNAME"],
        password=secrets["DEP_PASSWORD"],
        api_key=secrets["DEP_API_KEY"],
        extended_results=settings.extended_results,
        http_timeout_seconds=settings.http_timeout_seconds,
        max_attempts=settings.max_attempts,
        retry_budget_seconds=settings.retry_budget_seconds,
        retry_base_delay_seconds=settings.retry_base_delay_seconds,
    )
    archive = DuckDBArchiveResource(
        path=str(settings.archive_path),
        lock_timeout_seconds=settings.archive_lock_timeout_seconds,
        memory_limit=settings.archive_memory_limit,
        transform_workers=settings.transform_workers,
    )
    assets = [
        build_dep_announcements_raw(partitions),
        build_dep_victims(partitions, settings.quarantine_max_share),
        build_dep_stix_bundles(partitions, settings.mapping_options()),
    ]
    archive_job = dg.define_asset_job(
        "dep_archive_job",
        selection=dg.AssetSelection.assets(*assets),
        description="Fetch and archive DEP partitions, then derive victims and STIX bundles from the archive.",
    )
    remap_job = dg.define_asset_job(
        "dep_remap_job",
        selection=dg.AssetSelection.assets("dep_victims", "dep_stix_bundles"),
        description="Re-derive victims and STIX bundles from the archive alone (no DEP call), e.g. after a mapping change.",
    )
    return dg.Definitions(
        assets=assets,
        jobs=[archive_job, remap_job],
        schedules=[build_refresh_schedule(archive_job, settings)],
        resources={"dep": dep, "archive": archive},
    )


settings = Settings.from_env()
defs = build_definitions(settings)
