"""ER7 (pipe-and-hat) parsing into plain lists of strings, decoded only when a value is read.

Honors the delimiters declared in MSH-1/MSH-2, the escapes of HL7 v2 section 2.7 (\\F\\ \\S\\ \\T\\ \\R\\ \\E\\
\\Xhh\\), CR, LF or CRLF segment terminators and FHS/BHS/BTS/FTS batch envelopes (versions 2.3 to 2.8).
"""

from __future__ import annotations

from dataclasses import dataclass

_ENVELOPE = frozenset(("FHS", "BHS", "BTS", "FTS"))
_BOM = "\ufeff"


class ParseError(ValueError):
    """A message that cannot be read as ER7, located by segment, segment index, line and field."""

    def __init__(
        self,
        reason: str,
        *,
        segment: str | None = None,
        index: int | None = None,
        line: int | None = None,
        field: int | None = None,
    ) -> None:
        self.reason = reason
        self.segment = segment
        self.index = index
        self.line = line
        self.field = field
        super().__init__(self.describe())

    def describe(self) -> str:
        """The reason prefixed with where it happened: ``line 3, PID (segment 3), field 5: ...``."""
        where = []
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.segment is not None:
            seg = self.segment if self.index is None else f"{self.segment} (segment {self.index})"
            where.append(seg if self.field is None else f"{seg}-{self.field}")
        return (", ".join(where) + ": " if where else "") + self.reason


@dataclass(frozen=True, slots=True)
class Delimiters:
    """The five separators of one message (MSH-1 field, MSH-2 component, repetition, escape, sub-component)."""

    field: str = "|"
    component: str = "^"
    repetition: str = "~"
    escape: str = "\\"
    subcomponent: str = "&"

    def decode(self, text: str) -> str:
        """``text`` with its escape sequences replaced (HL7 v2 section 2.7); unknown ones are dropped."""
        esc = self.escape
        if not esc or esc not in text:
            return text
        out: list[str] = []
        pos = 0
        size = len(text)
        while pos < size:
            start = text.find(esc, pos)
            if start < 0:
                out.append(text[pos:])
                break
            end = text.find(esc, start + 1)
            if end < 0:
                out.append(text[pos:])
                break
            out.append(text[pos:start])
            out.append(self._sequence(text[start + 1 : end], esc))
            pos = end + 1
        return "".join(out)

    def _sequence(self, body: str, esc: str) -> str:
        if body == "F":
            return self.field
        if body == "S":
            return self.component
        if body == "T":
            return self.subcomponent
        if body == "R":
            return self.repetition
        if body == "E":
            return esc
        if body == ".br":
            return "\n"
        if body[:1] == "X" and len(body) % 2 == 1:
            try:
                return bytes.fromhex(body[1:]).decode("utf-8", errors="replace")
            except ValueError:
                return esc + body + esc
        if body in ("H", "N") or body[:1] in ("C", "M", "Z") or body[:1] == ".":
            return ""
        return esc + body + esc

    def demoted(self) -> Delimiters:
        """Delimiters that read sub-components as components (to walk a data type nested in a component)."""
        return Delimiters(self.field, self.subcomponent, self.repetition, self.escape, "\x00")

    def encode(self, text: str) -> str:
        """``text`` made safe for one ER7 value: every delimiter written as its escape sequence."""
        esc = self.escape
        if not any(ch in text for ch in (esc, self.field, self.component, self.repetition, self.subcomponent)):
            return text
        text = text.replace(esc, f"{esc}E{esc}")
        for ch, code in (
            (self.field, "F"),
            (self.component, "S"),
            (self.repetition, "R"),
            (self.subcomponent, "T"),
        ):
            text = text.replace(ch, f"{esc}{code}{esc}")
        return text


DEFAULT_DELIMITERS = Delimiters()


