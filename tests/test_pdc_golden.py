"""Golden digest of ``population_pdc`` on the bench's deterministic synthetic patients, with variants for the
rarer paths (second class member, exclusion drug, hospice flag, several stays, a mid-year period), so a speed
change to interop/reports/pdc.py cannot change a single result unnoticed. Digests were computed with the
bitset implementation as it stood before the interval rewrite."""

from __future__ import annotations

import gc
import hashlib
import json
from datetime import date

from bench.bench_pdc import END, START, synthetic_histories
from interop.reports.classes import load_class_table
from interop.reports.history import PatientHistory
from interop.reports.pdc import PdcResult, patient_pdc, population_pdc
from interop.reports.pdc_reference import reference_patient_pdc

TABLE = load_class_table()
SIMVASTATIN, METFORMIN, INSULIN_GLARGINE = "36567", "6809", "274783"
MID_START, MID_END = date(2025, 3, 15), date(2025, 9, 30)


def _varied(histories: list[PatientHistory]) -> list[PatientHistory]:
    """Each history, some with a second statin, insulin use, a hospice flag or extra overlapping stays."""
    varied: list[PatientHistory] = []
    for number, history in enumerate(histories):
        fills = dict(history.fills)
        stays = list(history.stays)
        flags: frozenset[str] = frozenset()
        if number % 13 == 2:
            fills[SIMVASTATIN] = [(day + 45, supply) for day, supply in fills["83367"][::2]]
        if number % 11 == 5:
            fills[INSULIN_GLARGINE] = list(fills[METFORMIN][3:5])
        if number % 7 == 3:
            flags = frozenset({"hospice"})
        if number % 17 == 4:
            admit = fills[METFORMIN][2][0]
            stays += [(admit - 3, admit + 4), (admit + 2, admit + 9), (admit + 60, admit + 60)]
        varied.append(PatientHistory(history.patient, fills, sorted(stays), flags))
    return varied


def _digest(results: list[PdcResult]) -> str:
    rows = [
        [
            r.patient,
            r.measure,
            r.ingredient,
            str(r.status),
            r.fill_count,
            r.coverage and list(r.coverage),
            r.reason,
        ]
        for r in results
    ]
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()


HISTORIES = _varied(synthetic_histories(3000))


def test_population_pdc_full_year_digest() -> None:
    results = population_pdc(HISTORIES, TABLE, START, END)
    assert len(results) == 18_231
    assert _digest(results) == "507f8d70ccabbe1eff51ca225229ff4ac92768dfa7673015f320952883ce018d"


def test_population_pdc_mid_year_digest() -> None:
    results = population_pdc(HISTORIES, TABLE, MID_START, MID_END)
    assert len(results) == 18_231
    assert _digest(results) == "c510efc8129900a8dff6fdbe8f827bf93070eef716666037ba991c7cae10087d"


def test_class_only_results_are_the_class_rows_of_the_full_results() -> None:
    """``per_ingredient=False`` gives exactly the class rows (ingredient None) of the full results."""
    histories = HISTORIES[:500]
    class_only = [r for h in histories for r in patient_pdc(h, TABLE, START, END, per_ingredient=False)]
    full = population_pdc(histories, TABLE, START, END)
    assert class_only == [r for r in full if r.ingredient is None]
    assert _digest(class_only) == "2e3e6b5f659a1e039736e1559aacf8e7de19d49f18b1b8c4eda6d7472ab909e1"


def test_varied_patients_match_the_day_by_day_oracle() -> None:
    """The variants above agree with the day-by-day reference, so the digests pin correct results."""
    for history in HISTORIES[:300]:
        for start, end in ((START, END), (MID_START, MID_END)):
            assert patient_pdc(history, TABLE, start, end) == reference_patient_pdc(
                history, TABLE, start, end
            )


def test_population_pdc_restores_the_collector_state() -> None:
    """The cyclic collector paused for speed comes back on, and stays off when the caller had it off."""
    assert gc.isenabled()
    population_pdc(HISTORIES[:10], TABLE, START, END)
    assert gc.isenabled()
    gc.disable()
    try:
        population_pdc(HISTORIES[:10], TABLE, START, END)
        assert not gc.isenabled()
    finally:
        gc.enable()
