"""What the staff page shows, built from a snapshot of the store: the day's preparation queue, the pickups
calendar, renewals and calls to make, adherence per patient, the forecast, and one patient's plan."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from interop.fhir.references import bare, day_of, reference_of
from interop.fhir.systems import OUR_BASE
from interop.reports.classes import load_class_table
from interop.reports.forecast import PLANNED, Forecast
from interop.reports.pdc import PdcResult, Status
from interop.reports.program import is_sync_careplan
from interop.reports.service import Adherence
from interop.reports.timeline import covered_spans
from interop.web.charts import bar_chart, coverage_chart

Resource = Mapping[str, Any]
SYNC_TASK = f"{OUR_BASE}/CodeSystem/sync-task"
OUTREACH_TASK = f"{OUR_BASE}/CodeSystem/outreach-task"
OPEN_TASK = frozenset({"draft", "requested", "received", "accepted", "ready", "in-progress", "on-hold"})
OPEN_APPOINTMENT = frozenset({"proposed", "pending", "booked", "arrived", "checked-in", "waitlist"})
CALENDAR_DAYS = 14
STALE_DAYS = 7
"""Fill Tasks whose pickup day is more than a week past stay off the queue (the follow-up list has them)."""


def patient_name(patient: Resource) -> str:
    """``Given Family`` of the first name (the text when given), else the id."""
    for name in patient.get("name", ()):
        if name.get("text"):
            return str(name["text"])
        text = " ".join([*name.get("given", ()), name.get("family", "")]).strip()
        if text:
            return text
    return str(patient.get("id", "unknown"))


def task_code(task: Resource) -> tuple[str | None, str | None]:
    for coding in (task.get("code") or {}).get("coding", ()):
        return coding.get("system"), coding.get("code")
    return None, None


def task_input(task: Resource, code: str) -> Resource | None:
    for inp in task.get("input", ()):
        if any(c.get("code") == code for c in (inp.get("type") or {}).get("coding", ())):
            return dict(inp)
    return None


def quantity_text(quantity: Mapping[str, Any]) -> str:
    """``30 tbl`` from a Quantity (UCUM annotation braces dropped from the unit)."""
    value = quantity.get("value")
    number = f"{value:g}" if isinstance(value, int | float) else ""
    return f"{number} {str(quantity.get('unit', '')).strip('{}')}".strip()


@dataclass
class QueueItem:
    prep: date
    pickup: date
    patient_id: str
    patient: str
    what: str
    quantity: str
    status: str


@dataclass
class Pickup:
    patient_id: str
    patient: str
    fills: int
    status: str
    confirmation: str


@dataclass
class CalendarDay:
    day: date
    pickups: list[Pickup] = field(default_factory=list)


@dataclass
class FollowUp:
    due: date | None
    patient_id: str
    patient: str
    kind: str
    what: str
    priority: str


@dataclass
class PatientRow:
    patient_id: str
    name: str
    anchor: date | None
    cycle: int | None
    scores: list[tuple[str, str, bool]]
    """(measure, PDC as a percentage or the status, adherent)."""


@dataclass
class Board:
    today: date
    queue: list[QueueItem]
    calendar: list[CalendarDay]
    follow_ups: list[FollowUp]
    patients: list[PatientRow]
    forecast_chart: str
    forecast_rows: list[tuple[str, str, str]]
    forecast_problems: list[str] = field(default_factory=list)
    program: list[tuple[str, str, str, str, str]] = field(default_factory=list)
    """The program indicators of the year so far (``interop.reports.program.program_rows``)."""


class Directory:
    """Patients by reference, their names, and their active sync CarePlans."""

    def __init__(self, patients: Sequence[Resource], careplans: Sequence[Resource]) -> None:
        self.names = {f"Patient/{p.get('id')}": patient_name(p) for p in patients}
        self.plans: dict[str, Resource] = {}
        for cp in careplans:
            if cp.get("status") == "active" and is_sync_careplan(cp):
                self.plans[reference_of(cp.get("subject"))] = cp

    def name(self, ref: str) -> str:
        return self.names.get(bare(ref), bare(ref))


def queue(tasks: Sequence[Resource], people: Directory, today: date) -> list[QueueItem]:
    """Open fill Tasks whose prep day has come (``prep-date`` input) and whose pickup is at most a week past."""
    out = []
    for task in tasks:
        if task_code(task)[1] != "fulfill" or task.get("status") not in OPEN_TASK:
            continue
        pickup = day_of((task.get("executionPeriod") or {}).get("start"))
        if pickup is None or pickup < today - timedelta(days=STALE_DAYS):
            continue
        prep = day_of((task_input(task, "prep-date") or {}).get("valueDate")) or pickup
        if prep > today:
            continue
        qty = (task_input(task, "quantity") or {}).get("valueQuantity") or {}
        who = bare(reference_of(task.get("for")))
        status = "waiting for renewal" if task.get("status") == "draft" else str(task.get("status"))
        out.append(QueueItem(prep, pickup, who.partition("/")[2], people.name(who),
                             str(task.get("description") or "fill"),
                             quantity_text(qty), status))
    return sorted(out, key=lambda q: (q.pickup, q.patient, q.what))


def calendar(appointments: Sequence[Resource], people: Directory, today: date) -> list[CalendarDay]:
    """Open pickup Appointments of the next CALENDAR_DAYS days by day, with the patient's confirmation."""
    days = [CalendarDay(today + timedelta(days=i)) for i in range(CALENDAR_DAYS)]
    by_day = {d.day: d for d in days}
    for appt in appointments:
        if appt.get("status") not in OPEN_APPOINTMENT:
            continue
        periods = appt.get("requestedPeriod") or [{}]
        day = day_of(periods[0].get("start")) or day_of(appt.get("start"))
        slot = by_day.get(day) if day else None
        if slot is None:
            continue
        who, confirmation = "", "needs-action"
        for part in appt.get("participant", ()):
            ref = bare(reference_of(part.get("actor")))
            if ref.startswith("Patient/"):
                who, confirmation = ref, str(part.get("status", "needs-action"))
        slot.pickups.append(Pickup(who.partition("/")[2], people.name(who), len(appt.get("supportingInformation", ())),
                                   str(appt.get("status")), confirmation))
    for slot in days:
        slot.pickups.sort(key=lambda p: p.patient)
    return days


