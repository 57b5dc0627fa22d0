"""`make bench`: how fast, and in how much memory, history is replayed into victims and STIX bundles.

Builds a synthetic archive of `--records` DEP announcements (default 100,000) spread over `--days`
daily fetches of dataset `ext` (default 365), with DEP's real quirks in realistic proportions, through
the raw asset's own path (`parse_records` -> `DepResponse` -> `archive_response` in `Archive.writer()`).
Then it times `build_victims` and `build_bundles` over all days in one call each, exactly what the
`dep_victims` and `dep_stix_bundles` assets run for a single-run backfill.

Every measurement runs in its own subprocess (`--_child ...`), so each peak RSS
(`ru_maxrss`) is that stage's alone. To show that memory does not grow with the length of history,
the replay is measured again on an archive with twice the days and records (the same first year, then
a second one appended).

Figures: records/s for each stage ("archive" = ingesting the fetches; "end to end" = victims + STIX,
the replay path; archiving is not part of it) and peak memory. A replay's peak (`peak_rss_mb`) is that
of all its processes together (it, the forkserver and the transform workers), sampled every 0.1 s as
their summed PSS: RSS with each shared page counted once (see `_TreeMemory`); the sum of each
process's own peak RSS is printed too, as an upper bound (`peak_rss_upper_bound_mb`). The last line
printed is one JSON object (records, records_per_s, peak_rss_mb, ...).

Each replay runs twice, on two copies of the same archive: once timed, once with the memory sampler.
The sampler makes the kernel walk every page of every process ten times a second, which costs ~5% of
the CPU the timed run measures (perf: `smaps_account`), so the timed run has none; the per-process
peaks (VmHWM, kept by the kernel at no cost) are read in both.

Usage: python -m dep_assets.bench [--records N] [--days D] [--workdir DIR] [--seed S] [--no-double]
                                  [--profile FILE] [--duckdb-memory-limit SIZE]
`--profile` writes a cProfile of the main replay; `--duckdb-memory-limit 1GB` is a what-if: the
replay's connection gets that DuckDB `memory_limit` instead of the archive's default
(DEP_ARCHIVE_MEMORY_LIMIT). The replay uses the transform workers the assets use (one per CPU); its
peak memory counts them and the forkserver they are forked from.
"""

from __future__ import annotations

# Only the standard library at module level: the parent process stays small, so the RSS its
# children inherit at fork/exec time (Linux counts it in their ru_maxrss) is negligible.
import argparse
import json
import os
import random
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import quote, unquote

DATASET = "ext"
FIRST_DAY = date(2025, 1, 1)  # day index 0; fixed, so the archive is the same for the same seed
TARGET_RECORDS_PER_S = 20_000
TARGET_PEAK_RSS_MB = 1024
# "Memory does not grow with history": doubling the history may raise the replay's peak RSS by 10% at most.
FLAT_MEMORY_TOLERANCE = 1.10

# --------------------------------------------------------------------------------------------------
# Synthetic DEP announcements
# --------------------------------------------------------------------------------------------------

