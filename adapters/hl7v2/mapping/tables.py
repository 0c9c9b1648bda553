"""The HL7 v2 mapping tables of ``mappings/hl7v2`` (table 0335 frequencies, ORC-1/ORC-5 and SCH-25 statuses,
coding-system aliases, units), merged with per-sender overrides, so an integration engineer edits data, not code.

Layering, lowest first: the shipped tables, ``$INTEROP_MAPPINGS_DIR/hl7v2/<table>.json``, the shipped
``senders/<SENDER>.json``, then ``$INTEROP_MAPPINGS_DIR/hl7v2/senders/<SENDER>.json``; a sender is MSH-3.1
(sending application) then MSH-4.1 (sending facility, more specific, applied last).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import mappings

SHIPPED = Path(mappings.__file__).resolve().parent / "hl7v2"
ENV_DIR = "INTEROP_MAPPINGS_DIR"
TABLES = (
    "code_systems",
    "frequencies",
    "order_status",
    "dispense_status",
    "dispense_type",
    "appointment_status",
    "units",
)
PER_FILL_FIELDS = frozenset({("RXE", 16), ("RXE", 17), ("RXD", 1), ("RXD", 3), ("RXD", 8), ("RXD", 33)})
"""Fields that change from one fill to the next and are mapped per message, outside remembered templates
(RXE-16/17 refills left and dispensed, RXD-1 fill number, RXD-3 date, RXD-8 refills left, RXD-33 type)."""
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
_UNIT_DAYS = {"s": 1 / 86400, "min": 1 / 1440, "h": 1 / 24, "d": 1.0, "wk": 7.0, "mo": 30.0, "a": 365.0}


class TableError(ValueError):
    """A mapping data file that cannot be read or has the wrong shape (names the file)."""


@dataclass(frozen=True, slots=True)
class Frequency:
    """A Timing.repeat (frequency per period in period_unit) and its administrations per day."""

    frequency: int
    period: float
    period_unit: str
    per_day: float


@dataclass(frozen=True, slots=True)
class Tables:
    """Every table one sender's messages are mapped with (precomputed: the hot path only does dict lookups)."""

    code_systems: dict[str, str]
    frequencies: dict[str, Frequency | None]
    order_status_orc5: dict[str, str]
    order_status_orc1: dict[str, str]
    dispense_status_orc5: dict[str, str]
    dispense_status_orc1: dict[str, str]
    dispense_type: dict[str, str | None]
    appointment_trigger: dict[str, str]
    appointment_sch25: dict[str, str]
    units: dict[str, tuple[str, str]]
    days_supply_field: tuple[str, int, int] | None
    """A sender-specific days-supply location (``ZRX-2`` or ``ZRX-2.1``), the fourth rule of DOMAIN.md."""
    timezone: str
    """IANA zone applied to HL7 timestamps that carry a time but no offset."""
    memo: dict[Any, bytes] = field(default_factory=dict, compare=False)
    """Resources already mapped from identical raw segments of this sender (JSON bytes; see Context.memo)."""
    templates: dict[Any, tuple[bytes, tuple[tuple[str, bytes], ...]]] = field(default_factory=dict, compare=False)
    """Resource templates of this sender, with the resources their mapping put (see Context.template)."""
    fills: dict[Any, tuple[bytes, int, int]] = field(default_factory=dict, compare=False)
    """Bundles of one-fill pharmacy messages before their per-fill fields (see ``refill.convert_fill``)."""

    def frequency(self, code: str) -> Frequency | None:
        """Table 0335 code → repeat, also reading ``Q<n>H``, ``Q<n>D``, ``Q<n>W``, ``Q<n>M`` and ``Q<n>L``."""
        code = code.upper()
        if code in self.frequencies:
            return self.frequencies[code]
        if len(code) >= 3 and code[0] == "Q" and code[1:-1].isascii() and code[1:-1].isdigit():
            n = int(code[1:-1])
            unit = {"H": "h", "D": "d", "W": "wk", "M": "min", "L": "mo"}.get(code[-1])
            if unit and n > 0:
                return _frequency(1, n, unit)
        return None


def _frequency(freq: int, period: float, unit: str) -> Frequency:
    days = _UNIT_DAYS.get(unit)
    if days is None:
        raise TableError(f"frequencies: period unit {unit!r} is not one of {sorted(_UNIT_DAYS)}")
    return Frequency(freq, float(period), unit, freq / (period * days))


def unit_days(ucum: str) -> float | None:
    """Days in one UCUM time unit (``d`` → 1, ``wk`` → 7, ``mo`` → 30), None for non-time units."""
    return _UNIT_DAYS.get(ucum)


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TableError(f"{path}: {exc}") from exc
    if not isinstance(data, dict):
        raise TableError(f"{path}: a JSON object is expected")
    return data