def follow_ups(tasks: Sequence[Resource], people: Directory) -> list[FollowUp]:
    """Open renewal-request Tasks (sync-task) and outreach Tasks (outreach-task): renewals and calls."""
    out = []
    for task in tasks:
        system, code = task_code(task)
        if task.get("status") not in OPEN_TASK or ((system, code) != (SYNC_TASK, "renewal-request") and system != OUTREACH_TASK):
            continue
        who = bare(reference_of(task.get("for")))
        kind = "renewal" if code == "renewal-request" else "call"
        due = day_of((task.get("executionPeriod") or {}).get("start")) or day_of(task.get("authoredOn"))
        out.append(FollowUp(due, who.partition("/")[2], people.name(who), kind,
                            str(task.get("description") or (task.get("code") or {}).get("text") or code),
                            str(task.get("priority", "routine"))))
    return sorted(out, key=lambda f: (f.priority != "urgent", f.due or date.max, f.patient))


def _score_text(result: PdcResult) -> tuple[str, bool]:
    if result.coverage is None:
        return str(result.status), False
    text = f"{result.coverage.pdc * 100:.0f}%"
    if result.status == Status.EXCLUDED:
        return f"{text} (excluded)", False
    return text, result.coverage.adherent


def patient_rows(patients: Sequence[Resource], people: Directory, results: Sequence[PdcResult]) -> list[PatientRow]:
    """Every patient with their plan's anchor and cycle and their PDC per Star class."""
    scores: dict[str, list[tuple[str, str, bool]]] = {}
    for result in results:
        if result.ingredient is None:
            scores.setdefault(result.patient, []).append((result.measure, *_score_text(result)))
    rows = []
    for patient in patients:
        ref = f"Patient/{patient.get('id')}"
        plan = people.plans.get(ref)
        rows.append(PatientRow(str(patient.get("id")), people.name(ref),
                               day_of((plan.get("period") or {}).get("start")) if plan else None,
                               _cycle(plan) if plan else None, scores.get(ref, [])))
    return sorted(rows, key=lambda r: r.name)


