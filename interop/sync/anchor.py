"""Anchor choice as an explained optimization over every candidate date of one cycle.

Objective (mappings/sync/defaults.json ``objective``, lexicographic): drugs that cannot be synced on the date
(a package that would need splitting, a renewal that cannot arrive or cannot be asked for), then renewals
needed, then short fills + transition trips, then the patient's out-of-pocket beyond the daily cost-sharing
rate (a non-prorating plan charges a whole copay for a short fill; 42 CFR 423.153(b)(4)), then days from
today until every synced drug is picked up together, then distance from the patient's preferred weekday or
day of the month, then the earliest date. medsync.md §5.1 explains why none of the heuristics in use is enough.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence
from datetime import date
from typing import NamedTuple

from interop.sync.package import coschedule_day
from interop.sync.regimen import Regimen
from interop.sync.settings import Preference, SyncSettings
from interop.sync.shortfill import transition

TERMS = ("infeasible", "renewals", "transition_events", "extra_out_of_pocket", "days_to_steady", "preference")

TERM_TEXT = {
    "infeasible": "drugs it cannot sync (package split, renewal impossible or too late)",
    "renewals": "renewal requests needed",
    "transition_events": "short fills + transition trips",
    "extra_out_of_pocket": "patient out-of-pocket beyond the daily rate (cents)",
    "days_to_steady": "days until every synced drug is picked up together",
    "preference": "days from the patient's preferred day",
}


class AnchorCandidate(NamedTuple):
    """One candidate anchor day (ordinal) and its score components, in :data:`TERMS` order."""

    day: int
    infeasible: int
    renewals: int
    short_fills: int
    trips: int
    extra_out_of_pocket: int
    days_to_steady: int
    preference: int

    @property
    def date(self) -> date:
        return date.fromordinal(self.day)

    def component(self, term: str) -> int:
        """The value of one objective term (``transition_events`` = short fills + trips)."""
        if term == "transition_events":
            return self.short_fills + self.trips
        value: int = getattr(self, term)
        return value


Columns = tuple[list[int], ...]
"""Score columns of a candidate window: days, then one list per :class:`AnchorCandidate` term."""
Completion = Callable[[int], tuple[int, int]]
"""(infeasible, renewals) of candidate ``i`` that the branch and bound did not evaluate."""


class AnchorChoice:
    """The chosen anchor, how it was chosen and every candidate considered.

    The optimizer keeps its score columns (one list per term, one entry per candidate day), or only the
    function that computes them when its fast path chose without them, and builds the :class:`AnchorCandidate`
    rows only when someone asks, so planning a population pays for the choice only.
    """

    __slots__ = ("_columns", "_complete", "_rows", "chosen_by", "day", "objective")

    def __init__(
        self,
        day: int,
        chosen_by: str,
        columns: Columns | Callable[[], tuple[Columns, Completion | None]],
        objective: tuple[str, ...],
        complete: Completion | None = None,
    ) -> None:
        self.day = day
        self.chosen_by = chosen_by
        self.objective = objective
        self._columns = columns
        self._complete = complete
        self._rows: tuple[AnchorCandidate, ...] | None = None

    @property
    def candidates(self) -> tuple[AnchorCandidate, ...]:
        """Every candidate day with its score components, in date order.

        ``columns`` may be a function that scores them on first use (the optimizer's packed fast path keeps
        no columns). Candidates the optimizer could prune (their lower bound already lost) get their
        authorization terms (renewals, renewals too late) computed here, so the list is always complete.
        """
        if self._rows is None:
            columns, complete = self._columns, self._complete
            if not isinstance(columns, tuple):
                columns, complete = columns()
            rows = [AnchorCandidate._make(row) for row in zip(*columns, strict=True)]
            if complete is not None:
                for i, row in enumerate(rows):
                    if row.infeasible < 0:
                        inf, ren = complete(i)
                        rows[i] = row._replace(infeasible=inf - row.infeasible - 1, renewals=row.renewals + ren)
            self._rows = tuple(rows)
        return self._rows

    @property
    def date(self) -> date:
        return date.fromordinal(self.day)

    def winner(self) -> AnchorCandidate:
        return next(c for c in self.candidates if c.day == self.day)

    def ranked(self) -> list[AnchorCandidate]:
        """Candidates best first under the objective."""
        return sorted(self.candidates, key=self.key)

    def key(self, cand: AnchorCandidate) -> tuple[int, ...]:
        """The candidate's objective values in objective order, then its day (smaller is better)."""
        if self.objective == TERMS:
            return (cand.infeasible, cand.renewals, cand.short_fills + cand.trips, cand.extra_out_of_pocket,
                    cand.days_to_steady, cand.preference, cand.day)
        return (*(cand.component(t) for t in self.objective), cand.day)

    def decisive_term(self) -> tuple[str, AnchorCandidate] | None:
        """The first objective term on which the winner beats the next best candidate, and that candidate."""
        ranked = self.ranked()
        if len(ranked) < 2:
            return None
        best, second = ranked[0], ranked[1]
        for term in self.objective:
            if best.component(term) != second.component(term):
                return term, second
        return "earliest date", second

    def narrative(self) -> str:
        """A staff-readable explanation of the choice."""
        win = self.winner()
        head = (
            f"Anchor {win.date.isoformat()}: {win.short_fills} short fill(s), {win.trips} transition trip(s), "
            f"{win.renewals} renewal(s), every synced drug together in {win.days_to_steady} day(s)"
        )
        if win.extra_out_of_pocket:
            head += f", ${win.extra_out_of_pocket / 100:.2f} extra out-of-pocket"
        if win.infeasible:
            head += f", {win.infeasible} drug(s) not syncable on this date"
        if self.chosen_by == "requested":
            return head + ". Requested by the caller (not optimized)."
        decisive = self.decisive_term()
        if decisive is None:
            return head + ". It was the only candidate."
        term, second = decisive
        first, last = min(c.day for c in self.candidates), max(c.day for c in self.candidates)
        span = f"{date.fromordinal(first).isoformat()}..{date.fromordinal(last).isoformat()}"
        if term == "earliest date":
            why = "it ties with the next best on every term and comes first"
        else:
            why = f"fewer {TERM_TEXT[term]}: {win.component(term)} vs {second.component(term)}"
        return (
            f"{head}. Chosen over {second.date.isoformat()} (next best) because of {why}. "
            f"{len(self.candidates)} candidate dates ({span}) were scored on: {', '.join(self.objective)}."
        )

    def as_rows(self) -> list[dict[str, object]]:
        """Machine-readable candidate list, best first, with every component."""
        return [
            {
                "date": c.date.isoformat(),
                "chosen": c.day == self.day,
                "infeasible": c.infeasible,
                "renewals": c.renewals,
                "short_fills": c.short_fills,
                "trips": c.trips,
                "extra_out_of_pocket_cents": c.extra_out_of_pocket,
                "days_to_steady": c.days_to_steady,
                "preference": c.preference,
            }
            for c in self.ranked()
        ]


