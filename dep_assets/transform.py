"""The per-record Python of the derived tables, on batches of rows, in worker processes.

`archive/derived.py` streams rows out of DuckDB as Arrow batches and writes results back; everything
between (JSON parsing, normalization, STIX mapping) happens here, one batch per call, in a pool of
processes when a run has more than one batch. Batches travel as Arrow IPC files in a scratch directory
(memory-mapped on reading: a pipe would copy every byte of ~400 MB of bundles per 100,000 records
several times) and come back in order, with a bounded number in flight: memory depends on the batch
size, not on the length of history, and the output is the same, row for row, whatever the number of
workers.

This module imports only pyarrow and the pure normalization and mapping packages (no DuckDB, no
Dagster), so a worker process starts in a fraction of a second and stays small. (pyarrow imports
pandas on its first conversion of Python values: the forkserver preloads it, see `_worker_context`.)
"""

from __future__ import annotations

import ctypes
import gc
import json
import multiprocessing
import multiprocessing.forkserver
import os
import sys
from array import array
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, fields
from hashlib import sha256
from operator import attrgetter

import pyarrow as pa

from dep_assets.normalize import Quarantined, Victim, batch_normalizer, normalize_record
from dep_assets.stix_mapping import MappingOptions, StixMapper, mapper_for

VICTIM_COLUMNS = (
    "dataset", "hashid", "announcement_date", "victim", "victim_normalized", "victim_is_placeholder",
    "victim_domain", "victim_domain_given", "site", "sector", "sector_given", "actor", "actor_given",
    "country", "country_given", "victim_country_code", "victim_city", "victim_state", "victim_address",
    "revenue", "amount", "naics", "data_types", "leak_link", "title", "description", "first_seen",
    "last_seen", "versions_seen", "fetch_id", "position", "payload_sha256", "extra_fields", "invalid_fields",
)  # fmt: skip
# The dep_victims columns a Victim is rebuilt from (position and payload_sha256 are the archive's).
VICTIM_MODEL_FIELDS = tuple(c for c in VICTIM_COLUMNS if c not in ("position", "payload_sha256"))
QUARANTINE_COLUMNS = (
    "dataset", "day", "identity", "hashid", "reason", "reason_code", "fetch_id", "position", "payload_sha256",
)  # fmt: skip
# stix_bundles rows as a batch returns them; the run adds dataset, mapping_version and mapped_at.
BUNDLE_SCHEMA = pa.schema(
    [
        ("day", pa.date32()),
        ("hashid", pa.string()),
        ("bundle_id", pa.string()),
        ("primary_id", pa.string()),
        ("bundle", pa.large_string()),  # ~20 MB a batch; int64 offsets, so no size can overflow them
        ("object_count", pa.int32()),
        ("sha256", pa.string()),
    ]
)

# Victim fields holding tuples (data_types, extra_fields, invalid_fields): lists in DuckDB.
_TUPLE_FIELDS = frozenset(f.name for f in fields(Victim) if str(f.type).startswith("tuple"))
# Victim(*values) is several times cheaper than Victim(**values); used only while the model's fields
# start with exactly these, in this order (checked here, once).
_VICTIM_POSITIONAL = [f.name for f in fields(Victim)][: len(VICTIM_MODEL_FIELDS)] == list(VICTIM_MODEL_FIELDS)
# The compiled batch normalizer, None where it is not built (then normalize_record does every record).
_BATCH_NORMALIZER = batch_normalizer(VICTIM_MODEL_FIELDS)


def compiled_paths() -> dict[str, bool]:
    """Which compiled paths this install runs. Each is built at install when a C compiler is there;
    without one its Python reference runs instead: the same rows, more slowly."""
    from urllib.parse import unquote

    from dep_assets.normalize import fields

    return {
        "normalize": _BATCH_NORMALIZER is not None,
        "url_decoding": fields.unquote is not unquote,
        "stix_mapping": mapper_for().batch_fields is not None,
    }


# ---------------------------------------------------------------------------------------------------
# dep_victims and dep_quarantine
# ---------------------------------------------------------------------------------------------------


