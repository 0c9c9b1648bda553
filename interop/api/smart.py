"""SMART on FHIR scopes (App Launch 2.0 §Scopes): ``context/Type.cruds`` grants, v1 ``.read/.write/.*`` too.

A grant names a launch context (``patient``, ``user``, ``system``), a resource type or ``*`` and the actions
``c r u d s``. AuditEvent is never covered by ``*``: only an explicit ``AuditEvent`` grant (the auditor) reads
it, and no grant writes it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

ACTIONS = "cruds"
CONTEXTS = ("patient", "user", "system")
AUDIT_TYPE = "AuditEvent"
READ_ACTIONS = "rs"
_V1 = {"read": "rs", "write": "cud", "*": "cruds"}
_SCOPE = re.compile(r"^(patient|user|system)/(\*|[A-Z][A-Za-z]{1,63})\.(read|write|\*|[cruds]{1,5})$")


@dataclass(frozen=True, slots=True)
class Grant:
    """One resource scope: ``patient/MedicationDispense.rs`` is (patient, MedicationDispense, {r, s})."""

    context: str
    resource_type: str
    actions: frozenset[str]

    def covers(self, resource_type: str, action: str) -> bool:
        if action not in self.actions or (resource_type == AUDIT_TYPE and action not in READ_ACTIONS):
            return False  # the audit trail is written by the server only: no grant changes it
        if self.resource_type == "*":
            return resource_type != AUDIT_TYPE
        return self.resource_type == resource_type


def parse_scope(text: str) -> Grant | None:
    """The grant of one scope string; None for scopes that grant no resource access (``openid``, ``launch``)
    or are malformed: v2 letters out of ``cruds`` order, or narrowed by a query (``?category=``), not honoured."""
    match = _SCOPE.match(text)
    if match is None:
        return None
    context, rtype, perms = match.groups()
    letters = _V1.get(perms, perms)
    if "".join(a for a in ACTIONS if a in letters) != letters:
        return None
    return Grant(context, rtype, frozenset(letters))


@dataclass(frozen=True, slots=True)
class Grants:
    """The resource grants of a token, and the patient its ``patient/`` grants are bound to."""

    grants: tuple[Grant, ...]
    patient: str | None = None

    @classmethod
    def parse(cls, scopes: Iterable[str], patient: str | None = None) -> Grants:
        found = (parse_scope(s) for s in scopes)
        return cls(tuple(g for g in found if g is not None), patient)

    def mode(self, resource_type: str, action: str) -> str | None:
        """``"all"`` when a user/system grant allows the action on the type, ``"patient"`` when only a
        patient grant does (results limited to the token's patient compartment), None when nothing does."""
        restricted = False
        for grant in self.grants:
            if grant.covers(resource_type, action):
                if grant.context != "patient":
                    return "all"
                restricted = restricted or self.patient is not None
        return "patient" if restricted else None

    def has_wildcard(self, actions: str) -> bool:
        """Whether one user/system ``*`` grant carries all of ``actions`` (the level unknown operations need)."""
        return any(
            g.context != "patient" and g.resource_type == "*" and set(actions) <= g.actions for g in self.grants
        )