_WORDS = (
    "Alpine", "Borealis", "Cedar", "Delta", "Ember", "Fjord", "Harbor", "Iris", "Juniper", "Kestrel",
    "Lumen", "Meridian", "Pioneer", "Quarry", "Summit", "Tidal", "Vertex", "Willow", "Yarrow", "Zephyr",
    "Müller", "Società", "Łódź", "Øresund", "Ångström", "Crème", "Straße", "Señor", "Zürich", "Kraków",
    "東京", "Сибирь",
)  # fmt: skip
_SUFFIXES = ("GmbH", "AG", "S.p.A.", "S.r.l.", "SA", "Ltd", "LLC", "Inc.", "Group", "Holdings", "SAS", "BV", "株式会社")
_TLDS = ("com", "it", "de", "fr", "es", "co.uk", "com.br", "jp", "org", "ca", "nl", "pl")
_SECTORS = (
    "Manufacturing", "Healthcare", "Education", "Financial Services", "Legal Services", "Retail",
    "Construction", "Technology", "Transportation/Logistics", "Government", "Energy", "Hospitality",
    "Agriculture", "Telecommunication", "Business Services",
)  # fmt: skip
_COUNTRIES = (
    ("United States", "US"), ("Italy", "IT"), ("Germany", "DE"), ("France", "FR"), ("Spain", "ES"),
    ("United Kingdom", "GB"), ("Brazil", "BR"), ("Canada", "CA"), ("Japan", "JP"), ("Côte d'Ivoire", "CI"),
    ("Australia", "AU"), ("India", "IN"), ("Mexico", "MX"), ("Poland", "PL"), ("Türkiye", "TR"),
)  # fmt: skip
_ACTORS = tuple(
    f"{a}{b}" for a in ("Lock", "Black", "Night", "Paper", "Blue", "Akira", "Play", "Rhy", "Med", "Hunt")
    for b in ("Bit", "Basta", "Owl", "Kite", "Mantis", "", "Sida", "Usa", "ers", "Cat")
)  # 100 groups
_GENERIC_ACTORS = ("unknown", "Unknown", "unattributed", "Unattributed", "anonymous", "ransomware group", "n/a", "")
_KNOWN_TYPES = ("AI", "CUSTOMERS", "DEFENSE", "EMPLOYEES", "FINANCIAL", "INTERNAL", "IP", "MEDICAL", "PARTNERS", "PII", "SENSITIVES")  # fmt: skip
_UNKNOWN_TYPES = ("CREDENTIALS", "SOURCE_CODE", "pii ", "")
_CITIES = ("Milan", "Turin", "Lyon", "Osaka", "Austin", "Abidjan", "São Paulo", "München", "Kraków", "Toronto")
_STATES = ("Piedmont", "Texas", "Bavaria", "Île-de-France", "Ontario", None)
_DESCRIPTIONS = (
    "{victim} data will be published. Employees and customers affected.",
    "Company data including employee records will be published.",
    "Leaked records available: finance, HR & legal; 100% authentic.",
    "Données personnelles — {size} GB — à publier",
    "Datos de clientes y empleados de {victim}: {size} GB. Fecha límite: 7 días.",
    "{victim}: контракты, паспорта, бухгалтерия ({size} ГБ)",
    "{victim} の社内資料 {size} GB を公開します",
)  # fmt: skip
_PLACEHOLDER_VICTIMS = ("n/a", "N/A ", "", "none", "  None")


def _hex(rng: random.Random, digits: int) -> str:
    return f"{rng.getrandbits(digits * 4):0{digits}x}"


def _victim_name(rng: random.Random) -> str:
    words = rng.sample(_WORDS, rng.choice((1, 1, 2, 3)))
    return " ".join(words) + " " + rng.choice(_SUFFIXES)


def _slug(name: str, n: int) -> str:
    ascii_part = "".join(c for c in name.split()[0].lower() if c.isascii() and c.isalnum()) or "x"
    return f"{ascii_part}-{n}"


def _description(rng: random.Random, victim: str) -> str | None:
    roll = rng.random()
    if roll < 0.03:
        return None
    text = rng.choice(_DESCRIPTIONS).format(victim=victim, size=rng.choice((3, 42, 120, 850, 2100)))
    if roll < 0.06:  # a long leak-site post: a few thousand characters, multi-byte included
        text = " ".join([text] * rng.randint(20, 60))
    if rng.random() < 0.30:  # DEP sometimes sends it URL-encoded (multi-byte UTF-8 as %XX%XX)
        text = quote(text, safe="")
    return text


def _data_types(rng: random.Random) -> list[str] | None:
    roll = rng.random()
    if roll < 0.06:
        return None
    if roll < 0.14:
        return []
    types = rng.sample(_KNOWN_TYPES, rng.randint(1, 4))
    if rng.random() < 0.07:
        types.append(rng.choice(_UNKNOWN_TYPES))
    return types


def _hashid(rng: random.Random) -> str | None:
    roll = rng.random()
    if roll < 0.01:
        return None  # ~1%: quarantined downstream (missing_hashid)
    if roll < 0.02:
        return _hex(rng, 32)  # MD5-length
    if roll < 0.03:
        return _hex(rng, 40)  # SHA-1-length
    value = _hex(rng, 64)
    if roll < 0.08:
        value = "  " + value.upper() + " "  # padded upper case
    return value


def _link(rng: random.Random, n: int) -> str | None:
    roll = rng.random()
    if roll < 0.03:
        return None
    scheme = "http://"
    if roll < 0.07:
        scheme = "https//"  # scrape bug, repaired downstream
    elif roll < 0.10:
        scheme = "http//"
    elif roll < 0.30:
        scheme = "https://"
    return f"{scheme}leak{rng.randint(1, 400)}{_hex(rng, 16)}.onion/post/{n}"


