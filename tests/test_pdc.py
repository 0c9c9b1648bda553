"""PQA PDC: hand-computed cases for each rule (arithmetic in each docstring), the reconstructed PQA pdc-dr
shift example, FHIR extraction, and the bitset implementation against the day-by-day oracle."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.hl7v2 import parse_message
from adapters.hl7v2.mapping import to_bundle
from interop.reports.classes import ClassTableError, load_class_table, parse_class_table
from interop.reports.history import PatientHistory, extract_histories
from interop.reports.pdc import Coverage, PdcResult, Status, patient_pdc, population_pdc
from interop.reports.pdc_reference import reference_patient_pdc

TABLE = load_class_table()
ATORVASTATIN, SIMVASTATIN, LISINOPRIL = "83367", "36567", "29046"
METFORMIN, GLIPIZIDE, INSULIN_GLARGINE, SACUBITRIL, VALSARTAN = "6809", "4821", "274783", "1656328", "69749"
P = "Patient/p1"


def d(text: str) -> int:
    return date.fromisoformat(text).toordinal()


def run(
    fills: dict[str, list[tuple[str, int]]],
    start: str,
    end: str,
    stays: list[tuple[str, str]] | None = None,
    flags: frozenset[str] = frozenset(),
) -> list[PdcResult]:
    """patient_pdc on ISO-dated fills, checked against the day-by-day oracle on the way."""
    history = PatientHistory(
        P,
        {cui: sorted((d(day), supply) for day, supply in rows) for cui, rows in fills.items()},
        [(d(a), d(b)) for a, b in stays or []],
        flags,
    )
    results = patient_pdc(history, TABLE, date.fromisoformat(start), date.fromisoformat(end))
    assert results == reference_patient_pdc(
        history, TABLE, date.fromisoformat(start), date.fromisoformat(end)
    )
    return results


def one(results: list[PdcResult], measure: str, ingredient: str | None = None) -> PdcResult:
    (found,) = [r for r in results if r.measure == measure and r.ingredient == ingredient]
    return found


def test_same_drug_overlap_is_shifted_forward() -> None:
    """Atorvastatin 30 d on Jan 1 and 30 d on Jan 21, period Jan 1 - Apr 30 2025 (31+28+31+30 = 120 days).
    The Jan 21 fill starts Jan 31, the day after the first supply ends: covered Jan 1 - Mar 1 = 31+28+1 = 60.
    (Merging instead of shifting would give Jan 1 - Feb 19 = 50.) PDC 60/120 = 0.5."""
    result = one(
        run({ATORVASTATIN: [("2025-01-01", 30), ("2025-01-21", 30)]}, "2025-01-01", "2025-04-30"), "PDC-STA"
    )
    assert result.status == Status.ELIGIBLE
    assert result.coverage == Coverage(d("2025-01-01"), d("2025-04-30"), 120, 60, 0)
    assert result.coverage.pdc == 0.5
    assert not result.coverage.adherent


def test_different_drugs_of_a_class_are_not_shifted() -> None:
    """PQA's example: metformin and glipizide both filled Jan 1 both start Jan 1. Metformin 30 d Jan 1;
    glipizide 30 d Jan 1 and 30 d Jan 31. Days covered once each: Jan 1 - Jan 30 (both), Jan 31 - Mar 1
    (glipizide) = 30+30 = 60 of Jan 1 - Apr 30 (120). Shifting glipizide behind metformin would give 90.
    Per drug: metformin has one fill date (not scored); glipizide 60/120."""
    results = run(
        {METFORMIN: [("2025-01-01", 30)], GLIPIZIDE: [("2025-01-01", 30), ("2025-01-31", 30)]},
        "2025-01-01",
        "2025-04-30",
    )
    cls = one(results, "PDC-DR")
    assert cls.coverage == Coverage(d("2025-01-01"), d("2025-04-30"), 120, 60, 0)
    assert cls.fill_count == 3
    assert one(results, "PDC-DR", METFORMIN).status == Status.SINGLE_FILL
    glipizide = one(results, "PDC-DR", GLIPIZIDE).coverage
    assert glipizide is not None and (glipizide.days, glipizide.covered) == (120, 60)


def test_index_date_must_leave_91_days() -> None:
    """Calendar 2025: index Oct 2 leaves Oct 2 - Dec 31 = 30+30+31 = 91 days, so it is scored: 30 d on Oct 2
    (Oct 2-31) and 30 d on Nov 1 (Nov 1-30) cover 60 of 91. Index Oct 3 leaves 90 days: not in the
    denominator."""
    on_time = one(
        run({LISINOPRIL: [("2025-10-02", 30), ("2025-11-01", 30)]}, "2025-01-01", "2025-12-31"), "PDC-RASA"
    )
    assert on_time.status == Status.ELIGIBLE
    assert on_time.coverage == Coverage(d("2025-10-02"), d("2025-12-31"), 91, 60, 0)
    late = one(
        run({LISINOPRIL: [("2025-10-03", 30), ("2025-11-01", 30)]}, "2025-01-01", "2025-12-31"), "PDC-RASA"
    )
    assert (late.status, late.coverage) == (Status.LATE_INDEX, None)


def test_two_fills_on_distinct_dates_are_required() -> None:
    """One 90-day fill on Jan 1: one fill date, not in the denominator. Two 30-day fills both on Jan 1 are
    still one date. A fill dated before the period (Dec 2024) does not count toward the two."""
    single = one(run({SIMVASTATIN: [("2025-01-01", 90)]}, "2025-01-01", "2025-12-31"), "PDC-STA")
    assert (single.status, single.fill_count) == (Status.SINGLE_FILL, 1)
    same_day = one(
        run({SIMVASTATIN: [("2025-01-01", 30), ("2025-01-01", 30)]}, "2025-01-01", "2025-12-31"), "PDC-STA"
    )
    assert (same_day.status, same_day.fill_count) == (Status.SINGLE_FILL, 2)
    before = one(
        run({SIMVASTATIN: [("2024-12-01", 90), ("2025-03-01", 30)]}, "2025-01-01", "2025-12-31"), "PDC-STA"
    )
    assert (before.status, before.fill_count) == (Status.SINGLE_FILL, 1)


def test_supply_past_period_end_is_not_counted() -> None:
    """Atorvastatin 30 d on Sep 1 and 90 d on Dec 1 2025. Denominator Sep 1 - Dec 31 = 30+31+30+31 = 122;
    covered Sep 1-30 (30) + Dec 1-31 (31; the other 59 days fall in 2026) = 61. PDC 61/122 = 0.5."""
    result = one(
        run({ATORVASTATIN: [("2025-09-01", 30), ("2025-12-01", 90)]}, "2025-01-01", "2025-12-31"), "PDC-STA"
    )
    assert result.coverage == Coverage(d("2025-09-01"), d("2025-12-31"), 122, 61, 0)


def test_inpatient_days_are_censored_and_supply_held() -> None:
    """Atorvastatin 30 d on Jan 1 and Mar 1, period Jan 1 - Apr 30 (120 days), in hospital Jan 11-20
    (10 days, both ends inclusive). Denominator 120 - 10 = 110. The first fill covers Jan 1-10, is held
    in hospital, and its other 20 days cover Jan 21 - Feb 9; the second covers Mar 1-30: 30+30 = 60.
    PDC 60/110 = 0.5455 (without the stay it would be 60/120)."""
    result = one(
        run(
            {ATORVASTATIN: [("2025-01-01", 30), ("2025-03-01", 30)]},
            "2025-01-01",
            "2025-04-30",
            stays=[("2025-01-11", "2025-01-20")],
        ),
        "PDC-STA",
    )
    assert result.coverage == Coverage(d("2025-01-01"), d("2025-04-30"), 110, 60, 10)
    assert round(result.coverage.pdc, 4) == 0.5455


def test_fill_dispensed_during_a_stay_starts_after_discharge() -> None:
    """Atorvastatin 30 d on Jan 1 and 30 d on Jan 15 while in hospital Jan 10-19 (10 days); period Jan 1 -
    Apr 30 (120, denominator 110). First fill: Jan 1-9 (9 days), held, Jan 20 - Feb 9 (21 days). The
    second starts after that supply: Feb 10 - Mar 11 (30). Covered 60 of 110."""
    result = one(
        run(
            {ATORVASTATIN: [("2025-01-01", 30), ("2025-01-15", 30)]},
            "2025-01-01",
            "2025-04-30",
            stays=[("2025-01-10", "2025-01-19")],
        ),
        "PDC-STA",
    )
    assert result.coverage == Coverage(d("2025-01-01"), d("2025-04-30"), 110, 60, 10)


def test_insulin_users_are_excluded_from_the_diabetes_class() -> None:
    """Metformin 90 d on Jan 1, Apr 1, Jul 1, Oct 1 covers Jan 1 - Mar 31, Apr 1 - Jun 29, Jul 1 - Sep 28,
    Oct 1 - Dec 29: 4 x 90 = 360 of 365 (PDC 0.986), but one insulin glargine fill in the period removes the
    patient from PDC-DR (denominator exclusion); statins are unaffected."""
    results = run(
        {
            METFORMIN: [("2025-01-01", 90), ("2025-04-01", 90), ("2025-07-01", 90), ("2025-10-01", 90)],
            INSULIN_GLARGINE: [("2025-06-01", 30)],
            ATORVASTATIN: [("2025-01-01", 90), ("2025-04-01", 90)],
        },
        "2025-01-01",
        "2025-12-31",
    )
    diabetes = one(results, "PDC-DR")
    assert (diabetes.status, diabetes.reason) == (Status.EXCLUDED, "insulin glargine use")
    assert diabetes.coverage is not None and diabetes.coverage.covered == 360
    assert one(results, "PDC-STA").status == Status.ELIGIBLE
    assert {r.measure for r in results} == {"PDC-DR", "PDC-STA"}


def test_insulin_before_the_period_does_not_exclude() -> None:
    """Insulin filled in Dec 2024 only: outside the measurement period, so PDC-DR is scored: metformin 30 d
    on Jan 1 and Feb 1, period Jan 1 - Apr 30: covered Jan 1-30 + Feb 1 - Mar 2 = 60 of 120."""
    results = run(
        {METFORMIN: [("2025-01-01", 30), ("2025-02-01", 30)], INSULIN_GLARGINE: [("2024-12-01", 30)]},
        "2025-01-01",
        "2025-04-30",
    )
    assert one(results, "PDC-DR").coverage == Coverage(d("2025-01-01"), d("2025-04-30"), 120, 60, 0)


def test_hospice_and_esrd_exclude_every_class() -> None:
    """Flags exclude all classes; the PDC is still reported for display: lisinopril 30 d on Jan 1 and Jan 31
    cover Jan 1 - Mar 1 = 60 of 120."""
    for flag in ("hospice", "esrd"):
        result = one(
            run(
                {LISINOPRIL: [("2025-01-01", 30), ("2025-01-31", 30)]},
                "2025-01-01",
                "2025-04-30",
                flags=frozenset({flag}),
            ),
            "PDC-RASA",
        )
        assert (result.status, result.reason) == (Status.EXCLUDED, flag)
        assert result.coverage is not None and result.coverage.covered == 60


def test_sacubitril_excludes_from_rasa() -> None:
    """Sacubitril/valsartan (one dispense, two ingredients): valsartan is a RASA member, sacubitril excludes
    the patient from PDC-RASA (CMS rule, not verified in our research; see mappings/README.md)."""
    results = run(
        {
            VALSARTAN: [("2025-01-01", 30), ("2025-01-31", 30)],
            SACUBITRIL: [("2025-01-01", 30), ("2025-01-31", 30)],
        },
        "2025-01-01",
        "2025-12-31",
    )
    assert (one(results, "PDC-RASA").status, one(results, "PDC-RASA").reason) == (
        Status.EXCLUDED,
        "sacubitril use",
    )


def test_adherence_threshold_is_exact_at_80_percent() -> None:
    """Period Jan 1 - Apr 10 2025 = 31+28+31+10 = 100 days. Atorvastatin 30 d on Jan 1 (Jan 1-30), 30 d on
    Jan 31 (Jan 31 - Mar 1) and 20 d on Mar 2 (Mar 2-21): 80 of 100 = 80%, adherent. With 19 d on Mar 2:
    79 of 100, not adherent."""
    for last_supply, covered, adherent in ((20, 80, True), (19, 79, False)):
        fills = {ATORVASTATIN: [("2025-01-01", 30), ("2025-01-31", 30), ("2025-03-02", last_supply)]}
        cover = one(run(fills, "2025-01-01", "2025-04-10"), "PDC-STA").coverage
        assert cover is not None and (cover.days, cover.covered, cover.adherent) == (100, covered, adherent)


def test_pqa_pdc_dr_worked_example_shift() -> None:
    """PQA pdc-dr example (medsync.md 2.7): a fill on 2018-09-25 has its first dose on 2018-10-03 because
    the previous fill of the same drug lasts through 2018-10-02. Reconstructed, with assumptions (the
    example's drug, supplies and other fills are not in our notes): glipizide 30 d on 2018-07-01 (Jul 1-30),
    30 d on 2018-09-03 (Sep 3 - Oct 2), 30 d on 2018-09-25. Period end 2018-11-01 pins the start: starting
    Oct 3 the last fill covers Oct 3 - Nov 1 = 30 days, total 30+30+30 = 90 of Jul 1 - Nov 1 (31+31+30+31+1
    = 124). A start on Oct 4 would give 89; no shift (Sep 25 - Oct 24 merged) would give 30+52 = 82."""
    result = one(
        run(
            {GLIPIZIDE: [("2018-07-01", 30), ("2018-09-03", 30), ("2018-09-25", 30)]},
            "2018-01-01",
            "2018-11-01",
        ),
        "PDC-DR",
    )
    assert result.coverage == Coverage(d("2018-07-01"), d("2018-11-01"), 124, 90, 0)


def test_population_pdc_keeps_the_given_order() -> None:
    """Results come patient by patient in the order given, each class result before its ingredients."""
    histories = [
        PatientHistory(p, {ATORVASTATIN: [(d("2025-01-01"), 30), (d("2025-02-01"), 30)]})
        for p in ("Patient/b", "Patient/a")
    ]
    results = population_pdc(histories, TABLE, date(2025, 1, 1), date(2025, 12, 31))
    assert [(r.patient, r.ingredient) for r in results] == [
        ("Patient/b", None),
        ("Patient/b", ATORVASTATIN),
        ("Patient/a", None),
        ("Patient/a", ATORVASTATIN),
    ]
    assert results == [
        r for h in histories for r in patient_pdc(h, TABLE, date(2025, 1, 1), date(2025, 12, 31))
    ]


def test_unsorted_history_is_rejected() -> None:
    with pytest.raises(ValueError, match="not sorted"):
        PatientHistory(P, {ATORVASTATIN: [(d("2025-02-01"), 30), (d("2025-01-01"), 30)]})


def _dispense(
    ident: str, code: dict[str, Any] | None, day: str | None, supply: object, status: str = "completed"
) -> dict[str, Any]:
    dispense: dict[str, Any] = {
        "resourceType": "MedicationDispense",
        "id": ident,
        "status": status,
        "subject": {"reference": P},
    }
    if code is not None:
        dispense["medicationCodeableConcept"] = {"coding": [code]}
    if day is not None:
        dispense["whenHandedOver"] = day
    if supply is not None:
        dispense["daysSupply"] = {
            "value": supply,
            "unit": "d",
            "system": "http://unitsofmeasure.org",
            "code": "d",
        }
    return dispense


NDC = "http://hl7.org/fhir/sid/ndc"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


def test_extraction_from_fhir_resources() -> None:
    """NDC in 4-4-2 form (simvastatin 0006-0740-31), an RxNorm product (314076 lisinopril), an RxNorm
    ingredient (metformin); not completed and untracked dispenses are skipped; a tracked dispense without
    daysSupply is reported by element; an inpatient Encounter is a stay; an ESRD Condition flags."""
    dispenses = [
        _dispense("1", {"system": NDC, "code": "0006-0740-31"}, "2025-01-01T10:00:00Z", 30),
        _dispense("2", {"system": NDC, "code": "00006074031"}, "2025-01-31", 30),
        _dispense("3", {"system": RXNORM, "code": "314076"}, "2025-02-01", 90),
        _dispense("4", {"system": RXNORM, "code": METFORMIN}, "2025-03-01", 30, status="in-progress"),
        _dispense("5", {"system": RXNORM, "code": "308191"}, "2025-03-01", 10),
        _dispense("6", {"system": RXNORM, "code": METFORMIN}, "2025-03-01", None),
        _dispense("7", {"system": RXNORM, "code": METFORMIN}, None, 30),
    ]
    encounters = [
        {
            "resourceType": "Encounter",
            "id": "e1",
            "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
            "subject": {"reference": P},
            "period": {"start": "2025-05-01T08:00:00Z", "end": "2025-05-04"},
        },
        {
            "resourceType": "Encounter",
            "id": "e2",
            "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "subject": {"reference": P},
            "period": {"start": "2025-06-01"},
        },
    ]
    conditions = [
        {
            "resourceType": "Condition",
            "id": "c1",
            "subject": {"reference": P},
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "N18.6"}]},
        }
    ]
    out = extract_histories(dispenses, TABLE, encounters=encounters, conditions=conditions)
    history = out.histories[P]
    assert history.fills == {
        SIMVASTATIN: [(d("2025-01-01"), 30), (d("2025-01-31"), 30)],
        LISINOPRIL: [(d("2025-02-01"), 90)],
    }
    assert history.stays == [(d("2025-05-01"), d("2025-05-04"))]
    assert history.flags == frozenset({"esrd"})
    assert out.problems == [
        "MedicationDispense/6: daysSupply.value must be a positive whole number, got None",
        "MedicationDispense/7: whenPrepared missing or not a full date: None",
    ]


def test_discharge_to_hospice_flags_the_patient() -> None:
    encounter = {
        "resourceType": "Encounter",
        "id": "e1",
        "status": "finished",
        "class": {"code": "IMP"},
        "subject": {"reference": P},
        "period": {"start": "2025-05-01", "end": "2025-05-04"},
        "hospitalization": {
            "dischargeDisposition": {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/discharge-disposition", "code": "hosp"}
                ]
            }
        },
    }
    assert extract_histories([], TABLE, encounters=[encounter]).histories[P].flags == frozenset({"hospice"})


@pytest.mark.corpus
def test_corpus_novolog_dispense_maps_to_insulin_aspart(corpus: Path) -> None:
    """The R4 example meddisp0302 (contained Medication, NDC 0169-7501-11 Novolog) is in-progress, so not a
    fill; the same dispense completed is an insulin aspart fill that excludes its patient from PDC-DR."""
    dispense = json.loads((corpus / "fhir-r4-examples" / "MedicationDispense-meddisp0302.json").read_text())
    assert extract_histories([dispense], TABLE).histories == {}
    completed = {**dispense, "status": "completed"}
    history = extract_histories([completed], TABLE).histories["Patient/pat1"]
    assert history.fills == {"51428": [(d("2015-01-15"), 30)]}


def test_class_table_errors_name_file_and_line() -> None:
    header = "measure,role,rxcui,ingredient,group,source\n"
    drugs = "system,code,rxcui,ingredient,product,source\n"
    with pytest.raises(ClassTableError, match=r"pdc-classes.csv: line 2: unknown measure 'PDC-X'"):
        parse_class_table(header + "PDC-X,member,1,a,b,c\n", drugs)
    with pytest.raises(ClassTableError, match=r"pdc-drugs.csv: line 2: '123' is not an NDC"):
        parse_class_table(header + "PDC-STA,member,1,a,b,c\n", drugs + "ndc,123,1,a,b,c\n")
    with pytest.raises(ClassTableError, match=r"pdc-drugs.csv: line 2: ingredient 9 is in no class"):
        parse_class_table(header + "PDC-STA,member,1,a,b,c\n", drugs + "rxnorm,5,9,a,b,c\n")


def test_shipped_table_classes() -> None:
    assert TABLE.members[ATORVASTATIN] == "PDC-STA"
    assert TABLE.members[LISINOPRIL] == "PDC-RASA"
    assert TABLE.members[METFORMIN] == "PDC-DR"
    assert "PDC-DR" in TABLE.exclusions[INSULIN_GLARGINE]
    assert TABLE.ingredients(NDC, "00169-7501-11") == ("51428",)


_CUIS = (ATORVASTATIN, SIMVASTATIN, LISINOPRIL, METFORMIN, GLIPIZIDE, INSULIN_GLARGINE, SACUBITRIL)


_SUPPLY = st.integers(1, 120) | st.integers(1020, 1030)
"""Days' supply: usual fills, and a few past the 1024-day run table of the bitset."""


@st.composite
def histories(draw: st.DrawFn) -> tuple[PatientHistory, date, date]:
    start = date(2025, 1, 1).toordinal() + draw(st.integers(0, 60))
    length = draw(st.integers(30, 400))
    cuis = draw(st.lists(st.sampled_from(_CUIS), min_size=1, max_size=4, unique=True))
    fills = {
        cui: sorted(
            draw(
                st.lists(
                    st.tuples(st.integers(start - 40, start + length + 10), _SUPPLY),
                    min_size=1,
                    max_size=14,
                )
            )
        )
        for cui in cuis
    }
    stays = [
        (first, first + span)
        for first, span in draw(
            st.lists(st.tuples(st.integers(start - 20, start + length + 5), st.integers(0, 25)), max_size=3)
        )
    ]
    flags = frozenset(draw(st.sets(st.sampled_from(("hospice", "esrd")), max_size=1)))
    return (
        PatientHistory(P, fills, stays, flags),
        date.fromordinal(start),
        date.fromordinal(start + length - 1),
    )


@settings(max_examples=400, deadline=None)
@given(histories())
def test_bitset_matches_day_by_day(case: tuple[PatientHistory, date, date]) -> None:
    history, start, end = case
    assert patient_pdc(history, TABLE, start, end) == reference_patient_pdc(history, TABLE, start, end)


@pytest.mark.corpus
def test_corpus_hl7v2_simvastatin_dispense_is_tracked(corpus: Path) -> None:
    """RXD-2 0006-0740-31 (ZOCOR 20 mg) in the Google HDH RDE^O01 sample, mapped by adapters.hl7v2, is a
    simvastatin dispense handed over 2016-01-15: a fill when the adapter derived a days' supply, else a
    problem naming daysSupply (never dropped silently)."""
    text = (corpus / "hl7v2" / "RDE_O01__google-hdh__rde_o01_ex2.hl7").read_text()
    bundle = to_bundle(parse_message(text))
    (dispense,) = [
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "MedicationDispense"
    ]
    out = extract_histories([dispense], TABLE)
    if dispense.get("daysSupply") is None:
        assert out.histories == {}
        assert out.problems == [
            f"MedicationDispense/{dispense['id']}: daysSupply.value must be a positive whole number, got None"
        ]
    else:
        (history,) = out.histories.values()
        assert [day for day, _ in history.fills[SIMVASTATIN]] == [d("2016-01-15")]


def test_synthetic_feed_drugs_map_to_their_ingredients() -> None:
    """Every drug of the HL7 v2 synthetic feed (mappings/hl7v2/synth_drugs.csv) whose name holds an ingredient
    of the class table maps, by its NDC-11 and by its RxNorm code, to that ingredient; the others map to none."""
    text = resources.files("mappings.hl7v2").joinpath("synth_drugs.csv").read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows
    tracked = 0
    for row in rows:
        name = row["name"].lower()
        named = [cui for cui, ingredient in TABLE.names.items() if ingredient in name]
        expected = (max(named, key=lambda cui: len(TABLE.name(cui))),) if named else ()
        assert TABLE.ingredients(NDC, row["ndc11"]) == expected, row["key"]
        assert TABLE.ingredients(RXNORM, row["rxnorm"]) == expected, row["key"]
        tracked += bool(expected)
    assert tracked >= 6
