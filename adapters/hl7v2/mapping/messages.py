"""Which message maps to which resources: one function per message family, chosen by MSH-9.

Pharmacy (RDE^O11/O01/O25, RDS^O13/O01, OMP^O09, ORM^O01 with RXO), scheduling (SIU^S12-S17, S26) and ADT
(A01, A04, A08, A28, A31, A40); VXU^V04 yields its Patient only (immunizations are not mapped here).
"""

from __future__ import annotations

from collections.abc import Callable

from adapters.hl7v2.er7 import Message
from adapters.hl7v2.mapping import appointment, patient, refill
from adapters.hl7v2.mapping.bundle import (
    JSON,
    SEGMENT_SEQUENCE_ERROR,
    UNSUPPORTED_EVENT_CODE,
    UNSUPPORTED_MESSAGE_TYPE,
    Context,
    MappingError,
)
from adapters.hl7v2.mapping.dispense import medication_dispense
from adapters.hl7v2.mapping.order import order_groups
from adapters.hl7v2.mapping.request import medication_request


def _patient(ctx: Context) -> str:
    pid = ctx.message.first("PID")
    if pid is None:
        raise MappingError(
            "PID segment missing: the resources need a subject", segment="PID", code=SEGMENT_SEQUENCE_ERROR
        )
    return patient.patient(ctx, pid)


def pharmacy(ctx: Context) -> None:
    """Every ORDER group: RXE or RXO → MedicationRequest, RXD → MedicationDispense (no FT1 charge lines)."""
    groups = order_groups(ctx.message)
    if not groups:
        msh = ctx.message.msh
        raise MappingError.at(msh, 9, "pharmacy message without RXO, RXE or RXD segment", SEGMENT_SEQUENCE_ERROR)
    if len(groups) == 1 and refill.one_fill(groups[0]):
        pid = ctx.message.first("PID")
        if pid is not None:
            refill.convert_fill(ctx, pid, groups[0])
            return
    subject = _patient(ctx)
    for group in groups:
        if group.rxe is not None or group.rxo is not None:
            medication_request(ctx, group, subject)
        if group.rxd is not None:
            medication_dispense(ctx, group, subject)


def scheduling(ctx: Context) -> None:
    """SCH (+resources) → Appointment, with the Patient of the PID when present."""
    pid = ctx.message.first("PID")
    subject = patient.patient(ctx, pid) if pid is not None else None
    appointment.appointment(ctx, subject)


def admission(ctx: Context) -> None:
    """PID → Patient; A40 adds the merge links from MRG-1."""
    subject = _patient(ctx)
    if ctx.message.message_type[1] == "A40":
        mrg = ctx.message.first("MRG")
        pid = ctx.message.first("PID")
        if mrg is None or pid is None:
            raise MappingError("ADT^A40 without MRG segment", segment="MRG", code=SEGMENT_SEQUENCE_ERROR)
        patient.merge(ctx, pid, mrg, subject)


def patient_only(ctx: Context) -> None:
    """Messages outside the med-sync scope that still identify a patient (VXU^V04)."""
    _patient(ctx)


HANDLERS: dict[str, dict[str, Callable[[Context], None]]] = {
    "RDE": {"O11": pharmacy, "O01": pharmacy, "O25": pharmacy},
    "RDS": {"O13": pharmacy, "O01": pharmacy},
    "OMP": {"O09": pharmacy},
    "ORM": {"O01": pharmacy},
    "SIU": {e: scheduling for e in ("S12", "S13", "S14", "S15", "S16", "S17", "S26")},
    "ADT": {e: admission for e in ("A01", "A04", "A08", "A28", "A31", "A40")},
    "VXU": {"V04": patient_only},
}
"""MSH-9.1 message code → MSH-9.2 trigger event → mapper."""


def to_bundle(message: Message) -> JSON:
    """One transaction Bundle for one message; MappingError (with ERR location and table 0357 code) otherwise."""
    code, event, _ = message.message_type
    family = HANDLERS.get(code)
    if family is None:
        raise MappingError.at(message.msh, 9, f"message type {code} is not mapped", UNSUPPORTED_MESSAGE_TYPE)
    handler = family.get(event)
    if handler is None:
        raise MappingError.at(message.msh, 9, f"trigger event {code}^{event} is not mapped", UNSUPPORTED_EVENT_CODE)
    ctx = Context(message)
    handler(ctx)
    return ctx.builder.bundle()
