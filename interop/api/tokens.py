"""OAuth 2.0 bearer tokens (RFC 6750) as JWTs (RFC 7519): verification for the API, minting for local use.

HS256 with ``INTEROP_AUTH_SECRET``, or RS256 with a PEM public key (``INTEROP_AUTH_PUBLIC_KEY``) or a JWKS
file (``INTEROP_AUTH_JWKS``); ``iss``/``aud`` are checked when configured, ``exp`` always (with leeway).
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import jwt

from interop.api.smart import Grants
from interop.config import Settings, get_settings

MINTED_ISSUER = "medsync-interop"
MIN_SECRET_BYTES = 32
CACHED_TOKENS = 4096
_TTL = re.compile(r"^(\d+)([smhd]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


class TokenError(Exception):
    """A missing, malformed, expired or badly signed token (answered 401)."""


class AuthConfigError(Exception):
    """Authorization is on but no key to verify tokens is configured."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who calls: token subject, client id, token id and the SMART grants the token carries."""

    subject: str
    client: str
    grants: Grants
    token_id: str = ""


class TokenVerifier:
    """Verifies bearer tokens against the configured keys, issuer and audience."""

    def __init__(self, settings: Settings) -> None:
        self.secret = settings.auth_secret
        if self.secret and len(self.secret.encode("utf-8")) < MIN_SECRET_BYTES:
            raise AuthConfigError(f"INTEROP_AUTH_SECRET must be at least {MIN_SECRET_BYTES} bytes (RFC 7518 §3.2)")
        self.rsa: dict[str, Any] = {}
        if settings.auth_public_key:
            self.rsa[""] = _read(settings.auth_public_key, "INTEROP_AUTH_PUBLIC_KEY")
        if settings.auth_jwks:
            try:
                keys = jwt.PyJWKSet.from_json(_read(settings.auth_jwks, "INTEROP_AUTH_JWKS"))
            except jwt.PyJWKSetError as exc:
                raise AuthConfigError(f"INTEROP_AUTH_JWKS {settings.auth_jwks}: {exc}") from exc
            self.rsa.update({k.key_id or "": k.key for k in keys.keys})
        if not self.secret and not self.rsa:
            raise AuthConfigError(
                "authorization is on but no token key is configured: set INTEROP_AUTH_SECRET (HS256), "
                "INTEROP_AUTH_PUBLIC_KEY or INTEROP_AUTH_JWKS (RS256), or run with --insecure-dev on 127.0.0.1"
            )
        self.issuer = settings.auth_issuer or None
        self.audience = settings.auth_audience or None
        self.leeway = settings.auth_leeway
        self._lock = threading.Lock()
        self._verified: OrderedDict[str, tuple[Principal, float]] = OrderedDict()
        """Token → its principal and expiry: a client sends the same token many times; PyJWT costs ~0.4 ms."""

    def verify(self, authorization: str | None) -> Principal:
        """The principal of an ``Authorization: Bearer <jwt>`` header; TokenError says why not."""
        if not authorization:
            raise TokenError("no bearer token")
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise TokenError("the Authorization header is not 'Bearer <token>'")
        with self._lock:
            known = self._verified.get(token.strip())
            if known is not None:
                if time.time() <= known[1] + self.leeway:
                    return known[0]
                del self._verified[token.strip()]
        try:
            header = jwt.get_unverified_header(token.strip())
            key, algorithm = self._key(header)
            claims = jwt.decode(
                token.strip(),
                key,
                algorithms=[algorithm],
                issuer=self.issuer,
                audience=self.audience,
                leeway=self.leeway,
                options={"require": ["exp"], "verify_aud": self.audience is not None},
            )
        except jwt.ExpiredSignatureError as exc:
            raise TokenError("the token has expired") from exc
        except jwt.InvalidTokenError as exc:
            raise TokenError(f"invalid token: {exc}") from exc
        principal = _principal(claims)
        if not claims.get("nbf"):  # a token not yet valid is checked again on every use
            with self._lock:
                self._verified[token.strip()] = (principal, float(claims["exp"]))
                if len(self._verified) > CACHED_TOKENS:
                    self._verified.popitem(last=False)
        return principal

    def _key(self, header: dict[str, Any]) -> tuple[Any, str]:
        algorithm = header.get("alg")
        if algorithm == "HS256" and self.secret:
            return self.secret, "HS256"
        if algorithm == "RS256" and self.rsa:
            kid = str(header.get("kid") or "")
            key = self.rsa.get(kid) or (self.rsa.get("") if not kid or len(self.rsa) == 1 else None)
            if key is None:
                raise jwt.InvalidTokenError(f"unknown key id {kid!r}")
            return key, "RS256"
        raise jwt.InvalidTokenError(f"algorithm {algorithm!r} is not accepted here")


