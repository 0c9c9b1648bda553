"""Which rule decides a short fill's cost sharing: a plan override, Medicare Part D, a state statute, or none.

Rules are data (``mappings/claims/proration.json``, ``plans.json``): 42 CFR 423.153(b)(4) daily cost sharing
for Part D, the state med-sync statutes of research/ncpdp.md §3.4, and per-plan overrides (ERISA self-funded
plans are outside state mandates). This module only loads them and picks the one that applies to a fill.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import cache, lru_cache
from importlib import resources
from typing import Any

ROUNDING_MODES = frozenset({"half-up", "daily-rate-down"})
PROGRAMS = frozenset({"medicare-part-d", "commercial", "medicaid"})
FUNDING = frozenset({"fully-insured", "self-funded"})
ERISA_CITATION = "ERISA §514, 29 U.S.C. §1144: a self-funded plan is outside state insurance mandates"


class RuleError(ValueError):
    """A rule file or a plan setting names an unknown key or holds a value out of range."""


@dataclass(frozen=True, slots=True)
class SyncLimit:
    """How many sync short fills of one drug a statute covers in a rolling window (Minn. Stat. 62W.10: 1 a year)."""

    max_count: int
    window_days: int


@dataclass(frozen=True, slots=True)
class ProrationRule:
    """One law's proration rule: whether it prorates the copay, keeps the fee whole, and which fills it covers."""

    id: str
    name: str
    citation: str
    prorate_copay: bool
    fee_whole: bool
    fee_citation: str
    solid_oral_only: bool = False
    exclude_antibiotics: bool = False
    exclude_original_container: bool = False
    excluded_schedules: frozenset[int] = frozenset()
    excluded_ingredients: tuple[str, ...] = ()
    sync_limit: SyncLimit | None = None


@dataclass(frozen=True, slots=True)
class PlanRules:
    """One plan's claim settings (plans.json): program, funding, state, override, rounding, 420-DK codes."""

    key: str
    name: str = ""
    program: str = "commercial"
    funding: str = "fully-insured"
    state: str = ""
    prorate: str | None = None
    prorate_fee: bool = False
    rounding: str = "half-up"
    month_days: int = 30
    sync_scc: str = "47"
    anchor_scc: str | None = "48"
    return_to_stock_days: int = 14
    rx_number_width: int = 9
    source: str = ""


@dataclass(frozen=True, slots=True)
class DrugFacts:
    """What the rules ask of the drug: dose form, antibiotic, original container, DEA schedule, ingredient."""

    solid_oral: bool = True
    antibiotic: bool = False
    original_container: bool = False
    schedule: int | None = None
    ingredient: str = ""


@dataclass(frozen=True, slots=True)
class Decision:
    """The rule that applies to one fill: prorate the copay or not, keep the fee whole or not, and why."""

    prorate: bool
    fee_whole: bool
    rule_id: str
    citation: str
    reason: str
    fee_citation: str = ""
    fee_by_law: bool = False
    """The fee is whole because the law says so (a plan contract cannot prorate it), not by contract."""


