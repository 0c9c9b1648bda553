"""One transaction Bundle per message, and the context every segment mapper shares.

Each entry is ``PUT Type/id`` with an id from business keys (``interop.fhir.ids.business_id``), so a
re-sent or corrected message updates the same resources instead of duplicating them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, TypeVar

import orjson

from adapters.hl7v2.er7 import Message, Segment
from adapters.hl7v2.mapping.datatypes import DataTypeError
from adapters.hl7v2.mapping.tables import Tables, tables_for
from interop.fhir.ids import business_id

JSON = dict[str, Any]
P = ParamSpec("P")
T = TypeVar("T")

REQUIRED_FIELD_MISSING = "101"
DATA_TYPE_ERROR = "102"
TABLE_VALUE_NOT_FOUND = "103"
SEGMENT_SEQUENCE_ERROR = "100"
UNSUPPORTED_MESSAGE_TYPE = "200"
UNSUPPORTED_EVENT_CODE = "201"


class MappingError(ValueError):
    """A message that parsed but cannot be mapped: names the segment, its position and the field.

    ``code`` is the HL7 table 0357 error code the ACK's ERR-3 carries (101 required field missing, ...).
    """

    def __init__(
        self,
        reason: str,
        *,
        segment: str | None = None,
        index: int | None = None,
        line: int | None = None,
        field: int | None = None,
        code: str = REQUIRED_FIELD_MISSING,
    ) -> None:
        self.reason = reason
        self.segment = segment
        self.index = index
        self.line = line
        self.field = field
        self.code = code
        where = ""
        if segment is not None:
            where = f"{segment}-{field}" if field is not None else segment
            if index is not None:
                where += f" (segment {index})"
            where += ": "
        super().__init__(where + reason)

    @classmethod
    def at(cls, seg: Segment, field: int | None, reason: str, code: str = REQUIRED_FIELD_MISSING) -> MappingError:
        """An error located at field ``field`` of ``seg``."""
        return cls(reason, segment=seg.name, index=seg.index, line=seg.line, field=field, code=code)


def guarded(
    seg: Segment,
    field: int,
    text: str,
    convert: Callable[Concatenate[str, P], T],
    *args: P.args,
    **kwargs: P.kwargs,
) -> T:
    """``convert(text, ...)``, turning a DataTypeError into a MappingError located at ``seg``-``field``."""
    try:
        return convert(text, *args, **kwargs)
    except DataTypeError as exc:
        raise MappingError.at(seg, field, str(exc), DATA_TYPE_ERROR) from exc


_IDS: dict[tuple[str, ...], str] = {}
_MEMO_LIMIT = 100_000


def key_id(kind: str, *keys: str) -> str:
    """``business_id(kind, *keys)``, remembered: a feed names the same patients, drugs and Rx numbers again and
    again, and a UUIDv5 costs more than the rest of a small resource."""
    key = (kind, *keys)
    found = _IDS.get(key)
    if found is None:
        if len(_IDS) >= _MEMO_LIMIT:
            _IDS.clear()
        found = _IDS[key] = business_id(kind, *keys)
    return found


def clear_ids() -> None:
    """Forget remembered ids (benchmarks start cold)."""
    _IDS.clear()


class BundleBuilder:
    """Entries keyed by ``Type/id``: a resource met twice in one message is emitted once (the first wins)."""

    __slots__ = ("_entries", "_recording")

    def __init__(self) -> None:
        self._entries: dict[str, JSON] = {}
        self._recording: list[str] | None = None

    def put(self, resource: JSON) -> str:
        """Add ``resource`` (which has an id) and return its reference ``Type/id``."""
        ref: str = resource["resourceType"] + "/" + resource["id"]
        if ref not in self._entries:
            self._entries[ref] = resource
        if self._recording is not None:
            self._recording.append(ref)
        return ref

    def put_json(self, ref: str, raw: bytes) -> None:
        """``put`` of the resource serialized as ``raw``, parsed only when ``ref`` is not in the Bundle yet (a
        dispense template names the Medication that its request template already put)."""
        if ref not in self._entries:
            self._entries[ref] = orjson.loads(raw)
        if self._recording is not None:
            self._recording.append(ref)

    def recorded(self, build: Callable[[], JSON]) -> tuple[JSON, list[tuple[str, JSON]]]:
        """``build()`` and, in order, every resource it put into the Bundle (even ones already there), by ref."""
        outer, self._recording = self._recording, []
        try:
            result = build()
            refs = self._recording
        finally:
            self._recording = outer
        if outer is not None:
            outer.extend(refs)
        return result, [(ref, self._entries[ref]) for ref in dict.fromkeys(refs)]

    def put_all(self, resources: list[JSON]) -> None:
        """``put`` of each resource in order (a remembered Bundle, see ``refill``)."""
        entries = self._entries
        recording = self._recording
        for resource in resources:
            ref: str = resource["resourceType"] + "/" + resource["id"]
            if ref not in entries:
                entries[ref] = resource
            if recording is not None:
                recording.append(ref)

    def resources(self) -> list[JSON]:
        """The resources added so far, in Bundle order."""
        return list(self._entries.values())

    def get(self, ref: str) -> JSON | None:
        """The resource already added as ``ref``, to complete it (A40 links), or None."""
        return self._entries.get(ref)

    def bundle(self) -> JSON:
        """The transaction Bundle: one PUT per resource, conditional on nothing (ids are deterministic)."""
        return {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {
                    "fullUrl": "urn:uuid:" + r["id"],
                    "resource": r,
                    "request": {"method": "PUT", "url": ref},
                }
                for ref, r in self._entries.items()
            ],
        }


_SENDERS: dict[tuple[str, str, str, str], tuple[str, str, str]] = {}
"""Raw MSH-1, MSH-2 (the delimiters), MSH-3 and MSH-4 → (application, facility, sender): four decoded
component reads per message saved (a feed has a handful of senders)."""
_SENDER_LIMIT = 4096


class Context:
    """What every mapper of one message needs: the message, its sender's tables and key, the Bundle."""

    __slots__ = ("builder", "message", "sender", "tables")

    def __init__(self, message: Message) -> None:
        msh = message.msh
        fields = msh.fields
        raw = (fields[1], fields[2], msh.field(3), msh.field(4))
        found = _SENDERS.get(raw)
        if found is None:
            application = msh.get(3) or msh.get(3, 2)
            facility = msh.get(4) or msh.get(4, 2)
            found = (application, facility, facility or application or "unidentified-sender")
            if len(_SENDERS) >= _SENDER_LIMIT:
                _SENDERS.clear()
            _SENDERS[raw] = found
        self.message = message
        self.sender = found[2]
        """Sending facility (MSH-4), else application (MSH-3): the namespace of Rx numbers and local codes."""
        self.tables: Tables = tables_for(found[0], found[1])
        self.builder = BundleBuilder()

    def template(self, key: tuple[Any, ...], build: Callable[[], JSON]) -> JSON:
        """A resource template from ``build()`` (which may put other resources), or a fresh copy of the one built
        for the same ``key`` before, with those other resources put again.

        ``key`` must hold every input of ``build``; the caller then fills the per-message parts (subject, fill
        number, dates) the same way on both paths, so a remembered template gives the same Bundle.
        """
        templates = self.tables.templates
        found = templates.get(key)
        if found is not None:
            raw, others = found
            builder = self.builder
            for ref, other in others:
                builder.put_json(ref, other)
            main: JSON = orjson.loads(raw)
            return main
        main, put = self.builder.recorded(build)
        if len(templates) >= _MEMO_LIMIT:
            templates.clear()
        templates[key] = (orjson.dumps(main), tuple((ref, orjson.dumps(other)) for ref, other in put))
        return main

    def memo(self, key: tuple[str, ...], build: Callable[[], JSON | None]) -> JSON | None:
        """``build()``, or a fresh copy of what it returned for the same raw ``key`` from this sender before.

        Kept as JSON bytes, so every Bundle owns its dicts (callers may mutate them). Errors are not kept.
        """
        memo = self.tables.memo
        found = memo.get(key)
        if found is not None:
            value: JSON | None = orjson.loads(found)
            return value
        built = build()
        if len(memo) >= _MEMO_LIMIT:
            memo.clear()
        memo[key] = orjson.dumps(built)
        return built
