"""Claim building: the synthetic D.0 corpus rebuilt byte for byte from equivalent FHIR input, and the Claim,
Binary and ClaimResponse valid against the official R4 schema."""

from __future__ import annotations

import base64
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.telecom import parse, reversal, serialize
from adapters.telecom.fhir import SCC_SYSTEM, SCC_URL, claim_responses
from interop.claims.building import BuildError, ClaimInputs, build, fill_kind, info_value
from interop.claims.pricing import Costs
from tests.claims_inputs import (
    ANCHOR_COSTS,
    ANCHOR_FILL,
    PATIENT,
    PHARMACY,
    PRESCRIBER,
    REQUEST,
    RX_SYSTEM,
    SHORT_COSTS,
    SHORT_FILL,
    coverage,
    dispense,
    inputs,
)
from tests.fhirschema import assert_valid

SYNTHETIC = "ncpdp-d0/synthetic"


def _file(corpus: Path, name: str) -> bytes:
    return (corpus / SYNTHETIC / name).read_bytes()


@pytest.mark.parametrize(("name", "fill", "costs"), [
    ("b1-medsync-shortfill-scc47.request.ncpdp", SHORT_FILL, SHORT_COSTS),
    ("b1-medsync-anchorfill-scc48.request.ncpdp", ANCHOR_FILL, ANCHOR_COSTS),
])
def test_synthetic_b1_rebuilt_byte_for_byte(corpus: Path, name: str, fill: dict[str, Any], costs: Any) -> None:
    built = build(inputs(fill), costs, software_vendor="SYNTHSW001")
    assert built.data == _file(corpus, name)
    assert base64.b64decode(built.binary["data"]) == built.data
    assert_valid(built.claim)
    assert_valid(built.binary)


def test_short_fill_is_not_a_partial_fill() -> None:
    """343-HD, 344-HF and 345-HG stay empty: the short fill is complete with a shortened 405-D5."""
    built = build(inputs(SHORT_FILL), SHORT_COSTS)
    claim = built.transmission.transactions[0].segment("07")
    assert claim is not None
    assert claim.get("HD") is None and claim.get("HF") is None and claim.get("HG") is None
    assert claim.number("D5") == 13 and claim.quantity("E7") == 26
    assert claim.get_all("DK") == ["47"] and claim.get("NX") == "1"


def test_reversal_of_the_built_b1_is_the_corpus_b2(corpus: Path) -> None:
    built = build(inputs(SHORT_FILL), SHORT_COSTS, software_vendor="SYNTHSW001")
    assert serialize(reversal(built.transmission)) == _file(corpus, "b2-reversal-of-shortfill.request.ncpdp")


def test_claim_carries_the_same_facts() -> None:
    built = build(inputs(SHORT_FILL), SHORT_COSTS)
    claim = built.claim
    assert claim["type"]["coding"][0]["code"] == "pharmacy" and claim["use"] == "claim"
    item = claim["item"][0]
    assert item["productOrService"]["coding"][0]["code"] == "00000123401"
    assert item["quantity"]["value"] == 26 and item["servicedDate"] == "2025-03-19"
    assert item["net"] == {"value": 83.9, "currency": "USD"}
    assert claim["prescription"] == {"reference": f"MedicationRequest/{REQUEST['id']}"}
    assert claim["insurance"][0]["coverage"]["reference"].startswith("Coverage/")
    assert claim["provider"]["reference"].startswith("Organization/")
    assert info_value(claim, "dayssupply")["value"] == 13
    assert info_value(claim, "refillnum") == {"value": 2}
    assert info_value(claim, "dawcode")["coding"][0]["code"] == "0"
    assert info_value(claim, "submission-clarification-code")["coding"][0]["code"] == "47"
    assert info_value(claim, "ncpdp-request") == {"reference": f"Binary/{built.binary['id']}"}
    assert info_value(claim, "expected-patient-pay")["value"] == 20.37
    assert info_value(claim, "proration-rule") == "42 CFR 423.153(b)(4)"
    assert "$20.37" in info_value(claim, "pricing-explanation")


