"""``interop synth``: a deterministic, realistic HL7 v2 feed that converts cleanly."""

from __future__ import annotations

from collections import Counter
from datetime import date
from itertools import pairwise
from pathlib import Path

from click.testing import CliRunner

from adapters.hl7v2 import parse_batch
from adapters.hl7v2.mapping import to_bundle
from interop.cli import main
from interop.fhir.systems import normalize_ndc
from interop.ingest.synth import load_drugs, patient_feed, rds_messages
from tests.fhirschema import assert_valid

START = date(2025, 1, 1)


def test_drug_table_has_the_required_kinds() -> None:
    drugs = load_drugs()
    assert {d.kind for d in drugs} == {"maintenance", "prn", "acute", "controlled"}
    assert {d.form for d in drugs} >= {"TAB", "CAP", "INHALER", "PEN", "BOTTLE"}
    assert {d.schedule for d in drugs if d.kind == "controlled"} == {"2", "4"}
    assert {d.days_per_fill for d in drugs} >= {30, 90}
    for d in drugs:
        assert normalize_ndc(d.ndc11) == d.ndc11 and d.rxnorm.isdigit()


def test_same_seed_same_feed_and_patients_independent_of_n() -> None:
    drugs = load_drugs()
    assert patient_feed(3, 7, START, drugs) == patient_feed(3, 7, START, drugs)
    assert patient_feed(3, 7, START, drugs) != patient_feed(3, 8, START, drugs)


def test_feed_converts_and_is_varied() -> None:
    drugs = load_drugs()
    kinds: Counter[str] = Counter()
    sources: Counter[str] = Counter()
    gaps = []
    for index in range(1, 13):
        fills: dict[str, list[str]] = {}
        for _, _, text in patient_feed(index, 7, START, drugs):
            message = parse_batch(text)[0]
            kinds[message.message_type[0] + "^" + message.message_type[1]] += 1
            for entry in to_bundle(message)["entry"]:
                resource = entry["resource"]
                if index <= 3:
                    assert_valid(resource)
                if resource["resourceType"] == "MedicationDispense":
                    fills.setdefault(resource["authorizingPrescription"][0]["reference"], []).append(
                        resource["whenHandedOver"][:10]
                    )
                    sources.update(e["valueCode"] for e in resource.get("extension", []) if "days-supply" in e["url"])
        for dates in fills.values():
            gaps.extend((date.fromisoformat(b) - date.fromisoformat(a)).days for a, b in pairwise(dates))
    assert set(kinds) == {"ADT^A04", "RDE^O11", "RDS^O13", "SIU^S12"}
    assert kinds["ADT^A04"] == 12 and kinds["RDS^O13"] > kinds["RDE^O11"]
    assert {"quantity-daily-dose", "tq1-service-duration"} <= set(sources)
    assert any(g >= 88 for g in gaps) and any(28 <= g <= 32 for g in gaps) and any(g > 100 for g in gaps)


def test_rds_messages_for_benchmarks() -> None:
    messages = rds_messages(50)
    assert len(messages) == 50 and all("|RDS^O13^RDS_O13|" in m for m in messages)


def test_synth_command_writes_one_file_per_patient(tmp_path: Path) -> None:
    out = tmp_path / "feed"
    result = CliRunner().invoke(main, ["synth", "--patients", "3", "--out", str(out), "--seed", "5"])
    assert result.exit_code == 0, result.output
    files = sorted(out.iterdir())
    assert [f.name for f in files] == ["S0000001.hl7", "S0000002.hl7", "S0000003.hl7"]
    again = tmp_path / "again"
    CliRunner().invoke(main, ["synth", "-n", "3", "--out", str(again), "--seed", "5"])
    assert [f.read_bytes() for f in files] == [f.read_bytes() for f in sorted(again.iterdir())]
    converted = CliRunner().invoke(main, ["convert", str(out)])
    assert converted.exit_code == 0 and converted.stdout.count("\n") > 30
