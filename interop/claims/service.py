"""Claims with the store: build and store a fill's Claim + Binary, submit it, reconcile, reverse what is due.

Service layer (it reads and writes the repository; the pricing, building and reconciling it composes are
pure). A reversal (B2, same 402-D2 and 401-D1 as the paid B1) is due for a paid fill not picked up by the
payer's return-to-stock deadline (plans.json, default 14 days) or whose prescription was cancelled (CancelRx).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from adapters.telecom import TelecomError, Transmission, parse, reversal, serialize
from interop.claims.building import (
    INFO_SYSTEM,
    SYNC_CODES,
    BuildError,
    BuiltClaim,
    ClaimInputs,
    build,
    d0_binary,
    date_of_service,
    info_value,
    plan_of,
    scc_codes,
)
from interop.claims.pricing import Costs, FillKind
from interop.claims.proration import DrugFacts
from interop.claims.reconcile import is_paid, reconcile
from interop.claims.switch import SwitchClient, SwitchResult
from interop.store.base import Gone, NotFound, Repository, Resource, SearchParams

CANCELLED_REQUEST = frozenset({"cancelled", "stopped", "entered-in-error"})
"""MedicationRequest statuses after which an unpicked fill is reversed (SCRIPT CancelRx → cancelled)."""
SYNC_WINDOW_DAYS = 365


class ClaimsError(ValueError):
    """A claims action that cannot be done on this resource (no D.0 request stored, not paid, ...)."""


@dataclass(frozen=True, slots=True)
class Submission:
    """A transmission sent: the switch's answer, the stored ClaimResponse and the reconciliation Task if any."""

    result: SwitchResult
    claim_response: Resource
    task: Resource | None


@dataclass(frozen=True, slots=True)
class PendingReversal:
    """A paid claim whose fill must be reversed, and why (return-to-stock deadline or CancelRx)."""

    claim_id: str
    dispense_id: str
    date_of_service: date
    deadline: date
    reason: str


def _split(reference: Any, where: str) -> tuple[str, str]:
    ref = reference.get("reference", "") if isinstance(reference, dict) else ""
    parts = ref.split("/")
    if len(parts) < 2 or not parts[-1]:
        raise BuildError(f"{where} is not a Type/id reference: {ref!r}")
    return parts[-2], parts[-1]


def _read(repo: Repository, reference: Any, where: str) -> Resource:
    rtype, rid = _split(reference, where)
    try:
        return repo.read(rtype, rid).resource()
    except (NotFound, Gone) as exc:
        raise BuildError(f"{where} {rtype}/{rid} is not in the store") from exc


def _search_all(repo: Repository, rtype: str, params: SearchParams) -> Iterator[Resource]:
    cursor: str | None = None
    while True:
        page = repo.search(rtype, [*params, ("_cursor", cursor)] if cursor else list(params))
        for stored in page.matches:
            yield stored.resource()
        cursor = page.next_cursor
        if not cursor:
            return


def load_inputs(repo: Repository, dispense_id: str) -> ClaimInputs:
    """The dispense and what its claim needs: prescription, patient, Coverage, pharmacy, prescriber."""
    dispense = repo.read("MedicationDispense", dispense_id).resource()
    prescriptions = dispense.get("authorizingPrescription") or [None]
    request = _read(repo, prescriptions[0], "MedicationDispense.authorizingPrescription")
    patient = _read(repo, dispense.get("subject"), "MedicationDispense.subject")
    performers = dispense.get("performer") or [{}]
    pharmacy_ref = performers[0].get("actor") or request.get("dispenseRequest", {}).get("performer")
    pharmacy = _read(repo, pharmacy_ref, "MedicationDispense.performer.actor")
    prescriber = None
    requester = request.get("requester")
    if requester and _split(requester, "MedicationRequest.requester")[0] == "Practitioner":
        prescriber = _read(repo, requester, "MedicationRequest.requester")
    if request.get("insurance"):
        coverage = _read(repo, request["insurance"][0], "MedicationRequest.insurance")
    else:
        found = repo.search("Coverage", [("beneficiary", f"Patient/{patient['id']}"), ("status", "active")])
        if not found.matches:
            raise BuildError(f"Patient/{patient['id']} has no active Coverage and MedicationRequest.insurance "
                             "names none")
        coverage = found.matches[0].resource()
    return ClaimInputs(dispense, request, patient, coverage, pharmacy, prescriber)


