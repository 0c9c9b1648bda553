"""HL7 v2 data types (TS/DTM, CX, XPN, XAD, XTN, CE/CWE, CQ) to FHIR R4 data types, as plain dicts.

Values come from ``Composite.get`` (already unescaped); absent values give None so callers add no empty
elements. Timestamps keep the sender's offset; one without offset gets the sender's configured zone.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from adapters.hl7v2.er7 import Composite
from adapters.hl7v2.mapping.tables import Tables
from interop.fhir import systems
from interop.fhir.systems import CodeSystem, normalize_ndc

JSON = dict[str, Any]

NPI_OID = "2.16.840.1.113883.4.6"
SSN_SYSTEM = "http://hl7.org/fhir/sid/us-ssn"
_V2_0203_CODES = frozenset(
    ["AN", "BA", "BC", "BR", "DL", "DN", "DR", "EN", "FILL", "JHN", "LN", "MA", "MB", "MC", "MD", "MR", "MRT", "NH", "NI", "NIIP", "NPI", "PE", "PEN", "PI", "PLAC", "PN", "PPN", "PRC", "PRN", "PT", "RI", "RRI", "SB", "SN", "SR", "SS", "TAX", "TN", "U", "UPIN", "VN", "VS", "WC", "WP", "XX"]
)
"""Identifier type codes of HL7 table 0203 we pass through; others (``MRN``, ``EPI``) are site inventions."""


identifier_system = lru_cache(maxsize=4096)(systems.identifier_system)
"""``interop.fhir.systems.identifier_system``, remembered (one regex per call otherwise)."""


class DataTypeError(ValueError):
    """A value that does not fit its HL7 v2 data type (a date that is not a date)."""


@lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise DataTypeError(f"unknown time zone {name!r} in the mapping settings") from exc


def _offset(text: str) -> str:
    sign, digits = text[0], text[1:]
    if not (digits.isascii() and digits.isdigit()) or len(digits) not in (2, 4):
        raise DataTypeError(f"bad time zone offset {text!r}")
    hh, mm = digits[:2], digits[2:] or "00"
    if int(hh) > 14 or int(mm) > 59:
        raise DataTypeError(f"bad time zone offset {text!r}")
    return f"{sign}{hh}:{mm}"


def _split_ts(text: str) -> tuple[str, str, str | None]:
    """(digits before '.', fraction digits, offset) of an HL7 timestamp ``YYYY[MM[DD[HH[MM[SS[.S+]]]]]][+/-ZZZZ]``."""
    offset = None
    for sign in ("+", "-"):
        pos = text.find(sign, 4)
        if pos > 0:
            offset = _offset(text[pos:])
            text = text[:pos]
            break
    fraction = ""
    if "." in text:
        text, fraction = text.split(".", 1)
        if not (fraction.isascii() and fraction.isdigit()):
            raise DataTypeError(f"bad fractional seconds in {text}.{fraction}")
    if not (text.isascii() and text.isdigit()) or len(text) not in (4, 6, 8, 10, 12, 14):
        raise DataTypeError(f"{text!r} is not an HL7 date/time (YYYY[MM[DD[HH[MM[SS]]]]])")
    return text, fraction, offset


def fhir_date(text: str) -> str | None:
    """HL7 DT/TS → FHIR ``date`` (``2020-12-12``, ``2020-12``, ``2020``), time and offset dropped."""
    if not text:
        return None
    digits, _, _ = _split_ts(text)
    digits = digits[:8]
    _check_date(digits)
    return "-".join(p for p in (digits[:4], digits[4:6], digits[6:8]) if p)


def _check_date(digits: str) -> None:
    try:
        datetime(int(digits[:4]), int(digits[4:6] or 1), int(digits[6:8] or 1))
    except ValueError as exc:
        raise DataTypeError(f"{digits!r} is not a calendar date") from exc


def fhir_datetime(text: str, tables: Tables, *, instant: bool = False) -> str | None:
    """HL7 TS/DTM → FHIR ``dateTime`` (or ``instant``: None unless a time is present).

    A time without offset is placed in the sender's zone (``Tables.timezone``), as FHIR requires an offset.
    """
    if not text:
        return None
    if len(text) == 19 and text[14] in "+-" and text.isascii():
        found = _full_datetime(text)
        if found is not None:
            return found
    return _datetime(text, tables.timezone, instant)


def _full_datetime(text: str) -> str | None:
    """The common full form ``YYYYMMDDHHMMSS±ZZZZ`` (RXD-3, ORC-9) by slicing, None when it is not valid (the
    general path then reports why): a third of the general path's time, and every fill has a timestamp of its
    own."""
    if not (text.isascii() and text[:14].isdigit() and text[15:].isdigit()):
        return None
    hh, mi, ss, zh, zm = text[8:10], text[10:12], text[12:14], text[15:17], text[17:]
    # Two ASCII digits compare as strings the way they compare as numbers.
    if hh > "23" or mi > "59" or ss > "59" or zh > "14" or zm > "59":
        return None
    day = _calendar_day(text[:8])
    if day is None:
        return None
    return f"{day}T{hh}:{mi}:{ss}{text[14]}{zh}:{zm}"


@lru_cache(maxsize=8192)
def _calendar_day(digits: str) -> str | None:
    """``YYYYMMDD`` (ASCII digits) as ``YYYY-MM-DD``, None when it is not a calendar date."""
    try:
        _check_date(digits)
    except DataTypeError:
        return None
    return f"{digits[:4]}-{digits[4:6]}-{digits[6:8]}"


@lru_cache(maxsize=8192)
def _datetime(text: str, timezone: str, instant: bool) -> str | None:
    digits, fraction, offset = _split_ts(text)
    _check_date(digits[:8])
    if len(digits) <= 8:
        if instant:
            return None
        return "-".join(p for p in (digits[:4], digits[4:6], digits[6:8]) if p)
    hh, mi, ss = digits[8:10], digits[10:12] or "00", digits[12:14] or "00"
    if int(hh) > 23 or int(mi) > 59 or int(ss) > 59:
        raise DataTypeError(f"{text!r} has an impossible time of day")
    if offset is None:
        local = datetime(int(digits[:4]), int(digits[4:6]), int(digits[6:8]), int(hh), int(mi), int(ss))
        delta = local.replace(tzinfo=_zone(timezone)).utcoffset()
        minutes = int(delta.total_seconds() // 60) if delta is not None else 0
        sign = "-" if minutes < 0 else "+"
        offset = f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    frac = f".{fraction}" if fraction else ""
    return f"{digits[:4]}-{digits[4:6]}-{digits[6:8]}T{hh}:{mi}:{ss}{frac}{offset}"


def hl7_date(text: str) -> str:
    """The ``YYYYMMDD`` date part of an HL7 timestamp, validated (for business keys and day arithmetic)."""
    digits, _, _ = _split_ts(text)
    if len(digits) < 8:
        raise DataTypeError(f"{text!r} is not a full date")
    _check_date(digits[:8])
    return digits[:8]


_NUMBER_LIMIT = 1e15
"""No quantity, dose, count or duration in a pharmacy message comes near this; beyond it is garbage (and past
2^53 a JSON integer loses precision)."""


def number(text: str) -> float | None:
    """An HL7 NM as a float (None when empty); ``DataTypeError`` when it is not a number."""
    if not text:
        return None
    try:
        value = float(text)
    except ValueError as exc:
        raise DataTypeError(f"{text!r} is not a number") from exc
    if value != value or not -_NUMBER_LIMIT < value < _NUMBER_LIMIT:
        raise DataTypeError(f"{text!r} is not a number below 10^15")
    return value


def fhir_number(value: float) -> int | float:
    """An integral float as int, so JSON carries ``30`` not ``30.0``."""
    return int(value) if value.is_integer() else value


def unit_code(unit: Composite, tables: Tables) -> tuple[str, str] | None:
    """CE units (code ^ text) → (UCUM code, display) through the units table, None when unmapped."""
    found = tables.units.get(unit.raw)
    if found is not None:
        return found
    for text in (unit.get(1), unit.get(2), unit.get(1, 2)):
        if text:
            found = tables.units.get(text.upper())
            if found is not None:
                return found
    return None


def quantity(value: float | None, unit: Composite, tables: Tables) -> JSON | None:
    """NM amount + CE units → Quantity; a unit outside the table is kept as text only (no made-up UCUM)."""
    if value is None:
        return None
    out: JSON = {"value": fhir_number(value)}
    mapped = unit_code(unit, tables)
    if mapped is not None:
        out["unit"] = mapped[1]
        out["system"] = CodeSystem.UCUM.value
        out["code"] = mapped[0]
    else:
        text = unit.get(2) or unit.get(1)
        if text:
            out["unit"] = text
    return out


def coding(code: str, system_name: str, display: str, tables: Tables, sender: str) -> JSON | None:
    """One CE/CWE triplet → Coding: the system through the alias table, NDCs normalized to 11 digits.

    A code in a local or unknown system keeps a per-sender identifier system; a code labelled NDC that is not
    an NDC (8 digits) is kept the same way, never passed off as an NDC.
    """
    if not code:
        return None
    name = system_name.upper()
    system = tables.code_systems.get(name) if name else None
    if not name:
        ndc = normalize_ndc(code)
        if ndc is not None:
            system, code = CodeSystem.NDC.value, ndc
    elif system == CodeSystem.NDC.value:
        ndc = normalize_ndc(code)
        if ndc is None:
            system = None
        else:
            code = ndc
    if system is None or system == "local":
        system = identifier_system("code", f"{sender}-{name or 'unlabelled'}")
    out: JSON = {"system": system, "code": code}
    if display:
        out["display"] = display
    return out


def codeable(ce: Composite, tables: Tables, sender: str) -> JSON | None:
    """CE/CWE → CodeableConcept with the primary (.1-.3) and alternate (.4-.6) codings; text from .2/.5."""
    if not ce:
        return None
    codings = []
    first = coding(ce.get(1), ce.get(3), ce.get(2), tables, sender)
    if first is not None:
        codings.append(first)
    second = coding(ce.get(4), ce.get(6), ce.get(5), tables, sender)
    if second is not None and second != first:
        codings.append(second)
    text = ce.get(2) or ce.get(5) or ce.get(9)
    if not codings and not text:
        return None
    out: JSON = {}
    if codings:
        out["coding"] = codings
    if text:
        out["text"] = text
    return out


def v2_code(code: str, table: str, display: str = "") -> JSON:
    """A CodeableConcept for a code of HL7 table ``table`` (``0203``) in terminology.hl7.org."""
    c: JSON = {"system": f"http://terminology.hl7.org/CodeSystem/v2-{table}", "code": code}
    if display:
        c["display"] = display
    return {"coding": [c]}


def authority(value: Composite, comp: int) -> str:
    """An assigning authority (HD in CX.4 or XCN.9) as one key: namespace id, else universal id."""
    return value.get(comp, 1) or value.get(comp, 2)


def identifier(cx: Composite, sender: str, kind: str = "mrn") -> JSON | None:
    """CX (PID-3, MRG-1) → Identifier; the system from CX.4 (OID when ISO, else a per-authority system)."""
    value = cx.get(1)
    if not value:
        return None
    type_code = cx.get(5).upper()
    if type_code == "SS":
        system = SSN_SYSTEM
    else:
        oid, oid_type = cx.get(4, 2), cx.get(4, 3).upper()
        if oid and oid_type == "ISO":
            system = f"urn:oid:{oid}"
        else:
            system = identifier_system(kind, cx.get(4, 1) or oid or sender)
    out: JSON = {"system": system, "value": value}
    if type_code in _V2_0203_CODES:
        out["type"] = v2_code(type_code, "0203")
    return out


_NAME_USE = {"L": "official", "D": "usual", "M": "maiden", "N": "nickname", "A": "anonymous", "S": "anonymous",
             "B": "official", "C": "official", "P": "usual", "U": "usual", "T": "temp", "K": "anonymous"}


def human_name(xpn: Composite, offset: int = 0) -> JSON | None:
    """XPN (or the name part of XCN, ``offset`` = 1) → HumanName; XPN.7 name type → use."""
    family = xpn.get(1 + offset, 1)
    given = [g for g in (xpn.get(2 + offset), xpn.get(3 + offset)) if g]
    if not family and not given:
        return None
    out: JSON = {}
    use = _NAME_USE.get(xpn.get(7 + offset).upper())
    if use:
        out["use"] = use
    if family:
        out["family"] = family
    if given:
        out["given"] = given
    suffix = [s for s in (xpn.get(4 + offset), xpn.get(6 + offset)) if s]
    if suffix:
        out["suffix"] = suffix
    prefix = xpn.get(5 + offset)
    if prefix:
        out["prefix"] = [prefix]
    return out


_ADDRESS_USE = {"H": "home", "P": "home", "B": "work", "O": "work", "C": "temp", "BA": "billing", "BI": "billing"}


def address(xad: Composite) -> JSON | None:
    """XAD → Address (.1 street, .2 other line, .3 city, .4 state, .5 zip, .6 country, .7 type)."""
    lines = [ln for ln in (xad.get(1, 1), xad.get(2)) if ln]
    parts = {"city": xad.get(3), "state": xad.get(4), "postalCode": xad.get(5), "country": xad.get(6)}
    out: JSON = {k: v for k, v in parts.items() if v}
    if lines:
        out["line"] = lines
    if not out:
        return None
    kind = xad.get(7).upper()
    if kind in _ADDRESS_USE:
        out["use"] = _ADDRESS_USE[kind]
    elif kind == "M":
        out["type"] = "postal"
    return out


_TELECOM_USE = {"PRN": "home", "ORN": "home", "VHN": "home", "WPN": "work", "EMR": "temp", "PRS": "mobile"}
_TELECOM_SYSTEM = {"PH": "phone", "CP": "phone", "FX": "fax", "INTERNET": "email", "X.400": "email",
                   "BP": "pager", "MD": "other", "TDD": "other", "TTY": "other"}


def contact_point(xtn: Composite, default_use: str) -> JSON | None:
    """XTN → ContactPoint: number from .6/.7/.8 (or the legacy .1 text), e-mail from .4, use from .2."""
    equipment = xtn.get(3).upper()
    use = _TELECOM_USE.get(xtn.get(2).upper(), default_use)
    if equipment == "CP":
        use = "mobile"
    email = xtn.get(4)
    if email:
        return {"system": "email", "value": email, "use": use}
    area, local, ext = xtn.get(6), xtn.get(7), xtn.get(8)
    if local:
        value = f"({area}) {local}" if area else local
        if ext:
            value += f" x{ext}"
    else:
        value = xtn.get(1)
    if not value:
        return None
    return {"system": _TELECOM_SYSTEM.get(equipment, "phone"), "value": value, "use": use}
