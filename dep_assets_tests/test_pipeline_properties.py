"""Property test through the real pipeline functions (parse -> archive -> victims -> STIX) on DuckDB:
whatever DEP sends, nothing crashes and no record is lost."""

from __future__ import annotations

import gc
import json
import os
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


def _sample_responses() -> list:
    """The bundled sample's recorded responses of dataset ext, day by day."""
    from dep_assets.dep_client import RecordedSource
    from dep_assets_tests.conftest import SAMPLE_DIR

    source = RecordedSource(SAMPLE_DIR)
    return [source.fetch_day("ext", day) for day in source.available_days("ext")]


def _archive_sample(conn: duckdb.DuckDBPyConnection) -> list[date]:
    """Migrate `conn` and archive the sample in it; returns the sample's days."""
    migrate(conn)
    responses = _sample_responses()
    for response in responses:
        archive_response(conn, response)
    return [response.day for response in responses]


def _derive(batch_rows: int) -> tuple[list, list, list]:
    mapper = StixMapper()
    with duckdb.connect(":memory:") as conn:
        days = _archive_sample(conn)
        build_victims(conn, "ext", days, batch_rows=batch_rows)
        build_bundles(conn, "ext", days, mapper, mapper.fingerprint, batch_rows=batch_rows)
        columns = "* EXCLUDE (first_seen, last_seen)"
        return (
            conn.execute(f"SELECT {columns} FROM dep_victims ORDER BY hashid").fetchall(),
            conn.execute("SELECT * FROM dep_quarantine ORDER BY identity").fetchall(),
            conn.execute("SELECT * EXCLUDE (mapped_at) FROM stix_bundles ORDER BY hashid").fetchall(),
        )


def test_without_the_c_extensions_a_replay_gives_the_same_tables():
    """An install without a C compiler runs normalize_record and the Python mapper on every record:
    the same tables, row for row. (One batch, so it runs in the process where the extensions are
    blocked: a worker is forked from a forkserver that imported them.)"""
    import pickle
    import subprocess
    import sys
    from pathlib import Path

    script = (
        "import pickle, sys\n"
        "for name in ('normalize._fastnormalize', 'normalize._unquote', 'stix_mapping._fastmap'):\n"
        "    sys.modules['dep_assets.' + name] = None  # as if never built\n"
        "from dep_assets import transform\n"
        "from dep_assets.stix_mapping import StixMapper\n"
        "assert transform.compiled_paths() == dict.fromkeys(['normalize', 'url_decoding', 'stix_mapping'], False)\n"
        "assert transform._BATCH_NORMALIZER is None and StixMapper().batch_fields is None\n"
        "from dep_assets_tests.test_pipeline_properties import _derive\n"
        "if __name__ == '__main__':\n"
        "    sys.stdout.buffer.write(pickle.dumps(_derive(20_000)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, check=True, timeout=300,
        cwd=Path(__file__).resolve().parents[1],
    )  # fmt: skip
    assert pickle.loads(result.stdout) == _derive(20_000)


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
    mapper = StixMapper(options)
    with duckdb.connect(":memory:") as conn:
        build_victims(conn, "ext", _archive_sample(conn))
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


# ---------------------------------------------------------------------------------------------------
# The compiled batch normalizer (_fastnormalize.c) against the Python batch (normalize_record)
# ---------------------------------------------------------------------------------------------------

compiled_normalizer = pytest.mark.skipif(transform._BATCH_NORMALIZER is None, reason="the C extension is not built")
# Text that walks every branch of the fast paths: ASCII whitespace as str.strip/split see it (\x1c-\x1f
# included), non-ASCII spaces (the helpers' business), NULs, lone surrogates, case, bare hosts, URLs,
# links to repair, placeholders, escapes to decode.
edge_text = st.one_of(
    st.text(alphabet=st.sampled_from(" \t\n\x0b\x0c\r\x1c\x1f\x00\x85\xa0\u3000aZz09.-_/:%@[é東\ud800\U0001f600"), max_size=12),
    st.sampled_from([
        "", " N/A ", "none", "NONE", "Unknown", " unknown group ", "https//x.io/a", "http//x", "HTTPS//X", "https//",
        "acme.IT", " Acme.Com ", "http://[x]", "https://Sub.Acme.com:8443/p?q=1", "a b\tc", "100% 20%41%e2%82%ac",
        "Müller GmbH", "ＡＣＭＥ", "ﬁ", "\u0345",
    ]),
)  # fmt: skip
edge_values = st.one_of(st.none(), edge_text, edge_text, json_values)
# Records the compiled path takes whole (usable hashid and date, text or null, known keys only) ...
common_records = st.fixed_dictionaries(
    {
        "hashid": st.one_of(st.sampled_from(["ABC", " 0f0F ", "é", "a\x1cb"]), edge_text).filter(lambda t: t.strip()),
        "date": st.sampled_from(["2026-03-01", " 2026-03-02 ", "2026-03-01T10:00:00Z"]),
    },
    optional={
        **{name: st.none() | edge_text for name in FIELDS if name != "annDataTypes"},
        "annDataTypes": st.none() | st.lists(edge_text, max_size=4),
    },
)
edge_records = st.fixed_dictionaries(
    {
        "hashid": st.one_of(edge_text, st.sampled_from(["ABC", " 0f0F ", "\x1c", "é"]), json_values),
        "date": st.one_of(dates, st.sampled_from(["2026-03-01", " 2026-03-01\x1f"])),
    },
    optional={
        **{name: edge_values for name in FIELDS if name != "annDataTypes"},
        "annDataTypes": st.one_of(st.none(), st.lists(st.one_of(edge_text, json_values), max_size=4), json_values),
        "unknownField": json_values,
    },
)  # ... and records with anything in any field (most go to the reference, some on the way in).


