"""Claims throughput: price + build (D.0 B1, FHIR Claim, Binary) + serialize, in claims per second on one core,
against building the same Claim and Binary through the ``fhir.resources`` R4B pydantic models in the same run.

Each claim is a different fill (Rx number, days supply 5-30, quantity, copay or coinsurance) of the synthetic
med-sync patient under the corpus Part D plan. Goal: >= 10,000 claims/s.

Run: ``.venv/bin/python -m bench.bench_claims`` (default 10,000 claims); ``--n`` scales.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import orjson
from fhir.resources.R4B.binary import Binary
from fhir.resources.R4B.claim import Claim

from adapters.telecom.fhir import SCC_SYSTEM, SCC_URL
from interop.claims.building import FILL_NUMBER_URL, ClaimInputs, build
from interop.claims.pricing import Costs
from interop.fhir.systems import CodeSystem, identifier_system

GOAL = 10_000
NPI = "1234567893"
CLASS = "http://terminology.hl7.org/CodeSystem/coverage-class"


def _inputs(i: int) -> tuple[ClaimInputs, Costs]:
    rx = str(100000 + i)
    days = 5 + i % 26
    system = identifier_system("rx-number", NPI)
    ndc = {"coding": [{"system": CodeSystem.NDC.value, "code": "00000123401"}]}
    pharmacy = {"resourceType": "Organization", "id": "pharmacy", "identifier": [{"system": CodeSystem.NPI.value,
                                                                                   "value": NPI}]}
    patient = {"resourceType": "Patient", "id": f"patient-{i % 500}", "gender": "female", "birthDate": "1950-01-01",
               "name": [{"family": "Synthetic", "given": ["Jane"]}]}
    coverage = {"resourceType": "Coverage", "id": f"coverage-{i % 500}", "subscriberId": f"SYNTH{i % 500:04d}",
                "dependent": "01", "class": [{"type": {"coding": [{"system": CLASS, "code": c}]}, "value": v}
                                             for c, v in (("rxbin", "999999"), ("rxpcn", "MEDSYNC"),
                                                          ("rxgroup", "GRP001"))]}
    prescriber = {"resourceType": "Practitioner", "id": "prescriber",
                  "identifier": [{"system": CodeSystem.NPI.value, "value": "1245319599"}]}
    request = {"resourceType": "MedicationRequest", "id": f"request-{i}", "identifier": [{"system": system, "value": rx}],
               "medicationCodeableConcept": ndc, "authoredOn": "2024-12-01",
               "dispenseRequest": {"numberOfRepeatsAllowed": 5}}
    dispense = {"resourceType": "MedicationDispense", "id": f"dispense-{i}",
                "extension": [{"url": FILL_NUMBER_URL, "valueUnsignedInt": 1 + i % 5},
                              {"url": SCC_URL, "valueCoding": {"system": SCC_SYSTEM, "code": "47"}}],
                "identifier": [{"system": system, "value": rx}], "medicationCodeableConcept": ndc,
                "quantity": {"value": days * 2, "unit": "EA"}, "daysSupply": {"value": days},
                "whenPrepared": "2025-03-19"}
    costs = Costs(Decimal(days * 630) / 100, Decimal("2.00"), Decimal(days * 850) / 100,
                  copay=Decimal("47.00") if i % 3 else None, coinsurance=None if i % 3 else Decimal("0.25"))
    return ClaimInputs(dispense, request, patient, coverage, pharmacy, prescriber), costs


def _ours(item: tuple[ClaimInputs, Costs]) -> None:
    built = build(*item)
    orjson.dumps(built.claim)
    orjson.dumps(built.binary)


def _pydantic(item: tuple[ClaimInputs, Costs]) -> None:
    built = build(*item)
    Claim.model_validate(built.claim).model_dump_json(exclude_none=True)
    Binary.model_validate(built.binary).model_dump_json(exclude_none=True)


def _rate(run: Callable[[Any], None], items: list[tuple[ClaimInputs, Costs]]) -> float:
    """Claims per CPU second (process time), the best of three passes."""
    best = float("inf")
    for _ in range(3):
        start = time.process_time()
        for item in items:
            run(item)
        best = min(best, time.process_time() - start)
    return len(items) / best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=10_000, help="claims per pass (default 10,000)")
    args = parser.parse_args(argv)
    items = [_inputs(i) for i in range(args.n)]
    baseline_items = items[: max(1, args.n // 10)]
    ours = _rate(_ours, items)
    baseline = _rate(_pydantic, baseline_items)
    verdict = "meets" if ours >= GOAL else "MISSES"
    print(f"price + build (B1 bytes, Claim, Binary) + serialize: {ours:,.0f} claims/s on one core "
          f"({verdict} the {GOAL:,}/s goal)")
    print(f"baseline, the same claims through fhir.resources R4B models: {baseline:,.0f} claims/s "
          f"(on {len(baseline_items):,} claims)")
    print(f"ratio: {ours / baseline:.1f}x")


if __name__ == "__main__":
    main()
