"""`dep_announcements_raw` end to end: real Dagster runs against the DEP and Cognito stand-ins,
checked with SQL on the real DuckDB file."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from dep_assets.archive import LATEST_VERSION, Archive
from dep_assets.settings import Settings
from dep_assets_tests.conftest import (
    API_KEY,
    ROOT,
    clean_env,
    create_archive,
    failure_text,
    materialize,
    query,
    run_dagster,
    sample_records,
)


def test_archive_holds_each_record_byte_identical_to_what_dep_sent(instance, use_env, served_sample):
    materialize(instance, "ext|2026-03-01")
    materialize(instance, "ext|2026-03-03")

    served = {entry["ts"]: entry for entry in served_sample.served}
    assert set(served) == {"2026-03-01", "2026-03-03"}
    fetches = query(
        use_env,
        "SELECT day, window_start, window_end, http_status, record_count, body_sha256, body_bytes, source "
        "FROM raw_fetches ORDER BY day",
    )
    for day, window_start, window_end, status, count, body_sha, body_bytes, source in fetches:
        entry = served[day.isoformat()]
        assert (window_start, window_end) == (day, date.fromordinal(day.toordinal() + 1))
        assert entry["te"] == window_end.isoformat()
        assert status == 200 and source == "api"
        assert count == len(entry["items"]) and body_bytes == len(entry["body"])
        assert body_sha == hashlib.sha256(entry["body"]).hexdigest()
        payloads = query(
            use_env,
            "SELECT payload, payload_sha256 FROM raw_announcements WHERE day = ? ORDER BY position",
            [day],
        )
        assert [p.encode("utf-8") for p, _ in payloads] == entry["items"]
        assert [s for _, s in payloads] == [hashlib.sha256(i).hexdigest() for i in entry["items"]]

    # Hashids and dates are stored as found: padded upper-case stays padded upper-case.
    found = query(use_env, "SELECT hashid, hashid_key FROM raw_records WHERE hashid LIKE '  %'")
    assert ("  61026AB80CC93F3F43985234DCDFC7516973D33918B81A4784359EBC92F1E208 ",
            "61026ab80cc93f3f43985234dcdfc7516973d33918b81a4784359ebc92f1e208") in found


def test_materialization_metadata_counts_new_and_known_hashids(instance, use_env, served_sample):
    first = materialize(instance, "ext|2026-03-01")
    second = materialize(instance, "ext|2026-03-01")

    def metadata(result) -> dict:
        [event] = result.get_asset_materialization_events()
        return {k: v.value for k, v in event.materialization.metadata.items()}

    one, two = metadata(first), metadata(second)
    assert one["records"] == two["records"] == 8
    assert (one["new_hashids"], one["known_hashids"]) == (7, 0)  # one record has a null hashid
    assert (two["new_hashids"], two["known_hashids"]) == (0, 7)
    assert one["new_payloads"] == 8 and two["new_payloads"] == 0
    assert one["records_without_hashid"] == 1
    assert one["bytes"] == len(served_sample.served[0]["body"])
    assert one["preview"].records[0].data["victim"] == "Müller AG"

    # A re-fetch is recorded, but identical payloads are stored once.
    assert query(use_env, "SELECT count(*) FROM raw_fetches") == [(2,)]
    assert query(use_env, "SELECT count(*) FROM raw_records") == [(16,)]
    assert query(use_env, "SELECT count(*) FROM raw_payloads") == [(8,)]


def test_nothing_is_dropped_odd_records_and_unknown_fields_are_archived(instance, use_env, dep_server):
    odd = [
        {"hashid": None, "date": "2026-03-02", "victim": "No Hash"},
        {"hashid": "ab" * 32, "victim": "No Date"},
        "n/a",
        42,
        None,
        ["nested"],
        {"hashid": "cd" * 32, "date": "2026-03-02", "brandNewField": {"x": [1, 2]}, "victim": "Ünïcödé \u2028"},
    ]
    dep_server.add_records("ext", odd, serve_on="2026-03-02")
    materialize(instance, "ext|2026-03-02")
    rows = query(
        use_env,
        "SELECT position, is_object, hashid, record_date, hashid_key, record_day, payload "
        "FROM raw_announcements ORDER BY position",
    )
    assert len(rows) == len(odd)
    assert [json.loads(r[6]) for r in rows] == odd
    assert [r[1] for r in rows] == [True, True, False, False, False, False, True]
    assert rows[0][2] == "null" and rows[0][4] is None  # a JSON null hashid, as found
    assert rows[1][3] is None and rows[1][5] is None  # no date at all
    assert rows[6][5] == date(2026, 3, 2)


@pytest.mark.parametrize("te_inclusive", [False, True], ids=["te-exclusive", "te-inclusive"])
def test_every_announcement_is_captured_under_both_te_readings(instance, use_env, served_sample, te_inclusive):
    served_sample.te_inclusive = te_inclusive
    materialize(instance, "ext|2026-03-01", "ext|2026-03-06")

    all_hashids = {
        r["hashid"].strip().lower()
        for r in sample_records("ext")
        if isinstance(r, dict) and isinstance(r.get("hashid"), str)
    }
    archived = {h for (h,) in query(use_env, "SELECT DISTINCT hashid_key FROM raw_records WHERE hashid_key IS NOT NULL")}
    assert archived == all_hashids
    # The 2026-03-04 announcement is in the 03-03 fetch only when te is inclusive; downstream
    # de-duplicates by hashid, so it is never counted twice.
    in_0303 = query(
        use_env, "SELECT count(*) FROM raw_records WHERE day = DATE '2026-03-03' AND record_day = DATE '2026-03-04'"
    )
    assert in_0303 == [(1 if te_inclusive else 0,)]
    per_key = query(
        use_env,
        "SELECT max(n) FROM (SELECT hashid_key, record_day, count(DISTINCT payload_sha256) AS n "
        "FROM raw_records WHERE hashid_key IS NOT NULL GROUP BY ALL)",
    )
    assert per_key == [(1,)]  # the same version of an announcement is one payload, however often fetched


@pytest.mark.parametrize(
    ("fault", "options"),
    [
        ("401", {}),
        ("429", {"retry_after": 1}),
        ("500", {}),
        ("503", {}),
        ("truncated", {"declare_length": True}),
        ("close", {}),
    ],
)
def test_transient_faults_are_retried_and_lose_nothing(instance, use_env, served_sample, fault, options):
    served_sample.inject(fault, **options)
    materialize(instance, "ext|2026-03-02")
    [entry] = [e for e in served_sample.served if e["status"] == 200]
    payloads = query(use_env, "SELECT payload FROM raw_announcements ORDER BY position")
    assert [p.encode() for (p,) in payloads] == entry["items"]
    assert query(use_env, "SELECT count(*) FROM raw_fetches") == [(1,)]


@pytest.mark.parametrize(
    ("fault", "options", "reason"),
    [
        ("500", {"times": 3}, "HTTP 500"),  # as many as DEP_MAX_ATTEMPTS
        ("non_array", {"body": b'{"items": []}'}, "not a JSON array"),
        ("not_json", {}, "not a JSON array"),
        ("truncated", {"declare_length": False}, "not valid JSON"),
    ],
)
def test_a_failed_fetch_writes_nothing_and_a_rerun_fixes_it(instance, use_env, served_sample, fault, options, reason):
    create_archive(use_env)
    times = options.pop("times", 1)
    served_sample.inject(fault, times=times, **options)
    result = materialize(instance, "ext|2026-03-02", ok=False)
    message = failure_text(result)
    assert "ext|2026-03-02" in message and reason in message
    assert query(use_env, "SELECT count(*) FROM raw_fetches") == [(0,)]
    assert query(use_env, "SELECT count(*) FROM raw_records") == [(0,)]

    materialize(instance, "ext|2026-03-02")
    assert query(use_env, "SELECT count(*) FROM raw_records") == [(8,)]


def test_a_fetch_without_credentials_names_the_missing_variables(instance, use_env, monkeypatch, served_sample):
    monkeypatch.delenv("DEP_PASSWORD")
    monkeypatch.delenv("DEP_API_KEY")
    result = materialize(instance, "ext|2026-03-01", ok=False)
    message = failure_text(result)
    assert "DEP_PASSWORD" in message and "DEP_API_KEY" in message and "DEP_USERNAME" not in message
    assert served_sample.request_count == 0


def test_wrong_api_key_fails_clearly(instance, use_env, monkeypatch, served_sample):
    monkeypatch.setenv("DEP_API_KEY", "not-the-key")
    result = materialize(instance, "ext|2026-03-01", ok=False)
    assert "403" in failure_text(result) and "DEP_API_KEY" in failure_text(result)


def test_no_secret_reaches_logs_events_run_config_or_archive(instance, use_env, served_sample, monkeypatch):
    served_sample.inject("401")  # forces a second login, so two tokens are in play
    materialize(instance, "ext|2026-03-01")
    monkeypatch.setenv("DEP_API_KEY", API_KEY + "-wrong")
    materialize(instance, "ext|2026-03-02", ok=False)  # a failure's messages must be clean too

    tokens = {e["headers"].get("Authorization") for e in served_sample.requests} - {None}
    assert len(tokens) >= 2
    secrets = {use_env["DEP_PASSWORD"], API_KEY, *tokens}

    haystacks = []
    for run in instance.get_runs():
        haystacks.append(json.dumps(run.run_config, default=str))
        haystacks.append(repr(run.tags))
        for entry in instance.all_logs(run.run_id):
            haystacks.append(entry.message or "")
            haystacks.append(repr(entry.dagster_event))
    with duckdb.connect(use_env["DEP_ARCHIVE_PATH"], read_only=True) as conn:
        for (table,) in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
        ).fetchall():
            haystacks.append(repr(conn.execute(f'SELECT * FROM "{table}"').fetchall()))
    compute_logs = Path(use_env["DAGSTER_HOME"]) / "storage"
    haystacks += [p.read_text(errors="replace") for p in compute_logs.rglob("*") if p.is_file() and p.suffix in {".out", ".err", ".log", ""}]
    text = "\n".join(haystacks)
    assert "archived ext|2026-03-01" in text  # the haystack is real
    for secret in secrets:
        assert secret not in text


def test_schema_is_created_by_code_and_migrations_are_idempotent(tmp_path):
    archive = Archive(tmp_path / "a.duckdb")
    with archive.writer():
        pass
    with archive.writer():
        pass
    with duckdb.connect(str(tmp_path / "a.duckdb"), read_only=True) as conn:
        versions = conn.execute("SELECT version FROM schema_version ORDER BY version").fetchall()
    assert versions == [(v,) for v in range(1, LATEST_VERSION + 1)]


def test_cli_single_run_backfill_over_a_range_is_one_run(use_env, served_sample):
    completed = run_dagster(
        [
            "asset", "materialize", "-m", "dep_assets.definitions",
            "--select", "dep_announcements_raw",
            "--partition-range", "ext|2026-03-01...ext|2026-03-06",
        ],
        use_env,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    with dg.DagsterInstance.get() as instance:
        runs = instance.get_runs()
    assert len(runs) == 1
    assert query(use_env, "SELECT count(*), count(DISTINCT day) FROM raw_fetches") == [(6, 6)]
    for secret in (use_env["DEP_PASSWORD"], API_KEY):
        assert secret not in completed.stdout + completed.stderr


def _analyst(database: str, hold_seconds: float) -> subprocess.Popen:
    """Another process holding a read-only DuckDB session, like an analyst's shell."""
    code = (
        "import duckdb, sys, time\n"
        f"conn = duckdb.connect({database!r}, read_only=True)\n"
        "conn.execute('SELECT count(*) FROM raw_fetches').fetchall()\n"
        "print('open', flush=True)\n"
        f"time.sleep({hold_seconds})\n"
        "conn.close()\n"
    )
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "open"
    return process


