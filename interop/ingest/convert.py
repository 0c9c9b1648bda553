"""The conversion front door: bytes in any supported feed format → one FHIR transaction Bundle per message.

Each wire format registers one converter in ``CONVERTERS`` (``"hl7v2"``, and the NCPDP adapters'
``"script"`` and ``"telecom"``); ``interop convert`` and the ingest pipelines only ever call ``convert``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
import orjson

from adapters.hl7v2.er7 import ParseError, parse_batch
from adapters.hl7v2.grammar import check_grammar
from adapters.hl7v2.mapping import MappingError, TableError, to_bundle
from adapters.script import to_bundles as script_to_bundles
from adapters.telecom.fhir import to_bundles as telecom_to_bundles

Bundle = dict[str, Any]
Converter = Callable[[bytes, bool], list[Bundle]]
"""``converter(data, strict)`` → one Bundle per message; raises ConversionError (or ValueError) on bad input."""

FORMATS = ("hl7v2", "script", "telecom")


class ConversionError(ValueError):
    """Input that cannot be converted, with where: file (set by the caller), line, byte offset, location."""

    def __init__(
        self,
        reason: str,
        *,
        path: str | None = None,
        line: int | None = None,
        offset: int | None = None,
        location: str | None = None,
    ) -> None:
        self.reason = reason
        self.path = path
        self.line = line
        self.offset = offset
        self.location = location
        super().__init__(self.describe())

    def describe(self) -> str:
        """``file.hl7, line 4, RXD-7: reason``."""
        where = [
            p
            for p in (
                self.path,
                f"line {self.line}" if self.line is not None else None,
                f"byte {self.offset}" if self.offset is not None else None,
                self.location,
            )
            if p
        ]
        return (", ".join(where) + ": " if where else "") + self.reason

    def at(self, path: str) -> ConversionError:
        """The same error, naming the file it came from."""
        return ConversionError(self.reason, path=path, line=self.line, offset=self.offset, location=self.location)


def _hl7v2(data: bytes, strict: bool) -> list[Bundle]:
    """HL7 v2 ER7 (a message, a stream of messages or an FHS/BHS batch) → one Bundle per message."""
    try:
        messages = parse_batch(data)
        bundles = []
        for message in messages:
            if strict:
                check_grammar(message)
            bundles.append(to_bundle(message))
        return bundles
    except ParseError as exc:
        location = None
        if exc.segment:
            location = exc.segment if exc.field is None else f"{exc.segment}-{exc.field}"
        raise ConversionError(exc.reason, line=exc.line, location=location) from exc
    except MappingError as exc:
        location = None
        if exc.segment:
            location = exc.segment if exc.field is None else f"{exc.segment}-{exc.field}"
        raise ConversionError(exc.reason, line=exc.line, location=location) from exc
    except TableError as exc:
        raise ConversionError(f"mapping table: {exc}") from exc


CONVERTERS: dict[str, Converter] = {"hl7v2": _hl7v2}
"""Format name → converter. The NCPDP adapters add ``"script"`` and ``"telecom"`` here."""
CONVERTERS["script"] = script_to_bundles
CONVERTERS["telecom"] = telecom_to_bundles


def detect_format(data: bytes) -> str:
    """``"hl7v2"`` (MSH/FHS/BHS first), ``"script"`` (XML) or ``"telecom"`` (a D.0 header or its separators)."""
    head = data[:512].lstrip(b"\xef\xbb\xbf\x0b \t\r\n")
    if head[:3] in (b"MSH", b"FHS", b"BHS"):
        return "hl7v2"
    if head[:1] == b"<":
        return "script"
    if (head[:6].isdigit() and head[6:8] == b"D0") or head[:2] == b"D0" or b"\x1e\x1c" in data[:4096]:
        return "telecom"
    raise ConversionError("unknown format: not HL7 v2 (MSH), NCPDP SCRIPT (XML) or NCPDP D.0", offset=0)


def convert(data: bytes, fmt: str | None = None, *, strict: bool = False) -> list[Bundle]:
    """One transaction Bundle per message in ``data`` (``fmt`` detected when None); ConversionError otherwise."""
    name = fmt or detect_format(data)
    converter = CONVERTERS.get(name)
    if converter is None:
        known = ", ".join(sorted(CONVERTERS)) or "none"
        raise ConversionError(f"no converter registered for {name!r} (registered: {known})")
    try:
        return converter(data, strict)
    except ConversionError:
        raise
    except ValueError as exc:
        line = getattr(exc, "line", None)
        offset = getattr(exc, "offset", None)
        raise ConversionError(
            str(exc),
            line=line if isinstance(line, int) else None,
            offset=offset if isinstance(offset, int) else None,
        ) from exc


def _inputs(paths: tuple[Path, ...]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
        else:
            yield path


@click.command("convert")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--from", "fmt", type=click.Choice(FORMATS), default=None, help="Input format (detected when omitted).")
@click.option("--strict", is_flag=True, help="Also check each HL7 v2 message against its version's grammar (hl7apy).")
def convert_command(paths: tuple[Path, ...], fmt: str | None, strict: bool) -> None:
    """Convert feed files (or folders of them) to FHIR transaction Bundles on stdout.

    One input with one message prints one pretty Bundle; otherwise one Bundle per line (NDJSON). A file that
    fails is named on stderr with the reason and the exit code is 1; the others are still converted.
    """
    files = list(_inputs(paths))
    results: list[Bundle] = []
    failed = 0
    for path in files:
        try:
            results.extend(convert(path.read_bytes(), fmt, strict=strict))
        except ConversionError as exc:
            failed += 1
            click.echo(f"error: {exc.at(str(path))}", err=True)
        except OSError as exc:
            failed += 1
            click.echo(f"error: {path}: {exc.strerror or exc}", err=True)
    if len(files) == 1 and len(results) == 1:
        click.echo(orjson.dumps(results[0], option=orjson.OPT_INDENT_2))
    else:
        for bundle in results:
            click.echo(orjson.dumps(bundle))
    if failed:
        raise SystemExit(1)