def test_claim_response_links_to_the_built_claim(corpus: Path) -> None:
    """adapters.telecom.fhir keys the ClaimResponse's request by claim_id: the builder's Claim id resolves."""
    built = build(inputs(SHORT_FILL), SHORT_COSTS, software_vendor="SYNTHSW001")
    response = parse(_file(corpus, "b1-medsync-shortfill-scc47.response.ncpdp"))
    [claim_response] = claim_responses(response, built.transmission)
    assert claim_response["request"] == {"reference": f"Claim/{built.claim['id']}"}
    assert_valid(claim_response)
    rejected = claim_responses(parse(_file(corpus, "b1-reject-79-refill-too-soon.response.ncpdp")), built.transmission)
    assert rejected[0]["outcome"] == "error"
    assert rejected[0]["error"][0]["code"]["coding"][0]["code"] == "79"
    assert_valid(rejected[0])


def test_kind_follows_the_planner_mark() -> None:
    assert fill_kind(SHORT_FILL) == "short" and fill_kind(ANCHOR_FILL) == "anchor"
    marked_61 = {**ANCHOR_FILL, "extension": [*ANCHOR_FILL["extension"][:1],
                                              {"url": SCC_URL, "valueCoding": {"system": SCC_SYSTEM, "code": "61"}}]}
    assert fill_kind(marked_61) == "short"
    plain = {**SHORT_FILL, "extension": SHORT_FILL["extension"][:1]}
    assert fill_kind(plain) == "regular"
    built = build(inputs(plain), SHORT_COSTS)
    claim = built.transmission.transactions[0].segment("07")
    assert claim is not None and claim.get("DK") is None and claim.get("NX") is None


def test_scc_61_payer() -> None:
    built = build(inputs(SHORT_FILL, coverage("999998")), SHORT_COSTS)
    assert built.transmission.header.bin == "999998"
    assert built.transmission.transactions[0].segments[0].get_all("DK") == ["61"]


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d.pop("medicationCodeableConcept"), "NDC"),
    (lambda d: d.pop("daysSupply"), "daysSupply"),
    (lambda d: d.pop("whenPrepared"), "whenPrepared"),
    (lambda d: d.__setitem__("whenPrepared", "March 19"), "not a FHIR date"),
    (lambda d: d.__setitem__("extension", []), "403-D3"),
])
def test_missing_facts_are_named(change: Any, message: str) -> None:
    broken = {**SHORT_FILL}
    change(broken)
    bare_request = {**REQUEST, "medicationCodeableConcept": {"text": "no code"}}
    with pytest.raises(BuildError, match=message):
        build(inputs(broken).__class__(broken, bare_request, PATIENT, coverage(), inputs(broken).pharmacy), SHORT_COSTS)


def test_coverage_without_bin_is_named() -> None:
    cov = coverage()
    cov["class"] = [c for c in cov["class"] if c["type"]["coding"][0]["code"] != "rxbin"]
    with pytest.raises(BuildError, match="rxbin"):
        build(inputs(SHORT_FILL, cov), SHORT_COSTS)


def _paid(built: Any, pay: str, fee: str, status: str = "P") -> dict[str, Any]:
    from adapters.telecom import ResponseHeader, Segment, Transaction, Transmission

    header = built.transmission.header
    response = Transmission(ResponseHeader("B1", "A", header.provider_id, header.date_of_service), [], [Transaction([
        Segment("21", [("AN", status)]),
        Segment("23", [("F5", Decimal(pay)), ("F6", Decimal("81.90")), ("F7", Decimal(fee))]),
    ])])
    return claim_responses(response, built.transmission)[0]


def test_reconcile_flags_a_prorated_dispensing_fee() -> None:
    from datetime import date

    from interop.claims.reconcile import reconcile

    built = build(inputs(SHORT_FILL), SHORT_COSTS)
    assert reconcile(built.claim, _paid(built, "20.37", "2.00"), date(2025, 3, 20)) is None
    task = reconcile(built.claim, _paid(built, "20.37", "0.87"), date(2025, 3, 20))
    assert task is not None
    codes = {i["type"]["coding"][0]["code"]: i for i in task["input"]}
    assert codes["dispensing-fee-prorated-expected"]["valueMoney"]["value"] == 2
    assert codes["dispensing-fee-prorated-adjudicated"]["valueMoney"]["value"] == 0.87
    assert "42 CFR 423.153(b)(4)" in task["description"]
    assert_valid(task)
    both = reconcile(built.claim, _paid(built, "47.00", "0.87", "D"), date(2025, 3, 20))
    assert both is not None and len(both["input"]) == 5
    assert reconcile(built.claim, _paid(built, "47.00", "0.87", "R"), date(2025, 3, 20)) is None


