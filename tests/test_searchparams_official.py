"""Our search parameter table against the official R4 SearchParameter definitions (hl7.fhir.r4.examples@4.0.1).

1. Every entry names an official SearchParameter with the same code and type whose base has our type.
2. On the official examples of the served types, the values our compiled paths index agree with the official
   FHIRPath ``expression`` evaluated by fhirpathpy (references by target id, tokens by code, dates by start,
   strings by folded text, quantities by value).
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from fhirpathpy import evaluate
from fhirpathpy.models import models

from interop.store.indexing import MIN_INSTANT, date_range, index_rows, normalize
from interop.store.searchparams import capability_search_params, param, params_for, served_types
from tests.fhirschema import R4_PACKAGE, require_assets

PER_TYPE = 40
"""Official examples read per type (there are about 300 for the served types in all)."""

SKIPPED: dict[str, str] = {
    "_id": "served from resource.id, not from index rows",
}
"""Parameter codes not compared on the examples, with the reason."""

_RESOLVE = re.compile(r"\.where\(resolve\(\) is (\w+)\)")
_AS = re.compile(r"\((\w+(?:\.\w+)*) as (\w+)\)")
_HUMAN_NAME_PARTS = ("text", "family", "given", "prefix", "suffix")  # FHIR R4 §3.1.1.4.8 string on HumanName
_ADDRESS_PARTS = ("text", "line", "city", "district", "state", "postalCode", "country")  # ... and on Address


@cache
def _official() -> dict[str, dict[str, Any]]:
    out = {}
    for path in R4_PACKAGE.glob("SearchParameter-*.json"):
        sp = json.loads(path.read_text())
        if "url" in sp:
            out[sp["url"]] = sp
    return out


def _examples() -> list[Path]:
    if not R4_PACKAGE.is_dir():
        return []
    files: list[Path] = []
    for rtype in served_types():
        files += sorted(R4_PACKAGE.glob(f"{rtype}-*.json"))[:PER_TYPE]
    return files


def test_every_parameter_is_an_official_one() -> None:
    require_assets()
    official = _official()
    checked = 0
    for rtype in served_types():
        for p in params_for(rtype).values():
            sp = official.get(p.definition)
            assert sp is not None, f"{rtype}.{p.code}: no official SearchParameter {p.definition}"
            assert sp["code"] == p.code, f"{rtype}.{p.code}: official code is {sp['code']}"
            assert sp["type"] == p.type, f"{rtype}.{p.code}: official type is {sp['type']}"
            assert rtype in sp["base"] or "Resource" in sp["base"], f"{rtype}.{p.code}: base is {sp['base']}"
            assert set(p.targets) <= set(sp.get("target", [])), f"{rtype}.{p.code}: targets {p.targets}"
            checked += 1
    assert checked > 300


def test_capability_entries_carry_the_definitions() -> None:
    entries = capability_search_params("MedicationDispense")
    by_name = {e["name"]: e for e in entries}
    assert by_name["prescription"] == {
        "name": "prescription",
        "definition": "http://hl7.org/fhir/SearchParameter/medications-prescription",
        "type": "reference",
    }
    assert {"_id", "_lastUpdated", "patient", "status", "whenhandedover"} <= set(by_name)
    assert len(served_types()) == 26


def _official_expression(rtype: str, expression: str) -> str:
    parts = [e for e in expression.split(" | ") if re.match(rf"^\(?(Resource|{rtype})\.", e)]
    joined = " | ".join(parts).replace("Resource.", f"{rtype}.")
    # fhirpathpy wants a singleton left of `as`; ofType() is the same filter over a collection.
    joined = _AS.sub(lambda m: f"{m.group(1)}.ofType({m.group(2)})", joined)
    # fhirpathpy has no resolve(): a reference's type is read from its "Type/id" text (or its type) instead.
    return _RESOLVE.sub(
        lambda m: (
            f".where(reference.startsWith('{m.group(1)}/') or reference.contains('/{m.group(1)}/')"
            f" or type = '{m.group(1)}')"
        ),
        joined,
    )


def _reference_keys(values: list[Any]) -> set[str]:
    """Target ids of literal references (relative, or absolute under a /fhir/ base), else the whole text;
    canonicals (plain strings) as they are."""
    keys = set()
    for v in values:
        if isinstance(v, str):
            keys.add(v)
            continue
        ref = v.get("reference") if isinstance(v, dict) else None
        if ref and not ref.startswith("#"):
            m = re.match(r"^(?:(.*)/)?[A-Z][A-Za-z]+/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$", ref)
            local = m is not None and (m.group(1) is None or m.group(1).endswith("/fhir"))
            keys.add(m.group(2) if m and local else ref)
    return keys


def _token_keys(values: list[Any]) -> set[str]:
    keys = set()
    for v in values:
        if isinstance(v, bool):
            keys.add("true" if v else "false")
        elif isinstance(v, str | int):
            keys.add(str(v))
        elif isinstance(v, dict):
            for c in v.get("coding", []):
                if c.get("code"):
                    keys.add(c["code"])
            if "coding" not in v:
                code = v.get("code") if "value" not in v else v.get("value")
                if code:
                    keys.add(code)
    return keys


def _date_keys(values: list[Any]) -> set[float]:
    """The first instant each value covers; a Timing by its outer limits (events, repeat.boundsPeriod)."""
    keys = set()
    for v in values:
        if isinstance(v, dict) and ("event" in v or "repeat" in v):
            starts = [span[0] for e in v.get("event", []) if (span := date_range(e))]
            bounds = v.get("repeat", {}).get("boundsPeriod")
            if bounds is not None:
                starts.append(span[0] if (span := date_range(bounds.get("start", ""))) else MIN_INSTANT)
            if starts:
                keys.add(min(starts))
        elif isinstance(v, dict):
            start = date_range(v["start"]) if "start" in v else None
            keys.add(start[0] if start else MIN_INSTANT)
        elif (span := date_range(str(v))) is not None:
            keys.add(span[0])
    return keys


def _string_keys(values: list[Any]) -> set[str]:
    keys = set()
    for v in values:
        if isinstance(v, str):
            keys.add(normalize(v))
        elif isinstance(v, dict):
            for part in (*_HUMAN_NAME_PARTS, *_ADDRESS_PARTS):
                got = v.get(part)
                for text in got if isinstance(got, list) else [got]:
                    if isinstance(text, str) and text.strip():
                        keys.add(normalize(text))
    return keys


def _quantity_keys(values: list[Any]) -> set[Decimal]:
    return {Decimal(str(v["value"])) for v in values if isinstance(v, dict) and "value" in v}


def _ours(kind: str, rows: list[dict[str, Any]]) -> set[Any]:
    if kind == "reference":
        return {r["target_id"] or r["url"] for r in rows}
    if kind == "token":
        return {r["code"] for r in rows if r["code"] is not None}
    if kind == "date":
        return {r["low"] for r in rows}
    if kind == "string":
        return {r["norm"] for r in rows}
    return {r["value"] for r in rows}


_THEIRS = {
    "reference": _reference_keys,
    "token": _token_keys,
    "uri": _token_keys,
    "date": _date_keys,
    "string": _string_keys,
    "quantity": _quantity_keys,
}


@pytest.mark.parametrize("path", _examples(), ids=lambda p: p.stem)
def test_extraction_agrees_with_official_fhirpath(path: Path) -> None:
    require_assets()
    resource = json.loads(path.read_text())
    rtype = resource.get("resourceType")
    if rtype not in served_types():
        pytest.skip(f"{path.name} holds a {rtype}")
    rows = index_rows(resource)
    official = _official()
    compared = 0
    for code in params_for(rtype):
        if code in SKIPPED:
            continue
        p = param(rtype, code)
        assert p is not None
        expression = _official_expression(rtype, official[p.definition]["expression"])
        theirs = _THEIRS[p.type](evaluate(resource, expression, {"resource": resource}, models["r4"]))
        ours = _ours(p.table_kind, [r for r in rows[p.table_kind] if r["param"] == code])
        assert ours == theirs, f"{path.name} {code}: ours {ours} != official {theirs} ({expression})"
        compared += 1
    assert compared


def test_examples_are_many_and_varied() -> None:
    require_assets()
    files = _examples()
    assert len(files) > 200
    assert len({f.name.split("-")[0] for f in files}) >= 24
