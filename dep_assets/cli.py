"""Command-line helpers around the Dagster project: `python -m dep_assets.cli {demo,dev,summary,export-bundles}`.

`demo` materializes every asset through the real
Dagster CLI, over every day present in the recorded source, then prints what the archive holds.
Settings already in the environment win; the defaults point at the bundled sample.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import duckdb

from dep_assets.datasets import resolve_dataset
from dep_assets.dep_client import RecordedSource

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_DIR = ROOT / "data" / "sample"
DEMO_ASSETS = ("dep_announcements_raw", "dep_victims", "dep_stix_bundles")


def demo_environment(environ: dict[str, str]) -> dict[str, str]:
    env = dict(environ)
    env.setdefault("DEP_API_ENDPOINT", f"file://{SAMPLE_DIR}")
    env.setdefault("DAGSTER_HOME", str(ROOT / ".dagster_home"))
    home = Path(env["DAGSTER_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        shutil.copyfile(ROOT / "dagster.yaml", home / "dagster.yaml")
    if env["DEP_API_ENDPOINT"].startswith("file://"):
        recorded = RecordedSource(Path(env["DEP_API_ENDPOINT"].removeprefix("file://")))
        present = sorted(p.name for p in recorded.directory.iterdir() if p.is_dir() and recorded.available_days(p.name))
        env.setdefault("DEP_DSETS", ",".join(present))
        first_days = [recorded.available_days(d)[0] for d in present]
        if first_days:
            env.setdefault("DEP_START_DATE", min(first_days).isoformat())
    return env


def demo(_: argparse.Namespace) -> int:
    env = demo_environment(dict(os.environ))
    # Validate with the same code the code location uses, so a bad setting fails here, clearly.
    from dep_assets.settings import Settings

    settings = Settings.from_env(env)
    if not settings.uses_recorded_source:
        print("DEP_API_ENDPOINT is a live endpoint: the demo would fetch DEP itself; "
              "use `dagster asset materialize` for that.", file=sys.stderr)
        return 2
    recorded = RecordedSource(settings.recorded_dir)
    for dataset in settings.datasets:
        days = [d for d in recorded.available_days(dataset) if d >= settings.start_date]
        if not days:
            print(f"no recorded days for dataset {dataset} in {recorded.directory}", file=sys.stderr)
            continue
        missing = sorted(set(_every_day(days[0], days[-1])) - set(days))
        if missing:
            print(f"dataset {dataset}: recorded days have gaps ({', '.join(map(str, missing))})", file=sys.stderr)
            return 2
        partition_range = f"{dataset}|{days[0]}...{dataset}|{days[-1]}"
        print(f"materializing {', '.join(DEMO_ASSETS)} for {partition_range}", flush=True)
        command = [
            sys.executable, "-m", "dagster", "asset", "materialize",
            "-m", "dep_assets.definitions",
            "--select", ",".join(DEMO_ASSETS),
            "--partition-range", partition_range,
        ]
        completed = subprocess.run(command, env=env, cwd=ROOT, check=False)
        if completed.returncode != 0:
            return completed.returncode
    print_summary(settings.snapshot_path)
    return 0


def _every_day(first: date, last: date):  # type: ignore[no-untyped-def]
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)


def print_summary(database: Path) -> None:
    """What the archive holds, read from the analysts' snapshot (never locks the archive)."""
    with duckdb.connect(str(database), read_only=True) as conn:
        print(f"\nArchive snapshot: {database}")
        for title, sql in SUMMARY_QUERIES:
            print(f"\n{title}")
            print(conn.sql(sql))


