"""The console's session: a signed cookie (HMAC-SHA256) naming the tenant and API key, with an
expiry and a CSRF token. Every request re-checks that the key is still unrevoked and that the
session was not signed out (sign-out marks the session ended in Redis until it would have
expired, so a copy of the old cookie stops working at once)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

import msgspec

from service.core import tenancy
from service.core.context import Context
from service.core.tenancy import Operator

COOKIE = "engage_console"
LOGIN_CSRF_COOKIE = "engage_console_login"
TTL_S = 8 * 3600


@dataclass(frozen=True, slots=True)
class Session:
    tenant_id: int
    key_id: str
    csrf: str
    expires: int
    operator: Operator
    tenant_name: str = ""


def _secret(ctx: Context) -> bytes:
    return hashlib.sha256(b"console-session:" + ctx.settings.token_secret.encode()).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(ctx: Context, tenant_id: int, key_id: str) -> tuple[str, str]:
    """(cookie value, csrf token) of a new session."""
    csrf = secrets.token_urlsafe(24)
    exp = int(ctx.clock.now().timestamp()) + TTL_S
    body = _b64(msgspec.json.encode({"t": tenant_id, "k": key_id, "c": csrf, "e": exp}))
    mac = _b64(hmac.new(_secret(ctx), body.encode(), hashlib.sha256).digest())
    return f"{body}.{mac}", csrf


async def load(ctx: Context, cookie: str | None) -> Session | None:
    """The session of a cookie, or None when it is missing, forged, expired, or its key was
    revoked since sign-in."""
    if not cookie or "." not in cookie:
        return None
    body, _, mac = cookie.partition(".")
    good = _b64(hmac.new(_secret(ctx), body.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(good, mac):
        return None
    try:
        data = msgspec.json.decode(_unb64(body))
        tenant_id, key_id, csrf, exp = (
            int(data["t"]),
            str(data["k"]),
            str(data["c"]),
            int(data["e"]),
        )
    except (ValueError, KeyError, TypeError, msgspec.DecodeError):
        return None
    if exp <= ctx.clock.now().timestamp():
        return None
    if await ctx.redis.exists(_ended_key(ctx, tenant_id, csrf)):
        return None
    async with ctx.db.connection() as conn:
        row = await tenancy.active_key(conn, key_id)
        if row is None or row["tenant_id"] != tenant_id:
            return None
        tenant = await tenancy.get_tenant(conn, tenant_id)
    return Session(
        tenant_id,
        key_id,
        csrf,
        exp,
        Operator(tenant_id, key_id, frozenset(row["scopes"])),
        (tenant.name if tenant.name == tenant.slug else f"{tenant.name} ({tenant.slug})")
        if tenant
        else f"tenant {tenant_id}",
    )


def _ended_key(ctx: Context, tenant_id: int, csrf: str) -> str:
    # The CSRF token is the session's own random id (one per sign-in).
    return ctx.keys.tenant(tenant_id, "console-ended", hashlib.sha256(csrf.encode()).hexdigest())


async def end(ctx: Context, sess: Session) -> None:
    """Sign out server-side: this session's cookie is refused from now until it expires."""
    ttl = max(1, sess.expires - int(ctx.clock.now().timestamp()))
    await ctx.redis.set(_ended_key(ctx, sess.tenant_id, sess.csrf), b"1", ex=ttl)


def csrf_ok(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected.encode(), str(given).encode())
