"""Proration and pricing: the worked example, each rule with its citation, Part D exceptions, rounding."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from interop.claims.pricing import Costs, Fill, PricingError, price, prorated_copay
from interop.claims.proration import (
    ERISA_CITATION,
    DrugFacts,
    PlanRules,
    RuleError,
    check_plan,
    decide,
    plan_for,
    plans,
    state_rules,
)

D = Decimal
PART_D = plan_for("999999")
COSTS = Costs(D("81.90"), D("2.00"), D("110.00"), copay=D("47.00"))


def commercial(state: str, **changes: object) -> PlanRules:
    return replace(PlanRules(key=f"test-{state}", program="commercial", state=state), **changes)  # type: ignore[arg-type]


def test_worked_example_part_d_short_fill() -> None:
    """ncpdp.md §3.2: $47.00 × 13/30 = $20.3667 → $20.37; fee $2.00 whole; 420-DK 47."""
    result = price(Fill(13, "short"), COSTS, PART_D)
    assert result.patient_pay == D("20.37")
    assert result.dispensing_fee == D("2.00")
    assert result.gross_amount_due == D("83.90")
    assert result.scc == "47"
    assert result.prorated
    assert result.decision.citation == "42 CFR 423.153(b)(4)"
    assert "42 CFR 423.153(b)(4)" in result.explanation
    assert "$47.00 × 13 ÷ 30 days = $20.3667, rounded half-up once at the end to $20.37" in result.explanation
    assert "dispensing fee $2.00 paid whole" in result.explanation


def test_daily_rate_is_never_rounded_first() -> None:
    """Rounding the daily rate (1.5667 → 1.57) first gives $20.41 for 13 days and $47.10 for a month: wrong."""
    wrong_daily = (D("47.00") / 30).quantize(D("0.01")) * 13
    assert wrong_daily == D("20.41")
    assert price(Fill(13, "short"), COSTS, PART_D).patient_pay != wrong_daily
    assert prorated_copay(D("47.00"), 30, 30, "half-up") == D("47.00")


def test_daily_rate_down_rounding_per_plan() -> None:
    """A plan may truncate the daily rate (42 CFR 423.100 allows rounding it down): 1.56 × 13 = 20.28."""
    plan = replace(PART_D, rounding="daily-rate-down")
    result = price(Fill(13, "short"), COSTS, plan)
    assert result.patient_pay == D("20.28")
    assert "truncated to $1.56 × 13 days = $20.28" in result.explanation
    assert prorated_copay(D("47.00"), 30, 30, "daily-rate-down") <= D("47.00")


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=50_000), st.integers(min_value=1, max_value=34),
       st.sampled_from([28, 30, 31, 34]), st.sampled_from(["half-up", "daily-rate-down"]))
def test_prorated_copay_never_exceeds_the_month(cents: int, days: int, month: int, mode: str) -> None:
    """The daily rate × month days never exceeds the monthly copay, and days ≤ month never costs more."""
    copay = D(cents) / 100
    share = prorated_copay(copay, min(days, month), month, mode)
    assert D(0) <= share <= copay
    exact = copay * min(days, month) / month
    assert abs(share - exact) <= D("0.01") * min(days, month) if mode == "daily-rate-down" else abs(share - exact) <= D("0.005")


def test_anchor_fill_full_copay_and_scc_48() -> None:
    result = price(Fill(30, "anchor"), Costs(D("189.00"), D("2.00"), D("250.00"), copay=D("47.00")), PART_D)
    assert result.patient_pay == D("47.00") and result.scc == "48" and not result.prorated


def test_scc_61_where_the_payer_takes_it() -> None:
    assert price(Fill(13, "short"), COSTS, plan_for("999998")).scc == "61"
    assert price(Fill(30, "regular"), COSTS, PART_D).scc is None
    assert price(Fill(13, "anchor"), COSTS, replace(PART_D, anchor_scc=None)).scc is None


@pytest.mark.parametrize(
    ("drug", "why"),
    [
        (DrugFacts(solid_oral=False), "not a solid oral dose"),
        (DrugFacts(antibiotic=True), "antibiotic"),
        (DrugFacts(original_container=True), "original container"),
    ],
)
def test_part_d_exceptions_are_not_prorated(drug: DrugFacts, why: str) -> None:
    """42 CFR 423.153(b)(4): solid oral doses only; (ii)(A) antibiotics and (ii)(B) original containers excepted."""
    result = price(Fill(13, "short", drug), COSTS, PART_D)
    assert result.patient_pay == D("47.00")
    assert not result.prorated
    assert why in result.explanation and "42 CFR 423.153(b)(4)" in result.explanation
    assert result.dispensing_fee == D("2.00")


def test_coinsurance_scales_with_cost() -> None:
    """Coinsurance needs no proration: 25 % × $83.90 = $20.98 (ncpdp.md §3.2)."""
    result = price(Fill(13, "short"), Costs(D("81.90"), D("2.00"), D("110.00"), coinsurance=D("0.25")), PART_D)
    assert result.patient_pay == D("20.98")
    assert "coinsurance" in result.explanation


def test_lesser_of_share_price_and_usual_and_customary() -> None:
    cheap = Costs(D("5.00"), D("2.00"), D("6.50"), copay=D("47.00"))
    result = price(Fill(30, "regular"), cheap, PART_D)
    assert result.patient_pay == D("6.50")
    assert "lesser of" in result.explanation


STATUTES = {
    "AZ": "ARS 20-1406.07", "CO": "CRS 10-16-141", "GA": "OCGA 33-24-59.22", "HI": "HRS 432D-30",
    "IN": "IC 27-8-31.4", "KY": "KY SB 44 (2015)", "ME": "24-A MRSA §2769", "MN": "Minn. Stat. 62W.10",
    "NM": "NMSA 27-2-12.21", "NY": "§3224-d", "NC": "58-3-181", "OH": "ORC 1751.68", "OK": "36 O.S. §3634.5",
    "PA": "Act 46 of 2019", "TX": "§1369.454",
}
FEE_WHOLE = {"CO", "GA", "HI", "ME", "MN", "NM", "NC", "OK", "PA", "TX"}


@pytest.mark.parametrize("state", sorted(STATUTES))
def test_state_statute_prorates_with_its_citation(state: str) -> None:
    """ncpdp.md §3.4: each state's statute prorates the copay; the explanation cites it."""
    result = price(Fill(13, "short"), COSTS, commercial(state))
    assert result.patient_pay == D("20.37")
    assert STATUTES[state] in result.decision.citation
    assert STATUTES[state] in result.explanation
    assert state_rules()[state].fee_whole == (state in FEE_WHOLE)


