"""The switch client (respx) and the claims service end to end against a switch simulator on 127.0.0.1."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from click.testing import CliRunner
from fastapi.testclient import TestClient

from adapters.telecom import Segment, Transaction, Transmission, parse, serialize
from interop.api import create_app
from interop.claims.building import build, info_value
from interop.claims.commands import claims
from interop.claims.service import (
    ClaimsError,
    build_and_store,
    pending_reversals,
    reverse,
    reverse_due,
    submit,
)
from interop.claims.switch import SwitchClient, SwitchError
from interop.config import Settings
from interop.store import open_repository
from interop.store.base import Repository
from tests.claims_inputs import (
    PATIENT,
    PHARMACY,
    PRESCRIBER,
    REQUEST,
    SHORT_COSTS,
    SHORT_FILL,
    coverage,
    dispense,
    inputs,
)
from tests.fhirschema import assert_valid
from tests.switch_simulator import TOKEN, SwitchState, running_switch

URL = "https://switch.test/d0"
SHORT = build(inputs(SHORT_FILL), SHORT_COSTS, software_vendor="SYNTHSW001")
PLAIN = build(inputs(dispense(2, "2025-03-19", 13, 26, None)), SHORT_COSTS, software_vendor="SYNTHSW001")


def _response(corpus: Path, name: str) -> bytes:
    return (corpus / "ncpdp-d0" / "synthetic" / name).read_bytes()


def _duplicate_of(paid: bytes) -> bytes:
    response = parse(paid)
    status = response.transactions[0].segments[0]
    fields = [("AN", "D"), *[(f, v) for f, v in status.fields if f != "AN"]]
    transaction = Transaction([Segment("21", fields), *response.transactions[0].segments[1:]])
    return serialize(Transmission(response.header, response.segments, [transaction]))


# ------------------------------------------------------------------------------------------ respx (unit)


@respx.mock
def test_paid(corpus: Path) -> None:
    route = respx.post(URL).mock(return_value=httpx.Response(200, content=_response(
        corpus, "b1-medsync-shortfill-scc47.response.ncpdp")))
    with SwitchClient(URL, token="t0k") as client:
        result = client.submit(SHORT.transmission, SHORT.data)
    request = route.calls.last.request
    assert request.content == SHORT.data
    assert request.headers["content-type"] == "application/octet-stream"
    assert request.headers["authorization"] == "Bearer t0k"
    assert result.accepted and not result.duplicate and result.attempts == 1
    [claim_response] = result.claim_responses
    assert claim_response["request"] == {"reference": f"Claim/{SHORT.claim['id']}"}
    totals = {t["category"]["coding"][0]["code"]: t["amount"]["value"] for t in claim_response["total"]}
    assert totals["505-F5"] == 20.37 and totals["507-F7"] == 2
    assert_valid(claim_response)


@respx.mock
def test_reject_79_then_resubmission_with_the_sync_code(corpus: Path) -> None:
    route = respx.post(URL).mock(side_effect=[
        httpx.Response(200, content=_response(corpus, "b1-reject-79-refill-too-soon.response.ncpdp")),
        httpx.Response(200, content=_response(corpus, "b1-medsync-shortfill-scc47.response.ncpdp")),
    ])
    with SwitchClient(URL, username="pharmacy", password="secret") as client:
        first = client.submit(PLAIN.transmission, PLAIN.data)
        assert not first.accepted and first.rejects == ["79"]
        assert first.claim_responses[0]["error"][0]["code"]["coding"][0]["display"]
        second = client.submit(SHORT.transmission, SHORT.data)
    assert second.accepted
    sent = [parse(call.request.content) for call in route.calls]
    assert sent[0].transactions[0].segments[0].get_all("DK") == []
    assert sent[1].transactions[0].segments[0].get_all("DK") == ["47"]
    assert sent[0].transactions[0].segments[0].get("D2") == sent[1].transactions[0].segments[0].get("D2")
    assert route.calls.last.request.headers["authorization"].startswith("Basic ")


@respx.mock
def test_timeout_then_duplicate_answer_is_billed_once(corpus: Path) -> None:
    paid = _response(corpus, "b1-medsync-shortfill-scc47.response.ncpdp")
    route = respx.post(URL).mock(side_effect=[httpx.ReadTimeout("slow"), httpx.Response(200, content=_duplicate_of(paid))])
    with SwitchClient(URL, retries=2) as client:
        result = client.submit(SHORT.transmission, SHORT.data)
    assert [call.request.content for call in route.calls] == [SHORT.data, SHORT.data]
    assert result.attempts == 2 and result.duplicate and result.accepted
    [claim_response] = result.claim_responses
    assert claim_response["outcome"] == "complete"
    assert {t["category"]["coding"][0]["code"]: t["amount"]["value"] for t in claim_response["total"]}["505-F5"] == 20.37


@respx.mock
def test_gives_up_after_the_retries() -> None:
    route = respx.post(URL).mock(side_effect=httpx.ConnectTimeout("down"))
    with SwitchClient(URL, retries=1) as client, pytest.raises(SwitchError, match="2 sends of the same"):
        client.submit(SHORT.transmission, SHORT.data)
    assert route.call_count == 2


@respx.mock
@pytest.mark.parametrize(("answer", "message"), [
    (httpx.Response(401, text="no"), "HTTP 401"),
    (httpx.Response(200, content=b"not a d0 answer at all, certainly"), "not a D.0 response"),
])
def test_bad_answers_are_named(answer: httpx.Response, message: str) -> None:
    respx.post(URL).mock(return_value=answer)
    with SwitchClient(URL) as client, pytest.raises(SwitchError, match=message):
        client.submit(SHORT.transmission, SHORT.data)


def test_no_url_configured() -> None:
    with pytest.raises(SwitchError, match="INTEROP_SWITCH_URL"):
        SwitchClient.from_settings(Settings(switch_url=""))


# ------------------------------------------------------------------------------------- end to end


@pytest.fixture(params=["sqlite", "postgresql"])
def repo(request: pytest.FixtureRequest) -> Iterator[Repository]:
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")
    store = open_repository(url)
    for resource in (PHARMACY, PATIENT, PRESCRIBER, coverage(), REQUEST):
        store.update(resource)
    yield store
    if request.param == "postgresql":
        # The PostgreSQL database is shared by the whole run: delete only what these tests wrote.
        fixed = {r["id"] for r in (PHARMACY, PATIENT, PRESCRIBER, REQUEST)} | {coverage()["id"]}
        with store.session() as session:
            for rtype in ("Claim", "ClaimResponse", "Binary", "Task", "MedicationDispense", "MedicationRequest",
                          "Coverage", "Practitioner", "Patient", "Organization"):
                for stored in list(store.iter_all(rtype)):
                    if stored.id in fixed or PATIENT["id"].encode() in stored.content:
                        session.delete(rtype, stored.id)
    store.close()


@pytest.fixture
def switch() -> Iterator[tuple[SwitchState, str]]:
    state = SwitchState()
    with running_switch(state) as url:
        yield state, url


def _client(url: str, timeout: float = 5.0) -> SwitchClient:
    return SwitchClient(url, token=TOKEN, timeout=timeout, retries=2)


def test_e2e_paid(repo: Repository, switch: tuple[SwitchState, str]) -> None:
    state, url = switch
    repo.update(SHORT_FILL)
    built = build_and_store(repo, SHORT_FILL["id"], SHORT_COSTS, software_vendor="SYNTHSW001")
    assert repo.read("Claim", built.claim["id"]).resource()["id"] == built.claim["id"]
    stored_binary = repo.read("Binary", built.binary["id"]).resource()
    assert base64.b64decode(stored_binary["data"]) == built.data
    with _client(url) as client:
        done = submit(repo, built.claim["id"], client, date(2025, 3, 19))
    assert done.result.statuses == ["P"] and done.task is None
    stored = repo.read("ClaimResponse", done.claim_response["id"]).resource()
    assert stored["request"] == {"reference": f"Claim/{built.claim['id']}"}
    assert stored["patient"] == {"reference": f"Patient/{PATIENT['id']}"}
    assert stored["insurer"] == coverage()["payor"][0]
    assert state.billed == 1 and state.received == [built.data]
    with pytest.raises(ClaimsError, match="reverse it before"):
        build_and_store(repo, SHORT_FILL["id"], SHORT_COSTS)
    for resource in (built.claim, built.binary, done.claim_response):
        assert_valid(resource)


def test_e2e_reject_79_then_resubmission_with_420_dk(repo: Repository, switch: tuple[SwitchState, str]) -> None:
    state, url = switch
    plain = dispense(2, "2025-03-19", 13, 26, None)
    repo.update(plain)
    first = build_and_store(repo, plain["id"], SHORT_COSTS)
    with _client(url) as client:
        rejected = submit(repo, first.claim["id"], client, date(2025, 3, 19))
        assert rejected.result.rejects == ["79"] and rejected.claim_response["outcome"] == "error"
        again = build_and_store(repo, plain["id"], SHORT_COSTS, kind="short")
        assert again.claim["id"] == first.claim["id"]
        paid = submit(repo, again.claim["id"], client, date(2025, 3, 19))
    assert paid.result.statuses == ["P"]
    resent = parse(state.received[1]).transactions[0].segments[0]
    assert resent.get_all("DK") == ["47"] and resent.get("NX") == "1"
    assert resent.get("D2") == parse(state.received[0]).transactions[0].segments[0].get("D2")
    assert state.billed == 1
    assert repo.read("ClaimResponse", paid.claim_response["id"]).resource()["outcome"] == "complete"


def test_e2e_timeout_then_duplicate_billed_once(repo: Repository, switch: tuple[SwitchState, str]) -> None:
    state, url = switch
    state.stall_first, state.stall_seconds = 1, 1.0
    repo.update(SHORT_FILL)
    built = build_and_store(repo, SHORT_FILL["id"], SHORT_COSTS)
    with _client(url, timeout=0.3) as client:
        done = submit(repo, built.claim["id"], client, date(2025, 3, 19))
    assert done.result.attempts == 2 and done.result.duplicate
    assert state.received == [built.data, built.data]
    assert state.billed == 1
    responses = repo.search("ClaimResponse", [("request", f"Claim/{built.claim['id']}")]).matches
    assert len(responses) == 1
    totals = {t["category"]["coding"][0]["code"]: t["amount"]["value"] for t in responses[0].resource()["total"]}
    assert totals["505-F5"] == 20.37


def test_e2e_reversal_after_the_deadline(repo: Repository, switch: tuple[SwitchState, str]) -> None:
    state, url = switch
    repo.update(SHORT_FILL)
    built = build_and_store(repo, SHORT_FILL["id"], SHORT_COSTS, software_vendor="SYNTHSW001")
    with _client(url) as client:
        submit(repo, built.claim["id"], client, date(2025, 3, 19))
        assert pending_reversals(repo, date(2025, 4, 1)) == []
        [due] = pending_reversals(repo, date(2025, 4, 2))
        assert due.claim_id == built.claim["id"] and due.deadline == date(2025, 4, 2)
        [(_, done)] = reverse_due(repo, date(2025, 4, 2), client)
    assert done.result.statuses == ["A"]
    b2 = parse(state.received[-1])
    assert b2.header.transaction_code == "B2" and b2.header.date_of_service == "20250319"
    assert b2.transactions[0].segments[0].get("D2") == "000123456"
    claim = repo.read("Claim", built.claim["id"]).resource()
    assert claim["status"] == "cancelled"
    b2_binary = repo.read("Binary", info_value(claim, "ncpdp-reversal")["reference"].split("/")[1]).resource()
    assert base64.b64decode(b2_binary["data"]) == state.received[-1]
    assert pending_reversals(repo, date(2025, 5, 1)) == []
    with _client(url) as client, pytest.raises(ClaimsError, match="cancelled"):
        submit(repo, built.claim["id"], client, date(2025, 5, 1))
    assert_valid(claim)
    assert_valid(done.claim_response)
    with _client(url) as client, pytest.raises(ClaimsError):
        reverse(repo, _unpaid(repo), client)


def _unpaid(repo: Repository) -> str:
    fill = dispense(4, "2025-05-01", 30, 60, None)
    repo.update(fill)
    return str(build_and_store(repo, fill["id"], SHORT_COSTS).claim["id"])


def test_e2e_cancel_rx_of_an_unpicked_fill(repo: Repository, switch: tuple[SwitchState, str]) -> None:
    _, url = switch
    repo.update(SHORT_FILL)
    built = build_and_store(repo, SHORT_FILL["id"], SHORT_COSTS)
    with _client(url) as client:
        submit(repo, built.claim["id"], client, date(2025, 3, 19))
    repo.update({**REQUEST, "status": "cancelled"})
    [due] = pending_reversals(repo, date(2025, 3, 20))
    assert "CancelRx" in due.reason


def test_e2e_picked_up_fill_is_not_reversed(repo: Repository, switch: tuple[SwitchState, str]) -> None:
    _, url = switch
    picked = dispense(2, "2025-03-19", 13, 26, "47", handed_over="2025-03-20")
    repo.update(picked)
    built = build_and_store(repo, picked["id"], SHORT_COSTS)
    with _client(url) as client:
        submit(repo, built.claim["id"], client, date(2025, 3, 19))
    assert pending_reversals(repo, date(2025, 6, 1)) == []


def test_e2e_not_prorated_copay_flagged(repo: Repository, switch: tuple[SwitchState, str]) -> None:
    state, url = switch
    state.prorate = False
    repo.update(SHORT_FILL)
    built = build_and_store(repo, SHORT_FILL["id"], SHORT_COSTS)
    with _client(url) as client:
        done = submit(repo, built.claim["id"], client, date(2025, 3, 20))
    assert done.task is not None
    task = repo.read("Task", done.task["id"]).resource()
    assert task["focus"] == {"reference": f"Claim/{built.claim['id']}"}
    assert "42 CFR 423.153(b)(4)" in task["description"] and "20.37" in task["description"]
    inputs_by_code = {i["type"]["coding"][0]["code"]: i for i in task["input"]}
    assert inputs_by_code["patient-pay-not-prorated-expected"]["valueMoney"]["value"] == 20.37
    assert inputs_by_code["patient-pay-not-prorated-adjudicated"]["valueMoney"]["value"] == 47
    assert_valid(task)


def test_sync_frequency_limit_counts_stored_fills(repo: Repository) -> None:
    """36 O.S. §3634.5 covers one sync a year: a second sync short fill of the drug is priced unprorated."""
    repo.update({**coverage("999995"), "id": coverage()["id"]})
    repo.update(dispense(1, "2025-01-10", 10, 20, "47"))
    repo.update(SHORT_FILL)
    built = build_and_store(repo, SHORT_FILL["id"], SHORT_COSTS)
    assert built.plan.state == "OK"
    assert built.pricing.patient_pay == Decimal("47.00")
    assert "already happened" in built.pricing.explanation and "36 O.S. §3634.5" in built.pricing.explanation


# ------------------------------------------------------------------------------------- API and CLI


def _parameters(**values: Any) -> dict[str, Any]:
    return {"resourceType": "Parameters", "parameter": [
        {"name": k, "valueDecimal": v} if isinstance(v, float) else {"name": k, "valueCode": v}
        for k, v in values.items()]}


def test_api_build_submit_reverse(sqlite_url: str, switch: tuple[SwitchState, str]) -> None:
    state, url = switch
    store = open_repository(sqlite_url)
    for resource in (PHARMACY, PATIENT, PRESCRIBER, coverage(), REQUEST, SHORT_FILL):
        store.update(resource)
    settings = Settings(database_url=sqlite_url, switch_url=url, switch_token=TOKEN, switch_software_id="SYNTHSW001")
    app = create_app(repo=store, settings=settings)
    with TestClient(app) as http:
        built = http.post(f"/fhir/MedicationDispense/{SHORT_FILL['id']}/$build-claim", json=_parameters(
            ingredientCost=81.90, dispensingFee=2.0, usualAndCustomary=110.0, copay=47.0))
        assert built.status_code == 200, built.text
        claim, binary = (e["resource"] for e in built.json()["entry"])
        assert base64.b64decode(binary["data"]) == SHORT.data
        submitted = http.post(f"/fhir/Claim/{claim['id']}/$submit")
        assert submitted.status_code == 200, submitted.text
        assert submitted.json()["resourceType"] == "ClaimResponse" and submitted.json()["outcome"] == "complete"
        reversed_ = http.post(f"/fhir/Claim/{claim['id']}/$reverse")
        assert reversed_.status_code == 200, reversed_.text
        bad = http.post(f"/fhir/MedicationDispense/{SHORT_FILL['id']}/$build-claim", json=_parameters(copay=47.0))
        assert bad.status_code == 400 and "ingredientCost" in bad.text
    assert state.billed == 1 and [parse(d).header.transaction_code for d in state.received] == ["B1", "B2"]
    for resource in (claim, binary, submitted.json(), reversed_.json()):
        assert_valid(resource)
    store.close()


def test_cli_build_submit_pending(sqlite_url: str, switch: tuple[SwitchState, str],
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    _, url = switch
    store = open_repository(sqlite_url)
    for resource in (PHARMACY, PATIENT, PRESCRIBER, coverage(), REQUEST, SHORT_FILL):
        store.update(resource)
    store.close()
    monkeypatch.setenv("INTEROP_SWITCH_URL", url)
    monkeypatch.setenv("INTEROP_SWITCH_TOKEN", TOKEN)
    from interop.config import get_settings

    get_settings.cache_clear()
    runner = CliRunner()
    try:
        out = runner.invoke(claims, ["build", SHORT_FILL["id"], "--ingredient-cost", "81.90", "--fee", "2.00",
                                   "--usual", "110.00", "--copay", "47.00", "--db", sqlite_url])
        assert out.exit_code == 0, out.output
        assert "$20.37" in out.output
        claim_id = next(w for w in out.output.split() if w.startswith("Claim/")).split("/")[1]
        out = runner.invoke(claims, ["submit", claim_id, "--db", sqlite_url])
        assert out.exit_code == 0 and "Paid" in out.output, out.output
        out = runner.invoke(claims, ["pending", "--today", "2025-04-02", "--db", sqlite_url])
        assert out.exit_code == 0 and claim_id in out.output and "return-to-stock" in out.output
        out = runner.invoke(claims, ["reverse", "--due", "--today", "2025-04-01", "--db", sqlite_url])
        assert out.exit_code == 0 and "no reversals due" in out.output, out.output
        out = runner.invoke(claims, ["reverse", "--due", "--today", "2025-04-02", "--db", sqlite_url])
        assert out.exit_code == 0 and "Approved" in out.output and claim_id in out.output, out.output
        out = runner.invoke(claims, ["reverse", claim_id, "--db", sqlite_url])
        assert out.exit_code != 0 and "already reversed" in out.output, out.output
        out = runner.invoke(claims, ["reverse", "--db", sqlite_url])
        assert out.exit_code == 2
        out = runner.invoke(claims, ["build", "no-such-dispense", "--ingredient-cost", "1", "--fee", "1",
                                   "--usual", "1", "--copay", "1", "--db", sqlite_url])
        assert out.exit_code != 0
    finally:
        get_settings.cache_clear()


def test_claims_group_is_registered_on_the_interop_command() -> None:
    from interop.cli import main

    assert main.commands["claims"] is claims
    assert set(claims.commands) == {"build", "submit", "reverse", "pending"}
