"""``interop plan --all`` end to end on SQLite: patients re-planned per second, against the pure planner alone.

Builds a SQLite store of ``--n`` synthetic patients (bench_sync's 5 maintenance tablets each, plus Patient and
Coverage, and an active sync CarePlan so that each one is enrolled) through ``process_bundle`` in large
transactions, then runs ``replan_all`` (what ``interop plan --all`` calls) twice: the first run writes every
plan, the second replaces them (the nightly case: earlier plans retired, same-anchor plans versioned). It
prints patients/s, the share of the time spent outside the planner, and the ratio against ``plan_patient``
alone over the same inputs in the same process. Run: ``.venv/bin/python -m bench.bench_plan_all [--n 10000]``.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.bench_sync import TODAY, synthetic_patient
from interop.config import get_settings
from interop.store import open_repository
from interop.store.base import Repository
from interop.sync.enrollment import enrolled_patients, load_everyone, plan_inputs, replan_all
from interop.sync.fhir_out import CYCLE_EXTENSION
from interop.sync.settings import load_settings

BATCH = 500
"""Patients per build transaction."""


def _put(resource: dict[str, Any]) -> dict[str, Any]:
    return {"resource": resource, "request": {"method": "PUT", "url": f"{resource['resourceType']}/{resource['id']}"}}


def build(repo: Repository, n: int, seed: int = 11) -> float:
    """Write ``n`` enrolled synthetic patients; returns the seconds it took."""
    rng = random.Random(seed)
    started = time.perf_counter()
    for start in range(0, n, BATCH):
        entries: list[dict[str, Any]] = []
        for index in range(start, min(start + BATCH, n)):
            requests, dispenses, coverage = synthetic_patient(rng, index)
            pid = f"bench-{index}"
            entries.append(_put({"resourceType": "Patient", "id": pid, "address": [{"state": "NY"}]}))
            entries.extend(_put(r) for r in (*requests, *dispenses, coverage))
            entries.append(_put({
                "resourceType": "CarePlan", "id": f"enrolled-{index}", "status": "active", "intent": "plan",
                "extension": [{"url": CYCLE_EXTENSION,
                               "valueDuration": {"value": 30, "unit": "days", "system": "http://unitsofmeasure.org",
                                                 "code": "d"}}],
                "subject": {"reference": f"Patient/{pid}"},
            }))
        repo.process_bundle({"resourceType": "Bundle", "type": "transaction", "entry": entries})
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=2000, help="patients in the database (default 2000)")
    args = parser.parse_args()
    # One counter of 40 pickups a day cannot take thousands of synthetic patients; give it room for all of
    # them so the bench measures planning and storage, not the search for a free day.
    os.environ.setdefault("INTEROP_PICKUP_CAPACITY", str(max(40, args.n)))
    get_settings.cache_clear()
    settings = load_settings()
    with tempfile.TemporaryDirectory() as folder:
        repo = open_repository(f"sqlite:///{Path(folder) / 'bench.db'}")
        try:
            built = build(repo, args.n)
            print(f"built {args.n} patients ({args.n * 12} resources) in {built:.1f} s")
            runs = []
            for label in ("first run (writes every plan)", "second run (replaces every plan)"):
                cpu = time.process_time()
                summary = replan_all(repo, settings, TODAY)
                cpu = time.process_time() - cpu
                assert summary.replanned == args.n and not summary.failed, summary.failed[:3]
                runs.append(summary)
                rate = summary.replanned / summary.total_seconds
                outside = 1 - summary.plan_seconds / summary.total_seconds
                print(f"{label}: {rate:,.0f} patients/s end to end ({summary.replanned / cpu:,.0f}/s of CPU), "
                      f"{outside:.0%} of the time outside the planner")
            people = load_everyone(repo, [ref.removeprefix("Patient/") for ref in enrolled_patients(repo)])
            inputs = list(people.values())
            started = time.perf_counter()
            for one in inputs:
                plan_inputs(one, settings, TODAY, cycle_days=30)
            pure = len(inputs) / (time.perf_counter() - started)
        finally:
            repo.close()
    steady = runs[-1].replanned / runs[-1].total_seconds
    print(f"pure planner alone (same inputs, optimizer): {pure:,.0f} patients/s")
    print(f"ratio end to end / pure planner: {steady / pure:.3f} (second run); "
          f"{runs[0].replanned / runs[0].total_seconds / pure:.3f} (first run)")


if __name__ == "__main__":
    main()
