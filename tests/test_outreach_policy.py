"""The outreach policy engine, rule by rule: consent, caps, quiet hours across zones, length, minimum necessary."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from interop.outreach.policy import (
    Decision,
    Message,
    PolicySettings,
    consent_resource,
    decide,
    quiet_ends,
    read_consent,
    revoked,
)
from interop.outreach.schedule import ScheduleSettings, pickup_requests, request_id
from interop.outreach.templates import MAX_CHARS, Template, TemplateError, load_templates, render
from tests.fhirschema import assert_valid
from tests.outreach_support import PHARMACY, patient, pickup

SETTINGS = PolicySettings(pharmacy_name=PHARMACY, default_zone="America/Chicago")
NOW = datetime(2027, 1, 12, 17, 0, tzinfo=UTC)  # 11:00 in Chicago, 12:00 in New York
TEXT = f"{PHARMACY}: your prescriptions will be ready for pickup Tue Jan 19. Reply STOP to opt out."
NY = patient("1", "+15550000001", "America/New_York")


def _consent(*, permit: bool = True, detail: bool = False) -> dict[str, Any]:
    return consent_resource("1", "sms", "+15550000001", permit=permit, detail=detail, at=NOW - timedelta(days=30))


def _decide(
    text: str = TEXT,
    *,
    consent: dict[str, Any] | None = None,
    sent: list[datetime] | None = None,
    now: datetime = NOW,
    pat: dict[str, Any] | None = NY,
    kind: str = "reminder",
    detail: bool = False,
    sensitive_terms: list[str] | None = None,
    confirmations_since_revocation: int = 0,
) -> Decision:
    return decide(
        Message("sms", text, kind, detail),
        _consent() if consent is None else consent,
        pat,
        sent or [],
        now,
        SETTINGS,
        sensitive_terms=sensitive_terms or [],
        confirmations_since_revocation=confirmations_since_revocation,
    )


def test_allows_a_compliant_message() -> None:
    decision = _decide()
    assert decision.allowed and decision.rule is None


def test_consent_shape_validates_and_reads_back() -> None:
    granted = _consent(detail=True)
    assert_valid(granted)
    view = read_consent(granted)
    assert view is not None and view.permitted and view.detail and view.contact == "+15550000001"
    denied = revoked(granted, NOW)
    assert_valid(denied)
    view = read_consent(denied)
    assert view is not None and not view.permitted and not view.detail and view.changed == NOW


def test_no_consent_blocks() -> None:
    decision = decide(Message("sms", TEXT), None, NY, [], NOW, SETTINGS)
    assert (decision.allowed, decision.rule) == (False, "consent-missing")


def test_consent_for_another_channel_blocks() -> None:
    email = consent_resource("1", "email", "pat@mail.test", permit=True, at=NOW)
    assert _decide(consent=email).rule == "consent-missing"


def test_opt_out_blocks() -> None:
    decision = _decide(consent=revoked(_consent(), NOW - timedelta(days=1)))
    assert (decision.allowed, decision.rule) == (False, "consent-opt-out")


def test_contact_not_given_blocks() -> None:
    granted = _consent()
    granted["extension"][0]["valueContactPoint"]["value"] = ""
    assert _decide(consent=granted).rule == "contact-not-given"


@pytest.mark.parametrize("count,rule", [(0, None), (1, "cap-day")])
def test_one_message_a_day_in_local_days(count: int, rule: str | None) -> None:
    earlier_today = NOW - timedelta(hours=3)  # 09:00 in New York, same local day
    assert _decide(sent=[earlier_today] * count).rule == rule


def test_day_cap_uses_the_patients_calendar_day() -> None:
    # 2027-01-12 03:30 UTC is Jan 11 22:30 in New York: yesterday there, so today's message is allowed.
    assert _decide(sent=[datetime(2027, 1, 12, 3, 30, tzinfo=UTC)]).allowed


def test_three_a_week() -> None:
    sent = [NOW - timedelta(days=d) for d in (2, 4, 6)]
    assert _decide(sent=sent).rule == "cap-week"
    assert _decide(sent=[NOW - timedelta(days=d) for d in (2, 4, 8)]).allowed


def test_length_limit() -> None:
    long_text = TEXT + " " + "x" * (MAX_CHARS - len(TEXT))
    assert len(long_text) == MAX_CHARS + 1
    assert _decide(long_text).rule == "length"
    assert _decide(long_text[:-1]).allowed


def test_pharmacy_name_and_stop_hint_required() -> None:
    assert _decide(TEXT.replace(PHARMACY, "We")).rule == "pharmacy-name"
    assert _decide(TEXT.replace(" Reply STOP to opt out.", "")).rule == "stop-instructions"


@pytest.mark.parametrize(
    "zone,utc_hour,quiet",
    [
        ("America/New_York", 1, False),  # Jan 11 20:00 EST
        ("America/New_York", 2, True),  # 21:00: quiet starts
        ("America/New_York", 12, True),  # 07:00
        ("America/New_York", 13, False),  # 08:00: quiet ends
        ("America/Los_Angeles", 4, False),  # Jan 11 20:00 PST
        ("America/Los_Angeles", 5, True),  # 21:00
        ("America/Los_Angeles", 16, False),  # 08:00
        ("Pacific/Honolulu", 17, True),  # 07:00 HST
        ("Pacific/Honolulu", 18, False),  # 08:00
        ("Europe/Berlin", 19, False),  # 20:00 CET
        ("Europe/Berlin", 20, True),  # 21:00
    ],
)
def test_quiet_hours_in_the_patients_zone(zone: str, utc_hour: int, quiet: bool) -> None:
    now = datetime(2027, 1, 12, utc_hour, 0, tzinfo=UTC)
    decision = _decide(now=now, pat=patient("1", "+15550000001", zone))
    assert (decision.rule == "quiet-hours") is quiet
    assert decision.allowed is not quiet
    if quiet:
        assert decision.retry_at is not None
        assert decision.retry_at.astimezone(ZoneInfo(zone)).time() == time(8)
        assert now < decision.retry_at <= now + timedelta(hours=11)


def test_quiet_hours_default_to_the_pharmacy_zone() -> None:
    now = datetime(2027, 1, 12, 13, 30, tzinfo=UTC)  # 07:30 Chicago, 08:30 New York
    assert _decide(now=now, pat=patient("1", "+1555")).rule == "quiet-hours"
    assert _decide(now=now, pat=NY).allowed
    bad_zone = patient("1", "+1555", "Mars/Olympus")
    assert _decide(now=now, pat=bad_zone).rule == "quiet-hours"


def test_quiet_end_across_dst() -> None:
    # The night before the spring-forward day in New York: quiet ends at 08:00 EDT (12:00 UTC).
    now = datetime(2027, 3, 14, 4, 0, tzinfo=UTC)
    end = quiet_ends(now, ZoneInfo("America/New_York"), SETTINGS)
    assert end.astimezone(UTC) == datetime(2027, 3, 14, 12, 0, tzinfo=UTC)


def test_minimum_necessary_without_opt_in() -> None:
    named = TEXT.replace("your prescriptions", "your Lisinopril")
    assert _decide(named, sensitive_terms=["lisinopril 10 MG"]).allowed  # the full name is not in the text
    assert _decide(named, sensitive_terms=["Lisinopril"]).rule == "minimum-necessary"
    assert _decide(TEXT, detail=True).rule == "minimum-necessary"
    assert _decide(named, consent=_consent(detail=True), sensitive_terms=["Lisinopril"]).allowed


def test_one_opt_out_confirmation_after_revocation() -> None:
    text = f"{PHARMACY}: you are opted out and will get no more messages here."
    denied = revoked(_consent(), NOW - timedelta(minutes=1))
    night = datetime(2027, 1, 12, 4, 0, tzinfo=UTC)
    assert _decide(text, consent=denied, kind="opt-out-confirmation", now=night, sent=[night]).allowed
    again = _decide(text, consent=denied, kind="opt-out-confirmation", confirmations_since_revocation=1)
    assert again.rule == "confirmation-sent"
    assert _decide(text, consent=_consent(), kind="opt-out-confirmation").rule == "consent-missing"


def test_shipped_templates_render_within_budget() -> None:
    templates = load_templates()
    longest = "A" * 30 + " Pharmacy"
    for kind, template in templates.items():
        rendered = render(template, pharmacy=longest, day=date(2027, 9, 29))
        assert len(rendered.text) <= MAX_CHARS and longest in rendered.text and not rendered.detail
        if kind != "opt-out-confirmation":
            assert rendered.text.endswith("Reply STOP to opt out.")
            assert _decide(rendered.text.replace(longest, PHARMACY)).allowed


def test_detail_wording_only_when_asked_and_fitting() -> None:
    template = load_templates()["reminder"]
    day = date(2027, 1, 19)
    assert "Lisinopril" in render(template, pharmacy=PHARMACY, day=day, drugs=["Lisinopril"], detail=True).text
    many = ["Drugname" + str(i) for i in range(12)]
    fallback = render(template, pharmacy=PHARMACY, day=day, drugs=many, detail=True)
    assert not fallback.detail and "Drugname" not in fallback.text
    assert not render(template, pharmacy=PHARMACY, day=day, drugs=["Lisinopril"]).detail


def test_template_errors_are_specific(tmp_path: object) -> None:
    with pytest.raises(TemplateError, match="characters"):
        render(Template("reminder", "s", "{pharmacy} " + "x" * 160 + " Reply STOP to opt out"), pharmacy="P", day=date(2027, 1, 1))
    with pytest.raises(TemplateError, match="STOP"):
        render(Template("reminder", "s", "{pharmacy} see you {date}"), pharmacy="P", day=date(2027, 1, 1))
    with pytest.raises(TemplateError, match="placeholder"):
        render(Template("reminder", "s", "{pharmacy} {when} Reply STOP to opt out"), pharmacy="P", day=date(2027, 1, 1))


def test_template_override_directory(tmp_path: object) -> None:
    from pathlib import Path

    folder = Path(str(tmp_path))
    (folder / "reminder.json").write_text('{"kind": "reminder", "subject": "s", "text": "{pharmacy}: pickup {date}. Reply STOP to opt out"}')
    assert load_templates(str(folder))["reminder"].text.startswith("{pharmacy}: pickup")
    (folder / "review.json").write_text('{"kind": "review", "subject": "s",\n "text": }')
    with pytest.raises(TemplateError, match=r"review.json: line 2"):
        load_templates(str(folder))


# ------------------------------------------------------------------------------------ conformance
def _conformance(name: str) -> dict[str, Any]:
    from importlib import resources

    data: dict[str, Any] = json.loads(resources.files("conformance").joinpath(name).read_text(encoding="utf-8"))
    return data


@pytest.mark.parametrize(
    "name",
    [
        "CodeSystem-outreach-channel.json",
        "CodeSystem-outreach-content.json",
        "CodeSystem-outreach-kind.json",
        "CodeSystem-outreach-rule.json",
        "CodeSystem-outreach-task.json",
        "StructureDefinition-outreach-claim.json",
        "StructureDefinition-outreach-contact.json",
        "Questionnaire-pre-pickup-review.json",
    ],
)
def test_conformance_resources_are_valid(name: str) -> None:
    resource = _conformance(name)
    assert_valid(resource)
    if resource["resourceType"] == "CodeSystem":
        assert resource["count"] == len(resource["concept"])


def test_every_rule_the_engine_emits_is_defined() -> None:
    import inspect

    from interop.outreach import dispatcher, policy

    defined = {c["code"] for c in _conformance("CodeSystem-outreach-rule.json")["concept"]}
    emitted = set(re.findall(r'Decision\(\s*False,\s*"([a-z-]+)"', inspect.getsource(policy) + inspect.getsource(dispatcher)))
    assert emitted and emitted <= defined
    assert defined - emitted == set()


def test_schedule_builds_the_two_requests() -> None:
    appointment = pickup("1", date(2027, 1, 19))
    requests = pickup_requests(appointment, NY, NOW - timedelta(days=30), ScheduleSettings(PHARMACY, review_days=4), load_templates())
    assert [r["id"] for r in requests] == [request_id(appointment["id"], k) for k in ("reminder", "review")]
    reminder, review = requests
    assert reminder["occurrenceDateTime"] == "2027-01-12T10:00:00-05:00"
    assert review["occurrenceDateTime"] == "2027-01-15T10:00:00-05:00"
    for r in requests:
        assert_valid(r)
        assert r["status"] == "active" and r["recipient"] == [{"reference": "Patient/1"}]
        assert r["about"] == [{"reference": f"Appointment/{appointment['id']}"}]
        assert _decide(r["payload"][0]["contentString"]).allowed
    # Late planning: a passed reminder time is due at once; a closed review window yields nothing.
    late = datetime(2027, 1, 17, 14, 0, tzinfo=UTC)
    (only,) = pickup_requests(appointment, NY, late, ScheduleSettings(PHARMACY), load_templates())
    assert only["id"] == reminder["id"] and only["occurrenceDateTime"] == late.isoformat()
    assert pickup_requests({**appointment, "status": "cancelled"}, NY, NOW, ScheduleSettings(PHARMACY), load_templates()) == []
    with pytest.raises(ValueError, match="3 to 7"):
        ScheduleSettings(PHARMACY, review_days=2)
