"""Claims operations: ``MedicationDispense/{id}/$build-claim``, ``Claim/{id}/$submit``, ``Claim/{id}/$reverse``.

$build-claim prices the fill (Parameters: ingredientCost 409-D9, dispensingFee 412-DC, usualAndCustomary
426-DQ, copay or coinsurance, optional kind and drug facts) and stores the Claim with the Binary of its D.0
B1; $submit sends that B1 to INTEROP_SWITCH_URL and returns the ClaimResponse; $reverse sends its B2.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from interop.api.exchange import FhirRequest, FhirResponse
from interop.api.operations import operation
from interop.api.outcome import rejected
from interop.claims.building import BuildError
from interop.claims.pricing import FILL_KINDS, Costs, PricingError
from interop.claims.proration import DrugFacts
from interop.claims.service import ClaimsError, build_and_store, reverse, submit
from interop.claims.switch import SwitchClient, SwitchError
from interop.store.base import Repository

_WHERE = "Parameters.parameter.where(name = '{}')"
_PARTIES = ("Patient.r", "Practitioner.r", "PractitionerRole.r", "Organization.r", "Medication.r", "Coverage.rs")
CLAIM_BUILD = (*_PARTIES, "MedicationDispense.rs", "MedicationRequest.r", "Claim.rcu", "Binary.cu")
"""SMART grants $build-claim needs: the fill and its parties in, the Claim and its B1 Binary out."""
CLAIM_SEND = (*_PARTIES, "Claim.ru", "Binary.rcu", "ClaimResponse.cu", "Task.cu")
"""SMART grants $submit and $reverse need: the Claim and its B1/B2 in, ClaimResponse and Tasks out."""


def _parameters(req: FhirRequest) -> dict[str, Any]:
    body = req.json()
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise rejected(400, "invalid", "the body must be a Parameters resource", ["Parameters"])
    values: dict[str, Any] = {}
    for i, param in enumerate(body.get("parameter", [])):
        if not isinstance(param, dict) or not isinstance(param.get("name"), str):
            raise rejected(400, "invalid", "each parameter needs a name", [f"Parameters.parameter[{i}].name"])
        value = next((v for k, v in param.items() if k.startswith("value")), None)
        if isinstance(value, dict) and "value" in value:
            value = value["value"]
        values[param["name"]] = value
    return values


def _decimal(values: dict[str, Any], name: str, required: bool = True) -> Decimal | None:
    raw = values.get(name)
    if raw is None:
        if required:
            raise rejected(400, "required", f"parameter {name} is required", [_WHERE.format(name)])
        return None
    try:
        return Decimal(str(raw))
    except InvalidOperation:
        raise rejected(
            400, "invalid", f"parameter {name} {raw!r} is not a decimal", [_WHERE.format(name)]
        ) from None


def costs_from(values: dict[str, Any]) -> Costs:
    """Pricing inputs from the $build-claim Parameters."""
    ingredient = _decimal(values, "ingredientCost")
    fee = _decimal(values, "dispensingFee")
    usual = _decimal(values, "usualAndCustomary")
    assert ingredient is not None and fee is not None and usual is not None
    return Costs(
        ingredient,
        fee,
        usual,
        copay=_decimal(values, "copay", False),
        coinsurance=_decimal(values, "coinsurance", False),
        basis_of_cost=str(values.get("basisOfCost") or "01"),
    )


def drug_from(values: dict[str, Any]) -> DrugFacts | None:
    """Drug facts given as parameters (solidOral, antibiotic, originalContainer, schedule, ingredient)."""
    names = ("solidOral", "antibiotic", "originalContainer", "schedule", "ingredient")
    if not any(name in values for name in names):
        return None
    schedule = values.get("schedule")
    return DrugFacts(
        solid_oral=bool(values.get("solidOral", True)),
        antibiotic=bool(values.get("antibiotic", False)),
        original_container=bool(values.get("originalContainer", False)),
        schedule=int(schedule) if schedule is not None else None,
        ingredient=str(values.get("ingredient") or ""),
    )


def _client(req: FhirRequest) -> SwitchClient:
    try:
        return SwitchClient.from_settings(req.settings)
    except SwitchError as exc:
        raise rejected(503, "transient", str(exc)) from exc


@operation(
    "build-claim",
    scopes=CLAIM_BUILD,
    types=("MedicationDispense",),
    instance=True,
    documentation="Price a fill and store its FHIR Claim and the Binary of its NCPDP D.0 B1.",
)
def build_claim(req: FhirRequest, repo: Repository) -> FhirResponse:
    """Parameters (pricing inputs) → a collection Bundle with the stored Claim and Binary."""
    values = _parameters(req)
    kind = values.get("kind")
    if kind is not None and kind not in FILL_KINDS:
        raise rejected(
            400,
            "code-invalid",
            f"kind {kind!r} is not one of {', '.join(FILL_KINDS)}",
            [_WHERE.format("kind")],
        )
    assert req.id is not None
    try:
        built = build_and_store(
            repo,
            req.id,
            costs_from(values),
            kind=FILL_KINDS.get(str(kind)) if kind else None,
            drug=drug_from(values),
            software_vendor=req.settings.switch_software_id,
        )
    except (BuildError, PricingError) as exc:
        raise rejected(422, "processing", str(exc)) from exc
    base = req.base.rstrip("/")
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"fullUrl": f"{base}/{r['resourceType']}/{r['id']}", "resource": r}
            for r in (built.claim, built.binary)
        ],
    }
    return FhirResponse(200, bundle)


@operation(
    "submit",
    scopes=CLAIM_SEND,
    types=("Claim",),
    instance=True,
    documentation="Send the Claim's NCPDP D.0 B1 to the configured switch and store the ClaimResponse.",
)
def submit_claim(req: FhirRequest, repo: Repository) -> FhirResponse:
    """The stored ClaimResponse (a reconciliation Task is stored too when the payer did not prorate)."""
    assert req.id is not None
    with _client(req) as client:
        try:
            done = submit(repo, req.id, client, datetime.now(UTC).date())
        except ClaimsError as exc:
            raise rejected(422, "processing", str(exc)) from exc
        except SwitchError as exc:
            raise rejected(502, "transient", str(exc)) from exc
    return FhirResponse(200, done.claim_response)


@operation(
    "reverse",
    scopes=CLAIM_SEND,
    types=("Claim",),
    instance=True,
    documentation="Send the B2 reversal of a paid Claim (same Rx number and date of service).",
)
def reverse_claim(req: FhirRequest, repo: Repository) -> FhirResponse:
    """The ClaimResponse of the B2; the Claim becomes cancelled when the payer approves it."""
    assert req.id is not None
    with _client(req) as client:
        try:
            done = reverse(repo, req.id, client)
        except ClaimsError as exc:
            raise rejected(422, "processing", str(exc)) from exc
        except SwitchError as exc:
            raise rejected(502, "transient", str(exc)) from exc
    return FhirResponse(200, done.claim_response)
