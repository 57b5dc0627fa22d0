"""Property test through the real pipeline functions (parse -> archive -> victims -> STIX) on DuckDB:
whatever DEP sends, nothing crashes and no record is lost."""

from __future__ import annotations

import gc
import json
import tempfile
from datetime import UTC, date, datetime

import duckdb
import pyarrow as pa
import pytest
import stix2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dep_assets import transform
from dep_assets.archive import archive_response, derived, migrate
from dep_assets.archive.derived import _day_windows, build_bundles, build_victims
from dep_assets.dep_client.client import DepResponse, parse_records
from dep_assets.stix_mapping import MappingOptions, StixMapper

DAY = date(2026, 3, 1)
FIELDS = (
    "victim", "victimDomain", "site", "sector", "actor", "country", "revenue", "amount", "naics", "annLink",
    "annTitle", "annDescription", "annDataTypes", "victimCC", "victimCity", "victimState", "victimAddress",
)  # fmt: skip

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=6,
)
hashids = st.one_of(
    st.text(alphabet="0123456789abcdefABCDEF ", min_size=1, max_size=70), json_values
)
dates = st.one_of(st.sampled_from(["2026-03-01", " 2026-03-02 ", "2026-03-01T10:00:00Z", "2026-13-45", ""]), json_values)
records = st.fixed_dictionaries(
    {"hashid": hashids, "date": dates},
    optional={name: json_values for name in FIELDS},
)
bodies = st.lists(st.one_of(records, records, json_values), min_size=1, max_size=8).filter(
    lambda items: any(isinstance(i, dict) for i in items)  # an array with no object is refused upstream
)


def _identity_count(conn: duckdb.DuckDBPyConnection) -> int:
    return conn.execute(
        "SELECT count(DISTINCT coalesce(hashid_key, 'sha256:' || payload_sha256)) FROM raw_records"
    ).fetchall()[0][0]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(items=bodies, option_flags=st.lists(st.booleans(), min_size=4, max_size=4))
def test_any_body_is_archived_whole_and_every_record_is_accounted_for(items, option_flags):
    body = json.dumps(items, ensure_ascii=False).encode()
    response = DepResponse(
        dataset="ext", day=DAY, window_start=DAY, window_end=date(2026, 3, 2), source="api",
        location="test", requested_at=datetime.now(UTC), http_status=200, body=body,
        records=parse_records(body, context="property test"), duration_seconds=0.0,
    )  # fmt: skip
    options = MappingOptions(
        primary_object="report" if option_flags[0] else "incident",
        tlp="amber" if option_flags[1] else None,
        create_intrusion_sets=option_flags[2],
        create_country_locations=option_flags[3],
        create_sector_identities=option_flags[3],
        skip_empty_victim=not option_flags[2],
    )
    mapper = StixMapper(options)
    with duckdb.connect(":memory:") as conn:
        migrate(conn)
        archive_response(conn, response)
        assert conn.execute("SELECT count(*) FROM raw_records").fetchall() == [(len(items),)]
        stored = [json.loads(p) for (p,) in conn.execute("SELECT payload FROM raw_announcements ORDER BY position").fetchall()]
        assert stored == items

        days = [d for (d,) in conn.execute("SELECT DISTINCT coalesce(record_day, day) FROM raw_records").fetchall()]
        outcome = build_victims(conn, "ext", days)
        assert outcome.victims + outcome.quarantined == _identity_count(conn)

        bundles = build_bundles(conn, "ext", days, mapper, mapper.fingerprint)
        assert bundles.bundles + bundles.skipped == outcome.victims
        for (text,) in conn.execute("SELECT bundle FROM stix_bundles").fetchall():
            stix2.parse(text, allow_custom=True)


def _derive(batch_rows: int) -> tuple[list, list, list]:
    from dep_assets.dep_client import RecordedSource
    from dep_assets_tests.conftest import SAMPLE_DIR

    source = RecordedSource(SAMPLE_DIR)
    mapper = StixMapper()
    with duckdb.connect(":memory:") as conn:
        migrate(conn)
        for day in source.available_days("ext"):
            archive_response(conn, source.fetch_day("ext", day))
        days = source.available_days("ext")
        build_victims(conn, "ext", days, batch_rows=batch_rows)
        build_bundles(conn, "ext", days, mapper, mapper.fingerprint, batch_rows=batch_rows)
        columns = "* EXCLUDE (first_seen, last_seen)"
        return (
            conn.execute(f"SELECT {columns} FROM dep_victims ORDER BY hashid").fetchall(),
            conn.execute("SELECT * FROM dep_quarantine ORDER BY identity").fetchall(),
            conn.execute("SELECT * EXCLUDE (mapped_at) FROM stix_bundles ORDER BY hashid").fetchall(),
        )