def test_reconcile_leaves_an_unprorated_rule_alone() -> None:
    """A self-funded plan that does not prorate: the full copay is what the rule expects."""
    from datetime import date

    from interop.claims.reconcile import reconcile

    built = build(inputs(SHORT_FILL, coverage("999997")), SHORT_COSTS)
    assert built.pricing.patient_pay == 47
    assert reconcile(built.claim, _paid(built, "47.00", "2.00"), date(2025, 3, 20)) is None


@settings(max_examples=60, deadline=None)
@given(days=st.integers(1, 90), quantity=st.decimals(Decimal("0.001"), Decimal("9999.999"), places=3),
       fill=st.integers(0, 99), refills=st.integers(0, 99), cents=st.integers(0, 999_999),
       fee=st.integers(0, 9_999), copay=st.integers(0, 20_000), rx=st.integers(1, 999_999_999))
def test_b1_and_claim_carry_the_same_facts(days: int, quantity: Decimal, fill: int, refills: int, cents: int,
                                           fee: int, copay: int, rx: int) -> None:
    """Whatever the fill, the B1 round-trips through the codec and the Claim states the same facts."""
    fill_resource = dispense(fill, "2025-03-19", days, 1, "47")
    fill_resource["quantity"] = {"value": float(quantity), "unit": "EA"}
    fill_resource["identifier"] = [{"system": RX_SYSTEM, "value": str(rx)}]
    request = {**REQUEST, "dispenseRequest": {"numberOfRepeatsAllowed": refills}}
    costs = Costs(Decimal(cents) / 100, Decimal(fee) / 100, Decimal(cents + fee) / 100, copay=Decimal(copay) / 100)
    built = build(ClaimInputs(fill_resource, request, PATIENT, coverage(), PHARMACY, PRESCRIBER), costs)
    again = parse(built.data)
    assert again == built.transmission
    claim = again.transactions[0].segment("07")
    pricing = again.transactions[0].segment("11")
    assert claim is not None and pricing is not None
    assert claim.number("D5") == days == info_value(built.claim, "dayssupply")["value"]
    assert claim.quantity("E7") == quantity
    assert Decimal(str(built.claim["item"][0]["quantity"]["value"])) == quantity
    assert claim.number("D3") == fill and claim.number("DF") == refills
    assert int(claim.get("D2") or "0") == rx
    assert pricing.money("DU") == Decimal(str(built.claim["total"]["value"])) == built.pricing.gross_amount_due
    assert pricing.money("DC") == Decimal(fee) / 100
    assert built.pricing.patient_pay <= min(Decimal(copay) / 100, built.pricing.gross_amount_due)
    assert claim.get("HD") is None and claim.get("HF") is None and claim.get("HG") is None


def test_codes_we_emit_are_defined_in_conformance() -> None:
    """Every supportingInfo category, pricing component and Task input we emit is in our CodeSystems, and the
    operations' definitions are valid R4."""
    import json
    from datetime import date

    from interop.claims.building import INFO_SYSTEM, PRICE_SYSTEM
    from interop.claims.reconcile import TASK_SYSTEM, reconcile

    folder = Path(__file__).resolve().parent.parent / "conformance"

    def codes(name: str) -> set[str]:
        resource = json.loads((folder / f"CodeSystem-{name}.json").read_text())
        assert_valid(resource)
        return {c["code"] for c in resource["concept"]}

    built = build(inputs(SHORT_FILL), SHORT_COSTS)
    emitted = {c["code"] for e in built.claim["supportingInfo"] for c in e["category"]["coding"]
               if c["system"] == INFO_SYSTEM}
    assert emitted <= codes("claim-information")
    components = {c["code"] for d in built.claim["item"][0]["detail"] for c in d["productOrService"]["coding"]
                  if c["system"] == PRICE_SYSTEM}
    assert components == codes("ncpdp-pricing-component")
    task = reconcile(built.claim, _paid(built, "47.00", "0.87"), date(2025, 3, 20))
    assert task is not None
    used = {c["code"] for i in task["input"] for c in i["type"]["coding"] if c["system"] == TASK_SYSTEM}
    used |= {c["code"] for c in task["code"]["coding"]}
    assert used <= codes("claims-task")
    for name in ("build-claim", "submit", "reverse"):
        assert_valid(json.loads((folder / f"OperationDefinition-{name}.json").read_text()))
