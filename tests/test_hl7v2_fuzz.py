"""Property tests (bounded): the parser and mapper never crash or hang, and every bad message gets AE or AR."""

from __future__ import annotations

import time

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.hl7v2 import Delimiters, ParseError, parse_batch, parse_message
from adapters.hl7v2.ack import build_ack
from adapters.hl7v2.mapping import MappingError, clear_cache, to_bundle
from tests.fhirschema import assert_valid
from tests.test_hl7v2_map import ADT, SIU, rde, rds

SEEDS = [
    rds(),
    rde(),
    rds(duration="90^D&day&ISO", fill="3"),
    SIU.format(event="S12", sch25="Booked"),
    ADT.format(event="A40", name="DOE^JANE") + "MRG|OLD9^^^HOSP^MR\r",
]
ALPHABET = "|^~\\&\r\nMSHPIDRXEORCTQ1SCH0123456789.-+ ABCxyz\x0b\x1c"
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _outcome(data: bytes, validate: bool = False) -> str:
    """Parse + map ``data``; returns the ACK code and checks the ACK names the outcome."""
    started = time.perf_counter()
    error: Exception | None = None
    try:
        for message in parse_batch(data):
            bundle = to_bundle(message)
            orjson.dumps(bundle)
            if validate:
                for entry in bundle["entry"]:
                    assert_valid(entry["resource"])
    except (ParseError, MappingError) as exc:
        error = exc
    ack = parse_message(build_ack(data, error))
    assert time.perf_counter() - started < 5.0, "a single message took over 5 s"
    code = ack["MSA"][0].get(1)
    if error is None:
        assert code == "AA" and not ack["ERR"]
    else:
        assert code in ("AE", "AR") and ack["ERR"]
        if isinstance(error, ParseError):
            assert code == "AR"
    return code


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    text = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(1, 6))):
        pos = draw(st.integers(0, len(text)))
        action = draw(st.sampled_from(["insert", "delete", "replace"]))
        chunk = draw(st.text(alphabet=ALPHABET, min_size=1, max_size=8))
        if action == "insert":
            text = text[:pos] + chunk + text[pos:]
        elif action == "delete":
            text = text[:pos] + text[pos + len(chunk):]
        else:
            text = text[:pos] + chunk + text[pos + len(chunk):]
    return text.encode("utf-8")


@FUZZ
@given(mutated())
def test_mutated_messages_never_crash(data: bytes) -> None:
    _outcome(data)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_are_rejected_not_crashed(data: bytes) -> None:
    _outcome(b"MSH|^~\\&|" + data)
    _outcome(data)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_escape_encode_decode_round_trip(text: str) -> None:
    d = Delimiters()
    assert d.decode(d.encode(text)) == text


VALUE = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=20).map(
    str.strip
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(VALUE, min_size=1, max_size=4), min_size=1, max_size=6))
def test_encoded_values_read_back(fields: list[list[str]]) -> None:
    d = Delimiters()
    line = "ZZZ|" + "|".join("^".join(d.encode(v) for v in comps) for comps in fields)
    seg = parse_message("MSH|^~\\&|A|B|C|D|2025||ADT^A08|1|P|2.5\r" + line)["ZZZ"][0]
    for n, comps in enumerate(fields, start=1):
        for c, value in enumerate(comps, start=1):
            assert seg.get(n, c) == value.strip()


FIELD_TEXT = st.one_of(
    st.text(alphabet="0123456789.+-^&~ eEDWKMINHQPRNBIDTAB", max_size=30),
    st.from_regex(r"[0-9]{1,40}(\.[0-9]{1,9})?([+-][0-9]{2,4})?(\^[A-Z]{1,3})?", fullmatch=True),
)


@st.composite
def field_replaced(draw: st.DrawFn) -> bytes:
    lines = draw(st.sampled_from(SEEDS)).rstrip("\r").split("\r")
    row = draw(st.integers(1, len(lines) - 1))
    fields = lines[row].split("|")
    col = draw(st.integers(1, max(1, len(fields) + 2)))
    fields += [""] * (col + 1 - len(fields))
    fields[col] = draw(FIELD_TEXT)
    lines[row] = "|".join(fields)
    return "\r".join(lines).encode()


@FUZZ
@given(field_replaced())
def test_any_field_value_is_mapped_or_answered(data: bytes) -> None:
    _outcome(data, validate=True)


@st.composite
def variants(draw: st.DrawFn) -> list[bytes]:
    """2 to 4 versions of one message, each with one field of one segment rewritten."""
    lines = draw(st.sampled_from(SEEDS[:3])).rstrip("\r").split("\r")
    out = []
    for _ in range(draw(st.integers(2, 4))):
        copy = list(lines)
        row = draw(st.integers(1, len(copy) - 1))
        fields = copy[row].split("|")
        col = draw(st.integers(1, max(1, len(fields) + 2)))
        fields += [""] * (col + 1 - len(fields))
        fields[col] = draw(FIELD_TEXT)
        copy[row] = "|".join(fields)
        out.append("\r".join(copy).encode())
    return out


def _result(data: bytes) -> bytes | str:
    try:
        return orjson.dumps([to_bundle(m) for m in parse_batch(data)])
    except (ParseError, MappingError) as exc:
        return str(exc)


@FUZZ
@given(variants())
def test_remembered_templates_never_change_a_result(batch: list[bytes]) -> None:
    clear_cache()
    warm = [_result(data) for data in batch]
    for data, expected in zip(batch, warm, strict=True):
        clear_cache()
        assert _result(data) == expected