def preference_miss(day: int, preference: Preference | None) -> int:
    """Days between ``day`` and the patient's preferred weekday and/or day of the month (0 = on it)."""
    if preference is None:
        return 0
    miss = 0
    if preference.weekday is not None:
        delta = (day - 1 - preference.weekday) % 7  # ordinal 1 (0001-01-01) is a Monday
        miss += min(delta, 7 - delta)
    if preference.day_of_month is not None:
        dom = date.fromordinal(day).day
        delta = abs(dom - preference.day_of_month)
        miss += min(delta, 30 - delta) if delta < 30 else 0
    return miss


def _authorization(
    reg: Regimen, full: int, gap: int, joins: int, steady: int, cycle: int, today: int, lead: int
) -> tuple[int, int]:
    """(renewals needed, infeasible) for one drug, 0/1 each: the units of its ``full`` whole-cycle fills, its
    short fill of ``gap`` days and its anchor fills from ``joins`` through ``steady`` against the authorized
    quantity and the prescription's expiry (the same rule as the plan's own check)."""
    due = reg.next_due
    remaining = reg.authorized_units + 1e-9
    per_fill = math.ceil(cycle * reg.daily_dose - 1e-9)
    needed_by = -1
    if full:
        covered = int(remaining // per_fill)
        if covered < full:
            needed_by = due + covered * cycle
        remaining -= full * per_fill
    if needed_by < 0 and gap:
        short_units = math.ceil(gap * reg.daily_dose - 1e-9)
        if short_units > remaining:
            needed_by = due + full * cycle
        remaining -= short_units
    if needed_by < 0:
        fills = (steady - joins) // cycle + 1
        if per_fill * fills > remaining:
            needed_by = joins + cycle * max(int(remaining // per_fill), 0)
    expires = reg.expires
    if expires is not None and steady > expires:
        if due > expires:
            first_after = due
        elif (expires - due) // cycle + 1 < full:
            first_after = due + ((expires - due) // cycle + 1) * cycle
        elif gap and due + full * cycle > expires:
            first_after = due + full * cycle
        else:
            first_after = joins + cycle * max(-((joins - expires - 1) // cycle), 0)
        needed_by = first_after if needed_by < 0 else min(needed_by, first_after)
    if needed_by < 0:
        return 0, 0
    if not reg.can_renew or needed_by - lead < today:
        return 0, 1
    return 1, 0


def score(
    day: int,
    synced: Sequence[Regimen],
    floaters: Sequence[Regimen],
    cycle: int,
    today: int,
    settings: SyncSettings,
    preference: Preference | None,
) -> AnchorCandidate:
    """The score of anchor ``day`` for any day, computed from the fills it implies (the reference method)."""
    month = settings.month_days
    lead = settings.renewal_lead_days
    tol = settings.tolerance_days
    joins_all: list[tuple[Regimen, int, int, int]] = []
    steady = day
    for reg in synced:
        full, gap, joins = transition(reg.next_due, day, cycle)
        joins_all.append((reg, full, gap, joins))
        steady = max(steady, joins)
    trips: set[int] = set()
    infeasible = renewals = shorts = extra = 0
    first_lattice = min((j for _, _, _, j in joins_all), default=day)
    for reg, full, gap, joins in joins_all:
        trips.update(range(reg.next_due, reg.next_due + full * cycle + 1, cycle))
        if gap:
            if not reg.splittable and gap % reg.natural_cycle:
                infeasible += 1
                continue
            shorts += 1
            if not reg.prorated:
                extra += reg.copay_cents * max(month - gap, 0) // month
        r, inf = _authorization(reg, full, gap, joins, steady, cycle, today, lead)
        renewals += r
        infeasible += inf
    trips.update(range(first_lattice, steady + 1, cycle))
    for reg in floaters:
        pick = coschedule_day(reg.next_due, reg.earliest_refill, day, cycle, tol, today)
        if pick is None or pick < first_lattice:
            trips.add(reg.next_due)
    return AnchorCandidate(
        day, infeasible, renewals, shorts, len(trips), extra, steady - today, preference_miss(day, preference)
    )


_MEMO_LIMIT = 4096
"""Entries kept in each per-process table memo before it starts over (they are pure functions of their key)."""
_UNITS_MEMO: dict[tuple[float, int], list[int]] = {}


def _units_by_gap(daily_dose: float, cycle: int) -> list[int]:
    """Whole units a short fill of g days needs (index g), ceil(g × d)."""
    key = (daily_dose, cycle)
    table = _UNITS_MEMO.get(key)
    if table is None:
        if len(_UNITS_MEMO) >= _MEMO_LIMIT:
            _UNITS_MEMO.clear()
        table = [math.ceil(g * daily_dose - 1e-9) for g in range(cycle)]
        _UNITS_MEMO[key] = table
    return table


def _renewal_flags(
    reg: Regimen, start: int, cycle: int, steady: list[int], units: float, value: int = 1
) -> list[int]:
    """``value`` where the candidate anchor needs more than ``units`` of a splittable drug (short fill + anchor
    fills through the steady-state day), else 0 — the same count as :func:`_authorization`."""
    due = reg.next_due
    residue = (due - start) % cycle
    gaps = [*range(cycle - residue, cycle), *range(cycle - residue)] if residue else range(cycle)
    short = _units_by_gap(reg.daily_dose, cycle)
    per_fill = math.ceil(cycle * reg.daily_dose - 1e-9)
    return [
        value if short[g] + per_fill * ((s - due - g) // cycle + 1) > units else 0
        for g, s in zip(gaps, steady, strict=True)
    ]


_EXTRA_MEMO: dict[tuple[int, int, int], list[int]] = {}


def _extra_by_gap(copay_cents: int, cycle: int, month: int) -> list[int]:
    """Out-of-pocket beyond the daily rate of a short fill of g days (index g) under a non-prorating plan."""
    key = (copay_cents, cycle, month)
    table = _EXTRA_MEMO.get(key)
    if table is None:
        if len(_EXTRA_MEMO) >= _MEMO_LIMIT:
            _EXTRA_MEMO.clear()
        table = [0] + [copay_cents * max(month - g, 0) // month for g in range(1, cycle)]
        _EXTRA_MEMO[key] = table
    return table


_COVERED, _SHORT_INFEASIBLE, _SHORT_RENEWAL, _FLAGS_INFEASIBLE, _FLAGS_RENEWAL, _FLAGS_CHECKED, _CHECKED = range(7)
"""How one synced drug's authorization enters the score (see :func:`_settle`)."""


def _settle(
    reg: Regimen,
    start: int,
    cycle: int,
    steady: list[int],
    min_steady: int,
    max_steady: int,
    today: int,
    lead: int,
    late_ok: bool,
    inf_flag: int = 1,
    ren_flag: int = 1,
) -> tuple[int, list[int] | None]:
    """How ``reg``'s authorization counts at every candidate: covered whatever the anchor, short whatever the
    anchor (infeasible, or a renewal asked in time), per-candidate flags (``inf_flag`` for infeasible,
    ``ren_flag`` for a renewal in time or one whose timeliness is checked per candidate, else 0), or checked
    per candidate in full."""
    due = reg.next_due
    units = reg.authorized_units + 1e-9
    if reg.expires is None:
        d = reg.daily_dose
        most = max_steady + cycle - due
        if units >= d * most + most // cycle + 2:
            return _COVERED, None
        if reg.splittable and (units < 1 or units < d * (min_steady + cycle - due)):
            # short whatever the anchor: the renewal is needed on or after the due date
            if not reg.can_renew or (units < 1 and due - lead < today):
                return _SHORT_INFEASIBLE, None  # nobody to ask, or the very first fill cannot wait for the answer
            if due - lead >= today:
                return _SHORT_RENEWAL, None  # asked in time whatever the anchor
        if reg.splittable and (not reg.can_renew or due - lead >= today or late_ok):
            # short for some anchors only: flag them exactly (units needed through steady + cycle)
            if not reg.can_renew:
                return _FLAGS_INFEASIBLE, _renewal_flags(reg, start, cycle, steady, units, inf_flag)
            flags = _renewal_flags(reg, start, cycle, steady, units, ren_flag)
            if due - lead >= today:
                return _FLAGS_RENEWAL, flags  # a renewal needed on or after the due date is asked in time
            return _FLAGS_CHECKED, flags  # in time or late depends on the anchor
    return _CHECKED, None


def _authorization_terms(
    i: int,
    start: int,
    cycle: int,
    steady: list[int],
    checked: list[Regimen],
    flagged: list[tuple[Regimen, list[int]]],
    today: int,
    lead: int,
) -> tuple[int, int]:
    """(infeasible, renewals) to add at candidate ``i`` for the drugs not settled in the columns: the checked
    drugs in full, the flagged ones as the change from "renewal in time" to "renewal too late"."""
    day, inf_total, ren_total = start + i, 0, 0
    for reg in checked:
        gap = (day - reg.next_due) % cycle
        if not reg.splittable and gap % reg.natural_cycle:
            continue
        ren, inf = _authorization(reg, 0, gap, reg.next_due + gap, steady[i], cycle, today, lead)
        inf_total += inf
        ren_total += ren
    for reg, flags in flagged:
        if flags[i]:
            gap = (day - reg.next_due) % cycle
            ren, inf = _authorization(reg, 0, gap, reg.next_due + gap, steady[i], cycle, today, lead)
            inf_total += inf
            ren_total += ren - 1
    return inf_total, ren_total


def _steady_days(start: int, max_due: int, cycle: int) -> tuple[list[int], int, int]:
    """The steady-state day of every candidate start + i, the first day of the lower step and k before it.

    steady day = first lattice day on or after the latest due date: day + cycle × k, where k takes the value
    ceil((max_due − start) / cycle) before ``split`` and one less from it on.
    """
    k_first = -((start - max_due) // cycle) if max_due > start else 0
    end = start + cycle
    split = max_due - (k_first - 1) * cycle if k_first else end
    first_shift, second_shift = cycle * k_first, cycle * (k_first - 1)
    steady = [*range(start + first_shift, split + first_shift), *range(split + second_shift, end + second_shift)]
    return steady, split, k_first


_SCALED_MEMO: dict[tuple[int, int, int, int], list[int]] = {}


def _scaled_extra(copay_cents: int, cycle: int, month: int, shift: int) -> list[int]:
    """:func:`_extra_by_gap` shifted into the extra-out-of-pocket field of a packed key."""
    key = (copay_cents, cycle, month, shift)
    table = _SCALED_MEMO.get(key)
    if table is None:
        if len(_SCALED_MEMO) >= _MEMO_LIMIT:
            _SCALED_MEMO.clear()
        table = [v << shift for v in _extra_by_gap(copay_cents, cycle, month)]
        _SCALED_MEMO[key] = table
    return table


def choose(
    synced: Sequence[Regimen],
    floaters: Sequence[Regimen],
    cycle: int,
    today: int,
    settings: SyncSettings,
    preference: Preference | None,
) -> AnchorChoice:
    """Score every day of one cycle starting at the earliest next due date and keep the best.

    Two anchors a whole cycle apart put the drugs on the same lattice, so one cycle of candidates covers every
    distinct plan. Every drug is due on or after the window start, so it joins at its first lattice day on or
    after its due date: short fills, trips and the steady-state day have closed forms per candidate, and
    per-drug terms are rotations of one table by the drug's residue. Drugs whose authorization may or may not
    last depending on the anchor are checked per candidate, best lower bound first, stopping once no
    remaining candidate can win (branch and bound; exact). :func:`score` is the reference the tests hold
    this to.

    For speed, the common case (every synced drug splittable, no floaters, no preference, the default
    objective) packs each candidate's whole objective into one integer (:func:`_packed_choice`) and builds
    the per-term columns only when the explanation is asked for: 29.7 -> 17.7 us per 5-drug patient of
    bench/bench_sync.py (one process, GC off, best of 7), measured.
    """
    packed = (
        None if floaters or preference is not None or settings.objective != TERMS
        else _packed_choice(synced, cycle, today, settings)
    )
    if packed is None:
        day, columns, complete = _scored(synced, floaters, cycle, today, settings, preference)
        return AnchorChoice(day, "optimizer", columns, settings.objective, complete)
    day = packed

    def explain() -> tuple[Columns, Completion | None]:
        _, columns, complete = _scored(synced, floaters, cycle, today, settings, preference)
        return columns, complete

    return AnchorChoice(day, "optimizer", explain, settings.objective)


def _packed_choice(synced: Sequence[Regimen], cycle: int, today: int, settings: SyncSettings) -> int | None:
    """The best anchor day when every synced drug is splittable and due today or later, with no floaters,
    preference, custom order or negative copay (None otherwise).

    Each candidate's key is one non-negative integer holding, most significant first, infeasible, renewals,
    short fills + trips, extra out-of-pocket, days to steady and the candidate's index, each in a bit field
    wide enough for its largest value, so ``min`` over plain ints ranks exactly as the tuples of
    :func:`_scored` do (ties are impossible: the index is part of the key).
    """
    dues = [reg.next_due for reg in synced if reg.splittable]
    if len(dues) < len(synced):
        return None
    start, max_due = min(dues), max(dues)
    if start < today:
        return None
    # _steady_days in closed form: start + cycle × k_first + i before ``lower``, max_due + (i − lower) after;
    # the list itself is built only for a drug whose authorization depends on the anchor
    k_first = -((start - max_due) // cycle) if max_due > start else 0
    lower = max_due - (k_first - 1) * cycle - start if k_first else cycle
    first_steady = start + cycle * k_first
    min_steady, max_steady = (max_due if lower < cycle else first_steady), max_due + cycle - 1
    steady: list[int] = []
    month = settings.month_days
    lead = settings.renewal_lead_days
    late_ok = True  # the default objective (TERMS) ranks infeasible before renewals
    n = len(synced)
    due_set = set(dues)
    # events (short fills + trips) = every drug short + distinct due dates + lattice days to steady − the
    # drugs and due dates already on the candidate's lattice
    reduction: dict[int, int] = {}
    extra_max = 0
    for due in due_set:
        r = (due - start) % cycle
        reduction[r] = reduction.get(r, 0) + 1
    for reg in synced:
        r = (reg.next_due - start) % cycle
        reduction[r] = reduction.get(r, 0) + 1
        if not reg.prorated:
            if reg.copay_cents < 0:
                return None  # a negative field would borrow from the terms above it
            extra_max += reg.copay_cents
    s_ts = cycle.bit_length()
    s_ex = s_ts + (max_steady - today).bit_length()
    s_ev = s_ex + extra_max.bit_length()
    s_ren = s_ev + (n + len(due_set) + k_first + 1).bit_length()
    s_inf = s_ren + n.bit_length()
    base_inf = base_ren = 0
    flag_columns: list[list[int]] = []
    checked: list[Regimen] = []
    flagged: list[tuple[Regimen, list[int]]] = []
    for reg in synced:
        if reg.expires is None:
            most = max_steady + cycle - reg.next_due  # _settle's "covered whatever the anchor", inlined
            if reg.authorized_units + 1e-9 >= reg.daily_dose * most + most // cycle + 2:
                continue
        if not steady:
            steady = _steady_days(start, max_due, cycle)[0]
        kind, flags = _settle(
            reg, start, cycle, steady, min_steady, max_steady, today, lead, late_ok, 1 << s_inf, 1 << s_ren
        )
        if kind == _COVERED:
            continue
        if kind == _SHORT_INFEASIBLE:
            base_inf += 1
        elif kind == _SHORT_RENEWAL:
            base_ren += 1
        elif kind == _CHECKED:
            checked.append(reg)
        else:
            assert flags is not None
            flag_columns.append(flags)
            if kind == _FLAGS_CHECKED:
                flagged.append((reg, flags))
    step = (1 << s_ts) + 1  # one more day to steady and one more index per candidate within a step
    events_high = n + len(due_set) + k_first + 1
    head = (base_inf << s_inf) + (base_ren << s_ren) + (events_high << s_ev) + ((first_steady - today) << s_ts)
    keys = list(range(head, head + lower * step, step))
    if lower < cycle:
        tail = (base_inf << s_inf) + (base_ren << s_ren) + ((events_high - 1) << s_ev)
        tail += ((max_due - today) << s_ts) + lower
        keys += range(tail, tail + (cycle - lower) * step, step)
    for r, count in reduction.items():
        keys[r] -= count << s_ev
    for reg in synced:
        if not reg.prorated:
            table = _scaled_extra(reg.copay_cents, cycle, month, s_ex)
            residue = (reg.next_due - start) % cycle
            rotated = table[cycle - residue :] + table[: cycle - residue] if residue else table
            keys = list(map(operator.add, keys, rotated))
    for flags in flag_columns:
        keys = list(map(operator.add, keys, flags))
    index_mask = (1 << s_ts) - 1
    if not checked and not flagged:
        return start + (min(keys) & index_mask)
    best: int | None = None
    for bound in sorted(keys):
        if best is not None and bound >= best:
            break
        inf, ren = _authorization_terms(bound & index_mask, start, cycle, steady, checked, flagged, today, lead)
        exact = bound + (inf << s_inf) + (ren << s_ren)
        if best is None or exact < best:
            best = exact
    assert best is not None
    return start + (best & index_mask)


def _scored(
    synced: Sequence[Regimen],
    floaters: Sequence[Regimen],
    cycle: int,
    today: int,
    settings: SyncSettings,
    preference: Preference | None,
) -> tuple[int, Columns, Completion | None]:
    """The best day and the score columns of every candidate (see :func:`choose`), in the general case.

    Candidates not evaluated exactly by the branch and bound carry -1 - lower bound in ``infeasible``, and the
    returned completion gives their authorization terms on demand.
    """
    dues = [reg.next_due for reg in synced]
    start, max_due = min(dues), max(dues)
    days = list(range(start, start + cycle))
    due_set = set(dues)
    steady, split, k_first = _steady_days(start, max_due, cycle)
    to_steady = [s - today for s in steady]
    end = start + cycle
    on_lattice = [0] * cycle
    for due in due_set:
        on_lattice[(due - start) % cycle] += 1
    distinct = len(due_set)
    # trips = distinct due dates + lattice days from the anchor to the steady day − due dates on the lattice
    lattice_days = [distinct + 1 + k_first] * (split - start) + [distinct + k_first] * (end - split)
    trips = list(map(operator.sub, lattice_days, on_lattice))
    zeros = [0] * cycle
    split_on_lattice = [0] * cycle
    n_split = 0
    extra = zeros
    month = settings.month_days
    lead = settings.renewal_lead_days
    min_steady, max_steady = min(steady), max(steady)
    base_infeasible = base_renewals = 0
    infeasible = renewals = zeros
    order = settings.objective
    late_ok = order.index("infeasible") < order.index("renewals")
    flagged: list[tuple[Regimen, list[int]]] = []
    checked: list[Regimen] = []
    packages: list[Regimen] = []
    for reg in synced:
        due = reg.next_due
        if reg.splittable:
            n_split += 1
            residue = (due - start) % cycle
            split_on_lattice[residue] += 1
            if not reg.prorated:
                table = _extra_by_gap(reg.copay_cents, cycle, month)
                rotated = table[cycle - residue :] + table[: cycle - residue] if residue else table
                extra = list(map(operator.add, extra, rotated))
        else:
            packages.append(reg)
        kind, flags = _settle(reg, start, cycle, steady, min_steady, max_steady, today, lead, late_ok)
        if kind == _SHORT_INFEASIBLE:
            base_infeasible += 1
        elif kind == _SHORT_RENEWAL:
            base_renewals += 1
        elif kind == _CHECKED:
            checked.append(reg)
        elif flags is not None:
            if kind == _FLAGS_INFEASIBLE:
                infeasible = list(map(operator.add, infeasible, flags))
            else:
                renewals = list(map(operator.add, renewals, flags))
                if kind == _FLAGS_CHECKED:
                    flagged.append((reg, flags))
    shorts = list(map(operator.sub, [n_split] * cycle, split_on_lattice))
    if packages:
        infeasible, shorts = list(infeasible), list(shorts)
        for i, day in enumerate(days):
            for reg in packages:
                gap = (day - reg.next_due) % cycle
                if gap % reg.natural_cycle:
                    infeasible[i] += 1
                elif gap:
                    shorts[i] += 1
    if floaters:
        tol = settings.tolerance_days
        trips = list(trips)
        for i, day in enumerate(days):
            own_trips = set()
            for reg in floaters:
                pick = coschedule_day(reg.next_due, reg.earliest_refill, day, cycle, tol, today)
                due = reg.next_due
                if (pick is None or pick < day) and due not in due_set and not (
                    day <= due <= steady[i] and (due - day) % cycle == 0
                ):
                    own_trips.add(due)
            trips[i] += len(own_trips)
    pref = [preference_miss(day, preference) for day in days] if preference is not None else zeros
    if base_infeasible:
        infeasible = [v + base_infeasible for v in infeasible]
    if base_renewals:
        renewals = [v + base_renewals for v in renewals]

    def authorization_terms(i: int) -> tuple[int, int]:
        return _authorization_terms(i, start, cycle, steady, checked, flagged, today, lead)

    events = list(map(operator.add, shorts, trips))
    if not checked and not flagged and order == TERMS:
        best = min(zip(infeasible, renewals, events, extra, to_steady, pref, days, strict=True))[-1]
        return best, (days, infeasible, renewals, shorts, trips, extra, to_steady, pref), None
    by_term = {
        "infeasible": infeasible, "renewals": renewals, "transition_events": events,
        "extra_out_of_pocket": extra, "days_to_steady": to_steady, "preference": pref,
    }
    bounds = list(zip(*(by_term[t] for t in order), days, strict=True))
    if not checked and not flagged:
        best = min(bounds)[-1]
        return best, (days, infeasible, renewals, shorts, trips, extra, to_steady, pref), None
    inf_at, ren_at = order.index("infeasible"), order.index("renewals")
    exact = [False] * cycle
    best_key: tuple[int, ...] | None = None
    infeasible, renewals = list(infeasible), list(renewals)
    for bound in sorted(bounds):
        if best_key is not None and bound >= best_key:
            break
        i = bound[-1] - start
        inf, ren = authorization_terms(i)
        infeasible[i] += inf
        renewals[i] += ren
        exact[i] = True
        key = list(bound)
        key[inf_at] += inf
        key[ren_at] += ren
        if best_key is None or tuple(key) < best_key:
            best_key = tuple(key)
    assert best_key is not None
    # candidates not evaluated carry -1 - lower bound in ``infeasible``; AnchorChoice completes them on demand
    marked = [v if done else -1 - v for v, done in zip(infeasible, exact, strict=True)]
    return best_key[-1], (days, marked, renewals, shorts, trips, extra, to_steady, pref), authorization_terms


def requested(
    day: int,
    synced: Sequence[Regimen],
    floaters: Sequence[Regimen],
    cycle: int,
    today: int,
    settings: SyncSettings,
    preference: Preference | None,
) -> AnchorChoice:
    """The caller's anchor, scored the same way so that the plan still explains itself."""
    cand = score(day, synced, floaters, cycle, today, settings, preference)
    return AnchorChoice(day, "requested", tuple([value] for value in cand), settings.objective)
