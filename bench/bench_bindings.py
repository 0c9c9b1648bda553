"""Cost of the required-binding check on the client write path: ``validate_resource`` on a typical
MedicationDispense (statuses, a dosage Timing, quantities, identifiers) against its baseline, the
``fhir.resources.R4B`` model check alone (what validation was before the binding check).

Run: ``.venv/bin/python -m bench.bench_bindings`` (default 5,000 rounds); ``--n`` to scale.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from interop.fhir.validation import model_class, validate_resource

DISPENSE: dict[str, Any] = {
    "resourceType": "MedicationDispense",
    "id": "bench-dispense",
    "text": {
        "status": "generated",
        "div": '<div xmlns="http://www.w3.org/1999/xhtml">atorvastatin 20 mg</div>',
    },
    "identifier": [{"use": "official", "system": "urn:oid:2.16.840.1.113883.3.4424.1", "value": "RX123-1"}],
    "status": "completed",
    "medicationCodeableConcept": {
        "coding": [
            {"system": "http://hl7.org/fhir/sid/ndc", "code": "00071015523", "display": "Lipitor 20 mg"}
        ]
    },
    "subject": {"reference": "Patient/p1"},
    "authorizingPrescription": [{"reference": "MedicationRequest/rx1"}],
    "quantity": {"value": 30, "unit": "tablet", "system": "http://unitsofmeasure.org", "code": "{tbl}"},
    "daysSupply": {"value": 30, "unit": "day", "system": "http://unitsofmeasure.org", "code": "d"},
    "whenHandedOver": "2026-11-20T10:15:00Z",
    "dosageInstruction": [
        {
            "text": "1 tablet daily",
            "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d", "when": ["MORN"]}},
            "doseAndRate": [{"doseQuantity": {"value": 1, "unit": "tablet"}}],
        }
    ],
}


def _per_call_us(fn: Any, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1e6


def _best_of(fns: tuple[Any, Any], n: int, rounds: int = 25) -> tuple[float, float]:
    """Fastest of ``rounds`` interleaved runs of each function, to keep a busy machine's noise out."""
    best = [float("inf"), float("inf")]
    for _ in range(rounds):
        for i, fn in enumerate(fns):
            best[i] = min(best[i], _per_call_us(fn, n // rounds or 1))
    return best[0], best[1]


def main() -> None:
    """Print µs per validation with and without the binding check and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=5000)
    n = parser.parse_args().n
    cls = model_class("MedicationDispense")
    assert cls is not None and validate_resource(DISPENSE) == []
    baseline, full = _best_of((lambda: cls.model_validate(DISPENSE), lambda: validate_resource(DISPENSE)), n)
    print(f"validate_resource(MedicationDispense): {full:.1f} µs/call (best of 25 rounds, {n} calls in all)")
    print(f"baseline, R4B model check only: {baseline:.1f} µs/call; ratio {full / baseline:.3f}")


if __name__ == "__main__":
    main()
