"""HL7 v2 messages → FHIR R4 transaction Bundles (plain dicts), driven by the tables in ``mappings/hl7v2``."""

from adapters.hl7v2.mapping.bundle import MappingError
from adapters.hl7v2.mapping.messages import HANDLERS, to_bundle
from adapters.hl7v2.mapping.tables import TableError, clear_cache, tables_for

__all__ = ["HANDLERS", "MappingError", "TableError", "clear_cache", "tables_for", "to_bundle"]
