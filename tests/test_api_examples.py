"""The official R4 examples (../shared/corpus/fhir-r4-examples) load in ONE transaction through
``POST /fhir`` with PUT entries and read back equal apart from ``meta``, on SQLite and PostgreSQL.

Of the folder's 40 files, the 37 resources of served types are loaded; the two OperationOutcomes are error
payloads (not a stored type) and the transaction Bundle is itself posted as a transaction: its
``ValueSet/$lookup`` entry is not supported here, so it must be refused whole with nothing written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.api_support import api, store_url
from tests.conftest import corpus_files
from tests.test_api_errors import table_counts

EXAMPLES = [
    p
    for p in corpus_files("fhir-r4-examples", "*.json")
    if not p.name.startswith("OperationOutcome-") and p.name != "Bundle-bundle-transaction.json"
]
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def _without_meta(resource: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in resource.items() if k != "meta"}


@pytest.mark.corpus
@pytest.mark.parametrize("backend", BACKENDS)
def test_official_examples_load_in_one_transaction(
    backend: str, corpus: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    assert len(EXAMPLES) == 37, f"expected the 37 official examples of served types, found {len(EXAMPLES)}"
    examples = [json.loads(p.read_text()) for p in EXAMPLES]
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
            for r in examples
        ],
    }
    with api(store_url(backend, tmp_path, request)) as (client, _):
        r = client.post("/fhir", json=bundle)
        assert r.status_code == 200, r.text
        answer = r.json()
        assert answer["type"] == "transaction-response"
        assert [e["response"]["status"].split()[0] for e in answer["entry"]] == ["201"] * len(examples)
        for original in examples:
            read = client.get(f"/fhir/{original['resourceType']}/{original['id']}")
            assert read.status_code == 200, read.text
            back = read.json()
            assert back["meta"]["versionId"] == "1"
            assert _without_meta(back) == _without_meta(original), original["id"]


@pytest.mark.corpus
@pytest.mark.parametrize("backend", BACKENDS)
def test_official_transaction_example_is_refused_whole(
    backend: str, corpus: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    bundle = json.loads((corpus / "fhir-r4-examples" / "Bundle-bundle-transaction.json").read_text())
    url = store_url(backend, tmp_path, request)
    with api(url) as (client, _):
        before = table_counts(url)
        r = client.post("/fhir", json=bundle)
        assert r.status_code >= 400
        body = r.json()
        assert body["resourceType"] == "OperationOutcome"
        assert body["issue"][0]["expression"][0].startswith("Bundle.entry[")
        assert table_counts(url) == before
