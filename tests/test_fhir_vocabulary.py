"""The shared FHIR vocabulary: ids from business keys and NDC normalization."""

from __future__ import annotations

import pytest

from interop.fhir.ids import business_id, is_valid_id
from interop.fhir.systems import identifier_system, normalize_ndc


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0071-0156-23", "00071015623"),  # 4-4-2
        ("12345-678-90", "12345067890"),  # 5-3-2
        ("12345-6789-1", "12345678901"),  # 5-4-1
        ("12345-6789-01", "12345678901"),  # 5-4-2
        ("00071015623", "00071015623"),
        (" 00071015623 ", "00071015623"),
        ("0071015623", None),  # unhyphenated 10 digits: ambiguous
        ("1234-56789-0", None),
        ("", None),
        ("١٢٣٤٥٦٧٨٩٠١", None),  # Arabic-Indic digits are not an NDC
        ("12345-６７８９-01", None),  # nor are full-width ones
    ],
)
def test_normalize_ndc(raw: str, expected: str | None) -> None:
    assert normalize_ndc(raw) == expected


def test_business_id_is_stable_and_insensitive_to_case_and_spacing() -> None:
    a = business_id("MedicationRequest", "RX01", "12345")
    assert a == business_id("MedicationRequest", " rx01 ", "12345")
    assert a != business_id("MedicationRequest", "RX01", "12346")
    assert a != business_id("MedicationDispense", "RX01", "12345")
    assert is_valid_id(a)


def test_business_id_refuses_an_empty_key() -> None:
    with pytest.raises(ValueError, match="empty part"):
        business_id("Patient", "HOSP", "")


def test_identifier_system_is_a_safe_uri() -> None:
    assert identifier_system("rx-number", "Main St Pharmacy #4") == (
        "https://medsync-interop.org/fhir/sid/rx-number/main-st-pharmacy-4"
    )


def test_an_id_with_a_trailing_newline_is_not_valid() -> None:
    assert not is_valid_id("abc\n")
    assert is_valid_id("abc")
