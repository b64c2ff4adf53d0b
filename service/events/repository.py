"""SQL of event ingestion: rules, received events (dedupe), daily cap counters."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from service.events.rules import CapKey


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


@dataclass(frozen=True, slots=True)
class ReceivedEvent:
    """A brand event as stored for dedupe (``value`` as text, exact)."""

    event_id: str
    member_id: int | None
    type: str
    value: str | None
    attributes: dict[str, Any]
    occurred_at: datetime


async def insert_member_events(
    conn: asyncpg.Connection, tenant_id: int, rows: list[ReceivedEvent], now: datetime
) -> set[str]:
    """Record events; returns the ids that were new (the rest were seen before: ingesting
    twice changes nothing)."""
    if not rows:
        return set()
    rows = sorted(rows, key=lambda r: r.event_id)  # one lock order for overlapping batches
    result = await conn.fetch(
        "INSERT INTO member_events (tenant_id, event_id, member_id, type, value, attributes, "
        "occurred_at, received_at) SELECT $1, e, m, t, v, a, o, $8 FROM unnest($2::text[], "
        "$3::bigint[], $4::text[], $5::text[], $6::jsonb[], $7::timestamptz[]) "
        "AS u(e, m, t, v, a, o) ON CONFLICT (tenant_id, event_id) DO NOTHING RETURNING event_id",
        tenant_id,
        [r.event_id for r in rows],
        [r.member_id for r in rows],
        [r.type for r in rows],
        [r.value for r in rows],
        [r.attributes for r in rows],
        [r.occurred_at for r in rows],
        now,
    )
    return {r["event_id"] for r in result}


async def lock_usage(
    conn: asyncpg.Connection, tenant_id: int, keys: list[CapKey]
) -> dict[CapKey, int]:
    """Create and lock the daily-cap counters; returns the amounts used so far."""
    ordered = sorted(set(keys), key=lambda k: (k.rule, k.member_id, k.day))
    rows = await conn.fetch(
        "INSERT INTO rule_daily_usage (tenant_id, rule_key, member_id, day, amount) "
        "SELECT $1, r, m, d, 0 FROM unnest($2::text[], $3::bigint[], $4::date[]) AS u(r, m, d) "
        "ON CONFLICT (tenant_id, rule_key, member_id, day) DO UPDATE "
        "SET amount = rule_daily_usage.amount RETURNING rule_key, member_id, day, amount",
        tenant_id,
        [k.rule for k in ordered],
        [k.member_id for k in ordered],
        [k.day for k in ordered],
    )
    return {CapKey(r["rule_key"], r["member_id"], r["day"]): r["amount"] for r in rows}


async def add_usage(conn: asyncpg.Connection, tenant_id: int, added: dict[CapKey, int]) -> None:
    """Raise locked cap counters by what was credited."""
    keys = list(added)
    await conn.execute(
        "UPDATE rule_daily_usage u SET amount = u.amount + d.a FROM unnest($2::text[], "
        "$3::bigint[], $4::date[], $5::bigint[]) AS d(r, m, dy, a) WHERE u.tenant_id = $1 "
        "AND u.rule_key = d.r AND u.member_id = d.m AND u.day = d.dy",
        tenant_id,
        [k.rule for k in keys],
        [k.member_id for k in keys],
        [k.day for k in keys],
        [added[k] for k in keys],
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
