"""The whole sync plan of one patient: anchor, planned fills, pickups, renewals and exclusions.

``plan_patient`` is a pure function of the patient's MedicationRequests, MedicationDispenses and Coverage, the
settings and ``today`` (no I/O, no clock). Fills follow ncpdp.md §3.5: full fills, then one short fill with the
payer's sync code in 420-DK, then anchor fills every cycle, the first with 48.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, NamedTuple

from interop.sync import anchor as anchor_choice
from interop.sync.eligibility import Exclusion, Reason, exclusions
from interop.sync.package import coschedule_day, packages_for
from interop.sync.regimen import (
    SCC_EXTENSION,
    Regimen,
    RegimenError,
    copay_cents,
    drug_key,
    payer_key,
    refill_payable_day,
    regimen_from,
)
from interop.sync.renewal import RenewalRequest, renewal_for
from interop.sync.settings import PayerRules, Preference, SyncSettings
from interop.sync.shortfill import claimed_days, units_for

Resource = Mapping[str, Any]


_FILL_ORDER = operator.itemgetter(2, 0)
"""PlannedFill sort key: (day, request_id)."""


class PlanError(ValueError):
    """The inputs cannot be planned (no patient, mixed patients, a cycle not allowed, a malformed resource)."""


class PlannedFill(NamedTuple):
    """One planned dispense: day (ordinal), days supply to claim (405-D5), quantity (442-E7) and 420-DK code.

    ``kind`` is ``full`` (a whole cycle before the anchor), ``short`` (to the anchor), ``extended`` (gap below
    the minimum short fill, plus a cycle), ``anchor`` (on the anchor lattice), ``co-scheduled`` or
    ``own-cycle`` (a non-splittable package off the lattice). ``earliest_payable`` is the payer's refill-too-soon
    day for this fill; ``needs_renewal`` marks a fill beyond the authorized supply.
    """

    request_id: str
    drug_name: str
    day: int
    days: int
    quantity: float
    unit: str
    packages: int | None
    kind: str
    claim_code: str | None
    earliest_payable: int
    needs_renewal: bool

    @property
    def date(self) -> date:
        return date.fromordinal(self.day)


class Pickup(NamedTuple):
    """One pickup trip (an Appointment): the day and the prescriptions filled for it."""

    day: int
    request_ids: tuple[str, ...]

    @property
    def date(self) -> date:
        return date.fromordinal(self.day)


@dataclass(slots=True)
class SyncPlan:
    """The plan for one patient (treat as read-only). Days are ordinals in the tuples; ``anchor``/``steady``
    are dates.

    ``steady`` is the first day every synced drug is picked up together; ``synced`` lists the prescriptions on
    the anchor lattice; ``regimens`` holds the facts read from every prescription, keyed by request id.
    """

    patient: str
    today: date
    anchor: date | None
    cycle_days: int
    steady: date | None
    payer: str
    state: str
    sync_scc: str
    fills: tuple[PlannedFill, ...]
    renewals: tuple[RenewalRequest, ...]
    exclusions: tuple[Exclusion, ...]
    synced: tuple[str, ...]
    choice: anchor_choice.AnchorChoice | None
    regimens: Mapping[str, Regimen]
    refill_too_soon: float

    @property
    def pickups(self) -> tuple[Pickup, ...]:
        """One pickup trip per fill day, in date order (fills are sorted by day, then request id)."""
        by_day: dict[int, list[str]] = {}
        for fill in self.fills:
            by_day.setdefault(fill.day, []).append(fill.request_id)
        return tuple(Pickup(d, tuple(ids)) for d, ids in by_day.items())

    def drug_note(self, request_id: str) -> str:
        """Why one prescription gets the fills it gets, in a sentence for staff."""
        reg = self.regimens[request_id]
        for excl in self.exclusions:
            if excl.request_id == request_id:
                return f"{reg.drug_name}: {excl.reason.value} ({excl.detail})"
        fills = [f for f in self.fills if f.request_id == request_id]
        if self.anchor is None or not fills:
            return f"{reg.drug_name}: nothing planned"
        anchor, due = self.anchor.toordinal(), reg.next_due
        iso = date.fromordinal
        parts = [f"{reg.drug_name}: due {iso(due)}"]
        if due > anchor:
            if reg.earliest_refill > anchor:
                parts.append(
                    f"not payable on the anchor {self.anchor} (refill-too-soon: earliest {iso(reg.earliest_refill)}, "
                    f"{self.refill_too_soon:.0%} of {reg.days_supply} days), so it joins the next anchor date"
                )
            else:
                parts.append(f"after the anchor {self.anchor}, so it joins the next anchor date")
        elif due < anchor:
            parts.append(f"before the anchor {self.anchor}")
        else:
            parts.append("on the anchor")
        for fill in fills:
            code = f", 420-DK {fill.claim_code}" if fill.claim_code else ""
            parts.append(
                f"{fill.kind} fill {fill.date}: {fill.days} days, {fill.quantity:g} {fill.unit}{code}"
                + (f", reaching {iso(fill.day + fill.days)}" if fill.kind == "short" else "")
            )
        return "; ".join(parts)


def _patient(requests: Sequence[Resource]) -> str:
    if requests:
        first = (requests[0].get("subject") or {}).get("reference")
        if type(first) is str and first.startswith("Patient/"):
            for r in requests:  # a loop, not all(generator): 1 us less per patient
                if (r.get("subject") or {}).get("reference") != first:
                    break
            else:
                return first
    refs = {(r.get("subject") or {}).get("reference") for r in requests}
    refs.discard(None)
    if len(refs) != 1:
        raise PlanError(f"MedicationRequest.subject: expected one patient, found {sorted(map(str, refs)) or 'none'}")
    ref = str(refs.pop())
    if not ref.startswith("Patient/"):
        raise PlanError(f"MedicationRequest.subject.reference: {ref!r} is not a Patient reference")
    return ref


def _latest_by_id(resources: Sequence[Resource]) -> Sequence[Resource]:
    """``resources`` with one entry per id, the last one given winning (a record delivered twice)."""
    ids = [r.get("id") for r in resources]
    if len(set(ids)) == len(ids):
        return resources
    last = {rid: i for i, rid in enumerate(ids)}
    return [r for i, r in enumerate(resources) if last[ids[i]] == i]


def _group_dispenses(dispenses: Iterable[Resource]) -> tuple[dict[str, list[Resource]], list[Resource]]:
    """Dispenses by authorizing MedicationRequest id, and those carrying a 420-DK code (for sync counts)."""
    by_request: dict[str, list[Resource]] = {}
    coded: list[Resource] = []
    for disp in dispenses:
        for auth in disp.get("authorizingPrescription", ()):
            ref = auth.get("reference", "")
            if ref[:18] == "MedicationRequest/":
                key = ref[18:]
                group = by_request.get(key)
                if group is None:
                    by_request[key] = [disp]
                else:
                    group.append(disp)
        if "extension" in disp and any(e.get("url") == SCC_EXTENSION for e in disp["extension"]):
            coded.append(disp)
    return by_request, coded


def _drug_syncs(coded: list[Resource], drug_keys: Mapping[str, str]) -> dict[str, list[Resource]]:
    out: dict[str, list[Resource]] = {}
    for disp in coded:
        for auth in disp.get("authorizingPrescription", ()):
            key = drug_keys.get(auth.get("reference", "")[18:])
            if key:
                out.setdefault(key, []).append(disp)
    return out


_new_fill = tuple.__new__
"""Builds a :class:`PlannedFill` from one tuple without the named constructor's Python frame (423 -> 252 ns,
measured); the field order is the class's."""


