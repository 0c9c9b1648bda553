"""Cross-check against PyPI dzero-python 1.0.2 on the corpus, for the fields it reads correctly.

Its known defects (research/ncpdp.md §1.9), each demonstrated below so a fixed release would fail loudly:
repeated fields collapse to the last value (segments are dicts), money stays raw overpunch text, 505-F5 is
named ``gross_amount_due``, responses re-serialize with an extra RS, and framing without GS loses the claim.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from dzero_python import Request, Response
from dzero_python.segments.response_pricing import ResponsePricing

from adapters.telecom import Segment, parse, serialize
from adapters.telecom.dictionary import label
from adapters.telecom.model import Transaction
from tests.conftest import corpus_files

pytestmark = pytest.mark.corpus

WELL_FRAMED = corpus_files("ncpdp-d0", "synthetic/*.ncpdp")

REQUEST_HEADER = {"bin_number": "bin", "version": "version", "transaction_code": "transaction_code",
                  "processor_control_number": "pcn", "service_provider_id_qualifier": "provider_id_qualifier",
                  "service_provider_id": "provider_id", "date_of_service": "date_of_service",
                  "software": "software_vendor"}
RESPONSE_HEADER = {"version": "version", "transaction_code": "transaction_code",
                   "header_response_status": "response_status",
                   "service_provider_id_qualifier": "provider_id_qualifier", "service_provider_id": "provider_id",
                   "date_of_service": "date_of_service"}


def _dzero(text: str) -> Request | Response:
    return Response.parse(text) if text.startswith("D0") else Request.parse(text)


def _segments_as_dicts(segments: list[Segment]) -> list[dict[str, str]]:
    return [{"AM": s.id, **dict(s.fields)} for s in segments]


@pytest.mark.parametrize("path", WELL_FRAMED, ids=lambda p: p.name)
def test_headers_and_non_repeating_fields_agree(path: Path) -> None:
    data = path.read_bytes()
    ours = parse(data)
    theirs = _dzero(data.decode("latin-1"))
    names = RESPONSE_HEADER if ours.is_response else REQUEST_HEADER
    for their_name, our_name in names.items():
        assert theirs.header[their_name].strip() == str(getattr(ours.header, our_name)), their_name
    assert int(theirs.header["transaction_count"]) == ours.header.transaction_count
    # No corpus file repeats a field, so dzero's dict per segment holds every value here.
    assert [s.to_json() for s in theirs.transmission_group.segments] == _segments_as_dicts(ours.segments)
    assert [[s.to_json() for s in g.segments] for g in theirs.transaction_groups] == [
        _segments_as_dicts(t.segments) for t in ours.transactions]


@pytest.mark.parametrize("path", [p for p in WELL_FRAMED if p.name.endswith(".request.ncpdp")],
                         ids=lambda p: p.name)
def test_both_round_trip_the_requests(path: Path) -> None:
    text = path.read_text(encoding="latin-1")
    assert _dzero(text).to_s() == text
    assert serialize(parse(text.encode("latin-1"))).decode("latin-1") == text


def _with_repeats(path: Path) -> str:
    """The short-fill B1 with a second SCC (420-DK 20 after 47), NX=2."""
    ours = parse(path.read_bytes())
    transaction = ours.transactions[0]
    claim = transaction.segments[0]
    items = [("NX", "2") if fid == "NX" else (fid, value) for fid, value in claim.fields]
    at = next(i for i, (fid, _) in enumerate(items) if fid == "DK")
    items.insert(at + 1, ("DK", "20"))
    ours.transactions[0] = Transaction([Segment("07", items), *transaction.segments[1:]])
    return serialize(ours).decode("latin-1")


def test_defect_repeated_fields_collapse(corpus: Path) -> None:
    text = _with_repeats(corpus / "ncpdp-d0" / "synthetic" / "b1-medsync-shortfill-scc47.request.ncpdp")
    theirs = Request.parse(text)
    assert theirs.transaction_groups[0].segments[0].to_json()["DK"] == "20"
    assert "\x1cDK47" not in theirs.to_s()
    ours = parse(text.encode("latin-1"))
    assert ours.transactions[0].segments[0].get_all("DK") == ["47", "20"]
    assert serialize(ours).decode("latin-1") == text


def test_defect_no_overpunch_decoding_and_f5_mislabelled(corpus: Path) -> None:
    path = corpus / "ncpdp-d0" / "synthetic" / "b1-medsync-shortfill-scc47.response.ncpdp"
    theirs = Response.parse(path.read_text(encoding="latin-1"))
    pricing = theirs.transaction_groups[0].segments[2].to_json(readable=True)
    assert pricing["gross_amount_due"] == "203G"
    assert ResponsePricing.field_id_to_symbol()["F5"] == "gross_amount_due"
    ours = parse(path.read_bytes()).transactions[0].segment("23")
    assert ours is not None
    assert str(ours.money("F5")) == "20.37"
    assert label("F5") == "505-F5"


def test_defect_responses_gain_an_rs(corpus: Path) -> None:
    path = corpus / "ncpdp-d0" / "synthetic" / "b1-medsync-shortfill-scc47.response.ncpdp"
    text = path.read_text(encoding="latin-1")
    assert Response.parse(text).to_s() == text[:31] + "\x1e" + text[31:]
    assert serialize(parse(text.encode("latin-1"))).decode("latin-1") == text


def test_defect_framing_without_gs_loses_the_claim(corpus: Path) -> None:
    text = (corpus / "ncpdp-d0" / "cosyte-ncpdp" / "pbm-person-code.ncpdp").read_text(encoding="latin-1")
    theirs = Request.parse(text)
    assert theirs.transaction_groups == []
    with pytest.raises(IndexError):
        theirs.transaction_groups[0]
