"""The Dagster UI path: `make dev`'s webserver and daemon, a partition backfill launched over the same
GraphQL API the UI uses, run by the daemon as one single run, landing in the archive."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
import requests

from dep_assets_tests.conftest import ROOT, SAMPLE_DIR, clean_env

LAUNCH = """
mutation Launch($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
    ... on UnauthorizedError { message }
  }
}
"""
STATUS = """
query Status($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill { status numPartitions runs(limit: 10) { runId status } }
    ... on PythonError { message }
  }
}
"""
ASSETS = """
query { assetNodes { assetKey { path } groupName isPartitioned partitionKeysByDimension { name partitionKeys } } }
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def dagster_dev(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    port = _free_port()
    env = clean_env(
        DAGSTER_HOME=str(tmp_path / "home"),
        DEP_ARCHIVE_PATH=str(tmp_path / "archive.duckdb"),
        DEP_API_ENDPOINT=f"file://{SAMPLE_DIR}",
    )
    log = open(tmp_path / "dagster-dev.log", "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "dep_assets.cli", "dev", "--port", str(port)],
        env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{url}/server_info", timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            assert process.poll() is None, (tmp_path / "dagster-dev.log").read_text()[-3000:]
            time.sleep(0.5)
        else:
            pytest.fail("dagster dev did not start: " + (tmp_path / "dagster-dev.log").read_text()[-3000:])
        yield url, env
    finally:
        os.killpg(process.pid, signal.SIGTERM)  # dagster dev may ignore SIGTERM for a while: the group
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
)  # fmt: skip


def render(url: str, tmp_path: Path) -> str:
    """The page's DOM after the Dagster UI's JavaScript ran, in a real headless Chromium."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed: .ci/run installs it")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    completed = subprocess.run(
        [browser, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium'}", "--virtual-time-budget=20000",
         "--window-size=1400,1000", "--dump-dom", url],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-2000:]
    return completed.stdout


def graphql(url: str, query: str, variables: dict | None = None) -> dict:
    response = requests.post(f"{url}/graphql", json={"query": query, "variables": variables or {}}, timeout=30)
    response.raise_for_status()
    body = response.json()
    assert "errors" not in body, body["errors"]
    return body["data"]


def test_a_backfill_launched_from_the_ui_api_runs_as_one_run(dagster_dev, tmp_path):
    url, env = dagster_dev
    nodes = {tuple(n["assetKey"]["path"]): n for n in graphql(url, ASSETS)["assetNodes"]}
    assert set(nodes) == {("dep_announcements_raw",), ("dep_victims",), ("dep_stix_bundles",)}
    dimensions = {d["name"]: d["partitionKeys"] for d in nodes[("dep_announcements_raw",)]["partitionKeysByDimension"]}
    assert dimensions["dataset"] == ["ext", "prv"]
    assert dimensions["date"][0] == "2026-03-01"

    partitions = [f"ext|2026-03-0{day}" for day in range(1, 7)]
    launched = graphql(
        url,
        LAUNCH,
        {"params": {
            "assetSelection": [{"path": [name]} for name in ("dep_announcements_raw", "dep_victims", "dep_stix_bundles")],
            "partitionNames": partitions,
            "fromFailure": False,
        }},
    )["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched

    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        backfill = graphql(url, STATUS, {"id": launched["backfillId"]})["partitionBackfillOrError"]
        if backfill["status"] not in ("REQUESTED", "CANCELING", "FAILING"):
            break
        time.sleep(2)
    assert backfill["status"] in ("COMPLETED", "COMPLETED_SUCCESS"), backfill
    assert backfill["numPartitions"] == 6
    assert [r["status"] for r in backfill["runs"]] == ["SUCCESS"]  # single-run backfill policy

    with duckdb.connect(env["DEP_ARCHIVE_PATH"] .replace(".duckdb", ".snapshot.duckdb"), read_only=True) as conn:
        assert conn.execute("SELECT count(*) FROM raw_fetches").fetchall() == [(6,)]
        assert conn.execute("SELECT count(*) FROM dep_victims").fetchall() == [(31,)]
        assert conn.execute("SELECT count(DISTINCT day) FROM stix_bundles").fetchall() == [(6,)]

    # The UI shows the asset with the materialization's metadata and its job and schedule.
    page = render(f"{url}/assets/dep_announcements_raw", tmp_path)
    for text in ("dep_announcements_raw", "new_hashids", "known_hashids", "records_without_hashid", "dep_archive_job"):
        assert text in page, text
    checks = render(f"{url}/assets/dep_victims?view=checks", tmp_path)
    for text in ("hashid_unique_per_dataset", "every_raw_record_accounted_for", "quarantine_share_below_threshold"):
        assert text in checks, text
