"""Demand forecast: quantity needed per drug (NDC) per day over the next N days, and the preparation workload.

Planned fills are the open fill Tasks of the sync plans (code fulfill, executionPeriod.start the fill day,
inputs ``quantity`` 442-E7 and ``prep-date``); patients without a plan are expected back when the supply of
their last fill of a prescription runs out (whenHandedOver + daysSupply 405-D5), for that fill's quantity.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from interop.fhir.ids import business_id
from interop.fhir.references import bare, day_of, reference_of
from interop.fhir.systems import OUR_BASE, CodeSystem, normalize_ndc

Resource = Mapping[str, Any]

FORECAST_MEASURE = f"{OUR_BASE}/Measure/demand-forecast"
MEASURE_POPULATION = "http://terminology.hl7.org/CodeSystem/measure-population"
TASK_INPUTS = f"{OUR_BASE}/CodeSystem/sync-task"
OPEN_TASK = frozenset({"draft", "requested", "received", "accepted", "ready", "in-progress", "on-hold"})
REFILLABLE = frozenset({"active", "on-hold"})
PLANNED = "planned"
EXPECTED = "expected-refill"


@dataclass(frozen=True, slots=True)
class Demand:
    """One fill to prepare: the drug key (``ndc|…`` or ``rxnorm|…`` or ``text|…``), its name, quantity
    and unit, the fill day, the prep day, the patient, and whether it is planned or an expected refill."""

    drug: str
    name: str
    quantity: float
    unit: str
    day: date
    prep_day: date
    patient: str
    source: str


def drug_key(concept: object) -> tuple[str, str]:
    """(key, name) of a medication CodeableConcept: the NDC-11 when coded, else RxNorm, else the text."""
    if not isinstance(concept, dict):
        return "text|unknown", "unknown drug"
    codings = [c for c in concept.get("coding", ()) if isinstance(c, dict)]
    name = concept.get("text") or next((c.get("display") for c in codings if c.get("display")), None)
    for system, label in ((str(CodeSystem.NDC), "ndc"), (str(CodeSystem.RXNORM), "rxnorm")):
        for coding in codings:
            code = coding.get("code")
            if coding.get("system") == system and isinstance(code, str):
                value = normalize_ndc(code) if label == "ndc" else code.strip()
                if value:
                    return f"{label}|{value}", str(name or value)
    text = str(name or "unknown drug")
    return f"text|{text}", text


def _inputs(task: Resource) -> dict[str, Resource]:
    out: dict[str, Resource] = {}
    for inp in task.get("input", ()):
        for coding in (inp.get("type") or {}).get("coding", ()):
            if coding.get("system") == TASK_INPUTS and isinstance(coding.get("code"), str):
                out[coding["code"]] = inp
    return out


def _is_fill_task(task: Resource) -> bool:
    return any(c.get("code") == "fulfill" for c in (task.get("code") or {}).get("coding", ()))


def planned_demand(
    tasks: Iterable[Resource], requests: Mapping[str, Resource], prep_lead_days: int, problems: list[str]
) -> list[Demand]:
    """Open fill Tasks as Demand; the drug comes from the focus MedicationRequest (``requests`` by
    ``MedicationRequest/id``), the prep day from the ``prep-date`` input (else the fill day minus the lead).
    A Task without a fill day or quantity is named in ``problems`` (element path) instead of counted."""
    out: list[Demand] = []
    drugs: dict[str, tuple[str, str]] = {}
    for task in tasks:
        if not _is_fill_task(task) or task.get("status") not in OPEN_TASK:
            continue
        day = day_of((task.get("executionPeriod") or {}).get("start"))
        if day is None:
            problems.append(f"Task/{task.get('id')}: executionPeriod.start missing or not a date")
            continue
        inputs = _inputs(task)
        qty = (inputs.get("quantity") or {}).get("valueQuantity") or {}
        value = qty.get("value")
        if not isinstance(value, int | float) or isinstance(value, bool):
            problems.append(f"Task/{task.get('id')}: input.where(type = 'quantity').valueQuantity.value missing")
            continue
        prep = day_of((inputs.get("prep-date") or {}).get("valueDate")) or day - timedelta(days=prep_lead_days)
        focus = bare(reference_of(task.get("focus")))
        drug = drugs.get(focus)
        if drug is None:
            drug = drugs[focus] = drug_key(requests.get(focus, {}).get("medicationCodeableConcept"))
        key, name = drug
        out.append(Demand(key, name, float(value), str(qty.get("unit") or "unit"), day, prep,
                          reference_of(task.get("for")), PLANNED))
    return out


def expected_refills(
    dispenses: Iterable[Resource], skip_prescriptions: Iterable[str], prep_lead_days: int, problems: list[str]
) -> list[Demand]:
    """The next refill of each prescription not in ``skip_prescriptions`` (those covered by a plan): its
    last completed dispense's day + daysSupply, for that dispense's quantity and drug. A last dispense
    without daysSupply (405-D5) or quantity (442-E7) is named in ``problems``."""
    skip = set(skip_prescriptions)
    last: dict[str, tuple[date, Resource]] = {}
    for disp in dispenses:
        if disp.get("status") != "completed":
            continue
        day = day_of(disp.get("whenHandedOver")) or day_of(disp.get("whenPrepared"))
        rx = bare(reference_of((disp.get("authorizingPrescription") or [{}])[0]))
        if day is None or not rx or rx in skip:
            continue
        if rx not in last or day > last[rx][0]:
            last[rx] = (day, disp)
    out: list[Demand] = []
    for day, disp in last.values():
        supply = (disp.get("daysSupply") or {}).get("value")
        qty = disp.get("quantity") or {}
        value = qty.get("value")
        if not isinstance(supply, int | float) or supply <= 0 or not isinstance(value, int | float):
            problems.append(f"MedicationDispense/{disp.get('id')}: daysSupply.value or quantity.value missing")
            continue
        due = day + timedelta(days=int(supply))
        key, name = drug_key(disp.get("medicationCodeableConcept"))
        out.append(Demand(key, name, float(value), str(qty.get("unit") or "unit"), due,
                          due - timedelta(days=prep_lead_days), reference_of(disp.get("subject")), EXPECTED))
    return out


@dataclass
class Forecast:
    """Demand from ``today`` for ``days`` days: per drug per day quantities, and fills to prepare per day."""

    today: date
    days: int
    demands: list[Demand]
    problems: list[str] = field(default_factory=list)
    """Resources that could not be counted, each named with the element at fault."""

    @property
    def last(self) -> date:
        return self.today + timedelta(days=self.days - 1)

    def by_drug(self) -> dict[tuple[str, str, str], dict[date, tuple[float, int]]]:
        """(drug key, name, unit) → fill day → (quantity, fills), fill days in the window only."""
        out: dict[tuple[str, str, str], dict[date, tuple[float, int]]] = {}
        for d in self.demands:
            if self.today <= d.day <= self.last:
                days = out.setdefault((d.drug, d.name, d.unit), {})
                qty, n = days.get(d.day, (0.0, 0))
                days[d.day] = (qty + d.quantity, n + 1)
        return {k: dict(sorted(v.items())) for k, v in sorted(out.items())}

    def workload(self) -> dict[date, tuple[int, int]]:
        """Prep day → (fills to prepare, patients) for every day of the window (zeros included); fills whose
        prep day has passed but whose fill day has not are due today."""
        out = {self.today + timedelta(days=i): (0, set[str]()) for i in range(self.days)}
        for d in self.demands:
            if d.day < self.today:
                continue
            prep = max(d.prep_day, self.today)
            if prep in out:
                n, who = out[prep]
                who.add(d.patient)
                out[prep] = (n + 1, who)
        return {day: (n, len(who)) for day, (n, who) in out.items()}


def demand_forecast(
    tasks: Iterable[Resource],
    requests: Iterable[Resource],
    dispenses: Iterable[Resource],
    today: date,
    days: int,
    prep_lead_days: int,
) -> Forecast:
    """The forecast for [today, today + days): planned fills plus the expected refills of prescriptions
    that no open fill Task covers (non-enrolled patients, or drugs left out of a plan) and that are still
    active (a stopped, cancelled or completed MedicationRequest is not refilled)."""
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    by_ref = {f"MedicationRequest/{r.get('id')}": r for r in requests}
    task_list = [t for t in tasks if _is_fill_task(t) and t.get("status") in OPEN_TASK]
    problems: list[str] = []
    planned = planned_demand(task_list, by_ref, prep_lead_days, problems)
    covered = {bare(reference_of(t.get("focus"))) for t in task_list}
    ended = {ref for ref, r in by_ref.items() if r.get("status", "active") not in REFILLABLE}
    expected = expected_refills(dispenses, covered | ended, prep_lead_days, problems)
    return Forecast(today, days, planned + expected, problems)


def _pop(code: str, count: int) -> dict[str, Any]:
    return {"code": {"coding": [{"system": MEASURE_POPULATION, "code": code}]}, "count": count}


def forecast_report(forecast: Forecast) -> dict[str, Any]:
    """The forecast as a summary MeasureReport: a group per drug (its code, total quantity as measureScore)
    stratified by fill day, then a group for the prep workload stratified by prep day (fills to prepare)."""
    groups: list[dict[str, Any]] = []
    for (key, name, unit), per_day in forecast.by_drug().items():
        label, _, code = key.partition("|")
        concept: dict[str, Any] = {"text": name}
        if label in ("ndc", "rxnorm"):
            system = str(CodeSystem.NDC) if label == "ndc" else str(CodeSystem.RXNORM)
            concept["coding"] = [{"system": system, "code": code, "display": name}]
        total = sum(q for q, _ in per_day.values())
        groups.append({
            "code": concept,
            "population": [_pop("initial-population", sum(n for _, n in per_day.values()))],
            "measureScore": {"value": round(total, 3), "unit": unit},
            "stratifier": [{
                "code": [{"text": "fill day"}],
                "stratum": [
                    {"value": {"text": day.isoformat()}, "population": [_pop("initial-population", n)],
                     "measureScore": {"value": round(qty, 3), "unit": unit}}
                    for day, (qty, n) in per_day.items()
                ],
            }],
        })
    load = forecast.workload()
    groups.append({
        "code": {"text": "preparation workload (fills to prepare per day)"},
        "population": [_pop("initial-population", sum(n for n, _ in load.values()))],
        "stratifier": [{
            "code": [{"text": "prep day"}],
            "stratum": [{"value": {"text": day.isoformat()}, "population": [_pop("initial-population", n)]}
                        for day, (n, _) in load.items()],
        }],
    })
    start, end = forecast.today.isoformat(), forecast.last.isoformat()
    return {
        "resourceType": "MeasureReport",
        "id": business_id("MeasureReport", "demand-forecast", start, end),
        "status": "complete",
        "type": "summary",
        "measure": FORECAST_MEASURE,
        "date": start,
        "period": {"start": start, "end": end},
        "group": groups,
    }


FORECAST_CSV_COLUMNS = ("day", "drug", "name", "quantity", "unit", "fills", "prep_fills")


def forecast_rows(forecast: Forecast) -> list[tuple[str, str, str, str, str, str, str]]:
    """Rows per fill day and drug (quantity, fills), then per prep day the workload (drug ``*``)."""
    rows: list[tuple[str, str, str, str, str, str, str]] = []
    for (key, name, unit), per_day in forecast.by_drug().items():
        for day, (qty, n) in per_day.items():
            rows.append((day.isoformat(), key, name, f"{qty:g}", unit, str(n), ""))
    rows.sort()
    for day, (n, _) in forecast.workload().items():
        rows.append((day.isoformat(), "*", "preparation workload", "", "", "", str(n)))
    return rows


def forecast_csv(forecast: Forecast) -> str:
    """The forecast as CSV text (header FORECAST_CSV_COLUMNS)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(FORECAST_CSV_COLUMNS)
    writer.writerows(forecast_rows(forecast))
    return out.getvalue()