class Composite:
    """One repetition of a field: components and sub-components, 1-based as in ``RXE-2.3``."""

    __slots__ = ("_comps", "_d", "raw")

    def __init__(self, raw: str, delimiters: Delimiters) -> None:
        self.raw = raw
        self._d = delimiters
        self._comps: list[str] | None = None

    def get(self, comp: int = 1, sub: int = 1) -> str:
        """Decoded text of component ``comp``, sub-component ``sub`` ("" when absent)."""
        comps = self._comps
        if comps is None:
            comps = self._comps = self.raw.split(self._d.component)
        if comp > len(comps):
            return ""
        value = comps[comp - 1]
        sep = self._d.subcomponent
        if sep in value:
            parts = value.split(sep)
            value = parts[sub - 1] if sub <= len(parts) else ""
        elif sub > 1:
            return ""
        return self._d.decode(value).strip()

    @property
    def delimiters(self) -> Delimiters:
        return self._d

    def part(self, comp: int) -> Composite:
        """Component ``comp`` as a composite of its sub-components (the CE units inside a CQ, TQ1-6.2)."""
        comps = self._comps
        if comps is None:
            comps = self._comps = self.raw.split(self._d.component)
        raw = comps[comp - 1] if comp <= len(comps) else ""
        return Composite(raw, self._d.demoted())

    def __bool__(self) -> bool:
        return bool(self.raw)

    def __repr__(self) -> str:
        return f"Composite({self.raw!r})"


class Segment:
    """One segment as its list of raw fields; ``fields[n]`` is field n (for MSH, MSH-1 is the field separator)."""

    __slots__ = ("_split", "delimiters", "fields", "index", "line", "name", "text")

    def __init__(self, fields: list[str], delimiters: Delimiters, index: int, line: int, text: str = "") -> None:
        self._split: dict[int, list[str]] | None = None
        """Field number → components of its first repetition, made on the first ``get`` of that field."""
        self.fields = fields
        self.name = fields[0]
        self.delimiters = delimiters
        self.index = index
        self.line = line
        self.text = text or delimiters.field.join(fields)
        """The segment as received (trailing blanks dropped): a key of remembered mappings, no join needed."""

    def field(self, n: int) -> str:
        """Raw (still escaped) text of field ``n``, all repetitions; "" when absent."""
        fields = self.fields
        return fields[n] if n < len(fields) else ""

    def get(self, n: int, comp: int = 1, sub: int = 1, rep: int = 1) -> str:
        """Decoded value at ``n.comp.sub`` in repetition ``rep`` ("" when absent): ``seg.get(2, 3)`` is RXE-2.3."""
        fields = self.fields
        if n >= len(fields):
            return ""
        raw = fields[n]
        if not raw:
            return ""
        if n <= 2 and self.name == "MSH":
            return raw
        if rep != 1:
            return self.composite(n, rep).get(comp, sub)
        split = self._split
        if split is None:
            split = self._split = {}
        comps = split.get(n)
        d = self.delimiters
        if comps is None:
            if d.repetition in raw:
                raw = raw.split(d.repetition, 1)[0]
            comps = split[n] = raw.split(d.component)
        if comp > len(comps):
            return ""
        value = comps[comp - 1]
        if d.subcomponent in value:
            parts = value.split(d.subcomponent)
            value = parts[sub - 1] if sub <= len(parts) else ""
        elif sub > 1:
            return ""
        if d.escape in value:
            value = d.decode(value)
        return value.strip()

    def repetitions(self, n: int) -> list[Composite]:
        """Every non-empty repetition of field ``n`` (``PID-3`` identifiers, ``PID-13`` phones)."""
        raw = self.field(n)
        if not raw:
            return []
        d = self.delimiters
        return [Composite(r, d) for r in raw.split(d.repetition) if r]

    def composite(self, n: int, rep: int = 1) -> Composite:
        """Repetition ``rep`` of field ``n`` (empty when absent)."""
        fields = self.fields
        raw = fields[n] if n < len(fields) else ""
        d = self.delimiters
        if d.repetition in raw and (n > 2 or self.name != "MSH"):
            reps = raw.split(d.repetition)
            raw = reps[rep - 1] if rep <= len(reps) else ""
        elif rep > 1:
            raw = ""
        return Composite(raw, d)

    def to_er7(self) -> str:
        """The segment as ER7 text again (trailing empty fields dropped)."""
        sep = self.delimiters.field
        if self.name == "MSH":
            return "MSH" + sep + sep.join(self.fields[2:])
        return sep.join(self.fields)

    def occurrence(self, message: Message) -> int:
        """1 for the first segment of this name in ``message``, 2 for the second... (ERR-2.2 segment sequence)."""
        return sum(1 for s in message[self.name] if s.index <= self.index)

    def error(self, reason: str, field: int | None = None) -> ParseError:
        """A ParseError located at this segment (and ``field``)."""
        return ParseError(reason, segment=self.name, index=self.index, line=self.line, field=field)

    def __len__(self) -> int:
        return len(self.fields) - 1

    def __repr__(self) -> str:
        return f"Segment({self.name}, line {self.line})"