SUMMARY_QUERIES = (
    (
        "Fetches per dataset",
        "SELECT dataset, count(*) AS fetches, min(day) AS first_day, max(day) AS last_day, "
        "sum(record_count) AS records, sum(new_hashids) AS new_hashids FROM raw_fetches GROUP BY dataset ORDER BY dataset",
    ),
    (
        "Records per day",
        "SELECT dataset, day, count(*) AS records, count(hashid_key) AS with_hashid, "
        "count(*) FILTER (WHERE NOT is_object) AS non_objects FROM raw_records GROUP BY ALL ORDER BY ALL",
    ),
    (
        "Victims, quarantined records and STIX bundles per day (each announcement on its own date, once)",
        "WITH v AS (SELECT dataset, announcement_date AS day, count(*) AS victims FROM dep_victims GROUP BY ALL), "
        "q AS (SELECT dataset, day, count(*) AS quarantined FROM dep_quarantine GROUP BY ALL), "
        "b AS (SELECT dataset, day, count(*) AS bundles, sum(object_count) AS stix_objects FROM stix_bundles GROUP BY ALL) "
        "SELECT dataset, day, coalesce(victims, 0) AS victims, coalesce(quarantined, 0) AS quarantined, "
        "coalesce(bundles, 0) AS bundles, coalesce(stix_objects, 0) AS stix_objects "
        "FROM v FULL JOIN q USING (dataset, day) FULL JOIN b USING (dataset, day) ORDER BY ALL",
    ),
    ("Quarantined records", "SELECT dataset, day, fetch_id, position, reason FROM dep_quarantine ORDER BY ALL"),
)


def summary(args: argparse.Namespace) -> int:
    from dep_assets.settings import Settings

    print_summary(Path(args.database) if args.database else Settings.from_env().snapshot_path)
    return 0


def dev(args: argparse.Namespace) -> int:
    """`dagster dev` (webserver + daemon) on the same settings and instance as the demo."""
    env = demo_environment(dict(os.environ))
    command = [sys.executable, "-m", "dagster", "dev", "-w", str(ROOT / "workspace.yaml"), "-h", args.host, "-p", str(args.port)]
    os.chdir(ROOT)
    os.execve(sys.executable, command, env)


def export(args: argparse.Namespace) -> int:
    from dep_assets.archive.export import export_bundles
    from dep_assets.settings import Settings

    settings = Settings.from_env()
    database = Path(args.database) if args.database else settings.snapshot_path
    datasets = [resolve_dataset(d) for d in args.dataset] if args.dataset else None
    with duckdb.connect(str(database), read_only=True) as conn:
        files = export_bundles(conn, Path(args.out), date.fromisoformat(args.start), date.fromisoformat(args.end), datasets)
    for exported in files:
        print(f"{exported.path}: {exported.announcements} announcements, {exported.objects} objects")
    if not files:
        print(f"no bundles between {args.start} and {args.end} in {database}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dep_assets.cli", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("demo", help="run every asset on the recorded source and print the archive").set_defaults(func=demo)
    dev_parser = commands.add_parser("dev", help="open the Dagster UI (webserver + daemon) on the demo's settings")
    dev_parser.add_argument("--host", default="127.0.0.1")
    dev_parser.add_argument("--port", type=int, default=3000)
    dev_parser.set_defaults(func=dev)
    summary_parser = commands.add_parser("summary", help="print what the archive snapshot holds")
    summary_parser.add_argument("--database", help="a DuckDB file (default: the archive's snapshot)")
    summary_parser.set_defaults(func=summary)
    export_parser = commands.add_parser(
        "export-bundles", help="write one STIX bundle file per dataset and day, for a manual OpenCTI import"
    )
    export_parser.add_argument("start", help="first day, YYYY-MM-DD")
    export_parser.add_argument("end", help="last day, YYYY-MM-DD (included)")
    export_parser.add_argument("--dataset", action="append", help="a dataset code (repeatable; default: all)")
    export_parser.add_argument("--out", default="data/export", help="output directory (default: data/export)")
    export_parser.add_argument("--database", help="a DuckDB file (default: the archive's snapshot)")
    export_parser.set_defaults(func=export)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
