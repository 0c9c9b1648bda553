"""Resource ids made from business keys, so a message delivered twice updates instead of duplicating.

A prescription is keyed by sending facility + Rx number, a dispense by Rx number + fill number, an
appointment by its filler id. Display text (a drug's description) is never part of a key: a corrected
message that renames the drug must land on the same resource (FHIR-Converter's hashed raw text forks one).
"""

from __future__ import annotations

import hashlib
import re
import uuid

NAMESPACE = uuid.UUID("6f1c1c1e-8a4b-5d0e-9c57-6d65647379e3")
"""Our UUIDv5 namespace; changing it would re-key every stored resource."""
_NAMESPACE_BYTES = NAMESPACE.bytes

_ID_RE = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


def _norm(part: object) -> str:
    return " ".join(str(part).split()).upper()


def business_id(kind: str, *keys: object) -> str:
    """A stable FHIR id (UUIDv5) for ``kind`` (usually the resource type) and its business keys.

    Keys are compared case- and whitespace-insensitively; empty keys are an error because an id made
    from nothing would merge unrelated records.
    """
    parts = []
    for key in keys:
        part = _norm(key)
        if not part:
            raise ValueError(f"business key for {kind} has an empty part: {keys!r}")
        parts.append(part)
    if not parts:
        raise ValueError(f"business key for {kind} has an empty part: {keys!r}")
    return _uuid5(kind + "|" + "|".join(parts))


_VARIANT = {c: format(int(c, 16) & 0x3 | 0x8, "x") for c in "0123456789abcdef"}
"""First hex digit of the clock_seq_hi_and_reserved octet with the RFC 4122 variant bits (10xx) set."""
_NAMESPACE_SHA1 = hashlib.sha1(_NAMESPACE_BYTES)
"""SHA-1 state after the namespace, copied for each name instead of hashing the namespace again."""


def _uuid5(name: str) -> str:
    """``str(uuid.uuid5(NAMESPACE, name))`` (RFC 4122 section 4.3) without building a UUID object, by editing
    the SHA-1 hex digest: the version digit (octet 6's high nibble) becomes 5 and octet 8's high nibble gets
    the variant bits. About 30% less time than editing a bytearray of the digest (which took 1.5 µs against
    6.1 µs for ``uuid.uuid5``); the HL7 v2 convert path pays one per dispense."""
    sha = _NAMESPACE_SHA1.copy()
    sha.update(name.encode("utf-8"))
    x = sha.hexdigest()
    return f"{x[:8]}-{x[8:12]}-5{x[13:16]}-{_VARIANT[x[16]]}{x[17:20]}-{x[20:32]}"


def is_valid_id(value: str) -> bool:
    """FHIR ``id``: 1 to 64 of ``[A-Za-z0-9-.]``."""
    return bool(_ID_RE.fullmatch(value))