class Message:
    """One message: its segments in order, looked up by name (``msg["RXD"][0].get(8)`` is RXD-8)."""

    __slots__ = ("_index", "_type", "delimiters", "line", "segments")

    def __init__(self, segments: list[Segment], delimiters: Delimiters, line: int = 1) -> None:
        self.segments = segments
        self.delimiters = delimiters
        self.line = line
        self._type: tuple[str, str, str] | None = None
        index: dict[str, list[Segment]] = {}
        for seg in segments:
            found = index.get(seg.name)
            if found is None:
                index[seg.name] = [seg]
            else:
                found.append(seg)
        self._index = index

    def __getitem__(self, name: str) -> list[Segment]:
        return self._index.get(name, [])

    def __contains__(self, name: object) -> bool:
        return name in self._index

    def first(self, name: str) -> Segment | None:
        """The first segment called ``name``, or None."""
        found = self._index.get(name)
        return found[0] if found else None

    def to_er7(self) -> str:
        """The message as ER7 text with CR terminators (the form MLLP and hl7apy expect)."""
        return "\r".join(seg.to_er7() for seg in self.segments)

    @property
    def msh(self) -> Segment:
        return self.segments[0]

    @property
    def message_type(self) -> tuple[str, str, str]:
        """MSH-9 as (message code, trigger event, structure): ``("RDS", "O13", "RDS_O13")``."""
        found = self._type
        if found is None:
            msh = self.segments[0]
            raw = msh.field(9)
            d = msh.delimiters
            if d.escape in raw or d.subcomponent in raw or d.repetition in raw:
                found = (msh.get(9, 1).upper(), msh.get(9, 2).upper(), msh.get(9, 3).upper())
            else:
                # What the three ``get`` calls return for a plain ``RDS^O13^RDS_O13``, in one split (a third less).
                comps = raw.split(d.component)
                comps.extend(("", ""))
                found = (comps[0].strip().upper(), comps[1].strip().upper(), comps[2].strip().upper())
            self._type = found
        return found

    @property
    def control_id(self) -> str:
        """MSH-10 message control id."""
        return self.segments[0].get(10)

    @property
    def version(self) -> str:
        """MSH-12 version id (``2.5.1``), "" when the sender leaves it empty."""
        return self.segments[0].get(12)

    def __repr__(self) -> str:
        code, event, _ = self.message_type
        return f"Message({code}^{event}, {len(self.segments)} segments)"