def _merge(base: dict[str, Any], override: dict[str, Any]) -> None:
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key].update(value)
        else:
            base[key] = value


def _raw_tables(extra: Path | None, senders: tuple[str, ...]) -> dict[str, Any]:
    raw: dict[str, Any] = {"settings": {"timezone": "UTC", "days_supply_field": None}}
    for name in TABLES:
        table = _read(SHIPPED / f"{name}.json").get("map")
        if not isinstance(table, dict):
            raise TableError(f"{SHIPPED / name}.json: a 'map' object is expected")
        raw[name] = table
    if extra is not None:
        for name in TABLES:
            path = extra / "hl7v2" / f"{name}.json"
            if path.is_file():
                override = _read(path)
                _merge(raw[name], override.get("map", override))
    folders = [SHIPPED / "senders"] + ([extra / "hl7v2" / "senders"] if extra is not None else [])
    for sender in senders:
        safe = _SAFE.sub("_", sender)
        for folder in folders:
            path = folder / f"{safe}.json"
            if path.is_file():
                for name, value in _read(path).items():
                    if name in raw and isinstance(value, dict):
                        _merge(raw[name], value)
                    elif name in ("timezone", "days_supply_field"):
                        raw["settings"][name] = value
                    else:
                        raise TableError(f"{path}: unknown table {name!r}")
    return raw


def _field_path(text: str | None) -> tuple[str, int, int] | None:
    if not text:
        return None
    match = re.fullmatch(r"([A-Z][A-Z0-9]{2})-(\d+)(?:\.(\d+))?", text.strip().upper())
    if not match:
        raise TableError(f"days_supply_field {text!r} is not a field path such as ZRX-2 or ZRX-2.1")
    name, field_no = match.group(1), int(match.group(2))
    if (name, field_no) in PER_FILL_FIELDS:
        raise TableError(f"days_supply_field {text!r} is a per-fill field with its own meaning")
    return name, field_no, int(match.group(3) or 1)


def _compile(raw: dict[str, Any]) -> Tables:
    freqs: dict[str, Frequency | None] = {}
    for code, row in raw["frequencies"].items():
        if row is None:
            freqs[code.upper()] = None
        elif isinstance(row, list) and len(row) == 3:
            freqs[code.upper()] = _frequency(int(row[0]), float(row[1]), str(row[2]))
        else:
            raise TableError(f"frequencies: {code}: [frequency, period, unit] or null expected")
    units: dict[str, tuple[str, str]] = {}
    for code, row in raw["units"].items():
        if not (isinstance(row, list) and len(row) == 2):
            raise TableError(f"units: {code}: [UCUM code, display] expected")
        units[code.upper()] = (str(row[0]), str(row[1]))
    upper = {name: {k.upper(): v for k, v in raw[name].items()} for name in ("code_systems", "dispense_type")}
    settings = raw["settings"]
    return Tables(
        code_systems=upper["code_systems"],
        frequencies=freqs,
        order_status_orc5=dict(raw["order_status"].get("orc5", {})),
        order_status_orc1=dict(raw["order_status"].get("orc1", {})),
        dispense_status_orc5=dict(raw["dispense_status"].get("orc5", {})),
        dispense_status_orc1=dict(raw["dispense_status"].get("orc1", {})),
        dispense_type=upper["dispense_type"],
        appointment_trigger=dict(raw["appointment_status"].get("trigger", {})),
        appointment_sch25={k.upper(): v for k, v in raw["appointment_status"].get("sch25", {}).items()},
        units=units,
        days_supply_field=_field_path(settings.get("days_supply_field")),
        timezone=str(settings.get("timezone") or "UTC"),
    )


@lru_cache(maxsize=256)
def _load(extra: str, senders: tuple[str, ...]) -> Tables:
    return _compile(_raw_tables(Path(extra) if extra else None, senders))


_BY_SENDER: dict[tuple[str, str, str], Tables] = {}


def tables_for(application: str = "", facility: str = "") -> Tables:
    """The tables for messages from MSH-3.1 ``application`` at MSH-4.1 ``facility`` (cached per sender)."""
    key = (os.environ.get(ENV_DIR, ""), application, facility)
    found = _BY_SENDER.get(key)
    if found is None:
        senders = tuple(s for s in (application, facility) if s)
        found = _load(key[0], senders)
        if len(_BY_SENDER) < 4096:
            _BY_SENDER[key] = found
    return found


def clear_cache() -> None:
    """Forget loaded tables (after editing a data file in a running process, or in tests)."""
    _load.cache_clear()
    _BY_SENDER.clear()
