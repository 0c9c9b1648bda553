"""medsync-interop: an open integration layer for pharmacy medication synchronization."""

__version__ = "0.1.0"
FHIR_VERSION = "4.0.1"