def decode_bytes(data: bytes) -> str:
    """Bytes to text: UTF-8 (BOM dropped), else Latin-1, which never fails (MSH-18 is advisory in practice)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _lines(text: str) -> list[str]:
    if text.startswith(_BOM):
        text = text[1:]
    if "\n" in text:
        text = text.replace("\r\n", "\r").replace("\n", "\r")
    return text.split("\r")


_KNOWN_DELIMITERS: dict[str, Delimiters] = {}
_KNOWN_SEGMENT_IDS: set[str] = set()


def _delimiters(line: str, lineno: int) -> Delimiters:
    end = line.find(line[3:4] or "|", 4)
    found = _KNOWN_DELIMITERS.get(line[3:end]) if end > 7 else None
    if found is not None:
        return found
    if len(line) < 8:
        raise ParseError("MSH segment too short to declare its delimiters", segment="MSH", index=1, line=lineno)
    sep = line[3]
    if sep.isalnum() or sep in " \t":
        raise ParseError(f"MSH-1 field separator {sep!r} is not allowed", segment="MSH", index=1, line=lineno, field=1)
    end = line.find(sep, 4)
    encoding = line[4:] if end < 0 else line[4:end]
    # A doubled escape character ("^~\\&") is a JSON-escaping artifact seen in real files: keep the first.
    chars = "".join(dict.fromkeys(encoding))
    if len(chars) < 4 or any(c.isalnum() or c in (sep, " ") for c in chars[:4]):
        raise ParseError(
            f"MSH-2 encoding characters {encoding!r} must be 4 distinct non-alphanumeric characters",
            segment="MSH",
            index=1,
            line=lineno,
            field=2,
        )
    found = Delimiters(sep, chars[0], chars[1], chars[2], chars[3])
    if len(_KNOWN_DELIMITERS) < 64:
        _KNOWN_DELIMITERS[line[3:end] if end > 0 else line[3:]] = found
    return found


def _check_segment_id(name: str, index: int, lineno: int) -> None:
    if len(name) != 3 or not name.isalnum() or not name.isascii() or not name[0].isalpha() or not name.isupper():
        shown = name if len(name) <= 10 else name[:10] + "..."
        raise ParseError(f"{shown!r} is not a segment id (3 upper-case letters or digits)", index=index, line=lineno)
    if len(_KNOWN_SEGMENT_IDS) < 4096:
        _KNOWN_SEGMENT_IDS.add(name)


def _segment(line: str, d: Delimiters, index: int, lineno: int) -> Segment:
    fields = line.split(d.field)
    name = fields[0]
    if name not in _KNOWN_SEGMENT_IDS:
        _check_segment_id(name, index, lineno)
    if name == "MSH":
        fields.insert(1, d.field)
    if not fields[-1]:
        while len(fields) > 1 and not fields[-1]:
            fields.pop()
    return Segment(fields, d, index, lineno, line)


def _finish(segments: list[Segment], d: Delimiters, line: int) -> Message:
    message = Message(segments, d, line)
    if not message.message_type[0]:
        raise segments[0].error("MSH-9 message type is empty", 9)
    return message


def parse_message(text: str | bytes) -> Message:
    """Parse exactly one message; blank lines and trailing blanks are ignored."""
    messages = parse_batch(text)
    if len(messages) > 1:
        raise ParseError(
            f"{len(messages)} messages where one was expected: use parse_batch",
            segment="MSH",
            line=messages[1].line,
        )
    return messages[0]


def parse_batch(data: bytes | str) -> list[Message]:
    """Every message in a file or stream: bare MSH sequences or FHS/BHS ... BTS/FTS batches (section 2.10.3).

    MLLP framing bytes (0x0B, 0x1C) are tolerated; envelope segments are checked for position, not kept.
    """
    text = decode_bytes(data) if isinstance(data, bytes) else data
    if "\x0b" in text or "\x1c" in text:
        text = text.replace("\x0b", "").replace("\x1c", "\r")
    messages: list[Message] = []
    segments: list[Segment] | None = None
    d = DEFAULT_DELIMITERS
    first = 0
    for lineno, line in enumerate(_lines(text), start=1):
        if not line:
            continue
        if line[-1] in " \t":
            line = line.rstrip(" \t")
            if not line:
                continue
        head = line[:3]
        if segments is not None and head != "MSH" and head not in _ENVELOPE:
            # A segment inside a message, the common case: ``_segment`` inlined (one call less per segment).
            fields = line.split(d.field)
            index = len(segments) + 1
            if fields[0] not in _KNOWN_SEGMENT_IDS:
                _check_segment_id(fields[0], index, lineno)
            if not fields[-1]:
                while len(fields) > 1 and not fields[-1]:
                    fields.pop()
            segments.append(Segment(fields, d, index, lineno, line))
            continue
        if head == "MSH":
            if segments:
                messages.append(_finish(segments, d, first))
            d = _delimiters(line, lineno)
            first = lineno
            segments = [_segment(line, d, 1, lineno)]
        elif head in _ENVELOPE:
            if segments:
                messages.append(_finish(segments, d, first))
                segments = None
            if head in ("FHS", "BHS"):
                _delimiters("MSH" + line[3:], lineno)
        elif segments is None:
            named = head if len(head) == 3 and head.isalnum() and head.isupper() else None
            raise ParseError("segment outside a message: expected MSH (or FHS/BHS)", segment=named, line=lineno)
        else:
            segments.append(_segment(line, d, len(segments) + 1, lineno))
    if segments:
        messages.append(_finish(segments, d, first))
    if not messages:
        raise ParseError("no MSH segment found")
    return messages
