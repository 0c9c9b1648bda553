"""NCPDP D.0 numeric encodings: signed overpunch money and unsigned implied-decimal quantities.

Money fields (409-D9, 505-F5, ...) are s9(n)v99: the last character carries the last digit and the
sign (``{``/A-I = +0..9, ``}``/J-R = -0..9), so ``203G`` = 20.37. Quantities (442-E7, 460-ET) are
unsigned 9(7)v999: ``26000`` = 26.000. Everything is ``Decimal``; a float never enters.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

_POSITIVE = "{ABCDEFGHI"
_NEGATIVE = "}JKLMNOPQR"
_DECODE: dict[str, tuple[int, str]] = {c: (1, str(i)) for i, c in enumerate(_POSITIVE)}
_DECODE.update({c: (-1, str(i)) for i, c in enumerate(_NEGATIVE)})

MONEY_DIGITS = 8
"""s9(6)v99: at most six whole digits and two decimals (the D.0 dollar fields)."""

QUANTITY_DIGITS = 10
"""9(7)v999: at most seven whole digits and three decimals (442-E7, 460-ET)."""


class OverpunchError(ValueError):
    """A value that is not a valid overpunch amount or implied-decimal quantity; the message names it."""


def decode_money(raw: str, decimals: int = 2) -> Decimal:
    """``raw`` (e.g. ``203G``, ``52N``) as a signed Decimal with ``decimals`` implied places; -0 becomes 0."""
    if not raw:
        raise OverpunchError("empty overpunch amount")
    head, last = raw[:-1], raw[-1]
    sign_digit = _DECODE.get(last)
    if sign_digit is None:
        raise OverpunchError(f"overpunch amount {raw!r}: last character {last!r} is not one of {{ A-I }} J-R")
    if head and not (head.isascii() and head.isdigit()):
        raise OverpunchError(f"overpunch amount {raw!r}: characters before the last must be digits")
    sign, digit = sign_digit
    value = Decimal(head + digit).scaleb(-decimals)
    if sign < 0 and value:
        value = -value
    return value


def encode_money(value: Decimal, decimals: int = 2, max_digits: int = MONEY_DIGITS) -> str:
    """``value`` in overpunch with ``decimals`` implied places and at least one whole digit (20.37 → ``203G``).

    A value with more decimal places than the field carries, or too many digits, is an error (never rounded
    here: rounding is a pricing decision, 42 CFR 423.153 proration rounds before it reaches the wire).
    """
    units = _scaled(value, decimals, "overpunch amount")
    digits = str(-units if units < 0 else units)
    if len(digits) <= decimals:
        digits = digits.rjust(decimals + 1, "0")
    if len(digits) > max_digits:
        raise OverpunchError(f"overpunch amount {value}: needs {len(digits)} digits, the field holds {max_digits}")
    return digits[:-1] + (_NEGATIVE if units < 0 else _POSITIVE)[ord(digits[-1]) - 48]


def decode_quantity(raw: str, decimals: int = 3) -> Decimal:
    """``raw`` unsigned digits with ``decimals`` implied places (442-E7 ``26000`` → 26.000)."""
    if not raw or not (raw.isascii() and raw.isdigit()):
        raise OverpunchError(f"quantity {raw!r}: expected unsigned digits with {decimals} implied decimals")
    return Decimal(raw).scaleb(-decimals)


def encode_quantity(value: Decimal, decimals: int = 3, max_digits: int = QUANTITY_DIGITS) -> str:
    """``value`` as unsigned digits with ``decimals`` implied places and at least one whole digit (26 → ``26000``)."""
    units = _scaled(value, decimals, "quantity")
    if units < 0:
        raise OverpunchError(f"quantity {value}: negative, but the field is unsigned")
    digits = str(units).rjust(decimals + 1, "0")
    if len(digits) > max_digits:
        raise OverpunchError(f"quantity {value}: needs {len(digits)} digits, the field holds {max_digits}")
    return digits


def _scaled(value: Decimal, decimals: int, what: str) -> int:
    """``value`` × 10^decimals as an int, refusing a non-Decimal, a non-finite value or extra decimal places.

    The exact type is tested first (a subclass still passes through ``isinstance``): part of the claims
    builder's per-B1 cost (bench.bench_claims), five calls per claim."""
    if type(value) is not Decimal and not isinstance(value, Decimal):
        raise OverpunchError(f"{what} {value!r}: expected a Decimal, got {type(value).__name__}")
    try:
        scaled = value.scaleb(decimals)
        units = int(scaled)
    except (InvalidOperation, ValueError, OverflowError) as exc:
        raise OverpunchError(f"{what} {value}: not a finite number") from exc
    if scaled != units:
        raise OverpunchError(f"{what} {value}: more than {decimals} decimal places")
    return units
