"""Parse and serialize NCPDP Telecommunication D.0 transmissions, byte for byte.

Canonical framing: header, then ``RS FS AMxx`` + ``FS id value`` per field for each segment; ``GS`` opens
each transaction. ``parse`` accepts exactly that (so ``serialize(parse(x)) == x``); ``parse_lenient`` also
reads simplified framings (no RS/FS before AM, no GS, short response header) and lists what it repaired.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import NoReturn

from adapters.telecom import dictionary
from adapters.telecom.errors import TelecomError
from adapters.telecom.model import (
    VERSION,
    Header,
    RequestHeader,
    ResponseHeader,
    Segment,
    Transaction,
    Transmission,
)

FS = "\x1c"
GS = "\x1d"
RS = "\x1e"
STX = "\x02"
ETX = "\x03"
REQUEST_HEADER_LEN = 56
RESPONSE_HEADER_LEN = 31
MAX_TRANSACTIONS = 4
_RESPONSE_HEADER_MIN = 23
"""A response header cut after 201-B1 (no 401-D1), as cosyte's fixtures have it."""

_Layout = tuple[tuple[int, int, str], ...]
_REQUEST_LAYOUT: _Layout = ((0, 6, "101-A1"), (6, 8, "102-A2"), (8, 10, "103-A3"), (10, 20, "104-A4"), (20, 21, "109-A9"),
                   (21, 23, "202-B2"), (23, 38, "201-B1"), (38, 46, "401-D1"), (46, 56, "110-AK"))
_RESPONSE_LAYOUT: _Layout = ((0, 2, "102-A2"), (2, 4, "103-A3"), (4, 5, "109-A9"), (5, 6, "501-F1"), (6, 8, "202-B2"),
                    (8, 23, "201-B1"), (23, 31, "401-D1"))


@dataclass(frozen=True, slots=True)
class Repair:
    """One thing ``parse_lenient`` changed to read a non-canonical transmission, at a byte offset of the input."""

    offset: int
    description: str

    def __str__(self) -> str:
        return f"byte {self.offset}: {self.description}"


# --------------------------------------------------------------------------------------------- headers


def _version_guard(text: str) -> None:
    """Accept D0 only; F6 is recognized (its 8-byte IIN in 101-A1 moves every header offset) and refused."""
    if text.startswith(STX):
        kind = "an NCPDP Batch transmission header record" if text[1:3] == "00" else "STX (0x02) batch framing"
        raise TelecomError(f"starts with {kind}; only single Telecommunication transmissions are read", 0)
    if text[6:8] == "F6" or text[8:10] == "F6" or text[0:2] == "F6":
        raise TelecomError(
            "version/release 102-A2 is F6: recognized but not supported yet (F6 widens the BIN 101-A1 to an "
            "8-byte IIN, moving every header offset); only D0 is accepted", 0, field="102-A2")
    raise TelecomError(
        f"not a D.0 header: version/release 102-A2 must be D0 at byte 6 (request) or byte 0 (response), "
        f"found {text[6:8]!r} / {text[0:2]!r}", 0, field="102-A2")


def _printable(head: str, start: int) -> None:
    if not head.isprintable():
        at = next(i for i, c in enumerate(head) if not c.isprintable())
        raise TelecomError(f"header byte {head[at]!r} is not printable (a separator inside the fixed-width "
                           "header means the header is short)", start + at)


def _count(raw: str, offset: int) -> int:
    if len(raw) != 1 or not raw.isdigit() or not 1 <= int(raw) <= MAX_TRANSACTIONS:
        raise TelecomError(f"transaction count {raw!r} must be 1 to {MAX_TRANSACTIONS}", offset, field="109-A9")
    return int(raw)


def _request_header(text: str) -> RequestHeader:
    if len(text) < REQUEST_HEADER_LEN:
        raise TelecomError(f"request header is {len(text)} bytes, expected {REQUEST_HEADER_LEN}", len(text))
    _printable(text[:REQUEST_HEADER_LEN], 0)
    return RequestHeader(text[0:6].rstrip(" "), text[8:10].rstrip(" "), text[23:38].rstrip(" "),
                         text[38:46].rstrip(" "), text[10:20].rstrip(" "), _count(text[20], 20),
                         text[21:23].rstrip(" "), text[46:56].rstrip(" "), text[6:8])


def _response_header(head: str) -> ResponseHeader:
    _printable(head, 0)
    return ResponseHeader(head[2:4].rstrip(" "), head[5].rstrip(" "), head[8:23].rstrip(" "),
                          head[23:31].rstrip(" "), _count(head[4], 4), head[6:8].rstrip(" "), head[0:2])