def test_small_batches_give_exactly_the_same_tables(tmp_path, monkeypatch):
    one_batch = _derive(20_000)
    assert len(one_batch[0]) == 31 and len(one_batch[1]) == 3 and len(one_batch[2]) == 30
    # Many windows of days, many batches, in worker processes, handed over as files in a scratch
    # directory ...
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(derived, "WINDOW_ROWS", 7)
    assert _derive(3) == one_batch
    # ... which is gone afterwards, with every batch file in it. (multiprocessing's own `pymp-*`
    # directory holds the forkserver's socket, for as long as this process lives.)
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith("pymp-")] == []
    assert list(tmp_path.rglob("*.arrow*")) == []


@pytest.mark.skipif(StixMapper().batch_fields is None, reason="the C extension is not built")
@pytest.mark.parametrize(
    "options",
    [MappingOptions(), MappingOptions(tlp="red", dataset_label=True, skip_empty_victim=False)],
    ids=["defaults", "tlp-red-dataset-label-no-skip"],
)
def test_a_compiled_batch_writes_the_rows_the_python_batch_writes(tmp_path, options):
    """The STIX stage's compiled batch (the mapper's columns only, to C and back as Arrow buffers)
    against the Victim-by-Victim Python batch, on the sample's victims as DuckDB streams them."""
    from dep_assets.dep_client import RecordedSource
    from dep_assets_tests.conftest import SAMPLE_DIR

    source = RecordedSource(SAMPLE_DIR)
    mapper = StixMapper(options)
    with duckdb.connect(":memory:") as conn:
        migrate(conn)
        days = source.available_days("ext")
        for day in days:
            archive_response(conn, source.fetch_day("ext", day))
        build_victims(conn, "ext", days)
        query = "SELECT {} FROM dep_victims ORDER BY announcement_date, hashid"
        narrow = conn.sql(query.format(", ".join(mapper.batch_fields))).to_arrow_table()
        wide = conn.sql(query.format(", ".join(transform.VICTIM_MODEL_FIELDS))).to_arrow_table()
    compiled = transform._map_batch_compiled(mapper, narrow, str(tmp_path / "c"))
    python = transform._map_batch_python(mapper, wide, str(tmp_path / "p"))
    assert (compiled.bundle_count, compiled.skipped, compiled.objects) == (
        python.bundle_count, python.skipped, python.objects
    )  # fmt: skip
    assert compiled.bundle_count >= 28 and compiled.objects > 5 * compiled.bundle_count
    assert compiled.skipped == (1 if options.skip_empty_victim else 0)  # the sample's placeholder victim
    written, expected = transform.take_batch(compiled.bundles), transform.take_batch(python.bundles)
    assert written.schema == expected.schema == transform.BUNDLE_SCHEMA
    assert written.to_pylist() == expected.to_pylist()


def _pid_and_niceness(_task: int) -> tuple[int, int]:
    import os

    return os.getpid(), os.nice(0)


def test_workers_run_below_the_process_that_writes_their_batches():
    import os

    results = list(transform.InOrder(_pid_and_niceness, ((i,) for i in range(6)), workers=2))
    assert {pid for pid, _ in results} - {os.getpid()}  # in worker processes ...
    expected = min(os.nice(0) + transform.WORKER_NICENESS, 19)
    assert {niceness for _, niceness in results} == {expected}  # ... each WORKER_NICENESS lower
    assert os.nice(0) < expected  # the caller keeps its own


def test_a_batch_pauses_the_cyclic_collector_and_always_gives_it_back(tmp_path):
    seen = []

    def watched(*_args, **_kwargs):
        seen.append(gc.isenabled())
        raise RuntimeError("stop here")

    rows = pa.table(
        {"payload": ['{"hashid": "a"}'], "first_seen": [None], "last_seen": [None], "versions_seen": [1], "fetch_id": [1]}
    )
    assert gc.isenabled()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(transform, "normalize_record", watched)
        with pytest.raises(RuntimeError, match="stop here"):
            transform.normalize_batch("ext", transform.put_batch(rows, str(tmp_path / "batch.arrow")))
    assert seen == [False]  # off while the batch ran ...
    assert gc.isenabled()  # ... and back on after, even when the batch failed
    gc.disable()
    try:
        with transform._gc_paused():
            pass
        assert not gc.isenabled()  # a caller that had it off keeps it off
    finally:
        gc.enable()


def test_rows_stream_in_windows_of_whole_days_in_day_order():
    days = [date(2026, 3, d) for d in range(1, 7)]
    per_day = list(zip(days, [10, 10, 5, 40, 1, 1], strict=True))
    # At most 25 rows a window, a day never split, a day bigger than a window alone, nothing lost.
    assert list(_day_windows(per_day, 25)) == [days[0:3], days[3:4], days[4:6]]
    assert list(_day_windows(per_day, 20)) == [days[0:2], days[2:3], days[3:4], days[4:6]]
    assert list(_day_windows([], 25)) == []
