"""One delivery on the wire (Standard Webhooks 1.0): the signed request, the address rule, the
POST itself, and when to try again.

Nothing here touches the database: the dispatcher (`supportdesk.jobs.webhooks`) reads what to
send, calls `post`, and records the `Outcome`.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import hmac
import ipaddress
import secrets
import socket
import ssl
import time
from collections.abc import Mapping, Sequence
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
# Response bytes read before the connection is given back; a longer body closes it instead.
RESPONSE_LIMIT = 64 * 1024
MAX_ERROR_LENGTH = 500

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def new_secret() -> str:
    """`whsec_` + base64 of 32 random bytes from the OS's CSPRNG."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, keyed with the secret's
    base64-decoded bytes (the part after `whsec_`), as the Standard Webhooks libraries verify."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = b"%s.%d.%s" % (message_id.encode(), timestamp, body)
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


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


@functools.cache
def _tls() -> ssl.SSLContext:
    """The system's trust store, loaded once per process (it takes tens of milliseconds)."""
    return ssl.create_default_context()


class Clients:
    """The HTTP clients of one dispatcher step: one per URL host, sharing one TLS context.

    Requests go to an address checked by `resolve`, not to the host name (which could resolve
    elsewhere a moment later: DNS rebinding), with the name as `Host` and TLS server name. A
    pool is keyed by address, so a client per host name keeps a connection verified for one
    name from carrying another name's request. No redirects, no proxies from the environment.
    """

    def __init__(self) -> None:
        self._clients: dict[str, httpx.AsyncClient] = {}

    def _client(self, host: str) -> httpx.AsyncClient:
        client = self._clients.get(host)
        if client is None:
            client = self._clients[host] = httpx.AsyncClient(
                verify=_tls(), follow_redirects=False, trust_env=False, timeout=TIMEOUT_S
            )
        return client

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()

    async def post(
        self, url: str, addresses: Sequence[Address], body: bytes, headers: Mapping[str, str]
    ) -> Outcome:
        """POST to the first address that accepts a connection, within 10 s in all. Only a
        2xx answer is a success; a redirect is reported, not followed."""
        target = httpx.URL(url)
        client = self._client(target.host)
        started = time.perf_counter()
        error = "no address to call"
        try:
            async with asyncio.timeout(TIMEOUT_S):
                for address in addresses:
                    try:
                        return await self._send(client, target, address, body, headers, started)
                    except httpx.ConnectError as exc:
                        error = f"cannot connect to {address}: {exc or 'refused'}"
        except TimeoutError:
            error = f"no answer within {TIMEOUT_S:g} s"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        return Outcome(None, _elapsed_ms(started), error[:MAX_ERROR_LENGTH])

    async def _send(
        self,
        client: httpx.AsyncClient,
        target: httpx.URL,
        address: Address,
        body: bytes,
        headers: Mapping[str, str],
        started: float,
    ) -> Outcome:
        request = client.build_request(
            "POST",
            target.copy_with(host=str(address)),
            content=body,
            headers={**headers, "host": target.netloc.decode("ascii")},
            extensions={"sni_hostname": target.host},
        )
        response = await client.send(request, stream=True)
        try:
            received = 0
            async for chunk in response.aiter_raw():
                received += len(chunk)
                if received > RESPONSE_LIMIT:
                    break
        finally:
            await response.aclose()
        status = response.status_code
        if 200 <= status < 300:
            return Outcome(status, _elapsed_ms(started))
        error = f"HTTP {status}"
        if response.is_redirect:
            error += f": redirect to {response.headers.get('location', '?')} not followed"
        retry_after = parse_retry_after(response.headers.get("retry-after"), datetime.now(UTC))
        return Outcome(status, _elapsed_ms(started), error[:MAX_ERROR_LENGTH], retry_after)


def _elapsed_ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)
