"""Store import throughput: resources per second for transaction Bundles of 500 synthetic Patients and
MedicationDispenses (PUT with business-key ids, as ingest sends them) into a fresh SQLite file, against a
baseline in the same run: the same JSON inserted into a bare one-table SQLite with executemany.

    .venv/bin/python -m bench.bench_store            # 20,000 resources
    .venv/bin/python -m bench.bench_store --n 100000 # goal: >= 5,000 resources/s

The ratio shows what versioning, index rows and reference handling cost on top of writing the bytes.
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from interop.fhir.ids import business_id
from interop.store import open_repository

GOAL = 5_000
BATCH = 500
NDCS = ("00093505698", "00071015523", "00378395277", "68180051301")


def synthetic_resources(n: int) -> list[dict[str, Any]]:
    """``n`` resources: Patients and their MedicationDispenses, alternating (one dispense per patient)."""
    out: list[dict[str, Any]] = []
    for number in range(n // 2 + n % 2):
        mrn = f"M{number:07d}"
        pid = business_id("patient", "bench", mrn)
        out.append(
            {
                "resourceType": "Patient",
                "id": pid,
                "identifier": [{"system": "urn:oid:2.16.840.1.113883.3.4444.1", "value": mrn}],
                "name": [{"family": f"Family{number % 997}", "given": [f"Given{number % 101}"]}],
                "gender": ("female", "male")[number % 2],
                "birthDate": f"19{40 + number % 60:02d}-{1 + number % 12:02d}-{1 + number % 28:02d}",
                "telecom": [{"system": "phone", "value": f"555-{number % 10000:04d}", "use": "mobile"}],
            }
        )
        if len(out) == n:
            break
        ndc = NDCS[number % len(NDCS)]
        out.append(
            {
                "resourceType": "MedicationDispense",
                "id": business_id("dispense", "bench", f"RX{number}", 1),
                "identifier": [{"system": "urn:oid:2.16.840.1.113883.3.4444.2", "value": f"RX{number}-1"}],
                "status": "completed",
                "medicationCodeableConcept": {
                    "coding": [{"system": "http://hl7.org/fhir/sid/ndc", "code": ndc}],
                    "text": f"drug {ndc}",
                },
                "subject": {"reference": f"Patient/{pid}"},
                "quantity": {"value": 30, "unit": "tablet", "system": "http://unitsofmeasure.org", "code": "{tbl}"},
                "daysSupply": {"value": 30, "unit": "day", "system": "http://unitsofmeasure.org", "code": "d"},
                "whenHandedOver": f"2026-{1 + number % 12:02d}-{1 + number % 28:02d}T10:00:00Z",
            }
        )
    return out


def bundles(resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
                for r in resources[start : start + BATCH]
            ],
        }
        for start in range(0, len(resources), BATCH)
    ]


def run_store(folder: Path, work: list[dict[str, Any]]) -> tuple[float, float]:
    """Wall and CPU seconds of importing ``work``; CPU time shows the cost when other work shares the cores."""
    repo = open_repository(f"sqlite:///{folder / 'store.db'}")
    try:
        started, cpu = time.perf_counter(), time.process_time()
        for bundle in work:
            repo.process_bundle(bundle)
        return time.perf_counter() - started, time.process_time() - cpu
    finally:
        repo.close()


def run_baseline(folder: Path, resources: list[dict[str, Any]]) -> float:
    """The same documents as JSON text into one bare table, one transaction of executemany per batch."""
    conn = sqlite3.connect(folder / "bare.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE doc (rtype TEXT NOT NULL, id TEXT NOT NULL, content TEXT NOT NULL, PRIMARY KEY (rtype, id))")
    started = time.perf_counter()
    for start in range(0, len(resources), BATCH):
        rows = [(r["resourceType"], r["id"], orjson.dumps(r).decode()) for r in resources[start : start + BATCH]]
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO doc VALUES (?, ?, ?)", rows)
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20_000, help="resources to import (default 20,000)")
    args = parser.parse_args()
    resources = synthetic_resources(args.n)
    work = bundles(resources)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        store_s, store_cpu = run_store(folder, work)
        bare_s = run_baseline(folder, resources)
    store_rate = len(resources) / store_s
    bare_rate = len(resources) / bare_s
    print(f"transaction import, SQLite, {len(resources)} resources in Bundles of {BATCH}:")
    print(f"  store:    {store_rate:10,.0f} resources/s  ({store_s:.2f} s; goal >= {GOAL:,})")
    print(f"  store CPU:{len(resources) / store_cpu:10,.0f} resources per CPU-second ({store_cpu:.2f} s)")
    print(f"  baseline: {bare_rate:10,.0f} resources/s  ({bare_s:.2f} s; bare table, executemany)")
    print(f"  ratio store/baseline: {store_rate / bare_rate:.3f}  (goal met: {store_rate >= GOAL})")


if __name__ == "__main__":
    main()
