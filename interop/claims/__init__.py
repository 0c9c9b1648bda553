"""Claims for med sync fills: proration rules and pricing, the NCPDP D.0 B1 + FHIR Claim builder, the switch
client, reconciliation and reversals (42 CFR 423.153(b)(4); research/ncpdp.md §1 and §3).

Pure: ``proration``, ``pricing``, ``building``, ``reconcile``. I/O: ``switch`` (httpx), ``service`` (the store).
"""

from interop.claims.building import BuildError, BuiltClaim, ClaimInputs, build
from interop.claims.pricing import Costs, Fill, Pricing, PricingError, price
from interop.claims.proration import Decision, DrugFacts, PlanRules, RuleError, decide, plan_for
from interop.claims.reconcile import reconcile

__all__ = [
    "BuildError",
    "BuiltClaim",
    "ClaimInputs",
    "Costs",
    "Decision",
    "DrugFacts",
    "Fill",
    "PlanRules",
    "Pricing",
    "PricingError",
    "RuleError",
    "build",
    "decide",
    "plan_for",
    "price",
    "reconcile",
]
