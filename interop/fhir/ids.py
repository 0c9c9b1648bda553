"""Resource ids made from business keys, so a message delivered twice updates instead of duplicating.

A prescription is keyed by sending facility + Rx number, a dispense by Rx number + fill number, an
appointment by its filler id. Display text (a drug's description) is never part of a key: a corrected
message that renames the drug must land on the same resource (FHIR-Converter's hashed raw text forks one).
"""

from __future__ import annotations

import re
import uuid

NAMESPACE = uuid.UUID("6f1c1c1e-8a4b-5d0e-9c57-6d65647379e3")
"""Our UUIDv5 namespace; changing it would re-key every stored resource."""

_ID_RE = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


def _norm(part: object) -> str:
    return " ".join(str(part).split()).upper()


def business_id(kind: str, *keys: object) -> str:
    """A stable FHIR id (UUIDv5) for ``kind`` (usually the resource type) and its business keys.

    Keys are compared case- and whitespace-insensitively; empty keys are an error because an id made
    from nothing would merge unrelated records.
    """
    parts = [_norm(k) for k in keys]
    if not parts or any(not p for p in parts):
        raise ValueError(f"business key for {kind} has an empty part: {keys!r}")
    return str(uuid.uuid5(NAMESPACE, kind + "|" + "|".join(parts)))


def is_valid_id(value: str) -> bool:
    """FHIR ``id``: 1 to 64 of ``[A-Za-z0-9-.]``."""
    return bool(_ID_RE.fullmatch(value))