@dataclass
class NormalizedBatch:
    victims: str  # Arrow IPC file of dep_victims rows
    quarantine: str  # Arrow IPC file of dep_quarantine rows
    victim_count: int
    placeholders: int
    reasons: dict[str, int]
    quarantine_lines: list[str]  # "partition, record, reason", one per quarantined record
    peak_rss_mb: float  # of the process that ran it


def normalize_batch(dataset: str, batch: str) -> NormalizedBatch:
    """Normalize one batch file of filed rows (the latest versions with their payloads); taken."""
    with _gc_paused():
        return _normalize_batch(dataset, batch)


def _normalize_batch(dataset: str, batch: str) -> NormalizedBatch:
    rows = _columns(take_batch(batch))
    if _BATCH_NORMALIZER is not None:
        return _normalize_batch_compiled(dataset, rows, batch)
    return _normalize_batch_python(dataset, rows, batch)


class _Quarantine:
    """The dep_quarantine rows of a batch, with the counts and lines the run reports."""

    def __init__(self, dataset: str, rows: dict[str, list]) -> None:
        self.dataset = dataset
        self.rows = rows
        self.columns: dict[str, list] = {name: [] for name in QUARANTINE_COLUMNS}
        self.reasons: dict[str, int] = {}
        self.lines: list[str] = []

    def add(self, index: int, result: Quarantined) -> None:
        rows, dataset = self.rows, self.dataset
        values = {
            "dataset": dataset,
            "day": rows["filed_day"][index],
            "identity": rows["identity"][index],
            "hashid": rows["hashid_key"][index],
            "reason": result.reason,
            "reason_code": result.code,
            "fetch_id": rows["fetch_id"][index],
            "position": rows["position"][index],
            "payload_sha256": rows["payload_sha256"][index],
        }
        for name, value in values.items():
            self.columns[name].append(value)
        self.reasons[result.code] = self.reasons.get(result.code, 0) + 1
        self.lines.append(
            f"partition {dataset}|{values['day']}, record fetch {values['fetch_id']} position "
            f"{values['position']} (hashid {values['hashid']!r}): {result.reason}"
        )

    def batch(
        self, batch: str, victims: dict[str, list], kept: list[int], count: int, placeholders: int
    ) -> NormalizedBatch:
        return NormalizedBatch(
            victims=put_batch(pa.table(_with_archive_columns(victims, kept, self.rows)), batch + ".victims"),
            quarantine=put_batch(pa.table(self.columns), batch + ".quarantine"),
            victim_count=count,
            placeholders=placeholders,
            reasons=self.reasons,
            quarantine_lines=self.lines,
            peak_rss_mb=own_peak_rss_mb(),
        )


def _normalize_batch_python(dataset: str, rows: dict[str, list], batch: str) -> NormalizedBatch:
    """`_normalize_batch` one `normalize_record` at a time (the reference for the compiled batch)."""
    victims: list[Victim] = []
    kept: list[int] = []  # each victim's row in the batch
    quarantine = _Quarantine(dataset, rows)
    placeholders = 0
    for index, (payload, first_seen, last_seen, versions_seen, fetch_id) in enumerate(
        zip(rows["payload"], rows["first_seen"], rows["last_seen"], rows["versions_seen"], rows["fetch_id"], strict=True)
    ):
        result = normalize_record(
            json.loads(payload),
            dataset=dataset,
            first_seen=first_seen,
            last_seen=last_seen,
            versions_seen=versions_seen,
            fetch_id=fetch_id,
        )
        if isinstance(result, Victim):
            victims.append(result)
            kept.append(index)
            placeholders += result.victim_is_placeholder
        else:
            quarantine.add(index, result)
    return quarantine.batch(batch, _victim_columns(victims), kept, len(victims), placeholders)


