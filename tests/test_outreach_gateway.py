"""The channel gateway: respx for the HTTP contract, a real local server for outages, dedupe and crash recovery."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import respx

from interop.config import Settings
from interop.outreach.dispatcher import OutreachDispatcher, claim_of
from interop.outreach.gateway import (
    Channel,
    ChannelNotConfigured,
    Gateway,
    GatewayRejected,
    GatewayUnavailable,
)
from interop.outreach.outbox import schedule_pickups
from interop.outreach.policy import PolicySettings
from interop.outreach.schedule import ScheduleSettings, message_request
from interop.outreach.templates import load_templates
from interop.outreach.worker import start_dispatcher
from interop.store import open_repository
from tests.fhirschema import assert_valid
from tests.outreach_support import PHARMACY, GatewayServer, consent, patient, pickup

URL = "https://sms.gateway.test/send"


def _gateway(retries: int = 2, **kw: Any) -> tuple[Gateway, list[float]]:
    naps: list[float] = []
    gw = Gateway({"sms": Channel(URL, "tok"), "email": Channel(URL + "/mail")}, retries=retries, backoff=0.1,
                 sleep=naps.append, **kw)
    return gw, naps


@respx.mock
def test_success_sends_json_with_key_and_token() -> None:
    route = respx.post(URL).mock(return_value=httpx.Response(200, json={"id": "prov-1"}))
    gw, naps = _gateway()
    assert gw.send("sms", "+15550000001", "hello", "cr-1.2") == "prov-1"
    request = route.calls.last.request
    assert request.headers["Idempotency-Key"] == "cr-1.2" and request.headers["Authorization"] == "Bearer tok"
    assert httpx.Response(200, content=request.content).json() == {"to": "+15550000001", "text": "hello"}
    assert naps == []


@respx.mock
def test_email_carries_a_subject() -> None:
    route = respx.post(URL + "/mail").mock(return_value=httpx.Response(202))
    gw, _ = _gateway()
    assert gw.send("email", "a@b.test", "hello", "k", subject="Pickup") == "k"
    request = route.calls.last.request
    assert "Authorization" not in request.headers
    assert httpx.Response(200, content=request.content).json()["subject"] == "Pickup"


@respx.mock
def test_5xx_is_retried_with_the_same_key_and_backoff() -> None:
    route = respx.post(URL).mock(side_effect=[httpx.Response(503), httpx.Response(500), httpx.Response(200, json={"id": "x"})])
    gw, naps = _gateway(retries=2)
    assert gw.send("sms", "+1", "t", "key-7") == "x"
    assert [c.request.headers["Idempotency-Key"] for c in route.calls] == ["key-7"] * 3
    assert naps == [0.1, 0.2]


@respx.mock
def test_timeout_then_unavailable() -> None:
    route = respx.post(URL).mock(side_effect=httpx.ReadTimeout("slow"))
    gw, naps = _gateway(retries=3)
    with pytest.raises(GatewayUnavailable, match=r"4 attempt.*timeout"):
        gw.send("sms", "+1", "t", "k")
    assert route.call_count == 4 and naps == [0.1, 0.2, 0.4]


@respx.mock
def test_429_and_connect_errors_are_retryable() -> None:
    respx.post(URL).mock(side_effect=[httpx.Response(429), httpx.ConnectError("refused"), httpx.Response(200)])
    gw, _ = _gateway(retries=2)
    assert gw.send("sms", "+1", "t", "k") == "k"


@respx.mock
def test_4xx_is_permanent() -> None:
    route = respx.post(URL).mock(return_value=httpx.Response(422, text="bad number"))
    gw, _ = _gateway()
    with pytest.raises(GatewayRejected, match="422 bad number"):
        gw.send("sms", "+1", "t", "k")
    assert route.call_count == 1


def test_unconfigured_channel() -> None:
    gw = Gateway.from_settings(Settings(sms_url=URL))
    with pytest.raises(ChannelNotConfigured, match="email"):
        gw.send("email", "a@b.test", "t", "k")
    gw.close()


def test_real_server_dedupes_by_key_and_counts_calls() -> None:
    with GatewayServer() as server:
        gw = Gateway({"sms": Channel(server.url + "/sms", "secret-token")}, retries=3, backoff=0.01)
        server.state.fail_next = 2
        first = gw.send("sms", "+15550000001", "one", "k1")
        again = gw.send("sms", "+15550000001", "one", "k1")
        gw.send("sms", "+15550000001", "two", "k2")
        gw.close()
    assert first == again
    assert server.state.calls == ["k1", "k1", "k1", "k1", "k2"]  # 2 outages, 1 delivery, 1 duplicate, 1 delivery
    assert [d.key for d in server.state.order] == ["k1", "k2"]


# ------------------------------------------------------------------------------ dispatcher + outage
T0 = datetime(2027, 1, 5, 15, 0, tzinfo=UTC)  # 10:00 in New York


def _pharmacy(url: str) -> Any:
    repo = open_repository(url)
    for pid in ("1", "2", "3"):
        phone = f"+1555000000{pid}"
        repo.update(patient(pid, phone, "America/New_York"))
        repo.update(consent(pid, "sms", phone, T0 - timedelta(days=90)))
        repo.update(pickup(pid, date(2027, 1, 12)))
    schedule_pickups(repo, T0 - timedelta(days=30), ScheduleSettings(PHARMACY), load_templates())
    return repo


def _dispatcher(repo: Any, server: GatewayServer, name: str, gateway: Gateway | None = None) -> OutreachDispatcher:
    gw = gateway or Gateway({"sms": Channel(server.url + "/sms", "secret-token")}, retries=1, backoff=0.01)
    return OutreachDispatcher(repo, gw, PolicySettings(PHARMACY), name, lease=timedelta(minutes=5))


def test_outage_delays_and_retries_without_loss_or_duplicates(sqlite_url: str) -> None:
    repo = _pharmacy(sqlite_url)
    with GatewayServer() as server:
        worker = _dispatcher(repo, server, "w1")
        server.state.down = True
        now = T0 + timedelta(minutes=5)
        for step in range(3):
            report = worker.run_once(now + timedelta(minutes=step))
            assert (report.sent, report.unavailable) == (0, 1)
        assert not server.state.delivered
        assert all(s.resource()["status"] == "active" for s in repo.search("CommunicationRequest", [("_count", "50")]).matches)
        server.state.down = False
        report = worker.run_once(now + timedelta(minutes=10))
        assert report.sent == 3
        assert worker.run_once(now + timedelta(minutes=11)).sent == 0
        keys = [d.key for d in server.state.order]
        assert len(keys) == len(set(keys)) == 3
        assert sorted(d.to for d in server.state.order) == ["+15550000001", "+15550000002", "+15550000003"]
    sent = [s.resource() for s in repo.search("Communication", [("status", "completed")]).matches]
    assert len(sent) == 3
    for comm in sent:
        assert_valid(comm)
    repo.close()


class _CrashAfterSend(Gateway):
    """Delivers, then dies before the dispatcher can record: the crash the lease exists for."""

    def send(self, channel: str, to: str, text: str, key: str, subject: str | None = None) -> str:
        super().send(channel, to, text, key, subject)
        raise SystemExit("worker killed after sending")


def test_crash_between_send_and_record_never_sends_twice(sqlite_url: str) -> None:
    repo = _pharmacy(sqlite_url)
    with GatewayServer() as server:
        crashing = _dispatcher(repo, server, "doomed", _CrashAfterSend({"sms": Channel(server.url + "/sms", "secret-token")}))
        now = T0 + timedelta(minutes=5)
        with pytest.raises(SystemExit):
            crashing.run_once(now)
        claimed = [s.resource() for s in repo.search("CommunicationRequest", [("status", "on-hold")]).matches]
        assert len(claimed) == 1 and claim_of(claimed[0])["worker"] == "doomed"
        key = claim_of(claimed[0])["key"]
        survivor = _dispatcher(repo, server, "survivor")
        report = survivor.run_once(now + timedelta(minutes=1))
        assert report.sent == 2  # the claimed one waits for its lease
        report = survivor.run_once(now + timedelta(minutes=6))
        assert report.sent == 1
        assert server.state.calls.count(key) == 2 and list(server.state.delivered).count(key) == 1
        assert len(server.state.order) == 3
    done = repo.read("CommunicationRequest", claimed[0]["id"]).resource()
    assert done["status"] == "completed" and claim_of(done) == {"key": key}
    assert_valid(done)
    repo.close()


def test_requests_not_written_by_outreach_are_left_alone(sqlite_url: str) -> None:
    repo = open_repository(sqlite_url)
    foreign = {
        "resourceType": "CommunicationRequest",
        "id": "from-an-ehr",
        "status": "active",
        "subject": {"reference": "Patient/1"},
        "payload": [{"contentString": "Please call the clinic"}],
        "occurrenceDateTime": (T0 - timedelta(days=1)).isoformat(),
    }
    repo.update(foreign)
    with GatewayServer() as server:
        assert _dispatcher(repo, server, "w").run_once(T0).sent == 0
        assert not server.state.calls
    assert repo.read("CommunicationRequest", "from-an-ehr").version_id == 1
    repo.close()


def test_worker_command_runs_one_pass(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from interop.cli import main
    from interop.config import get_settings

    repo = open_repository(sqlite_url)
    repo.update(patient("1", "+15550000001", "America/New_York"))
    repo.update(consent("1", "sms", "+15550000001", datetime.now(UTC) - timedelta(days=30)))
    day = datetime.now(ZoneInfo("America/New_York")).date() + timedelta(days=2)  # reminder due now, review window closed
    repo.update(pickup("1", day))
    repo.close()
    with GatewayServer() as server:
        monkeypatch.setenv("INTEROP_SMS_URL", server.url + "/sms")
        monkeypatch.setenv("INTEROP_SMS_TOKEN", "secret-token")
        monkeypatch.setenv("INTEROP_PHARMACY_NAME", PHARMACY)
        get_settings.cache_clear()
        try:
            result = CliRunner().invoke(main, ["worker", "--once", "--db", sqlite_url])
        finally:
            get_settings.cache_clear()
        assert result.exit_code == 0, result.output
    quiet = not 8 <= datetime.now(ZoneInfo("America/New_York")).hour < 21
    expected = "planned 1, sent 0, blocked 0, deferred 1" if quiet else "planned 1, sent 1, blocked 0, deferred 0"
    assert expected in result.output
    assert len(server.state.order) == (0 if quiet else 1)


def test_a_request_without_a_patient_is_blocked_not_crashing(sqlite_url: str) -> None:
    repo = open_repository(sqlite_url)
    bad = message_request("no-patient", "reminder", "Group/7", "sms", f"{PHARMACY}: hi. Reply STOP to opt out.", T0, T0, None)
    repo.update(bad)
    with GatewayServer() as server:
        report = _dispatcher(repo, server, "w").run_once(T0)
        assert (report.sent, report.blocked, server.state.calls) == (0, 1, [])
    comm = repo.search("Communication", [("based-on", "CommunicationRequest/no-patient")]).matches[0].resource()
    assert comm["status"] == "not-done" and comm["statusReason"]["coding"][0]["code"] == "consent-missing"
    assert_valid(comm)
    repo.close()


def test_serve_background_loop_plans_and_sends(sqlite_url: str) -> None:
    repo = open_repository(sqlite_url)
    assert start_dispatcher(repo, Settings(), "serve-test") is None  # no gateway configured: not started
    repo.update(patient("1", "+15550000001", "America/New_York"))
    repo.update(consent("1", "sms", "+15550000001", datetime.now(UTC) - timedelta(days=30)))
    repo.update(pickup("1", datetime.now(ZoneInfo("America/New_York")).date() + timedelta(days=2)))
    with GatewayServer() as server:
        settings = Settings(sms_url=server.url + "/sms", sms_token="secret-token", pharmacy_name=PHARMACY,
                            pharmacy_time_zone="America/New_York", worker_interval=0.05)
        started = start_dispatcher(repo, settings, "serve-test")
        assert started is not None
        thread, stop = started
        try:
            for _ in range(100):
                handled = repo.search("CommunicationRequest", [("status", "completed,active")]).matches
                if server.state.order or (handled and "extension" in handled[0].resource()):
                    break
                time.sleep(0.05)
        finally:
            stop.set()
            thread.join(5)
        assert not thread.is_alive()
    (request,) = [s.resource() for s in repo.search("CommunicationRequest", []).matches]
    if request["status"] == "completed":  # daytime in New York
        assert [d.to for d in server.state.order] == ["+15550000001"]
    else:  # quiet hours: deferred to 08:00 with its key kept
        assert request["status"] == "active" and claim_of(request)["key"] and not server.state.order
        assert datetime.fromisoformat(request["occurrenceDateTime"]).astimezone(ZoneInfo("America/New_York")).hour == 8
    repo.close()
