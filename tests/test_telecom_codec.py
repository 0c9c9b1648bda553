"""The D.0 codec on hand-written transmissions: overpunch, headers, repeats, error offsets, version guard."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from adapters.telecom import (
    RequestHeader,
    ResponseHeader,
    Segment,
    TelecomError,
    Transmission,
    parse,
    parse_lenient,
    reversal,
    serialize,
)
from adapters.telecom.overpunch import (
    OverpunchError,
    decode_money,
    decode_quantity,
    encode_money,
    encode_quantity,
)

RS, FS, GS = "\x1e", "\x1c", "\x1d"


def seg(segment_id: str, *items: str) -> str:
    return RS + FS + "AM" + segment_id + "".join(FS + item for item in items)


HEADER = "999999D0B1MEDSYNC   1011234567893     20250319SYNTHSW001"
B1 = (HEADER + seg("04", "C2SYNTH0001", "C1GRP001", "C301") + seg("01", "C419500101", "C52", "CAJANE", "CBDOE")
      + GS + seg("07", "EM1", "D2000123456", "E103", "D700000123401", "E726000", "D302", "D513", "NX2", "DK47",
                 "DK20", "28EA")
      + seg("11", "D9819{", "DC20{", "DU839{")
      + seg("08", "7E1", "E4ER", "E5M0", "E61B", "7E2", "E4DD", "E5R0", "E61G")
      + seg("03", "EZ01", "DB1245319599"))
RESPONSE = ("D0B11A011234567893     20250319" + GS + seg("21", "ANR", "FA3", "FB79", "FB76", "FB88")
            + seg("22", "EM1", "D2000123456"))


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("203G", "20.37"),
        ("819{", "81.90"),
        ("218G", "21.87"),
        ("10177E", "1017.75"),
        ("0000000{", "0.00"),
        ("20{", "2.00"),
        ("1100{", "110.00"),
        ("596C", "59.63"),
        ("52N", "-5.25"),
        ("100}", "-10.00"),
        ("1J", "-0.11"),
        ("R", "-0.09"),
        ("I", "0.09"),
    ],
)
def test_overpunch_money_table(raw: str, value: str) -> None:
    decoded = decode_money(raw)
    assert isinstance(decoded, Decimal)
    assert decoded == Decimal(value)
    assert decode_money(encode_money(decoded)) == decoded


def test_every_overpunch_character_carries_its_digit_and_sign() -> None:
    for digit, (plus, minus) in enumerate(zip("{ABCDEFGHI", "}JKLMNOPQR", strict=True)):
        assert decode_money("12" + plus) == Decimal(f"1.2{digit}")
        assert decode_money("12" + minus) == -Decimal(f"1.2{digit}")


def test_negative_zero_is_zero_and_encoding_is_canonical() -> None:
    assert decode_money("00}") == 0
    assert not decode_money("00}").is_signed()
    assert encode_money(Decimal("20.37")) == "203G"
    assert encode_money(Decimal("-5.25")) == "52N"
    assert encode_money(Decimal("0")) == "00{"
    assert encode_money(Decimal("2")) == "20{"
    assert encode_money(Decimal("0.05")) == "00E"


@pytest.mark.parametrize(("raw", "value"), [("26000", "26.000"), ("60000", "60"), ("0500", "0.5"), ("1", "0.001")])
def test_quantities_have_three_implied_decimals(raw: str, value: str) -> None:
    assert decode_quantity(raw) == Decimal(value)
    assert encode_quantity(Decimal(value)) == raw.rjust(4, "0")


@pytest.mark.parametrize(
    ("call", "fragment"),
    [
        (lambda: decode_money("203X"), "'203X'"),
        (lambda: decode_money("2A3G"), "'2A3G'"),
        (lambda: decode_money(""), "empty"),
        (lambda: decode_quantity("26.0"), "'26.0'"),
        (lambda: decode_quantity("-5"), "'-5'"),
        (lambda: encode_money(Decimal("1.234")), "1.234"),
        (lambda: encode_money(Decimal("1000000.00")), "1000000.00"),
        (lambda: encode_money(20.37), "20.37"),  # type: ignore[arg-type]
        (lambda: encode_quantity(Decimal("-1")), "-1"),
        (lambda: encode_quantity(Decimal("0.0005")), "0.0005"),
        (lambda: encode_money(Decimal("NaN")), "NaN"),
    ],
)
def test_bad_numbers_are_errors_that_name_the_value(call: object, fragment: str) -> None:
    with pytest.raises(OverpunchError, match=fragment.replace(".", r"\.").replace("(", r"\(")):
        call()  # type: ignore[operator]


def test_request_header_fields() -> None:
    tx = parse(B1.encode())
    header = tx.header
    assert isinstance(header, RequestHeader)
    assert (header.bin, header.version, header.transaction_code, header.pcn) == ("999999", "D0", "B1", "MEDSYNC")
    assert (header.transaction_count, header.provider_id_qualifier, header.provider_id) == (1, "01", "1234567893")
    assert (header.date_of_service, header.software_vendor) == ("20250319", "SYNTHSW001")
    assert header.service_date == date(2025, 3, 19)
    assert [s.id for s in tx.segments] == ["04", "01"]
    assert [s.id for s in tx.transactions[0].segments] == ["07", "11", "08", "03"]
    assert not tx.is_response


def test_response_header_fields() -> None:
    tx = parse(RESPONSE.encode())
    header = tx.header
    assert isinstance(header, ResponseHeader)
    assert (header.version, header.transaction_code, header.transaction_count, header.response_status) == (
        "D0", "B1", 1, "A")
    assert (header.provider_id_qualifier, header.provider_id, header.date_of_service) == ("01", "1234567893",
                                                                                         "20250319")
    assert tx.is_response
    assert tx.segments == []


def test_typed_accessors() -> None:
    claim = parse(B1.encode()).transactions[0].segment("07")
    assert claim is not None
    assert claim.name == "Claim"
    assert claim.get("D2") == "000123456"
    assert claim.get("ZZ") is None
    assert claim.quantity("E7") == Decimal("26.000")
    assert claim.number("D3") == 2
    assert claim.number("D5") == 13
    pricing = parse(B1.encode()).transactions[0].segment("11")
    assert pricing is not None
    assert pricing.money("D9") == Decimal("81.90")
    assert pricing.money("DU") == Decimal("83.90")
    assert pricing.money("DQ") is None
    patient = parse(B1.encode()).segment("01")
    assert patient is not None
    assert patient.date_value("C4") == date(1950, 1, 1)


def test_repeating_fields_survive_parse_and_serialize() -> None:
    tx = parse(B1.encode())
    claim, _, dur, _ = tx.transactions[0].segments
    assert claim.get_all("DK") == ["47", "20"]
    assert dur.get_all("7E") == ["1", "2"]
    assert dur.get_all("E4") == ["ER", "DD"]
    assert [fid for fid, _ in dur.fields] == ["7E", "E4", "E5", "E6"] * 2
    rejects = parse(RESPONSE.encode()).transactions[0].segment("21")
    assert rejects is not None
    assert rejects.get_all("FB") == ["79", "76", "88"]
    assert serialize(tx) == B1.encode()
    assert serialize(parse(RESPONSE.encode())) == RESPONSE.encode()


def test_builder_writes_the_same_bytes_as_the_wire() -> None:
    built = Transmission(
        header=RequestHeader(bin="999999", transaction_code="B1", pcn="MEDSYNC", provider_id="1234567893",
                             date_of_service="20250319", software_vendor="SYNTHSW001"),
        segments=[
            Segment("04", [("C2", "SYNTH0001"), ("C1", "GRP001"), ("C3", "01")]),
            Segment("01", [("C4", date(1950, 1, 1)), ("C5", "2"), ("CA", "JANE"), ("CB", "DOE")]),
        ],
        transactions=[[
            Segment("07", [("EM", "1"), ("D2", "000123456"), ("E1", "03"), ("D7", "00000123401"),
                           ("E7", Decimal("26")), ("D3", 2), ("D5", 13), ("NX", 2), ("DK", "47"), ("DK", "20"),
                           ("28", "EA")]),
            Segment("11", [("D9", Decimal("81.90")), ("DC", Decimal("2.00")), ("DU", Decimal("83.90"))]),
            Segment("08", [("7E", 1), ("E4", "ER"), ("E5", "M0"), ("E6", "1B"), ("7E", 2), ("E4", "DD"),
                           ("E5", "R0"), ("E6", "1G")]),
            Segment("03", [("EZ", "01"), ("DB", "1245319599")]),
        ]],
    )
    assert serialize(built) == B1.encode()
    assert parse(serialize(built)) == built


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ([("D9", 20.37)], "409-D9"),
        ([("D2", "12\x1c3")], "402-D2"),
        ([("D9", Decimal("1.001"))], "409-D9"),
        ([("D3", -1)], "403-D3"),
        ([("CA", date(2025, 1, 1))], "310-CA"),
        ([("D", "1")], "field id"),
    ],
)
def test_builder_rejects_values_the_field_cannot_carry(fields: list[tuple[str, object]], fragment: str) -> None:
    with pytest.raises(TelecomError, match=fragment):
        Segment("07", fields)  # type: ignore[arg-type]


def test_serializer_checks_count_and_header_widths() -> None:
    header = RequestHeader(bin="999999", transaction_code="B1", provider_id="1", date_of_service="20250319")
    claim = Segment("07", [("D2", "1")])
    with pytest.raises(TelecomError, match="109-A9"):
        serialize(Transmission(header, [], [[claim], [claim]]))
    wide = RequestHeader(bin="9999999", transaction_code="B1", provider_id="1", date_of_service="20250319")
    with pytest.raises(TelecomError, match="101-A1"):
        serialize(Transmission(wide, [], [[claim]]))


def test_up_to_four_transactions() -> None:
    claim = seg("07", "EM1", "D21")
    four = HEADER.replace("MEDSYNC   1", "MEDSYNC   4") + (GS + claim) * 4
    assert len(parse(four.encode()).transactions) == 4
    five = HEADER.replace("MEDSYNC   1", "MEDSYNC   5") + (GS + claim) * 5
    with pytest.raises(TelecomError, match="109-A9"):
        parse(five.encode())


@pytest.mark.parametrize(
    ("text", "offset", "segment", "field", "fragment"),
    [
        (HEADER + seg("04", "C2X") + GS + seg("07", "EM1", "D", "D21"), 78, "07", None, "shorter"),
        (HEADER + seg("04", "C2X") + GS + RS + FS + "AX07", 68, None, "111-AM", "FS AM"),
        (HEADER + seg("04", "C2X") + seg("07", "EM1"), 68, "07", None, "before the first GS"),
        (HEADER + seg("04", "C2X") + GS + seg("01", "CAX"), 69, "01", None, "inside a transaction"),
        (HEADER + seg("04", "C2X") + GS + seg("21", "ANP"), 69, "21", "111-AM", "not a request segment"),
        (HEADER + "X" + seg("04"), 56, None, None, "RS"),
        (HEADER[:40], 40, None, None, "40 bytes"),
        (HEADER.replace("MEDSYNC   1", "MEDSYNC   2") + GS + seg("07", "D21"), 20, None, "109-A9", "found 1"),
        (HEADER + seg("04") + GS, 62, None, None, "empty transaction"),
    ],
)
def test_errors_name_offset_segment_and_field(text: str, offset: int, segment: str | None, field: str | None,
                                              fragment: str) -> None:
    with pytest.raises(TelecomError, match=fragment) as caught:
        parse(text.encode())
    assert caught.value.offset == offset
    assert caught.value.segment == segment
    assert caught.value.field == field
    assert f"byte {offset}" in str(caught.value)


def test_accessor_errors_name_the_field_offset() -> None:
    text = HEADER + seg("04", "C2X") + GS + seg("07", "EM1", "E72.5") + seg("11", "D9819X")
    tx = parse(text.encode())
    claim, pricing = tx.transactions[0].segments
    with pytest.raises(TelecomError) as caught:
        claim.quantity("E7")
    assert (caught.value.offset, caught.value.segment, caught.value.field) == (text.index("E72.5"), "07", "442-E7")
    with pytest.raises(TelecomError, match="819X") as money:
        pricing.money("D9")
    assert (money.value.offset, money.value.field) == (text.index("D9819X"), "409-D9")


def test_version_guard() -> None:
    f6 = "99999999F6B1" + HEADER[10:]
    with pytest.raises(TelecomError, match=r"F6.*8-byte IIN") as caught:
        parse(f6.encode())
    assert caught.value.field == "102-A2"
    with pytest.raises(TelecomError, match="F6"):
        parse(("F6" + RESPONSE[2:]).encode())
    with pytest.raises(TelecomError, match="must be D0"):
        parse(HEADER.replace("D0B1", "51B1").encode())
    with pytest.raises(TelecomError, match="Batch"):
        parse(b"\x0200T777777777               1213   201611281210T11200787505               \x03")


def test_lenient_reads_simplified_framing_and_lists_repairs() -> None:
    simplified = (HEADER + "AM01" + FS + "CAJANE" + RS + "AM04" + FS + "C2X" + RS + "AM07" + FS + "D21" + RS
                  + "AM03" + FS + "EZ01\r\n")
    with pytest.raises(TelecomError):
        parse(simplified.encode())
    tx, repairs = parse_lenient(simplified.encode())
    described = [r.description for r in repairs]
    assert any("GS before transaction-level Claim" in d for d in described)
    assert any("FS before segment id 'AM04'" in d for d in described)
    assert any("trailing" in d for d in described)
    assert [s.id for s in tx.segments] == ["01", "04"]
    assert [s.id for s in tx.transactions[0].segments] == ["07", "03"]
    assert parse(serialize(tx)) == tx
    canonical, none = parse_lenient(B1.encode())
    assert none == []
    assert canonical == parse(B1.encode())


def test_lenient_splits_claims_only_where_the_gs_was_missing() -> None:
    no_gs = HEADER.replace("MEDSYNC   1", "MEDSYNC   2") + seg("04", "C2X") + seg("07", "D21") + seg("07", "D22")
    tx, repairs = parse_lenient(no_gs.encode())
    assert [[s.get("D2") for s in t.segments] for t in tx.transactions] == [["1"], ["2"]]
    assert sum("inserted GS" in r.description for r in repairs) == 2
    one_group = HEADER + seg("04", "C2X") + GS + seg("07", "D21") + seg("07", "D22")
    kept, none = parse_lenient(one_group.encode())
    assert none == []
    assert len(kept.transactions) == 1


def test_reversal_keeps_rx_date_and_every_claim() -> None:
    four = parse((HEADER.replace("MEDSYNC   1", "MEDSYNC   2") + seg("04", "C2X", "C1G", "C301") + GS
                  + seg("07", "EM1", "D2000000042", "E103", "D7123", "E71000", "D300") + GS
                  + seg("07", "EM1", "D243", "D301") + seg("11", "D9100{")).encode())
    b2 = reversal(four)
    assert b2.header.transaction_code == "B2"
    assert b2.header.date_of_service == "20250319"
    assert [[s.fields for s in t.segments] for t in b2.transactions] == [
        [(("EM", "1"), ("D2", "000000042"), ("E1", "03"), ("D7", "123"), ("D3", "00"))],
        [(("EM", "1"), ("D2", "43"), ("D3", "01"))]]
    assert b2.segments[0].fields == (("C2", "X"), ("C1", "G"))
    assert parse(serialize(b2)) == b2
    with pytest.raises(TelecomError, match="103-A3"):
        reversal(b2)
