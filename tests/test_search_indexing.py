"""Index rows (interop.store.indexing): datatypes, precision ranges, path syntax, normalization."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from interop.store.indexing import MAX_INSTANT, MIN_INSTANT, compile_path, date_range, index_rows, normalize


def _ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=datetime.fromisoformat(text).tzinfo or UTC).timestamp()


def _rows(resource: dict[str, Any], kind: str, param: str) -> list[dict[str, Any]]:
    return [r for r in index_rows(resource)[kind] if r["param"] == param]


@pytest.mark.parametrize(
    ("value", "low", "high_exclusive"),
    [
        ("2024", "2024-01-01T00:00:00", "2025-01-01T00:00:00"),
        ("2024-02", "2024-02-01T00:00:00", "2024-03-01T00:00:00"),
        ("2024-12", "2024-12-01T00:00:00", "2025-01-01T00:00:00"),
        ("2024-05-01", "2024-05-01T00:00:00", "2024-05-02T00:00:00"),
        ("2024-05-01T10:30", "2024-05-01T10:30:00", "2024-05-01T10:31:00"),
        ("2024-05-01T10:30:15Z", "2024-05-01T10:30:15", "2024-05-01T10:30:16"),
        ("2024-05-01T10:30:15+02:00", "2024-05-01T08:30:15", "2024-05-01T08:30:16"),
        ("2024-05-01T10:30:15.5", "2024-05-01T10:30:15.5", "2024-05-01T10:30:15.6"),
    ],
)
def test_date_range_covers_the_precision(value: str, low: str, high_exclusive: str) -> None:
    span = date_range(value)
    assert span is not None
    assert span[0] == _ts(low)
    assert span[1] == pytest.approx(_ts(high_exclusive) - 0.001)
    assert span[1] < _ts(high_exclusive)


@pytest.mark.parametrize(
    "bad", ["", "24", "2024-13", "2024-02-30", "2024-05-01T25:00", "yesterday", "2024-5-1"]
)
def test_bad_dates_are_none(bad: str) -> None:
    assert date_range(bad) is None


def test_normalize_folds_case_and_accents() -> None:
    assert normalize("  Émile ") == "emile"
    assert normalize("STRASSE") == normalize("straße")
    assert normalize("Smíth") == "smith"


def test_path_syntax() -> None:
    get, only = compile_path("CarePlan.activity.detail.scheduled[x]")
    plan = {
        "activity": [{"detail": {"scheduledPeriod": {"start": "2024"}}}, {"detail": {"scheduledString": "x"}}]
    }
    assert get(plan) == [{"start": "2024"}, "x"] and only is None
    get, only = compile_path("Patient.telecom[system=email]:Patient")
    assert only == "Patient"
    assert get({"telecom": [{"system": "phone", "value": "1"}, {"system": "email", "value": "a@b"}]}) == [
        {"system": "email", "value": "a@b"}
    ]
    with pytest.raises(ValueError):
        compile_path("Patient")


def test_tokens_by_datatype() -> None:
    patient = {
        "resourceType": "Patient",
        "id": "p",
        "identifier": [{"system": "urn:mrn", "value": "42", "type": {"text": "MRN"}}],
        "telecom": [{"system": "email", "value": "a@b.org"}],
        "active": False,
        "gender": "female",
        "communication": [
            {"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "es"}], "text": "Spanish"}}
        ],
    }
    assert [(r["system"], r["code"], r["display"]) for r in _rows(patient, "token", "identifier")] == [
        ("urn:mrn", "42", "MRN")
    ]
    assert [(r["system"], r["code"]) for r in _rows(patient, "token", "email")] == [(None, "a@b.org")]
    assert [r["code"] for r in _rows(patient, "token", "active")] == ["false"]
    assert [r["code"] for r in _rows(patient, "token", "gender")] == ["female"]


def test_strings_from_names_and_addresses() -> None:
    patient = {
        "resourceType": "Patient",
        "id": "p",
        "name": [{"family": "Núñez", "given": ["Ana", "María"], "prefix": ["Dr."]}],
        "address": [{"line": ["1 Main St"], "city": "Springfield", "postalCode": "12345", "use": "home"}],
    }
    assert {(r["norm"], r["value"]) for r in _rows(patient, "string", "name")} == {
        ("nunez", "Núñez"),
        ("ana", "Ana"),
        ("maria", "María"),
        ("dr.", "Dr."),
    }
    assert {r["norm"] for r in _rows(patient, "string", "address")} == {"1 main st", "springfield", "12345"}
    assert [r["value"] for r in _rows(patient, "string", "address-city")] == ["Springfield"]


def test_references() -> None:
    dispense = {
        "resourceType": "MedicationDispense",
        "id": "d",
        "subject": {"reference": "https://pharmacy.example.org/fhir/Patient/p1/_history/3"},
        "authorizingPrescription": [
            {"reference": "MedicationRequest/rx1"},
            {"reference": "urn:uuid:0b7f0f0e-0000-4000-8000-000000000001"},
            {"reference": "#contained"},
        ],
        "performer": [
            {"actor": {"reference": "https://other.org/api/Practitioner/7", "type": "Practitioner"}}
        ],
    }
    assert [
        (r["target_type"], r["target_id"], r["url"]) for r in _rows(dispense, "reference", "patient")
    ] == [("Patient", "p1", None)]
    assert [
        (r["target_type"], r["target_id"], r["url"]) for r in _rows(dispense, "reference", "prescription")
    ] == [
        ("MedicationRequest", "rx1", None),
        (None, None, "urn:uuid:0b7f0f0e-0000-4000-8000-000000000001"),
    ]
    assert [r["url"] for r in _rows(dispense, "reference", "performer")] == [
        "https://other.org/api/Practitioner/7"
    ]
    group = dict(dispense, subject={"reference": "Group/g1"})
    assert _rows(group, "reference", "patient") == []
    assert [r["target_type"] for r in _rows(group, "reference", "subject")] == ["Group"]
    report = {
        "resourceType": "MeasureReport",
        "id": "m",
        "measure": "https://medsync-interop.org/fhir/Measure/pdc|1",
    }
    assert [r["url"] for r in _rows(report, "reference", "measure")] == [
        "https://medsync-interop.org/fhir/Measure/pdc|1"
    ]


def test_dates_periods_and_timings() -> None:
    encounter = {"resourceType": "Encounter", "id": "e", "period": {"start": "2024-05-01"}}
    [row] = _rows(encounter, "date", "date")
    assert row["low"] == _ts("2024-05-01T00:00:00") and row["high"] == MAX_INSTANT
    encounter["period"] = {"end": "2024-05-01"}
    [row] = _rows(encounter, "date", "date")
    assert row["low"] == MIN_INSTANT and row["high"] == pytest.approx(_ts("2024-05-02T00:00:00") - 0.001)
    plan = {
        "resourceType": "CarePlan",
        "id": "c",
        "activity": [
            {"detail": {"scheduledTiming": {"event": ["2024-03-01", "2024-01-10T08:00:00Z"]}}},
            {
                "detail": {
                    "scheduledTiming": {"repeat": {"boundsPeriod": {"start": "2025", "end": "2025-06"}}}
                }
            },
            {"detail": {"scheduledTiming": {"repeat": {"frequency": 1}}}},
        ],
    }
    spans = sorted((r["low"], r["high"]) for r in _rows(plan, "date", "activity-date"))
    assert spans == [
        (_ts("2024-01-10T08:00:00"), pytest.approx(_ts("2024-03-02T00:00:00") - 0.001)),
        (_ts("2025-01-01T00:00:00"), pytest.approx(_ts("2025-07-01T00:00:00") - 0.001)),
    ]


def test_quantities_and_money() -> None:
    encounter = {
        "resourceType": "Encounter",
        "id": "e",
        "length": {"value": 90, "unit": "min", "system": "x", "code": "min"},
    }
    assert [(r["value"], r["system"], r["code"]) for r in _rows(encounter, "quantity", "length")] == [
        (Decimal("90"), "x", "min")
    ]


def test_every_resource_gets_last_updated_and_duplicates_collapse() -> None:
    event = {
        "resourceType": "AuditEvent",
        "id": "a",
        "meta": {"lastUpdated": "2026-11-26T10:00:00.123456+00:00"},
        "agent": [{"who": {"reference": "Patient/p"}}],
        "entity": [{"what": {"reference": "Patient/p"}}],
    }
    [updated] = _rows(event, "date", "_lastUpdated")
    assert updated["low"] == updated["high"] == pytest.approx(_ts("2026-11-26T10:00:00.123456+00:00"))
    assert len(_rows(event, "reference", "patient")) == 1  # reached by agent.who and entity.what
    assert _rows({"resourceType": "Binary", "id": "b"}, "date", "_lastUpdated") == []