def synthetic_record(rng: random.Random, day: date, n: int) -> dict:
    """One announcement as DEP sends it, quirks included (key order as DEP sends it)."""
    placeholder = rng.random() < 0.02
    name = _victim_name(rng)
    slug = _slug(name, n)
    domain = f"{slug}.{rng.choice(_TLDS)}"
    record: dict = {"victim": rng.choice(_PLACEHOLDER_VICTIMS) if placeholder else name, "date": day.isoformat()}
    record["hashid"] = _hashid(rng)
    if rng.random() < 0.75:
        record["victimDomain"] = f"  {domain.upper()} " if rng.random() < 0.05 else domain
    roll = rng.random()
    if roll < 0.55:
        record["site"] = domain
    elif roll < 0.70:
        record["site"] = f"https://www.{domain}/about?x={n}"  # site given as a full URL
    elif roll < 0.75:
        record["site"] = ""
    record["sector"] = rng.choice(("n/a", "N/A", "", "none")) if rng.random() < 0.10 else rng.choice(_SECTORS)
    record["actor"] = rng.choice(_GENERIC_ACTORS) if rng.random() < 0.25 else rng.choice(_ACTORS)
    country, code = rng.choice(_COUNTRIES)
    if rng.random() < 0.08:
        country = rng.choice(("n/a", "N/A", ""))
    record["country"] = country
    roll = rng.random()
    if roll < 0.7:
        record["revenue"] = rng.choice(("$4M", "$25M", "$1.2B", "$300K", ""))
    elif roll < 0.85:
        record["revenue"] = None
    record["amount"] = rng.choice((None, None, "500000", "2.1 TB", "n/a"))
    record["naics"] = rng.choice((None, "5415", "621111", "332", "n/a"))
    record["annLink"] = _link(rng, n)
    roll = rng.random()
    record["annTitle"] = None if roll < 0.3 else (domain if roll < 0.4 else name if roll < 0.7 else f"{name} leak")
    record["annDescription"] = _description(rng, name)
    record["annDataTypes"] = _data_types(rng)
    if rng.random() < 0.75:  # extended=true fields
        record["victimCC"] = code
        record["victimCity"] = rng.choice(_CITIES + (None,))
        record["victimState"] = rng.choice(_STATES)
        record["victimAddress"] = rng.choice(("Via Esempio 1", "1 Main Street", None, None))
    if rng.random() < 0.02:  # a field we do not model: kept in extra_fields
        record["leakSize"] = f"{rng.randint(1, 900)} GB"
    return record


def records_on(day_index: int, records: int, days: int) -> int:
    """How many items the fetch of day `day_index` returns: `records` spread evenly over `days`
    (the same rate beyond `days`, so 2x the days gives exactly 2x the records)."""
    return (day_index + 1) * records // days - day_index * records // days


def synthetic_days(seed: int, records: int, days: int, start: int, stop: int) -> Iterator[tuple[date, list]]:
    """(day, items of that day's response) for day indexes start..stop-1: deterministic per seed and
    day, so an archive extended with more days holds exactly the records of the shorter one first.

    Besides new announcements, a day's response carries a few re-sent ones: ~0.3% re-dated to the
    day with a new description (they move), ~0.3% updated in place (victim or description filled in
    later; same date), and ~1 in 5,000 items is not an object at all.
    """
    recent: deque[list[dict]] = deque(maxlen=5)  # the last few days' objects, for re-sent versions
    for index in range(max(0, start - recent.maxlen), stop):
        rng = random.Random(f"dep-bench/{seed}/{index}")
        day = FIRST_DAY + timedelta(days=index)
        count = records_on(index, records, days)
        items: list = []
        previous = [r for objects in recent for r in objects if r.get("hashid")]
        for position in range(count):
            n = index * 100_000 + position
            roll = rng.random()
            if previous and roll < 0.003:
                again = dict(rng.choice(previous))  # DEP re-dated it: it moves to this day
                again["date"] = day.isoformat()
                again["annDescription"] = "Update: full dump released. " + (again.get("annDescription") or "")
                items.append(again)
            elif previous and roll < 0.006:
                again = dict(rng.choice(previous))  # updated after first publication, same date
                again["annDescription"] = "Deadline extended. " + (again.get("annDescription") or "")
                again["revenue"] = "$50M"
                items.append(again)
            elif roll < 0.0062 and items:
                items.append(rng.choice(("n/a", 42, None, ["error"], "")))  # a stray non-object item
            else:
                items.append(synthetic_record(rng, day, n))
        recent.append([r for r in items if isinstance(r, dict)])
        if index >= start:
            yield day, items


