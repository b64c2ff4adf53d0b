"""SQL of webhooks. Every function takes the caller's connection (or transaction)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

WEBHOOK_COLUMNS = (
    "id, tenant_id, key, url, event_types, secret, description, enabled, disabled_reason, "
    "disabled_at, consecutive_failures, failing_since, created_at, updated_at"
)
DELIVERY_COLUMNS = (
    "id, tenant_id, webhook_id, event_id, msg_id, event_type, member_id, status, attempts, "
    "next_attempt_at, last_attempt_at, last_status_code, last_error, last_latency_ms, "
    "delivered_at, created_at"
)


async def get(
    conn: asyncpg.Connection, tenant_id: int, key: str, *, lock: bool = False
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE tenant_id = $1 AND key = $2"
        + (" FOR UPDATE" if lock else ""),
        tenant_id,
        key,
    )


async def get_by_id(conn: asyncpg.Connection, webhook_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE id = $1", webhook_id)


async def list_for_tenant(conn: asyncpg.Connection, tenant_id: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE tenant_id = $1 ORDER BY key", tenant_id
    )


async def upsert(
    conn: asyncpg.Connection,
    tenant_id: int,
    key: str,
    url: str,
    event_types: list[str],
    secret: str | None,
    description: str,
    enabled: bool,
    now: datetime,
) -> asyncpg.Record:
    """Create or replace; a None secret keeps the current one. Enabling clears the failure
    run and the disabled reason."""
    return await conn.fetchrow(
        "INSERT INTO webhooks (tenant_id, key, url, event_types, secret, description, enabled, "
        "consecutive_failures, created_at, updated_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8, $8) "
        "ON CONFLICT (tenant_id, key) DO UPDATE SET url = EXCLUDED.url, "
        "event_types = EXCLUDED.event_types, "
        "secret = COALESCE($9, webhooks.secret), description = EXCLUDED.description, "
        "enabled = EXCLUDED.enabled, updated_at = EXCLUDED.updated_at, "
        "disabled_reason = CASE WHEN EXCLUDED.enabled THEN NULL ELSE webhooks.disabled_reason END, "
        "disabled_at = CASE WHEN EXCLUDED.enabled THEN NULL ELSE webhooks.disabled_at END, "
        "consecutive_failures = CASE WHEN EXCLUDED.enabled AND NOT webhooks.enabled THEN 0 "
        "ELSE webhooks.consecutive_failures END, "
        "failing_since = CASE WHEN EXCLUDED.enabled AND NOT webhooks.enabled THEN NULL "
        "ELSE webhooks.failing_since END "
        f"RETURNING {WEBHOOK_COLUMNS}, (xmax = 0) AS created",
        tenant_id,
        key,
        url,
        event_types,
        secret or "",
        description,
        enabled,
        now,
        secret,
    )


async def delete(conn: asyncpg.Connection, tenant_id: int, key: str) -> bool:
    """Removes the endpoint and its delivery log (pending deliveries are dropped with it)."""
    row = await conn.fetchrow(
        "DELETE FROM webhooks WHERE tenant_id = $1 AND key = $2 RETURNING id", tenant_id, key
    )
    if row is None:
        return False
    await conn.execute("DELETE FROM webhook_deliveries WHERE webhook_id = $1", row["id"])
    return True


async def enabled_for_tenants(
    conn: asyncpg.Connection, tenant_ids: list[int]
) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT id, tenant_id, event_types FROM webhooks "
        "WHERE tenant_id = ANY($1::int[]) AND enabled ORDER BY id",
        tenant_ids,
    )


async def external_ids(conn: asyncpg.Connection, member_ids: list[int]) -> dict[int, str | None]:
    """The brand's id (``externalId``) of each member, in one query; None for a member the
    brand never named (a WeChat login not yet linked)."""
    if not member_ids:
        return {}
    rows = await conn.fetch(
        "SELECT id, external_id FROM members WHERE id = ANY($1::bigint[])", member_ids
    )
    return {r["id"]: r["external_id"] for r in rows}


async def enqueue(conn: asyncpg.Connection, rows: list[dict[str, Any]], now: datetime) -> int:
    """Insert deliveries in the given order (ids follow it); an event already queued for an
    endpoint is skipped, so handing the same events over again queues nothing twice."""
    if not rows:
        return 0
    status = await conn.execute(
        "INSERT INTO webhook_deliveries (tenant_id, webhook_id, event_id, msg_id, event_type, "
        "member_id, order_key, body, status, attempts, next_attempt_at, created_at) "
        "SELECT t, w, e, m, ty, mem, COALESCE(mem, 0), b, 'pending', 0, $9, $9 "
        "FROM unnest($1::int[], $2::bigint[], $3::text[], $4::text[], $5::text[], "
        "$6::bigint[], $7::text[], $8::int[]) AS u(t, w, e, m, ty, mem, b, ord) ORDER BY ord "
        "ON CONFLICT (webhook_id, event_id) DO NOTHING",
        [r["tenant_id"] for r in rows],
        [r["webhook_id"] for r in rows],
        [r["event_id"] for r in rows],
        [r["msg_id"] for r in rows],
        [r["event_type"] for r in rows],
        [r["member_id"] for r in rows],
        [r["body"] for r in rows],
        list(range(len(rows))),
        now,
    )
    return int(status.rsplit(" ", 1)[-1])


async def claim_due(
    conn: asyncpg.Connection, now: datetime, lease_until: datetime, limit: int
) -> list[asyncpg.Record]:
    """Lease due deliveries of enabled endpoints: only the oldest pending one of each
    (endpoint, member), so a member's events go out strictly in commit order."""
    return await conn.fetch(
        "UPDATE webhook_deliveries d SET lease_until = $2 FROM webhooks w "
        "WHERE w.id = d.webhook_id AND d.id IN ("
        "  SELECT d2.id FROM webhook_deliveries d2 JOIN webhooks w2 ON w2.id = d2.webhook_id "
        "  WHERE d2.status = 'pending' AND d2.next_attempt_at <= $1 AND w2.enabled "
        "  AND (d2.lease_until IS NULL OR d2.lease_until <= $1) "
        "  AND NOT EXISTS (SELECT 1 FROM webhook_deliveries e WHERE e.webhook_id = d2.webhook_id "
        "    AND e.order_key = d2.order_key AND e.status = 'pending' AND e.id < d2.id) "
        "  ORDER BY d2.next_attempt_at, d2.id LIMIT $3 FOR UPDATE OF d2 SKIP LOCKED) "
        "RETURNING d.id, d.tenant_id, d.webhook_id, d.msg_id, d.body, d.attempts, "
        "w.url, w.secret",
        now,
        lease_until,
        limit,
    )


