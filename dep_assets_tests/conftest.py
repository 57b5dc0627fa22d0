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
import pytest

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


def run_dagster(args: list[str], env: dict[str, str], timeout: float = 240) -> subprocess.CompletedProcess:
    """The real Dagster CLI in a child process, with only the given settings in its environment."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DEP_", "OPENCTI_", "DAGSTER_"))}
    return subprocess.run(
        [sys.executable, "-m", "dagster", *args],
        env={**clean, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