def _normalize_batch_compiled(dataset: str, rows: dict[str, list], batch: str) -> NormalizedBatch:
    """`_normalize_batch` with the compiled batch normalizer: common records go from their JSON
    text to the victims' columns in C; the others through `normalize_record`, in order. The same
    rows as the Python batch (tested), in about half its time."""
    columns: dict[str, list] = {name: [] for name in VICTIM_MODEL_FIELDS}
    kept: list[int] = []
    quarantine = _Quarantine(dataset, rows)

    def reference(index: int, record: object) -> None:
        result = normalize_record(
            record,
            dataset=dataset,
            first_seen=rows["first_seen"][index],
            last_seen=rows["last_seen"][index],
            versions_seen=rows["versions_seen"][index],
            fetch_id=rows["fetch_id"][index],
        )
        if isinstance(result, Victim):
            for name, column in columns.items():
                value = getattr(result, name)
                column.append(list(value) if name in _TUPLE_FIELDS else value)
            kept.append(index)
        else:
            quarantine.add(index, result)

    _BATCH_NORMALIZER.normalize(  # type: ignore[union-attr]
        rows["payload"], dataset, rows["first_seen"], rows["last_seen"], rows["versions_seen"], rows["fetch_id"],
        tuple(columns.values()), kept, reference,
    )  # fmt: skip
    return quarantine.batch(batch, columns, kept, len(kept), sum(columns["victim_is_placeholder"]))


def _victim_columns(victims: list[Victim]) -> dict[str, list]:
    """The Victims' fields by column (VICTIM_MODEL_FIELDS), tuples as lists."""
    columns: dict[str, list] = {}
    for name in VICTIM_MODEL_FIELDS:
        if name in _TUPLE_FIELDS:
            columns[name] = [list(v) for v in map(attrgetter(name), victims)]
        else:
            columns[name] = list(map(attrgetter(name), victims))
    return columns


def _with_archive_columns(victims: dict[str, list], kept: list[int], rows: dict[str, list]) -> dict[str, list]:
    """The `dep_victims` rows by column (VICTIM_COLUMNS): the victims' fields, and position and
    payload_sha256 of their rows (`kept`) in the batch."""
    return {
        name: [rows[name][i] for i in kept] if name in ("position", "payload_sha256") else victims[name]
        for name in VICTIM_COLUMNS
    }


# ---------------------------------------------------------------------------------------------------
# stix_bundles
# ---------------------------------------------------------------------------------------------------


@dataclass
class MappedBatch:
    bundles: str  # Arrow IPC file of stix_bundles rows (BUNDLE_SCHEMA)
    bundle_count: int
    skipped: int
    objects: int
    peak_rss_mb: float  # of the process that ran it


def map_batch(options: MappingOptions, batch: str) -> MappedBatch:
    """Map one batch file of dep_victims rows (VICTIM_MODEL_FIELDS) to bundles; taken."""
    with _gc_paused():
        return _map_batch(options, batch)


def _map_batch(options: MappingOptions, batch: str) -> MappedBatch:
    mapper = mapper_for(options)
    rows = take_batch(batch)
    if mapper.batch_fields is not None:
        return _map_batch_compiled(mapper, rows, batch)
    return _map_batch_python(mapper, rows, batch)


def _map_batch_python(mapper: StixMapper, rows: pa.Table, batch: str) -> MappedBatch:
    """`_map_batch` one Victim at a time: every option set (the reference for the compiled batch)."""
    days, hashids, bundle_ids, primary_ids, texts, counts, digests = columns = [[] for _ in BUNDLE_SCHEMA]
    skipped = 0
    for victim in _victims_from_columns(_columns(rows)):
        mapped = mapper.map_bundle(victim)
        if mapped is None:
            skipped += 1
            continue
        text = mapped.text
        days.append(victim.announcement_date)
        hashids.append(victim.hashid)
        bundle_ids.append(mapped.bundle_id)
        primary_ids.append(mapped.primary_id)
        texts.append(text)
        counts.append(mapped.object_count)
        digests.append(sha256(text.encode()).hexdigest())
    return MappedBatch(
        bundles=put_batch(
            pa.Table.from_arrays([pa.array(c, f.type) for c, f in zip(columns, BUNDLE_SCHEMA)], schema=BUNDLE_SCHEMA),
            batch + ".bundles",
        ),
        bundle_count=len(texts),
        skipped=skipped,
        objects=sum(counts),
        peak_rss_mb=own_peak_rss_mb(),
    )


