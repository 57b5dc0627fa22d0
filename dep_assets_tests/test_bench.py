"""`make bench` on a small archive: it runs the replay as the assets do, accounts for every record, and
prints the figures it promises (the speed and memory targets themselves are its business, not a test's)."""

from __future__ import annotations

import json
import subprocess
import sys


def test_the_bench_prints_consistent_figures_from_a_timed_and_a_sampled_replay(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "dep_assets.bench", "--records", "3000", "--days", "12", "--workdir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert (figures["records"], figures["days"]) == (3000, 12)
    # Every announcement of the synthetic archive became a victim or was quarantined, and every victim
    # a bundle or a skipped placeholder (the bench refuses to print otherwise); the quirks are there.
    assert figures["victims"] + figures["quarantined"] == figures["announcements"] > 2900
    assert 0 < figures["quarantined"] < 100 and 0 < figures["bundles"] <= figures["victims"]
    assert figures["records_per_s"] == round(3000 / (figures["victims_s"] + figures["stix_s"]), 1)
    # Memory from the sampled run: all processes together, below the per-process upper bound.
    assert 100 < figures["peak_rss_mb"] <= figures["peak_rss_upper_bound_mb"]
    assert figures["peak_rss_mb_2x"] > 100 and figures["records_per_s_2x"] > 0
    assert isinstance(figures["meets_targets"], bool) and isinstance(figures["memory_flat"], bool)
    assert "history x2 (6,000 records, 24 days)" in result.stdout
    assert set(figures["compiled_paths"]) == {"normalize", "url_decoding", "stix_mapping"}
    assert "compiled paths: normalize " in result.stdout
    assert "(timed, then with the memory sampler)" in result.stderr
    # Two replays of each history, on copies of the same raw archive; the workdir keeps them.
    assert sorted(p.name for p in tmp_path.glob("*.duckdb")) == [
        "bench-2x-memory.duckdb", "bench-2x.duckdb", "bench-memory.duckdb", "bench.duckdb"
    ]  # fmt: skip
