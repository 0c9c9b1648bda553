"""``POST [base]`` processes a Bundle (validation included) with the cyclic garbage collector paused and
restores it after, whatever the outcome (``interop.api.interactions.collector_paused``)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from interop.api.interactions import collector_paused
from interop.store.base import Resource
from tests.api_support import api


class _Watch:
    """Records whether the collector ran while the repository processed each Bundle."""

    def __init__(self) -> None:
        self.seen: list[bool] = []


@pytest.fixture
def client(tmp_path: Path) -> Iterator[tuple[Any, _Watch]]:
    watch = _Watch()
    with api(f"sqlite:///{tmp_path / 'store.db'}") as (client, repo):
        inner = repo.process_bundle

        def process_bundle(bundle: Resource, *, base_url: str = "") -> Resource:
            watch.seen.append(gc.isenabled())
            return inner(bundle, base_url=base_url)

        repo.process_bundle = process_bundle  # type: ignore[method-assign]
        yield client, watch


def _bundle(kind: str, *resources: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": kind,
        "entry": [
            {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
            for r in resources
        ],
    }


HEADERS = {"Content-Type": "application/fhir+json"}


def test_paused_while_a_transaction_runs_and_restored(client: tuple[Any, _Watch]) -> None:
    http, watch = client
    assert gc.isenabled()
    r = http.post(
        "/fhir", json=_bundle("transaction", {"resourceType": "Patient", "id": "g1"}), headers=HEADERS
    )
    assert r.status_code == 200, r.text
    assert watch.seen == [False]
    assert gc.isenabled()


def test_restored_after_an_invalid_transaction_and_a_failing_batch(client: tuple[Any, _Watch]) -> None:
    http, watch = client
    invalid = _bundle("transaction", {"resourceType": "Patient", "id": "g2", "gender": 5})
    r = http.post("/fhir", json=invalid, headers=HEADERS)
    assert r.status_code in (400, 422)
    assert r.json()["issue"][0]["expression"] == ["Bundle.entry[0].resource.gender"]
    assert gc.isenabled()
    batch = _bundle(
        "batch", {"resourceType": "Patient", "id": "g3"}, {"resourceType": "Patient", "id": "g4", "gender": 5}
    )
    r = http.post("/fhir", json=batch, headers=HEADERS)
    assert r.status_code == 200
    assert [e["response"]["status"][:3] for e in r.json()["entry"]] == ["201", "422"]
    # the batch (its valid entry) reached the store; the invalid transaction did not
    assert watch.seen == [False]
    assert gc.isenabled()


def test_left_off_when_it_was_off(client: tuple[Any, _Watch]) -> None:
    http, _ = client
    gc.disable()
    try:
        r = http.post(
            "/fhir", json=_bundle("transaction", {"resourceType": "Patient", "id": "g5"}), headers=HEADERS
        )
        assert r.status_code == 200
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_nested_pauses_restore_the_outer_state() -> None:
    with collector_paused():
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError("boom")
    assert gc.isenabled()
