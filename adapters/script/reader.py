"""Hardened, version-aware reader of NCPDP SCRIPT XML (2017071 and 2023011) into a plain element tree.

XML is hostile input: the size cap is checked before parsing, DOCTYPE and ENTITY declarations are refused
(billion laughs, XXE), lxml never loads a DTD, resolves an entity or touches the network. Namespaces are
dropped so the NCPDP namespaced and the bare forms read alike.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from lxml import etree

from adapters.script.errors import (
    AmbiguousMessageError,
    DocumentTooLargeError,
    LegacyVersionError,
    MalformedXmlError,
    MissingElementError,
    NotScriptError,
    ScriptError,
    UnsafeXmlError,
    UnsupportedVersionError,
)
from adapters.script.tree import Node, elements, node_at, text, to_node

DEFAULT_MAX_BYTES = 2 * 1024 * 1024
"""Largest document read (2 MiB); a NewRx is a few kilobytes."""
DEFAULT_VERSION = "2017071"
"""Version assumed when a Message carries none (with a warning): the Part D version in use until 2028."""
SUPPORTED_VERSIONS = ("2017071", "2023011")
NAMESPACE = "http://www.ncpdp.org/schema/SCRIPT"

_VERSION_ATTRIBUTES = ("TransactionVersion", "StructuresVersion", "DatatypesVersion", "TransportVersion")
_UNSAFE_MARKERS = ((b"<!DOCTYPE", "DOCTYPE"), (b"<!ENTITY", "ENTITY declaration"))
_local = threading.local()


def _parser() -> etree.XMLParser:
    """One locked-down parser per thread (lxml parsers are not shared between threads)."""
    parser: etree.XMLParser | None = getattr(_local, "parser", None)
    if parser is None:
        parser = etree.XMLParser(
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            dtd_validation=False,
            attribute_defaults=False,
            huge_tree=False,
            remove_comments=True,
            remove_pis=True,
            remove_blank_text=True,
            collect_ids=False,
        )
        _local.parser = parser
    return parser


@dataclass(frozen=True, slots=True)
class ScriptMessage:
    """One parsed SCRIPT Message: its version, the Body transaction's name and element, header keys."""

    version: str
    transaction: str
    header: Node
    body: Node
    message_id: str
    relates_to: str
    sent_time: str
    warnings: tuple[str, ...] = field(default=())

    def header_text(self, name: str) -> str:
        """Stripped text of ``Header/<name>`` ("" when absent or empty)."""
        return text(self.header, name)

    @property
    def body_path(self) -> str:
        """Element path of the transaction, for error messages."""
        return f"Message/Body/{self.transaction}"


def _to_bytes(data: bytes | str) -> bytes:
    return data.encode("utf-8") if isinstance(data, str) else data


def _refuse_unsafe(data: bytes) -> None:
    """One scan for ``<!``: comments and CDATA pass, a DOCTYPE or ENTITY declaration is refused."""
    offset = data.find(b"<!")
    while offset >= 0:
        for marker, kind in _UNSAFE_MARKERS:
            if data.startswith(marker, offset):
                raise UnsafeXmlError(
                    f"{kind} at byte offset {offset}: SCRIPT documents carry no DTD; entities are never expanded"
                )
        offset = data.find(b"<!", offset + 2)


def parse_xml(data: bytes | str, *, max_bytes: int = DEFAULT_MAX_BYTES) -> etree._Element:
    """The root element of a size-capped, DTD-free document (never expanding an entity or loading a DTD)."""
    return _parse(_checked(data, max_bytes))


def _checked(data: bytes | str, max_bytes: int) -> bytes:
    """The document's bytes once the size cap and the DOCTYPE/ENTITY scan pass (both before any parsing)."""
    raw = _to_bytes(data)
    if len(raw) > max_bytes:
        raise DocumentTooLargeError(f"document is {len(raw)} bytes, above the cap of {max_bytes} bytes")
    _refuse_unsafe(raw)
    return raw