def count_quirks(items: list, seen: dict[str, str], counts: dict[str, int]) -> None:
    """Tally the quirks of one day's items into `counts` (`seen`: hashid key -> date, across days)."""
    for item in items:
        if not isinstance(item, dict):
            counts["not an object"] = counts.get("not an object", 0) + 1
            continue
        found = []
        hashid = item.get("hashid")
        if hashid is None:
            found.append("null hashid")
        else:
            key = hashid.strip().lower()
            if hashid != key:
                found.append("padded upper-case hashid")
            if len(key) != 64:
                found.append(f"{len(key)}-char hashid")
            if key in seen:
                found.append("re-dated" if seen[key] != item["date"] else "updated, same date")
            seen[key] = item["date"]
        link = item.get("annLink") or ""
        if link.startswith(("https//", "http//")):
            found.append("https// or http// link")
        description = item.get("annDescription") or ""
        if "%" in description and description != unquote(description):
            found.append("URL-encoded description")
        if len(description) > 1000:
            found.append("description > 1000 chars")
        if (item.get("victim") or "").strip().lower() in ("", "n/a", "none"):
            found.append("placeholder victim")
        if item.get("actor") in _GENERIC_ACTORS:
            found.append("generic actor")
        if (item.get("sector") or "").strip().lower() in ("", "n/a", "none"):
            found.append("n/a sector")
        if (item.get("country") or "").strip().lower() in ("", "n/a", "none"):
            found.append("n/a country")
        if "victimDomain" not in item:
            found.append("no victimDomain")
        if "://" in (item.get("site") or ""):
            found.append("site as URL")
        types = item.get("annDataTypes")
        if types is None:
            found.append("null annDataTypes")
        elif any(t not in _KNOWN_TYPES for t in types):
            found.append("unknown annDataType")
        if "victimCC" in item:
            found.append("extended fields")
        if "leakSize" in item:
            found.append("unknown field")
        for quirk in found:
            counts[quirk] = counts.get(quirk, 0) + 1


# --------------------------------------------------------------------------------------------------
# Child processes: one measurement each
# --------------------------------------------------------------------------------------------------


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux


def _children(pid: int) -> list[int]:
    """The live child processes of `pid` ([] where /proc does not list them, or once it is gone)."""
    try:
        return [int(child) for task in Path(f"/proc/{pid}/task").iterdir() for child in (task / "children").read_text().split()]
    except (OSError, ValueError):
        return []


def _helpers_peak_rss_mb() -> float:
    """The peak RSS (VmHWM) of this process's live children: multiprocessing's forkserver, which the
    transform workers are forked from, and its resource tracker. 0 where /proc is not available."""
    # Imported here, not at module level: see the imports above.
    from dep_assets.transform import own_peak_rss_mb

    return sum(own_peak_rss_mb(child) for child in _children(os.getpid()))


class _TreeMemory:
    """The peak memory of this process and all its descendants (forkserver, resource tracker, transform
    workers), sampled every `interval` seconds from /proc: the sum of their PSS, i.e. their RSS with
    each shared page divided among the processes that map it.

    Summing each process's own peak RSS instead counts the shared libraries (pyarrow alone is ~50 MB)
    once per process, and how much of them is resident depends on the page cache: on a fresh clone the
    same replay then "uses" ~140 MB more with exactly the same private memory. That sum is still
    printed, as an upper bound.
    """

    def __init__(self, interval: float = 0.1, enabled: bool = True) -> None:
        import threading

        self.interval = interval
        self.peak = 0.0
        self.enabled = enabled
        self.available = enabled and Path("/proc/self/smaps_rollup").exists()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-tree-memory", daemon=True)

    def __enter__(self) -> _TreeMemory:
        if self.available:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self.available:
            self._thread.join()

    def sample(self) -> float:
        total = 0.0
        pending = [os.getpid()]
        while pending:
            pid = pending.pop()
            try:
                for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                    if line.startswith("Pss:"):
                        total += int(line.split()[1]) / 1024
                        break
            except (OSError, ValueError):  # the process ended meanwhile
                continue
            pending.extend(_children(pid))
        self.peak = max(self.peak, total)
        return total

    def take_peak(self) -> float:
        """The peak since the last call (or the start), sampling once more now (0 when disabled)."""
        if not self.enabled:
            return 0.0
        self.sample()
        peak, self.peak = self.peak, 0.0
        return peak

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()


def _vm_hwm_mb() -> float | None:
    """This process's own high-water RSS (VmHWM: not inherited from the parent, unlike ru_maxrss)."""
    # Imported here, not at module level: see the imports above.
    from dep_assets.transform import own_peak_rss_mb

    return own_peak_rss_mb() or None


