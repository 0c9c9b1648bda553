"""The search parameters we serve, loaded once from ``conformance/searchparameters.json``.

Each entry implements one official R4 SearchParameter (``definition``); its ``paths`` use the small dotted
syntax documented in ``conformance/README.md`` and compiled by :mod:`interop.store.indexing`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

PARAM_TYPES = frozenset({"token", "reference", "date", "string", "quantity", "uri"})


@dataclass(frozen=True, slots=True)
class SearchParam:
    """One search parameter of one resource type (FHIR SearchParameter.code/type/expression/target)."""

    code: str
    type: str
    paths: tuple[str, ...]
    targets: tuple[str, ...]
    definition: str

    @property
    def table_kind(self) -> str:
        """The index table holding this parameter's values (uri values live with the tokens)."""
        return "token" if self.type == "uri" else self.type


def _param(raw: dict[str, Any]) -> SearchParam:
    if raw["type"] not in PARAM_TYPES:
        raise ValueError(f"searchparameters.json: {raw['code']}: unsupported type {raw['type']!r}")
    return SearchParam(
        code=raw["code"],
        type=raw["type"],
        paths=tuple(raw["paths"]),
        targets=tuple(raw.get("targets", ())),
        definition=raw["definition"],
    )


@cache
def _table() -> dict[str, dict[str, SearchParam]]:
    text = resources.files("conformance").joinpath("searchparameters.json").read_text(encoding="utf-8")
    doc = json.loads(text)
    common = [_param(raw) for raw in doc["common"]]
    table: dict[str, dict[str, SearchParam]] = {}
    for rtype, raws in doc["types"].items():
        params = {p.code: p for p in common}
        for raw in raws:
            params[raw["code"]] = _param(raw)
        table[rtype] = params
    return table


def served_types() -> list[str]:
    """The resource types the store indexes and serves, in table order."""
    return list(_table())


def params_for(resource_type: str) -> dict[str, SearchParam]:
    """Code → parameter for one type (``_id`` and ``_lastUpdated`` included); empty for an unknown type."""
    return _table().get(resource_type, {})


def param(resource_type: str, code: str) -> SearchParam | None:
    """One parameter, or None when ``resource_type`` does not have it."""
    return _table().get(resource_type, {}).get(code)


def common_params() -> dict[str, SearchParam]:
    """The parameters every type has (``_id``, ``_lastUpdated``), for searches across all types."""
    first = next(iter(_table().values()))
    return {code: p for code, p in first.items() if code.startswith("_")}


def capability_search_params(resource_type: str) -> list[dict[str, str]]:
    """``CapabilityStatement.rest.resource.searchParam`` entries (name, definition, type) for one type."""
    return [
        {"name": p.code, "definition": p.definition, "type": p.type}
        for p in params_for(resource_type).values()
    ]