async def claim_one(
    conn: asyncpg.Connection, delivery_id: int, now: datetime, lease_until: datetime
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "UPDATE webhook_deliveries d SET lease_until = $3 FROM webhooks w "
        "WHERE w.id = d.webhook_id AND d.id = $1 "
        "AND (d.lease_until IS NULL OR d.lease_until <= $2) "
        "RETURNING d.id, d.tenant_id, d.webhook_id, d.msg_id, d.body, d.attempts, "
        "w.url, w.secret",
        delivery_id,
        now,
        lease_until,
    )


async def record_success(
    conn: asyncpg.Connection,
    delivery_id: int,
    webhook_id: int,
    status_code: int,
    latency_ms: int,
    now: datetime,
) -> None:
    await conn.execute(
        "UPDATE webhook_deliveries SET status = 'delivered', attempts = attempts + 1, "
        "lease_until = NULL, last_attempt_at = $2, last_status_code = $3, last_error = NULL, "
        "last_latency_ms = $4, delivered_at = $2 WHERE id = $1",
        delivery_id,
        now,
        status_code,
        latency_ms,
    )
    await conn.execute(
        "UPDATE webhooks SET consecutive_failures = 0, failing_since = NULL WHERE id = $1",
        webhook_id,
    )


async def record_failure(
    conn: asyncpg.Connection,
    delivery_id: int,
    webhook_id: int,
    status_code: int | None,
    error: str,
    latency_ms: int | None,
    now: datetime,
    next_attempt_at: datetime | None,
) -> asyncpg.Record | None:
    """Count the failed attempt; ``next_attempt_at`` None means give up (status failed).
    Returns the endpoint's failure run after this attempt (None if it was deleted)."""
    await conn.execute(
        "UPDATE webhook_deliveries SET attempts = attempts + 1, lease_until = NULL, "
        "last_attempt_at = $2, last_status_code = $3, last_error = $4, last_latency_ms = $5, "
        "status = CASE WHEN $6::timestamptz IS NULL THEN 'failed' ELSE 'pending' END, "
        "next_attempt_at = COALESCE($6, next_attempt_at) WHERE id = $1",
        delivery_id,
        now,
        status_code,
        error[:512],
        latency_ms,
        next_attempt_at,
    )
    return await conn.fetchrow(
        "UPDATE webhooks SET consecutive_failures = consecutive_failures + 1, "
        "failing_since = COALESCE(failing_since, $2) WHERE id = $1 "
        "RETURNING consecutive_failures, failing_since, enabled",
        webhook_id,
        now,
    )


