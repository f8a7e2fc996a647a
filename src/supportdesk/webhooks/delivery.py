"""One delivery (Standard Webhooks 1.0): the signed request, the address rule, how an attempt
went, and when to try again.

Nothing here touches the database or the network but DNS: the dispatcher
(`supportdesk.jobs.webhooks`) reads what to send, posts it with `client.Sender`, and records
the `Outcome`.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hmac
import ipaddress
import secrets
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx
import orjson

from supportdesk import __version__, durations
from supportdesk.db import Row
from supportdesk.events.resource import EVENTS
from supportdesk.jsonapi.document import resource_object
from supportdesk.queries import ResourceQuery

SECRET_PREFIX = "whsec_"  # noqa: S105 - a label, not a secret
TIMEOUT_S = 10.0
MAX_RETRY_AFTER_S = 24 * 3600.0
USER_AGENT = f"supportdesk/{__version__}"

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def new_secret() -> str:
    """`whsec_` + base64 of 32 random bytes from the OS's CSPRNG."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


@functools.lru_cache(maxsize=1024)
def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, keyed with the secret's
    base64-decoded bytes (the part after `whsec_`), as the Standard Webhooks libraries verify."""
    signed = b"%s.%d.%s" % (message_id.encode(), timestamp, body)
    return "v1," + base64.b64encode(hmac.digest(_key(secret), signed, "sha256")).decode()


def payload(event: Row) -> bytes:
    """The body: `{type, timestamp, data}` where `data` is the event resource exactly as
    `/events` renders it (`event` is a `supportdesk.events.log.resource` row)."""
    data = resource_object(EVENTS, event, None, ResourceQuery())
    return orjson.dumps({"type": event["event"], "timestamp": event["occurred_at"], "data": data})


def headers(event_id: int, signing_secrets: Sequence[str], body: bytes) -> dict[str, str]:
    """`webhook-id` names the event, so it is the same on every retry and receivers can drop
    duplicates; one signature per secret (two during a rotation), space-separated."""
    message_id = f"evt_{event_id}"
    timestamp = int(time.time())
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(
            sign(secret, message_id, timestamp, body) for secret in signing_secrets
        ),
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }


class Refused(Exception):
    """The URL's host cannot be called: it does not resolve, or resolves to a refused range."""


def refusal(address: Address) -> str | None:
    """Why an address may not be called (`loopback`, `private`, ...), or None if it is public.
    An IPv4-mapped IPv6 address is judged as the IPv4 address it carries."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    kinds = (
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("unspecified", address.is_unspecified),
        ("reserved", address.is_reserved),
        ("private", address.is_private),
        ("non-public", not address.is_global),
    )
    return next((kind for kind, matches in kinds if matches), None)


async def resolve(url: str, allow_private: bool) -> list[Address]:
    """The addresses of the URL's host, through the event loop's resolver (never blocking the
    loop). Refused when it does not resolve, or when any address is in a refused range unless
    `allow_private`: a resolver may hand out any of its answers, so one bad answer is enough."""
    host = httpx.URL(url).host
    try:
        async with asyncio.timeout(TIMEOUT_S):
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, None, type=socket.SOCK_STREAM
            )
    except (OSError, TimeoutError, UnicodeError) as exc:  # UnicodeError: not an IDNA name
        raise Refused(f"{host} does not resolve: {getattr(exc, 'strerror', None) or exc}") from None
    addresses = list(dict.fromkeys(ipaddress.ip_address(str(info[4][0])) for info in infos))
    if not allow_private:
        for address in addresses:
            kind = refusal(address)
            if kind is not None:
                article = "an" if kind[0] in "aeiou" else "a"
                raise Refused(f"{host} resolves to {address}, {article} {kind} address")
    return addresses


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one attempt went: an HTTP status, or an error and no status when no answer came."""

    status_code: int | None
    duration_ms: int
    error: str | None = None
    # seconds the receiver asked us to wait (Retry-After), on a failure
    retry_after: float | None = None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def gone(self) -> bool:
        return self.status_code == 410


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """`Retry-After` in seconds or as an HTTP date -> seconds from `now`; None if absent or
    malformed."""
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - now).total_seconds())


def retry_delays(schedule: Sequence[str]) -> tuple[float, ...]:
    """The configured schedule (`SUPPORTDESK_WEBHOOK_RETRY_SCHEDULE`) in seconds."""
    return tuple(durations.parse(item).total_seconds() for item in schedule)


def retry_in(attempt: int, delays: Sequence[float], retry_after: float | None) -> float | None:
    """Seconds until the attempt after `attempt` (1-based), or None once the schedule is spent.
    A receiver's Retry-After can put a retry later than the schedule, never earlier, and never
    more than 24 h away."""
    if attempt > len(delays):
        return None
    delay = delays[attempt - 1]
    if retry_after is not None:
        delay = max(delay, min(retry_after, MAX_RETRY_AFTER_S))
    return delay
