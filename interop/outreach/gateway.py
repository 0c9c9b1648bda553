"""The channel gateway client: SMS and e-mail webhooks over httpx, each call carrying an Idempotency-Key.

A send is ``POST <url>`` with JSON ``{"to", "text", "subject"?}``, ``Authorization: Bearer <token>`` and
``Idempotency-Key``; a timeout, transport error, 429 or 5xx is resent with the same key after an
exponential backoff, and when the retries run out :class:`GatewayUnavailable` says the work stays due.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from interop.config import Settings


class GatewayError(Exception):
    """Base of the gateway's errors."""


class GatewayUnavailable(GatewayError):
    """Retryable: the gateway did not accept the message (outage, timeout, 5xx); send again later, same key."""


class GatewayRejected(GatewayError):
    """Permanent: the gateway refused the message (4xx other than 429); resending would not help."""


class ChannelNotConfigured(GatewayRejected):
    """No URL is configured for the channel."""


@dataclass(frozen=True, slots=True)
class Channel:
    url: str
    token: str = ""


class Gateway:
    """Sends one message per call; ``sleep`` and ``client`` are injectable for tests."""

    def __init__(
        self,
        channels: dict[str, Channel],
        *,
        timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 0.5,
        client: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.channels = channels
        self.retries = retries
        self.backoff = backoff
        self.sleep = sleep
        self._owned = client is None
        self.client = client or httpx.Client(timeout=timeout)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        client: httpx.Client | None = None,
        backoff: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> Gateway:
        """The gateway of INTEROP_SMS_URL/_TOKEN and INTEROP_EMAIL_URL/_TOKEN (channels with a URL only)."""
        channels = {
            name: Channel(url, token)
            for name, url, token in (
                ("sms", settings.sms_url, settings.sms_token),
                ("email", settings.email_url, settings.email_token),
            )
            if url
        }
        return cls(
            channels,
            timeout=settings.gateway_timeout,
            retries=settings.gateway_retries,
            backoff=backoff,
            client=client,
            sleep=sleep,
        )

    def send(self, channel: str, to: str, text: str, key: str, subject: str | None = None) -> str:
        """Deliver ``text`` to ``to`` on ``channel``; the provider's message id (or ``key`` when it gives none)."""
        target = self.channels.get(channel)
        if target is None:
            raise ChannelNotConfigured(f"no gateway URL is configured for {channel}")
        body: dict[str, str] = {"to": to, "text": text}
        if subject and channel == "email":
            body["subject"] = subject
        headers = {"Idempotency-Key": key}
        if target.token:
            headers["Authorization"] = f"Bearer {target.token}"
        problem = ""
        for attempt in range(self.retries + 1):
            if attempt:
                self.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                response = self.client.post(target.url, json=body, headers=headers)
            except httpx.TimeoutException as exc:
                problem = f"timeout ({type(exc).__name__})"
                continue
            except httpx.TransportError as exc:
                problem = f"transport error ({exc})"
                continue
            if response.status_code == 429 or response.status_code >= 500:
                problem = f"HTTP {response.status_code}"
                continue
            if response.status_code >= 400:
                raise GatewayRejected(f"{channel} gateway refused the message: HTTP {response.status_code} {response.text[:200]}")
            return _message_id(response, key)
        raise GatewayUnavailable(f"{channel} gateway unavailable after {self.retries + 1} attempt(s): {problem}")

    def close(self) -> None:
        if self._owned:
            self.client.close()


def _message_id(response: httpx.Response, key: str) -> str:
    try:
        data = response.json()
    except ValueError:
        return key
    value = data.get("id") if isinstance(data, dict) else None
    return str(value) if value else key