def prior_sync_fills(repo: Repository, dispense: Resource, request_id: str) -> int:
    """Sync short fills (420-DK 47/61) of the same prescription in the year before this dispense."""
    day = date_of_service(dispense)
    since = date(int(day[:4]), int(day[4:6]), int(day[6:])) - timedelta(days=SYNC_WINDOW_DAYS)
    count = 0
    for other in _search_all(repo, "MedicationDispense", [("prescription", f"MedicationRequest/{request_id}"),
                                                          ("_count", "200")]):
        if other["id"] == dispense["id"] or not set(scc_codes(other)) & SYNC_CODES:
            continue
        when = other.get("whenPrepared") or other.get("whenHandedOver") or ""
        if when[:10] >= since.isoformat() and when[:10] < dispense.get("whenPrepared", "9999")[:10]:
            count += 1
    return count


def build_and_store(repo: Repository, dispense_id: str, costs: Costs, *, kind: FillKind | None = None,
                    drug: DrugFacts | None = None, software_vendor: str = "") -> BuiltClaim:
    """Build the dispense's B1 + Claim + Binary and store the Claim and Binary in one transaction."""
    inputs = load_inputs(repo, dispense_id)
    prior = prior_sync_fills(repo, inputs.dispense, inputs.request["id"])
    built = build(inputs, costs, kind=kind, drug=drug, prior_sync_fills=prior, software_vendor=software_vendor)
    try:
        current = repo.read("Claim", built.claim["id"]).resource()
    except (NotFound, Gone):
        current = None
    if current is not None and current.get("status") == "active" and _paid(repo, current):
        raise ClaimsError(f"Claim/{current['id']} (Rx {built.claim['identifier'][0]['value']}, date of service "
                          f"{built.claim['billablePeriod']['start']}) is paid: reverse it before building it again")
    with repo.session() as session:
        session.update(built.binary)
        session.update(built.claim)
    return built


def _bytes(repo: Repository, claim: Resource, category: str) -> bytes:
    ref = info_value(claim, category)
    if ref is None:
        raise ClaimsError(f"Claim/{claim['id']} has no supportingInfo {category} (its D.0 bytes)")
    binary = _read(repo, ref, f"Claim.supportingInfo {category}")
    return base64.b64decode(binary.get("data", ""))


def _request(repo: Repository, claim: Resource) -> tuple[Transmission, bytes]:
    data = _bytes(repo, claim, "ncpdp-request")
    try:
        return parse(data), data
    except TelecomError as exc:
        raise ClaimsError(f"the stored D.0 request of Claim/{claim['id']} does not parse: {exc}") from exc


def _answered(repo: Repository, claim: Resource, response: Resource) -> Resource:
    """The ClaimResponse linked to the stored patient and, when the Coverage names one, its payer."""
    linked = {**response, "patient": claim["patient"]}
    coverage = _read(repo, claim["insurance"][0]["coverage"], "Claim.insurance.coverage")
    payors = coverage.get("payor") or []
    if payors:
        linked["insurer"] = payors[0]
    return linked


