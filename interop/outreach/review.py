"""The pre-pickup review (conformance/Questionnaire-pre-pickup-review.json): answers in, follow-ups out.

A QuestionnaireResponse whose answers signal a change (a dose missed, a hospital or emergency visit, a new
or stopped drug, a dose change, a side effect, a note for the pharmacist) yields a re-plan marker Task
(code ``replan``, for the patient, which the sync engine picks up) and a staff Task naming the answers.
"""

from __future__ import annotations

from datetime import datetime

from interop.fhir.systems import OUR_BASE
from interop.outreach.inbound import staff_task
from interop.outreach.vocabulary import Resource

QUESTIONNAIRE = f"{OUR_BASE}/Questionnaire/pre-pickup-review"
CHANGE_WHEN = {
    "doses-taken": False,
    "hospital-visit": True,
    "drug-changes": True,
    "dose-changes": True,
    "side-effects": True,
}
LABELS = {
    "doses-taken": "missed doses",
    "hospital-visit": "hospital or emergency visit",
    "drug-changes": "new or stopped drugs",
    "dose-changes": "dose changes",
    "side-effects": "side effects",
    "note": "a note for the pharmacist",
}


class ReviewError(ValueError):
    """The resource is not a response to the pre-pickup review; names the element path."""


def _answers(response: Resource) -> dict[str, object]:
    found: dict[str, object] = {}
    for index, item in enumerate(response.get("item", ())):
        answers = item.get("answer") or ()
        if not answers:
            continue
        value = answers[0]
        if "valueBoolean" in value:
            found[item.get("linkId", "")] = value["valueBoolean"]
        elif "valueString" in value:
            found[item.get("linkId", "")] = value["valueString"]
        else:
            raise ReviewError(f"QuestionnaireResponse.item[{index}].answer[0]: valueBoolean or valueString expected")
    return found


def signals(response: Resource) -> list[str]:
    """The linkIds whose answers signal a change, in questionnaire order."""
    if response.get("resourceType") != "QuestionnaireResponse":
        raise ReviewError("resourceType: a QuestionnaireResponse is expected")
    if str(response.get("questionnaire", "")).split("|")[0] != QUESTIONNAIRE:
        raise ReviewError(f"QuestionnaireResponse.questionnaire: {QUESTIONNAIRE} is expected")
    answers = _answers(response)
    out = [link for link, bad in CHANGE_WHEN.items() if answers.get(link) is bad]
    note = answers.get("note")
    if isinstance(note, str) and note.strip():
        out.append("note")
    return out


def review_followups(response: Resource, now: datetime) -> list[Resource]:
    """The re-plan marker and the staff Task for a review that signals a change; empty when nothing changed."""
    changed = signals(response)
    patient_ref = response.get("subject", {}).get("reference")
    if not changed or not isinstance(patient_ref, str) or "id" not in response:
        if changed:
            raise ReviewError("QuestionnaireResponse.subject and id are required to follow up a change")
        return []
    focus = f"QuestionnaireResponse/{response['id']}"
    summary = ", ".join(LABELS[c] for c in changed)
    replan = staff_task("replan", "Re-plan the synchronization", f"Pre-pickup review reported: {summary}",
                        key=response["id"], patient_ref=patient_ref, focus=focus, now=now)
    staff = staff_task("review-followup", "Follow up a pre-pickup review", f"Call the patient about: {summary}",
                       key=response["id"], patient_ref=patient_ref, focus=focus, now=now)
    return [replan, staff]
