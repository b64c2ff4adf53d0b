"""SQL of ceremonies and the honour wall. Every function takes the caller's connection."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

_COLS = (
    "id, tenant_id, member_id, kind, group_key, priority, facts, assets, created_at, "
    "expires_at, played_at"
)


async def insert(
    conn: asyncpg.Connection, tenant_id: int, rows: Sequence[tuple], now: datetime
) -> list[asyncpg.Record]:
    """(member, kind, dedup, group, priority, facts, assets, expires): the new ones only.
    Rows keep the events' delivery order, so ids (the honour wall's order) follow it."""
    ordered = list(rows)
    return await conn.fetch(
        "INSERT INTO ceremonies (tenant_id, member_id, kind, dedup_key, group_key, priority, "
        "facts, assets, created_at, expires_at, wall_hidden) "
        "SELECT $1, m, k, d, g, p, f, a, $10, x, false FROM unnest($2::bigint[], $3::text[], "
        "$4::text[], $5::text[], $6::int[], $7::jsonb[], $8::jsonb[], $9::timestamptz[]) "
        "WITH ORDINALITY AS u(m, k, d, g, p, f, a, x, ord) ORDER BY ord "
        "ON CONFLICT (tenant_id, dedup_key) DO NOTHING "
        f"RETURNING {_COLS}",
        tenant_id,
        [r[0] for r in ordered],
        [r[1] for r in ordered],
        [r[2] for r in ordered],
        [r[3] for r in ordered],
        [r[4] for r in ordered],
        [r[5] for r in ordered],
        [r[6] for r in ordered],
        [r[7] for r in ordered],
        now,
    )


async def pending(
    conn: asyncpg.Connection, tenant_id: int, member_id: int, now: datetime, cap: int
) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"SELECT {_COLS} FROM ceremonies WHERE tenant_id = $1 AND member_id = $2 "
        "AND played_at IS NULL AND expires_at > $3 ORDER BY priority DESC, id LIMIT $4",
        tenant_id,
        member_id,
        now,
        cap,
    )


# How many ceremonies of member $2 (tenant $1) wait to be played at $3; also embedded in the
# member read model (service/me/repository.py), so the rule lives here only.
COUNT_PENDING_SQL = (
    "SELECT count(*) FROM ceremonies WHERE tenant_id = $1 AND member_id = $2 "
    "AND played_at IS NULL AND expires_at > $3"
)


async def count_pending(
    conn: asyncpg.Connection, tenant_id: int, member_id: int, now: datetime
) -> int:
    return int(
        await conn.fetchval(
            COUNT_PENDING_SQL,
            tenant_id,
            member_id,
            now,
        )
    )


async def ack(
    conn: asyncpg.Connection, tenant_id: int, member_id: int, ceremony_id: int, now: datetime
) -> tuple[Any, bool] | None:
    """Mark played once; (row, first time?) or None when not this member's ceremony."""
    row = await conn.fetchrow(
        "UPDATE ceremonies SET played_at = $4 WHERE id = $1 AND tenant_id = $2 "
        f"AND member_id = $3 AND played_at IS NULL RETURNING {_COLS}",
        ceremony_id,
        tenant_id,
        member_id,
        now,
    )
    if row is not None:
        return row, True
    row = await one(conn, tenant_id, member_id, ceremony_id)
    return (row, False) if row is not None else None


async def one(
    conn: asyncpg.Connection, tenant_id: int, member_id: int, ceremony_id: int
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {_COLS} FROM ceremonies WHERE id = $1 AND tenant_id = $2 AND member_id = $3",
        ceremony_id,
        tenant_id,
        member_id,
    )


async def played(
    conn: asyncpg.Connection, tenant_id: int, member_id: int, before: int | None, limit: int
) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"SELECT {_COLS} FROM ceremonies WHERE tenant_id = $1 AND member_id = $2 "
        "AND played_at IS NOT NULL AND ($3::bigint IS NULL OR id < $3) ORDER BY id DESC LIMIT $4",
        tenant_id,
        member_id,
        before,
        limit,
    )


