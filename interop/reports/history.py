"""A patient's medication history as the PDC measures need it, extracted from FHIR R4 resources.

Fills come from MedicationDispense (whenHandedOver, daysSupply, medication code), inpatient stays from
Encounter (class IMP/ACUTE/NONAC, period), exclusions from Condition (ESRD) and discharge to hospice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from interop.fhir.systems import CodeSystem
from interop.reports.classes import ClassTable

ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
DISCHARGE_DISPOSITION = "http://terminology.hl7.org/CodeSystem/discharge-disposition"
INPATIENT_CLASSES = frozenset({"IMP", "ACUTE", "NONAC"})
"""v3 ActCode encounter classes whose days CMS censors from the PDC (inpatient, acute, non-acute stays)."""
ESRD_CODES = frozenset({(str(CodeSystem.SNOMED), "46177005"), (ICD10CM, "N18.6"), (ICD10CM, "Z99.2")})
"""End-stage renal disease (SNOMED CT 46177005, ICD-10-CM N18.6) and dependence on dialysis (Z99.2)."""
HOSPICE = "hospice"
ESRD = "esrd"
_COUNTED_DISPENSE = "completed"
_VOID_ENCOUNTER = frozenset({"planned", "cancelled", "entered-in-error"})
_VOID_CONDITION = frozenset({"refuted", "entered-in-error"})
_INACTIVE_CONDITION = frozenset({"inactive", "resolved", "remission"})

Fills = Mapping[str, Sequence[tuple[int, int]]]
"""Ingredient RxNorm CUI → fills as (day ordinal of the dispense, days' supply), sorted by day."""


@dataclass(frozen=True)
class PatientHistory:
    """One patient's fills per ingredient, inpatient stays as inclusive day ordinals, and exclusion flags."""

    patient: str
    fills: Fills
    stays: Sequence[tuple[int, int]] = ()
    flags: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        for cui, fills in self.fills.items():
            if any(fills[i][0] > fills[i + 1][0] for i in range(len(fills) - 1)):
                raise ValueError(f"{self.patient}: fills of ingredient {cui} are not sorted by day")
            if any(supply < 1 for _, supply in fills):
                raise ValueError(f"{self.patient}: a fill of ingredient {cui} has no days' supply")


@dataclass
class Extraction:
    """Histories per patient reference, and one message per resource that could not be used (never dropped silently)."""

    histories: dict[str, PatientHistory] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


class ResourceProblem(ValueError):
    """A resource the measures cannot use, named by type/id and element path."""


def _label(resource: Mapping[str, Any]) -> str:
    return f"{resource.get('resourceType', '?')}/{resource.get('id', '?')}"


def _subject(resource: Mapping[str, Any]) -> str:
    ref = (resource.get("subject") or {}).get("reference")
    if not isinstance(ref, str) or not ref:
        raise ResourceProblem(f"{_label(resource)}: subject.reference missing")
    return ref


def _day(resource: Mapping[str, Any], path: str, value: object) -> int:
    if not isinstance(value, str) or len(value) < 10:
        raise ResourceProblem(f"{_label(resource)}: {path} missing or not a full date: {value!r}")
    try:
        return date.fromisoformat(value[:10]).toordinal()
    except ValueError as exc:
        raise ResourceProblem(f"{_label(resource)}: {path} is not a date: {value!r}") from exc


def _codings(dispense: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    concept = dispense.get("medicationCodeableConcept")
    if concept is None:
        ref = (dispense.get("medicationReference") or {}).get("reference", "")
        if isinstance(ref, str) and ref.startswith("#"):
            for contained in dispense.get("contained") or ():
                if contained.get("resourceType") == "Medication" and contained.get("id") == ref[1:]:
                    concept = contained.get("code")
    codings = (concept or {}).get("coding") or []
    return [c for c in codings if isinstance(c, Mapping)]


def dispense_fills(
    dispense: Mapping[str, Any], table: ClassTable
) -> tuple[str, tuple[str, ...], int, int] | None:
    """(patient, ingredient CUIs, day, days' supply) of a completed dispense of a tracked drug, else None.

    The day is whenHandedOver (the pickup; whenPrepared when absent) and the supply daysSupply.value, the
    FHIR image of NCPDP 405-D5; a tracked dispense missing either raises ResourceProblem naming the element.
    """
    if dispense.get("status") != _COUNTED_DISPENSE:
        return None
    ingredients: tuple[str, ...] = ()
    for coding in _codings(dispense):
        system, code = coding.get("system"), coding.get("code")
        if isinstance(system, str) and isinstance(code, str):
            ingredients = ingredients + tuple(
                c for c in table.ingredients(system, code) if c not in ingredients
            )
    if not ingredients:
        return None
    patient = _subject(dispense)
    handed = dispense.get("whenHandedOver")
    path = "whenHandedOver" if handed is not None else "whenPrepared"
    day = _day(dispense, path, handed if handed is not None else dispense.get("whenPrepared"))
    supply = (dispense.get("daysSupply") or {}).get("value")
    if (
        isinstance(supply, bool)
        or not isinstance(supply, int | float)
        or supply <= 0
        or supply != int(supply)
    ):
        raise ResourceProblem(
            f"{_label(dispense)}: daysSupply.value must be a positive whole number, got {supply!r}"
        )
    return patient, ingredients, day, int(supply)


def encounter_stay(encounter: Mapping[str, Any], open_until: int) -> tuple[str, int, int] | None:
    """(patient, first day, last day) of an inpatient Encounter, both inclusive; an open stay runs to open_until."""
    if (encounter.get("class") or {}).get("code") not in INPATIENT_CLASSES:
        return None
    if encounter.get("status") in _VOID_ENCOUNTER:
        return None
    patient = _subject(encounter)
    period = encounter.get("period") or {}
    first = _day(encounter, "period.start", period.get("start"))
    last = _day(encounter, "period.end", period["end"]) if period.get("end") else open_until
    if last < first:
        raise ResourceProblem(f"{_label(encounter)}: period.end is before period.start")
    return patient, first, last


def _discharged_to_hospice(encounter: Mapping[str, Any]) -> bool:
    disposition = (encounter.get("hospitalization") or {}).get("dischargeDisposition") or {}
    return any(
        c.get("system") == DISCHARGE_DISPOSITION and c.get("code") == "hosp"
        for c in disposition.get("coding") or ()
    )


def _status_code(condition: Mapping[str, Any], element: str) -> str | None:
    for coding in (condition.get(element) or {}).get("coding") or ():
        code = coding.get("code")
        if isinstance(code, str):
            return code
    return None


def condition_flag(condition: Mapping[str, Any]) -> str | None:
    """``esrd`` for an active, unrefuted end-stage renal disease or dialysis Condition, else None."""
    if _status_code(condition, "verificationStatus") in _VOID_CONDITION:
        return None
    if _status_code(condition, "clinicalStatus") in _INACTIVE_CONDITION:
        return None
    for coding in (condition.get("code") or {}).get("coding") or ():
        if (coding.get("system"), coding.get("code")) in ESRD_CODES:
            return ESRD
    return None


def extract_histories(
    dispenses: Iterable[Mapping[str, Any]],
    table: ClassTable,
    *,
    encounters: Iterable[Mapping[str, Any]] = (),
    conditions: Iterable[Mapping[str, Any]] = (),
    flags: Mapping[str, Iterable[str]] | None = None,
    open_until: date = date.max,
) -> Extraction:
    """Group tracked fills, inpatient stays and exclusion flags by patient reference.

    ``flags`` adds known exclusions (``hospice``, ``esrd``) per patient reference; an Encounter discharged to
    hospice (dischargeDisposition ``hosp``) flags hospice. Unusable resources are listed in ``problems``.
    """
    out = Extraction()
    fills: dict[str, dict[str, list[tuple[int, int]]]] = {}
    stays: dict[str, list[tuple[int, int]]] = {}
    marks: dict[str, set[str]] = {p: set(f) for p, f in (flags or {}).items()}
    for dispense in dispenses:
        try:
            found = dispense_fills(dispense, table)
        except ResourceProblem as exc:
            out.problems.append(str(exc))
            continue
        if found is not None:
            patient, ingredients, day, supply = found
            per_drug = fills.setdefault(patient, {})
            for cui in ingredients:
                per_drug.setdefault(cui, []).append((day, supply))
    for encounter in encounters:
        try:
            stay = encounter_stay(encounter, open_until.toordinal())
            if _discharged_to_hospice(encounter):
                marks.setdefault(_subject(encounter), set()).add(HOSPICE)
        except ResourceProblem as exc:
            out.problems.append(str(exc))
            continue
        if stay is not None:
            stays.setdefault(stay[0], []).append((stay[1], stay[2]))
    for condition in conditions:
        flag = condition_flag(condition)
        if flag is not None:
            try:
                marks.setdefault(_subject(condition), set()).add(flag)
            except ResourceProblem as exc:
                out.problems.append(str(exc))
    for patient in sorted(set(fills) | set(stays) | set(marks)):
        out.histories[patient] = PatientHistory(
            patient,
            {cui: sorted(days) for cui, days in sorted(fills.get(patient, {}).items())},
            sorted(stays.get(patient, ())),
            frozenset(marks.get(patient, ())),
        )
    return out
