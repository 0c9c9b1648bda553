"""The planner on real adapter output: NCPDP D.0 med sync claims from the shared corpus, through adapters.telecom."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest

from adapters.telecom.fhir import convert
from interop.sync import Reason, load_settings, plan_patient
from tests.sync_builders import coverage

pytestmark = pytest.mark.corpus


def _resources(corpus: Path) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for name in ("b1-medsync-shortfill-scc47.request.ncpdp", "b1-medsync-anchorfill-scc48.request.ncpdp"):
        path = corpus / "ncpdp-d0" / "synthetic" / name
        if not path.exists():
            pytest.skip(f"{path} is not in the corpus")
        for entry in convert(path.read_bytes())["entry"]:
            res = entry["resource"]
            out.setdefault(res["resourceType"], []).append(res)
    return out


def test_d0_short_fill_then_anchor_fill_plans_the_next_anchor(corpus: Path) -> None:
    found = _resources(corpus)
    requests, dispenses = found["MedicationRequest"], found["MedicationDispense"]
    assert len({r["id"] for r in requests}) == 1  # the same prescription, delivered by both claims
    plan = plan_patient(requests, dispenses, found["Coverage"][0], load_settings(), date(2025, 4, 20))
    (rid,) = plan.regimens
    reg = plan.regimens[rid]
    assert reg.last_fill == date(2025, 4, 1).toordinal() and reg.days_supply == 30
    assert reg.splittable  # 600-28 EA: counted singly
    assert reg.prior_syncs == (date(2025, 3, 19).toordinal(),)  # the 420-DK 47 short fill
    assert plan.anchor == date(2025, 5, 1)
    assert [(f.date, f.kind, f.quantity, f.claim_code) for f in plan.fills] == [(date(2025, 5, 1), "anchor", 60, None)]


def test_d0_history_counts_against_a_one_sync_a_year_payer(corpus: Path) -> None:
    found = _resources(corpus)
    plan = plan_patient(found["MedicationRequest"], found["MedicationDispense"], coverage("SYNTH-PBM-80"),
                        load_settings(), date(2025, 4, 20))
    assert [e.reason for e in plan.exclusions] == [Reason.SYNC_LIMIT]
