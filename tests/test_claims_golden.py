"""Golden digests of the claims builder: the B1 bytes, orjson of the Claim and the pricing explanation of 480
deterministic fills (every configured plan, both rounding modes, prorated fees, coinsurance, U&C caps, 420-DK
47/48/61/none, with and without prescriber) stay byte for byte what the original code produced.

The speed work on interop/claims and adapters/telecom must not change any output; these digests were computed
with the code before that work. Regenerate (only for an intended output change) with
``.venv/bin/python -m tests.test_claims_golden`` and paste the printed dict over ``DIGESTS``.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import orjson
import pytest

from adapters.telecom.fhir import SCC_SYSTEM, SCC_URL
from adapters.telecom.overpunch import encode_money
from bench.bench_claims import _inputs
from interop.claims import building, pricing
from interop.claims.building import BuildError, build
from interop.claims.pricing import Costs, FillKind
from interop.claims.proration import DrugFacts, plan_for

N = 480
BINS = ("999999", "999998", "999997", "999996", "999995", "123456")
SCC = ("47", "48", "61", None)
UNITS = ("EA", "ML", "TAB", "GM")

DIGESTS = {
    "b1": "609890184b82070a69b1153ff71abc2a3f0348cd1dab0b527bc82f4ffe522521",
    "claim": "d22886c09581a2e50a3dfa9ce80aa4974599b8c986c7c4a668d9eff10f4e69c7",
    "explanation": "e8f64ca2665e23aede8bed7b34c6b3c866f613bb4daa5486ee4db7f09c57146e",
}


def _case(i: int) -> tuple[Any, Costs, dict[str, Any]]:
    """Fill ``i``: the bench's fill, moved across plans, codes, units, rounding and price shapes."""
    inputs, costs = _inputs(i)
    bin_number = BINS[i % len(BINS)]
    for cls in inputs.coverage["class"]:
        if cls["type"]["coding"][0]["code"] == "rxbin":
            cls["value"] = bin_number
    scc = SCC[(i // 6) % len(SCC)]
    inputs.dispense["extension"] = [e for e in inputs.dispense["extension"] if "valueCoding" not in e]
    if scc is not None:
        inputs.dispense["extension"].append({"url": SCC_URL, "valueCoding": {"system": SCC_SYSTEM, "code": scc}})
    inputs.dispense["quantity"]["unit"] = UNITS[(i // 24) % len(UNITS)]
    if i % 7 == 0:
        inputs.prescriber = None
    elif i % 7 == 1:
        inputs.prescriber = {**inputs.prescriber, "name": [{"family": "Prescriber"}]}
    days = inputs.dispense["daysSupply"]["value"]
    if i % 5 == 1:
        costs = Costs(Decimal(days * 631 + i % 97) / 100, Decimal("1.75"), Decimal(days * 851) / 100,
                      copay=Decimal(3000 + i * 37 % 5000) / 100)
    elif i % 5 == 2:
        costs = Costs(Decimal(days * 17) / 100, Decimal("2.50"), Decimal(days * 9) / 100,
                      coinsurance=Decimal((i % 20) * 5) / 100)
    kwargs: dict[str, Any] = {}
    mode = (i // 4) % 6
    base = plan_for(bin_number)
    if mode == 1:
        kwargs["plan"] = replace(base, rounding="daily-rate-down")
    elif mode == 2:
        kwargs["plan"] = replace(base, prorate_fee=True, month_days=28 + i % 7)
    elif mode == 3:
        kwargs["plan"] = replace(base, prorate="daily", source="test plan document")
    elif mode == 4:
        kinds: tuple[FillKind, ...] = ("short", "anchor", "regular")
        kwargs["kind"] = kinds[i % 3]
        kwargs["drug"] = DrugFacts(solid_oral=i % 2 == 0, antibiotic=i % 3 == 0, schedule=(i % 6) or None)
        kwargs["prior_sync_fills"] = i % 3
    return inputs, costs, kwargs


def digests(n: int = N) -> dict[str, str]:
    """SHA-256 of every fill's B1 bytes, Claim JSON and pricing explanation, each in fill order."""
    b1, claim, explanation = hashlib.sha256(), hashlib.sha256(), hashlib.sha256()
    for i in range(n):
        inputs, costs, kwargs = _case(i)
        built = build(inputs, costs, **kwargs)
        b1.update(built.data + b"\n")
        claim.update(orjson.dumps(built.claim) + b"\n" + orjson.dumps(built.binary) + b"\n")
        explanation.update(built.pricing.explanation.encode() + b"\n")
    return {"b1": b1.hexdigest(), "claim": claim.hexdigest(), "explanation": explanation.hexdigest()}


def test_outputs_match_the_golden_digests() -> None:
    assert digests() == DIGESTS


def test_cases_cover_the_rules() -> None:
    """The cases reach proration, no proration, both roundings, a prorated fee and the U&C cap."""
    texts = []
    for i in range(N):
        inputs, costs, kwargs = _case(i)
        texts.append(build(inputs, costs, **kwargs).pricing.explanation)
    joined = "\n".join(texts)
    for phrase in ("rounded half-up once", "truncated to", "not prorated", "prorated to", "coinsurance",
                   "lesser of the share", "420-DK 61", "420-DK 48"):
        assert phrase in joined, phrase


if __name__ == "__main__":
    print(digests())


def test_a_separator_in_a_value_is_a_build_error_naming_the_segment() -> None:
    """The builder's segments are checked once at serialization; a FS in a name still names AM01."""
    inputs, costs = _inputs(3)
    inputs.patient = {**inputs.patient, "name": [{"family": "Syn\x1cthetic", "given": ["Jane"]}]}
    with pytest.raises(BuildError, match="segment AM01: wire item 'CBSYN\\\\x1cTHETIC'"):
        build(inputs, costs)


def test_memoized_amounts_print_like_the_direct_path() -> None:
    """Equal Decimals of another scale or sign of zero hit the memo yet print as the direct code would."""
    for text in ("2", "2.00", "2.0000", "0", "0.00", "-0.00", "20.37", "20.370", "1234.5", "0.001"):
        value = Decimal(text)
        assert pricing._money(value) == f"${value.quantize(pricing.CENT, ROUND_HALF_UP):,}"
        whole = int(value)
        assert building._num(value) == (whole if whole == value else float(value))
        assert type(building._num(value)) is type(whole if whole == value else float(value))
        if text != "0.001":
            assert building._overpunch(value) == encode_money(value)
