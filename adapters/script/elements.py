"""Typed facts read from SCRIPT elements: the drug (MedicationPrescribed/Dispensed) and the three parties.

The mapper and the round-trip tests both work from these, so what the reader understood is inspectable
without FHIR. Dates, numbers and code values are checked here, each failure naming its element path.

Unusual, for speed: the facts are NamedTuples, not frozen dataclasses (equally immutable). A frozen
dataclass sets every field through ``object.__setattr__``: building a Drug took 3.5 µs, as a NamedTuple
0.9 µs; with reader.py's namespace drop, NewRx conversion (bench/bench_script.py) ran 1.02x to 1.13x
faster in same-process A/B runs on a loaded host.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import NamedTuple

from adapters.script.errors import InvalidValueError
from adapters.script.tree import Node, child, elements, node_at, nodes, own_text, text

_DATE = re.compile(r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$")
_DATETIME = re.compile(
    r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d+)?(Z|[+-]\d{2}:\d{2})?$"
)
_ZONED = re.compile(r"(Z|[+-]\d{2}:\d{2})$")
_INTEGER = re.compile(r"^\d{1,9}$")
_DECIMAL = re.compile(r"^(\d{1,15}(\.\d{0,10})?|\.\d{1,10})$")
"""Plain decimal notation only: no sign, exponent, NaN or Infinity (which would not survive into JSON)."""

RXNORM_QUALIFIERS = frozenset({"SCD", "SBD", "GPCK", "BPCK", "SCDF", "SBDF", "SCDG", "SBDG", "SCDC", "BN", "IN",
                               "MIN", "PIN", "RXNORM"})
"""DrugDBCode qualifiers that name RxNorm concept types (term types)."""


def date_value(element: Node | None, path: str, where: str, *, date_only: bool = False) -> str:
    """A SCRIPT date: ``<X><Date>..</Date></X>``, ``<X><DateTime>..</DateTime></X>`` or bare ``<X>..</X>``."""
    found = child(element, path)
    if found is None:
        return ""
    if isinstance(found, str):
        value = found.strip()
    else:
        value = text(found, "Date") or text(found, "DateTime") or own_text(found)
    if not value:
        return ""
    if _DATE.match(value):
        return value
    if _DATETIME.match(value):
        # FHIR dateTime needs a zone once a time is given; a zoneless time keeps only its date.
        if date_only or not _ZONED.search(value):
            return value[:10]
        return value
    raise InvalidValueError(f"{value!r} is not a date (YYYY-MM-DD) or date-time", path=f"{where}/{path}")


def zoned_datetime(value: str) -> str:
    """``value`` when it is a date-time with a zone (Header/SentTime), else "" (FHIR needs the zone)."""
    return value if _DATETIME.match(value) and _ZONED.search(value) else ""


def integer_value(element: Node | None, path: str, where: str) -> int | None:
    """A non-negative whole number (DaysSupply, NumberOfRefills), or None when absent or empty."""
    raw = text(element, path)
    if not raw:
        return None
    if not _INTEGER.match(raw):
        raise InvalidValueError(f"{raw!r} is not a non-negative whole number", path=f"{where}/{path}")
    return int(raw)


def decimal_value(element: Node | None, path: str, where: str) -> Decimal | None:
    """A non-negative decimal (Quantity/Value), or None when absent or empty."""
    raw = text(element, path)
    if not raw:
        return None
    if not _DECIMAL.match(raw):
        raise InvalidValueError(f"{raw!r} is not a decimal number (digits and one point)", path=f"{where}/{path}")
    return Decimal(raw)


class Coded(NamedTuple):
    """A SCRIPT code with its qualifier (Code + Qualifier children, or a Qualifier attribute) and text."""

    code: str
    qualifier: str = ""
    text: str = ""


def coded(element: Node | None, path: str) -> Coded | None:
    """``<X><Code/><Qualifier/><Text/></X>`` or the attribute shape ``<X Qualifier="ND">code</X>``."""
    node = node_at(element, path)
    if node is None:
        return None
    code = text(node, "Code") or own_text(node)
    qualifier = text(node, "Qualifier") or text(node, "@Qualifier")
    label = text(node, "Text") or text(node, "Description")
    if not code and not label:
        return None
    return Coded(code=code, qualifier=qualifier, text=label)


class SigInstruction(NamedTuple):
    """One structured Sig/Instruction (dose, route, site, delivery method, timing, duration, indication)."""

    dose_quantity: Decimal | None
    dose_unit: Coded | None
    route: Coded | None
    site: Coded | None
    method: Coded | None
    timing_text: str
    duration_text: str
    indication_text: str


class Drug(NamedTuple):
    """MedicationPrescribed or MedicationDispensed (one SCRIPT type), as far as the mapping uses it."""

    path: str
    description: str
    product_code: Coded | None
    db_code: Coded | None
    strength_form: Coded | None
    quantity: Decimal | None
    quantity_unit: Coded | None
    days_supply: int | None
    refills: int | None
    written_date: str
    last_fill_date: str
    substitutions: str
    sig_text: str
    instructions: tuple[SigInstruction, ...]
    note: str
    diagnoses: tuple[Coded, ...]
    effective_date: str
    expiration_date: str
    fill_number: int | None


_EFFECTIVE = frozenset({"EffectiveDate", "StartDate"})
_EXPIRATION = frozenset({"ExpirationDate", "PeriodEnd"})


def _instruction(node: Node, where: str) -> SigInstruction:
    return SigInstruction(
        dose_quantity=decimal_value(node, "DoseAdministration/Dose/DoseQuantity", where),
        dose_unit=coded(node, "DoseAdministration/Dose/DoseUnitOfMeasure"),
        route=coded(node, "RouteOfAdministration"),
        site=coded(node, "SiteOfAdministration"),
        method=coded(node, "DoseAdministration/DoseDeliveryMethod"),
        timing_text=text(node, "AdministrationTiming/Text"),
        duration_text=text(node, "Duration/Text"),
        indication_text=text(node, "Indication/Text"),
    )


def _other_dates(node: Node, where: str) -> tuple[str, str]:
    effective = expiration = ""
    for item in nodes(node, "OtherMedicationDate"):
        qualifier = text(item, "OtherMedicationDateQualifier")
        value = date_value(item, "OtherMedicationDate", f"{where}/OtherMedicationDate", date_only=True)
        if qualifier in _EFFECTIVE and value:
            effective = value
        elif qualifier in _EXPIRATION and value:
            expiration = value
    return effective, expiration


def read_drug(node: Node, where: str) -> Drug:
    """The drug at ``node`` (path ``where``). NumberOfRefills wins; bare Refills/Value is read as a fallback."""
    refills = integer_value(node, "NumberOfRefills", where)
    if refills is None and "Refills" in node:
        refills = integer_value(node, "Refills/Value", where)
    drug_coded = node_at(node, "DrugCoded")
    strength = node_at(drug_coded, "Strength") or node_at(node, "Strength")
    quantity = node_at(node, "Quantity")
    sig = node_at(node, "Sig")
    instructions = tuple(_instruction(item, f"{where}/Sig/Instruction") for item in nodes(sig, "Instruction"))
    effective, expiration = _other_dates(node, where) if "OtherMedicationDate" in node else ("", "")
    fill_number = None
    if "HistorySource" in node:
        fill_number = integer_value(node, "HistorySource/FillNumber", where)
    if fill_number is None and "FillNumber" in node:
        fill_number = integer_value(node, "FillNumber", where)
    diagnoses = tuple(
        c for c in (coded(d, "Primary") for d in nodes(node, "Diagnosis")) if c is not None and c.code
    )
    return Drug(
        path=where,
        description=text(node, "DrugDescription"),
        product_code=coded(drug_coded, "ProductCode"),
        db_code=coded(drug_coded, "DrugDBCode"),
        strength_form=coded(strength, "StrengthForm"),
        quantity=decimal_value(quantity, "Value", f"{where}/Quantity"),
        quantity_unit=coded(quantity, "QuantityUnitOfMeasure"),
        days_supply=integer_value(node, "DaysSupply", where),
        refills=refills,
        written_date=date_value(node, "WrittenDate", where),
        last_fill_date=date_value(node, "LastFillDate", where),
        substitutions=text(node, "Substitutions"),
        sig_text=text(sig, "SigText") or text(node, "Directions"),
        instructions=instructions,
        note=text(node, "Note"),
        diagnoses=diagnoses,
        effective_date=effective,
        expiration_date=expiration,
        fill_number=fill_number,
    )


class Address(NamedTuple):
    lines: tuple[str, ...]
    city: str
    state: str
    postal_code: str
    country: str


def read_address(node: Node | None) -> Address | None:
    """``Address`` with AddressLine1/2, City, StateProvince, PostalCode, CountryCode; None when empty."""
    address = node_at(node, "Address")
    if not address:
        return None
    lines = tuple(v for v in (text(address, "AddressLine1"), text(address, "AddressLine2")) if v)
    result = Address(lines, text(address, "City"), text(address, "StateProvince"), text(address, "PostalCode"),
                     text(address, "CountryCode"))
    if not (lines or result.city or result.state or result.postal_code or result.country):
        return None
    return result


class Party(NamedTuple):
    """A patient, prescriber or pharmacy: identifiers (element name → value) and the name and contact data."""

    path: str
    identifiers: tuple[tuple[str, str], ...]
    family: str
    given: tuple[str, ...]
    suffix: str
    business_name: str
    gender: str
    birth_date: str
    address: Address | None
    phone: str

    def identifier(self, name: str) -> str:
        """The value of ``Identification/<name>`` ("" when absent)."""
        for key, value in self.identifiers:
            if key == name:
                return value
        return ""


def _identifiers(node: Node) -> tuple[tuple[str, str], ...]:
    found: list[tuple[str, str]] = []
    for ident in nodes(node, "Identification"):
        for tag, value in elements(ident):
            number = own_text(value)
            if number:
                found.append((tag, number))
    return tuple(found)


def read_party(node: Node, where: str) -> Party:
    """Patient/HumanPatient, Prescriber/NonVeterinarian or Pharmacy at ``node`` (path ``where``)."""
    name = node_at(node, "Name")
    given = tuple(v for v in (text(name, "FirstName"), text(name, "MiddleName")) if v)
    business = text(node, "BusinessName")
    if not business and "PracticeLocation" in node:
        business = text(node, "PracticeLocation/BusinessName")
    return Party(
        path=where,
        identifiers=_identifiers(node),
        family=text(name, "LastName"),
        given=given,
        suffix=text(name, "Suffix"),
        business_name=business,
        gender=text(node, "Gender"),
        birth_date=date_value(node, "DateOfBirth", where, date_only=True) if "DateOfBirth" in node else "",
        address=read_address(node),
        phone=text(node, "CommunicationNumbers/PrimaryTelephone/Number"),
    )


def find_party(body: Node, where: str, *paths: str) -> Party | None:
    """The first of ``paths`` present under the transaction ``body``, read as a Party."""
    for path in paths:
        node = node_at(body, path)
        if node is not None:
            return read_party(node, f"{where}/{path}")
    return None