def _parse(raw: bytes) -> etree._Element:
    try:
        root = etree.fromstring(raw, _parser())
    except etree.XMLSyntaxError as exc:
        line, column = exc.position
        if "entit" in str(exc.msg).lower():
            # libxml2's own amplification guard fired (an encoding our byte scan cannot read): still unsafe.
            raise UnsafeXmlError(f"entity use refused at line {line}, column {column}: {exc.msg}") from None
        raise MalformedXmlError(f"not well-formed XML at line {line}, column {column}: {exc.msg}") from None
    if root is None:
        raise MalformedXmlError("empty document")
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        # Reached only by encodings the byte scan cannot see (UTF-16): still refused, never expanded.
        raise UnsafeXmlError("DOCTYPE present: SCRIPT documents carry no DTD")
    return root


_DECLARED_ROOT = f'<Message xmlns="{NAMESPACE}"'.encode()


def _parse_bare(raw: bytes) -> etree._Element:
    """The root of ``raw`` read without the NCPDP default namespace when ``<Message`` declares the only one.

    Unusual, for speed: namespaces are dropped anyway (tree.py), and without the declaration lxml hands out
    short local tags instead of building ``{http://www.ncpdp.org/schema/SCRIPT}Tag`` for every element read:
    parse + tree went from 84 to 78 µs per bench/bench_script.py NewRx (same process). Only a start tag can
    hold ``<Message xmlns=`` (text cannot hold ``<``; CDATA, which could, disables this), so no text or
    attribute value is touched. Anything refused is parsed again as sent, keeping its own line and column.
    """
    if raw.count(b"xmlns") == 1 and _DECLARED_ROOT in raw and b"<![CDATA[" not in raw:
        try:
            return _parse(raw.replace(_DECLARED_ROOT, b"<Message", 1))
        except ScriptError:
            pass
    return _parse(raw)


def _version(root: etree._Element, default_version: str) -> tuple[str, list[str]]:
    """SCRIPT version from Message/@version (bare form) or the 2017071 *Version attributes (e.g. 20170715)."""
    attrib = root.attrib
    declared = (attrib.get("version") or "").strip()
    if declared.startswith("10") or declared == "010" or "release" in attrib:
        release = attrib.get("release", "")
        raise LegacyVersionError(
            f"SCRIPT version {declared}{'.' + release if release else ''} is retired; only "
            f"{' and '.join(SUPPORTED_VERSIONS)} are read",
            path="Message/@version",
        )
    source = "Message/@version"
    if not declared:
        for name in _VERSION_ATTRIBUTES:
            value = (attrib.get(name) or "").strip()
            if value:
                declared, source = value, f"Message/@{name}"
                break
    if not declared:
        return default_version, [f"Message carries no version (version or TransactionVersion); read as {default_version}"]
    version = declared[:7] if len(declared) == 8 and declared.isdigit() else declared
    if version not in SUPPORTED_VERSIONS:
        raise UnsupportedVersionError(
            f"SCRIPT version {declared!r} is not supported (only {', '.join(SUPPORTED_VERSIONS)})", path=source
        )
    return version, []


def read_message(
    data: bytes | str, *, max_bytes: int = DEFAULT_MAX_BYTES, default_version: str = DEFAULT_VERSION
) -> ScriptMessage:
    """Parse one SCRIPT document: hardened XML, then Message/Header/Body shape and the version."""
    raw = _checked(data, max_bytes)
    root = _parse_bare(raw)
    if str(root.tag).rpartition("}")[2] != "Message":
        tag = str(_parse(raw).tag)
        raise NotScriptError(f"root element is {tag!r}, not a SCRIPT Message")
    version, warnings = _version(root, default_version)
    message = to_node(root)
    header = node_at(message, "Header")
    if header is None:
        raise NotScriptError("Header missing", path="Message/Header")
    body = node_at(message, "Body")
    if body is None:
        raise NotScriptError("Body missing", path="Message/Body")
    transactions = elements(body)
    if not transactions:
        raise MissingElementError("Body holds no transaction", path="Message/Body")
    if len(transactions) > 1:
        names = ", ".join(name for name, _ in transactions)
        raise AmbiguousMessageError(f"Body holds {len(transactions)} transactions ({names}); SCRIPT allows one",
                                    path="Message/Body")
    name, transaction = transactions[0]
    return ScriptMessage(
        version=version,
        transaction=name,
        header=header,
        body=transaction if isinstance(transaction, dict) else {},
        message_id=text(header, "MessageID"),
        relates_to=text(header, "RelatesToMessageID"),
        sent_time=text(header, "SentTime"),
        warnings=tuple(warnings),
    )
