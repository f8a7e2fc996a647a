"""Tokens and permissions: pure logic, no I/O."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from dataclasses import dataclass

TOKEN_PREFIX = "sdk_"  # noqa: S105 - a label, not a secret

RESOURCE_GROUPS = ("tickets", "ticket_messages", "users", "canned_replies")
ACTIONS = ("view", "create", "update", "delete")
PERMISSIONS = (
    *(f"{group}.{action}" for group in RESOURCE_GROUPS for action in ACTIONS),
    "events.view",
    "webhooks.manage",
)
ALL = "*"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def new_token() -> str:
    """A random token: 32 bytes (256 bits) from the OS's CSPRNG."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """SHA-256 hex. Tokens carry 256 bits of entropy, so a fast hash is safe, and it lets the
    key be found by an index lookup on every request."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def hashes_match(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def normalise_permission(name: str) -> str:
    """`admin.tickets.view` (Paymenter's spelling) -> `tickets.view`; ValueError if unknown."""
    name = name.strip()
    bare = name.removeprefix("admin.")
    if bare != ALL and bare not in PERMISSIONS:
        raise ValueError(f"unknown permission {name!r}; use * or one of: {', '.join(PERMISSIONS)}")
    return bare


def parse_network(text: str) -> Network:
    """An address or a CIDR range; ValueError if neither."""
    return ipaddress.ip_network(text.strip(), strict=False)


@dataclass(frozen=True)
class ApiKey:
    id: int
    name: str
    permissions: frozenset[str]
    networks: tuple[Network, ...]
    rate_limit: int | None = None

    def allows(self, permission: str) -> bool:
        return ALL in self.permissions or permission in self.permissions

    def admits(self, address: str | None) -> bool:
        """True when the key has no allow-list or the address is inside one of its ranges."""
        if not self.networks:
            return True
        if address is None:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in network for network in self.networks)