def child_archive(db: Path, seed: int, records: int, days: int, start: int, stop: int) -> dict:
    """Archive days start..stop-1 as daily DEP fetches, through the raw asset's own functions."""
    from dep_assets.archive import Archive, archive_response
    from dep_assets.dep_client.client import DepResponse, day_window, parse_records

    generate_s = serialize_s = ingest_s = 0.0
    items_total = body_bytes = 0
    seen: dict[str, str] = {}
    quirks: dict[str, int] = {}
    with Archive(db).writer() as conn:
        days_iter = synthetic_days(seed, records, days, start, stop)
        while True:
            started = time.perf_counter()
            try:
                day, items = next(days_iter)
            except StopIteration:
                break
            count_quirks(items, seen, quirks)
            generated = time.perf_counter()
            body = json.dumps(items, ensure_ascii=False).encode("utf-8")  # as DEP sends it
            serialized = time.perf_counter()
            generate_s += generated - started
            serialize_s += serialized - generated

            ts, te = day_window(day)
            requested_at = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1, hours=6)
            location = f"bench://{DATASET}/{day.isoformat()}"
            response = DepResponse(
                dataset=DATASET,
                day=day,
                window_start=ts,
                window_end=te,
                source="file",
                location=location,
                requested_at=requested_at,
                http_status=None,
                body=body,
                records=parse_records(body, context=location),
                duration_seconds=0.0,
            )
            archive_response(conn, response, run_id="bench")
            ingest_s += time.perf_counter() - serialized
            items_total += len(items)
            body_bytes += len(body)
    return {
        "stage": "archive",
        "records": items_total,
        "fetches": stop - start,
        "body_mb": round(body_bytes / 2**20, 1),
        "quirks": dict(sorted(quirks.items(), key=lambda kv: -kv[1])),
        "generate_s": round(generate_s, 3),
        "serialize_s": round(serialize_s, 3),
        "archive_s": round(ingest_s, 3),
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        "vm_hwm_mb": _vm_hwm_mb(),
    }


def child_derive(
    db: Path, days: int, profile: Path | None, memory_limit: str | None = None, sample_memory: bool = True
) -> dict:
    """Replay all days: `build_victims` then `build_bundles`, exactly as the two assets call them.

    `memory_limit`: DuckDB's `memory_limit` for the replay's connection, instead of the archive's
    default (DEP_ARCHIVE_MEMORY_LIMIT's default, as the assets run). `sample_memory`: run the
    `_TreeMemory` sampler (the memory run); without it the `*peak_rss_mb` of all processes together
    are None (the timed run)."""
    import duckdb  # noqa: F401  (imported before the baseline, like the assets' process has it)

    from dep_assets.archive import Archive
    from dep_assets.archive.derived import build_bundles, build_victims
    from dep_assets.stix_mapping import MappingOptions, StixMapper
    from dep_assets.transform import compiled_paths

    baseline = _peak_rss_mb()
    all_days = [FIRST_DAY + timedelta(days=i) for i in range(days)]
    mapper = StixMapper(MappingOptions())
    profiler = None
    if profile is not None:
        import cProfile

        profiler = cProfile.Profile()
    with Archive(db).writer() as conn, _TreeMemory(enabled=sample_memory) as tree:
        if memory_limit:  # a what-if: the writer already set the archive's default cap
            conn.execute(f"SET memory_limit = '{memory_limit}'")
        raw_records, announcements = conn.execute(
            "SELECT count(*), count(DISTINCT coalesce(hashid_key, 'sha256:' || payload_sha256)) "
            "FROM raw_records WHERE dataset = ?",
            [DATASET],
        ).fetchall()[0]
        if profiler:
            profiler.enable()
        tree.take_peak()
        started = time.perf_counter()
        victims = build_victims(conn, DATASET, all_days)
        victims_done = time.perf_counter()
        after_victims = _peak_rss_mb()
        victims_peak = tree.take_peak()
        bundles = build_bundles(conn, DATASET, all_days, mapper, mapper.fingerprint)
        stix_done = time.perf_counter()
        stix_peak = tree.take_peak()
        if profiler:
            profiler.disable()
        stored = conn.execute(
            "SELECT (SELECT count(*) FROM dep_victims), (SELECT count(*) FROM dep_quarantine), "
            "(SELECT count(*) FROM stix_bundles)"
        ).fetchall()[0]
    workers = max(victims.workers, bundles.workers)
    worker_peak = max(victims.worker_peak_rss_mb, bundles.worker_peak_rss_mb)
    helpers = _helpers_peak_rss_mb()
    # An upper bound of the replay's total: this process's peak, plus each worker at the largest
    # worker peak (the workers run beside it; each reports its own VmHWM), plus the helper processes
    # (forkserver, resource tracker), though the workers share most of the forkserver's.
    upper_bound = _peak_rss_mb() + workers * worker_peak + helpers
    if not tree.enabled:  # the timed run: no figure for all processes together
        victims_peak = stix_peak = None
    elif not tree.available:  # where /proc gives no PSS, the per-process peaks stand in
        victims_peak, stix_peak = after_victims, upper_bound
    if profiler:
        profiler.dump_stats(profile)
    return {
        "stage": "derive",
        "raw_records": raw_records,
        "announcements": announcements,
        "victims": victims.victims,
        "quarantined": victims.quarantined,
        "placeholders": victims.placeholders,
        "quarantine_reasons": victims.reasons,
        "bundles": bundles.bundles,
        "skipped": bundles.skipped,
        "objects": bundles.objects,
        "stored": {"dep_victims": stored[0], "dep_quarantine": stored[1], "stix_bundles": stored[2]},
        "victims_s": round(victims_done - started, 3),
        "stix_s": round(stix_done - victims_done, 3),
        "baseline_rss_mb": round(baseline, 1),
        "peak_rss_after_victims_mb": round(after_victims, 1),
        # The replay's memory: all its processes together, shared pages once (see _TreeMemory).
        "victims_peak_rss_mb": _round(victims_peak),
        "stix_peak_rss_mb": _round(stix_peak),
        "peak_rss_mb": None if victims_peak is None or stix_peak is None else round(max(victims_peak, stix_peak), 1),
        "memory_sampled": tree.enabled,
        "main_peak_rss_mb": round(_peak_rss_mb(), 1),
        "workers": workers,
        "worker_peak_rss_mb": round(worker_peak, 1),
        "helpers_peak_rss_mb": round(helpers, 1),
        "peak_rss_upper_bound_mb": round(upper_bound, 1),
        "vm_hwm_mb": _vm_hwm_mb(),
        "duckdb_memory_limit": memory_limit,
        "compiled_paths": compiled_paths(),
    }


