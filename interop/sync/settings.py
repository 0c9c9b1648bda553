"""Med sync settings: pharmacy defaults, payer rules and state rules, loaded from ``mappings/sync/*.json``.

The rules live in data so that an integration engineer can read and override them (medsync.md §4.1 for the
state table, §2.5 for refill-too-soon thresholds, ncpdp.md §3.5 for the 420-DK sync codes).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Any

_OBJECTIVE_TERMS = frozenset(
    {"infeasible", "renewals", "transition_events", "extra_out_of_pocket", "days_to_steady", "preference"}
)


class SettingsError(ValueError):
    """A rule file or an override names an unknown key or holds a value out of range."""


@dataclass(frozen=True, slots=True)
class SyncLimit:
    """How many sync short fills one drug may have in a rolling window (PA PACE: 3 a year)."""

    max_count: int
    window_days: int
    reset_on_dose_change: bool


@dataclass(frozen=True, slots=True)
class PayerRules:
    """One payer's refill-too-soon threshold, 420-DK sync codes, proration rule and copay estimate."""

    key: str
    refill_too_soon: float
    sync_scc: str
    anchor_scc: str
    prorates: bool
    proration_solid_oral_only: bool
    copay_cents: int
    sync_limit: SyncLimit | None


@dataclass(frozen=True, slots=True)
class StateRules:
    """A state's controlled-substance exclusions and per-drug sync limit, with the statute it comes from."""

    code: str
    excluded_schedules: frozenset[int]
    excluded_ingredients: tuple[str, ...]
    sync_limit: SyncLimit | None
    citation: str


@dataclass(frozen=True, slots=True)
class UnitRules:
    """Which dispensing units may be dispensed in any whole number (tablets) and which are packages."""

    splittable: frozenset[str]
    solid_oral: frozenset[str]
    drop_units: frozenset[str]
    insulin_units: frozenset[str]
    volume_units: frozenset[str]
    package_count_units: frozenset[str]


@dataclass(frozen=True, slots=True)
class Preference:
    """The patient's preferred pickup weekday (0 = Monday) or day of the month, both optional."""

    weekday: int | None = None
    day_of_month: int | None = None


@dataclass(frozen=True, slots=True)
class SyncSettings:
    """Everything the planner reads besides the patient's resources and ``today``."""

    cycle_days: int
    allowed_cycles: tuple[int, ...]
    prep_lead_days: int
    reminder_lead_days: int
    review_call_lead_days: tuple[int, int]
    prescriber_answer_days: int
    renewal_buffer_days: int
    renewal_min_lead_days: int
    tolerance_days: int
    min_short_fill_days: int
    acute_max_total_days: int
    month_days: int
    drops_per_ml: int
    insulin_units_per_ml: int
    state: str
    objective: tuple[str, ...]
    default_payer: PayerRules
    payers: Mapping[str, PayerRules]
    base_state: StateRules
    states: Mapping[str, StateRules]
    antibiotic_stems: tuple[str, ...]
    controlled: Mapping[str, int]
    units: UnitRules
    drug_memo: dict[str, tuple[bool, int | None, str]] = field(default_factory=dict, compare=False, repr=False)

    @property
    def renewal_lead_days(self) -> int:
        """Days before the fill that needs it that a renewal request goes out (medsync.md §2.6)."""
        lead = self.prep_lead_days + self.reminder_lead_days + self.prescriber_answer_days + self.renewal_buffer_days
        return max(lead, self.renewal_min_lead_days)

    def payer(self, key: str | None) -> PayerRules:
        """The rules of the payer ``key`` (case-insensitive), else the defaults."""
        if key:
            rules = self.payers.get(key.upper())
            if rules is not None:
                return rules
        return self.default_payer

    def state_rules(self, code: str | None = None) -> StateRules:
        """The rules of state ``code`` (or of the pharmacy's state), merged with the rules for every state."""
        chosen = (code or self.state).upper()
        return self.states.get(chosen, self.base_state)


