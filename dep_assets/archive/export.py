"""Export archived STIX bundles to files, for a manual import in OpenCTI (Data > Import)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb

EXPORT_NAMESPACE = uuid.UUID("8a0f1b2e-3c4d-5e6f-8a9b-0c1d2e3f4a5b")


@dataclass(frozen=True)
class ExportedFile:
    path: Path
    dataset: str
    day: date
    announcements: int
    objects: int


def export_bundles(
    conn: duckdb.DuckDBPyConnection,
    out_dir: Path,
    start: date,
    end: date,
    datasets: list[str] | None = None,
) -> list[ExportedFile]:
    """Write one bundle file per (dataset, day) with every object of that day's announcements.

    Objects shared by several announcements (the author, a marking, a victim named twice) appear once;
    the file's bundle id derives from dataset, day and the bundles' own ids, so re-exporting the same
    archive gives the same files.
    """
    rows = conn.execute(
        """
        SELECT dataset, day, bundle_id, bundle FROM stix_bundles
        WHERE day BETWEEN ? AND ? AND (? IS NULL OR list_contains(?, dataset))
        ORDER BY dataset, day, hashid
        """,
        [start, end, datasets, datasets],
    ).fetchall()
    grouped: dict[tuple[str, date], list[tuple[str, str]]] = {}
    for dataset, day, bundle_id, bundle in rows:
        grouped.setdefault((dataset, day), []).append((bundle_id, bundle))

    written = []
    for (dataset, day), bundles in grouped.items():
        objects: dict[str, dict] = {}
        for _, text in bundles:
            for obj in json.loads(text)["objects"]:
                objects.setdefault(obj["id"], obj)
        name = f"{dataset}|{day}|" + ",".join(bundle_id for bundle_id, _ in bundles)
        merged = {
            "type": "bundle",
            "id": f"bundle--{uuid.uuid5(EXPORT_NAMESPACE, name)}",
            "objects": list(objects.values()),
        }
        path = out_dir / dataset / f"{day.isoformat()}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(merged, ensure_ascii=False, sort_keys=True, indent=1) + "\n", encoding="utf-8")
        written.append(ExportedFile(path, dataset, day, len(bundles), len(objects)))
    return written
