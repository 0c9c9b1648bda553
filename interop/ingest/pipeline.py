"""The ingest pipeline: bytes in, one committed transaction per message, then the acknowledgement.

Every feed (MLLP, files, replays) goes through :class:`Ingestor`. The order of things is the guarantee:
parse and map; commit the message's Bundle (or, when it cannot be mapped, its dead-letter Task); only then
answer. ``ingest_many`` commits a group of messages in one database transaction (group commit, for
throughput) and falls back to one transaction per message when any of them fails, so one bad message never
takes its neighbours down with it and no ACK AA ever precedes its message's commit.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from adapters.hl7v2.ack import build_ack
from adapters.hl7v2.er7 import Message, ParseError, parse_batch
from adapters.hl7v2.mapping import MappingError, TableError, to_bundle
from interop.config import get_settings
from interop.fhir.audit import DCM, SENDER_SYSTEM, agent, audit_event, entity
from interop.ingest.convert import ConversionError, convert, detect_format
from interop.ingest.deadletter import dead_letter_task
from interop.store.base import Repository, StoreError, Unavailable

log = logging.getLogger(__name__)

Bundle = dict[str, Any]


@dataclass(slots=True)
class Outcome:
    """What became of one message. ``code`` is the HL7 acknowledgment code: AA, AE or AR."""

    code: str
    fmt: str
    bundles: list[Bundle] = field(default_factory=list)
    error: BaseException | None = None
    dead_letter: str | None = None  # id of the dead-letter Task, when one was written
    ack: bytes | None = None  # the HL7 ACK (ER7, CR-terminated) for HL7 v2 input

    @property
    def accepted(self) -> bool:
        return self.code == "AA"

    @property
    def reason(self) -> str:
        if self.error is None:
            return ""
        describe = getattr(self.error, "describe", None)
        return str(describe()) if callable(describe) else str(self.error)


@dataclass(slots=True)
class _Work:
    raw: bytes
    source: str
    fmt: str = ""
    message: Message | None = None
    outcome: Outcome | None = None


class Ingestor:
    """Maps and stores messages through one repository. Thread-safe: it keeps no state of its own.

    With ``audit`` (INTEROP_AUDIT_ENABLED by default) every message gets an AuditEvent committed in the
    transaction that stores it: its resources when accepted, its dead-letter Task when not.
    """

    def __init__(self, repo: Repository, *, audit: bool | None = None) -> None:
        self.repo = repo
        self.audit = get_settings().audit_enabled if audit is None else audit

    def ingest(self, raw: bytes, *, source: str = "", fmt: str | None = None) -> Outcome:
        """One message (or one file: a batch file's messages are committed together)."""
        return self.ingest_many([raw], source=source, fmt=fmt)[0]

    def ingest_many(
        self, raws: Sequence[bytes], *, source: str = "", fmt: str | None = None, sources: Sequence[str] = ()
    ) -> list[Outcome]:
        """Several messages, committed in one transaction when all succeed; outcomes in input order.

        ``sources`` names each message's origin (``mllp:host:port``) when they differ; else ``source`` does.
        """
        work = [_Work(raw, src) for raw, src in zip(raws, sources or [source] * len(raws), strict=True)]
        for item in work:
            self._map(item, fmt)
        mapped = [w for w in work if w.outcome is not None and w.outcome.code == "AA"]
        if mapped:
            try:
                with self.repo.session() as session:
                    bundles = [b for w in mapped if w.outcome for b in w.outcome.bundles]
                    if self.audit:
                        bundles.append(_audit_bundle([self._audit(w) for w in mapped]))
                    for bundle in _grouped(bundles):
                        session.process_bundle(bundle)
            except Unavailable as exc:
                for item in mapped:
                    self._unavailable(item, exc)
            except StoreError:
                if len(mapped) == 1:
                    self._commit_one(mapped[0])
                else:
                    for item in mapped:
                        self._commit_one(item)
        self._keep_dead_letters(work)
        outcomes = []
        for item in work:
            assert item.outcome is not None
            if item.outcome.fmt == "hl7v2":
                original: Message | bytes = item.message if item.message is not None else item.raw
                item.outcome.ack = build_ack(original, item.outcome.error).encode("utf-8")
            outcomes.append(item.outcome)
        return outcomes

    # ---------------------------------------------------------------------------------------------
    def _map(self, item: _Work, fmt: str | None) -> None:
        try:
            item.fmt = fmt or detect_format(item.raw)
        except ConversionError as exc:
            item.fmt = "unknown"
            item.outcome = Outcome("AR", item.fmt, error=exc)
            return
        if item.fmt == "hl7v2":
            self._map_hl7v2(item)
            return
        try:
            item.outcome = Outcome("AA", item.fmt, bundles=convert(item.raw, item.fmt))
        except ConversionError as exc:
            item.outcome = Outcome("AE", item.fmt, error=exc)

    def _map_hl7v2(self, item: _Work) -> None:
        """HL7 v2 is mapped here rather than through ``convert`` so the ACK sees the typed error (AR vs AE).

        A file may hold several messages (or an FHS/BHS batch): they are mapped and committed together, and
        the ACK, when one is wanted, answers the first.
        """
        try:
            messages = parse_batch(item.raw)
            if not messages:
                raise ParseError("no MSH segment: not an HL7 v2 message", segment="MSH", line=1)
            item.message = messages[0]
        except ParseError as exc:
            item.outcome = Outcome("AR", "hl7v2", error=exc)
            return
        try:
            item.outcome = Outcome("AA", "hl7v2", bundles=[to_bundle(m) for m in messages])
        except MappingError as exc:
            item.outcome = Outcome("AR" if exc.code.startswith("20") else "AE", "hl7v2", error=exc)
        except (TableError, ValueError) as exc:
            item.outcome = Outcome("AE", "hl7v2", error=exc)

    def _commit_one(self, item: _Work) -> None:
        assert item.outcome is not None
        try:
            with self.repo.session() as session:
                for bundle in item.outcome.bundles:
                    session.process_bundle(bundle)
                if self.audit:
                    session.update(self._audit(item))
        except Unavailable as exc:
            self._unavailable(item, exc)
        except StoreError as exc:
            item.outcome = Outcome("AE", item.fmt, error=exc)

    @staticmethod
    def _unavailable(item: _Work, exc: Unavailable) -> None:
        """The store is down: answer AE so the sender keeps the message and resends it; nothing to keep here."""
        item.outcome = Outcome("AE", item.fmt, error=exc)

    def _keep_dead_letters(self, work: Sequence[_Work]) -> None:
        """Write a dead-letter Task for every message that failed for a reason other than an outage."""
        failed = [
            w for w in work if w.outcome is not None and not w.outcome.accepted
            and not isinstance(w.outcome.error, Unavailable)
        ]
        if not failed:
            return
        tasks = []
        for item in failed:
            assert item.outcome is not None
            location = _location(item.outcome.error)
            task = dead_letter_task(
                item.raw, fmt=item.fmt, source=item.source, reason=item.outcome.reason, location=location
            )
            item.outcome.dead_letter = task["id"]
            tasks.append(task)
            if self.audit:
                tasks.append(self._audit(item))
        try:
            with self.repo.session() as session:
                for task in tasks:
                    session.update(task)
        except StoreError as exc:
            log.error("dead letters could not be stored: %s", exc.message)
            for item in failed:
                assert item.outcome is not None
                item.outcome.dead_letter = None
                if not isinstance(item.outcome.error, ParseError | MappingError):
                    item.outcome.error = exc
                item.outcome.code = "AE"


    def _audit(self, item: _Work) -> Bundle:
        """The AuditEvent of one message (an id of its own, so it can ride in a transaction of PUTs).

        Who: the sender (MSH-3^MSH-4) and the peer address; what: the resources stored, or the dead-letter
        Task; outcome 0 for AA, 4 for AR (the message is wrong), 8 for AE (it could not be processed here).
        """
        assert item.outcome is not None
        outcome = item.outcome
        if outcome.dead_letter is not None:
            refs = [f"Task/{outcome.dead_letter}"]
        else:
            refs = list(dict.fromkeys(e["request"]["url"] for b in outcome.bundles for e in b.get("entry", []) if "request" in e))
        msh = item.message.msh if item.message is not None else None
        sender = f"{msh.get(3)}^{msh.get(4)}" if msh is not None else ""
        address = item.source.removeprefix("mllp:").rsplit(":", 1)[0] if item.source.startswith("mllp:") else ""
        who: Bundle = {"identifier": {"system": SENDER_SYSTEM, "value": sender}} if sender.strip("^") else {"display": item.source or "ingest"}
        event = audit_event(
            event_type={"system": DCM, "code": "110107", "display": "Import"},
            action="C",
            outcome={"AA": "0", "AR": "4"}.get(outcome.code, "8"),
            agents=[agent(who, address.strip("[]"))],
            observer="medsync-interop ingest",
            entities=[entity(ref) for ref in refs],
            outcome_desc="" if outcome.accepted else f"ACK {outcome.code}",
        )
        event["id"] = str(uuid.uuid4())
        return event


def _audit_bundle(events: list[Bundle]) -> Bundle:
    """AuditEvents as a transaction of PUTs, so :func:`_grouped` merges them into the group's one."""
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": e, "request": {"method": "PUT", "url": f"AuditEvent/{e['id']}"}} for e in events
        ],
    }


