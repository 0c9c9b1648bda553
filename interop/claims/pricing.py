"""A fill's expected patient pay, dispensing fee and 420-DK code, with the rule and citation in words.

Copay: prorated by days ÷ the plan's month days (42 CFR 423.153(b)(4) and the state statutes), rounded once at
the end (half-up by default; never the daily rate first). Coinsurance already scales with cost. The patient
pays the lesser of that share, the price and U&C. The dispensing fee 412-DC is never prorated where law says.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from functools import lru_cache
from typing import Literal

from interop.claims.proration import Decision, DrugFacts, PlanRules, decide

CENT = Decimal("0.01")
_ZERO = Decimal(0)
_ONE = Decimal(1)
_TEN_THOUSANDTH = Decimal("0.0001")
FillKind = Literal["short", "anchor", "regular"]
"""short: a sync short fill (420-DK 47 or 61); anchor: the first fill at the anchor after one (48)."""
FILL_KINDS: dict[str, FillKind] = {"short": "short", "anchor": "anchor", "regular": "regular"}

SCC_TEXT = {
    "47": "shortened days supply",
    "48": "dispensed subsequent to a shortened days supply dispensing",
    "61": "synchronization fill - shortened days supply",
}


class PricingError(ValueError):
    """Pricing inputs that cannot be priced (no copay or coinsurance, a negative amount, zero days)."""


@dataclass(frozen=True, slots=True)
class Costs:
    """What the pharmacy submits (409-D9, 412-DC, 426-DQ, 423-DN) and the plan's share for a month's supply."""

    ingredient_cost: Decimal
    dispensing_fee: Decimal
    usual_and_customary: Decimal
    copay: Decimal | None = None
    coinsurance: Decimal | None = None
    """A fraction (0.25 for 25 %)."""
    basis_of_cost: str = "01"


@dataclass(slots=True)
class Fill:
    """The fill being priced: days supply 405-D5, its kind, the drug's facts, earlier sync fills of the drug."""

    days_supply: int
    kind: FillKind = "regular"
    drug: DrugFacts = field(default_factory=DrugFacts)
    prior_sync_fills: int = 0


@dataclass(slots=True)
class Pricing:
    """The priced fill: what the plan should charge the patient and pay the pharmacy, and why."""

    patient_pay: Decimal
    dispensing_fee: Decimal
    ingredient_cost: Decimal
    gross_amount_due: Decimal
    usual_and_customary: Decimal
    basis_of_cost: str
    scc: str | None
    prorated: bool
    decision: Decision
    explanation: str


def _money(value: Decimal) -> str:
    """``$1,234.57``; memoized by value (equal Decimals print alike once quantized, a negative zero is not
    memoized): up to six per explanation, 0.13 µs instead of 0.48 µs each (bench.bench_claims)."""
    if value.is_signed():
        return f"${value.quantize(CENT, ROUND_HALF_UP):,}"
    return _money_text(value)


@lru_cache(maxsize=4096)
def _money_text(value: Decimal) -> str:
    return f"${value.quantize(CENT, ROUND_HALF_UP):,}"


def _check(costs: Costs, fill: Fill) -> None:
    if fill.days_supply < 1:
        raise PricingError(f"405-D5 days supply {fill.days_supply} must be at least 1 (reject 19 M/I days supply)")
    if costs.ingredient_cost < _ZERO or costs.dispensing_fee < _ZERO or costs.usual_and_customary < _ZERO:
        for name, value in (("409-D9 ingredient cost", costs.ingredient_cost),
                            ("412-DC dispensing fee", costs.dispensing_fee),
                            ("426-DQ usual and customary", costs.usual_and_customary)):
            if value < _ZERO:
                raise PricingError(f"{name} {value} is negative")
    if (costs.copay is None) == (costs.coinsurance is None):
        raise PricingError("give exactly one of a copay for a month's supply or a coinsurance fraction")
    if costs.copay is not None and costs.copay < _ZERO:
        raise PricingError(f"copay {costs.copay} is negative")
    if costs.coinsurance is not None and not _ZERO <= costs.coinsurance <= _ONE:
        raise PricingError(f"coinsurance {costs.coinsurance} must be a fraction from 0 to 1")


def scc_for(plan: PlanRules, kind: FillKind) -> str | None:
    """420-DK for the fill: the plan's sync code on a short fill (47 default, 61 where taken), its anchor
    code (48) on the first fill at the anchor, none on a regular fill."""
    if kind == "short":
        return plan.sync_scc
    if kind == "anchor":
        return plan.anchor_scc
    return None


