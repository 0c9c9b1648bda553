"""Reading FHIR values the same way everywhere: a Reference's ``Type/id``, a date or dateTime's day."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date


def reference_of(value: object) -> str:
    """``Reference.reference`` of ``value`` as written (empty when absent or not a string)."""
    ref = value.get("reference") if isinstance(value, Mapping) else None
    return ref if isinstance(ref, str) else ""


def bare(ref: str) -> str:
    """``Type/id`` of a reference that may carry a base URL or a ``/_history/n`` version."""
    parts = ref.split("/_history/")[0].split("/")
    return "/".join(parts[-2:]) if len(parts) >= 2 else ref


def day_of(value: object) -> date | None:
    """The calendar day a FHIR date, dateTime or instant names (its first 10 characters), or None."""
    if isinstance(value, str) and len(value) >= 10:
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None
