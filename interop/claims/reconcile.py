"""Compare a paid ClaimResponse with what its Claim expected, and say what a pharmacy must chase.

Flags a paid claim whose adjudicated patient pay 505-F5 was not prorated although the plan rule says it must
be, or whose dispensing fee paid 507-F7 is less than the whole fee submitted (412-DC) where the law keeps it
whole (research/ncpdp.md §3.5 step 8). The flag is a Task for staff with the expected amounts and citation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from adapters.telecom.fhir import AMOUNT_SYSTEM, RESPONSE_STATUS_URL
from interop.claims.building import info_value
from interop.fhir.ids import business_id
from interop.fhir.systems import OUR_BASE

Resource = dict[str, Any]
TASK_SYSTEM = f"{OUR_BASE}/CodeSystem/claims-task"
PAID_STATUSES = frozenset({"P", "D"})


@dataclass(frozen=True, slots=True)
class Discrepancy:
    """One way the payer's adjudication departs from the rule: what, expected, adjudicated."""

    code: str
    expected: Decimal
    adjudicated: Decimal
    text: str


def _amount(response: Resource, field: str) -> Decimal | None:
    for total in response.get("total", []):
        if any(c.get("system") == AMOUNT_SYSTEM and c.get("code") == field
               for c in total.get("category", {}).get("coding", [])):
            return Decimal(str(total["amount"]["value"]))
    return None


def response_status(response: Resource) -> str:
    """112-AN as the switch sent it (P D C Q A S R), from the ClaimResponse extension."""
    for ext in response.get("extension", []):
        if ext.get("url") == RESPONSE_STATUS_URL:
            return str(ext.get("valueCoding", {}).get("code", ""))
    return ""


def is_paid(response: Resource) -> bool:
    """A paid (or duplicate of paid) B1 without a reject."""
    return response.get("outcome") == "complete" and response_status(response) in PAID_STATUSES


def submitted_fee(claim: Resource) -> Decimal | None:
    """412-DC as submitted: the Claim item's dispensing-fee detail."""
    for item in claim.get("item", []):
        for detail in item.get("detail", []):
            if any(c.get("code") == "412-DC" for c in detail.get("productOrService", {}).get("coding", [])):
                return Decimal(str(detail["net"]["value"]))
    return None


def discrepancies(claim: Resource, response: Resource) -> list[Discrepancy]:
    """What is wrong with a paid ``response`` to ``claim`` under the rule recorded on the Claim."""
    if not is_paid(response):
        return []
    out = []
    citation = info_value(claim, "proration-rule") or ""
    expected_pay = info_value(claim, "expected-patient-pay")
    paid_pay = _amount(response, "505-F5")
    if info_value(claim, "proration-applied") and expected_pay is not None and paid_pay is not None:
        expected = Decimal(str(expected_pay["value"]))
        if paid_pay > expected:
            out.append(Discrepancy("patient-pay-not-prorated", expected, paid_pay,
                                   f"patient pay 505-F5 ${paid_pay} is more than the prorated ${expected} "
                                   f"the rule requires ({citation})"))
    fee = submitted_fee(claim)
    fee_paid = _amount(response, "507-F7")
    if info_value(claim, "dispensing-fee-whole") and fee is not None and fee_paid is not None and fee_paid < fee:
        out.append(Discrepancy("dispensing-fee-prorated", fee, fee_paid,
                               f"dispensing fee paid 507-F7 ${fee_paid} is less than the whole fee ${fee} "
                               f"submitted, which must not be prorated ({citation})"))
    return out


def _money(value: Decimal) -> Resource:
    return {"value": int(value) if value == value.to_integral_value() else float(value), "currency": "USD"}


def _input(code: str, **value: Any) -> Resource:
    return {"type": {"coding": [{"system": TASK_SYSTEM, "code": code}]}, **value}


def reconcile(claim: Resource, response: Resource, today: date) -> Resource | None:
    """A Task for staff when the paid ``response`` departs from the rule on ``claim``, else None."""
    found = discrepancies(claim, response)
    if not found:
        return None
    citation = info_value(claim, "proration-rule") or ""
    inputs = [_input("citation", valueString=citation)]
    for item in found:
        inputs.append(_input(f"{item.code}-expected", valueMoney=_money(item.expected)))
        inputs.append(_input(f"{item.code}-adjudicated", valueMoney=_money(item.adjudicated)))
    return {
        "resourceType": "Task",
        "id": business_id("Task", "claim-reconcile", claim["id"]),
        "status": "requested",
        "intent": "order",
        "priority": "routine",
        "code": {"coding": [{"system": TASK_SYSTEM, "code": "reconcile-claim"}],
                 "text": "Ask the payer to reprocess a claim adjudicated against the proration rule"},
        "description": "; ".join(item.text for item in found),
        "focus": {"reference": f"Claim/{claim['id']}"},
        "for": claim["patient"],
        "authoredOn": today.isoformat(),
        "reasonCode": {"text": citation},
        "input": inputs,
    }