_SHORT_MEMO: dict[tuple[float, int, float], tuple[float, int, int]] = {}
_MEMO_LIMIT = 4096
"""Entries kept in the short-fill memo before it starts over (a pure function of its key)."""


def _short_fill(daily_dose: float, days: int, threshold: float) -> tuple[float, int, int]:
    """(quantity, days supply to claim, refill-too-soon offset) of a splittable fill covering ``days``.

    Memoized per (dose, days, threshold), which a population repeats endlessly: the three formulas cost
    632 ns per short fill, the lookup 120 ns (measured with timeit).
    """
    key = (daily_dose, days, threshold)
    hit = _SHORT_MEMO.get(key)
    if hit is None:
        quantity = float(units_for(days, daily_dose))
        claimed = claimed_days(days, quantity, daily_dose)
        hit = (quantity, claimed, refill_payable_day(0, claimed, threshold))
        if len(_SHORT_MEMO) >= _MEMO_LIMIT:
            _SHORT_MEMO.clear()
        _SHORT_MEMO[key] = hit
    return hit


def _synced_fills(
    reg: Regimen,
    full: int,
    gap: int,
    joins: int,
    steady: int,
    cycle: int,
    cycle_rts: int,
    payer: PayerRules,
    settings: SyncSettings,
) -> tuple[list[PlannedFill], float]:
    """Full fills, the short fill and the anchor fills through ``steady`` for one synced drug, and their total
    quantity; ``full``, ``gap`` and ``joins`` are its :func:`transition` to the anchor and ``cycle_rts`` is
    ``refill_payable_day(0, cycle, refill_too_soon)``."""
    d = reg.daily_dose
    p = payer.refill_too_soon
    rid, name, unit = reg.request_id, reg.drug_name, reg.unit
    split = reg.splittable
    fills: list[PlannedFill] = []
    earliest = reg.earliest_refill
    cursor = reg.next_due
    cycle_packs: int | None = None
    if split:
        cycle_qty = (_SHORT_MEMO.get((d, cycle, p)) or _short_fill(d, cycle, p))[0]
    else:
        cycle_packs = packages_for(cycle, d, reg.package_size)
        cycle_qty = cycle_packs * reg.package_size
    total = 0.0
    for _ in range(full):
        fills.append(_new_fill(PlannedFill, (rid, name, cursor, cycle, cycle_qty, unit, cycle_packs, "full", None,
                                             earliest, False)))
        total += cycle_qty
        earliest = cursor + cycle_rts
        cursor += cycle
    shortened = False
    if gap:
        extended = gap < settings.min_short_fill_days
        days = gap + cycle if extended else gap
        packs: int | None = None
        rts = -1
        if split and not extended:
            qty, days, rts = _SHORT_MEMO.get((d, gap, p)) or _short_fill(d, gap, p)
        elif split:
            qty = float(units_for(days, d))
        else:
            packs = packages_for(days, d, reg.package_size)
            qty = packs * reg.package_size
        if extended:
            fills.append(_new_fill(PlannedFill, (rid, name, cursor, days, qty, unit, packs, "extended", None,
                                                 earliest, False)))
        else:
            fills.append(_new_fill(PlannedFill, (rid, name, cursor, days, qty, unit, packs, "short", payer.sync_scc,
                                                 earliest, False)))
            shortened = True
        total += qty
        earliest = cursor + rts if rts >= 0 else refill_payable_day(cursor, days, p)
    fill_day = joins
    code = payer.anchor_scc if shortened else None
    while fill_day <= steady:
        fills.append(_new_fill(PlannedFill, (rid, name, fill_day, cycle, cycle_qty, unit, cycle_packs, "anchor", code,
                                             earliest, False)))
        code = None
        total += cycle_qty
        earliest = fill_day + cycle_rts
        fill_day += cycle
    return fills, total