async def wall(
    conn: asyncpg.Connection, tenant_id: int, kind: str | None, before: int | None, limit: int
) -> list[asyncpg.Record]:
    """Recent honours, newest first, without hidden entries and opted-out members."""
    return await conn.fetch(
        f"SELECT {_COLS} FROM ceremonies c WHERE c.tenant_id = $1 AND NOT c.wall_hidden "
        "AND ($2::text IS NULL OR c.kind = $2) AND ($3::bigint IS NULL OR c.id < $3) "
        "AND NOT EXISTS (SELECT 1 FROM honour_wall_preferences p WHERE p.tenant_id = c.tenant_id "
        "AND p.member_id = c.member_id AND p.hidden) ORDER BY c.id DESC LIMIT $4",
        tenant_id,
        kind,
        before,
        limit,
    )


async def set_wall_hidden(
    conn: asyncpg.Connection, tenant_id: int, ceremony_id: int, hidden: bool
) -> bool:
    return (
        await conn.fetchval(
            "UPDATE ceremonies SET wall_hidden = $3 WHERE id = $1 AND tenant_id = $2 RETURNING id",
            ceremony_id,
            tenant_id,
            hidden,
        )
        is not None
    )


async def set_preference(
    conn: asyncpg.Connection, tenant_id: int, member_id: int, hidden: bool, now: datetime
) -> None:
    await conn.execute(
        "INSERT INTO honour_wall_preferences (tenant_id, member_id, hidden, updated_at) "
        "VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id, member_id) DO UPDATE SET "
        "hidden = EXCLUDED.hidden, updated_at = EXCLUDED.updated_at",
        tenant_id,
        member_id,
        hidden,
        now,
    )


async def settings_of(conn: asyncpg.Connection, tenant_id: int) -> dict[str, dict]:
    rows = await conn.fetch(
        "SELECT kind, config FROM ceremony_settings WHERE tenant_id = $1", tenant_id
    )
    return {r["kind"]: r["config"] for r in rows}


async def put_settings(
    conn: asyncpg.Connection, tenant_id: int, kind: str, config: dict, now: datetime
) -> None:
    await conn.execute(
        "INSERT INTO ceremony_settings (tenant_id, kind, config, updated_at) "
        "VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id, kind) DO UPDATE SET "
        "config = EXCLUDED.config, updated_at = EXCLUDED.updated_at",
        tenant_id,
        kind,
        config,
        now,
    )


async def tenants_with_ceremonies(conn: asyncpg.Connection) -> list[int]:
    return [r["tenant_id"] for r in await conn.fetch("SELECT DISTINCT tenant_id FROM ceremonies")]


async def withdraw_badge(
    conn: asyncpg.Connection,
    tenant_id: int,
    member_id: int,
    key: str,
    period: str,
    with_title: bool,
    member_badge_id: int | None = None,
    award_no: int | None = None,
) -> int:
    """A revoked badge: its ceremony (and that of the title it gave, when the title went
    with it) no longer plays or shows on the honour wall. Matched by the earned badge's id
    (``memberBadgeId``) and its award number (``awardNo``: a redelivered revoke never
    withdraws the ceremony of a later re-award; facts without one are award 1); events from
    before ids were recorded match by key and period."""
    status = await conn.execute(
        "UPDATE ceremonies SET wall_hidden = true, expires_at = LEAST(expires_at, created_at) "
        "WHERE tenant_id = $1 AND member_id = $2 AND NOT (wall_hidden AND expires_at <= "
        "created_at) AND ($7::int IS NULL OR kind NOT IN ('badge', 'title') "
        "OR coalesce(facts->>'awardNo', '1') = $7::int::text) "
        "AND ((kind = 'badge' AND CASE WHEN $6::bigint IS NOT NULL "
        "THEN facts->>'memberBadgeId' = $6::bigint::text "
        "ELSE facts->>'badge' = $3 AND coalesce(facts->>'period', '') = $4 END) "
        "OR ($5 AND kind = 'title' AND CASE WHEN $6::bigint IS NOT NULL "
        "THEN facts->>'memberBadgeId' = $6::bigint::text "
        "ELSE facts->>'source' = 'badge:' || $3 END))",
        tenant_id,
        member_id,
        key,
        period,
        with_title,
        member_badge_id,
        award_no,
    )
    return int(status.split()[-1])
