"""Property: any transmission the serializer writes parses back to the same value (and the same bytes)."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.telecom import (
    RequestHeader,
    ResponseHeader,
    Segment,
    TelecomError,
    Transmission,
    parse,
    parse_lenient,
    serialize,
)
from adapters.telecom.dictionary import segments
from adapters.telecom.overpunch import decode_money, decode_quantity, encode_money, encode_quantity

TEXT = st.characters(min_codepoint=0x20, max_codepoint=0xFF, blacklist_characters="\x7f")
VALUE = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=12)
FIELD_ID = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=2, max_size=2)


def header_text(width: int) -> st.SearchStrategy[str]:
    """Printable, at most ``width`` bytes, no trailing space (right-hand spaces are the header's padding)."""
    return st.text(TEXT, max_size=width).map(lambda s: s.rstrip(" ")).filter(str.isprintable)


def segment_ids(transmission_level: bool, response: bool) -> list[str]:
    return sorted(s.id for s in segments().values()
                  if s.transmission_level == transmission_level and s.response == response)


def segment(ids: list[str]) -> st.SearchStrategy[Segment]:
    return st.builds(Segment.from_wire, st.sampled_from(ids),
                     st.lists(st.tuples(FIELD_ID, VALUE).map("".join), max_size=8).map(tuple))


@st.composite
def transmissions(draw: st.DrawFn) -> Transmission:
    response = draw(st.booleans())
    count = draw(st.integers(1, 4))
    header: RequestHeader | ResponseHeader
    if response:
        header = ResponseHeader(transaction_code=draw(header_text(2)), response_status=draw(header_text(1)),
                                provider_id=draw(header_text(15)), date_of_service=draw(header_text(8)),
                                transaction_count=count, provider_id_qualifier=draw(header_text(2)))
    else:
        header = RequestHeader(bin=draw(header_text(6)), transaction_code=draw(header_text(2)),
                               provider_id=draw(header_text(15)), date_of_service=draw(header_text(8)),
                               pcn=draw(header_text(10)), transaction_count=count,
                               provider_id_qualifier=draw(header_text(2)), software_vendor=draw(header_text(10)))
    top = draw(st.lists(segment(segment_ids(True, response)), max_size=3))
    inner = segment(segment_ids(False, response))
    groups = draw(st.lists(st.lists(inner, min_size=1, max_size=4), min_size=count, max_size=count))
    return Transmission(header, top, groups)


@settings(max_examples=200, deadline=None)
@given(transmissions())
def test_serialized_transmissions_parse_back_to_the_same_value(transmission: Transmission) -> None:
    data = serialize(transmission)
    again = parse(data)
    assert again == transmission
    assert serialize(again) == data
    assert parse_lenient(data) == (transmission, [])


ANY_ID = st.text(st.characters(min_codepoint=0x30, max_codepoint=0x5A), min_size=2, max_size=2).filter(str.isalnum)
LOOSE = st.builds(Segment.from_wire, ANY_ID, st.lists(st.tuples(FIELD_ID, VALUE).map("".join), max_size=5).map(tuple))
"""Segments of any id, so some sit at the wrong level or direction, or are unknown."""


@settings(max_examples=200, deadline=None)
@given(transmissions(), st.lists(LOOSE, max_size=2), st.lists(LOOSE, max_size=2))
def test_the_serializer_refuses_what_would_not_parse_back(transmission: Transmission, top: list[Segment],
                                                           inner: list[Segment]) -> None:
    transmission.segments.extend(top)
    transmission.transactions[0].segments.extend(inner)
    try:
        data = serialize(transmission)
    except TelecomError:
        return
    assert parse(data) == transmission


@settings(max_examples=200, deadline=None)
@given(ANY_ID, st.lists(VALUE, min_size=1, max_size=5))
def test_wire_items_are_checked_when_a_segment_is_made(seg_id: str, items: list[str]) -> None:
    try:
        made = Segment.from_wire(seg_id, tuple(items))
    except TelecomError:
        assert any(len(item) < 2 for item in items)
        return
    assert made.fields == tuple((item[:2], item[2:]) for item in items)


@settings(max_examples=300, deadline=None)
@given(st.decimals(min_value=Decimal("-999999.99"), max_value=Decimal("999999.99"), places=2))
def test_money_round_trips(value: Decimal) -> None:
    assert decode_money(encode_money(value)) == value


@settings(max_examples=300, deadline=None)
@given(st.decimals(min_value=Decimal("0"), max_value=Decimal("9999999.999"), places=3))
def test_quantities_round_trip(value: Decimal) -> None:
    assert decode_quantity(encode_quantity(value)) == value