def prorated_copay(copay: Decimal, days: int, month_days: int, rounding: str) -> Decimal:
    """copay × days ÷ month days to the cent: half-up once at the end, or the daily rate truncated first."""
    if rounding == "daily-rate-down":
        return ((copay / month_days).quantize(CENT, ROUND_DOWN) * days).quantize(CENT, ROUND_HALF_UP)
    return (copay * days / month_days).quantize(CENT, ROUND_HALF_UP)


_DECISIONS: dict[tuple[int, int, int], tuple[PlanRules, DrugFacts, Decision]] = {}


def _decision(plan: PlanRules, drug: DrugFacts, prior_sync_fills: int) -> Decision:
    """``decide`` memoized by the identity of the (frozen) plan and drug, which the entry keeps alive so an id
    is never reused: hashing a 14-field PlanRules per claim cost 0.6 µs of bench.bench_claims, this 0.2 µs."""
    key = (id(plan), id(drug), prior_sync_fills)
    hit = _DECISIONS.get(key)
    if hit is not None:
        return hit[2]
    if len(_DECISIONS) >= 4096:
        _DECISIONS.clear()
    decision = decide(plan, drug, prior_sync_fills)
    _DECISIONS[key] = (plan, drug, decision)
    return decision


def price(fill: Fill, costs: Costs, plan: PlanRules) -> Pricing:
    """Price ``fill`` under ``plan`` (see the module docstring); Decimal throughout, rounding per plan."""
    _check(costs, fill)
    decision = _decision(plan, fill.drug, fill.prior_sync_fills)
    short = fill.days_supply < plan.month_days
    prorate = decision.prorate and short
    fee = costs.dispensing_fee
    fee_note = f"dispensing fee {_money(fee)} paid whole"
    if not decision.fee_whole and plan.prorate_fee and short:
        fee = (costs.dispensing_fee * fill.days_supply / plan.month_days).quantize(CENT, ROUND_HALF_UP)
        fee_note = f"dispensing fee {_money(costs.dispensing_fee)} prorated to {_money(fee)} by the plan"
    elif decision.fee_by_law:
        fee_note += f", never prorated ({decision.fee_citation})"
    elif decision.fee_citation:
        fee_note += f", not prorated ({decision.fee_citation})"
    gross = costs.ingredient_cost + fee
    parts: list[str] = []
    if costs.copay is not None:
        if prorate:
            share = prorated_copay(costs.copay, fill.days_supply, plan.month_days, plan.rounding)
            if plan.rounding == "daily-rate-down":
                daily = (costs.copay / plan.month_days).quantize(CENT, ROUND_DOWN)
                how = (f"daily rate {_money(costs.copay)} ÷ {plan.month_days} truncated to {_money(daily)} × "
                       f"{fill.days_supply} days = {_money(share)}")
            else:
                exact = (costs.copay * fill.days_supply / plan.month_days).quantize(_TEN_THOUSANDTH)
                how = (f"copay {_money(costs.copay)} × {fill.days_supply} ÷ {plan.month_days} days = ${exact}, "
                       f"rounded half-up once at the end to {_money(share)}")
            parts.append(f"{how}; {decision.reason} ({decision.citation})")
        else:
            share = costs.copay
            why = decision.reason + (f" ({decision.citation})" if decision.citation else "")
            if not short:
                why = f"{fill.days_supply} days is a full month's supply"
            parts.append(f"copay {_money(costs.copay)} not prorated: {why}")
    else:
        assert costs.coinsurance is not None
        share = (costs.coinsurance * gross).quantize(CENT, ROUND_HALF_UP)
        parts.append(f"coinsurance {costs.coinsurance * 100:g}% × price {_money(gross)} = {_money(share)} "
                     "(coinsurance already scales with the days dispensed)")
    patient_pay = min(share, gross, costs.usual_and_customary)
    if patient_pay != share:
        parts.append(f"lesser of the share, the price {_money(gross)} and U&C {_money(costs.usual_and_customary)}"
                     f" is {_money(patient_pay)}")
    scc = scc_for(plan, fill.kind)
    parts.append(fee_note)
    if scc:
        parts.append(f"420-DK {scc} ({SCC_TEXT.get(scc, 'payer-specific code')})")
    explanation = f"Patient pays {_money(patient_pay)}: " + "; ".join(parts) + "."
    return Pricing(patient_pay, fee, costs.ingredient_cost, gross, costs.usual_and_customary, costs.basis_of_cost,
                   scc, prorate and costs.copay is not None, decision, explanation)
