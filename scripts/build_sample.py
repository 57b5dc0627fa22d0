"""Rebuild `data/sample/`, the recorded DEP responses `make demo` runs on.

Days 2026-03-01..04 of `ext` come from the invented records in ../shared/samples (every real quirk:
padded upper-case hashids, null hashids, `https//` links, URL-encoded descriptions, placeholder
victims, a re-dated announcement). Later days and the `prv` dataset are invented here, with a stray
non-object item and an unknown data type, so the demo shows that nothing is dropped.

Usage: python scripts/build_sample.py [path/to/privlist-ext-sample.json]
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "data" / "sample"


def invented(dataset: str, day: str, n: int, victim: str, actor: str, sector: str, country: str) -> dict:
    hashid = hashlib.sha256(f"{dataset}-{day}-{n}".encode()).hexdigest()
    slug = victim.lower().split()[0]
    return {
        "victim": victim,
        "date": day,
        "hashid": hashid,
        "victimDomain": f"{slug}-{n}.example",
        "site": f"{slug}-{n}.example",
        "sector": sector,
        "actor": actor,
        "country": country,
        "revenue": "$10M",
        "amount": None,
        "naics": None,
        "annLink": f"http://leak{n}exampleonion.onion/post/{n}",
        "annTitle": f"{victim} leak",
        "annDescription": f"{victim}%20data%20will%20be%20published.",
        "annDataTypes": ["PII", "FINANCIAL"],
    }


def main() -> None:
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "samples" / "privlist-ext-sample.json"
    records = json.loads(source.read_text(encoding="utf-8"))
    days: dict[tuple[str, str], list] = defaultdict(list)
    for record in records:
        days[("ext", record["date"])].append(record)

    days[("ext", "2026-03-05")] = [
        invented("ext", "2026-03-05", 501, "Harbor Lights Logistics", "NightOwl", "Transportation/Logistics", "Germany"),
        invented("ext", "2026-03-05", 502, "Quartz Analytics", "PaperKite", "Technology", "Canada"),
        "n/a",  # a stray non-object item: archived, then quarantined downstream
    ]
    unknown_type = invented("ext", "2026-03-06", 601, "Orchid Clinics", "BlueMantis", "Healthcare", "Italy")
    unknown_type["annDataTypes"] = ["MEDICAL", "CREDENTIALS"]  # CREDENTIALS: unknown to the connector
    unknown_type["leakSize"] = "120 GB"  # an unknown field: kept in the archive
    days[("ext", "2026-03-06")] = [
        unknown_type,
        invented("ext", "2026-03-06", 602, "Summit Foods", "unknown", "Retail", "n/a"),
    ]
    for n, day in enumerate(("2026-03-01", "2026-03-02", "2026-03-03"), start=700):
        days[("prv", day)] = [
            invented("prv", day, n, "Cedar Health Trust", "n/a", "Healthcare", "Spain"),
        ]

    for (dataset, day), items in sorted(days.items()):
        path = OUT / dataset / f"{day}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(items, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        print(f"{path.relative_to(ROOT)}: {len(items)} records")


if __name__ == "__main__":
    main()