def _floating_fills(
    reg: Regimen, day: int | None, horizon: int, cycle: int, today: int, payer: PayerRules, settings: SyncSettings
) -> tuple[list[PlannedFill], bool]:
    """Fills of a non-splittable package on its own cycle through ``horizon``, each pulled onto an anchor day
    when one falls in the tolerance window; returns the fills and whether the first was co-scheduled."""
    packs = packages_for(reg.days_supply, reg.daily_dose, reg.package_size)
    quantity = packs * reg.package_size
    lasts = max(int(quantity / reg.daily_dose + 1e-9), 1)
    due, earliest = reg.next_due, reg.earliest_refill
    fills: list[PlannedFill] = []
    first_coscheduled = False
    while due <= horizon or not fills:
        pick = (
            coschedule_day(due, earliest, day, cycle, settings.tolerance_days, today) if day is not None else None
        )
        kind = "co-scheduled" if pick is not None else "own-cycle"
        if not fills:
            first_coscheduled = pick is not None
        fill_day = pick if pick is not None else due
        fills.append(
            PlannedFill(reg.request_id, reg.drug_name, fill_day, lasts, quantity, reg.unit, packs, kind, None,
                        earliest, False)
        )
        earliest = refill_payable_day(fill_day, lasts, payer.refill_too_soon)
        due += lasts
    return fills, first_coscheduled


