"""Optional strict check of a message against the HL7 v2 message grammar of its version (hl7apy, strict mode).

Slow (~20 ms a message) and therefore off the hot path: ``interop convert --strict`` and tests use it. A
violation becomes a ParseError naming the segment and field hl7apy complained about.
"""

from __future__ import annotations

import re

from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.exceptions import HL7apyException, OperationNotAllowed
from hl7apy.parser import parse_message as hl7apy_parse

from adapters.hl7v2.er7 import Message, ParseError

_WHERE = re.compile(r"\b([A-Z][A-Z0-9]{2})[._](?:[A-Z][A-Z0-9]{2}_)?(\d+)\b")
_SEGMENT = re.compile(r"<Segment ([A-Z][A-Z0-9]{2})")
_SEGMENT_ID = re.compile(r"[A-Z][A-Z0-9]{2}")


def check_grammar(message: Message) -> None:
    """Raise ParseError if hl7apy, in strict validation, rejects the message's structure or field types."""
    text = message.to_er7()
    try:
        parsed = hl7apy_parse(text, validation_level=VALIDATION_LEVEL.STRICT, find_groups=True)
        parsed.validate()
    except OperationNotAllowed as exc:
        code, event, structure = message.message_type
        raise ParseError(
            f"message structure {structure or code + '_' + event} is not defined in HL7 v{message.version}",
            segment="MSH",
            index=1,
            line=message.msh.line,
            field=9,
        ) from exc
    except (HL7apyException, ValueError, TypeError, KeyError, AttributeError, IndexError) as exc:
        detail = str(exc) or type(exc).__name__
        where = _WHERE.search(detail)
        if where:
            seg = message.first(where.group(1))
            raise ParseError(
                f"message grammar ({message.version or 'no version'}): {detail}",
                segment=where.group(1),
                index=seg.index if seg else None,
                line=seg.line if seg else None,
                field=int(where.group(2)),
            ) from exc
        last = detail.split()[-1].split(".")[-1] if detail.split() else ""
        seg_match = _SEGMENT.search(detail)
        if _SEGMENT_ID.fullmatch(last):
            name: str | None = last
        else:
            name = seg_match.group(1) if seg_match else None
        raise ParseError(f"message grammar ({message.version or 'no version'}): {detail}", segment=name) from exc