@pytest.mark.parametrize("state", sorted(FEE_WHOLE))
def test_dispensing_fee_never_prorated_where_the_law_says(state: str) -> None:
    """Even a plan that prorates fees pays the whole fee where the statute forbids proration."""
    result = price(Fill(13, "short"), COSTS, commercial(state, prorate_fee=True))
    assert result.dispensing_fee == D("2.00")
    assert result.decision.fee_by_law and result.decision.fee_whole
    assert f"never prorated ({result.decision.fee_citation})" in result.explanation


def test_plan_may_prorate_fee_where_no_law_forbids() -> None:
    result = price(Fill(13, "short"), COSTS, commercial("AZ", prorate_fee=True))
    assert result.dispensing_fee == D("0.87")
    assert "prorated to $0.87" in result.explanation


def test_part_d_fee_is_whole_unless_the_contract_prorates_it() -> None:
    """ncpdp.md §3.1: 423.153(b)(4) prorates only cost sharing; the retail fee is contractual, whole by default."""
    default = price(Fill(13, "short"), COSTS, PART_D)
    assert default.dispensing_fee == D("2.00") and default.decision.fee_whole and not default.decision.fee_by_law
    assert "not prorated (42 CFR 423.153(b)(4) prorates only" in default.explanation
    contract = price(Fill(13, "short"), COSTS, replace(PART_D, prorate_fee=True))
    assert contract.dispensing_fee == D("0.87") and not contract.decision.fee_whole
    assert contract.patient_pay == D("20.37")


def test_oregon_requires_a_policy_not_proration() -> None:
    assert price(Fill(13, "short"), COSTS, commercial("OR")).patient_pay == D("47.00")


@pytest.mark.parametrize(("state", "drug"), [
    ("OK", DrugFacts(schedule=3)), ("MN", DrugFacts(schedule=4)), ("NY", DrugFacts(schedule=3, ingredient="hydrocodone bitartrate")),
    ("KY", DrugFacts(ingredient="Hydrocodone/APAP")), ("HI", DrugFacts(schedule=2)),
])
def test_controlled_substance_exclusions(state: str, drug: DrugFacts) -> None:
    result = price(Fill(13, "short", drug), COSTS, commercial(state))
    assert result.patient_pay == D("47.00")
    assert "outside the statute" in result.explanation
    assert STATUTES[state] in result.explanation


