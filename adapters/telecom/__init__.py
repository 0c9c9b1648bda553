"""NCPDP Telecommunication D.0: the one codec (parse, serialize, build) and its mapping to FHIR R4.

Inbound, a B1 dispensing record becomes a MedicationDispense and its MedicationRequest; a response becomes
a ClaimResponse. Outbound, the claims builder writes a B1 through ``Transmission`` + ``serialize``, and its B2 with ``reversal``.
"""

from adapters.telecom.codec import Repair, parse, parse_lenient, serialize
from adapters.telecom.errors import TelecomError
from adapters.telecom.model import RequestHeader, ResponseHeader, Segment, Transaction, Transmission
from adapters.telecom.reversal import reversal

__all__ = [
    "Repair",
    "RequestHeader",
    "ResponseHeader",
    "Segment",
    "TelecomError",
    "Transaction",
    "Transmission",
    "parse",
    "parse_lenient",
    "reversal",
    "serialize",
]