def _read(path: str, name: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise AuthConfigError(f"{name} {path}: {exc.strerror}") from exc


def _principal(claims: dict[str, Any]) -> Principal:
    raw = claims.get("scope", claims.get("scp", ""))
    scopes = raw.split() if isinstance(raw, str) else [str(s) for s in raw] if isinstance(raw, list) else []
    client = str(claims.get("client_id") or claims.get("azp") or "")
    subject = str(claims.get("sub") or client)
    if not subject:
        raise TokenError("the token names no subject (sub) or client (client_id)")
    patient = claims.get("patient")
    grants = Grants.parse(scopes, str(patient) if patient else None)
    return Principal(subject, client or subject, grants, str(claims.get("jti") or ""))


def mint(
    settings: Settings, scope: str, ttl_seconds: int, *, subject: str = "local", patient: str | None = None
) -> str:
    """An HS256 token signed with ``settings.auth_secret`` (for local use, tests and the demo)."""
    if len(settings.auth_secret.encode("utf-8")) < MIN_SECRET_BYTES:
        raise AuthConfigError(f"INTEROP_AUTH_SECRET must be set, at least {MIN_SECRET_BYTES} bytes: it signs the tokens")
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": settings.auth_issuer or MINTED_ISSUER,
        "sub": subject,
        "client_id": subject,
        "scope": scope,
        "iat": now,
        "exp": now + ttl_seconds,
        "jti": uuid.uuid4().hex,
    }
    if settings.auth_audience:
        claims["aud"] = settings.auth_audience
    if patient:
        claims["patient"] = patient
    return jwt.encode(claims, settings.auth_secret, algorithm="HS256")


def parse_ttl(text: str) -> int:
    """Seconds of ``3600``, ``90s``, ``15m``, ``8h`` or ``7d``."""
    match = _TTL.match(text.strip())
    if match is None or int(match.group(1)) <= 0:
        raise click.BadParameter(f"{text!r} is not a duration like 3600, 15m, 8h or 7d")
    return int(match.group(1)) * _UNITS[match.group(2)]


@click.command("token")
@click.option(
    "--scope", "scopes", multiple=True, required=True, help="SMART scope, e.g. system/*.rs (repeatable)."
)
@click.option("--ttl", default="1h", show_default=True, help="Lifetime: seconds or 15m, 8h, 7d.")
@click.option("--patient", default=None, help="Patient id the patient/ scopes are bound to.")
@click.option("--sub", "subject", default="local", show_default=True, help="Subject (who) of the token.")
def token(scopes: tuple[str, ...], ttl: str, patient: str | None, subject: str) -> None:
    """Mint an HS256 bearer token from INTEROP_AUTH_SECRET for local use; prints it."""
    scope = " ".join(part for s in scopes for part in s.split())
    try:
        click.echo(mint(get_settings(), scope, parse_ttl(ttl), subject=subject, patient=patient))
    except AuthConfigError as exc:
        raise click.ClickException(str(exc)) from exc
