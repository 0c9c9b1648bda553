"""HL7 v2 (ER7) wire format: parsing, ACKs, and mapping of pharmacy, scheduling and ADT messages to FHIR."""

from adapters.hl7v2.er7 import (
    Composite,
    Delimiters,
    Message,
    ParseError,
    Segment,
    parse_batch,
    parse_message,
)

__all__ = ["Composite", "Delimiters", "Message", "ParseError", "Segment", "parse_batch", "parse_message"]