def _header_text(header: Header) -> str:
    """The fixed-width header; each value is checked whole (one join) and field by field only on error."""
    if isinstance(header, RequestHeader):
        return _fixed_width((header.bin, header.version, header.transaction_code, header.pcn,
                             str(header.transaction_count), header.provider_id_qualifier, header.provider_id,
                             header.date_of_service, header.software_vendor), True)
    return _fixed_width((header.version, header.transaction_code, str(header.transaction_count),
                         header.response_status, header.provider_id_qualifier, header.provider_id,
                         header.date_of_service), False)


@lru_cache(maxsize=1024)
def _fixed_width(values: tuple[str, ...], request: bool) -> str:
    """The header text of these values (request or response layout), memoized: a pharmacy's claims of one day
    share their header, 0.4 µs instead of 1.7 µs per B1 of bench.bench_claims (errors are never memoized)."""
    if request:
        text = (f"{values[0]:<6}{values[1]:<2}{values[2]:<2}{values[3]:<10}{values[4]:<1}{values[5]:<2}"
                f"{values[6]:<15}{values[7]:<8}{values[8]:<10}")
        layout, size, version = _REQUEST_LAYOUT, REQUEST_HEADER_LEN, values[1]
    else:
        text = f"{values[0]:<2}{values[1]:<2}{values[2]:<1}{values[3]:<1}{values[4]:<2}{values[5]:<15}{values[6]:<8}"
        layout, size, version = _RESPONSE_LAYOUT, RESPONSE_HEADER_LEN, values[0]
    if version != VERSION:
        raise TelecomError(f"version/release {version!r}: only D0 is written", field="102-A2")
    if len(text) != size or not text.isprintable() or " \x00" in "\x00".join(values) + "\x00":
        for value, (start, end, field) in zip(values, layout, strict=True):
            width = end - start
            if len(value) > width or not value.isprintable() or value.endswith(" "):
                raise TelecomError(f"header value {value!r} must be at most {width} printable bytes without "
                                   "trailing spaces (they are the padding)", start, field=field)
    return text


# --------------------------------------------------------------------------------------------- strict


def parse(data: bytes | str) -> Transmission:
    """A canonical D.0 request or response; anything else is a TelecomError naming offset, segment, field."""
    text = data.decode("latin-1") if isinstance(data, bytes) else data
    header: Header
    if text[6:8] == VERSION:
        header = _request_header(text)
        pos = REQUEST_HEADER_LEN
    elif text[0:2] == VERSION:
        if len(text) < RESPONSE_HEADER_LEN:
            raise TelecomError(f"response header is {len(text)} bytes, expected {RESPONSE_HEADER_LEN}", len(text))
        header = _response_header(text[:RESPONSE_HEADER_LEN])
        pos = RESPONSE_HEADER_LEN
    else:
        _version_guard(text)
    response = isinstance(header, ResponseHeader)
    groups = text[pos:].split(GS)
    segments = _segments(groups[0], pos, True, response)
    pos += len(groups[0]) + 1
    transactions = []
    for group in groups[1:]:
        if not group:
            raise TelecomError("empty transaction group (GS followed by nothing)", pos - 1)
        transactions.append(Transaction(_segments(group, pos, False, response)))
        pos += len(group) + 1
    if len(transactions) != header.transaction_count:
        where = 20 if not response else 4
        raise TelecomError(f"header counts {header.transaction_count} transactions, found {len(transactions)}",
                           where, field="109-A9")
    return Transmission(header, segments, transactions)


def _segments(chunk: str, pos: int, transmission_level: bool, response: bool) -> list[Segment]:
    """The segments of one group; ``pos`` is the byte offset of ``chunk`` in the transmission."""
    if not chunk:
        return []
    if chunk[0] != RS:
        raise TelecomError(f"expected segment separator RS (0x1E), found {chunk[0]!r}", pos)
    allowed = _allowed(transmission_level, response)
    out = []
    make = Segment.__new__
    pos += 1
    for part in chunk[1:].split(RS):
        seg_id = part[3:5]
        if part[:3] != _SEGMENT_START or part[5:6] not in _AFTER_ID or seg_id not in allowed:
            _segment_error(part, pos, transmission_level, response)
        values = part.split(FS)[2:]
        if values and min(map(len, values)) < 2:
            _short_field(values, pos, seg_id)
        seg = make(Segment)
        seg.id = seg_id
        seg.items = tuple(values)
        seg.offset = pos + 1
        out.append(seg)
        pos += len(part) + 1
    return out


_SEGMENT_START = FS + "AM"
_AFTER_ID = ("", FS)


@cache
def _allowed(transmission_level: bool, response: bool) -> frozenset[str]:
    return frozenset(s.id for s in dictionary.segments().values()
                     if s.transmission_level == transmission_level and s.response == response)


