"""Med sync planning as pure functions: a patient's MedicationRequests, MedicationDispenses and Coverage, the
settings and ``today`` in; a :class:`SyncPlan` (anchor, fills, pickups, renewals, exclusions, explained anchor
choice) out, and that plan as a FHIR R4 Bundle on request."""

from interop.sync.anchor import AnchorCandidate, AnchorChoice
from interop.sync.eligibility import Exclusion, Reason
from interop.sync.fhir_out import plan_bundle
from interop.sync.plan import Pickup, PlanError, PlannedFill, SyncPlan, plan_patient
from interop.sync.renewal import RenewalRequest
from interop.sync.settings import Preference, SettingsError, SyncSettings, load_settings

__all__ = [
    "AnchorCandidate",
    "AnchorChoice",
    "Exclusion",
    "Pickup",
    "PlanError",
    "PlannedFill",
    "Preference",
    "Reason",
    "RenewalRequest",
    "SettingsError",
    "SyncPlan",
    "SyncSettings",
    "load_settings",
    "plan_bundle",
    "plan_patient",
]