async def disable(conn: asyncpg.Connection, webhook_id: int, reason: str, now: datetime) -> None:
    await conn.execute(
        "UPDATE webhooks SET enabled = false, disabled_reason = $2, disabled_at = $3, "
        "updated_at = $3 WHERE id = $1 AND enabled",
        webhook_id,
        reason[:512],
        now,
    )


async def list_deliveries(
    conn: asyncpg.Connection, webhook_id: int, before_id: int | None, limit: int
) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE webhook_id = $1 "
        "AND ($2::bigint IS NULL OR id < $2) ORDER BY id DESC LIMIT $3",
        webhook_id,
        before_id,
        limit,
    )


async def get_delivery(
    conn: asyncpg.Connection, webhook_id: int, delivery_id: int
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE webhook_id = $1 AND id = $2",
        webhook_id,
        delivery_id,
    )


async def requeue(
    conn: asyncpg.Connection, webhook_id: int, delivery_id: int, now: datetime
) -> asyncpg.Record | None:
    """Manual redelivery: pending again, due now, the same webhook-id and body."""
    return await conn.fetchrow(
        "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = $3 "
        f"WHERE webhook_id = $1 AND id = $2 RETURNING {DELIVERY_COLUMNS}",
        webhook_id,
        delivery_id,
        now,
    )


async def delivery_id(conn: asyncpg.Connection, webhook_id: int, event_id: str) -> int:
    return int(
        await conn.fetchval(
            "SELECT id FROM webhook_deliveries WHERE webhook_id = $1 AND event_id = $2",
            webhook_id,
            event_id,
        )
    )


async def record_test(
    conn: asyncpg.Connection,
    delivery_id: int,
    ok: bool,
    status_code: int | None,
    error: str | None,
    latency_ms: int | None,
    now: datetime,
) -> None:
    """A test event has one attempt and leaves the endpoint's failure run alone."""
    await conn.execute(
        "UPDATE webhook_deliveries SET status = CASE WHEN $2 THEN 'delivered' ELSE 'failed' END, "
        "attempts = 1, lease_until = NULL, last_attempt_at = $3, last_status_code = $4, "
        "last_error = $5, last_latency_ms = $6, "
        "delivered_at = CASE WHEN $2 THEN $3::timestamptz END WHERE id = $1",
        delivery_id,
        ok,
        now,
        status_code,
        None if ok else (error or "failed")[:512],
        latency_ms,
    )


async def make_pending_due(conn: asyncpg.Connection, webhook_id: int, now: datetime) -> None:
    await conn.execute(
        "UPDATE webhook_deliveries SET next_attempt_at = $2 "
        "WHERE webhook_id = $1 AND status = 'pending' AND next_attempt_at > $2",
        webhook_id,
        now,
    )


async def purge_finished(conn: asyncpg.Connection, before: datetime, limit: int) -> int:
    """Delete finished (delivered or failed) deliveries created before ``before``."""
    status = await conn.execute(
        "DELETE FROM webhook_deliveries WHERE id IN (SELECT id FROM webhook_deliveries "
        "WHERE status <> 'pending' AND created_at < $1 LIMIT $2)",
        before,
        limit,
    )
    return int(status.rsplit(" ", 1)[-1])
