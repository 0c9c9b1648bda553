"""The PQA PDC Star classes (PDC-DR, PDC-RASA, PDC-STA) by RxNorm ingredient, and product codes to ingredients.

Loaded from ``mappings/reports/pdc-classes.csv`` and ``pdc-drugs.csv`` (sources in mappings/README.md); a class
table is plain data passed into the measures, so tests and sites can supply their own.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources

from interop.fhir.systems import CodeSystem, normalize_ndc

CLASSES_FILE = "pdc-classes.csv"
DRUGS_FILE = "pdc-drugs.csv"


@dataclass(frozen=True, slots=True)
class PdcMeasure:
    """One PQA PDC measure: its PQA code, a URL-safe slug for our Measure canonical, and its title."""

    code: str
    slug: str
    title: str


MEASURES: tuple[PdcMeasure, ...] = (
    PdcMeasure("PDC-DR", "pdc-dr", "Proportion of Days Covered: Diabetes All Class (non-insulin)"),
    PdcMeasure("PDC-RASA", "pdc-rasa", "Proportion of Days Covered: Renin Angiotensin System Antagonists"),
    PdcMeasure("PDC-STA", "pdc-sta", "Proportion of Days Covered: Statins"),
)
MEASURE_BY_CODE: Mapping[str, PdcMeasure] = {m.code: m for m in MEASURES}


class ClassTableError(ValueError):
    """A row of a class or drug table that cannot be used, named by file and line."""


@dataclass(frozen=True)
class ClassTable:
    """Class membership and exclusions keyed by RxNorm ingredient CUI, plus product code → ingredient CUIs.

    ``members`` maps an ingredient to its measure code; ``exclusions`` maps an ingredient whose use removes the
    patient from measures (insulin from PDC-DR); ``products`` maps ("ndc", NDC-11) or ("rxnorm", CUI) to
    the ingredient CUIs of that product (several for a combination product).
    """

    members: Mapping[str, str]
    exclusions: Mapping[str, frozenset[str]]
    names: Mapping[str, str]
    products: Mapping[tuple[str, str], tuple[str, ...]]

    def ingredients(self, system: str, code: str) -> tuple[str, ...]:
        """The tracked ingredient CUIs of one coding (NDC any form, or RxNorm product or ingredient)."""
        if system == CodeSystem.NDC:
            ndc = normalize_ndc(code)
            return self.products.get(("ndc", ndc), ()) if ndc else ()
        if system == CodeSystem.RXNORM:
            found = self.products.get(("rxnorm", code.strip()))
            if found is not None:
                return found
            cui = code.strip()
            if cui in self.members or cui in self.exclusions:
                return (cui,)
        return ()

    def name(self, cui: str) -> str:
        """The ingredient's name, or its CUI when the table does not name it."""
        return self.names.get(cui, cui)


def _rows(text: str, filename: str, columns: tuple[str, ...]) -> Iterable[tuple[int, dict[str, str]]]:
    reader = csv.DictReader(io.StringIO(text))
    if tuple(reader.fieldnames or ()) != columns:
        raise ClassTableError(f"{filename}: line 1: expected columns {','.join(columns)}")
    for row in reader:
        line = reader.line_num
        if any(not (row.get(c) or "").strip() for c in columns):
            raise ClassTableError(f"{filename}: line {line}: every column must have a value")
        yield line, {k: v.strip() for k, v in row.items() if k is not None and v is not None}


def parse_class_table(classes_csv: str, drugs_csv: str) -> ClassTable:
    """Build a ClassTable from the text of the two CSV tables, rejecting unknown measures and roles by line."""
    members: dict[str, str] = {}
    exclusions: dict[str, set[str]] = {}
    names: dict[str, str] = {}
    for line, row in _rows(
        classes_csv, CLASSES_FILE, ("measure", "role", "rxcui", "ingredient", "group", "source")
    ):
        measure, role, cui = row["measure"], row["role"], row["rxcui"]
        if measure not in MEASURE_BY_CODE:
            raise ClassTableError(f"{CLASSES_FILE}: line {line}: unknown measure {measure!r}")
        if not cui.isdigit():
            raise ClassTableError(f"{CLASSES_FILE}: line {line}: rxcui {cui!r} is not an RxNorm CUI")
        if role == "member":
            if members.get(cui, measure) != measure:
                raise ClassTableError(f"{CLASSES_FILE}: line {line}: {cui} is already in {members[cui]}")
            members[cui] = measure
        elif role == "exclusion":
            exclusions.setdefault(cui, set()).add(measure)
        else:
            raise ClassTableError(
                f"{CLASSES_FILE}: line {line}: role must be member or exclusion, not {role!r}"
            )
        names[cui] = row["ingredient"]
    products: dict[tuple[str, str], tuple[str, ...]] = {}
    for line, row in _rows(
        drugs_csv, DRUGS_FILE, ("system", "code", "rxcui", "ingredient", "product", "source")
    ):
        system, code, cui = row["system"], row["code"], row["rxcui"]
        if system == "ndc":
            ndc = normalize_ndc(code)
            if ndc is None:
                raise ClassTableError(f"{DRUGS_FILE}: line {line}: {code!r} is not an NDC")
            code = ndc
        elif system != "rxnorm":
            raise ClassTableError(f"{DRUGS_FILE}: line {line}: system must be ndc or rxnorm, not {system!r}")
        if cui not in members and cui not in exclusions:
            raise ClassTableError(f"{DRUGS_FILE}: line {line}: ingredient {cui} is in no class")
        key = (system, code)
        products[key] = (*products.get(key, ()), cui)
    return ClassTable(members, {k: frozenset(v) for k, v in exclusions.items()}, names, products)


@cache
def load_class_table() -> ClassTable:
    """The class table shipped in mappings/reports (read once per process)."""
    folder = resources.files("mappings.reports")
    return parse_class_table(
        folder.joinpath(CLASSES_FILE).read_text(encoding="utf-8"),
        folder.joinpath(DRUGS_FILE).read_text(encoding="utf-8"),
    )
