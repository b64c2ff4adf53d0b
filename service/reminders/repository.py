"""SQL of reminders. Every function takes the caller's connection (or transaction)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

REMINDER_COLUMNS = (
    "id, tenant_id, member_id, kind, occasion, values, status, grant_id, attempts, "
    "not_before, last_error, sent_at, created_at"
)


async def get_config(conn: asyncpg.Connection, tenant_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT config, updated_at FROM reminder_configs WHERE tenant_id = $1", tenant_id
    )


async def put_config(
    conn: asyncpg.Connection, tenant_id: int, config: dict[str, Any], now: datetime
) -> asyncpg.Record:
    return await conn.fetchrow(
        "INSERT INTO reminder_configs (tenant_id, config, updated_at) VALUES ($1, $2, $3) "
        "ON CONFLICT (tenant_id) DO UPDATE SET config = EXCLUDED.config, "
        "updated_at = EXCLUDED.updated_at RETURNING config, updated_at",
        tenant_id,
        config,
        now,
    )


async def configured_tenants(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT r.tenant_id, r.config, t.timezone FROM reminder_configs r "
        "JOIN tenants t ON t.id = r.tenant_id ORDER BY r.tenant_id"
    )


async def tenant_timezone(conn: asyncpg.Connection, tenant_id: int) -> str:
    return str(await conn.fetchval("SELECT timezone FROM tenants WHERE id = $1", tenant_id))


async def add_grants(
    conn: asyncpg.Connection, tenant_id: int, member_id: int, template_ids: list[str], now: datetime
) -> None:
    await conn.execute(
        "INSERT INTO reminder_grants (tenant_id, member_id, template_id, granted_at) "
        "SELECT $1, $2, t, $4 FROM unnest($3::text[]) AS t",
        tenant_id,
        member_id,
        template_ids,
        now,
    )


async def available_grants(
    conn: asyncpg.Connection, tenant_id: int, member_id: int
) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT template_id, count(*) AS available FROM reminder_grants WHERE tenant_id = $1 "
        "AND member_id = $2 AND used_at IS NULL GROUP BY template_id ORDER BY template_id",
        tenant_id,
        member_id,
    )


async def schedule(conn: asyncpg.Connection, rows: list[dict[str, Any]], now: datetime) -> int:
    """Insert reminders; one that exists for the same (member, kind, occasion) is skipped."""
    if not rows:
        return 0
    status = await conn.execute(
        "INSERT INTO reminders (tenant_id, member_id, kind, occasion, values, status, "
        "attempts, not_before, created_at) "
        "SELECT t, m, k, o, v, 'pending', 0, $6, $6 FROM unnest($1::int[], $2::bigint[], "
        "$3::text[], $4::text[], $5::jsonb[]) AS u(t, m, k, o, v) "
        "ON CONFLICT (tenant_id, member_id, kind, occasion) DO NOTHING",
        [r["tenant_id"] for r in rows],
        [r["member_id"] for r in rows],
        [r["kind"] for r in rows],
        [r["occasion"] for r in rows],
        [r["values"] for r in rows],
        now,
    )
    return int(status.rsplit(" ", 1)[-1])


async def claim_due(
    conn: asyncpg.Connection, now: datetime, lease_until: datetime, limit: int
) -> list[asyncpg.Record]:
    return await conn.fetch(
        "UPDATE reminders SET lease_until = $2 WHERE id IN ("
        "  SELECT id FROM reminders WHERE status = 'pending' AND not_before <= $1 "
        "  AND (lease_until IS NULL OR lease_until <= $1) ORDER BY not_before, id LIMIT $3 "
        f"  FOR UPDATE SKIP LOCKED) RETURNING {REMINDER_COLUMNS}",
        now,
        lease_until,
        limit,
    )


async def consume_grant(
    conn: asyncpg.Connection,
    tenant_id: int,
    member_id: int,
    template_id: str,
    reminder_id: int,
    now: datetime,
) -> int | None:
    """Spend the member's oldest unused grant of the template on this reminder (locked, so
    two reminders never spend one grant); None when the member has none."""
    grant_id = await conn.fetchval(
        "UPDATE reminder_grants SET used_at = $5, reminder_id = $4 WHERE id = ("
        "  SELECT id FROM reminder_grants WHERE tenant_id = $1 AND member_id = $2 "
        "  AND template_id = $3 AND used_at IS NULL ORDER BY id LIMIT 1 "
        "  FOR UPDATE SKIP LOCKED) RETURNING id",
        tenant_id,
        member_id,
        template_id,
        reminder_id,
        now,
    )
    if grant_id is not None:
        await conn.execute(
            "UPDATE reminders SET grant_id = $2 WHERE id = $1", reminder_id, grant_id
        )
    return grant_id


async def finish(
    conn: asyncpg.Connection, reminder_id: int, status: str, error: str | None, now: datetime
) -> None:
    await conn.execute(
        "UPDATE reminders SET status = $2::text, last_error = $3, lease_until = NULL, "
        "attempts = attempts + CASE WHEN $2::text IN ('no_grant', 'expired') THEN 0 ELSE 1 END, "
        "sent_at = CASE WHEN $2::text = 'sent' THEN $4::timestamptz END WHERE id = $1",
        reminder_id,
        status,
        error[:512] if error else None,
        now,
    )


async def postpone(
    conn: asyncpg.Connection,
    reminder_id: int,
    not_before: datetime,
    error: str | None,
    *,
    attempted: bool,
) -> None:
    await conn.execute(
        "UPDATE reminders SET not_before = $2, last_error = $3, lease_until = NULL, "
        "attempts = attempts + $4 WHERE id = $1",
        reminder_id,
        not_before,
        error[:512] if error else None,
        1 if attempted else 0,
    )


async def list_recent(
    conn: asyncpg.Connection, tenant_id: int, member_id: int | None, limit: int
) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"SELECT {REMINDER_COLUMNS} FROM reminders WHERE tenant_id = $1 "
        "AND ($2::bigint IS NULL OR member_id = $2) ORDER BY id DESC LIMIT $3",
        tenant_id,
        member_id,
        limit,
    )


async def members_with_grants(
    conn: asyncpg.Connection, tenant_id: int, template_id: str, member_ids: list[int]
) -> set[int]:
    rows = await conn.fetch(
        "SELECT DISTINCT member_id FROM reminder_grants WHERE tenant_id = $1 "
        "AND template_id = $2 AND used_at IS NULL AND member_id = ANY($3::bigint[])",
        tenant_id,
        template_id,
        member_ids,
    )
    return {r["member_id"] for r in rows}
