"""PDC results as FHIR R4 MeasureReport dicts (individual per patient and measure, summary per population)
and as CSV text. One Measure canonical per PQA measure under OUR_BASE; ids from business keys."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

from interop.fhir.ids import business_id
from interop.fhir.systems import OUR_BASE, CodeSystem, extension_url
from interop.reports.classes import MEASURE_BY_CODE, ClassTable
from interop.reports.pdc import Coverage, PdcResult, Status

MEASURE_POPULATION = "http://terminology.hl7.org/CodeSystem/measure-population"
IMPROVEMENT_NOTATION = "http://terminology.hl7.org/CodeSystem/measure-improvement-notation"
SCORE_DIGITS = 4
CSV_COLUMNS = (
    "patient",
    "measure",
    "ingredient",
    "ingredient_name",
    "status",
    "reason",
    "fills",
    "index_date",
    "end_date",
    "denominator_days",
    "covered_days",
    "inpatient_days",
    "pdc",
    "adherent",
)


def measure_url(code: str) -> str:
    """Canonical URL of our Measure for a PQA measure code (PDC-DR, PDC-RASA, PDC-STA)."""
    return f"{OUR_BASE}/Measure/{MEASURE_BY_CODE[code].slug}"


def _population(code: str, count: int) -> dict[str, Any]:
    return {"code": {"coding": [{"system": MEASURE_POPULATION, "code": code}]}, "count": count}


def _populations(results: Iterable[PdcResult]) -> tuple[list[dict[str, Any]], int, int]:
    """initial-population (a fill in the class), denominator (≥ 2 fill dates, index ≥ 91 days before end),
    denominator-exclusion (insulin, hospice, ESRD…), numerator (eligible and PDC ≥ 80%)."""
    initial = denominator = excluded = numerator = 0
    for result in results:
        initial += 1
        if result.coverage is not None:
            denominator += 1
            if result.status == Status.EXCLUDED:
                excluded += 1
            elif result.coverage.adherent:
                numerator += 1
    counts = [
        _population("initial-population", initial),
        _population("denominator", denominator),
        _population("denominator-exclusion", excluded),
        _population("numerator", numerator),
    ]
    return counts, numerator, denominator - excluded


def _score(value: float) -> dict[str, Any]:
    """A proportion (0-1) as a UCUM unity Quantity."""
    return {"value": round(value, SCORE_DIGITS), "unit": "1", "system": str(CodeSystem.UCUM), "code": "1"}


def _coverage_extensions(result: PdcResult) -> list[dict[str, Any]]:
    extensions: list[dict[str, Any]] = [{"url": extension_url("pdc-status"), "valueCode": str(result.status)}]
    cover = result.coverage
    if cover is not None:
        extensions += [
            {
                "url": extension_url("pdc-index-date"),
                "valueDate": date.fromordinal(cover.index_day).isoformat(),
            },
            {"url": extension_url("pdc-denominator-days"), "valueUnsignedInt": cover.days},
            {"url": extension_url("pdc-covered-days"), "valueUnsignedInt": cover.covered},
            {"url": extension_url("pdc-inpatient-days"), "valueUnsignedInt": cover.inpatient},
        ]
    if result.reason:
        extensions.append({"url": extension_url("pdc-exclusion-reason"), "valueString": result.reason})
    return extensions


def _ingredient_concept(cui: str, table: ClassTable) -> dict[str, Any]:
    return {"coding": [{"system": str(CodeSystem.RXNORM), "code": cui, "display": table.name(cui)}]}


def _period(start: date, end: date) -> dict[str, str]:
    return {"start": start.isoformat(), "end": end.isoformat()}


def _shell(report_id: str, kind: str, code: str, start: date, end: date) -> dict[str, Any]:
    return {
        "resourceType": "MeasureReport",
        "id": report_id,
        "status": "complete",
        "type": kind,
        "measure": measure_url(code),
        "period": _period(start, end),
        "improvementNotation": {"coding": [{"system": IMPROVEMENT_NOTATION, "code": "increase"}]},
    }


def individual_report(
    class_result: PdcResult,
    ingredient_results: Sequence[PdcResult],
    table: ClassTable,
    start: date,
    end: date,
) -> dict[str, Any]:
    """One patient's MeasureReport for one measure: a group for the class (its PDC as measureScore, its
    days as extensions) stratified by ingredient, each stratum with that drug's own PDC."""
    code = class_result.measure
    report = _shell(
        business_id("MeasureReport", "individual", class_result.patient, code, start, end),
        "individual",
        code,
        start,
        end,
    )
    report["subject"] = {"reference": class_result.patient}
    populations, _, _ = _populations([class_result])
    group: dict[str, Any] = {
        "extension": _coverage_extensions(class_result),
        "code": {"text": f"{code}: {MEASURE_BY_CODE[code].title}"},
        "population": populations,
    }
    if class_result.coverage is not None:
        group["measureScore"] = _score(class_result.coverage.pdc)
    strata = []
    for result in ingredient_results:
        if result.ingredient is None:
            continue
        stratum: dict[str, Any] = {
            "extension": _coverage_extensions(result),
            "value": _ingredient_concept(result.ingredient, table),
            "population": _populations([result])[0],
        }
        if result.coverage is not None:
            stratum["measureScore"] = _score(result.coverage.pdc)
        strata.append(stratum)
    if strata:
        group["stratifier"] = [{"code": [{"text": "ingredient (RxNorm)"}], "stratum": strata}]
    report["group"] = [group]
    return report


