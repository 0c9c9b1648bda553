"""The registry of extended operations (``$name``, FHIR R4 §3.1.0.11 and OperationDefinition).

A feature adds an operation by putting a module in the package ``interop.api.ops`` that registers its
handler with :func:`operation`; :func:`load_operations` imports every module there when the app is built,
the route table sends ``[base]/$name``, ``[base]/Type/$name`` and ``[base]/Type/id/$name`` to the handler,
and ``/metadata`` lists it. Example (``interop/api/ops/sync_plan.py``)::

    from interop.api.exchange import FhirRequest, FhirResponse
    from interop.api.operations import operation
    from interop.store.base import Repository

    @operation("sync-plan", types=("Patient",), instance=True, scopes=("Patient.r", "CarePlan.rs"),
               definition="https://medsync-interop.org/fhir/OperationDefinition/Patient-sync-plan")
    def sync_plan(req: FhirRequest, repo: Repository) -> FhirResponse:
        params = req.json()          # a Parameters resource (400 when the body is not JSON)
        ...                          # req.type == "Patient", req.id is the patient id
        return FhirResponse(200, {"resourceType": "Parameters", "parameter": [...]})

Handlers raise ``interop.store.base`` errors or ``interop.api.outcome.Rejected`` for failures; the app
turns them into an OperationOutcome. An operation with ``affects_state=False`` also answers GET.

``scopes`` lists the SMART grants the caller's token must carry (``Type.actions``, actions from ``cruds``;
see ``interop.api.access``): every type the handler reads or writes. An operation without ``scopes`` needs
user/ or system/ ``*.cruds``; ``scopes=()`` needs only a valid token (nothing of the store is touched).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from interop.api.exchange import FhirRequest, FhirResponse
from interop.fhir.systems import OUR_BASE
from interop.store.base import Repository

Handler = Callable[[FhirRequest, Repository], FhirResponse]


@dataclass(frozen=True, slots=True)
class Operation:
    """One ``$name`` operation and where it is invoked (CapabilityStatement.rest[.resource].operation)."""

    name: str
    """Without the ``$``: ``convert-data``."""
    handler: Handler
    system: bool = False
    """Invoked at ``[base]/$name``."""
    types: tuple[str, ...] = ()
    """Resource types on which it is invoked at ``[base]/Type/$name`` (and, with ``instance``, per id)."""
    instance: bool = False
    """Invoked at ``[base]/Type/id/$name`` for each of ``types``."""
    type_level: bool = False
    """With ``instance``, also invoked at ``[base]/Type/$name`` (without ``instance`` it always is)."""
    definition: str = ""
    """Canonical URL of its OperationDefinition; defaults to ours, ``{OUR_BASE}/OperationDefinition/{name}``."""
    affects_state: bool = True
    documentation: str = ""
    scopes: tuple[str, ...] | None = None
    """SMART grants it needs, as ``Type.actions`` (``("Patient.r", "CarePlan.cu")``); None: ``*.cruds``."""

    @property
    def canonical(self) -> str:
        return self.definition or f"{OUR_BASE}/OperationDefinition/{self.name}"

    def serves(self, resource_type: str | None, instance: bool) -> bool:
        """Whether it is invoked at this level: system (no type), type, or instance."""
        if resource_type is None:
            return self.system
        if resource_type not in self.types:
            return False
        return self.instance if instance else (self.type_level or not self.instance)


class OperationRegistry:
    """Operations by name. Registering a name twice for overlapping levels is an error."""

    def __init__(self) -> None:
        self._ops: list[Operation] = []

    def register(self, op: Operation) -> Operation:
        for other in self._ops:
            if other.name == op.name and other.handler is not op.handler:
                overlap = (other.system and op.system) or bool(set(other.types) & set(op.types))
                if overlap:
                    raise ValueError(f"operation ${op.name} is registered twice for the same level")
            if other == op:
                return op
        self._ops.append(op)
        return op

    def find(self, name: str, resource_type: str | None, instance: bool) -> Operation | None:
        for op in self._ops:
            if op.name == name and op.serves(resource_type, instance):
                return op
        return None

    def __iter__(self) -> Iterator[Operation]:
        return iter(self._ops)

    def __len__(self) -> int:
        return len(self._ops)


operations = OperationRegistry()
"""The process-wide registry that :func:`operation` adds to and the app serves by default."""


def operation(
    name: str,
    *,
    system: bool = False,
    types: tuple[str, ...] = (),
    instance: bool = False,
    type_level: bool = False,
    definition: str = "",
    affects_state: bool = True,
    documentation: str = "",
    scopes: tuple[str, ...] | None = None,
    registry: OperationRegistry | None = None,
) -> Callable[[Handler], Handler]:
    """Decorator: register ``handler`` as ``$name`` at the given levels (see the module docstring)."""

    def register(handler: Handler) -> Handler:
        doc = documentation or (handler.__doc__ or "").strip().split("\n")[0]
        op = Operation(
            name, handler, system, tuple(types), instance, type_level, definition, affects_state, doc, scopes
        )
        (registry if registry is not None else operations).register(op)
        return handler

    return register


def load_operations(package: str = "interop.api.ops") -> OperationRegistry:
    """Import every module of ``package`` (each registers its operations) and return the registry."""
    pkg = importlib.import_module(package)
    for info in pkgutil.iter_modules(pkg.__path__):
        importlib.import_module(f"{package}.{info.name}")
    return operations