def _authorize(reg: Regimen, fills: list[PlannedFill], today: int, settings: SyncSettings) -> RenewalRequest | None:
    """Mark fills beyond the authorized quantity or the prescription's expiry; the renewal they need."""
    remaining = reg.authorized_units + 1e-9
    first = -1
    shortfall = 0.0
    for i, fill in enumerate(fills):
        if first < 0 and (fill.quantity > remaining or (reg.expires is not None and fill.day > reg.expires)):
            first = i
        if first >= 0:
            shortfall += fill.quantity
            fills[i] = _new_fill(PlannedFill, (*fill[:-1], True))  # needs_renewal, the last field
        else:
            remaining -= fill.quantity
    if first < 0:
        return None
    return renewal_for(reg.request_id, reg.drug_name, fills[first].day, shortfall, today, settings)


def plan_patient(
    requests: Sequence[Resource],
    dispenses: Sequence[Resource],
    coverage: Resource | None,
    settings: SyncSettings,
    today: date,
    anchor: date | None = None,
    cycle_days: int | None = None,
    preference: Preference | None = None,
    state: str | None = None,
) -> SyncPlan:
    """Plan one patient's sync (see the module docstring); ``anchor`` None lets the optimizer choose it.

    Raises :class:`PlanError` naming the element path when an input cannot be planned.
    """
    cycle = cycle_days or settings.cycle_days
    if cycle not in settings.allowed_cycles:
        raise PlanError(f"cycleDays {cycle} is not one of {settings.allowed_cycles}")
    patient = _patient(requests)
    requests = _latest_by_id(requests)
    dispenses = _latest_by_id(dispenses)
    now = today.toordinal()
    pkey = payer_key(coverage)
    payer = settings.payer(pkey)
    copay = copay_cents(coverage, payer)
    state_rules = settings.state_rules(state)
    by_request, coded = _group_dispenses(dispenses)

    regimens: dict[str, Regimen] = {}
    drug_syncs: dict[str, list[Resource]] = {}
    keys: dict[str, str] = {}
    if coded:
        keys = {str(req.get("id")): drug_key(req) for req in requests}
        drug_syncs = _drug_syncs(coded, keys)
    # a drug passes every eligibility rule without calling exclusions() when it is active maintenance, renewable
    # or refillable, not scheduled, and either no sync limit applies or it has no earlier sync to count
    state_limit, payer_limit = state_rules.sync_limit, payer.sync_limit
    limited = state_limit is not None or payer_limit is not None
    plain_rules = (
        not state_rules.excluded_ingredients
        and (state_limit is None or state_limit.max_count > 0)
        and (payer_limit is None or payer_limit.max_count > 0)
    )
    excluded: list[Exclusion] = []
    synced: list[Regimen] = []
    floaters: list[Regimen] = []
    for req in requests:
        rid = str(req.get("id"))
        same_drug = drug_syncs.get(keys[rid], ()) if drug_syncs else ()
        try:
            reg = regimen_from(req, by_request.get(rid, ()), same_drug, payer, copay, now, settings)
        except RegimenError as exc:
            raise PlanError(str(exc)) from exc
        regimens[reg.request_id] = reg
        plain = (
            plain_rules and reg.active and not reg.prn and not reg.acute and reg.schedule is None
            and (reg.fills_left or reg.can_renew) and not (limited and reg.prior_syncs)
        )
        reasons = () if plain else exclusions(reg, state_rules, payer, now)
        if reasons:
            excluded.extend(reasons)
        elif reg.splittable or cycle % reg.natural_cycle == 0:
            synced.append(reg)
        else:
            floaters.append(reg)

    choice: anchor_choice.AnchorChoice | None = None
    day: int | None = None
    if anchor is not None:
        day = anchor.toordinal()
        choice = anchor_choice.requested(day, synced, floaters, cycle, now, settings, preference)
    elif synced:
        choice = anchor_choice.choose(synced, floaters, cycle, now, settings, preference)
        day = choice.day

    fills: list[PlannedFill] = []
    renewals: list[RenewalRequest] = []
    synced_ids: list[str] = []
    steady = day
    if day is not None:
        last_join = day
        on_lattice: list[tuple[Regimen, int, int, int]] = []
        for reg in synced:
            due = reg.next_due  # transition(due, day, cycle) without its NamedTuple, inlined for speed
            if due <= day:
                full, gap = divmod(day - due, cycle)
                joins = day
            else:
                full, gap = 0, (day - due) % cycle
                joins = due + gap
            if not reg.splittable and gap % reg.natural_cycle:
                floaters.append(reg)
                continue
            on_lattice.append((reg, full, gap, joins))
            if joins > last_join:
                last_join = joins
        steady = last_join
        cycle_rts = refill_payable_day(0, cycle, payer.refill_too_soon)
        for reg, full, gap, joins in on_lattice:
            drug_fills, total = _synced_fills(reg, full, gap, joins, steady, cycle, cycle_rts, payer, settings)
            renewal = (
                _authorize(reg, drug_fills, now, settings)
                if reg.expires is not None or total > reg.authorized_units + 1e-9
                else None
            )
            if renewal is not None and not reg.can_renew:
                excluded.append(
                    Exclusion(reg.request_id, reg.drug_name, Reason.NO_REFILLS,
                              "authorized supply ends before the anchor and there is no prescriber to ask")
                )
                continue
            if renewal is not None:
                renewals.append(renewal)
            fills.extend(drug_fills)
            synced_ids.append(reg.request_id)
    horizon = (steady if steady is not None else now) + cycle
    for reg in floaters:
        drug_fills, coscheduled = _floating_fills(reg, day, horizon, cycle, now, payer, settings)
        renewal = _authorize(reg, drug_fills, now, settings)
        if renewal is not None and not reg.can_renew:
            excluded.append(
                Exclusion(reg.request_id, reg.drug_name, Reason.NO_REFILLS,
                          "authorized supply runs out and there is no prescriber to ask")
            )
            continue
        if renewal is not None:
            renewals.append(renewal)
        fills.extend(drug_fills)
        reason = Reason.CO_SCHEDULED if coscheduled else Reason.OWN_CYCLE
        detail = (
            f"package lasts {drug_fills[0].days} days against a {cycle}-day cycle; "
            f"tolerance {settings.tolerance_days} days"
        )
        excluded.append(Exclusion(reg.request_id, reg.drug_name, reason, detail))

    fills.sort(key=_FILL_ORDER)
    return SyncPlan(
        patient,
        today,
        date.fromordinal(day) if day is not None else None,
        cycle,
        date.fromordinal(steady) if steady is not None else None,
        payer.key,
        state_rules.code,
        payer.sync_scc,
        tuple(fills),
        tuple(renewals),
        tuple(excluded),
        tuple(synced_ids),
        choice,
        regimens,
        payer.refill_too_soon,
    )