def _read(name: str) -> dict[str, Any]:
    text = resources.files("mappings").joinpath("claims", name).read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def _limit(raw: Mapping[str, Any] | None, where: str) -> SyncLimit | None:
    if raw is None:
        return None
    try:
        limit = SyncLimit(int(raw["max"]), int(raw["window_days"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise RuleError(f"{where}.sync_limit needs integer max and window_days: {exc}") from exc
    if limit.max_count < 1 or limit.window_days < 1:
        raise RuleError(f"{where}.sync_limit must be positive")
    return limit


def _rule(rule_id: str, raw: Mapping[str, Any], where: str) -> ProrationRule:
    known = {"id", "name", "citation", "prorate_copay", "fee_whole", "fee_citation", "solid_oral_only",
             "exclude_antibiotics", "exclude_original_container", "excluded_schedules", "excluded_ingredients",
             "sync_limit", "notes"}
    unknown = set(raw) - known
    if unknown:
        raise RuleError(f"{where}: unknown keys {sorted(unknown)}")
    if not raw.get("citation"):
        raise RuleError(f"{where}: every rule needs its citation")
    return ProrationRule(
        id=rule_id,
        name=str(raw.get("name", rule_id)),
        citation=str(raw["citation"]),
        prorate_copay=bool(raw.get("prorate_copay", False)),
        fee_whole=bool(raw.get("fee_whole", False)),
        fee_citation=str(raw.get("fee_citation", "")),
        solid_oral_only=bool(raw.get("solid_oral_only", False)),
        exclude_antibiotics=bool(raw.get("exclude_antibiotics", False)),
        exclude_original_container=bool(raw.get("exclude_original_container", False)),
        excluded_schedules=frozenset(int(s) for s in raw.get("excluded_schedules", [])),
        excluded_ingredients=tuple(str(i).lower() for i in raw.get("excluded_ingredients", [])),
        sync_limit=_limit(raw.get("sync_limit"), where),
    )


@cache
def part_d_rule() -> ProrationRule:
    """Medicare Part D daily cost sharing, 42 CFR 423.153(b)(4)."""
    raw = _read("proration.json")["part_d"]
    return _rule(str(raw.get("id", "part-d")), raw, "proration.json part_d")


@cache
def state_rules() -> dict[str, ProrationRule]:
    """State med-sync statutes by postal code (ncpdp.md §3.4)."""
    raw = _read("proration.json")["states"]
    return {code: _rule(f"state-{code}", rule, f"proration.json states.{code}") for code, rule in raw.items()}


def _plan(key: str, raw: Mapping[str, Any], base: PlanRules) -> PlanRules:
    fields = set(PlanRules.__dataclass_fields__) - {"key"}
    unknown = set(raw) - fields
    if unknown:
        raise RuleError(f"plans.json {key}: unknown keys {sorted(unknown)}")
    plan = replace(base, key=key, **dict(raw))
    return check_plan(plan)


def check_plan(plan: PlanRules) -> PlanRules:
    """``plan`` itself when its settings are in range, else a RuleError naming the setting."""
    where = f"plan {plan.key!r}"
    if plan.program not in PROGRAMS:
        raise RuleError(f"{where}: program {plan.program!r} is not one of {sorted(PROGRAMS)}")
    if plan.funding not in FUNDING:
        raise RuleError(f"{where}: funding {plan.funding!r} is not one of {sorted(FUNDING)}")
    if plan.rounding not in ROUNDING_MODES:
        raise RuleError(f"{where}: rounding {plan.rounding!r} is not one of {sorted(ROUNDING_MODES)}")
    if plan.prorate not in (None, "daily", "none"):
        raise RuleError(f"{where}: prorate {plan.prorate!r} must be null, 'daily' or 'none'")
    if plan.prorate is not None and not plan.source:
        raise RuleError(f"{where}: an override of the law needs its source")
    if not 1 <= plan.month_days <= 34:
        raise RuleError(f"{where}: month_days {plan.month_days} is outside 1-34")
    if plan.return_to_stock_days < 1 or not 1 <= plan.rx_number_width <= 12:
        raise RuleError(f"{where}: return_to_stock_days must be positive and rx_number_width 1-12")
    return plan


@cache
def plans() -> dict[str, PlanRules]:
    """Every configured plan by key (BIN, or BIN/PCN), plus ``default``."""
    raw = _read("plans.json")
    default = _plan("default", raw["default"], PlanRules(key="default"))
    out = {"default": default}
    for key, plan in raw.get("plans", {}).items():
        out[key] = _plan(key, plan, default)
    return out


@lru_cache(maxsize=1024)
def plan_for(bin_number: str, pcn: str = "") -> PlanRules:
    """The plan settings for a Coverage's RxBIN (and RxPCN): ``BIN/PCN``, else ``BIN``, else the default.

    Cached (the tables are read once and a PlanRules is frozen): the same object comes back for a BIN, so
    ``decide``'s cache hits without a ``replace`` per claim."""
    table = plans()
    return table.get(f"{bin_number}/{pcn}") or table.get(bin_number) or replace(table["default"], key=bin_number)


def _excluded(rule: ProrationRule, drug: DrugFacts, prior_sync_fills: int) -> str | None:
    """Why ``rule`` does not cover this drug (its own words), or None when it does."""
    if rule.solid_oral_only and not drug.solid_oral:
        return "not a solid oral dose"
    if rule.exclude_antibiotics and drug.antibiotic:
        return "a solid oral antibiotic is excepted"
    if rule.exclude_original_container and drug.original_container:
        return "dispensed in its original container, which is excepted"
    if drug.schedule is not None and drug.schedule in rule.excluded_schedules:
        return f"a C-{_roman(drug.schedule)} controlled substance is outside the statute"
    ingredient = drug.ingredient.lower()
    hit = next((name for name in rule.excluded_ingredients if ingredient and name in ingredient), None)
    if hit is not None:
        return f"{hit} is outside the statute"
    if rule.sync_limit is not None and prior_sync_fills >= rule.sync_limit.max_count:
        return (f"the statute covers {rule.sync_limit.max_count} sync short fill(s) per drug in "
                f"{rule.sync_limit.window_days} days and {prior_sync_fills} already happened")
    return None


def _roman(schedule: int) -> str:
    return {1: "I", 2: "II", 3: "III", 4: "IV", 5: "V"}.get(schedule, str(schedule))


@lru_cache(maxsize=4096)
def decide(plan: PlanRules, drug: DrugFacts, prior_sync_fills: int = 0) -> Decision:
    """The rule for a short fill under ``plan``: the law that binds it (Part D, else the state statute of a
    fully insured plan; a self-funded ERISA plan has none), with the plan's override where the law allows it:
    a plan may always prorate ("daily"), but "none" gives way to a law that prorates this fill."""
    law: Decision | None = None
    if plan.program == "medicare-part-d":
        law = _by_rule(part_d_rule(), plan, drug, prior_sync_fills)
    elif plan.funding != "self-funded" and plan.state:
        rule = state_rules().get(plan.state.upper())
        law = _by_rule(rule, plan, drug, prior_sync_fills) if rule is not None else None
    fee_whole = law.fee_whole if law is not None else not plan.prorate_fee
    fee = (law.fee_citation, law.fee_by_law) if law is not None else ("", False)
    name = plan.name or plan.key
    if plan.prorate == "daily" and (law is None or not law.prorate):
        return Decision(True, fee_whole, f"plan-{plan.key}", plan.source, f"plan {name} prorates cost sharing", *fee)
    if plan.prorate == "none" and law is not None and law.prorate:
        return replace(law, reason=f"{law.reason}; the plan's own rule ({plan.source}) gives way to it")
    if plan.prorate == "none":
        return Decision(False, fee_whole, f"plan-{plan.key}", plan.source,
                        f"plan {name} does not prorate cost sharing", *fee)
    if law is not None:
        return law
    if plan.funding == "self-funded":
        return Decision(False, fee_whole, "erisa", ERISA_CITATION,
                        "self-funded plan: no state proration mandate applies")
    where = f"state {plan.state}" if plan.state else "no state"
    return Decision(False, fee_whole, "none", "", f"{where} has no proration statute on file and the plan sets none",
                    "")


def _by_rule(rule: ProrationRule, plan: PlanRules, drug: DrugFacts, prior_sync_fills: int) -> Decision:
    fee_whole = rule.fee_whole or not plan.prorate_fee
    fee = (rule.fee_citation, rule.fee_whole)
    if not rule.prorate_copay:
        return Decision(False, fee_whole, rule.id, rule.citation, f"{rule.name} does not prorate cost sharing", *fee)
    excluded = _excluded(rule, drug, prior_sync_fills)
    if excluded is not None:
        return Decision(False, fee_whole, rule.id, rule.citation, f"{rule.name} does not apply: {excluded}", *fee)
    return Decision(True, fee_whole, rule.id, rule.citation, f"{rule.name} prorates cost sharing", *fee)
