"""Pure webhook rules: event-type patterns, target address safety, retry schedule, disabling."""

from __future__ import annotations

import base64
import ipaddress
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

# Event types are dotted lower-case words; a pattern may end in ".*" (one family) or be "*".
PATTERN_RE = r"^(\*|[a-z][a-z0-9_\-]*(\.[a-z][a-z0-9_\-]*)*(\.\*)?)$"
TEST_EVENT_TYPE = "webhook.test"

# Retry schedule: exponential from BASE_S, each delay capped at CAP_S, "equal jitter" (half
# fixed, half random) so endpoints that failed together do not come back in lockstep.
# With MAX_ATTEMPTS = 15 a delivery is retried for about 12 to 16 hours before it fails.
BASE_S = 30.0
CAP_S = 2 * 3600.0
MAX_ATTEMPTS = 15
LEASE_S = 120.0


def matches(patterns: list[str], event_type: str) -> bool:
    """True when ``event_type`` is named by a pattern: exact, ``family.*`` or ``*``."""
    for p in patterns:
        if p == "*" or p == event_type:
            return True
        if p.endswith(".*") and event_type.startswith(p[:-1]):
            return True
    return False


def new_secret(rng: random.Random) -> str:
    """A Standard Webhooks secret: ``whsec_`` + base64 of 24 random bytes."""
    return "whsec_" + base64.b64encode(rng.randbytes(24)).decode()


def secret_problem(secret: str) -> str | None:
    """Why an operator-given secret is unusable, or None."""
    raw = secret.removeprefix("whsec_")
    try:
        key = base64.b64decode(raw, validate=True)
    except (ValueError, TypeError):
        return "must be whsec_ followed by base64"
    if not 24 <= len(key) <= 64:
        return "the key must decode to 24..64 bytes"
    return None


def url_problem(url: str) -> str | None:
    """Why a target URL is malformed (scheme, host, credentials), or None."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError on a bad port)
    except ValueError:
        return "not a URL"
    if parts.scheme not in ("http", "https"):
        return "the scheme must be http or https"
    if not parts.hostname:
        return "the URL has no host"
    if parts.username or parts.password:
        return "credentials in the URL are not allowed; use the signature"
    return None


def host_literal(url: str) -> str:
    return urlsplit(url).hostname or ""


# Networks that are not globally reachable (IANA special-purpose registries) but that older
# Python patch releases (3.11 before the CVE-2024-4032 fix) report as ``is_global``.
_NOT_GLOBAL = tuple(
    ipaddress.ip_network(n)
    for n in (
        "192.0.0.0/24",  # IETF protocol assignments
        "64:ff9b:1::/48",  # local-use NAT64 (RFC 8215): the IPv4 position depends on the site
        "fec0::/10",  # deprecated site-local
        "3fff::/20",  # documentation (RFC 9637)
        "5f00::/16",  # SRv6 SIDs (RFC 9602)
    )
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # well-known NAT64 prefix (RFC 6052)
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")  # deprecated ::a.b.c.d (RFC 4291)
_IPV4_TRANSLATED = ipaddress.IPv6Network("::ffff:0:0:0/96")  # SIIT ::ffff:0:a.b.c.d (RFC 2765)


def embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries and reaches in the end: IPv4-mapped,
    IPv4-compatible and IPv4-translated (the low 32 bits), NAT64 ``64:ff9b::/96`` (the low 32
    bits), 6to4 (``2002::/16``) and Teredo (server and client). Empty for a plain address."""
    if ip.ipv4_mapped is not None:
        return [ip.ipv4_mapped]
    if ip in _NAT64 or ip in _IPV4_COMPATIBLE or ip in _IPV4_TRANSLATED:
        return [ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)]
    if ip.sixtofour is not None:
        return [ip.sixtofour]
    if ip.teredo is not None:
        return list(ip.teredo)
    return []


def address_problem(address: str) -> str | None:
    """Why a resolved address must not be a webhook target (SSRF), or None.

    Only globally routable unicast addresses are allowed: private (10/8, 172.16/12,
    192.168/16, fc00::/7), loopback, link-local (169.254/16 with cloud metadata, fe80::/10),
    shared (100.64/10), multicast, reserved and unspecified addresses are refused. An IPv6
    address that embeds an IPv4 one (IPv4-mapped ``::ffff:a.b.c.d``, IPv4-compatible
    ``::a.b.c.d``, NAT64 ``64:ff9b::a.b.c.d``, 6to4, Teredo) is judged by the IPv4 address it
    embeds: ``64:ff9b::a00:1`` is 10.0.0.1 on a NAT64 network and refused,
    ``64:ff9b::808:808`` (8.8.8.8) passes. Local-use NAT64 (``64:ff9b:1::/48``) is refused.
    """
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return f"{address} is not an IP address"
    refused = f"{address} is a private, loopback, link-local or reserved address"
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = embedded_ipv4(ip)
        if embedded:
            if any(_not_public(v4) for v4 in embedded):
                return f"{refused} (it reaches {', '.join(map(str, embedded))})"
            return None
        if ip.is_reserved:  # the rest of ::/8 and other IETF-reserved space
            return refused
    return refused if _not_public(ip) else None


def _not_public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return (
        ip.is_multicast
        or not ip.is_global
        or any(ip.version == n.version and ip in n for n in _NOT_GLOBAL)
    )


def retry_delay(attempts: int, rng: random.Random) -> timedelta:
    """The wait after the ``attempts``-th failed attempt (1-based)."""
    ceiling = min(CAP_S, BASE_S * 2 ** (attempts - 1))
    return timedelta(seconds=ceiling / 2 + rng.uniform(0, ceiling / 2))


@dataclass(frozen=True, slots=True)
class DisablePolicy:
    """An endpoint is disabled once it failed ``min_failures`` attempts in a row AND has not
    succeeded for ``after``: a long run, not a short outage or one bad event."""

    min_failures: int
    after: timedelta


def should_disable(
    consecutive_failures: int, failing_since: datetime | None, now: datetime, policy: DisablePolicy
) -> bool:
    return (
        failing_since is not None
        and consecutive_failures >= policy.min_failures
        and now - failing_since >= policy.after
    )


def describe_failure(status_code: int | None, error: str | None) -> str:
    if status_code is not None:
        return f"HTTP {status_code}"
    return error or "unknown error"