def submit(repo: Repository, claim_id: str, client: SwitchClient, today: date) -> Submission:
    """Send the Claim's stored B1 (the same bytes on every resend), store the ClaimResponse and, for a paid
    claim adjudicated against its proration rule, a reconciliation Task."""
    claim = repo.read("Claim", claim_id).resource()
    if claim.get("status") != "active":
        raise ClaimsError(f"Claim/{claim_id} is {claim.get('status')}: build it again before submitting")
    transmission, data = _request(repo, claim)
    result = client.submit(transmission, data)
    response = _answered(repo, claim, result.claim_responses[0])
    task = reconcile(claim, response, today)
    with repo.session() as session:
        session.update(response)
        if task is not None:
            session.update(task)
    return Submission(result, response, task)


def _paid(repo: Repository, claim: Resource) -> bool:
    """Whether a paid answer (112-AN P or D) to the Claim's B1 is stored; a B2 is answered A or S."""
    return any(is_paid(r) for r in _search_all(repo, "ClaimResponse", [("request", f"Claim/{claim['id']}")]))


def reverse(repo: Repository, claim_id: str, client: SwitchClient) -> Submission:
    """Send the B2 of the Claim's paid B1 (same 402-D2 Rx number and 401-D1 date of service); on approval
    (112-AN A, or S for a repeat) the Claim becomes cancelled. The B2 bytes are kept as a Binary."""
    claim = repo.read("Claim", claim_id).resource()
    if claim.get("status") == "cancelled":
        raise ClaimsError(f"Claim/{claim_id} is already reversed (cancelled)")
    if not _paid(repo, claim):
        raise ClaimsError(f"Claim/{claim_id} has no paid B1 response to reverse")
    billing, _ = _request(repo, claim)
    b2 = reversal(billing)
    data = serialize(b2)
    result = client.submit(b2, data)
    response = _answered(repo, claim, result.claim_responses[0])
    binary = d0_binary(claim_id, "B2", data, None)
    binary["securityContext"] = claim["patient"]
    with repo.session() as session:
        session.update(binary)
        session.update(response)
        if result.accepted:
            info = claim["supportingInfo"]
            info.append({"sequence": max(e["sequence"] for e in info) + 1,
                         "category": {"coding": [{"system": INFO_SYSTEM, "code": "ncpdp-reversal"}]},
                         "valueReference": {"reference": f"Binary/{binary['id']}"}})
            session.update({**claim, "status": "cancelled"})
    return Submission(result, response, None)


def pending_reversals(repo: Repository, today: date) -> list[PendingReversal]:
    """Paid, active claims whose fill was not picked up by the payer's return-to-stock deadline, or whose
    prescription was cancelled (CancelRx) before pickup."""
    out = []
    for claim in _search_all(repo, "Claim", [("status", "active"), ("use", "claim"), ("_count", "200")]):
        dispense_ref = info_value(claim, "medication-dispense")
        if dispense_ref is None:
            continue
        try:
            dispense = _read(repo, dispense_ref, "Claim.supportingInfo medication-dispense")
        except BuildError:
            continue
        if dispense.get("whenHandedOver"):
            continue
        if not _paid(repo, claim):
            continue
        served = date.fromisoformat(str(claim["billablePeriod"]["start"])[:10])
        coverage = _read(repo, claim["insurance"][0]["coverage"], "Claim.insurance.coverage")
        deadline = served + timedelta(days=plan_of(coverage).return_to_stock_days)
        request = _read(repo, claim["prescription"], "Claim.prescription")
        if request.get("status") in CANCELLED_REQUEST:
            out.append(PendingReversal(claim["id"], dispense["id"], served, deadline,
                                       f"prescription {request['status']} (CancelRx) before pickup"))
        elif today >= deadline:
            out.append(PendingReversal(claim["id"], dispense["id"], served, deadline,
                                       f"not picked up by the return-to-stock deadline {deadline.isoformat()}"))
    return out


def reverse_due(repo: Repository, today: date, client: SwitchClient) -> list[tuple[PendingReversal, Submission]]:
    """Reverse every pending reversal (what the scheduler runs once a day)."""
    return [(pending, reverse(repo, pending.claim_id, client)) for pending in pending_reversals(repo, today)]
