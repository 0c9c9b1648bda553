"""ER7 parsing: delimiters from MSH-1/MSH-2, escapes, repetitions, sub-components, terminators, batches, errors."""

from __future__ import annotations

import pytest

from adapters.hl7v2 import Delimiters, ParseError, parse_batch, parse_message

RDS = (
    "MSH|^~\\&|PHARMSYS|RX01^1.2.3^ISO|EHR|HOSP|20250105093000-0500||RDS^O13^RDS_O13|MSG1|P|2.5.1\r"
    "PID|1||MRN1^^^HOSP^MR~999-88-7777^^^USSSA^SS||DOE^JANE^Q||19600101|F\r"
    "ORC|RE|PL1^EHR|RX77^RX01\r"
    "RXD|2|00071015623^Lipitor 20 MG^NDC|20250105|90|TAB^tablet|||3\r"
    "ZRX|note|28\r"
)


def test_fields_components_repetitions_and_subcomponents() -> None:
    msg = parse_message(RDS)
    assert msg.message_type == ("RDS", "O13", "RDS_O13")
    assert msg.control_id == "MSG1" and msg.version == "2.5.1"
    msh = msg.msh
    assert msh.get(1) == "|" and msh.get(2) == "^~\\&"
    assert msh.get(4, 2) == "1.2.3"
    pid = msg["PID"][0]
    assert pid.get(3) == "MRN1" and pid.get(3, 4) == "HOSP"
    assert pid.get(3, 1, 1, rep=2) == "999-88-7777"
    assert [r.get(5) for r in pid.repetitions(3)] == ["MR", "SS"]
    assert pid.get(5, 2) == "JANE" and pid.get(5, 9) == "" and pid.get(40) == ""
    rxd = msg["RXD"][0]
    assert rxd.get(8) == "3" and rxd.field(2) == "00071015623^Lipitor 20 MG^NDC"
    assert msg["ZRX"][0].get(2) == "28"
    assert msg["AL1"] == [] and msg.first("AL1") is None and "ZRX" in msg


def test_subcomponents_and_nested_parts() -> None:
    msg = parse_message("MSH|^~\\&|A|B|C|D|2025||ADT^A04|1|P|2.5\rPID|1||ID1^^^test1&2.16.1&ISO^MR||X\rTQ1|1||BID|||30^D&day&ISO")
    pid = msg.first("PID")
    assert pid is not None
    assert pid.get(3, 4, 1) == "test1" and pid.get(3, 4, 2) == "2.16.1" and pid.get(3, 4, 3) == "ISO"
    assert pid.get(3, 4, 4) == ""
    tq1 = msg["TQ1"][0]
    units = tq1.composite(6).part(2)
    assert units.get(1) == "D" and units.get(2) == "day" and units.get(3) == "ISO"


def test_custom_delimiters_from_msh() -> None:
    text = "MSH#!*%@#APP#FAC!9.9!ISO#R#F#2025##ADT!A04#7#P#2.4\rPID#1##A1!!!AUTH@X~ignored*B2##N%F%ame!G%S%iven"
    msg = parse_message(text)
    assert msg.delimiters == Delimiters("#", "!", "*", "%", "@")
    pid = msg["PID"][0]
    assert pid.get(3) == "A1" and pid.get(3, 4, 2) == "X~ignored"
    assert pid.get(3, 1, 1, rep=2) == "B2"
    assert pid.get(5) == "N#ame" and pid.get(5, 2) == "G!iven"
    assert msg.msh.get(4, 2) == "9.9"


@pytest.mark.parametrize(
    ("escaped", "plain"),
    [
        ("a\\F\\b", "a|b"),
        ("a\\S\\b", "a^b"),
        ("a\\T\\b", "a&b"),
        ("a\\R\\b", "a~b"),
        ("a\\E\\b", "a\\b"),
        ("\\X41424344\\", "ABCD"),
        ("\\XC3A9\\t\\XE9\\", "ét\ufffd"),
        ("line1\\.br\\line2", "line1\nline2"),
        ("\\H\\bold\\N\\", "bold"),
        ("no escape", "no escape"),
        ("dangling \\F", "dangling \\F"),
    ],
)
def test_escape_sequences(escaped: str, plain: str) -> None:
    msg = parse_message(f"MSH|^~\\&|A|B|C|D|2025||ADT^A08|1|P|2.5\rNTE|1||{escaped}")
    assert msg["NTE"][0].get(3) == plain


def test_escaped_delimiters_do_not_split() -> None:
    msg = parse_message("MSH|^~\\&|A|B|C|D|2025||ADT^A08|1|P|2.5\rPID|1||ID\\S\\1^^^AUTH\\T\\X~ID2")
    pid = msg["PID"][0]
    assert pid.get(3) == "ID^1" and pid.get(3, 4) == "AUTH&X" and len(pid.repetitions(3)) == 2