def _segment_error(part: str, pos: int, transmission_level: bool, response: bool) -> NoReturn:
    if part[:3] != _SEGMENT_START or part[5:6] not in _AFTER_ID or len(part) < 5:
        raise TelecomError("a segment must start with FS AM and a 2-character segment id", pos, field="111-AM")
    seg_id = part[3:5]
    info = dictionary.segments().get(seg_id)
    if info is None or info.response != response:
        kind = "response" if response else "request"
        raise TelecomError(f"segment id {seg_id!r} is not a {kind} segment", pos + 1, seg_id, "111-AM")
    where = "before the first GS" if transmission_level else "inside a transaction group"
    level = "transmission" if info.transmission_level else "transaction"
    raise TelecomError(f"{info.name} is a {level}-level segment but appears {where}", pos + 1, seg_id)


def _short_field(values: list[str], pos: int, seg_id: str) -> NoReturn:
    offset = pos + 5
    for value in values:
        if len(value) < 2:
            raise TelecomError(f"field {value!r} is shorter than its 2-character id", offset + 1, seg_id)
        offset += len(value) + 1
    raise AssertionError("unreachable: a short field was found")


# --------------------------------------------------------------------------------------------- serialize

_PREFIX = RS + FS + "AM"


def serialize(transmission: Transmission) -> bytes:
    """The canonical bytes of ``transmission`` (header, RS FS AMxx segments, GS per transaction).

    For speed the separators are counted once over the whole text (one FS per field and per segment id, one
    RS per segment, one GS per transaction) and segments are only checked one by one when a count is off to
    name the culprit: 3.4 µs instead of 5.2 µs per B1 of bench.bench_claims (with the memoized header)."""
    header = transmission.header
    transactions = transmission.transactions
    if header.transaction_count != len(transactions):
        raise TelecomError(f"header counts {header.transaction_count} transactions, the transmission has "
                           f"{len(transactions)}", field="109-A9")
    if len(transactions) > MAX_TRANSACTIONS:
        raise TelecomError(f"{len(transactions)} transactions; D.0 allows {MAX_TRANSACTIONS}", field="109-A9")
    response = isinstance(header, ResponseHeader)
    out = [_header_text(header)]
    fs = rs = 0
    top = _allowed(True, response)
    for seg in transmission.segments:
        if seg.id not in top:
            raise TelecomError(_misplaced(seg.id, True, response), segment=seg.id, field="111-AM")
        items = seg.items
        out.append(_PREFIX + seg.id + FS + FS.join(items) if items else _PREFIX + seg.id)
        fs += len(items) + 1
        rs += 1
    inner = _allowed(False, response)
    for transaction in transactions:
        if not transaction.segments:
            raise TelecomError("a transaction group needs at least one segment")
        out.append(GS)
        for seg in transaction.segments:
            if seg.id not in inner:
                raise TelecomError(_misplaced(seg.id, False, response), segment=seg.id, field="111-AM")
            items = seg.items
            out.append(_PREFIX + seg.id + FS + FS.join(items) if items else _PREFIX + seg.id)
            fs += len(items) + 1
            rs += 1
    text = "".join(out)
    if text.count(FS) != fs or text.count(RS) != rs or text.count(GS) != len(transactions):
        for seg in transmission.segments + [s for t in transactions for s in t.segments]:
            _segment_text(seg)
    return text.encode("latin-1")


def _misplaced(seg_id: str, transmission_level: bool, response: bool) -> str:
    where = "before the first GS" if transmission_level else "in a transaction group"
    return f"segment {seg_id!r} is not a {'response' if response else 'request'} segment that belongs {where}"


def _segment_text(seg: Segment) -> str:
    items = seg.items
    text = _PREFIX + seg.id + FS + FS.join(items) if items else _PREFIX + seg.id
    if text.count(FS) != len(items) + 1 or GS in text or RS in text[1:]:
        raise TelecomError("a field id or value contains a separator (FS, GS or RS)", segment=seg.id)
    return text


# --------------------------------------------------------------------------------------------- lenient

_BREAKS = re.compile(r"[\x1d\x1e]")
_SPLIT = re.compile(r"([\x1d\x1e])")


