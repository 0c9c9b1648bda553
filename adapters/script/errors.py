"""Errors raised for SCRIPT input we refuse, each naming the element path (or byte offset) at fault.

One base class, ``ScriptError``, so the ingest front door can turn any of them into a dead letter
with its reason; the subclasses let tests and callers tell the documented failure kinds apart.
"""

from __future__ import annotations


class ScriptError(ValueError):
    """A SCRIPT document we cannot accept; ``path`` is the element path (``Message/Body/NewRx/...``)."""

    def __init__(self, message: str, *, path: str = "") -> None:
        self.path = path
        super().__init__(f"{path}: {message}" if path else message)


class UnsafeXmlError(ScriptError):
    """A DOCTYPE, entity declaration or entity reference: refused before anything is expanded."""


class DocumentTooLargeError(ScriptError):
    """The document is larger than the configured cap (checked before parsing)."""


class MalformedXmlError(ScriptError):
    """Not well-formed XML; the message carries the parser's line and column."""


class NotScriptError(ScriptError):
    """Well-formed XML whose root is not a SCRIPT ``Message`` with a ``Header`` and a ``Body``."""


class LegacyVersionError(ScriptError):
    """SCRIPT 10.x (retired; its Refills/Directions shapes differ) is not read."""


class UnsupportedVersionError(ScriptError):
    """A version other than 2017071 and 2023011."""


class UnsupportedTransactionError(ScriptError):
    """A Body transaction this adapter does not map (e.g. RxHistoryRequest)."""


class AmbiguousMessageError(ScriptError):
    """More than one choice where SCRIPT allows exactly one (two Body transactions, two responses)."""


class MissingElementError(ScriptError):
    """A required element (for this mapping) is absent or empty."""


class InvalidValueError(ScriptError):
    """An element holds a value outside its code list or format (a date, a number, Substitutions)."""


class StrictModeError(ScriptError):
    """Strict mode: something the lenient reading only warns about (no version, no Patient) is refused."""
