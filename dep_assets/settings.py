"""Every setting of dep-assets, read from the environment and validated once, when definitions load.

The variable names are the DEP OpenCTI connector's, so a connector's environment works unchanged;
DEP_DSETS, DEP_START_DATE, DEP_ARCHIVE_PATH and the few operational knobs below are ours.

Secrets (DEP_USERNAME, DEP_PASSWORD, DEP_API_KEY, OPENCTI_TOKEN) are deliberately *not* fields here:
the Dagster resources read them through `EnvVar`, so they never appear in run config, the UI, logs,
metadata or the archive. Loading settings never needs a credential.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from dep_assets.datasets import UnknownDatasetError, resolve_dataset
from dep_assets.stix_mapping.options import MappingOptions

DEFAULT_LOGIN_ENDPOINT = "https://cognito-idp.eu-west-1.amazonaws.com/"
DEFAULT_API_ENDPOINT = "https://api.eu-ep1.doubleextortion.com/v1/dbtr/privlist"
DEFAULT_ARCHIVE_PATH = "data/dep_archive.duckdb"
# DuckDB's memory cap for the archive's writers (DEP_ARCHIVE_MEMORY_LIMIT). DuckDB would otherwise keep
# up to 80% of RAM as cache and transaction buffers, growing with the history a run touches; above the
# cap it spills to `<archive>.tmp/`. 256MB: what a replay of 100,000 records fills anyway (so longer
# histories need no more), and a 4x history re-maps in 192MB (`make bench`), with no measurable loss
# of speed against 512MB.
DEFAULT_ARCHIVE_MEMORY_LIMIT = "256MB"

# Read by the resources through EnvVar, never stored in Settings.
DEP_SECRET_VARIABLES = ("DEP_USERNAME", "DEP_PASSWORD", "DEP_API_KEY")
SECRET_VARIABLES = (*DEP_SECRET_VARIABLES, "OPENCTI_TOKEN")
TLP_LEVELS = ("clear", "green", "amber", "amber+strict", "red")
PRIMARY_OBJECTS = ("incident", "report")


class SettingsError(ValueError):
    """One or more settings are invalid; the message lists every problem at once."""


@dataclass(frozen=True)
class Settings:
    # DEP access (non-secret part)
    client_id: str | None = None  # DEP_CLIENT_ID
    login_endpoint: str = DEFAULT_LOGIN_ENDPOINT  # DEP_LOGIN_ENDPOINT
    api_endpoint: str = DEFAULT_API_ENDPOINT  # DEP_API_ENDPOINT (https://... or file://<recorded dir>)
    extended_results: bool = True  # DEP_EXTENDED_RESULTS
    datasets: tuple[str, ...] = ("ext",)  # DEP_DSETS, else DEP_DSET
    start_date: date = date(2025, 1, 1)  # DEP_START_DATE: first daily partition
    lookback_days: int = 7  # DEP_LOOKBACK_DAYS: days the schedule's first tick reaches back
    overlap_hours: int = 72  # DEP_OVERLAP_HOURS: re-read window for late DEP updates
    run_interval_seconds: int = 3600  # CONNECTOR_RUN_INTERVAL: schedule cadence

    # HTTP behaviour
    http_timeout_seconds: float = 60.0  # DEP_HTTP_TIMEOUT
    max_attempts: int = 6  # DEP_MAX_ATTEMPTS: per request, retries included
    retry_budget_seconds: float = 300.0  # DEP_RETRY_BUDGET_SECONDS: total time spent retrying
    retry_base_delay_seconds: float = 1.0  # DEP_RETRY_BASE_DELAY: first backoff ceiling, doubled each try

    # Archive
    archive_path: Path = field(default_factory=lambda: Path(DEFAULT_ARCHIVE_PATH).absolute())
    archive_lock_timeout_seconds: float = 600.0  # DEP_ARCHIVE_LOCK_TIMEOUT
    archive_memory_limit: str = DEFAULT_ARCHIVE_MEMORY_LIMIT  # DEP_ARCHIVE_MEMORY_LIMIT
    quarantine_max_share: float = 0.10  # DEP_QUARANTINE_MAX_SHARE: the asset check warns above it
    transform_workers: int = 0  # DEP_TRANSFORM_WORKERS: processes for normalization/mapping; 0 = one per CPU

    # STIX mapping (connector defaults)
    confidence: int = 70  # DEP_CONFIDENCE
    enable_site_indicator: bool = True  # DEP_ENABLE_SITE_INDICATOR
    enable_hash_indicator: bool = True  # DEP_ENABLE_HASH_INDICATOR
    skip_empty_victim: bool = True  # DEP_SKIP_EMPTY_VICTIM
    primary_object: str = "incident"  # DEP_PRIMARY_OBJECT
    tlp: str | None = None  # DEP_TLP
    create_sector_identities: bool = False  # DEP_CREATE_SECTOR_IDENTITIES
    create_intrusion_sets: bool = False  # DEP_CREATE_INTRUSION_SETS
    create_country_locations: bool = False  # DEP_CREATE_COUNTRY_LOCATIONS
    dataset_label: bool = False  # DEP_DATASET_LABEL: add `dep:dataset:<code>`

    # OpenCTI (the token is a secret, read through EnvVar)
    opencti_url: str | None = None  # OPENCTI_URL

    def mapping_options(self) -> MappingOptions:
        return MappingOptions(
            confidence=self.confidence,
            enable_site_indicator=self.enable_site_indicator,
            enable_hash_indicator=self.enable_hash_indicator,
            skip_empty_victim=self.skip_empty_victim,
            primary_object=self.primary_object,
            tlp=self.tlp,
            create_sector_identities=self.create_sector_identities,
            create_intrusion_sets=self.create_intrusion_sets,
            create_country_locations=self.create_country_locations,
            dataset_label=self.dataset_label,
        )

    @property
    def uses_recorded_source(self) -> bool:
        return self.api_endpoint.startswith("file://")

    @property
    def recorded_dir(self) -> Path:
        return Path(self.api_endpoint.removeprefix("file://"))

    @property
    def snapshot_path(self) -> Path:
        """The read-only copy analysts query; no writer ever locks it."""
        return self.archive_path.with_name(self.archive_path.stem + ".snapshot.duckdb")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = _Env(os.environ if environ is None else environ)
        values: dict[str, object] = {}

        values["client_id"] = env.text("DEP_CLIENT_ID")
        values["login_endpoint"] = env.url("DEP_LOGIN_ENDPOINT", DEFAULT_LOGIN_ENDPOINT, ("http://", "https://"))
        values["api_endpoint"] = env.url(
            "DEP_API_ENDPOINT", DEFAULT_API_ENDPOINT, ("http://", "https://", "file://")
        )
        values["extended_results"] = env.boolean("DEP_EXTENDED_RESULTS", True)
        values["datasets"] = env.datasets()
        values["start_date"] = env.day("DEP_START_DATE", date(2025, 1, 1))
        values["lookback_days"] = env.integer("DEP_LOOKBACK_DAYS", 7, minimum=1)
        values["overlap_hours"] = env.integer("DEP_OVERLAP_HOURS", 72, minimum=0)
        values["run_interval_seconds"] = env.integer("CONNECTOR_RUN_INTERVAL", 3600, minimum=60)
        values["http_timeout_seconds"] = env.number("DEP_HTTP_TIMEOUT", 60.0, minimum=1)
        values["max_attempts"] = env.integer("DEP_MAX_ATTEMPTS", 6, minimum=1)
        values["retry_budget_seconds"] = env.number("DEP_RETRY_BUDGET_SECONDS", 300.0, minimum=0)
        values["retry_base_delay_seconds"] = env.number("DEP_RETRY_BASE_DELAY", 1.0, minimum=0)
        # Relative to the working directory the code location runs in (the repository for `make dev`).
        values["archive_path"] = Path(env.text("DEP_ARCHIVE_PATH") or DEFAULT_ARCHIVE_PATH).expanduser().absolute()
        values["archive_lock_timeout_seconds"] = env.number("DEP_ARCHIVE_LOCK_TIMEOUT", 600.0, minimum=0)
        values["archive_memory_limit"] = env.memory_size("DEP_ARCHIVE_MEMORY_LIMIT", DEFAULT_ARCHIVE_MEMORY_LIMIT)
        values["quarantine_max_share"] = env.number("DEP_QUARANTINE_MAX_SHARE", 0.10, minimum=0)
        values["transform_workers"] = env.integer("DEP_TRANSFORM_WORKERS", 0, minimum=0)
        values["confidence"] = env.integer("DEP_CONFIDENCE", 70, minimum=0, maximum=100)
        values["enable_site_indicator"] = env.boolean("DEP_ENABLE_SITE_INDICATOR", True)
        values["enable_hash_indicator"] = env.boolean("DEP_ENABLE_HASH_INDICATOR", True)
        values["skip_empty_victim"] = env.boolean("DEP_SKIP_EMPTY_VICTIM", True)
        values["primary_object"] = env.choice("DEP_PRIMARY_OBJECT", "incident", PRIMARY_OBJECTS)
        tlp = env.choice("DEP_TLP", "none", ("none", *TLP_LEVELS))
        values["tlp"] = None if tlp == "none" else tlp
        values["create_sector_identities"] = env.boolean("DEP_CREATE_SECTOR_IDENTITIES", False)
        values["create_intrusion_sets"] = env.boolean("DEP_CREATE_INTRUSION_SETS", False)
        values["create_country_locations"] = env.boolean("DEP_CREATE_COUNTRY_LOCATIONS", False)
        values["dataset_label"] = env.boolean("DEP_DATASET_LABEL", False)
        values["opencti_url"] = env.url("OPENCTI_URL", None, ("http://", "https://"))

        if env.errors:
            raise SettingsError("invalid dep-assets settings:\n- " + "\n- ".join(env.errors))
        return cls(**values)  # type: ignore[arg-type]

    def missing_dep_credentials(self, environ: Mapping[str, str] | None = None) -> list[str]:
        """Variables a live DEP fetch needs that are not set (a recorded source needs none)."""
        env = os.environ if environ is None else environ
        return missing_dep_credentials(self.api_endpoint, {**env, "DEP_CLIENT_ID": self.client_id})


def missing_dep_credentials(api_endpoint: str, values: Mapping[str, str | None]) -> list[str]:
    """Which of the DEP variables a live fetch needs are empty in `values`; a file:// endpoint needs none."""
    if api_endpoint.startswith("file://"):
        return []
    return [name for name in (*DEP_SECRET_VARIABLES, "DEP_CLIENT_ID") if not (values.get(name) or "").strip()]


