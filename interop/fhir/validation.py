"""Validation of resources written by clients, at the trust boundary, with the ``fhir.resources.R4B`` models.

Internal resources are built as plain dicts and proven valid by tests; only what a client sends is checked
here (0.3 to 0.7 ms per resource). Each problem becomes an :class:`Issue` whose ``expression`` is a
FHIRPath-like element path (``Patient.name[0].given[0]``), as OperationOutcome.issue.expression wants.
The models accept any string for a ``code``, so codes with a required binding are checked afterwards
against ``conformance/required-bindings.json`` (Patient.gender, MedicationDispense.status, ...).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any, Union

from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.resource import Resource as FhirResource
from pydantic import BaseModel, ValidationError

R4B_ONLY = frozenset(
    {
        "AdministrableProductDefinition",
        "Citation",
        "ClinicalUseDefinition",
        "EvidenceReport",
        "Ingredient",
        "ManufacturedItemDefinition",
        "NutritionProduct",
        "PackagedProductDefinition",
        "RegulatedAuthorization",
        "SubscriptionStatus",
        "SubscriptionTopic",
    }
)
"""Resource types the R4B models know but FHIR R4 (4.0.1) does not have: never accepted as R4 resources."""


@dataclass(frozen=True, slots=True)
class Issue:
    """One OperationOutcome.issue: ``status`` is 400 for a request that is not a resource of the right
    type at all, 422 for a resource of the right type with invalid content."""

    diagnostics: str
    expression: list[str] = field(default_factory=list)
    code: str = "invalid"
    status: int = 422


@cache
def model_class(resource_type: str) -> type[BaseModel] | None:
    """The R4B model of an R4 resource type, or None when ``resource_type`` is not one."""
    if resource_type in R4B_ONLY or not resource_type[:1].isupper():
        return None
    try:
        cls = get_fhir_model_class(resource_type)
    except (ValueError, KeyError, AttributeError):
        return None
    return cls if issubclass(cls, FhirResource) else None


def _path(root: str, loc: tuple[int | str, ...]) -> str:
    out = root
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += "." + part
    return out


def validate_resource(
    data: object, expected_type: str | None = None, *, root: str | None = None
) -> list[Issue]:
    """Every problem with ``data`` as a FHIR R4 resource (empty when valid).

    ``expected_type`` is the type the URL names (a mismatch is a 400 issue); ``root`` replaces the
    resource type at the start of each expression, e.g. ``Bundle.entry[3].resource`` for a Bundle entry.
    """
    if not isinstance(data, dict):
        return [Issue("the body is not a JSON object", [root or "Resource"], "structure", 400)]
    rtype = data.get("resourceType")
    where = root or (rtype if isinstance(rtype, str) else "Resource")
    if not isinstance(rtype, str) or not rtype:
        return [Issue("resourceType is missing", [f"{where}.resourceType"], "required", 400)]
    cls = model_class(rtype)
    if cls is None or rtype in ("Resource", "DomainResource"):
        return [
            Issue(
                f"unknown resourceType {rtype!r}: not a FHIR R4 resource",
                [f"{where}.resourceType"],
                "not-supported",
                400,
            )
        ]
    if expected_type is not None and rtype != expected_type:
        return [
            Issue(
                f"resourceType {rtype!r} does not match the {expected_type!r} the URL names",
                [f"{where}.resourceType"],
                "invalid",
                400,
            )
        ]
    try:
        cls.model_validate(data)
    except ValidationError as exc:
        issues = []
        for err in exc.errors(include_url=False):
            loc = tuple(err.get("loc", ()))
            issues.append(Issue(f"{err['msg']}", [_path(where, loc)], _code(err.get("type", "")), 422))
        return issues
    except (ValueError, TypeError, KeyError) as exc:  # raised by the models outside pydantic's wrapping
        return [Issue(f"invalid content: {exc}", [where], "invalid", 422)]
    invalid_codes: list[Issue] = []
    _check_codes(data, bindings_of(rtype), where, invalid_codes)
    return invalid_codes


BindingNode = dict[str, Union[frozenset[str], "BindingNode"]]
"""Required bindings below one element: JSON key → the allowed codes, or the node of a complex child."""


@cache
def _binding_table() -> dict[str, Any]:
    text = resources.files("conformance").joinpath("required-bindings.json").read_text(encoding="utf-8")
    table: dict[str, Any] = json.loads(text)
    return table


@cache
def bindings_of(resource_type: str) -> BindingNode:
    """The required bindings of a served type as a tree (cyclic where an element repeats an ancestor,
    as Questionnaire.item.item does); empty for the types the table does not list."""
    table = _binding_table()
    value_sets = {url: frozenset(codes) for url, codes in table["valueSets"].items()}
    root: BindingNode = {}
    links: list[tuple[str, str]] = []
    for path, target in table["types"].get(resource_type, {}).items():
        if target.startswith("@"):
            links.append((path, target[1:]))
        else:
            *parents, leaf = path.split(".")
            _node_at(root, parents)[leaf] = value_sets[target]
    for path, target in links:
        *parents, leaf = path.split(".")
        _node_at(root, parents)[leaf] = _node_at(root, target.split("."))
    return root


def _node_at(root: BindingNode, keys: list[str]) -> BindingNode:
    node = root
    for key in keys:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise ValueError(f"required-bindings.json: {'.'.join(keys)} is both a code and an element")
        node = child
    return node


def _check_codes(data: dict[str, Any], node: BindingNode, where: str, issues: list[Issue]) -> None:
    """Append a ``code-invalid`` issue for every code in ``data`` outside its required value set."""
    for key, rule in node.items():
        value = data.get(key)
        if value is None:
            continue
        items = enumerate(value) if isinstance(value, list) else ((None, value),)
        for index, item in items:
            path = f"{where}.{key}" if index is None else f"{where}.{key}[{index}]"
            if isinstance(rule, frozenset):
                if isinstance(item, str) and item not in rule:
                    issues.append(Issue(_not_allowed(item, rule), [path], "code-invalid", 422))
            elif isinstance(item, dict):
                _check_codes(item, rule, path, issues)


def _not_allowed(code: str, allowed: frozenset[str]) -> str:
    """Diagnostics for a code outside its required value set, listing the codes when they are few."""
    if len(allowed) <= 12:
        return f"{code!r} is not allowed here (required binding): use one of {', '.join(sorted(allowed))}"
    return f"{code!r} is not allowed here (required binding to {len(allowed)} codes)"


def _code(error_type: str) -> str:
    """OperationOutcome issue code for a pydantic error type."""
    if error_type == "extra_forbidden":
        return "structure"
    if error_type == "missing":
        return "required"
    return "value"


__all__ = ["BindingNode", "Issue", "bindings_of", "model_class", "validate_resource"]
