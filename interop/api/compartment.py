"""The patient compartment a ``patient/`` SMART grant is bound to, and a repository limited to it.

Membership follows the R4 Patient CompartmentDefinition for the types served here (``subject``, ``patient``,
``beneficiary``, Appointment ``participant.actor``, Task ``for``); types outside it (Medication,
Organization, Practitioner, ...) are shared and need only the type grant. AuditEvent is never in it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from interop.api.outcome import rejected
from interop.api.smart import AUDIT_TYPE
from interop.store.base import (
    HistoryPage,
    NotFound,
    Repository,
    Resource,
    SearchParams,
    SearchResult,
    Session,
    Stored,
    WriteResult,
)

_PATHS: dict[str, tuple[str, ...]] = {
    "MedicationRequest": ("subject",),
    "MedicationDispense": ("subject",),
    "Appointment": ("participant.actor",),
    "Encounter": ("subject",),
    "CarePlan": ("subject",),
    "Task": ("for",),
    "Communication": ("subject", "recipient", "sender"),
    "CommunicationRequest": ("subject", "recipient", "sender"),
    "Consent": ("patient",),
    "Coverage": ("beneficiary", "subscriber", "policyHolder"),
    "Claim": ("patient",),
    "ClaimResponse": ("patient",),
    "MeasureReport": ("subject",),
    "QuestionnaireResponse": ("subject", "source"),
    "Provenance": ("target",),
    "Schedule": ("actor",),
    "Binary": ("securityContext",),
}
"""Reference elements that put a resource of the type in a patient's compartment."""

SEARCH_PARAM = {t: "patient" for t in _PATHS if t not in ("Schedule", "Binary")} | {"Patient": "_id"}
"""The search parameter a patient-restricted search of the type is narrowed with."""

Allowed = Callable[[str, str], str | None]
"""(resource type, action letter) → ``"all"``, ``"patient"`` (own compartment only) or None (denied)."""


def references(resource: Resource, path: str) -> Iterator[str]:
    """The ``reference`` strings at a dotted element path (lists are walked)."""
    nodes: list[Any] = [resource]
    for name in path.split("."):
        nodes = [n.get(name) for n in nodes if isinstance(n, dict)]
        nodes = [x for n in nodes for x in (n if isinstance(n, list) else [n]) if x is not None]
    for node in nodes:
        if isinstance(node, dict) and isinstance(node.get("reference"), str):
            yield node["reference"]


def in_compartment(resource: Resource, patient: str) -> bool:
    """Whether ``resource`` belongs to Patient/``patient``'s compartment (or is of a shared type)."""
    rtype = resource.get("resourceType")
    if rtype == "Patient":
        return bool(resource.get("id") == patient)
    if rtype == AUDIT_TYPE:
        return False
    paths = _PATHS.get(str(rtype))
    if paths is None:
        return True
    target = f"Patient/{patient}"
    return any(ref == target or ref.endswith("/" + target) for p in paths for ref in references(resource, p))


