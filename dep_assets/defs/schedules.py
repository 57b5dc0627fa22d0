"""The production schedule: re-read the recent days of every dataset, as the connector did.

Each tick asks for one single-run backfill per dataset over the last days that DEP may still update
(DEP_OVERLAP_HOURS, at least today and yesterday), so late updates and re-dated announcements land;
the very first tick reaches back DEP_LOOKBACK_DAYS, as the connector's first run did.
Older history is fetched with a backfill from the UI or the CLI (see the README).
"""

import math
from datetime import datetime, timedelta

import dagster as dg

from dep_assets.defs.partitions import partition_key
from dep_assets.settings import Settings

RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
RAW_ASSET = dg.AssetKey("dep_announcements_raw")


def cron_for_interval(seconds: int) -> str:
    """The connector ran every CONNECTOR_RUN_INTERVAL seconds; cron has minute resolution."""
    minutes = max(1, round(seconds / 60))
    if minutes < 60 and 60 % minutes == 0:
        return f"*/{minutes} * * * *"
    hours = max(1, round(minutes / 60))
    if hours < 24 and 24 % hours == 0:
        return "0 * * * *" if hours == 1 else f"0 */{hours} * * *"
    return "0 0 * * *"


def days_to_refresh(now: datetime, settings: Settings, *, first_run: bool = False) -> list:
    """Today back to the overlap window; on the very first run, DEP_LOOKBACK_DAYS like the connector."""
    window = settings.lookback_days if first_run else math.ceil(settings.overlap_hours / 24)
    today = now.date()
    first = max(settings.start_date, today - timedelta(days=max(1, window)))
    return [first + timedelta(days=n) for n in range((today - first).days + 1)]


def build_refresh_schedule(job: object, settings: Settings) -> dg.ScheduleDefinition:
    """`job` is what `dg.define_asset_job` returns (the archive job)."""

    @dg.schedule(
        name="dep_refresh_schedule",
        job=job,
        cron_schedule=cron_for_interval(settings.run_interval_seconds),
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.STOPPED,  # turned on deliberately, in the UI or dagster.yaml
        description="Re-read the days DEP may still update (DEP_OVERLAP_HOURS) for every dataset, then re-derive.",
    )
    def dep_refresh_schedule(context: dg.ScheduleEvaluationContext):  # type: ignore[no-untyped-def]
        first_run = context.instance.get_latest_materialization_event(RAW_ASSET) is None
        days = days_to_refresh(context.scheduled_execution_time, settings, first_run=first_run)
        stamp = context.scheduled_execution_time.strftime("%Y%m%dT%H%M")
        for dataset in settings.datasets:
            yield dg.RunRequest(
                run_key=f"{dataset}-{stamp}",
                tags={
                    RANGE_START_TAG: partition_key(dataset, days[0]),
                    RANGE_END_TAG: partition_key(dataset, days[-1]),
                },
            )

    return dep_refresh_schedule
