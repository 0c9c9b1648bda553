"""Logging set-up: plain lines for people, one JSON object per line on request (``INTEROP_LOG_JSON``)."""

from __future__ import annotations

import logging
import sys
import traceback
from datetime import UTC, datetime
from typing import Any

import orjson

_RESERVED = set(vars(logging.makeLogRecord({})))


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message and any ``extra=`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RESERVED and not key.startswith("_"):
                doc[key] = value
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            doc["exc"] = record.exc_text
        return orjson.dumps(doc, default=str).decode()


class ExceptionRedactor(logging.Filter):
    """Keeps a logged exception's type and stack but not its message, which may quote a message body or a
    patient identifier (HIPAA minimum necessary); ``INTEROP_LOG_PHI`` turns this off for debugging."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            stack = traceback.TracebackException.from_exception(exc).stack.format()
            name = f"{type(exc).__module__}.{type(exc).__qualname__}"
            record.exc_text = "".join(
                ["Traceback (most recent call last):\n", *stack, f"{name}: (message withheld: INTEROP_LOG_PHI)"]
            )
            record.exc_info = None
        return True


def configure(*, json_logs: bool, level: str = "INFO", phi: bool = False) -> None:
    """Install one stderr handler on the root logger; exception messages withheld unless ``phi``."""
    handler = logging.StreamHandler(sys.stderr)
    if not phi:
        handler.addFilter(ExceptionRedactor())
    if json_logs:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Alembic announces every migration step at INFO; that is noise on every start of a migrated store.
    logging.getLogger("alembic").setLevel(logging.DEBUG if level.upper() == "DEBUG" else logging.WARNING)
