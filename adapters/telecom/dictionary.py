"""The D.0 data dictionary as data: field ids (405-D5) and segment ids (111-AM) from mappings/telecom/.

Tables live in CSV so an integration engineer can read and extend them without touching code; this module
only loads them once and answers lookups.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from importlib import resources


@dataclass(frozen=True, slots=True)
class FieldDef:
    """One field: ``field`` is the full NCPDP id (``405-D5``), ``id`` the 2-character wire id."""

    field: str
    id: str
    name: str
    format: str
    width: int | None


@dataclass(frozen=True, slots=True)
class SegmentDef:
    """One segment (111-AM value): its name, whether it sits before the first GS, and its direction."""

    id: str
    name: str
    transmission_level: bool
    response: bool


def _rows(name: str) -> list[dict[str, str]]:
    text = resources.files("mappings").joinpath("telecom", name).read_text(encoding="utf-8")
    return list(csv.DictReader(text.splitlines()))


@cache
def fields() -> dict[str, FieldDef]:
    """Field definitions keyed by 2-character id (``D5``)."""
    return {
        r["id"]: FieldDef(r["field"], r["id"], r["name"], r["format"], int(r["width"]) if r["width"] else None)
        for r in _rows("fields.csv")
    }


@cache
def segments() -> dict[str, SegmentDef]:
    """Segment definitions keyed by the 111-AM value (``07``)."""
    return {
        r["segment"]: SegmentDef(r["segment"], r["name"], r["level"] == "transmission", r["direction"] == "response")
        for r in _rows("segments.csv")
    }


@cache
def reject_codes() -> dict[str, str]:
    """511-FB reject code → its text (mappings/telecom/reject-codes.csv, with the source of each row)."""
    return {r["code"]: r["text"] for r in _rows("reject-codes.csv")}


def label(field_id: str) -> str:
    """``D5`` → ``405-D5`` (the id alone when the dictionary does not know it)."""
    known = fields().get(field_id)
    return known.field if known else field_id