# --------------------------------------------------------------------------------------------------
# Parent: orchestrate, print the table and the JSON line
# --------------------------------------------------------------------------------------------------


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _run_child(*args: str) -> dict:
    command = [sys.executable, "-m", "dep_assets.bench", "--_child", *args]
    result = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)
    if result.returncode != 0:
        sys.stdout.write(result.stdout)
        raise SystemExit(f"bench: child {' '.join(args)} failed with exit code {result.returncode}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _rate(records: int, seconds: float) -> float:
    return round(records / seconds, 1) if seconds > 0 else float("inf")


def _check(derive: dict, what: str) -> None:
    """The replay must account for every announcement, or its speed means nothing."""
    problems = []
    if derive["victims"] + derive["quarantined"] != derive["announcements"]:
        problems.append(f"victims + quarantined = {derive['victims'] + derive['quarantined']}, "
                        f"announcements = {derive['announcements']}")
    if derive["bundles"] + derive["skipped"] != derive["victims"]:
        problems.append(f"bundles + skipped = {derive['bundles'] + derive['skipped']}, victims = {derive['victims']}")
    if derive["stored"] != {"dep_victims": derive["victims"], "dep_quarantine": derive["quarantined"],
                            "stix_bundles": derive["bundles"]}:  # fmt: skip
        problems.append(f"stored rows {derive['stored']} differ from the outcomes")
    if problems:
        raise SystemExit(f"bench: the {what} replay is inconsistent: " + "; ".join(problems))


def run(args: argparse.Namespace) -> dict:
    records, days, seed = args.records, args.days, args.seed
    if records < 1 or days < 1:
        raise SystemExit("bench: --records and --days must be at least 1")
    own_workdir = args.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="dep-bench-")) if own_workdir else Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    main_db, double_db = workdir / "bench.duckdb", workdir / "bench-2x.duckdb"
    # The memory runs replay copies of the same raw archives (see the module's docstring).
    memory_db, double_memory_db = workdir / "bench-memory.duckdb", workdir / "bench-2x-memory.duckdb"
    for path in (main_db, double_db, memory_db, double_memory_db):
        for leftover in (path, path.with_name(path.name + ".wal")):
            leftover.unlink(missing_ok=True)
    common = ["--seed", str(seed), "--records", str(records), "--days", str(days)]
    memory = ["--duckdb-memory-limit", args.duckdb_memory_limit] if args.duckdb_memory_limit else []
    load_before = os.getloadavg()[0]
    say = lambda text: print(text, file=sys.stderr, flush=True)  # noqa: E731  (progress, not figures)
    try:
        say(f"bench: archiving {records:,} records over {days} daily fetches of {DATASET!r} in {workdir} ...")
        archive = _run_child("archive", "--db", str(main_db), *common, "--range", f"0:{days}")
        # Copies of the raw archive, before a replay writes derived tables into main_db.
        shutil.copyfile(main_db, memory_db)
        if not args.no_double:
            shutil.copyfile(main_db, double_db)
        say("bench: replaying victims + STIX over all days (timed, then with the memory sampler) ...")
        profile = ["--profile", str(args.profile)] if args.profile else []
        derive = _replay(main_db, memory_db, days, memory, profile, "main")
        double = None
        if not args.no_double:
            say(f"bench: history x2: appending {days} more days to a copy, replaying {2 * days} days twice ...")
            _run_child("archive", "--db", str(double_db), *common, "--range", f"{days}:{2 * days}")
            shutil.copyfile(double_db, double_memory_db)
            double = _replay(double_db, double_memory_db, 2 * days, memory, [], "2x")
    finally:
        if own_workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    load = (load_before, os.getloadavg()[0])
    return _report(records, days, archive, derive, double, load)