def test_concurrent_runs_and_an_open_analyst_session_all_succeed(use_env, served_sample):
    settings = Settings.from_env()
    first = run_dagster(
        ["asset", "materialize", "-m", "dep_assets.definitions", "--select", "dep_announcements_raw",
         "--partition", "ext|2026-03-01"],
        use_env,
    )
    assert first.returncode == 0, first.stderr[-3000:]
    assert settings.snapshot_path.exists()

    # An analyst holds the snapshot for the whole time; two runs of different partitions start together.
    analyst = _analyst(str(settings.snapshot_path), hold_seconds=30)
    try:
        commands = [
            [sys.executable, "-m", "dagster", "asset", "materialize", "-m", "dep_assets.definitions",
             "--select", "dep_announcements_raw", "--partition-range", partition_range]
            for partition_range in ("ext|2026-03-02...ext|2026-03-04", "prv|2026-03-01...prv|2026-03-03")
        ]
        runs = [
            subprocess.Popen(c, env=clean_env(**use_env), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for c in commands
        ]
        outputs = [r.communicate(timeout=240) for r in runs]
        for run, (_, err) in zip(runs, outputs, strict=True):
            assert run.returncode == 0, err[-3000:]
        assert analyst.poll() is None  # the analyst's session was never disturbed
    finally:
        analyst.kill()
        analyst.wait()
    assert query(use_env, "SELECT dataset, count(*) FROM raw_fetches GROUP BY ALL ORDER BY ALL") == [("ext", 4), ("prv", 3)]


def test_a_run_waits_for_an_analyst_holding_the_archive_itself(use_env, served_sample):
    create_archive(use_env)
    analyst = _analyst(use_env["DEP_ARCHIVE_PATH"], hold_seconds=3)
    started = time.monotonic()
    completed = run_dagster(
        ["asset", "materialize", "-m", "dep_assets.definitions", "--select", "dep_announcements_raw",
         "--partition", "ext|2026-03-01"],
        use_env,
    )
    analyst.wait()
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert time.monotonic() - started >= 2.5
    assert query(use_env, "SELECT count(*) FROM raw_fetches") == [(1,)]