class _Env:
    """Typed reads of environment variables that collect every error instead of stopping at one."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self.errors: list[str] = []

    def text(self, name: str) -> str | None:
        value = self.environ.get(name, "").strip()
        return value or None

    def url(self, name: str, default: str | None, schemes: tuple[str, ...]) -> str | None:
        value = self.text(name)
        if value is None:
            return default
        if not value.lower().startswith(schemes):
            self.errors.append(f"{name}={value!r} must start with one of {', '.join(schemes)}")
            return default
        return value

    def boolean(self, name: str, default: bool) -> bool:
        value = self.text(name)
        if value is None:
            return default
        lowered = value.lower()
        if lowered in ("true", "1", "yes", "on"):
            return True
        if lowered in ("false", "0", "no", "off"):
            return False
        self.errors.append(f"{name}={value!r} must be true or false")
        return default

    def integer(self, name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
        value = self.text(name)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            self.errors.append(f"{name}={value!r} must be a whole number")
            return default
        return self._bounded(name, number, default, minimum, maximum)

    def number(self, name: str, default: float, *, minimum: float | None = None) -> float:
        value = self.text(name)
        if value is None:
            return default
        try:
            number = float(value)
        except ValueError:
            self.errors.append(f"{name}={value!r} must be a number")
            return default
        return self._bounded(name, number, default, minimum, None)

    def _bounded(self, name, number, default, minimum, maximum):  # type: ignore[no-untyped-def]
        if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
            bounds = f"at least {minimum}" if maximum is None else f"between {minimum} and {maximum}"
            self.errors.append(f"{name}={number} must be {bounds}")
            return default
        return number

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = (self.text(name) or default).lower()
        if value not in choices:
            self.errors.append(f"{name}={value!r} must be one of {', '.join(choices)}")
            return default
        return value

    def day(self, name: str, default: date) -> date:
        value = self.text(name)
        if value is None:
            return default
        try:
            return date.fromisoformat(value)
        except ValueError:
            self.errors.append(f"{name}={value!r} must be a date as YYYY-MM-DD")
            return default

    def memory_size(self, name: str, default: str) -> str:
        value = (self.text(name) or default).replace(" ", "")
        if not re.fullmatch(r"[0-9]+(\.[0-9]+)?(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)", value, re.IGNORECASE):
            self.errors.append(f"{name}={value!r} must be a size such as 512MB or 2GB")
            return default
        return value

    def datasets(self) -> tuple[str, ...]:
        # DEP_DSETS (ours, a comma list) wins over the connector's single DEP_DSET.
        raw = self.text("DEP_DSETS") or self.text("DEP_DSET") or "ext"
        codes: list[str] = []
        for item in raw.split(","):
            if not item.strip():
                continue
            try:
                code = resolve_dataset(item)
            except UnknownDatasetError as error:
                self.errors.append(str(error))
                continue
            if code not in codes:
                codes.append(code)
        if not codes and not any("dataset" in e for e in self.errors):
            self.errors.append(f"DEP_DSETS={raw!r} names no dataset")
        return tuple(codes) or ("ext",)