def _replay(timed_db: Path, memory_db: Path, days: int, memory: list[str], profile: list[str], what: str) -> dict:
    """One replay's figures: its times from a run without the memory sampler, its memory from a run
    with it, on a copy of the same archive."""
    timed = _run_child("derive", "--db", str(timed_db), "--days", str(days), "--no-memory-sampler", *memory, *profile)
    _check(timed, what)
    sampled = _run_child("derive", "--db", str(memory_db), "--days", str(days), *memory)
    _check(sampled, f"{what} (memory)")
    return {**sampled, "victims_s": timed["victims_s"], "stix_s": timed["stix_s"]}


def _report(
    records: int, days: int, archive: dict, derive: dict, double: dict | None, load: tuple[float, float]
) -> dict:
    end_s = derive["victims_s"] + derive["stix_s"]
    rows = [
        ("archive (parse + archive_response)", archive["records"], archive["archive_s"], archive["peak_rss_mb"]),
        ("victims (build_victims)", records, derive["victims_s"], derive["victims_peak_rss_mb"]),
        ("STIX (build_bundles)", records, derive["stix_s"], derive["stix_peak_rss_mb"]),
        ("end to end (victims + STIX)", records, end_s, derive["peak_rss_mb"]),
    ]
    if double:
        double_s = double["victims_s"] + double["stix_s"]
        rows.append(("end to end, history x2", double["raw_records"], double_s, double["peak_rss_mb"]))
    print(f"\ndep-assets bench: {records:,} synthetic DEP records, {days} daily fetches of {DATASET!r}, "
          f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}")  # fmt: skip
    if derive["duckdb_memory_limit"]:
        print(f"WHAT-IF: DuckDB memory_limit = {derive['duckdb_memory_limit']} on the replay connection "
              "(instead of DEP_ARCHIVE_MEMORY_LIMIT's default)")  # fmt: skip
    print(f"(generating the announcements took {archive['generate_s']:.1f}s and serializing the bodies "
          f"{archive['serialize_s']:.1f}s ({archive['body_mb']} MB): not counted below)")  # fmt: skip
    print("quirks (records with each): " + ", ".join(
        f"{name} {count / archive['records']:.{1 if count * 100 >= archive['records'] else 2}%}"
        for name, count in archive["quirks"].items()))  # fmt: skip
    print()
    print(f"{'stage':<38}{'records':>10}{'seconds':>10}{'records/s':>12}{'peak RSS MB':>13}")
    for name, count, seconds, rss in rows:
        print(f"{name:<38}{count:>10,}{seconds:>10.2f}{_rate(count, seconds):>12,.0f}{rss:>13.0f}")
    print(
        f"\nreplay: {derive['announcements']:,} announcements -> {derive['victims']:,} victims "
        f"({derive['placeholders']:,} placeholders), {derive['quarantined']:,} quarantined "
        f"{derive['quarantine_reasons']}, {derive['bundles']:,} bundles ({derive['objects']:,} objects, "
        f"{derive['skipped']:,} placeholder victims skipped)"
    )
    print(f"replay process: {derive['baseline_rss_mb']:.0f} MB after imports, peak {derive['main_peak_rss_mb']:.0f} MB; "
          f"{derive['workers']} transform workers, each at most {derive['worker_peak_rss_mb']:.0f} MB; "
          f"forkserver and resource tracker {derive['helpers_peak_rss_mb']:.0f} MB: "
          f"{derive['peak_rss_upper_bound_mb']:.0f} MB in all at most, each counting the shared libraries "
          f"again; all processes together, shared pages once: peak {derive['peak_rss_mb']:.0f} MB")  # fmt: skip
    compiled = derive["compiled_paths"]
    print("compiled paths: " + ", ".join(f"{name} {'yes' if on else 'NO (the Python reference runs)'}"
                                         for name, on in compiled.items()))  # fmt: skip
    print(f"load average (1 min) {load[0]:.2f} before, {load[1]:.2f} after, on {os.cpu_count()} CPUs: "
          "other work on the machine slows every figure above")  # fmt: skip
    if double:
        print(f"history x2 ({double['raw_records']:,} records, {2 * days} days): peak {double['peak_rss_mb']:.0f} MB "
              f"vs {derive['peak_rss_mb']:.0f} MB for the main run")  # fmt: skip

    records_per_s = _rate(records, end_s)
    peak = derive["peak_rss_mb"]
    memory_ok = peak < TARGET_PEAK_RSS_MB and archive["peak_rss_mb"] < TARGET_PEAK_RSS_MB
    flat = None
    if double:
        flat = double["peak_rss_mb"] <= peak * FLAT_MEMORY_TOLERANCE
    summary = {
        "records": records,
        "days": days,
        "records_per_s": records_per_s,
        "victims_per_s": _rate(records, derive["victims_s"]),
        "stix_per_s": _rate(records, derive["stix_s"]),
        "archive_per_s": _rate(archive["records"], archive["archive_s"]),
        "victims_s": derive["victims_s"],
        "stix_s": derive["stix_s"],
        "archive_s": archive["archive_s"],
        "peak_rss_mb": peak,
        "peak_rss_upper_bound_mb": derive["peak_rss_upper_bound_mb"],
        "archive_peak_rss_mb": archive["peak_rss_mb"],
        "peak_rss_mb_2x": double["peak_rss_mb"] if double else None,
        "records_per_s_2x": _rate(double["raw_records"], double["victims_s"] + double["stix_s"]) if double else None,
        "announcements": derive["announcements"],
        "victims": derive["victims"],
        "bundles": derive["bundles"],
        "quarantined": derive["quarantined"],
        "load_avg_1m": round(max(load), 2),
        "duckdb_memory_limit": derive["duckdb_memory_limit"],
        "compiled_paths": derive["compiled_paths"],
        "target_records_per_s": TARGET_RECORDS_PER_S,
        "target_peak_rss_mb": TARGET_PEAK_RSS_MB,
        "memory_flat": flat,
        "meets_targets": records_per_s >= TARGET_RECORDS_PER_S and memory_ok and flat is not False,
    }
    print(json.dumps(summary))
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dep_assets.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100_000, help="announcements in the archive (default 100000)")
    parser.add_argument("--days", type=int, default=365, help="daily fetches they are spread over (default 365)")
    parser.add_argument("--workdir", type=Path, default=None, help="where the archives go (default: a temp dir, removed after)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the synthetic data (default 1)")
    parser.add_argument("--no-double", action="store_true", help="skip the history x2 memory run")
    parser.add_argument("--profile", type=Path, default=None, help="write a cProfile of the main replay here")
    parser.add_argument(
        "--duckdb-memory-limit",
        default=None,
        help="what-if: SET memory_limit (e.g. 512MB) on the replay connection instead of DEP_ARCHIVE_MEMORY_LIMIT's default",
    )
    parser.add_argument("--_child", choices=("archive", "derive"), help=argparse.SUPPRESS)
    parser.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--range", help=argparse.SUPPRESS)
    parser.add_argument("--no-memory-sampler", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.duckdb_memory_limit and not re.fullmatch(r"[0-9]+(\.[0-9]+)?\s*[KMGT]i?B", args.duckdb_memory_limit):
        parser.error("--duckdb-memory-limit takes a size such as 512MB or 1GiB")

    if args._child == "archive":
        start, stop = (int(x) for x in args.range.split(":"))
        print(json.dumps(child_archive(args.db, args.seed, args.records, args.days, start, stop)))
    elif args._child == "derive":
        print(
            json.dumps(
                child_derive(
                    args.db, args.days, args.profile, args.duckdb_memory_limit, not args.no_memory_sampler
                )
            )
        )
    else:
        run(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
