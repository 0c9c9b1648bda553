"""The report operations over HTTP on SQLite: the demo pharmacy, two patients enrolled with $sync-enroll."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from interop.api.app import create_app
from interop.cli import main
from interop.demo import demo_bundle
from interop.store import open_repository
from interop.store.base import Repository
from tests.fhirschema import assert_valid

TODAY = date(2026, 11, 26)


@pytest.fixture(scope="module")
def db_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path: Path = tmp_path_factory.mktemp("reports") / "store.db"
    return f"sqlite:///{path}"


@pytest.fixture(scope="module")
def pharmacy(db_url: str) -> Iterator[tuple[TestClient, Repository, list[str]]]:
    repo = open_repository(db_url)
    repo.process_bundle(demo_bundle(TODAY))
    patients = sorted(s.id for s in repo.iter_all("Patient"))
    with TestClient(create_app(repo)) as client:
        for pid in patients[:2]:
            done = client.post(f"/fhir/Patient/{pid}/$sync-enroll?today={TODAY}")
            assert done.status_code == 200, done.text
        yield client, repo, patients
    repo.close()


def _json(response: Any) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def test_adherence_default_period(pharmacy: tuple[TestClient, Repository, list[str]]) -> None:
    client, _, patients = pharmacy
    bundle = _json(client.get(f"/fhir/Patient/{patients[0]}/$adherence", params={"today": str(TODAY)}))
    assert_valid(bundle)
    assert bundle["type"] == "collection" and bundle["entry"]
    for entry in bundle["entry"]:
        report = entry["resource"]
        assert_valid(report)
        assert report["type"] == "individual"
        assert report["subject"] == {"reference": f"Patient/{patients[0]}"}
        assert report["period"] == {"start": str(TODAY - timedelta(days=364)), "end": str(TODAY)}


def test_adherence_explicit_period_and_errors(pharmacy: tuple[TestClient, Repository, list[str]]) -> None:
    client, _, patients = pharmacy
    window = {"start": str(TODAY - timedelta(days=30)), "end": str(TODAY)}
    bundle = _json(client.get(f"/fhir/Patient/{patients[0]}/$adherence", params=window))
    # 30 days leave no index date 91 days before the end: no class is scored
    for entry in bundle["entry"]:
        assert "measureScore" not in entry["resource"]["group"][0]
    bad = client.get(f"/fhir/Patient/{patients[0]}/$adherence", params={"start": "2026-13-01"})
    assert bad.status_code == 400 and "not a date" in bad.text
    assert client.get("/fhir/Patient/nobody/$adherence").status_code == 404


def test_program_report(pharmacy: tuple[TestClient, Repository, list[str]]) -> None:
    client, _, _ = pharmacy
    report = _json(client.get("/fhir/$program-report", params={"period": "2026", "today": str(TODAY)}))
    assert_valid(report)
    groups = {g["code"]["coding"][0]["code"]: g for g in report["group"]}
    assert groups["enrolled"]["population"][0]["count"] == 2
    assert report["period"] == {"start": "2026-01-01", "end": "2026-12-31"}
    ranged = _json(client.get("/fhir/$program-report", params={"period": "2026-11-01/2026-11-30", "today": str(TODAY)}))
    assert ranged["period"] == {"start": "2026-11-01", "end": "2026-11-30"}
    bad = client.get("/fhir/$program-report", params={"period": "last spring"})
    assert bad.status_code == 400 and "period" in bad.text


def test_demand_forecast(pharmacy: tuple[TestClient, Repository, list[str]]) -> None:
    client, repo, _ = pharmacy
    report = _json(client.get("/fhir/$demand-forecast", params={"days": "10", "today": str(TODAY)}))
    assert_valid(report)
    workload = report["group"][-1]
    assert len(workload["stratifier"][0]["stratum"]) == 10
    planned = sum(
        1 for s in repo.iter_all("Task")
        if s.resource().get("code", {}).get("coding", [{}])[0].get("code") == "fulfill"
        and s.resource()["status"] in ("requested", "draft")
    )
    assert planned > 0
    assert workload["population"][0]["count"] >= planned
    assert client.get("/fhir/$demand-forecast", params={"days": "0"}).status_code == 400


def test_operations_listed_and_definitions_valid(pharmacy: tuple[TestClient, Repository, list[str]]) -> None:
    client, _, _ = pharmacy
    text = client.get("/fhir/metadata").text
    for name in ("adherence", "program-report", "demand-forecast"):
        assert f"OperationDefinition/{name}" in text
        assert_valid(orjson.loads(resources.files("conformance").joinpath(f"OperationDefinition-{name}.json").read_bytes()))
    for name in ("Measure-medsync-program", "Measure-demand-forecast", "CodeSystem-medsync-program-indicator"):
        assert_valid(orjson.loads(resources.files("conformance").joinpath(f"{name}.json").read_bytes()))


def test_cli_tables_and_csv(pharmacy: tuple[TestClient, Repository, list[str]], db_url: str, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "program.csv"
    done = runner.invoke(main, ["report", "program", "--db", db_url, "--today", str(TODAY), "--period", "2026",
                                "--csv", str(out)])
    assert done.exit_code == 0, done.output
    assert "Med sync program 2026-01-01 to 2026-12-31" in done.output
    lines = out.read_text().splitlines()
    assert lines[0] == "indicator,stratum,numerator,denominator,value" and "enrolled,,2,," in lines
    forecast = runner.invoke(main, ["report", "forecast", "--db", db_url, "--today", str(TODAY), "--days", "3"])
    assert forecast.exit_code == 0, forecast.output
    assert forecast.output.count("preparation workload") == 3
    pdc_csv = tmp_path / "pdc.csv"
    pdc = runner.invoke(main, ["report", "pdc", "--db", db_url, "--today", str(TODAY), "--csv", str(pdc_csv)])
    assert pdc.exit_code == 0, pdc.output
    rows = pdc_csv.read_text().splitlines()
    assert rows[0].startswith("patient,measure,ingredient") and len(rows) > 5
    assert all(f"Patient/{pid}" in pdc.output for pid in pharmacy[2])
    bad = runner.invoke(main, ["report", "program", "--db", db_url, "--period", "someday"])
    assert bad.exit_code == 2 and "neither a year" in bad.output
