"""The hardened SCRIPT reader: hostile XML refused before expansion, size cap, shape and version detection."""

from __future__ import annotations

import pytest

from adapters.script import read_message
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
from adapters.script.reader import DEFAULT_MAX_BYTES, parse_xml
from tests import script_messages as sm

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE Message [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<Message version="2017071"><Header><MessageID>&lol9;</MessageID></Header><Body><NewRx/></Body></Message>
"""

XXE = b"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE Message [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<Message version="2017071"><Header><MessageID>&xxe;</MessageID></Header><Body><NewRx/></Body></Message>
"""

XXE_NETWORK = b"""<?xml version="1.0"?>
<!DOCTYPE Message SYSTEM "http://127.0.0.1:9/script.dtd">
<Message version="2017071"><Header><MessageID>M1</MessageID></Header><Body><NewRx/></Body></Message>
"""


def _utf16(document: bytes) -> bytes:
    """The same document in UTF-16 (BOM), which a byte scan for ``<!DOCTYPE`` cannot see."""
    return document.decode().replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16")


def test_billion_laughs_is_refused_before_parsing() -> None:
    with pytest.raises(UnsafeXmlError, match="DOCTYPE at byte offset 22"):
        read_message(BILLION_LAUGHS)


def test_xxe_is_refused_and_never_reads_the_file() -> None:
    with pytest.raises(UnsafeXmlError) as caught:
        read_message(XXE)
    assert "root:" not in str(caught.value)
    assert isinstance(caught.value, ScriptError)


def test_external_dtd_reference_is_refused_without_network() -> None:
    with pytest.raises(UnsafeXmlError, match="DOCTYPE"):
        read_message(XXE_NETWORK)


@pytest.mark.parametrize("document", [XXE, BILLION_LAUGHS], ids=["xxe", "billion-laughs"])
def test_utf16_doctype_is_refused_after_a_parse_that_expanded_nothing(document: bytes) -> None:
    encoded = _utf16(document)
    assert b"<!DOCTYPE" not in encoded
    with pytest.raises(UnsafeXmlError, match=r"DOCTYPE present|entity use refused"):
        read_message(encoded)


def test_bare_doctype_is_refused() -> None:
    document = b'<!DOCTYPE Message><Message version="2017071"><Header/><Body><NewRx/></Body></Message>'
    with pytest.raises(UnsafeXmlError, match="DOCTYPE"):
        read_message(document)


def test_entity_declaration_outside_a_doctype_marker_is_refused() -> None:
    with pytest.raises(UnsafeXmlError, match="ENTITY declaration"):
        parse_xml(b'<Message><!ENTITY a "b"></Message>')


def test_size_cap_is_checked_before_parsing() -> None:
    document = sm.new_rx()
    padded = document + b" " * (DEFAULT_MAX_BYTES - len(document) + 1)
    with pytest.raises(DocumentTooLargeError, match=f"above the cap of {DEFAULT_MAX_BYTES} bytes"):
        read_message(padded)
    with pytest.raises(DocumentTooLargeError):
        read_message(document, max_bytes=len(document) - 1)
    assert read_message(document, max_bytes=len(document)).transaction == "NewRx"


def test_malformed_xml_names_line_and_column() -> None:
    with pytest.raises(MalformedXmlError, match=r"line 2, column \d+"):
        read_message(b'<Message version="2017071">\n<Header></Body></Message>')


def test_root_must_be_message() -> None:
    with pytest.raises(NotScriptError, match="not a SCRIPT Message"):
        read_message(b"<Envelope/>")


def test_header_and_body_are_required() -> None:
    with pytest.raises(NotScriptError, match="Message/Header"):
        read_message(b'<Message version="2017071"><Body><NewRx/></Body></Message>')
    with pytest.raises(MissingElementError, match="no transaction"):
        read_message(b'<Message version="2017071"><Header/><Body/></Message>')


def test_two_transactions_in_one_body_are_ambiguous() -> None:
    document = b'<Message version="2017071"><Header/><Body><Status/><Error/></Body></Message>'
    with pytest.raises(AmbiguousMessageError, match=r"2 transactions \(Status, Error\)"):
        read_message(document)


@pytest.mark.parametrize("namespace", [True, False])
@pytest.mark.parametrize("version", ["2017071", "2023011"])
def test_version_and_namespace_forms_read_alike(version: str, namespace: bool) -> None:
    message = read_message(sm.new_rx(version=version, namespace=namespace))
    assert message.version == version
    assert message.transaction == "NewRx"
    assert message.message_id == "MSG-NEWRX-1"
    assert message.header_text("PrescriberOrderNumber") == "ORD-1001"
    assert message.warnings == ()


def test_transaction_version_attribute_of_2023011() -> None:
    document = b'<Message TransactionVersion="20230115"><Header/><Body><NewRx/></Body></Message>'
    assert read_message(document).version == "2023011"


def test_missing_version_uses_the_documented_default_with_a_warning() -> None:
    document = b"<Message><Header><MessageID>M</MessageID></Header><Body><NewRx/></Body></Message>"
    message = read_message(document)
    assert message.version == "2017071"
    assert message.warnings == ("Message carries no version (version or TransactionVersion); read as 2017071",)
    assert read_message(document, default_version="2023011").version == "2023011"


@pytest.mark.parametrize("attrs", ['version="10.6"', 'version="010" release="006"', 'version="10"'])
def test_legacy_10_6_is_a_specific_error(attrs: str) -> None:
    document = f"<Message {attrs}><Header/><Body><NewRx/></Body></Message>".encode()
    with pytest.raises(LegacyVersionError, match="retired"):
        read_message(document)


def test_unknown_version_is_refused() -> None:
    with pytest.raises(UnsupportedVersionError, match="'2019011'"):
        read_message(b'<Message version="2019011"><Header/><Body><NewRx/></Body></Message>')


def test_comments_and_processing_instructions_are_ignored() -> None:
    document = (b'<Message version="2017071"><!-- routing --><Header><?pi x?><MessageID>M9</MessageID></Header>'
                b"<Body><!-- c --><NewRx><Note><![CDATA[1 < 2 & 3]]></Note></NewRx></Body></Message>")
    message = read_message(document)
    assert (message.transaction, message.message_id) == ("NewRx", "M9")
    assert message.body == {"Note": ["1 < 2 & 3"]}


def test_str_input_is_accepted() -> None:
    assert read_message(sm.new_rx().decode()).transaction == "NewRx"


def test_deep_nesting_is_refused_by_the_parser_not_by_a_crash() -> None:
    depth = 5000
    document = (b'<Message version="2017071"><Header/><Body><NewRx>' + b"<a>" * depth + b"</a>" * depth
                + b"</NewRx></Body></Message>")
    with pytest.raises(MalformedXmlError, match="Excessive depth"):
        read_message(document)


def test_namespaced_errors_read_as_sent() -> None:
    """The reader drops the NCPDP default namespace before parsing; errors still describe the document as sent."""
    document = f'<Message xmlns="{sm.NS}"><Header><Broken></Header></Message>'.encode()
    with pytest.raises(MalformedXmlError) as caught:
        read_message(document)
    with pytest.raises(MalformedXmlError) as direct:
        parse_xml(document)
    assert str(caught.value) == str(direct.value)
    assert "column 78" in str(caught.value)
    with pytest.raises(NotScriptError, match=r"root element is '\{http://www.ncpdp.org/schema/SCRIPT\}Order'"):
        read_message(f'<Order xmlns="{sm.NS}"><Header/></Order>'.encode())
    assert parse_xml(sm.new_rx()).tag == f"{{{sm.NS}}}Message"


def test_namespace_drop_never_touches_text() -> None:
    """A declaration quoted inside CDATA or text is content, kept verbatim (the namespace drop is a parse detail)."""
    quoted = f'<![CDATA[<Message xmlns="{sm.NS}">]]>'
    document = sm.wrap("NewRx", f"<Note>{quoted}</Note>", sm.header("M-1"), namespace=False)
    assert read_message(document).body == {"Note": [f'<Message xmlns="{sm.NS}">']}