def _cycle(careplan: Resource) -> int | None:
    for ext in careplan.get("extension", ()):
        value = (ext.get("valueDuration") or {}).get("value")
        if isinstance(value, int | float):
            return int(value)
    return None


def forecast_view(forecast: Forecast) -> tuple[str, list[tuple[str, str, str]]]:
    """The prep workload chart, and per drug the total quantity over the forecast window and its fills
    (how many of them planned sync fills, the rest expected refills of patients without a plan)."""
    load = forecast.workload()
    chart = bar_chart([(d.strftime("%d"), n) for d, (n, _) in load.items()],
                      f"Fills to prepare per day, {forecast.today} to {forecast.last}")
    planned: dict[str, int] = {}
    for demand in forecast.demands:
        if demand.source == PLANNED and forecast.today <= demand.day <= forecast.last:
            planned[demand.drug] = planned.get(demand.drug, 0) + 1
    rows = [(name, quantity_text({"value": sum(q for q, _ in days.values()), "unit": unit}),
             f"{sum(n for _, n in days.values())} ({planned.get(key, 0)} planned)")
            for (key, name, unit), days in forecast.by_drug().items()]
    return chart, rows


@dataclass
class PlanView:
    careplan: Resource | None
    anchor: date | None
    cycle: int | None
    narrative: str
    fills: list[tuple[str, str, str, str, str]]
    pickups: list[tuple[str, str, str]]
    renewals: list[tuple[str, str, str]]
    left_out: list[tuple[str, str]]


def plan_view(careplan: Resource | None, resources: Mapping[str, Resource]) -> PlanView:
    """The active sync plan: anchor, cycle, the planner's narrative of the anchor choice (CarePlan.description),
    its fills, pickups, renewals and the drugs left out with their reasons."""
    if careplan is None:
        return PlanView(None, None, None, "", [], [], [], [])
    fills, pickups, renewals, left_out = [], [], [], []
    for act in careplan.get("activity", ()):
        detail = act.get("detail")
        if detail:
            reason = detail.get("statusReason") or {}
            coding = (reason.get("coding") or [{}])[0]
            left_out.append((str(detail.get("description", "")),
                             f"{coding.get('display', coding.get('code', ''))}: {reason.get('text', '')}".strip(": ")))
            continue
        res = resources.get(bare(reference_of(act.get("reference"))))
        if res is None:
            continue
        if res.get("resourceType") == "Appointment":
            periods = res.get("requestedPeriod") or [{}]
            pickups.append((str(periods[0].get("start", ""))[:10], str(res.get("description", "")), str(res.get("status"))))
        elif task_code(res)[1] == "fulfill":
            code = ((task_input(res, "claim-code") or {}).get("valueCoding") or {}).get("code", "")
            kind = (task_input(res, "fill-kind") or {}).get("valueString", "")
            fills.append((str((res.get("executionPeriod") or {}).get("start", "")), str(res.get("description", "")),
                           str(kind), str(code), str(res.get("status"))))
        else:
            renewals.append((str((res.get("executionPeriod") or {}).get("start", "")), str(res.get("description", "")),
                             str(res.get("status"))))
    return PlanView(careplan, day_of((careplan.get("period") or {}).get("start")), _cycle(careplan),
                    str(careplan.get("description", "")), sorted(fills), sorted(pickups), sorted(renewals), left_out)


@dataclass
class AdherenceView:
    start: date
    end: date
    scores: list[tuple[str, str, str, bool]]
    """(measure or ingredient label, PDC text, covered/denominator days, adherent)."""
    chart: str


def adherence_view(found: Adherence) -> AdherenceView:
    """PDC per class and ingredient, and the covered days of each tracked drug as a chart."""
    table = load_class_table()
    scores = []
    for result in found.results:
        label = result.measure if result.ingredient is None else f"↳ {table.name(result.ingredient)}"
        text, adherent = _score_text(result)
        days = f"{result.coverage.covered}/{result.coverage.days}" if result.coverage else ""
        scores.append((label, text, days, adherent))
    first, last = found.start.toordinal(), found.end.toordinal()
    rows = [(table.name(cui), covered_spans(fills, first, last)) for cui, fills in sorted(found.fills.items())]
    chart = coverage_chart(rows, found.start, found.end, f"Covered days {found.start} to {found.end}") if rows else ""
    return AdherenceView(found.start, found.end, scores, chart)
