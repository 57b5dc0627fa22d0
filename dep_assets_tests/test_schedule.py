"""The refresh schedule asks for one single-run range per dataset over the days DEP may still update."""

from __future__ import annotations

from datetime import UTC, date, datetime

import dagster as dg
import pytest

from dep_assets.definitions import build_definitions
from dep_assets.defs.schedules import cron_for_interval, days_to_refresh
from dep_assets.settings import Settings


@pytest.mark.parametrize(
    ("seconds", "cron"),
    [(3600, "0 * * * *"), (900, "*/15 * * * *"), (60, "*/1 * * * *"), (7200, "0 */2 * * *"), (86400, "0 0 * * *")],
)
def test_connector_run_interval_becomes_a_cron(seconds, cron):
    assert cron_for_interval(seconds) == cron


def test_schedule_requests_the_overlap_window_for_each_dataset():
    settings = Settings.from_env({"DEP_DSETS": "ext,privacy", "DEP_OVERLAP_HOURS": "72", "DEP_START_DATE": "2026-01-01"})
    defs = build_definitions(settings)
    schedule = defs.resolve_schedule_def("dep_refresh_schedule")
    assert schedule.cron_schedule == "0 * * * *"
    assert schedule.job_name == "dep_archive_job"
    tick = datetime(2026, 3, 10, 7, 0, tzinfo=UTC)
    with dg.instance_for_test() as instance, dg.build_schedule_context(instance=instance, scheduled_execution_time=tick) as context:
        requests = list(schedule.evaluate_tick(context).run_requests or [])
    assert [(r.run_key, r.tags["dagster/asset_partition_range_start"], r.tags["dagster/asset_partition_range_end"]) for r in requests] == [
        # Nothing archived yet: the first run reaches back DEP_LOOKBACK_DAYS (7), like the connector.
        ("ext-20260310T0700", "ext|2026-03-03", "ext|2026-03-10"),
        ("prv-20260310T0700", "prv|2026-03-03", "prv|2026-03-10"),
    ]


def test_refresh_never_starts_before_the_first_partition():
    settings = Settings.from_env({"DEP_START_DATE": "2026-03-09", "DEP_OVERLAP_HOURS": "0"})
    assert days_to_refresh(datetime(2026, 3, 10, tzinfo=UTC), settings) == [date(2026, 3, 9), date(2026, 3, 10)]


def test_the_first_run_reaches_back_the_lookback_days():
    settings = Settings.from_env({"DEP_LOOKBACK_DAYS": "7", "DEP_OVERLAP_HOURS": "48", "DEP_START_DATE": "2026-01-01"})
    now = datetime(2026, 3, 10, tzinfo=UTC)
    assert len(days_to_refresh(now, settings, first_run=True)) == 8
    assert len(days_to_refresh(now, settings)) == 3
