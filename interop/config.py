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
    database_pool_size: int = 8
    """Connections kept open to the store's database (as many again may be opened under load)."""
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
    switch_url: str = ""
    """Endpoint the NCPDP D.0 claims are POSTed to (application/octet-stream); empty: no switch configured."""
    switch_token: str = ""
    """Bearer token for the switch; else ``switch_username``/``switch_password`` (basic auth) when set."""
    switch_username: str = ""
    switch_password: str = ""
    switch_timeout: float = 10.0
    """Seconds to wait for a switch answer before resending the same B1."""
    switch_retries: int = 2
    """Resends of the same bytes after a timeout or a transport error."""
    switch_software_id: str = ""
    """110-AK software vendor/certification id the switch assigned."""
    pharmacy_name: str = "Your pharmacy"
    """Name every outreach message carries (TCPA healthcare exemption: identify the provider)."""
    pharmacy_time_zone: str = "America/New_York"
    """IANA zone for patients without a ``tz-code`` extension (quiet hours, reminder hour)."""
    sms_url: str = ""
    """SMS gateway webhook (JSON POST); empty: SMS outreach is not configured."""
    sms_token: str = ""
    """Bearer token for the SMS gateway."""
    email_url: str = ""
    """E-mail gateway webhook (JSON POST); empty: e-mail outreach is not configured."""
    email_token: str = ""
    """Bearer token for the e-mail gateway."""
    gateway_timeout: float = 10.0
    """Seconds to wait for a messaging gateway answer."""
    gateway_retries: int = 3
    """Resends (same Idempotency-Key) after a timeout, transport error or 5xx/429."""
    outreach_templates: str = ""
    """Directory of JSON templates overriding mappings/outreach (same file names)."""
    outreach_hour: int = 10
    """Local hour at which reminders and review requests become due."""
    inbound_secret: str = ""
    """HMAC-SHA256 key of ``POST /inbound/sms`` signatures; empty: the webhook refuses every request."""
    worker_interval: float = 30.0
    """Seconds between dispatcher passes (``interop worker`` and the one ``interop serve`` starts)."""


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
