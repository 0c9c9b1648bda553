"""Settings, read from environment variables (prefix ``INTEROP_``) with documented defaults.

The README's configuration table is the user-facing list; keep the two in step.
"""

from __future__ import annotations

from functools import lru_cache

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every tunable of the service. Field name ``foo_bar`` is read from ``INTEROP_FOO_BAR``."""

    model_config = SettingsConfigDict(env_prefix="INTEROP_", extra="ignore")

    database_url: str = "sqlite:///./medsync.db"
    """SQLAlchemy URL of the FHIR store: SQLite file (default) or ``postgresql+psycopg://...``."""
    base_url: str = ""
    """Public base of the FHIR API (``http://host:port/fhir``); derived from the request when empty."""
    max_body_bytes: int = 10 * 1024 * 1024
    """Largest request body accepted (413 above)."""
    max_bundle_entries: int = 10_000
    """Most entries in one batch or transaction Bundle."""
    default_count: int = 20
    """Search page size when ``_count`` is absent."""
    max_count: int = 1000
    """Largest ``_count`` honoured."""
    mllp_host: str = "127.0.0.1"
    mllp_port: int = 2575
    """MLLP listener port; 0 disables it."""
    log_json: bool = False
    """Write logs as one JSON object per line."""
    log_level: str = "INFO"
    log_phi: bool = False
    """Debug only: allow message bodies and patient identifiers in logs."""


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
