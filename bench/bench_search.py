"""Search speed: ``MedicationDispense?patient=X&status=completed`` through ``run_search`` over a SQLite store of
100,000 dispenses, against the same search answered by a ``json_extract`` scan of the resource table.

    .venv/bin/python -m bench.bench_search             # 100,000 dispenses, 5,000 patients
    .venv/bin/python -m bench.bench_search --n 300000  # larger
Also prints p50/p99 of page 1 against page 50 of a large result (keyset paging) and, for contrast, OFFSET.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, create_engine, event, text

from interop.store.indexing import index_rows
from interop.store.schema import INDEX_TABLES, metadata
from interop.store.search import page_query, run_search

GOAL = 1_000
PER_PATIENT = 20
STATUSES = ("completed", "completed", "completed", "in-progress", "cancelled")


def _dispense(n: int, patients: int, rng: random.Random) -> dict[str, Any]:
    day = 1 + n % 28
    return {
        "resourceType": "MedicationDispense",
        "id": f"md{n}",
        "meta": {"versionId": "1", "lastUpdated": "2026-11-26T10:00:00.000000+00:00"},
        "status": rng.choice(STATUSES),
        "subject": {"reference": f"Patient/pt{rng.randrange(patients)}"},
        "authorizingPrescription": [{"reference": f"MedicationRequest/rx{n // 3}"}],
        "medicationCodeableConcept": {
            "coding": [
                {"system": "http://hl7.org/fhir/sid/ndc", "code": f"{rng.randrange(99999):05d}-0123-01"}
            ]
        },
        "quantity": {"value": 30, "system": "http://unitsofmeasure.org", "code": "TAB"},
        "daysSupply": {"value": 30, "system": "http://unitsofmeasure.org", "code": "d"},
        "whenHandedOver": f"2025-{1 + n % 12:02d}-{day:02d}T10:00:00Z",
    }


def build(path: Path, n: int) -> tuple[Any, int]:
    """A SQLite store with ``n`` dispenses and their patients, bulk-inserted with their index rows."""
    engine = create_engine(f"sqlite:///{path}")

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, record: Any) -> None:
        cursor = dbapi_connection.cursor()
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "cache_size=-65536", "mmap_size=268435456"):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    metadata.create_all(engine)
    indexes = [ix for table in metadata.sorted_tables for ix in table.indexes]
    for ix in indexes:  # bulk load first, index once afterwards
        ix.drop(engine)
    rng = random.Random(20261126)
    patients = max(1, n // PER_PATIENT)
    docs: list[dict[str, Any]] = [
        {"resourceType": "Patient", "id": f"pt{i}", "name": [{"family": f"Family{i}", "given": ["Pat"]}]}
        for i in range(patients)
    ]
    docs += [_dispense(i, patients, rng) for i in range(n)]
    columns = {kind: [c.name for c in table.columns] for kind, table in INDEX_TABLES.items()}
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.executemany(
            "INSERT INTO resource (rid, rtype, id, version_id, last_updated, deleted, content)"
            " VALUES (?, ?, ?, 1, '2026-11-26T10:00:00.000000+00:00', 0, ?)",
            [(rid, d["resourceType"], d["id"], orjson.dumps(d).decode()) for rid, d in enumerate(docs, 1)],
        )
        index: dict[str, list[tuple[Any, ...]]] = {kind: [] for kind in INDEX_TABLES}
        for rid, doc in enumerate(docs, 1):
            for kind, extracted in index_rows(doc).items():
                names = columns[kind]
                index[kind].extend(
                    tuple(rid if c == "rid" else _sql_value(row[c]) for c in names) for row in extracted
                )
        for kind, rows in index.items():
            names = columns[kind]
            marks = ", ".join("?" * len(names))
            cursor.executemany(
                f"INSERT INTO {INDEX_TABLES[kind].name} ({', '.join(names)}) VALUES ({marks})", rows
            )
        raw.commit()
    finally:
        raw.close()
    for ix in indexes:
        ix.create(engine)
    return engine, patients


def _sql_value(value: Any) -> Any:
    return float(value) if isinstance(value, Decimal) else value


def _timed(fn: Callable[[], object], seconds: float) -> list[float]:
    samples: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return samples


def _p(samples: list[float], q: float) -> float:
    return sorted(samples)[min(len(samples) - 1, int(q * len(samples)))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=100_000, help="number of MedicationDispense resources")
    parser.add_argument("--seconds", type=float, default=3.0, help="how long each timed loop runs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        engine, patients = build(Path(tmp) / "bench.db", args.n)
        print(f"built {args.n:,} dispenses + {patients:,} patients in {time.perf_counter() - started:.1f} s")
        rng = random.Random(7)
        with engine.connect() as conn:
            _report(conn, patients, rng, args.seconds)
        engine.dispose()


def _search(conn: Connection, params: list[tuple[str, str]]) -> Any:
    return run_search(conn, "sqlite", "MedicationDispense", params, default_count=20, max_count=1000)


def _report(conn: Connection, patients: int, rng: random.Random, seconds: float) -> None:
    sql = page_query(
        conn, "sqlite", "MedicationDispense", [("patient", "pt1"), ("status", "completed")], count=20
    )
    for row in conn.execute(text("EXPLAIN QUERY PLAN " + sql)):
        print("  plan:", row[-1])

    def ours() -> None:
        _search(conn, [("patient", f"pt{rng.randrange(patients)}"), ("status", "completed")])

    scan_sql = text(
        "SELECT rid, content FROM resource WHERE rtype = 'MedicationDispense' AND deleted = 0"
        " AND json_extract(content, '$.subject.reference') = :ref"
        " AND json_extract(content, '$.status') = 'completed' ORDER BY rid LIMIT 21"
    )

    def scan() -> None:
        conn.execute(scan_sql, {"ref": f"Patient/pt{rng.randrange(patients)}"}).all()

    ours()  # warm the statement cache
    fast = _timed(ours, seconds)
    slow = _timed(scan, min(seconds, 2.0))
    rate, base = len(fast) / sum(fast), len(slow) / sum(slow)
    verdict = "meets" if rate >= GOAL else "MISSES"
    print(
        f"patient=X&status=completed: {rate:,.0f} searches/s (p50 {_p(fast, 0.5):.2f} ms, p99 {_p(fast, 0.99):.2f} ms)"
    )
    print(f"baseline json_extract scan: {base:,.1f} searches/s (p50 {_p(slow, 0.5):.1f} ms)")
    print(f"ratio: {rate / base:,.0f}x the scan; goal >= {GOAL:,}/s: {verdict}")

    # Page 1 against page 50 of a large result, keyset cursors vs OFFSET.
    big = [("status", "completed"), ("_count", "20")]
    cursor = None
    for _ in range(49):
        cursor = _search(conn, big + ([("_cursor", cursor)] if cursor else [])).next_cursor
    assert cursor is not None, "the large result has fewer than 50 pages"
    page50 = [*big, ("_cursor", cursor)]
    first = _timed(lambda: _search(conn, big), seconds / 2)
    fiftieth = _timed(lambda: _search(conn, page50), seconds / 2)
    print(
        f"status=completed&_count=20 page 1: p50 {_p(first, 0.5):.2f} ms p99 {_p(first, 0.99):.2f} ms;"
        f" page 50: p50 {_p(fiftieth, 0.5):.2f} ms p99 {_p(fiftieth, 0.99):.2f} ms"
        f" (page-50/page-1 p99 ratio {_p(fiftieth, 0.99) / _p(first, 0.99):.2f})"
    )
    offset_sql = text(  # the same plan as ours (rids in order, each probed), paged by OFFSET instead
        "SELECT r.rid, r.content FROM resource r WHERE r.rtype = 'MedicationDispense' AND r.deleted = 0"
        " AND EXISTS (SELECT 1 FROM idx_token t WHERE t.rid = r.rid AND t.param = 'status'"
        " AND t.code = 'completed') ORDER BY r.rid LIMIT 21 OFFSET :skip"
    )
    sorted_big = [("status", "completed"), ("_count", "20"), ("_sort", "-whenhandedover")]
    o1 = _timed(lambda: conn.execute(offset_sql, {"skip": 0}).all(), seconds / 4)
    o50 = _timed(lambda: conn.execute(offset_sql, {"skip": 49 * 20}).all(), seconds / 4)
    print(
        f"baseline OFFSET paging: page 1 p50 {_p(o1, 0.5):.2f} ms p99 {_p(o1, 0.99):.2f} ms;"
        f" page 50 p50 {_p(o50, 0.5):.2f} ms p99 {_p(o50, 0.99):.2f} ms"
    )
    s1 = _timed(lambda: _search(conn, sorted_big), seconds / 4)
    print(
        f"sorted (_sort=-whenhandedover) over the whole status=completed result: page 1 p50 {_p(s1, 0.5):.1f} ms"
    )


if __name__ == "__main__":
    main()