def _map_batch_compiled(mapper: StixMapper, rows: pa.Table, batch: str) -> MappedBatch:
    """`_map_batch` for options the compiled mapper serves: the batch's columns go to C as they are
    (no Victim objects), and the bundles, ids and digests come back as Arrow buffers (no str per
    bundle): a third of the Python loop's time. Byte for byte the same rows (tested)."""
    (kept, offsets, text, bundle_ids, primary_ids, digests, counts) = mapper.map_columns(
        tuple(_python_values(rows.column(name)) for name in mapper.batch_fields)  # type: ignore[union-attr]
    )
    count = len(kept) // 4
    kept_rows = pa.Array.from_buffers(pa.int32(), count, [None, pa.py_buffer(kept)])
    table = pa.Table.from_arrays(
        [
            rows.column("announcement_date").take(kept_rows).cast(pa.date32()),
            rows.column("hashid").take(kept_rows).cast(pa.string()),
            _fixed_width_strings(bundle_ids, 44, count),
            _fixed_width_strings(primary_ids, 46, count),
            pa.Array.from_buffers(pa.large_string(), count, [None, pa.py_buffer(offsets), pa.py_buffer(text)]),
            pa.Array.from_buffers(pa.int32(), count, [None, pa.py_buffer(counts)]),
            _fixed_width_strings(digests, 64, count),
        ],
        schema=BUNDLE_SCHEMA,
    )
    table.validate()
    return MappedBatch(
        bundles=put_batch(table, batch + ".bundles"),
        bundle_count=count,
        skipped=rows.num_rows - count,
        objects=sum(memoryview(counts).cast("i")),
        peak_rss_mb=own_peak_rss_mb(),
    )