class CompartmentSession:
    """A session (or repository) proxy that shows and changes only what the caller's grants allow."""

    def __init__(self, inner: Session, allowed: Allowed, patient: str | None) -> None:
        self.inner = inner
        self.allowed = allowed
        self.patient = patient

    def _mode(self, resource_type: str, actions: str) -> str | None:
        modes = {self.allowed(resource_type, a) for a in actions}
        return "all" if "all" in modes else "patient" if "patient" in modes else None

    def visible(self, stored: Stored) -> bool:
        mode = self._mode(stored.resource_type, "rs")
        if mode == "all":
            return True
        if mode is None or self.patient is None:
            return False
        return stored.deleted or in_compartment(stored.resource(), self.patient)

    def _check(self, stored: Stored) -> Stored:
        if not stored.deleted and not self.visible(stored):
            raise rejected(403, "forbidden", f"{stored.resource_type}/{stored.id} is outside the granted scopes")
        return stored

    def _check_write(self, resource: Resource, actions: str) -> None:
        rtype = str(resource.get("resourceType"))
        mode = self._mode(rtype, actions)
        if mode == "all":
            return
        if mode is None or self.patient is None:
            raise rejected(403, "forbidden", f"the token's scopes do not allow writing {rtype}")
        if not in_compartment(resource, self.patient):
            raise rejected(403, "forbidden", f"writing this {rtype} is outside the token's patient compartment")
        if resource.get("id"):
            try:
                current = self.inner.read(rtype, str(resource["id"]))
            except NotFound:
                return
            if not current.deleted and not in_compartment(current.resource(), self.patient):
                raise rejected(403, "forbidden", f"{rtype}/{current.id} is outside the token's patient compartment")

    def _restricted(self, resource_type: str | None, actions: str = "rs") -> bool:
        return resource_type is not None and self._mode(resource_type, actions) == "patient"

    def read(self, resource_type: str, id: str) -> Stored:
        return self._check(self.inner.read(resource_type, id))

    def vread(self, resource_type: str, id: str, version_id: int) -> Stored:
        stored = self.inner.vread(resource_type, id, version_id)
        if self._restricted(resource_type):
            self._check(self.inner.read(resource_type, id))
        return self._check(stored)

    def search(self, resource_type: str | None, params: SearchParams) -> SearchResult:
        narrowed = list(params)
        if self._restricted(resource_type) and resource_type in SEARCH_PARAM and self.patient is not None:
            value = self.patient if resource_type == "Patient" else f"Patient/{self.patient}"
            narrowed.append((SEARCH_PARAM[resource_type], value))
        result = self.inner.search(resource_type, narrowed)
        result.matches = [s for s in result.matches if self.visible(s)]
        result.includes = [s for s in result.includes if self.visible(s)]
        return result

    def history(
        self,
        resource_type: str | None = None,
        id: str | None = None,
        *,
        since: str | None = None,
        count: int = 20,
        cursor: str | None = None,
    ) -> HistoryPage:
        if id is not None and resource_type is not None and self._restricted(resource_type):
            current = self.inner.read(resource_type, id)
            if not current.deleted:
                self._check(current)
        page = self.inner.history(resource_type, id, since=since, count=count, cursor=cursor)
        shown = {(s.resource_type, s.id) for s in page.entries if not s.deleted and self.visible(s)}
        page.entries = [
            s
            for s in page.entries
            if (s.resource_type, s.id) in shown or (s.deleted and self._mode(s.resource_type, "rs") == "all")
        ]
        return page

    def create(self, resource: Resource, *, if_none_exist: str | None = None) -> WriteResult:
        self._check_write(resource, "c")
        if if_none_exist and self._restricted(str(resource.get("resourceType")), "c"):
            raise rejected(403, "forbidden", "conditional create is not available to patient-context scopes")
        return self.inner.create(resource, if_none_exist=if_none_exist)

    def update(self, resource: Resource, *, if_match: int | None = None) -> WriteResult:
        self._check_write(resource, "u")
        return self.inner.update(resource, if_match=if_match)

    def conditional_update(
        self, resource_type: str, criteria: str, resource: Resource, *, if_match: int | None = None
    ) -> WriteResult:
        if self._mode(resource_type, "u") != "all":
            raise rejected(403, "forbidden", "conditional update is not available to patient-context scopes")
        return self.inner.conditional_update(resource_type, criteria, resource, if_match=if_match)

    def delete(self, resource_type: str, id: str) -> Stored | None:
        mode = self._mode(resource_type, "d")
        if mode is None:
            raise rejected(403, "forbidden", f"the token's scopes do not allow deleting {resource_type}")
        if mode == "patient":
            self._check(self.inner.read(resource_type, id))
        return self.inner.delete(resource_type, id)

    def conditional_delete(self, resource_type: str, criteria: str) -> Stored | None:
        if self._mode(resource_type, "d") != "all":
            raise rejected(403, "forbidden", "conditional delete is not available to patient-context scopes")
        return self.inner.conditional_delete(resource_type, criteria)

    def process_bundle(self, bundle: Resource, *, base_url: str = "") -> Resource:
        for index, entry in enumerate(bundle.get("entry") or []):
            if not isinstance(entry, dict):
                continue
            resource = entry.get("resource")
            method = str((entry.get("request") or {}).get("method", "")).upper()
            if isinstance(resource, dict) and method in ("POST", "PUT"):
                self._check_write(resource, "c" if method == "POST" else "u")
            elif self._mode(_entry_type(entry), "rsd") != "all":
                raise rejected(
                    403,
                    "forbidden",
                    f"Bundle.entry[{index}]: only writes of compartment resources are open to patient-context scopes",
                )
        answer = self.inner.process_bundle(bundle, base_url=base_url)
        for entry in answer.get("entry") or []:
            found = entry.get("resource") if isinstance(entry, dict) else None
            if isinstance(found, dict) and found.get("resourceType") == "Bundle":
                found["entry"] = [e for e in found.get("entry") or [] if self._shows(e.get("resource"))]
            elif isinstance(found, dict) and not self._shows(found):
                del entry["resource"]
                entry["response"] = {"status": "403 Forbidden"}
        return answer

    def _shows(self, resource: object) -> bool:
        """Whether a resource a Bundle entry answers with may be shown (read results, searchsets, includes)."""
        if not isinstance(resource, dict) or resource.get("resourceType") == "OperationOutcome":
            return True
        mode = self._mode(str(resource.get("resourceType")), "rs")
        if mode == "patient" and self.patient is not None:
            return in_compartment(resource, self.patient)
        return mode == "all"


def _entry_type(entry: dict[str, Any]) -> str:
    url = str((entry.get("request") or {}).get("url", ""))
    return url.split("?")[0].split("/")[0]


class CompartmentRepository(CompartmentSession):
    """:class:`CompartmentSession` over a whole repository: sessions are limited the same way."""

    def __init__(self, inner: Repository, allowed: Allowed, patient: str | None) -> None:
        super().__init__(inner, allowed, patient)
        self.repo = inner

    def session(self) -> AbstractContextManager[Session]:
        return self._session()

    @contextmanager
    def _session(self) -> Iterator[Session]:
        with self.repo.session() as s:
            yield CompartmentSession(s, self.allowed, self.patient)

    def iter_all(self, resource_type: str) -> Iterator[Stored]:
        return (s for s in self.repo.iter_all(resource_type) if self.visible(s))

    def close(self) -> None:
        self.repo.close()