def _read(name: str) -> dict[str, Any]:
    text = resources.files("mappings.sync").joinpath(name).read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def _limit(raw: Mapping[str, Any] | None, where: str) -> SyncLimit | None:
    if raw is None:
        return None
    try:
        limit = SyncLimit(int(raw["max"]), int(raw["window_days"]), bool(raw["reset_on_dose_change"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise SettingsError(f"{where}.sync_limit: needs max, window_days, reset_on_dose_change ({exc})") from exc
    if limit.max_count < 0 or limit.window_days <= 0:
        raise SettingsError(f"{where}.sync_limit: max must be >= 0 and window_days > 0")
    return limit


def _payer(key: str, raw: Mapping[str, Any], base: Mapping[str, Any]) -> PayerRules:
    merged = {**base, **raw}
    where = f"payers.json:{key}"
    threshold = float(merged["refill_too_soon"])
    if not 0.0 < threshold <= 1.0:
        raise SettingsError(f"{where}.refill_too_soon: {threshold} is not in (0, 1]")
    proration = str(merged["proration"])
    if proration not in ("daily", "none"):
        raise SettingsError(f"{where}.proration: {proration!r} is neither 'daily' nor 'none'")
    return PayerRules(
        key=key,
        refill_too_soon=threshold,
        sync_scc=str(merged["sync_scc"]),
        anchor_scc=str(merged["anchor_scc"]),
        prorates=proration == "daily",
        proration_solid_oral_only=bool(merged["proration_solid_oral_only"]),
        copay_cents=int(Decimal(str(merged["copay"])) * 100),
        sync_limit=_limit(merged.get("sync_limit"), where),
    )


def _state(code: str, raw: Mapping[str, Any], base: Mapping[str, Any]) -> StateRules:
    schedules = frozenset(int(s) for s in base["excluded_schedules"]) | frozenset(
        int(s) for s in raw.get("excluded_schedules", ())
    )
    ingredients = tuple(
        sorted({str(i).lower() for i in base["excluded_ingredients"]} | {str(i).lower() for i in raw.get("excluded_ingredients", ())})
    )
    limit = _limit(raw.get("sync_limit", base.get("sync_limit")), f"states.json:{code}")
    return StateRules(code, schedules, ingredients, limit, str(raw.get("citation", base.get("citation", ""))))


@cache
def _defaults() -> SyncSettings:
    defaults = _read("defaults.json")
    payers_raw = _read("payers.json")
    states_raw = _read("states.json")
    classes = _read("drug_classes.json")
    units = _read("units.json")
    base_payer = payers_raw["default"]
    payers = {k.upper(): _payer(k.upper(), v, base_payer) for k, v in payers_raw["payers"].items()}
    base_state_raw = states_raw["all"]
    states = {k.upper(): _state(k.upper(), v, base_state_raw) for k, v in states_raw["states"].items()}
    renewal = defaults["renewal"]
    low, high = defaults["review_call_lead_days"]
    objective = tuple(defaults["objective"])
    unknown = set(objective) - _OBJECTIVE_TERMS
    if unknown or len(set(objective)) != len(_OBJECTIVE_TERMS):
        raise SettingsError(f"defaults.json:objective must order exactly {sorted(_OBJECTIVE_TERMS)}")
    return SyncSettings(
        cycle_days=int(defaults["cycle_days"]),
        allowed_cycles=tuple(int(c) for c in defaults["allowed_cycles"]),
        prep_lead_days=int(defaults["prep_lead_days"]),
        reminder_lead_days=int(defaults["reminder_lead_days"]),
        review_call_lead_days=(int(low), int(high)),
        prescriber_answer_days=int(renewal["prescriber_answer_days"]),
        renewal_buffer_days=int(renewal["buffer_days"]),
        renewal_min_lead_days=int(renewal["min_lead_days"]),
        tolerance_days=int(defaults["tolerance_days"]),
        min_short_fill_days=int(defaults["min_short_fill_days"]),
        acute_max_total_days=int(defaults["acute_max_total_days"]),
        month_days=int(defaults["month_days"]),
        drops_per_ml=int(defaults["drops_per_ml"]),
        insulin_units_per_ml=int(defaults["insulin_units_per_ml"]),
        state=str(defaults["state"]).upper(),
        objective=objective,
        default_payer=_payer("default", {}, base_payer),
        payers=payers,
        base_state=_state("", {}, base_state_raw),
        states=states,
        antibiotic_stems=tuple(str(s).lower() for s in classes["antibiotic_stems"]),
        controlled={str(k).lower(): int(v) for k, v in classes["controlled"].items()},
        units=UnitRules(
            splittable=frozenset(units["splittable"]),
            solid_oral=frozenset(units["solid_oral"]),
            drop_units=frozenset(units["drop_units"]),
            insulin_units=frozenset(units["insulin_units"]),
            volume_units=frozenset(units["volume_units"]),
            package_count_units=frozenset(units["package_count_units"]),
        ),
    )


def load_settings(**overrides: Any) -> SyncSettings:
    """The settings from ``mappings/sync``, with pharmacy-level ``overrides`` (e.g. ``state="NY"``).

    Unknown override names and cycles outside ``allowed_cycles`` raise :class:`SettingsError`.
    """
    base = _defaults()
    names = set(SyncSettings.__dataclass_fields__) - {"drug_memo"}
    unknown = set(overrides) - names
    if unknown:
        raise SettingsError(f"unknown sync setting(s): {', '.join(sorted(unknown))}")
    if "state" in overrides:
        overrides["state"] = str(overrides["state"]).upper()
    settings = replace(base, **overrides, drug_memo={}) if overrides else base
    if set(settings.objective) != _OBJECTIVE_TERMS or len(settings.objective) != len(_OBJECTIVE_TERMS):
        raise SettingsError(f"objective must order exactly {sorted(_OBJECTIVE_TERMS)}")
    if settings.cycle_days not in settings.allowed_cycles:
        raise SettingsError(f"cycle_days {settings.cycle_days} is not one of {settings.allowed_cycles}")
    return settings
