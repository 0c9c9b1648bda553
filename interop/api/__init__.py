"""The FHIR R4 REST API (FastAPI, base ``/fhir``): ``create_app`` builds it over a store repository."""

from interop.api.app import create_app

__all__ = ["create_app"]
