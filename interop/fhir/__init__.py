"""The shared FHIR R4 vocabulary: ids from business keys, code systems, references, validation.

Every layer may import this package (the adapters included, to mint ids and canonical codings); it imports
nothing else of ours, so it stays the floor the rest stands on.
"""

from interop.fhir.ids import business_id
from interop.fhir.systems import CodeSystem

__all__ = ["CodeSystem", "business_id"]
