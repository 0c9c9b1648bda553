"""Every SCRIPT file in ../shared/corpus/ncpdp-script converts to valid R4, or fails with its documented error.

The fixtures known to be unusable are listed below with the error they must raise (docs/script-mapping.md
§ Refused input); anything else must convert, and every resource must pass the official R4 JSON schema.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.script import convert
from adapters.script.errors import (
    AmbiguousMessageError,
    LegacyVersionError,
    MissingElementError,
    ScriptError,
)
from tests.conftest import corpus_files
from tests.fhirschema import assert_valid

pytestmark = pytest.mark.corpus

FILES = corpus_files("ncpdp-script", "*/*.xml")

EXPECTED_ERRORS: dict[str, tuple[type[ScriptError], str]] = {
    # SCRIPT 10.6 is retired; its shapes differ (Refills/Qualifier, Directions).
    "legacy-version.xml": (LegacyVersionError, "Message/@version: SCRIPT version 10.6 is retired"),
    # A CancelRx must name the prescription it cancels; this one has neither key.
    "cancelrx-request.xml": (MissingElementError,
                             "Message/Header: neither PrescriberOrderNumber nor RelatesToMessageID"),
    # Status and Error side by side in one Body.
    "response-ambiguous.xml": (AmbiguousMessageError, "Body holds 2 transactions (Status, Error)"),
    # Approved and Denied in one Response.
    "rxrenewal-response-ambiguous.xml": (AmbiguousMessageError, "Response carries 2 outcomes (Approved, Denied)"),
    # A Response with only a Note.
    "rxrenewal-response-no-outcome.xml": (MissingElementError, "Response carries no outcome"),
    # An RxFill without its required FillStatus (cosyte files it as "unsupported").
    "unsupported-transaction.xml": (MissingElementError, "Message/Body/RxFill/FillStatus"),
}

EXPECTED_TYPES = {
    "newrx": "MedicationRequest",
    "sample-newrx": "MedicationRequest",
    "surescripts": "MedicationRequest",
    "cancelrx-response": "Task",
    "rxrenewal": "Task",
    "rxchange": "Task",
    "status": "Communication",
    "verify": "Communication",
    "error": "Communication",
}


def test_corpus_is_present(corpus: Path) -> None:
    assert len(FILES) >= 30, f"expected the 33 SCRIPT samples under {corpus / 'ncpdp-script'}"
    names = {path.name for path in FILES}
    assert set(EXPECTED_ERRORS) <= names


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_corpus_file(path: Path, corpus: Path) -> None:
    data = path.read_bytes()
    expected = EXPECTED_ERRORS.get(path.name)
    if expected is not None:
        error, message = expected
        with pytest.raises(error) as caught:
            convert(data)
        assert message in str(caught.value)
        return
    conversion = convert(data)
    bundle = conversion.bundle
    assert conversion.version in ("2017071", "2023011")
    assert_valid(bundle)
    types = set()
    for entry in bundle["entry"]:
        assert_valid(entry["resource"])
        types.add(entry["resource"]["resourceType"])
    prefix = next(key for key in sorted(EXPECTED_TYPES, key=len, reverse=True) if path.name.startswith(key))
    assert EXPECTED_TYPES[prefix] in types
    assert convert(data).bundle == bundle


def test_no_version_fixture_reads_as_default_with_a_warning(corpus: Path) -> None:
    conversion = convert((corpus / "ncpdp-script/cosyte-ncpdp/newrx-no-version.xml").read_bytes())
    assert conversion.version == "2017071"
    assert conversion.warnings[0].startswith("Message carries no version")


def test_2023011_fixture_is_read_as_2023011(corpus: Path) -> None:
    conversion = convert((corpus / "ncpdp-script/cosyte-ncpdp/surescripts-version-2023011.xml").read_bytes())
    assert (conversion.version, conversion.transaction) == ("2023011", "NewRx")


def test_realistic_2017071_new_rx(corpus: Path) -> None:
    bundle = convert((corpus / "ncpdp-script/dgoradia-ncpdp/sample-newrx-qty-float.xml").read_bytes()).bundle
    resources = {e["resource"]["resourceType"]: e["resource"] for e in bundle["entry"]}
    request = resources["MedicationRequest"]
    assert request["dispenseRequest"]["quantity"]["value"] == 42.5
    assert request["dispenseRequest"]["quantity"]["code"] == "C48542"
    assert request["dispenseRequest"]["numberOfRepeatsAllowed"] == 0
    assert request["identifier"][0]["value"] == "515537246945306"
    assert resources["Organization"]["identifier"][0]["value"] == "6557744"
    codes = {c["system"]: c["code"] for c in resources["Medication"]["code"]["coding"]}
    assert codes == {"http://hl7.org/fhir/sid/ndc": "62135012230",
                     "http://www.nlm.nih.gov/research/umls/rxnorm": "312087"}


def test_sig_disagreement_keeps_both_verbatim(corpus: Path) -> None:
    bundle = convert((corpus / "ncpdp-script/cosyte-ncpdp/newrx-sig-disagreement.xml").read_bytes()).bundle
    request = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "MedicationRequest")
    dosage = request["dosageInstruction"][0]
    assert dosage["text"] == "Take 2 tablets by mouth at bedtime."
    assert dosage["timing"] == {"code": {"text": "every morning"}}
    assert dosage["doseAndRate"][0]["doseQuantity"]["value"] == 1
