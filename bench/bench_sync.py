"""Sync planner throughput: patients planned per second on one core, optimizer vs latest-due-date baseline.

Each synthetic patient has 5 maintenance tablets (30- or 90-day supplies, scattered last fills, 0-11 refills)
as FHIR R4 dicts. The optimizer run lets ``plan_patient`` choose the anchor; the baseline run gives it the
latest next-due date (the open calculators' heuristic), so the ratio is the cost of the optimization. Both
runs also report transition short fills + trips per patient. FHIR Bundle output is timed separately.
Run: ``.venv/bin/python -m bench.bench_sync [--n 100000]``.
"""

from __future__ import annotations

import argparse
import gc
import random
import time
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from interop.sync.fhir_out import plan_bundle
from interop.sync.plan import SyncPlan, plan_patient
from interop.sync.settings import SyncSettings, load_settings

TODAY = date(2026, 11, 26)
DRUGS = ("lisinopril 10 mg tablet", "atorvastatin 20 mg tablet", "metformin 500 mg tablet",
         "amlodipine 5 mg tablet", "losartan 50 mg tablet", "levothyroxine 50 mcg tablet",
         "rosuvastatin 10 mg tablet", "sertraline 50 mg tablet")
PAYERS = (None, "SYNTH-PART-D", "SYNTH-PBM-80", "SYNTH-PBM-90")

Patient = tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]


def synthetic_patient(rng: random.Random, index: int) -> Patient:
    """5 maintenance tablets with their last dispense, and a Coverage."""
    patient = f"Patient/bench-{index}"
    requests: list[dict[str, Any]] = []
    dispenses: list[dict[str, Any]] = []
    for slot, name in enumerate(rng.sample(DRUGS, 5)):
        rid = f"bench-{index}-{slot}"
        days = rng.choice((30, 30, 30, 90))
        per_day = rng.choice((1, 1, 1, 2, 0.5))
        qty = int(days * per_day + 0.5)
        requests.append({
            "resourceType": "MedicationRequest", "id": rid, "status": "active", "intent": "order",
            "medicationCodeableConcept": {"text": name}, "subject": {"reference": patient},
            "requester": {"reference": "Practitioner/p1"},
            "dosageInstruction": [{"text": "as directed"}],
            "dispenseRequest": {
                "numberOfRepeatsAllowed": rng.randint(0, 11),
                "quantity": {"value": qty, "unit": "TAB"},
                "expectedSupplyDuration": {"value": days, "unit": "days", "system": "http://unitsofmeasure.org",
                                           "code": "d"},
            },
        })
        last = TODAY - timedelta(days=rng.randint(0, days - 1))
        dispenses.append({
            "resourceType": "MedicationDispense", "id": f"{rid}-1", "status": "completed",
            "subject": {"reference": patient},
            "authorizingPrescription": [{"reference": f"MedicationRequest/{rid}"}],
            "quantity": {"value": qty, "unit": "TAB"},
            "daysSupply": {"value": days, "unit": "day", "system": "http://unitsofmeasure.org", "code": "d"},
            "whenHandedOver": last.isoformat(),
        })
    payer = rng.choice(PAYERS)
    coverage: dict[str, Any] = {"resourceType": "Coverage", "id": f"cov-{index}", "status": "active",
                                "beneficiary": {"reference": patient}, "payor": [{"display": "plan"}]}
    if payer:
        coverage["class"] = [{"type": {"coding": [{"code": "rxbin"}]}, "value": payer}]
    return requests, dispenses, coverage


def latest_due(dispenses: list[dict[str, Any]]) -> date:
    """The baseline's anchor: the latest next-due date (last fill + days supply), never before today."""
    due = max(date.fromisoformat(d["whenHandedOver"]) + timedelta(days=d["daysSupply"]["value"]) for d in dispenses)
    return max(due, TODAY)


def _run(patients: list[Patient], plan: Callable[[Patient], SyncPlan]) -> tuple[float, float, list[SyncPlan]]:
    """(CPU seconds, wall seconds, plans): CPU time is the single-core figure on a shared machine."""
    gc.collect()
    gc.disable()
    try:
        cpu, wall = time.process_time(), time.perf_counter()
        plans = [plan(p) for p in patients]
        return time.process_time() - cpu, time.perf_counter() - wall, plans
    finally:
        gc.enable()


def _reference_loop_ms() -> float:
    """CPU ms of one million integer additions in a Python loop: how fast this interpreter runs right now."""
    best = float("inf")
    for _ in range(3):
        start = time.process_time()
        total = 0
        for i in range(1_000_000):
            total += i
        best = min(best, time.process_time() - start)
    return best * 1e3


def _events(plans: list[SyncPlan]) -> float:
    total = 0
    for plan in plans:
        if plan.choice is not None:
            win = plan.choice.winner()
            total += win.short_fills + win.trips
    return total / max(len(plans), 1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000, help="synthetic patients (goal: 100000)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    patients = [synthetic_patient(rng, i) for i in range(args.n)]
    settings: SyncSettings = load_settings()

    def optimized(p: Patient) -> SyncPlan:
        return plan_patient(p[0], p[1], p[2], settings, TODAY)

    def baseline(p: Patient) -> SyncPlan:
        return plan_patient(p[0], p[1], p[2], settings, TODAY, anchor=latest_due(p[1]))

    _run(patients[: min(500, args.n)], optimized)  # warm the drug-class memo and the interpreter caches
    base_s, base_wall, base_plans = _run(patients, baseline)
    opt_s, opt_wall, opt_plans = _run(patients, optimized)
    sample = opt_plans[: min(2_000, len(opt_plans))]
    gc.collect()
    gc.disable()
    try:
        start = time.process_time()
        for plan in sample:
            plan_bundle(plan)
        fhir_s = time.process_time() - start
    finally:
        gc.enable()

    opt_rate, base_rate = args.n / opt_s, args.n / base_s
    print(f"sync planner: {args.n} patients x 5 maintenance drugs, one core (CPU time; wall "
          f"{opt_wall:.2f} s optimizer, {base_wall:.2f} s baseline)")
    print(f"  optimizer (every anchor of the cycle scored): {opt_rate:,.0f} patients/s "
          f"({opt_s * 1e6 / args.n:.1f} us/patient), goal >= 20,000/s")
    print(f"  baseline (latest-due-date anchor, no optimization): {base_rate:,.0f} patients/s "
          f"({base_s * 1e6 / args.n:.1f} us/patient)")
    print(f"  ratio optimizer/baseline throughput: {opt_rate / base_rate:.2f}x")
    print(f"  short fills + transition trips per patient: optimizer {_events(opt_plans):.2f}, "
          f"baseline {_events(base_plans):.2f}")
    print(f"  interpreter speed check: 1M-addition loop {_reference_loop_ms():.1f} ms CPU "
          "(compare runs on different machines or loads by this)")
    print(f"  FHIR Bundle output (separate, on request): {len(sample) / fhir_s:,.0f} plans/s "
          f"({fhir_s * 1e6 / len(sample):.0f} us/plan)")


if __name__ == "__main__":
    main()
