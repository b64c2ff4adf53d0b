"""SQL of event ingestion: rules, received events (dedupe), daily cap counters."""

from __future__ import annotations

from datetime import datetime

import asyncpg


async def put_rule(
    conn: asyncpg.Connection,
    tenant_id: int,
    key: str,
    event_type: str,
    config: dict,
    now: datetime,
) -> int:
    return await conn.fetchval(
        "INSERT INTO event_rules (tenant_id, key, event_type, version, config, updated_at) "
        "VALUES ($1, $2, $3, 1, $4, $5) ON CONFLICT (tenant_id, key) DO UPDATE SET "
        "event_type = EXCLUDED.event_type, version = event_rules.version + 1, "
        "config = EXCLUDED.config, updated_at = EXCLUDED.updated_at RETURNING version",
        tenant_id,
        key,
        event_type,
        config,
        now,
    )


async def get_rule(conn: asyncpg.Connection, tenant_id: int, key: str):  # type: ignore[no-untyped-def]
    return await conn.fetchrow(
        "SELECT key, event_type, version, config, updated_at FROM event_rules "
        "WHERE tenant_id = $1 AND key = $2",
        tenant_id,
        key,
    )


async def list_rules(conn: asyncpg.Connection, tenant_id: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT key, event_type, version, config, updated_at FROM event_rules "
        "WHERE tenant_id = $1 ORDER BY key",
        tenant_id,
    )


async def insert_member_events(
    conn: asyncpg.Connection, tenant_id: int, rows: list[tuple], now: datetime
) -> set[str]:
    """rows: (event id, member, type, value text, attributes, occurred_at). Returns the ids
    that were new (the rest were seen before: ingesting twice changes nothing)."""
    if not rows:
        return set()
    rows = sorted(rows, key=lambda r: r[0])  # one lock order for overlapping batches
    cols = list(zip(*rows, strict=True))
    result = await conn.fetch(
        "INSERT INTO member_events (tenant_id, event_id, member_id, type, value, attributes, "
        "occurred_at, received_at) SELECT $1, e, m, t, v, a, o, $8 FROM unnest($2::text[], "
        "$3::bigint[], $4::text[], $5::text[], $6::jsonb[], $7::timestamptz[]) "
        "AS u(e, m, t, v, a, o) ON CONFLICT (tenant_id, event_id) DO NOTHING RETURNING event_id",
        tenant_id,
        *[list(c) for c in cols],
        now,
    )
    return {r["event_id"] for r in result}


async def lock_usage(
    conn: asyncpg.Connection, tenant_id: int, keys: list[tuple[str, int, object]]
) -> dict[tuple[str, int, object], int]:
    """Create and lock the daily-cap counters (rule, member, day); returns amounts used."""
    ordered = sorted(set(keys), key=lambda k: (k[0], k[1], str(k[2])))
    rows = await conn.fetch(
        "INSERT INTO rule_daily_usage (tenant_id, rule_key, member_id, day, amount) "
        "SELECT $1, r, m, d, 0 FROM unnest($2::text[], $3::bigint[], $4::date[]) AS u(r, m, d) "
        "ON CONFLICT (tenant_id, rule_key, member_id, day) DO UPDATE "
        "SET amount = rule_daily_usage.amount RETURNING rule_key, member_id, day, amount",
        tenant_id,
        [k[0] for k in ordered],
        [k[1] for k in ordered],
        [k[2] for k in ordered],
    )
    return {(r["rule_key"], r["member_id"], r["day"]): r["amount"] for r in rows}


async def add_usage(
    conn: asyncpg.Connection, tenant_id: int, rows: list[tuple[str, int, object, int]]
) -> None:
    await conn.execute(
        "UPDATE rule_daily_usage u SET amount = u.amount + d.a FROM unnest($2::text[], "
        "$3::bigint[], $4::date[], $5::bigint[]) AS d(r, m, dy, a) WHERE u.tenant_id = $1 "
        "AND u.rule_key = d.r AND u.member_id = d.m AND u.day = d.dy",
        tenant_id,
        [r[0] for r in rows],
        [r[1] for r in rows],
        [r[2] for r in rows],
        [r[3] for r in rows],
    )


async def forget_event(conn: asyncpg.Connection, tenant_id: int, event_id: str) -> None:
    await conn.execute(
        "DELETE FROM member_events WHERE tenant_id = $1 AND event_id = $2", tenant_id, event_id
    )


async def event_known(conn: asyncpg.Connection, tenant_id: int, event_id: str) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM member_events WHERE tenant_id = $1 AND event_id = $2)",
            tenant_id,
            event_id,
        )
    )
