"""Inbound replies: every STOP word, confirmations, dates, anything else; the webhook's signature and effects."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from interop.api.app import create_app
from interop.config import Settings
from interop.outreach.inbound import STOP_WORDS, classify, find_date
from interop.outreach.policy import consent_id, read_consent
from interop.outreach.review import ReviewError, review_followups, signals
from interop.store import open_repository
from tests.fhirschema import assert_valid
from tests.outreach_support import PHARMACY, consent, patient, pickup

TODAY = date(2027, 1, 12)


@pytest.mark.parametrize("word", sorted(STOP_WORDS))
@pytest.mark.parametrize("shape", [str.upper, str.lower, str.title, lambda w: f"  {w} \n", lambda w: f"{w}."])
def test_every_stop_word_in_any_case(word: str, shape: Any) -> None:
    reply = classify(shape(word), TODAY)
    assert reply.kind == "stop"
    assert reply.all_channels is (word == "STOP ALL")


def test_stop_words_are_exactly_the_fcc_list() -> None:
    assert {"STOP", "STOP ALL", "QUIT", "END", "REVOKE", "OPT OUT", "CANCEL", "UNSUBSCRIBE"} == STOP_WORDS


@pytest.mark.parametrize("text", ["please stop calling me at work", "stopped", "the end is near", "cancel my 12/15 pickup"])
def test_stop_word_inside_a_sentence_is_not_an_opt_out(text: str) -> None:
    assert classify(text, TODAY).kind != "stop"


@pytest.mark.parametrize("text", ["YES", "yes", " Yes ", "C", "c", "yes!"])
def test_confirm(text: str) -> None:
    assert classify(text, TODAY).kind == "confirm"


@pytest.mark.parametrize(
    "text,expected",
    [
        ("2027-01-20", date(2027, 1, 20)),
        ("can I come 1/20 instead", date(2027, 1, 20)),
        ("1/20/2027", date(2027, 1, 20)),
        ("1-20-27", date(2027, 1, 20)),
        ("Jan 20", date(2027, 1, 20)),
        ("january 20th works", date(2027, 1, 20)),
        ("Sept 3, 2027", date(2027, 9, 3)),
        ("1/5", date(2028, 1, 5)),  # already past this year: next year's
        ("Dec 31", date(2027, 12, 31)),
    ],
)
def test_dates_propose_a_reschedule(text: str, expected: date) -> None:
    reply = classify(text, TODAY)
    assert (reply.kind, reply.proposed) == ("reschedule", expected)


@pytest.mark.parametrize("text", ["2/30", "13/45", "Feb 30", "2027-02-30"])
def test_impossible_dates_are_not_dates(text: str) -> None:
    assert find_date(text, TODAY) is None
    assert classify(text, TODAY).kind == "other"


@pytest.mark.parametrize("text", ["", "what time do you open?", "yes please", "no", "call me", "ok thanks"])
def test_anything_else_goes_to_staff(text: str) -> None:
    assert classify(text, TODAY).kind == "other"


# ------------------------------------------------------------------------------------------ webhook
SECRET = "inbound-secret"
NOW = datetime(2027, 1, 12, 15, 0, tzinfo=UTC)


@pytest.fixture
def app_client(sqlite_url: str) -> Any:
    repo = open_repository(sqlite_url)
    settings = Settings(database_url=sqlite_url, inbound_secret=SECRET, pharmacy_name=PHARMACY)
    repo.update(patient("1", "+15550000001", "America/New_York", "pat@mail.test"))
    repo.update(patient("2", "+15550000002"))
    repo.update(patient("3", "+15550000003"))
    repo.update(patient("4", "+15550000003"))  # a shared family number
    repo.update(consent("1", "sms", "+15550000001", NOW - timedelta(days=60)))
    repo.update(consent("1", "email", "pat@mail.test", NOW - timedelta(days=60)))
    day = datetime.now(UTC).date() + timedelta(days=6)
    repo.update(pickup("1", day))
    repo.update(pickup("1", day + timedelta(days=30)))
    with TestClient(create_app(repo, settings)) as client:
        yield client, repo
    repo.close()


def _post(client: TestClient, body: dict[str, Any], secret: str = SECRET, header: str | None = None) -> Any:
    raw = orjson.dumps(body)
    sig = header if header is not None else hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    return client.post("/inbound/sms", content=raw, headers={"X-Signature": sig, "Content-Type": "application/json"})


def _msg(text: str, sender: str = "+15550000001", mid: str = "m1") -> dict[str, Any]:
    return {"from": sender, "to": "+15559990000", "text": text, "received_at": datetime.now(UTC).isoformat(), "message_id": mid}


def test_signature_is_required(app_client: Any) -> None:
    client, repo = app_client
    assert _post(client, _msg("YES"), header="").status_code == 401
    assert _post(client, _msg("YES"), secret="wrong").status_code == 401
    assert _post(client, _msg("YES"), header="sha256=" + "0" * 64).status_code == 401
    assert not repo.search("Communication", []).matches


def test_bad_body_names_the_field(app_client: Any) -> None:
    client, _ = app_client
    answer = _post(client, {**_msg("YES"), "received_at": "yesterday"})
    assert answer.status_code == 400 and answer.json()["field"] == "received_at"
    answer = _post(client, {k: v for k, v in _msg("YES").items() if k != "message_id"})
    assert answer.status_code == 400 and answer.json()["field"] == "message_id"


def test_confirm_books_the_next_pickup(app_client: Any) -> None:
    client, repo = app_client
    answer = _post(client, _msg("yes", mid="c1", ))
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["action"] == "confirm"
    booked = repo.read("Appointment", result["appointment"]).resource()
    assert booked["status"] == "booked" and booked["participant"][0]["status"] == "accepted"
    assert booked["start"][:10] == booked["requestedPeriod"][0]["start"]
    assert_valid(booked)
    reply = repo.read("Communication", result["communication"]).resource()
    assert reply["payload"][0]["contentString"] == "yes" and reply["about"][0]["reference"].endswith(booked["id"])
    assert_valid(reply)
    requests = [s.resource() for s in repo.search("CommunicationRequest", []).matches]
    assert len(requests) == 1 and "confirmed" in requests[0]["payload"][0]["contentString"]
    assert_valid(requests[0])
    # The provider redelivers the same message: recorded once, acted on once.
    assert _post(client, _msg("yes", mid="c1")).json()["action"] == "duplicate"
    assert len(repo.search("CommunicationRequest", []).matches) == 1


def test_date_makes_a_reschedule_task(app_client: Any) -> None:
    client, repo = app_client
    proposed = datetime.now(UTC).date() + timedelta(days=9)
    result = _post(client, _msg(f"can I come {proposed:%m/%d/%Y}?", mid="d1")).json()
    assert result["action"] == "reschedule"
    task = repo.read("Task", result["task"]).resource()
    assert task["input"][0]["valueDate"] == proposed.isoformat() and task["focus"]["reference"].startswith("Appointment/")
    assert_valid(task)


@pytest.mark.parametrize("word,channels", [("Stop", {"sms"}), ("STOP ALL", {"sms", "email"}), ("unsubscribe", {"sms"})])
def test_stop_revokes_consent_at_once(app_client: Any, word: str, channels: set[str]) -> None:
    client, repo = app_client
    result = _post(client, _msg(word, mid="s1")).json()
    assert result["action"] == "stop"
    for channel in ("sms", "email"):
        stored = repo.read("Consent", consent_id("1", channel))
        view = read_consent(stored.resource())
        assert view is not None and view.permitted is (channel not in channels)
        assert stored.version_id == (2 if channel in channels else 1)  # the change is a new version: the log
        assert_valid(stored.resource())
    confirmations = [s.resource() for s in repo.search("CommunicationRequest", []).matches]
    assert {c["medium"][0]["coding"][0]["code"] for c in confirmations} == channels
    for c in confirmations:
        assert_valid(c)


def test_stop_from_a_number_without_consent_records_a_deny(app_client: Any) -> None:
    client, repo = app_client
    assert _post(client, _msg("QUIT", sender="+15550000002", mid="q1")).json()["action"] == "stop"
    view = read_consent(repo.read("Consent", consent_id("2", "sms")).resource())
    assert view is not None and not view.permitted and view.contact == "+15550000002"


@pytest.mark.parametrize("sender", ["+15550000009", "+15550000003"])
def test_unknown_or_shared_number_goes_to_staff(app_client: Any, sender: str) -> None:
    client, repo = app_client
    result = _post(client, _msg("YES", sender=sender, mid="u1")).json()
    assert result["action"] == "other"
    task = repo.read("Task", result["task"]).resource()
    assert "for" not in task
    assert_valid(task)


def test_other_text_makes_a_staff_task(app_client: Any) -> None:
    client, repo = app_client
    result = _post(client, _msg("what time do you close on Sunday?", mid="o1")).json()
    assert result["action"] == "other"
    task = repo.read("Task", result["task"]).resource()
    assert task["for"] == {"reference": "Patient/1"} and task["code"]["coding"][0]["code"] == "reply-review"
    assert_valid(task)


# ------------------------------------------------------------------------------------------ review
def _response(**answers: object) -> dict[str, Any]:
    items = []
    for link, value in answers.items():
        key = "valueBoolean" if isinstance(value, bool) else "valueString"
        items.append({"linkId": link.replace("_", "-"), "answer": [{key: value}]})
    return {
        "resourceType": "QuestionnaireResponse",
        "id": "qr1",
        "questionnaire": "https://medsync-interop.org/fhir/Questionnaire/pre-pickup-review",
        "status": "completed",
        "subject": {"reference": "Patient/1"},
        "authored": NOW.isoformat(),
        "item": items,
    }


NOTHING = {"doses_taken": True, "hospital_visit": False, "drug_changes": False, "dose_changes": False, "side_effects": False}


def test_questionnaire_is_valid() -> None:
    from importlib import resources

    questionnaire = orjson.loads(resources.files("conformance").joinpath("Questionnaire-pre-pickup-review.json").read_bytes())
    assert_valid(questionnaire)
    assert [i["linkId"] for i in questionnaire["item"]] == [
        "doses-taken", "hospital-visit", "drug-changes", "dose-changes", "side-effects", "note",
    ]


def test_review_without_change_has_no_followup() -> None:
    response = _response(**NOTHING, note="  ")
    assert_valid(response)
    assert review_followups(response, NOW) == []


@pytest.mark.parametrize(
    "change,signal",
    [
        ({"doses_taken": False}, "doses-taken"),
        ({"hospital_visit": True}, "hospital-visit"),
        ({"drug_changes": True}, "drug-changes"),
        ({"dose_changes": True}, "dose-changes"),
        ({"side_effects": True}, "side-effects"),
        ({"note": "I moved"}, "note"),
    ],
)
def test_each_change_signals_replan_and_staff(change: dict[str, object], signal: str) -> None:
    response = _response(**{**NOTHING, **change})
    assert signals(response) == [signal]
    tasks = review_followups(response, NOW)
    assert [t["code"]["coding"][0]["code"] for t in tasks] == ["replan", "review-followup"]
    for task in tasks:
        assert task["for"] == {"reference": "Patient/1"} and task["focus"] == {"reference": "QuestionnaireResponse/qr1"}
        assert_valid(task)


def test_review_rejects_other_resources() -> None:
    with pytest.raises(ReviewError, match="questionnaire"):
        signals({**_response(**NOTHING), "questionnaire": "https://other.org/Questionnaire/x"})
    with pytest.raises(ReviewError, match=r"item\[0\]"):
        signals({**_response(), "item": [{"linkId": "doses-taken", "answer": [{"valueInteger": 1}]}]})