def parse_lenient(data: bytes | str) -> tuple[Transmission, list[Repair]]:
    """Read a transmission whose framing is not canonical and say what was repaired.

    Repairs: an STX/ETX wrapper or trailing line break removed, a response header without 401-D1, RS or FS
    missing before AM, GS missing before the first transaction-level segment (or between transactions),
    empty segments dropped, a transmission-level segment moved out of a transaction, 109-A9 recounted.
    The result serializes canonically and parses strictly.
    """
    text = data.decode("latin-1") if isinstance(data, bytes) else data
    repairs: list[Repair] = []
    start, end = 0, len(text)
    if text.startswith(STX) and text[1:3] != "00":
        start = 1
        repairs.append(Repair(0, "removed the STX (0x02) wrapper"))
    stripped = text[start:end].rstrip("\r\n" + ETX)
    if len(stripped) != end - start:
        repairs.append(Repair(start + len(stripped), "removed trailing ETX / line break bytes"))
        end = start + len(stripped)
    body = text[:end]
    header: Header
    if body[start + 6:start + 8] == VERSION:
        header = _request_header(body[start:])
        pos = start + REQUEST_HEADER_LEN
    elif body[start:start + 2] == VERSION:
        head_end = start + RESPONSE_HEADER_LEN
        cut = _BREAKS.search(body, start, head_end)
        if cut is not None:
            head_end = cut.start()
        elif body.find("AM2", start + _RESPONSE_HEADER_MIN, head_end) == start + _RESPONSE_HEADER_MIN:
            head_end = start + _RESPONSE_HEADER_MIN
        if head_end - start < _RESPONSE_HEADER_MIN:
            raise TelecomError(f"response header is {head_end - start} bytes, expected {RESPONSE_HEADER_LEN}",
                               head_end)
        head = body[start:head_end]
        if len(head) < RESPONSE_HEADER_LEN:
            repairs.append(Repair(head_end, f"response header is {len(head)} bytes: 401-D1 date of service "
                                            "missing, read as blank"))
            head = head.ljust(RESPONSE_HEADER_LEN)
        header = _response_header(head)
        pos = head_end
    else:
        _version_guard(body[start:])
    response = isinstance(header, ResponseHeader)
    known = dictionary.segments()
    opener = "21" if response else "07"
    transmission: list[Segment] = []
    transactions: list[list[Segment]] = []
    current: list[Segment] | None = None
    before = "the header"
    # While the current transaction began at a GS inserted here, a second Claim (or Status) opens the next
    # one (framing without GS); after a real GS the sender's grouping stands.
    implicit = False
    for piece in _SPLIT.split(body[pos:]):
        if piece in (GS, RS):
            if piece == GS:
                current = []
                transactions.append(current)
                implicit = False
            before = piece
            pos += 1
            continue
        if not piece:
            continue
        if before != RS:
            after = "after GS" if before == GS else "after the header"
            repairs.append(Repair(pos, f"inserted RS before segment {piece.lstrip(FS)[:4]!r} {after}"))
        seg = _lenient_segment(piece, pos, repairs, response)
        info = known[seg.id]
        if info.transmission_level:
            if current is not None:
                repairs.append(Repair(pos, f"moved transmission-level {info.name} before the first GS"))
            transmission.append(seg)
        elif current is None or (implicit and seg.id == opener and any(s.id == opener for s in current)):
            repairs.append(Repair(pos, f"inserted GS before transaction-level {info.name}"))
            current = [seg]
            transactions.append(current)
            implicit = True
        else:
            current.append(seg)
        pos += len(piece)
        before = ""
    filled = [t for t in transactions if t]
    if len(filled) != len(transactions):
        repairs.append(Repair(pos, "dropped an empty transaction group"))
    if not filled:
        raise TelecomError("no transaction-level segment found", pos)
    count = len(filled)
    if count > MAX_TRANSACTIONS:
        raise TelecomError(f"{count} transactions; D.0 allows {MAX_TRANSACTIONS}", pos, field="109-A9")
    if count != header.transaction_count:
        repairs.append(Repair(start + (4 if response else 20),
                              f"109-A9 said {header.transaction_count} transactions, found {count}"))
        header = dataclasses.replace(header, transaction_count=count)
    return Transmission(header, transmission, [Transaction(t) for t in filled]), repairs


def _lenient_segment(piece: str, pos: int, repairs: list[Repair], response: bool) -> Segment:
    if piece.startswith(FS + "AM"):
        text, am_at = piece[1:], pos + 1
    elif piece.startswith("AM"):
        text, am_at = piece, pos
        repairs.append(Repair(pos, f"inserted FS before segment id {piece[:4]!r}"))
    else:
        raise TelecomError(f"expected a segment (AM and a 2-character id), found {piece[:6]!r}", pos, field="111-AM")
    fields = text.split(FS)
    seg_id = fields[0][2:]
    info = dictionary.segments().get(seg_id)
    if len(fields[0]) != 4 or info is None or info.response != response:
        raise TelecomError(f"segment id {seg_id!r} is not a {'response' if response else 'request'} segment",
                           am_at, seg_id, "111-AM")
    offset = am_at + len(fields[0])
    for raw in fields[1:]:
        if len(raw) < 2:
            raise TelecomError(f"field {raw!r} is shorter than its 2-character id", offset + 1, seg_id)
        offset += len(raw) + 1
    return Segment.from_wire(seg_id, tuple(fields[1:]), am_at)