def _plain_puts(bundle: Bundle) -> bool:
    """A transaction of unconditional PUTs only: what the feed adapters emit (ids from business keys)."""
    if bundle.get("type") != "transaction":
        return False
    for entry in bundle.get("entry", []):
        request = entry.get("request", {})
        if request.get("method") != "PUT" or "?" in request.get("url", "") or "ifMatch" in request:
            return False
    return True


def _grouped(bundles: list[Bundle]) -> list[Bundle]:
    """The group's Bundles as one transaction when they are all plain PUTs, else as they are.

    Applying PUTs of the same resource one after another leaves what the last one says, so a merged
    transaction keeps the last entry per ``request.url``: the stored state is the same as committing the
    messages in order, in one round of statements instead of one per message.
    """
    if len(bundles) < 2 or not all(_plain_puts(b) for b in bundles):
        return bundles
    latest: dict[str, Any] = {}
    for bundle in bundles:
        for entry in bundle.get("entry", []):
            url = entry["request"]["url"]
            latest.pop(url, None)
            latest[url] = entry
    return [{"resourceType": "Bundle", "type": "transaction", "entry": list(latest.values())}]


def _location(error: BaseException | None) -> str | None:
    """Where in the message the error is: ``RXD-7 (segment 4)``, ``line 3``, ``byte 120``."""
    if error is None:
        return None
    segment = getattr(error, "segment", None)
    fld = getattr(error, "field", None)
    if segment:
        return f"{segment}-{fld}" if fld is not None else str(segment)
    for attr, label in (("location", ""), ("line", "line "), ("offset", "byte ")):
        value = getattr(error, attr, None)
        if value is not None:
            return f"{label}{value}"
    return None
