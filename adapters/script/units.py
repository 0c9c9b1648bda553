"""NCI Thesaurus unit codes used by SCRIPT (QuantityUnitOfMeasure, DoseUnitOfMeasure, StrengthUnitOfMeasure).

The table lives in mappings/script/nci-units.csv (codes and names from the NCI EVS NCPDP subsets, CC BY 4.0);
its ``ucum`` column holds the UCUM unit where one exists (C28254 mL, C48155 g); countable forms (C48542
tablet) have none and stay NCI-coded.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from interop.fhir.systems import CodeSystem


@dataclass(frozen=True, slots=True)
class NciUnit:
    code: str
    display: str
    ucum: str


@cache
def nci_units() -> dict[str, NciUnit]:
    """Every NCI unit code in the table, keyed by code."""
    raw = resources.files("mappings.script").joinpath("nci-units.csv").read_text(encoding="utf-8")
    return {
        row["nci_code"]: NciUnit(row["nci_code"], row["display"], row["ucum"])
        for row in csv.DictReader(io.StringIO(raw))
    }


def quantity(value: int | float, code: str, label: str = "") -> dict[str, Any]:
    """A FHIR Quantity for ``value`` in NCI unit ``code``: UCUM-coded when the unit has a UCUM form.

    An unknown NCI code stays NCI-coded with its code as the unit; a bare unit text (no C-code) is kept as
    ``unit`` only, since no system can be named for it.
    """
    result: dict[str, Any] = {"value": value}
    unit = nci_units().get(code) if code else None
    if unit is not None and unit.ucum:
        result.update(unit=unit.ucum, system=CodeSystem.UCUM.value, code=unit.ucum)
    elif unit is not None:
        result.update(unit=unit.display, system=CodeSystem.NCI.value, code=unit.code)
    elif code and code[0] == "C" and code[1:].isdigit():
        result.update(unit=label or code, system=CodeSystem.NCI.value, code=code)
    elif label or code:
        result["unit"] = label or code
    return result


def ucum_to_nci(ucum: str) -> str:
    """The NCI code whose UCUM form is ``ucum`` ("" when none): used when writing SCRIPT from FHIR."""
    for unit in nci_units().values():
        if unit.ucum == ucum:
            return unit.code
    return ""
