"""Tenants, operator API keys and registered mini-program apps (SQL and key handling)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from service.core.cache import Cache, Caches

# Scopes an API key may carry. "admin" implies all of them.
SCOPES: dict[str, str] = {
    "admin": "everything below",
    "config": "read and change campaign, game and level configuration",
    "events": "post member events",
    "members": "mint member tokens, read members",
    "points": "credit and debit points manually",
    "reports": "read stats, audit logs and exports",
}

KEY_PREFIX = "egk_"


@dataclass(frozen=True, slots=True)
class Tenant:
    id: int
    slug: str
    name: str
    timezone: str
    settings: dict


@dataclass(frozen=True, slots=True)
class Operator:
    tenant_id: int
    key_id: str
    scopes: frozenset[str]

    def allows(self, scope: str) -> bool:
        return "admin" in self.scopes or scope in self.scopes


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_api_key() -> tuple[str, str, str]:
    """(full key shown once, key id, secret hash)."""
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(24)
    return f"{KEY_PREFIX}{key_id}_{secret}", key_id, hash_secret(secret)


def split_api_key(full: str) -> tuple[str, str] | None:
    if not full.startswith(KEY_PREFIX):
        return None
    rest = full[len(KEY_PREFIX) :]
    key_id, sep, secret = rest.partition("_")
    if not sep or len(key_id) != 12 or not secret:
        return None
    return key_id, secret


def _tenant(row: asyncpg.Record) -> Tenant:
    return Tenant(row["id"], row["slug"], row["name"], row["timezone"], row["settings"] or {})


async def create_tenant(
    conn: asyncpg.Connection, slug: str, name: str, now: datetime, timezone: str = "Asia/Shanghai"
) -> Tenant:
    row = await conn.fetchrow(
        "INSERT INTO tenants (slug, name, timezone, settings, created_at) "
        "VALUES ($1, $2, $3, '{}'::jsonb, $4) RETURNING *",
        slug,
        name,
        timezone,
        now,
    )
    return _tenant(row)


async def get_tenant(conn: asyncpg.Connection, tenant_id: int) -> Tenant | None:
    row = await conn.fetchrow("SELECT * FROM tenants WHERE id = $1", tenant_id)
    return _tenant(row) if row else None


async def get_tenant_by_slug(conn: asyncpg.Connection, slug: str) -> Tenant | None:
    row = await conn.fetchrow("SELECT * FROM tenants WHERE slug = $1", slug)
    return _tenant(row) if row else None


async def update_tenant_settings(conn: asyncpg.Connection, tenant_id: int, patch: dict) -> None:
    await conn.execute(
        "UPDATE tenants SET settings = settings || $2::jsonb WHERE id = $1", tenant_id, patch
    )


async def create_api_key(
    conn: asyncpg.Connection, tenant_id: int, scopes: list[str], name: str, now: datetime
) -> tuple[str, str]:
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise ValueError(f"unknown scopes: {', '.join(unknown)} (known: {', '.join(SCOPES)})")
    full, key_id, secret_hash = new_api_key()
    await conn.execute(
        "INSERT INTO api_keys (tenant_id, key_id, secret_hash, name, scopes, created_at) "
        "VALUES ($1, $2, $3, $4, $5, $6)",
        tenant_id,
        key_id,
        secret_hash,
        name,
        sorted(set(scopes)),
        now,
    )
    return full, key_id


async def list_api_keys(conn: asyncpg.Connection, tenant_id: int) -> list[asyncpg.Record]:
    """A tenant's keys, newest first: key_id, name, scopes, created_at, last_used_at,
    revoked_at (never the secret)."""
    return await conn.fetch(
        "SELECT key_id, name, scopes, created_at, last_used_at, revoked_at FROM api_keys "
        "WHERE tenant_id = $1 ORDER BY id DESC",
        tenant_id,
    )


async def active_key(conn: asyncpg.Connection, key_id: str) -> asyncpg.Record | None:
    """tenant_id and scopes of an unrevoked key (the console re-checks its session's key)."""
    return await conn.fetchrow(
        "SELECT tenant_id, scopes FROM api_keys WHERE key_id = $1 AND revoked_at IS NULL", key_id
    )


async def revoke_tenant_key(
    conn: asyncpg.Connection, tenant_id: int, key_id: str, now: datetime
) -> bool:
    """Revoke one of the tenant's keys; False when it has no such unrevoked key."""
    status = await conn.execute(
        "UPDATE api_keys SET revoked_at = $3 WHERE tenant_id = $1 AND key_id = $2 "
        "AND revoked_at IS NULL",
        tenant_id,
        key_id,
        now,
    )
    return status.endswith(" 1")


async def revoke_api_key(conn: asyncpg.Connection, key_id: str, now: datetime) -> bool:
    status = await conn.execute(
        "UPDATE api_keys SET revoked_at = $2 WHERE key_id = $1 AND revoked_at IS NULL", key_id, now
    )
    return status.endswith(" 1")


async def register_wechat_app(
    conn: asyncpg.Connection,
    tenant_id: int,
    app_id: str,
    app_secret: str,
    verifier: str,
    now: datetime,
) -> None:
    await conn.execute(
        "INSERT INTO wechat_apps (tenant_id, app_id, app_secret, verifier, created_at) "
        "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (app_id) DO UPDATE SET "
        "app_secret = EXCLUDED.app_secret, verifier = EXCLUDED.verifier "
        "WHERE wechat_apps.tenant_id = EXCLUDED.tenant_id",
        tenant_id,
        app_id,
        app_secret,
        verifier,
        now,
    )


async def find_wechat_app(conn: asyncpg.Connection, app_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT tenant_id, app_id, app_secret, verifier FROM wechat_apps WHERE app_id = $1", app_id
    )


API_KEY_CACHE = "api_keys"


class ApiKeyCache:
    """Verified keys are remembered for a few seconds so an operator burst costs one query.

    A revoked key stops working on every process within ``ttl`` seconds, at once where the
    revoking code publishes the change (``caches.changed(API_KEY_CACHE)``).
    """

    def __init__(self, caches: Caches, ttl: float = 10.0) -> None:
        self._cache: Cache[str, Operator | None] = caches.get(API_KEY_CACHE, ttl)

    async def verify(
        self, conn_factory: Any, full_key: str, now: datetime | None = None
    ) -> Operator | None:
        """The operator of a valid, unrevoked key, else None. With ``now``, a database check
        also records ``last_used_at`` (so it is exact to the cache's ``ttl``)."""
        parts = split_api_key(full_key)
        if parts is None:
            return None
        key_id, secret = parts
        digest = hash_secret(secret)
        cache_key = f"{key_id}:{digest}"

        async def load() -> Operator | None:
            async with conn_factory() as conn:
                row = await conn.fetchrow(
                    "SELECT tenant_id, secret_hash, scopes FROM api_keys "
                    "WHERE key_id = $1 AND revoked_at IS NULL",
                    key_id,
                )
                if row is None or not hmac.compare_digest(row["secret_hash"], digest):
                    return None
                if now is not None:
                    await conn.execute(
                        "UPDATE api_keys SET last_used_at = $2 WHERE key_id = $1 "
                        "AND (last_used_at IS NULL OR last_used_at < $2)",
                        key_id,
                        now,
                    )
            return Operator(row["tenant_id"], key_id, frozenset(row["scopes"]))

        op = await self._cache.get(cache_key, load)
        if op is None:
            self._cache.drop(cache_key)  # unknown keys are not remembered
        return op
