"""``POST [base]/$convert-data``: a feed message in, its FHIR Bundle out, nothing stored.

The convention of the Azure FHIR service and Microsoft FHIR-Converter: a Parameters resource with
``inputData`` (the message as a string) and ``inputDataType`` (``Hl7v2``, ``NcpdpScript``, ``NcpdpTelecom``).
A message that cannot be converted answers 422 with the reason and where (segment-field, line, byte).
"""

from __future__ import annotations

from typing import Any

from interop.api.exchange import FhirRequest, FhirResponse
from interop.api.operations import operation
from interop.api.outcome import rejected
from interop.ingest.convert import ConversionError, convert
from interop.store.base import Repository

_WHERE = "Parameters.parameter.where(name = '{}')"
INPUT_TYPES = {"Hl7v2": "hl7v2", "NcpdpScript": "script", "NcpdpTelecom": "telecom"}


def _parameters(body: object) -> dict[str, str]:
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise rejected(400, "invalid", "the body must be a Parameters resource", ["Parameters"])
    values: dict[str, str] = {}
    for i, param in enumerate(body.get("parameter", [])):
        if not isinstance(param, dict) or not isinstance(param.get("name"), str):
            raise rejected(400, "invalid", "each parameter needs a name", [f"Parameters.parameter[{i}].name"])
        value = param.get("valueString", param.get("valueCode"))
        if isinstance(value, str):
            values[param["name"]] = value
    return values


@operation(
    "convert-data",
    system=True,
    scopes=(),
    affects_state=False,
    documentation="Convert one HL7 v2, NCPDP SCRIPT or NCPDP D.0 message to a FHIR transaction Bundle without storing it.",
)
def convert_data(req: FhirRequest, repo: Repository) -> FhirResponse:
    """Parameters(inputData, inputDataType) → the Bundle; a batch file's several Bundles come in a collection."""
    params = _parameters(req.json())
    data = params.get("inputData")
    if not data:
        raise rejected(400, "required", "inputData is required", [_WHERE.format("inputData")])
    kind = params.get("inputDataType", "")
    fmt = INPUT_TYPES.get(kind)
    if fmt is None:
        known = ", ".join(INPUT_TYPES)
        raise rejected(
            400,
            "code-invalid",
            f"inputDataType {kind!r} is not one of {known}",
            [_WHERE.format("inputDataType")],
        )
    try:
        bundles = convert(data.encode("utf-8"), fmt)
    except ConversionError as exc:
        raise rejected(422, "processing", exc.describe(), [_WHERE.format("inputData")]) from exc
    if len(bundles) == 1:
        return FhirResponse(200, bundles[0])
    batch: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": b} for b in bundles],
    }
    return FhirResponse(200, batch)