def individual_reports(
    results: Sequence[PdcResult], table: ClassTable, start: date, end: date
) -> list[dict[str, Any]]:
    """An individual MeasureReport per patient and measure from ``patient_pdc`` / ``population_pdc`` output."""
    reports: list[dict[str, Any]] = []
    current: PdcResult | None = None
    drugs: list[PdcResult] = []
    for result in results:
        if result.ingredient is None:
            if current is not None:
                reports.append(individual_report(current, drugs, table, start, end))
            current, drugs = result, []
        else:
            drugs.append(result)
    if current is not None:
        reports.append(individual_report(current, drugs, table, start, end))
    return reports


def summary_reports(
    results: Sequence[PdcResult], table: ClassTable, start: date, end: date, population: str = "all patients"
) -> list[dict[str, Any]]:
    """A summary MeasureReport per measure over ``population`` (a label in the id): patient counts, the
    share adherent among the eligible as measureScore, and the same per ingredient as strata."""
    reports: list[dict[str, Any]] = []
    for code in sorted({r.measure for r in results}):
        classes = [r for r in results if r.measure == code and r.ingredient is None]
        populations, numerator, scored = _populations(classes)
        report = _shell(
            business_id("MeasureReport", "summary", population, code, start, end), "summary", code, start, end
        )
        group: dict[str, Any] = {
            "code": {"text": f"{code}: {MEASURE_BY_CODE[code].title}"},
            "population": populations,
        }
        if scored:
            group["measureScore"] = _score(numerator / scored)
        strata = []
        for cui in sorted({r.ingredient for r in results if r.measure == code and r.ingredient is not None}):
            per_drug = [r for r in results if r.measure == code and r.ingredient == cui]
            drug_populations, drug_numerator, drug_scored = _populations(per_drug)
            stratum: dict[str, Any] = {
                "value": _ingredient_concept(cui, table),
                "population": drug_populations,
            }
            if drug_scored:
                stratum["measureScore"] = _score(drug_numerator / drug_scored)
            strata.append(stratum)
        if strata:
            group["stratifier"] = [{"code": [{"text": "ingredient (RxNorm)"}], "stratum": strata}]
        report["group"] = [group]
        reports.append(report)
    return reports


def _csv_row(result: PdcResult, table: ClassTable) -> list[object]:
    cover: Coverage | None = result.coverage
    days: list[object] = ["", "", "", "", "", "", ""]
    if cover is not None:
        days = [
            date.fromordinal(cover.index_day).isoformat(),
            date.fromordinal(cover.end_day).isoformat(),
            cover.days,
            cover.covered,
            cover.inpatient,
            f"{cover.pdc:.{SCORE_DIGITS}f}",
            "yes" if cover.adherent and result.status == Status.ELIGIBLE else "no",
        ]
    ingredient = result.ingredient or ""
    name = table.name(ingredient) if ingredient else ""
    return [
        result.patient,
        result.measure,
        ingredient,
        name,
        result.status,
        result.reason or "",
        result.fill_count,
        *days,
    ]


def results_csv(results: Iterable[PdcResult], table: ClassTable) -> str:
    """The results as CSV text (header CSV_COLUMNS), one row per patient, measure and class or ingredient."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for result in results:
        writer.writerow(_csv_row(result, table))
    return out.getvalue()
