"""NCPDP SCRIPT XML (2017071, 2023011): hardened reading, mapping to FHIR R4, outbound RxRenewalRequest."""

from adapters.script.errors import ScriptError
from adapters.script.inbound import Conversion, convert, message_to_fhir, to_bundles, to_fhir
from adapters.script.reader import DEFAULT_MAX_BYTES, DEFAULT_VERSION, ScriptMessage, read_message
from adapters.script.renewal import build_renewal_request, renewal_message_id

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_VERSION",
    "Conversion",
    "ScriptError",
    "ScriptMessage",
    "build_renewal_request",
    "convert",
    "message_to_fhir",
    "read_message",
    "renewal_message_id",
    "to_bundles",
    "to_fhir",
]
