"""Shared fixtures: real stand-ins on loopback (moto Cognito, a DEP server), a real Dagster instance,
and a real DuckDB file per test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from dep_assets.archive import Archive
from dep_assets.definitions import build_definitions
from dep_assets.settings import Settings
from dep_assets_tests.standins.cognito import CognitoStandIn
from dep_assets_tests.standins.dep_server import DepServer

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_DIR = ROOT / "data" / "sample"
API_KEY = "dep-test-api-key-7Hq2Zr9Lw4"  # searched for in logs, events and tables: must never appear


def sample_records(dataset: str = "ext") -> list:
    records = []
    for path in sorted((SAMPLE_DIR / dataset).glob("*.json")):
        records += json.loads(path.read_text(encoding="utf-8"))
    return records


@pytest.fixture(scope="session")
def cognito() -> Iterator[CognitoStandIn]:
    with CognitoStandIn() as standin:
        yield standin


@pytest.fixture
def dep_server(cognito: CognitoStandIn) -> Iterator[DepServer]:
    with DepServer(api_key=API_KEY, cognito_client_id=cognito.client_id) as server:
        yield server


@pytest.fixture
def project_env(tmp_path: Path, cognito: CognitoStandIn, dep_server: DepServer) -> dict[str, str]:
    """The environment a deployment would have, pointed at the stand-ins and a fresh archive."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    env = {
        "DEP_USERNAME": cognito.username,
        "DEP_PASSWORD": cognito.password,
        "DEP_API_KEY": API_KEY,
        "DEP_CLIENT_ID": cognito.client_id,
        "DEP_LOGIN_ENDPOINT": cognito.endpoint,
        "DEP_API_ENDPOINT": dep_server.url,
        "DEP_ARCHIVE_PATH": str(tmp_path / "archive.duckdb"),
        "DEP_START_DATE": "2026-03-01",
        "DEP_DSETS": "ext,prv",
        "DAGSTER_HOME": str(home),
        "DEP_RETRY_BASE_DELAY": "0.01",
        "DEP_MAX_ATTEMPTS": "3",
        "DEP_ARCHIVE_LOCK_TIMEOUT": "60",
    }
    return env


@pytest.fixture
def use_env(monkeypatch: pytest.MonkeyPatch, project_env: dict[str, str]) -> dict[str, str]:
    for name in list(os.environ):
        if name.startswith(("DEP_", "OPENCTI_")):
            monkeypatch.delenv(name)
    for name, value in project_env.items():
        monkeypatch.setenv(name, value)
    return project_env


@pytest.fixture
def instance(use_env: dict[str, str]) -> Iterator[dg.DagsterInstance]:
    with dg.DagsterInstance.get() as dagster_instance:  # a real instance on DAGSTER_HOME
        yield dagster_instance


RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"


RAW = ("dep_announcements_raw",)
ALL_ASSETS = ("dep_announcements_raw", "dep_victims", "dep_stix_bundles")
DERIVED = ("dep_victims", "dep_stix_bundles")


def materialize(
    instance: dg.DagsterInstance,
    first: str,
    last: str | None = None,
    *,
    assets: tuple[str, ...] = RAW,
    ok: bool = True,
):
    """Materialize the project's assets in process on the real instance, with the settings in the
    environment: one partition key, or a single-run range from `first` to `last`."""
    defs = build_definitions(Settings.from_env())
    tags = {RANGE_START: first, RANGE_END: last} if last else {}
    result = dg.materialize(
        list(defs.assets or []),
        selection=list(assets),
        partition_key=None if last else first,
        tags=tags,
        instance=instance,
        resources=defs.resources,
        raise_on_error=False,
    )
    assert result.success is ok, failure_text(result)
    return result


def failure_text(result) -> str:
    return "\n".join(str(e.event_specific_data) for e in result.all_events if e.is_failure)


def create_archive(env: dict[str, str]) -> None:
    with Archive(Path(env["DEP_ARCHIVE_PATH"])).writer():
        pass


def query(env: dict[str, str], sql: str, params: list | None = None) -> list[tuple]:
    with duckdb.connect(env["DEP_ARCHIVE_PATH"], read_only=True) as conn:
        return conn.execute(sql, params or []).fetchall()


@pytest.fixture
def served_sample(dep_server: DepServer) -> DepServer:
    """The DEP stand-in serving the bundled sample: each file's items on that file's day."""
    for dataset in ("ext", "prv"):
        for path in sorted((SAMPLE_DIR / dataset).glob("*.json")):
            dep_server.add_records(dataset, json.loads(path.read_text(encoding="utf-8")), serve_on=path.stem)
    return dep_server


def clean_env(**settings: str) -> dict[str, str]:
    """This process's environment without any dep-assets, OpenCTI or Dagster setting, plus `settings`:
    what a child process gets, so only the test decides its configuration."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DEP_", "OPENCTI_", "DAGSTER_"))}
    return {**env, **settings}


def run_dagster(args: list[str], env: dict[str, str], timeout: float = 240) -> subprocess.CompletedProcess:
    """The real Dagster CLI in a child process, with only the given settings in its environment."""
    return subprocess.run(
        [sys.executable, "-m", "dagster", *args],
        env=clean_env(**env),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
