"""PDC MeasureReports: every report validates against the official R4 JSON schema, and carries the counts,
score, days and ids the measures computed; the CSV export has one row per result."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from pathlib import Path
from typing import Any

from interop.fhir.ids import business_id
from interop.reports.classes import MEASURES, load_class_table
from interop.reports.history import PatientHistory
from interop.reports.measure_report import (
    CSV_COLUMNS,
    individual_reports,
    measure_url,
    results_csv,
    summary_reports,
)
from interop.reports.pdc import Status, population_pdc
from tests.fhirschema import assert_valid

TABLE = load_class_table()
START, END = date(2025, 1, 1), date(2025, 12, 31)


def _d(text: str) -> int:
    return date.fromisoformat(text).toordinal()


def _monthly(first: str, count: int, supply: int = 30) -> list[tuple[int, int]]:
    return [(_d(first) + i * supply, supply) for i in range(count)]


HISTORIES = {
    # adherent on a statin (12 x 30 d from Jan 1 = 360 of 365) and lisinopril every 45 days (30 d: 240 of 345)
    "Patient/a": PatientHistory(
        "Patient/a",
        {"83367": _monthly("2025-01-01", 12), "29046": [(_d("2025-01-21") + i * 45, 30) for i in range(8)]},
        [(_d("2025-06-01"), _d("2025-06-05"))],
    ),
    # metformin and glipizide, plus insulin: excluded from PDC-DR
    "Patient/b": PatientHistory(
        "Patient/b",
        {
            "6809": _monthly("2025-02-01", 6),
            "4821": _monthly("2025-03-01", 3),
            "274783": [(_d("2025-05-01"), 30)],
        },
    ),
    # one statin fill only; a late-index lisinopril start
    "Patient/c": PatientHistory(
        "Patient/c", {"36567": [(_d("2025-03-01"), 90)], "29046": _monthly("2025-11-01", 2)}, (), frozenset()
    ),
}
RESULTS = population_pdc(HISTORIES.values(), TABLE, START, END)


def _counts(group: dict[str, Any]) -> dict[str, int]:
    return {p["code"]["coding"][0]["code"]: p["count"] for p in group["population"]}


def _ext(element: dict[str, Any], name: str) -> Any:
    (found,) = [e for e in element["extension"] if e["url"].endswith("/" + name)]
    return next(v for k, v in found.items() if k.startswith("value"))


def test_individual_reports_validate_and_carry_the_pdc() -> None:
    reports = individual_reports(RESULTS, TABLE, START, END)
    assert len(reports) == 5
    for report in reports:
        assert_valid(report)
        assert report["status"] == "complete" and report["type"] == "individual"
        assert report["period"] == {"start": "2025-01-01", "end": "2025-12-31"}
    statin = next(
        r for r in reports if r["subject"]["reference"] == "Patient/a" and r["measure"].endswith("pdc-sta")
    )
    assert statin["measure"] == measure_url("PDC-STA") == "https://medsync-interop.org/fhir/Measure/pdc-sta"
    assert statin["id"] == business_id("MeasureReport", "individual", "Patient/a", "PDC-STA", START, END)
    group = statin["group"][0]
    # 12 x 30 d from Jan 1 reach Dec 26, held 5 days in hospital (Jun 1-5): covered 360 of 365 - 5 = 360
    assert _ext(group, "pdc-denominator-days") == 360
    assert _ext(group, "pdc-covered-days") == 360
    assert _ext(group, "pdc-inpatient-days") == 5
    assert _ext(group, "pdc-index-date") == "2025-01-01"
    assert group["measureScore"]["value"] == 1.0
    assert _counts(group) == {
        "initial-population": 1,
        "denominator": 1,
        "denominator-exclusion": 0,
        "numerator": 1,
    }
    (stratum,) = group["stratifier"][0]["stratum"]
    assert stratum["value"]["coding"][0] == {
        "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
        "code": "83367",
        "display": "atorvastatin",
    }


def test_excluded_and_unscored_patients_in_individual_reports() -> None:
    reports = {
        (r["subject"]["reference"], r["measure"].rsplit("/", 1)[1]): r
        for r in individual_reports(RESULTS, TABLE, START, END)
    }
    diabetes = reports[("Patient/b", "pdc-dr")]["group"][0]
    assert _counts(diabetes) == {
        "initial-population": 1,
        "denominator": 1,
        "denominator-exclusion": 1,
        "numerator": 0,
    }
    assert _ext(diabetes, "pdc-exclusion-reason") == "insulin glargine use"
    assert len(diabetes["stratifier"][0]["stratum"]) == 2
    single = reports[("Patient/c", "pdc-sta")]["group"][0]
    assert _counts(single) == {
        "initial-population": 1,
        "denominator": 0,
        "denominator-exclusion": 0,
        "numerator": 0,
    }
    assert "measureScore" not in single and _ext(single, "pdc-status") == "single-fill"
    assert _ext(reports[("Patient/c", "pdc-rasa")]["group"][0], "pdc-status") == "late-index"


def test_summary_reports_validate_and_count_the_population() -> None:
    reports = summary_reports(RESULTS, TABLE, START, END, population="pharmacy 1")
    assert [r["measure"].rsplit("/", 1)[1] for r in reports] == ["pdc-dr", "pdc-rasa", "pdc-sta"]
    for report in reports:
        assert_valid(report)
        assert report["type"] == "summary" and "subject" not in report
    rasa = reports[1]
    assert rasa["id"] == business_id("MeasureReport", "summary", "pharmacy 1", "PDC-RASA", START, END)
    group = rasa["group"][0]
    # Patient/a: lisinopril 8 x 30 d every 45 days from Jan 21, 240 of 345 - 5 in hospital = 340: 0.71 (not
    # adherent); Patient/c: late index. One scored, none adherent.
    assert _counts(group) == {
        "initial-population": 2,
        "denominator": 1,
        "denominator-exclusion": 0,
        "numerator": 0,
    }
    assert group["measureScore"]["value"] == 0.0
    statins = reports[2]["group"][0]
    assert _counts(statins) == {
        "initial-population": 2,
        "denominator": 1,
        "denominator-exclusion": 0,
        "numerator": 1,
    }
    assert statins["measureScore"]["value"] == 1.0
    assert [s["value"]["coding"][0]["code"] for s in statins["stratifier"][0]["stratum"]] == [
        "36567",
        "83367",
    ]
    diabetes = reports[0]["group"][0]
    assert "measureScore" not in diabetes


def test_results_csv() -> None:
    rows = list(csv.reader(io.StringIO(results_csv(RESULTS, TABLE))))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert len(rows) == 1 + len(RESULTS)
    by_key = {(r[0], r[1], r[2]): dict(zip(CSV_COLUMNS, r, strict=True)) for r in rows[1:]}
    rasa = by_key[("Patient/a", "PDC-RASA", "")]
    assert (rasa["denominator_days"], rasa["inpatient_days"], rasa["adherent"]) == ("340", "5", "no")
    assert by_key[("Patient/b", "PDC-DR", "")]["reason"] == "insulin glargine use"
    assert by_key[("Patient/c", "PDC-STA", "36567")]["ingredient_name"] == "simvastatin"


CONFORMANCE = Path(__file__).resolve().parent.parent / "conformance"


def _conformance(name: str) -> dict[str, Any]:
    resource: dict[str, Any] = json.loads((CONFORMANCE / name).read_text())
    return resource


def test_measures_extensions_and_status_codes_are_defined_in_conformance() -> None:
    """Each Measure canonical, each extension (with its value type) and each status code the reports use is
    defined in conformance/, and those definitions validate."""
    for measure in MEASURES:
        resource = _conformance(f"Measure-{measure.slug}.json")
        assert_valid(resource)
        assert resource["url"] == measure_url(measure.code)
    used: dict[str, str] = {}
    for report in individual_reports(RESULTS, TABLE, START, END):
        for group in report["group"]:
            elements = [group, *(s for st in group.get("stratifier", []) for s in st["stratum"])]
            for element in elements:
                for ext in element["extension"]:
                    used[ext["url"]] = next(k for k in ext if k.startswith("value"))
    assert len(used) == 6
    for url, value_key in used.items():
        definition = _conformance(f"StructureDefinition-{url.rsplit('/', 1)[1]}.json")
        assert_valid(definition)
        assert definition["url"] == url
        (value,) = [e for e in definition["differential"]["element"] if e["path"] == "Extension.value[x]"]
        assert "value" + value["type"][0]["code"][0].upper() + value["type"][0]["code"][1:] == value_key
    codes = _conformance("CodeSystem-pdc-status.json")
    assert_valid(codes)
    assert_valid(_conformance("ValueSet-pdc-status.json"))
    assert {c["code"] for c in codes["concept"]} == {str(s) for s in Status}
