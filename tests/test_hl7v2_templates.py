"""Templates shared between prescriptions (``group_key`` blanks the per-order fields RXE-15, RXD-7, ORC-2, ORC-3,
ORC-9, ORC-15, RXE-31, RXE-32): a message converted after others that filled the memos gives the same Bundle as
converted alone, and a sender's days-supply field stays part of the key even when it is one of those fields."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from adapters.hl7v2 import parse_message
from adapters.hl7v2.mapping import clear_cache, to_bundle
from adapters.hl7v2.mapping.bundle import clear_ids
from adapters.hl7v2.mapping.tables import ENV_DIR
from tests.test_hl7v2_map import only, rde, rds

ORC_TAIL = "^L^^^NPI\r"


def _variants() -> list[str]:
    """Orders and fills that differ only in Rx number, order numbers and order dates (or their absence)."""
    return [
        rds(),
        rds(rx="RX200", fill="2", handed="20250301"),
        rds(rx="RX201").replace("PL1^EHR", "PL9^OTHER"),
        rds(rx="RX202").replace("|20250101120000-0500|||1234567893", "||||1234567893"),
        rds(rx="RX203").replace("|20250101120000-0500\r", "|20250102080000-0500\r"),
        rds(rx="RX204")
        .replace("||||20250101120000-0500|||1234567893", "|||||||1234567893")
        .replace("|20250101120000-0500\r", "|\r")
        .replace(ORC_TAIL, "^L^^^NPI|||20241230\r"),
        rde(rx="RX205"),
        rde(rx="RX206").replace("|20250101120000-0500\r", "|\r"),
    ]


def _bytes(text: str) -> bytes:
    return orjson.dumps(to_bundle(parse_message(text)))


@pytest.fixture(autouse=True)
def _cold(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(ENV_DIR, raising=False)
    clear_cache()
    clear_ids()
    yield
    clear_cache()


def test_warm_templates_give_the_bundle_of_a_cold_conversion() -> None:
    alone = []
    for text in _variants():
        clear_cache()
        clear_ids()
        alone.append(_bytes(text))
    clear_cache()
    warm = [_bytes(text) for text in _variants()]
    assert warm == alone
    assert len(set(alone)) == len(alone)


def test_authored_on_follows_each_order() -> None:
    first, _, _, no_orc9, rxe32, orc15, _, rde_no_rxe32 = (orjson.loads(_bytes(t)) for t in _variants())

    def authored(bundle: dict[str, object]) -> object:
        entries = bundle["entry"]
        assert isinstance(entries, list)
        (request,) = [e["resource"] for e in entries if e["resource"]["resourceType"] == "MedicationRequest"]
        return request.get("authoredOn")

    assert authored(first) == "2025-01-01T12:00:00-05:00"
    assert authored(no_orc9) == "2025-01-01T12:00:00-05:00"
    assert authored(rxe32) == "2025-01-02T08:00:00-05:00"
    assert authored(orc15) == "2024-12-30"
    assert authored(rde_no_rxe32) == "2025-01-01T12:00:00-05:00"


@pytest.fixture
def sender_days_supply_on_orc15(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    senders = tmp_path / "hl7v2" / "senders"
    senders.mkdir(parents=True)
    (senders / "RX01.json").write_text(json.dumps({"days_supply_field": "ORC-15"}))
    monkeypatch.setenv(ENV_DIR, str(tmp_path))
    clear_cache()


@pytest.mark.usefixtures("sender_days_supply_on_orc15")
def test_sender_days_supply_field_stays_in_the_template_key() -> None:
    days = []
    for supply, rx in (("28", "RX300"), ("56", "RX301")):
        text = rds(tq1="", rx=rx).replace(ORC_TAIL, f"^L^^^NPI|||{supply}\r")
        bundle = orjson.loads(_bytes(text))
        (dispense,) = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "MedicationDispense"]
        days.append(dispense["daysSupply"]["value"])
    assert days == [28, 56]


def _fills() -> list[str]:
    """Refills of one prescription: only the per-fill fields (RXD-1, RXD-3, RXD-8, RXD-33, RXE-16) change."""
    return [
        rds(fill="1", handed="20250105", rxd8="3", remaining="3"),
        rds(fill="2", handed="20250206", rxd8="2", remaining="2"),
        rds(fill="3", handed="20250310", rxd8="1", remaining="1", rxd33="RF"),
        rds(fill="4", handed="202504111530", rxd8="0", remaining="0"),
        rds(fill="2", handed="20250206", rxd8="2", remaining="2", ctl="M9"),  # the same fill re-sent
    ]


def _outcome(text: str) -> bytes | str:
    try:
        return _bytes(text)
    except Exception as exc:  # the error a bad per-fill field raises, warm or cold
        return f"{type(exc).__name__}: {exc}"


def test_refills_mapped_from_the_remembered_first_fill_equal_cold_conversions() -> None:
    fills = [*_fills(), rds(fill="5", handed="2025XX05"), rds(fill="x6", handed="20250505")]
    alone = []
    for text in fills:
        clear_cache()
        clear_ids()
        alone.append(_outcome(text))
    clear_cache()
    warm = [_outcome(text) for text in fills]
    assert warm == alone
    assert all(isinstance(o, bytes) for o in alone[:5]) and isinstance(alone[5], str)
    dispenses = [only(orjson.loads(o), "MedicationDispense") for o in alone[:4] if isinstance(o, bytes)]
    assert [d["whenHandedOver"][:10] for d in dispenses] == ["2025-01-05", "2025-02-06", "2025-03-10", "2025-04-11"]
    assert len({d["id"] for d in dispenses}) == 4
