"""PostgreSQL goes away under load and comes back: 503 OperationOutcome and MLLP AE while it is down,
recovery by itself without a restart. The outage is a real cut network path (tests/netproxy.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from interop.api.app import create_app
from interop.ingest.mllp import ack_code
from interop.ingest.pipeline import Ingestor
from interop.store import SqlRepository, open_repository
from tests.ingest_messages import dispense
from tests.netproxy import Proxy

pytestmark = pytest.mark.postgres


@pytest.fixture
def proxied(fresh_pg_url: str) -> Iterator[tuple[Proxy, SqlRepository]]:
    proxy = Proxy(("127.0.0.1", 5432))
    proxy.start()
    url = fresh_pg_url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
    repo = open_repository(url)
    try:
        yield proxy, repo
    finally:
        repo.close()
        proxy.cut()


def _until(predicate, seconds: float = 20.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_outage_answers_503_and_ae_then_recovers_without_restart(proxied: tuple[Proxy, SqlRepository]) -> None:
    proxy, repo = proxied
    client = TestClient(create_app(repo), raise_server_exceptions=False)
    headers = {"Content-Type": "application/fhir+json"}
    created = client.post("/fhir/Patient", json={"resourceType": "Patient", "id": "x"}, headers=headers)
    assert created.status_code == 201, created.text
    pid = created.json()["id"]
    ingestor = Ingestor(repo)
    assert ingestor.ingest(dispense(1)).code == "AA"

    proxy.cut()
    for _ in range(5):
        down = client.get(f"/fhir/Patient/{pid}")
        assert down.status_code == 503, down.text
        assert down.json()["resourceType"] == "OperationOutcome"
        assert down.json()["issue"][0]["code"] == "transient"
    outcome = ingestor.ingest(dispense(2))
    assert outcome.code == "AE" and outcome.ack is not None and ack_code(outcome.ack) == "AE"
    assert outcome.dead_letter is None  # an outage is the sender's to retry, not a dead letter

    proxy.start()
    assert _until(lambda: client.get(f"/fhir/Patient/{pid}").status_code == 200), "the service did not recover"
    assert ingestor.ingest(dispense(2)).code == "AA"
    found = client.get("/fhir/MedicationDispense", headers=headers).json()
    assert len(found.get("entry", [])) == 2