def _batch_rows(items: list) -> dict[str, list]:
    """A batch of filed rows as `_normalize_batch` reads them, one per item."""
    seen = datetime(2026, 3, 2, tzinfo=UTC)
    return {
        "payload": [json.dumps(item) for item in items],
        "first_seen": [seen] * len(items),
        "last_seen": [seen] * len(items),
        "versions_seen": [i % 3 + 1 for i in range(len(items))],
        "fetch_id": [7] * len(items),
        "filed_day": [DAY] * len(items),
        "identity": [f"id-{i}" for i in range(len(items))],
        "hashid_key": [None] * len(items),
        "position": list(range(len(items))),
        "payload_sha256": [f"{i:064x}" for i in range(len(items))],
    }


def _both_batches(items: list, directory) -> tuple[tuple, tuple]:
    outcomes = []
    for name, run in (("c", transform._normalize_batch_compiled), ("p", transform._normalize_batch_python)):
        batch = run("ext", _batch_rows(items), str(directory / name))
        victims, quarantine = transform.take_batch(batch.victims), transform.take_batch(batch.quarantine)
        outcomes.append(
            (victims.schema, victims.to_pylist(), quarantine.to_pylist(), batch.victim_count, batch.placeholders,
             batch.reasons, batch.quarantine_lines)
        )  # fmt: skip
    return outcomes[0], outcomes[1]


@compiled_normalizer
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(items=st.lists(st.one_of(common_records, common_records, edge_records, json_values), min_size=1, max_size=6))
def test_a_compiled_normalize_batch_writes_the_rows_the_python_batch_writes(items, tmp_path):
    compiled, python = _both_batches(items, tmp_path)
    assert compiled == python


@compiled_normalizer
def test_the_compiled_batch_normalizes_the_samples_itself_and_like_the_reference(tmp_path):
    items = [raw.value for response in _sample_responses() for raw in response.records]
    compiled, python = _both_batches(items, tmp_path)
    assert compiled == python
    # Every record of every sample day (a re-dated one twice): victims or quarantined, none lost.
    assert compiled[3] + len(compiled[2]) == len(items) and compiled[3] >= 30 and len(compiled[2]) == 3
    # Most records take the compiled path: only the rest reach the reference.
    handed_over: list[int] = []
    rows = _batch_rows(items)
    columns = tuple([] for _ in transform.VICTIM_MODEL_FIELDS)
    kept: list[int] = []
    transform._BATCH_NORMALIZER.normalize(
        rows["payload"], "ext", rows["first_seen"], rows["last_seen"], rows["versions_seen"], rows["fetch_id"],
        columns, kept, lambda index, record: handed_over.append(index),
    )  # fmt: skip
    assert len(kept) + len(handed_over) == len(items) and len(kept) >= len(items) // 2
    assert all(len(column) == len(kept) for column in columns)
    assert sorted(kept + handed_over) == list(range(len(items)))


def test_the_batch_normalizer_is_only_given_for_the_columns_it_fills():
    from dep_assets.normalize import batch_normalizer

    assert batch_normalizer(tuple(reversed(transform.VICTIM_MODEL_FIELDS))) is None
    if transform._BATCH_NORMALIZER is not None:
        assert batch_normalizer(transform.VICTIM_MODEL_FIELDS) is not None


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


def _what_a_worker_has(_task: int) -> dict:
    import sys

    return {
        "main": getattr(sys.modules["__main__"], "__file__", None),
        "preloaded": {name: name in sys.modules for name in ("dep_assets.transform", "pandas")},
    }


def test_workers_start_from_the_forkserver_without_running_the_callers_main_again(tmp_path):
    """A worker is a fork of the forkserver, which imported the transform code and pandas once: it
    neither re-runs the caller's main script (in a Dagster step process, the whole `dagster` CLI)
    nor imports anything more before its first task."""
    import subprocess
    import sys
    from pathlib import Path

    log = tmp_path / "main-ran.log"
    script = tmp_path / "caller.py"
    script.write_text(
        "import json, sys\n"
        f"open({str(log)!r}, 'a').write(__name__ + '\\n')  # at every run of this script\n"
        "from dep_assets import transform\n"
        "from dep_assets_tests.test_pipeline_properties import _what_a_worker_has\n"
        "if __name__ == '__main__':\n"
        "    print(json.dumps(list(transform.InOrder(_what_a_worker_has, ((i,) for i in range(4)), workers=2))))\n"
    )
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, check=True, timeout=120,
        cwd=Path(__file__).resolve().parents[1], env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )  # fmt: skip
    reports = json.loads(result.stdout)
    assert log.read_text() == "__main__\n"  # the caller ran it; no worker did (as __mp_main__)
    assert len(reports) == 4 and all(r["main"] != str(script) for r in reports)
    assert all(r["preloaded"] == {"dep_assets.transform": True, "pandas": True} for r in reports)


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