def test_sync_frequency_limit_once_a_year() -> None:
    """OK 36 O.S. §3634.5 and Minn. Stat. 62W.10 cover one sync per drug per year; a second is not covered."""
    first = price(Fill(13, "short", prior_sync_fills=0), COSTS, commercial("OK"))
    second = price(Fill(13, "short", prior_sync_fills=1), COSTS, commercial("OK"))
    assert first.patient_pay == D("20.37")
    assert second.patient_pay == D("47.00") and "already happened" in second.explanation


def test_maine_mirrors_part_d_exceptions() -> None:
    assert price(Fill(13, "short", DrugFacts(antibiotic=True)), COSTS, commercial("ME")).patient_pay == D("47.00")


def test_self_funded_plan_outside_state_mandates() -> None:
    """An ERISA self-funded plan in Texas does not prorate, whatever Tex. Ins. Code §1369.454 says."""
    plan = commercial("TX", funding="self-funded")
    result = price(Fill(13, "short"), COSTS, plan)
    assert result.patient_pay == D("47.00")
    assert result.decision.citation == ERISA_CITATION
    configured = price(Fill(13, "short"), COSTS, plan_for("999997"))
    assert configured.patient_pay == D("47.00")
    assert "self-funded" in configured.explanation
    assert price(Fill(13, "short"), COSTS, plan_for("999996")).patient_pay == D("20.37")


def test_plan_override_daily_without_a_law() -> None:
    plan = commercial("", prorate="daily", source="plan document §4.2 daily cost sharing")
    result = price(Fill(10, "short"), COSTS, plan)
    assert result.patient_pay == D("15.67")
    assert "plan document §4.2" in result.explanation


def test_no_state_law_no_proration() -> None:
    result = price(Fill(13, "short"), COSTS, commercial("WY"))
    assert result.patient_pay == D("47.00")
    assert "no proration statute" in result.decision.reason


def test_override_gives_way_to_the_law() -> None:
    """A plan's "none" cannot undo Part D or a state mandate; "daily" may always be more generous."""
    assert decide(PART_D, DrugFacts()).rule_id == "part-d"
    stingy = replace(PART_D, prorate="none", source="contract")
    assert decide(stingy, DrugFacts()).rule_id == "part-d"
    assert price(Fill(13, "short"), COSTS, stingy).patient_pay == D("20.37")
    assert "gives way" in decide(stingy, DrugFacts()).reason
    texas = commercial("TX", prorate="none", source="contract")
    assert price(Fill(13, "short"), COSTS, texas).patient_pay == D("20.37")
    generous = replace(PART_D, prorate="daily", source="plan document: every short fill prorated")
    result = price(Fill(13, "short", DrugFacts(solid_oral=False)), COSTS, generous)
    assert result.patient_pay == D("20.37") and result.decision.rule_id == "plan-999999"
    excluded_override = replace(PART_D, prorate="none", source="contract")
    assert price(Fill(13, "short", DrugFacts(antibiotic=True)), COSTS, excluded_override).decision.rule_id == "plan-999999"


@pytest.mark.parametrize("change", [
    {"rounding": "banker"}, {"program": "tricare"}, {"funding": "mixed"}, {"month_days": 0},
    {"prorate": "daily"}, {"prorate": "weekly", "source": "x"}, {"rx_number_width": 13},
])
def test_bad_plan_settings_are_named(change: dict[str, object]) -> None:
    with pytest.raises(RuleError, match="plan 'x'"):
        check_plan(replace(PlanRules(key="x"), **change))  # type: ignore[arg-type]


@pytest.mark.parametrize(("fill", "costs", "message"), [
    (Fill(0), COSTS, "405-D5"),
    (Fill(13), Costs(D("-1"), D("2"), D("3"), copay=D("1")), "409-D9"),
    (Fill(13), Costs(D("1"), D("2"), D("3")), "exactly one"),
    (Fill(13), Costs(D("1"), D("2"), D("3"), coinsurance=D("1.5")), "fraction"),
])
def test_bad_inputs_are_named(fill: Fill, costs: Costs, message: str) -> None:
    with pytest.raises(PricingError, match=message):
        price(fill, costs, PART_D)


def test_configured_plans_load() -> None:
    table = plans()
    assert table["default"].return_to_stock_days == 14
    assert table["999998"].return_to_stock_days == 10
    assert plan_for("123456").key == "123456" and plan_for("123456").sync_scc == "47"
