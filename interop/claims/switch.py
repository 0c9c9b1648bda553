"""The switch client: POST a D.0 transmission's bytes, read the D.0 answer with the codec, map it to ClaimResponses.

On a timeout or a transport error the SAME bytes are resent, never a B1 under a new Rx number: the payer
answers a repeat with 112-AN D (duplicate of paid), Q or S carrying the original adjudication (ncpdp.md §1.8).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from adapters.telecom import TelecomError, Transmission, parse
from adapters.telecom.fhir import claim_responses
from interop.config import Settings

Resource = dict[str, Any]
D0_CONTENT_TYPE = "application/octet-stream"
RETRY_STATUSES = frozenset({502, 503, 504})
DUPLICATE_STATUSES = frozenset({"D", "Q", "S"})
"""112-AN: duplicate of paid, of captured, of approved."""
ACCEPTED_STATUSES = frozenset({"P", "D", "C", "Q", "A", "S"})


class SwitchError(Exception):
    """The switch could not be reached or answered something that is not a D.0 response."""


@dataclass(frozen=True, slots=True)
class SwitchResult:
    """The answer to one transmission: the parsed response, its ClaimResponses, and how many sends it took."""

    response: Transmission
    data: bytes
    claim_responses: list[Resource]
    attempts: int

    @property
    def statuses(self) -> list[str]:
        """112-AN of each transaction, in order."""
        out = []
        for transaction in self.response.transactions:
            status = transaction.segment("21")
            out.append((status.get("AN") if status is not None else None) or "")
        return out

    @property
    def rejects(self) -> list[str]:
        """Every 511-FB reject code of every transaction."""
        return [code for t in self.response.transactions for s in t.segments if s.id == "21"
                for code in s.get_all("FB") if code]

    @property
    def accepted(self) -> bool:
        """True when every transaction was paid, captured or approved (or a duplicate of one) with no reject."""
        return (not self.rejects and bool(self.statuses)
                and all(status in ACCEPTED_STATUSES for status in self.statuses))

    @property
    def duplicate(self) -> bool:
        """True when the payer answered a repeat (D, Q or S): the original result, not a second billing."""
        return any(status in DUPLICATE_STATUSES for status in self.statuses)


class SwitchClient:
    """An httpx client for one switch endpoint, with bearer or basic auth, a timeout and resends."""

    def __init__(self, url: str, *, token: str = "", username: str = "", password: str = "",
                 timeout: float = 10.0, retries: int = 2, transport: httpx.BaseTransport | None = None) -> None:
        if not url:
            raise SwitchError("no switch URL configured (INTEROP_SWITCH_URL)")
        if retries < 0:
            raise SwitchError(f"retries {retries} must not be negative")
        headers = {"Content-Type": D0_CONTENT_TYPE, "Accept": D0_CONTENT_TYPE}
        auth: httpx.Auth | None = None
        if token:
            headers["Authorization"] = f"Bearer {token}"
        elif username:
            auth = httpx.BasicAuth(username, password)
        self.url = url
        self.retries = retries
        self._http = httpx.Client(headers=headers, auth=auth, timeout=timeout, transport=transport)

    @classmethod
    def from_settings(cls, settings: Settings) -> SwitchClient:
        """The client for INTEROP_SWITCH_URL with its token or basic auth, timeout and retries."""
        return cls(settings.switch_url, token=settings.switch_token, username=settings.switch_username,
                   password=settings.switch_password, timeout=settings.switch_timeout,
                   retries=settings.switch_retries)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SwitchClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, data: bytes) -> tuple[bytes, int]:
        """POST ``data`` and return the answer's bytes and the attempts it took; resends the same bytes."""
        failure = ""
        for attempt in range(1, self.retries + 2):
            try:
                answer = self._http.post(self.url, content=data)
            except httpx.TimeoutException as exc:
                failure = f"timed out ({type(exc).__name__})"
                continue
            except httpx.TransportError as exc:
                failure = f"transport error: {exc}"
                continue
            if answer.status_code in RETRY_STATUSES:
                failure = f"HTTP {answer.status_code}"
                continue
            if answer.status_code != 200:
                raise SwitchError(f"switch {self.url} answered HTTP {answer.status_code}: {answer.text[:200]}")
            return answer.content, attempt
        raise SwitchError(f"switch {self.url} gave no answer after {self.retries + 1} sends of the same "
                          f"transmission: {failure}")

    def submit(self, request: Transmission, data: bytes) -> SwitchResult:
        """Send the serialized ``request`` (``data``), parse the D.0 answer and map it to ClaimResponses."""
        raw, attempts = self.send(data)
        try:
            response = parse(raw)
        except TelecomError as exc:
            raise SwitchError(f"the switch's answer is not a D.0 response: {exc}") from exc
        if not response.is_response:
            raise SwitchError("the switch answered with a D.0 request, not a response")
        if getattr(response.header, "response_status", "") == "R" and not response.transactions:
            raise SwitchError("the switch rejected the transmission (501-F1 R) without a transaction answer")
        try:
            resources = claim_responses(response, request)
        except TelecomError as exc:
            raise SwitchError(f"the switch's answer cannot be read as claim responses: {exc}") from exc
        return SwitchResult(response, raw, resources, attempts)
