"""ACKs: AA, AE with ERR naming segment/occurrence/field and the table 0357 code, AR for unparseable input;
hl7apy (the reference implementation of the grammar) reads every ACK we write back."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message as hl7apy_parse

from adapters.hl7v2 import ParseError, parse_message
from adapters.hl7v2.ack import build_ack, classify
from adapters.hl7v2.grammar import check_grammar
from adapters.hl7v2.mapping import MappingError, to_bundle
from tests.test_hl7v2_map import rds

NOW = datetime(2025, 1, 5, 12, 0, tzinfo=UTC)


def _map(text: str) -> Exception | None:
    try:
        to_bundle(parse_message(text))
    except (ParseError, MappingError) as exc:
        return exc
    return None


def test_aa_echoes_header_and_control_id() -> None:
    text = rds()
    ack = build_ack(parse_message(text), None, now=NOW)
    assert ack == (
        "MSH|^~\\&|EHR|HOSP|PHARMSYS|RX01|20250105120000+0000||ACK^O13^ACK|AM2|P|2.5.1\r"
        "MSA|AA|M2\r"
    )
    parsed = hl7apy_parse(ack.replace("\r", "\r"), validation_level=VALIDATION_LEVEL.STRICT)
    assert parsed.msa.msa_1.value == "AA" and parsed.msa.msa_2.value == "M2"


def test_ae_names_segment_occurrence_and_field() -> None:
    text = rds(dqty="ninety")
    error = _map(text)
    assert isinstance(error, MappingError)
    ack = build_ack(text, error, now=NOW)
    msg = parse_message(ack)
    assert msg["MSA"][0].get(1) == "AE" and msg["MSA"][0].get(2) == "M2"
    err = msg["ERR"][0]
    assert (err.get(2, 1), err.get(2, 2), err.get(2, 3)) == ("RXD", "1", "4")
    assert (err.get(3, 1), err.get(3, 3), err.get(4)) == ("102", "HL70357", "E")
    assert "'ninety' is not a number" in err.get(8)
    parsed = hl7apy_parse(ack, validation_level=VALIDATION_LEVEL.STRICT)
    assert parsed.err.err_3.err_3_1.value == "102"


def test_second_occurrence_is_counted_per_segment_name() -> None:
    text = rds() + "ORC|RE||RX200^RX01\rRXD|1||20250105|30|TAB|||0\r"
    error = _map(text)
    assert isinstance(error, MappingError)
    err = parse_message(build_ack(text, error, now=NOW))["ERR"][0]
    assert err.get(2) == "RXD" and err.get(2, 2) == "2" and err.get(2, 3) == "2"


def test_ar_for_unparseable_and_unsupported() -> None:
    garbage = "MSH|^~\\&|A|B|C|D|2025||RDS^O13|C77|P|2.5.1\rP!D|x\r"
    error = _map(garbage)
    assert isinstance(error, ParseError)
    msg = parse_message(build_ack(garbage, error, now=NOW))
    assert msg["MSA"][0].get(1) == "AR" and msg["MSA"][0].get(2) == "C77"
    assert msg["ERR"][0].get(3) == "100"
    unsupported = rds().replace("RDS^O13^RDS_O13", "MFN^M01^MFN_M01")
    msg = parse_message(build_ack(unsupported, _map(unsupported), now=NOW))
    assert msg["MSA"][0].get(1) == "AR" and msg["ERR"][0].get(3) == "200"
    nothing = parse_message(build_ack(b"\x00\xff not hl7", None, now=NOW))
    assert nothing["MSA"][0].get(1) == "AR" and nothing.msh.get(3) == "MEDSYNC-INTEROP"


def test_old_versions_use_err_1() -> None:
    text = rds(dqty="x").replace("2.5.1", "2.3")
    ack = build_ack(text, _map(text), now=NOW)
    err = parse_message(ack)["ERR"][0]
    assert err.get(1) == "RXD" and err.get(1, 2) == "1" and err.get(1, 3) == "4" and err.get(1, 4, 1) == "102"
    parsed = hl7apy_parse(ack, validation_level=VALIDATION_LEVEL.TOLERANT)
    assert parsed.msa.msa_1.value == "AE" and parsed.err.err_1.value.startswith("RXD^1^4")


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (None, ("AA", "0")),
        (ParseError("x"), ("AR", "100")),
        (ParseError("x", segment="MSH", field=2), ("AR", "102")),
        (MappingError("x", code="101"), ("AE", "101")),
        (MappingError("x", code="201"), ("AR", "201")),
        (RuntimeError("store down"), ("AE", "207")),
    ],
)
def test_classify(error: Exception | None, code: tuple[str, str]) -> None:
    assert classify(error) == code


def test_strict_grammar_check_names_segment_and_field() -> None:
    good = (
        "MSH|^~\\&|A|B|C|D|20250105||ADT^A01^ADT_A01|1|P|2.5\rEVN|A01|20250105\r"
        "PID|1||MRN1^^^HOSP^MR||DOE^JANE\rPV1|1|O\r"
    )
    check_grammar(parse_message(good))
    with pytest.raises(ParseError) as caught:
        check_grammar(parse_message(good.replace("EVN|A01|20250105\r", "")))
    assert caught.value.segment is not None
    with pytest.raises(ParseError) as caught:
        check_grammar(parse_message(good.replace("ADT^A01^ADT_A01", "RDE^O01")))
    assert (caught.value.segment, caught.value.field) == ("MSH", 9)
