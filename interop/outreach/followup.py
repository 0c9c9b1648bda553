"""Stored pre-pickup reviews are followed up: the listener behind ``observe`` for QuestionnaireResponse writes.

Service layer of issue 7. A completed (or amended) response to the pre-pickup review whose answers signal a
change (``review.review_followups``) stores the staff Task and the re-plan marker Task, and re-plans an
enrolled patient on the current anchor lattice with a Provenance (reason ``review-reported-change``, entity
the response version); the marker is then completed with the CarePlan as its output, and reminders follow the
plan. A marker already stored (the same response written again) is not acted on twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from interop.config import Settings
from interop.outreach.moves import Reminders, utc_now
from interop.outreach.review import QUESTIONNAIRE, ReviewError, review_followups
from interop.store.base import Gone, NotFound, Repository, StoreError
from interop.sync.enrollment import ReplanReason, Trigger, pharmacy_today, replan_with
from interop.sync.events import Written
from interop.sync.plan import PlanError
from interop.sync.settings import SyncSettings

log = logging.getLogger(__name__)

ANSWERED = frozenset({"completed", "amended"})
"""QuestionnaireResponse.status values whose answers are final enough to act on."""


@dataclass(slots=True)
class ReviewAnswers:
    """The listener: give it to ``observe``. ``today`` is the planning date, ``now`` the Tasks' clock."""

    settings: SyncSettings
    reminders: Reminders
    today: Callable[[], date] = pharmacy_today
    now: Callable[[], datetime] = utc_now
    types: frozenset[str] = field(default=frozenset({"QuestionnaireResponse"}))

    def __call__(self, repo: Repository, written: Sequence[Written]) -> None:
        """Follow up each written review that signals a change (see the module docstring)."""
        for item in written:
            response = item.resource
            if response is None or response.get("status") not in ANSWERED:
                continue
            if str(response.get("questionnaire", "")).split("|")[0] != QUESTIONNAIRE:
                continue
            try:
                self.follow_up(repo, item, response)
            except (ReviewError, PlanError, StoreError) as exc:
                log.warning("follow-up of the review %s failed: %s", item.reference, exc)

    def follow_up(self, repo: Repository, item: Written, response: dict[str, object]) -> str | None:
        """Store the Tasks and re-plan; the new CarePlan id, or None when nothing was re-planned."""
        now = self.now()
        tasks = review_followups(response, now)
        if not tasks:
            return None
        marker, staff = tasks
        try:
            repo.read("Task", marker["id"])
            return None
        except (NotFound, Gone):
            pass
        patient = str(marker["for"]["reference"])
        trigger = Trigger(ReplanReason.REVIEW_CHANGE, str(marker["description"]),
                          f"{item.reference}/_history/{item.version_id}")
        done = None
        try:
            done = replan_with(repo, patient, [trigger], self.settings, self.today())
        except (PlanError, StoreError) as exc:
            log.warning("re-plan of %s after the review %s failed: %s", patient, item.reference, exc)
        if done is not None:
            marker["status"] = "completed"
            marker["output"] = [
                {"type": {"text": "CarePlan"}, "valueReference": {"reference": f"CarePlan/{done[0].careplan_id}"}}
            ]
        with repo.session() as session:
            session.update(staff)
            session.update(marker)
        if done is None:
            return None
        self.reminders.follow(repo, done[1], done[0].careplan_id, now)
        return done[0].careplan_id


def review_answers(
    settings: SyncSettings,
    outreach: Settings,
    today: Callable[[], date] | None = None,
    now: Callable[[], datetime] | None = None,
) -> ReviewAnswers:
    """The review follow-up listener for ``observe(repo, [...])``."""
    return ReviewAnswers(settings, Reminders.from_settings(outreach), today or pharmacy_today, now or utc_now)
