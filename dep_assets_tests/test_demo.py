"""`make demo`'s command on a fresh instance and archive: the whole flow on the bundled sample."""

from __future__ import annotations

import subprocess
import sys

import duckdb

from dep_assets_tests.conftest import ROOT, clean_env


def test_demo_runs_every_asset_on_the_sample_and_prints_the_archive(tmp_path):
    env = clean_env(DAGSTER_HOME=str(tmp_path / "home"), DEP_ARCHIVE_PATH=str(tmp_path / "archive.duckdb"))
    completed = subprocess.run(
        [sys.executable, "-m", "dep_assets.cli", "demo"],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "materializing dep_announcements_raw, dep_victims, dep_stix_bundles for ext|2026-03-01...ext|2026-03-06" in completed.stdout
    assert "Quarantined records" in completed.stdout
    assert (tmp_path / "home" / "dagster.yaml").exists()
    with duckdb.connect(str(tmp_path / "archive.snapshot.duckdb"), read_only=True) as conn:
        assert conn.execute("SELECT dataset, count(*) FROM raw_fetches GROUP BY 1 ORDER BY 1").fetchall() == [("ext", 6), ("prv", 3)]
        assert conn.execute("SELECT count(*) FROM dep_victims").fetchall() == [(34,)]
        assert conn.execute("SELECT count(*) FROM dep_quarantine").fetchall() == [(3,)]
        assert conn.execute("SELECT count(*) FROM stix_bundles").fetchall() == [(33,)]