@pytest.mark.parametrize("terminator", ["\r", "\n", "\r\n"])
def test_terminators_give_the_same_message(terminator: str) -> None:
    msg = parse_message(RDS.replace("\r", terminator))
    reference = parse_message(RDS)
    assert [s.fields for s in msg.segments] == [s.fields for s in reference.segments]
    assert [s.line for s in msg.segments] == [1, 2, 3, 4, 5]


def test_bom_mllp_framing_blank_lines_and_latin1() -> None:
    data = b"\xef\xbb\xbf\x0b" + RDS.replace("\r", "\r\n\r\n").encode() + b"\x1c\r"
    assert parse_message(data).first("RXD") is not None
    latin = ("MSH|^~\\&|A|B|C|D|2025||ADT^A08|1|P|2.3|||||||8859/1\rPID|1||X||M\xfcller").encode("latin-1")
    assert parse_message(latin)["PID"][0].get(5) == "Müller"


def test_trailing_empty_fields_and_unknown_z_segments() -> None:
    msg = parse_message("MSH|^~\\&|A|B|C|D|2025||ADT^A08|1|P|2.5|||||\rPID|1||X|||||\rZZ1|a||b|||")
    assert len(msg["PID"][0]) == 3 and msg["PID"][0].get(7) == ""
    assert msg["ZZ1"][0].fields == ["ZZ1", "a", "", "b"]


@pytest.mark.parametrize("version", ["2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6", "2.7", "2.7.1", "2.8"])
def test_versions(version: str) -> None:
    encoding = "^~\\&#" if version >= "2.7" else "^~\\&"
    msg = parse_message(f"MSH|{encoding}|A|B|C|D|2025||RDE^O11|1|P|{version}\rPID|1||X")
    assert msg.version == version and msg.delimiters.subcomponent == "&"


def test_doubled_escape_character_artifact() -> None:
    msg = parse_message("MSH|^~\\\\&|SE050|050|PACS|050|20120912011230||ADT^A01|102|T|2.6\rPID|1||PID1234^5^M11")
    assert msg.delimiters == Delimiters() and msg.first("PID") is not None


def test_batch_envelopes_and_streams() -> None:
    one = RDS
    two = RDS.replace("MSG1", "MSG2")
    batch = "FHS|^~\\&|PHARMSYS\rBHS|^~\\&|PHARMSYS\r" + one + two + "BTS|2\rFTS|1\r"
    messages = parse_batch(batch.encode())
    assert [m.control_id for m in messages] == ["MSG1", "MSG2"]
    assert messages[1].line == 8 and messages[1].msh.line == 8
    assert [m.control_id for m in parse_batch(one + two)] == ["MSG1", "MSG2"]
    with pytest.raises(ParseError, match="2 messages"):
        parse_message(one + two)


def test_round_trip_to_er7() -> None:
    msg = parse_message(RDS)
    assert msg.to_er7() + "\r" == RDS


def test_delimiters_encode_decode_round_trip() -> None:
    d = Delimiters()
    text = "a|b^c~d\\e&f"
    assert d.decode(d.encode(text)) == text


@pytest.mark.parametrize(
    ("text", "segment", "line", "field", "reason"),
    [
        ("", None, None, None, "no MSH"),
        ("PID|1||X\rMSH|^~\\&|A", "PID", 1, None, "outside a message"),
        ("MSH|^~", "MSH", 1, None, "too short"),
        ("MSH|^^\\&|A|B|C|D|2025||ADT^A01|1|P|2.5", "MSH", 1, 2, "encoding characters"),
        ("MSHA^~\\&|A|B|C|D|2025||ADT^A01|1|P|2.5", "MSH", 1, 1, "field separator"),
        ("MSH|^~\\&|A|B|C|D|2025||^A01|1|P|2.5", "MSH", 1, 9, "message type"),
        ("MSH|^~\\&|A|B|C|D|2025||ADT^A01|1|P|2.5\rPID|1\rpv1|x", None, 3, None, "not a segment id"),
        ("MSH|^~\\&|A|B|C|D|2025||ADT^A01|1|P|2.5\rPID|1\rPV|x", None, 3, None, "not a segment id"),
    ],
)
def test_errors_name_segment_line_and_field(
    text: str, segment: str | None, line: int | None, field: int | None, reason: str
) -> None:
    with pytest.raises(ParseError, match=reason) as caught:
        parse_batch(text)
    err = caught.value
    assert (err.segment, err.line, err.field) == (segment, line, field)
    if line is not None:
        assert f"line {line}" in str(err)


def test_bad_segment_error_reports_index() -> None:
    with pytest.raises(ParseError) as caught:
        parse_message("MSH|^~\\&|A|B|C|D|2025||ADT^A01|1|P|2.5\nPID|1\n\nPV 1|x")
    assert caught.value.line == 4 and caught.value.index == 3
