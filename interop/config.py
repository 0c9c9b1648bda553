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
    """Interface the MLLP listener binds."""
    mllp_port: int = 2575
    """MLLP listener port; 0 disables it."""
    log_json: bool = False
    """Write logs as one JSON object per line."""
    log_level: str = "INFO"
    """DEBUG, INFO, WARNING or ERROR."""
    log_phi: bool = False
    """Debug only: allow message bodies and patient identifiers in logs."""
    switch_url: str = ""
    """Endpoint the NCPDP D.0 claims are POSTed to (application/octet-stream); empty: no switch configured."""
    switch_token: str = ""
    """Bearer token for the switch; else ``switch_username``/``switch_password`` (basic auth) when set."""
    switch_username: str = ""
    """Basic-auth user for the switch (when no token is set)."""
    switch_password: str = ""
    """Basic-auth password for the switch."""
    switch_timeout: float = 10.0
    """Seconds to wait for a switch answer before resending the same B1."""
    switch_retries: int = 2
    """Resends of the same B1 after a timeout (never a new Rx number)."""
    reversal_interval: float = 3600.0
    """Seconds between two passes of the reversal scheduler in ``interop serve`` (0 disables it)."""
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
    pickup_capacity: int = 40
    """Pickups the counter takes per open day (Slot busy when full; a pickup moves to the nearest day with room)."""
    opening_hours: str = "Mon-Fri 09:00-19:00, Sat 09:00-13:00"
    """Weekdays and hours the pickup counter is open (local time); pickups never fall on a closed day."""
    auth_enabled: bool = True
    """Require a SMART bearer token on every FHIR request except ``/metadata`` (``serve --insecure-dev`` turns it off)."""
    auth_secret: str = ""
    """HS256 shared secret of the bearer tokens (``interop token`` signs with it)."""
    auth_public_key: str = ""
    """Path of a PEM public key verifying RS256 tokens."""
    auth_jwks: str = ""
    """Path of a JWKS file (RS256 keys chosen by ``kid``)."""
    auth_issuer: str = ""
    """Required ``iss`` of tokens when set (``interop token`` writes it)."""
    auth_audience: str = ""
    """Required ``aud`` of tokens when set (``interop token`` writes it)."""
    auth_leeway: int = 30
    """Seconds of clock skew tolerated on ``exp``/``nbf``/``iat``."""
    audit_enabled: bool = True
    """Write an AuditEvent for every FHIR read, search, write and operation, ingested message (one event per
    commit, sender and outcome, naming each message by MSH-10) and inbound reply."""
    rate_limit: float = 200.0
    """Requests per second each client (token subject, else address) may sustain; 0 disables the limit."""
    rate_burst: int = 200
    """Requests a client may make at once before ``rate_limit`` applies (429 with Retry-After)."""
    mllp_max_bytes: int = 1 << 20
    """Largest MLLP message accepted (larger ones are answered AR)."""
    mllp_allowed: str = "127.0.0.1/32,::1/128"
    """Comma list of addresses or CIDRs allowed to connect to the MLLP listener; others are disconnected."""
    mllp_tls_cert: str = ""
    """PEM certificate (chain) of the MLLP listener; with ``mllp_tls_key`` the listener speaks TLS only."""
    mllp_tls_key: str = ""
    """PEM private key of ``mllp_tls_cert``."""
    mllp_tls_ca: str = ""
    """PEM CA bundle: when set, MLLP clients must present a certificate it signed (mutual TLS)."""
    tls_cert: str = ""
    """PEM certificate (chain) of the API; with ``tls_key`` ``interop serve`` serves HTTPS only."""
    tls_key: str = ""
    """PEM private key of ``tls_cert``."""
    inbound_max_bytes: int = 64 * 1024
    """Largest ``POST /inbound/sms`` body accepted (413 above)."""


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
