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


def address_problem(address: str) -> str | None:
    """Why a resolved address must not be a webhook target (SSRF), or None.

    Only globally routable unicast addresses are allowed: private (10/8, 172.16/12,
    192.168/16, fc00::/7), loopback, link-local (169.254/16 with cloud metadata, fe80::/10),
    shared (100.64/10), multicast, reserved and unspecified addresses are refused. An IPv6
    address that embeds an IPv4 one (::ffff:a.b.c.d, 6to4, Teredo) is judged by that address.
    """
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return f"{address} is not an IP address"
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None:
            return address_problem(str(embedded))
    if ip.is_multicast or not ip.is_global:
        return f"{address} is a private, loopback, link-local or reserved address"
    return None


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