def _fixed_width_strings(data: bytes, width: int, count: int) -> pa.Array:
    """A string array of `count` values of `width` ASCII bytes each, laid end to end in `data`."""
    # Offsets through the array module: no Python-to-Arrow conversion, which imports pandas (see
    # _worker_context); the compiled STIX batch then needs none.
    offsets = array("i", range(0, (count + 1) * width, width))
    return pa.Array.from_buffers(pa.string(), count, [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def _victims_from_columns(rows: dict[str, list]) -> Iterator[Victim]:
    """The Victims of a batch of `dep_victims` rows given by column."""
    columns = []
    for name in VICTIM_MODEL_FIELDS:
        values = rows[name]
        if name in _TUPLE_FIELDS:
            values = [tuple(v or ()) for v in values]
        columns.append(values)
    if _VICTIM_POSITIONAL:
        for values in zip(*columns, strict=True):
            yield Victim(*values)
    else:
        for values in zip(*columns, strict=True):
            yield Victim(**dict(zip(VICTIM_MODEL_FIELDS, values, strict=True)))


# ---------------------------------------------------------------------------------------------------
# Worker processes
# ---------------------------------------------------------------------------------------------------


@contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a batch runs. A batch makes a few hundred thousand
    short-lived objects (parsed payloads, column lists, Victims) and no reference cycles, so the
    collector would only walk them again and again: about a tenth of the time of a batch, measured.
    Anything cyclic it did leave is collected as usual once the collector is back on."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def own_peak_rss_mb(pid: int | str = "self") -> float:
    """This process's (or `pid`'s) own high-water RSS (VmHWM), 0 where /proc is not available or the
    process is gone. Unlike ru_maxrss it does not include what a spawned worker briefly shared with its
    parent before exec."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class InOrder:
    """`fn(*task)` for every task, results in task order; in worker processes when there is more
    than one task and `workers` allows it (a daily run, one batch, stays in the calling process).

    At most two tasks per worker are in flight, so memory stays bounded whatever the number of tasks.
    Workers are forks of a `forkserver` (see `_worker_context`), never of the calling process, which
    has DuckDB threads running. As with `spawn`, a script that calls this needs the
    `if __name__ == "__main__":` guard (Dagster's processes have it).
    `workers_used` tells, once iteration has started, how many processes ran the tasks (0: inline).
    """

    def __init__(self, fn: Callable, tasks: Iterable[tuple], workers: int | None = None) -> None:
        self.fn = fn
        self.tasks = iter(tasks)
        self.wanted = default_workers() if workers is None else workers
        self.workers_used = 0

    def __iter__(self) -> Iterator:
        first = next(self.tasks, None)
        second = next(self.tasks, None) if first is not None else None
        if second is None or self.wanted <= 1:
            for task in (t for t in (first, second) if t is not None):
                yield self.fn(*task)
            for task in self.tasks:
                yield self.fn(*task)
            return
        self.workers_used = self.wanted
        with ProcessPoolExecutor(
            max_workers=self.wanted, mp_context=_worker_context(), initializer=_start_worker
        ) as pool:
            pending: deque = deque(pool.submit(self.fn, *task) for task in (first, second))
            for task in self.tasks:
                pending.append(pool.submit(self.fn, *task))
                if len(pending) > 2 * self.wanted:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()


def prestart_workers(workers: int | None = None) -> None:
    """Start the forkserver now, when a run may use worker processes: its imports (~0.3 s) then
    overlap the archive's first queries instead of holding up the first batch."""
    if (default_workers() if workers is None else workers) > 1 and _worker_context().get_start_method() == "forkserver":
        multiprocessing.forkserver.ensure_running()


# What the forkserver imports once, for every worker forked from it: this module, and pandas, which
# pyarrow imports (if installed) on its first conversion of Python values to Arrow, as every
# normalize batch makes: once in the forkserver instead of ~0.3 s of CPU in each worker of each stage
# (`make bench`: ~4% faster, ~25 MB more memory in all).
_FORKSERVER_PRELOAD = [__name__, "pandas"]


def _worker_context() -> multiprocessing.context.BaseContext:
    """Where workers come from. `forkserver`: one fresh process (no DuckDB threads, nothing of the
    caller's) imports this module once, and every worker after it is a fork of that process, ready in
    milliseconds; a `spawn`ed worker is a new interpreter importing pyarrow, ~0.2 s of CPU each, paid
    by every worker of every stage. `spawn` where there is no forkserver (Windows)."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    multiprocessing.get_context("forkserver").set_forkserver_preload(_FORKSERVER_PRELOAD)
    return _WORKER_CONTEXT if _WORKER_CONTEXT is not None else multiprocessing.get_context("forkserver")


# The forkserver context, except that a worker does not run the caller's `__main__` again. Python
# prepares every forkserver child as it prepares a spawned one: it re-runs the parent's main script or
# module as `__mp_main__`, so that functions defined there can be unpickled. Ours are never there
# (tasks are functions of importable modules), and in a Dagster step process the main script is the
# `dagster` command: every worker imported the whole CLI again (~0.8 s of CPU and ~50 MB each,
# measured). Built on multiprocessing's internals: popen_forkserver.Popen._launch, the same text in
# Python 3.8 to 3.13 (compared), with the main module left out of the preparation data. On another
# Python, or where the internals are not there, the stock forkserver context serves (None here).
_WORKER_CONTEXT: multiprocessing.context.BaseContext | None = None
try:
    import io
    from multiprocessing import context as _mp_context
    from multiprocessing import forkserver as _mp_forkserver
    from multiprocessing import popen_forkserver as _mp_popen_forkserver
    from multiprocessing import reduction as _mp_reduction
    from multiprocessing import spawn as _mp_spawn
    from multiprocessing import util as _mp_util

    class _WorkerPopen(_mp_popen_forkserver.Popen):  # type: ignore[misc]
        def _launch(self, process_obj):  # type: ignore[no-untyped-def]
            prep_data = _mp_spawn.get_preparation_data(process_obj._name)
            prep_data.pop("init_main_from_path", None)
            prep_data.pop("init_main_from_name", None)
            buf = io.BytesIO()
            _mp_context.set_spawning_popen(self)
            try:
                _mp_reduction.dump(prep_data, buf)
                _mp_reduction.dump(process_obj, buf)
            finally:
                _mp_context.set_spawning_popen(None)
            self.sentinel, w = _mp_forkserver.connect_to_new_process(self._fds)
            _parent_w = os.dup(w)
            self.finalizer = _mp_util.Finalize(self, _mp_util.close_fds, (_parent_w, self.sentinel))
            with open(w, "wb", closefd=True) as f:
                f.write(buf.getbuffer())
            self.pid = _mp_forkserver.read_signed(self.sentinel)

    class _WorkerProcess(_mp_context.ForkServerProcess):  # type: ignore[name-defined,misc]
        @staticmethod
        def _Popen(process_obj):  # type: ignore[no-untyped-def]
            return _WorkerPopen(process_obj)

    class _WorkerContext(_mp_context.ForkServerContext):  # type: ignore[name-defined,misc]
        Process = _WorkerProcess

    if "forkserver" in multiprocessing.get_all_start_methods() and sys.version_info < (3, 14):
        _WORKER_CONTEXT = _WorkerContext()
except (ImportError, AttributeError):  # pragma: no cover (another Python's internals)
    pass


def _start_worker() -> None:
    # Arrow allocates through malloc, so the heap settings below govern its buffers too (Arrow's own
    # allocator held ~20 MB more per worker for no speed).
    pa.set_memory_pool(pa.system_memory_pool())
    _reuse_heap_pages()
    _yield_to_the_writer()


# How much lower than the calling process a worker runs (Unix niceness, added to the caller's).
WORKER_NICENESS = 10


def _yield_to_the_writer() -> None:
    """Run this worker below the process that called `InOrder`. That process writes every batch into
    DuckDB, one at a time: when it and two workers share two cores it is the stage's bottleneck
    (the STIX stage compresses ~400 MB of bundles per 100,000 records), and the workers, which only
    fill the queue it drains, should take the CPU it leaves. `make bench`: the STIX stage ~10% faster,
    the victims stage unchanged. It changes nothing for a process alone on its cores."""
    try:
        os.nice(WORKER_NICENESS)
    except (AttributeError, OSError):  # no niceness on this platform: run as the caller does
        pass


# glibc's mallopt parameters
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3


def _reuse_heap_pages() -> None:
    """Let each batch reuse the pages of the one before (glibc; elsewhere nothing changes).

    By default glibc serves a block over a few MB (a batch's 20 MB of bundle text) with a fresh mmap
    and trims the heap as soon as it is freed, so every batch touches new pages: ~1.6 page faults
    per bundle, ~10% of a mapping worker's time here. Batches are alike in size, so keeping the
    pages costs nothing at the peak.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    mallopt(_M_MMAP_THRESHOLD, 32 << 20)  # up to 32 MB (its largest) from the heap, not a fresh mmap
    mallopt(_M_TRIM_THRESHOLD, 1 << 30)  # keep freed pages for the next batch
    mallopt(_M_TOP_PAD, 64 << 20)  # and grow the heap 64 MB at a time


# ---------------------------------------------------------------------------------------------------
# Arrow
# ---------------------------------------------------------------------------------------------------


def _columns(table: pa.Table) -> dict[str, list]:
    return {name: _python_values(table.column(name)) for name in table.column_names}


def _python_values(column: pa.ChunkedArray) -> list:
    """`column.to_pylist()`. Dates and timestamps (few distinct values, and converting each one costs)
    are converted once per distinct value: the same objects, much faster."""
    if not (pa.types.is_timestamp(column.type) or pa.types.is_date(column.type)):
        return column.to_pylist()
    encoded = column.combine_chunks().dictionary_encode()
    distinct = encoded.dictionary.to_pylist()
    return [None if i is None else distinct[i] for i in encoded.indices.to_pylist()]


def put_batch(table: pa.Table | pa.RecordBatch, path: str) -> str:
    """Write `table` to a new Arrow IPC file at `path`; returns the path."""
    with pa.OSFile(path, "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write(table)
    return path


def take_batch(path: str) -> pa.Table:
    """The table of a batch file, memory-mapped (no copy), and the file removed: each batch file is
    read once. The mapping outlives the name, so the table stays valid until it is dropped."""
    with pa.memory_map(path) as source:
        table = pa.ipc.open_file(source).read_all()
    os.unlink(path)
    return table
