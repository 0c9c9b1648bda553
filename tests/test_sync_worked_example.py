"""medsync.md §2.2 reproduced: three drugs on a 30-day cycle, anchors Jul 20 and Jul 10, and the optimizer's pick."""

from __future__ import annotations

from datetime import date

import pytest

from interop.sync.plan import PlannedFill, SyncPlan, plan_patient
from interop.sync.settings import load_settings
from tests.sync_builders import coverage, worked_example

TODAY = date(2026, 6, 25)


def _plan(anchor: date | None) -> SyncPlan:
    requests, dispenses = worked_example()
    return plan_patient(requests, dispenses, coverage(), load_settings(), TODAY, anchor=anchor)


def _fills(plan: SyncPlan, rid: str) -> list[PlannedFill]:
    return [f for f in plan.fills if f.request_id == rid]


def _summary(fills: list[PlannedFill]) -> list[tuple[date, str, int, float, str | None]]:
    return [(f.date, f.kind, f.days, f.quantity, f.claim_code) for f in fills]


def test_anchor_jul_20_latest_due_nothing_filled_early() -> None:
    plan = _plan(date(2026, 7, 20))
    assert _summary(_fills(plan, "lisinopril")) == [
        (date(2026, 7, 1), "short", 19, 19, "47"),
        (date(2026, 7, 20), "anchor", 30, 30, "48"),
    ]
    assert _summary(_fills(plan, "atorvastatin")) == [
        (date(2026, 7, 10), "short", 10, 10, "47"),
        (date(2026, 7, 20), "anchor", 30, 30, "48"),
    ]
    assert _summary(_fills(plan, "metformin")) == [(date(2026, 7, 20), "anchor", 30, 60, None)]
    # all three next due Aug 19
    last = {f.request_id: f for f in plan.fills}
    assert {date.fromordinal(f.day + f.days) for f in last.values()} == {date(2026, 8, 19)}
    assert sum(f.kind == "short" for f in plan.fills) == 2
    assert [p.date for p in plan.pickups] == [date(2026, 7, 1), date(2026, 7, 10), date(2026, 7, 20)]
    assert plan.steady == date(2026, 7, 20)
    assert plan.choice is not None and plan.choice.chosen_by == "requested"
    assert "before the anchor 2026-07-20" in plan.drug_note("lisinopril")


def test_anchor_jul_10_middle_date_metformin_refill_too_soon() -> None:
    plan = _plan(date(2026, 7, 10))
    assert _summary(_fills(plan, "lisinopril"))[0] == (date(2026, 7, 1), "short", 9, 9, "47")
    metformin = _fills(plan, "metformin")
    # not payable on Jul 10: only 20 of 30 days elapsed, earliest Jun 20 + ceil(30 × 0.75) = Jul 13
    assert plan.regimens["metformin"].earliest_refill == date(2026, 7, 13).toordinal()
    assert all(f.day != date(2026, 7, 10).toordinal() for f in metformin)
    short = metformin[0]
    assert (short.date, short.kind, short.days, short.quantity, short.claim_code) == (
        date(2026, 7, 20), "short", 20, 40, "47"
    )
    assert date.fromordinal(short.day + short.days) == date(2026, 8, 9)
    assert metformin[1].date == date(2026, 8, 9) and metformin[1].claim_code == "48"
    assert sum(f.kind == "short" for f in plan.fills) == 2
    assert plan.steady == date(2026, 8, 9)
    note = plan.drug_note("metformin")
    assert "not payable on the anchor 2026-07-10" in note and "earliest 2026-07-13" in note
    assert "reaching 2026-08-09" in note


def test_both_anchors_scored_as_the_research_describes() -> None:
    jul20 = _plan(date(2026, 7, 20)).choice
    jul10 = _plan(date(2026, 7, 10)).choice
    assert jul20 is not None and jul10 is not None
    a, b = jul20.winner(), jul10.winner()
    assert (a.short_fills, a.trips) == (2, 3)  # Jul 1, Jul 10, Jul 20
    assert (b.short_fills, b.trips) == (2, 4)  # Jul 1, Jul 10, Jul 20, Aug 9
    assert a.days_to_steady < b.days_to_steady


def test_optimizer_picks_jul_20_and_explains_why() -> None:
    plan = _plan(None)
    choice = plan.choice
    assert choice is not None and choice.chosen_by == "optimizer"
    assert plan.anchor == date(2026, 7, 20)
    assert len(choice.candidates) == 30
    assert [c.date for c in choice.candidates] == [date(2026, 7, d) for d in range(1, 31)]
    decisive = choice.decisive_term()
    assert decisive is not None
    term, runner_up = decisive
    assert term == "transition_events"
    assert runner_up.date == date(2026, 7, 1)  # ties Jul 10 on events, reaches steady state 9 days sooner
    text = choice.narrative()
    assert "Anchor 2026-07-20" in text and "Chosen over 2026-07-01" in text and "5 vs 6" in text
    rows = choice.as_rows()
    assert rows[0]["date"] == "2026-07-20" and rows[0]["chosen"] is True
    assert {r["date"] for r in rows} >= {"2026-07-10", "2026-07-20"}
    jul10 = next(r for r in rows if r["date"] == "2026-07-10")
    assert (jul10["short_fills"], jul10["trips"]) == (2, 4)


@pytest.mark.parametrize("day", range(1, 31))
def test_fast_window_scores_match_the_reference_scorer(day: int) -> None:
    """The optimizer's one-pass scores equal the scores computed from the fills each anchor implies."""
    from interop.sync.anchor import score

    plan = _plan(None)
    assert plan.choice is not None
    fast = next(c for c in plan.choice.candidates if c.date == date(2026, 7, day))
    regs = list(plan.regimens.values())
    ref = score(fast.day, regs, [], 30, TODAY.toordinal(), load_settings(), None)
    assert fast == ref


def test_objective_order_is_data_and_preference_can_lead() -> None:
    """With preference first (settings ``objective``), the optimizer lands on the patient's weekday."""
    from interop.sync.anchor import TERMS
    from interop.sync.settings import Preference

    requests, dispenses = worked_example()
    friday = Preference(weekday=4)
    order = ("preference", *(t for t in TERMS if t != "preference"))
    plan = plan_patient(requests, dispenses, coverage(), load_settings(objective=order), TODAY, preference=friday)
    assert plan.anchor is not None and plan.anchor.weekday() == 4
    assert plan.choice is not None and plan.choice.decisive_term() is not None
    default = plan_patient(requests, dispenses, coverage(), load_settings(), TODAY, preference=friday)
    assert default.anchor == date(2026, 7, 20)  # preference only breaks ties under the default objective
