"""SQL of the ledger's reads and levels. Every balance change is written by the server-side
function ``engage_ledger_post`` (service.points.ledger, installed by a migration); it locks the
member's account row first, so changes of one member serialize."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

ENTRY_COLUMNS = (
    "id, member_id, currency, kind, delta, balance_after, reason, note, source_ref, "
    "reverses_entry_id, shortfall, expires_at, created_at"
)

# The one definition of a balance at an instant: the sum of the member's lots of that currency
# that still hold something and are not past their date (``expires_at`` after the instant, or
# none). The expiry job writes expiries some time after the date; until then the account row
# still counts those lots. So every write first writes the expiry of that member's due lots
# (lazily, in the same transaction, under the account lock) and every read subtracts the due
# lots the job has not written yet: answers, checks and ``balance_after`` agree at any instant.
DUE_LOTS = "remaining > 0 AND expires_at IS NOT NULL AND expires_at <= {now}"


async def credit_entries_by_source(
    conn: asyncpg.Connection, tenant_id: int, source_ref: str
) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"SELECT {ENTRY_COLUMNS} FROM ledger_entries WHERE tenant_id = $1 AND source_ref = $2 "
        "AND kind = 'credit' ORDER BY id",
        tenant_id,
        source_ref,
    )


async def due_accounts(conn: asyncpg.Connection, now: datetime, limit: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT DISTINCT tenant_id, member_id, currency FROM point_lots "
        f"WHERE {DUE_LOTS.format(now='$1')} LIMIT $2",
        now,
        limit,
    )


async def history(
    conn: asyncpg.Connection,
    tenant_id: int,
    member_id: int,
    currency: str | None,
    before_id: int | None,
    limit: int,
) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"SELECT {ENTRY_COLUMNS} FROM ledger_entries WHERE tenant_id = $1 AND member_id = $2 "
        "AND ($3::text IS NULL OR currency = $3) AND ($4::bigint IS NULL OR id < $4) "
        "ORDER BY id DESC LIMIT $5",
        tenant_id,
        member_id,
        currency,
        before_id,
        limit,
    )


# ----------------------------------------------------------------------------- levels


async def get_ladder(conn: asyncpg.Connection, tenant_id: int):  # type: ignore[no-untyped-def]
    return await conn.fetchrow(
        "SELECT version, config, updated_at FROM level_ladders WHERE tenant_id = $1", tenant_id
    )


async def put_ladder(conn: asyncpg.Connection, tenant_id: int, config: dict, now: datetime) -> int:
    return await conn.fetchval(
        "INSERT INTO level_ladders (tenant_id, version, config, updated_at) "
        "VALUES ($1, 1, $2, $3) ON CONFLICT (tenant_id) DO UPDATE SET "
        "version = level_ladders.version + 1, config = EXCLUDED.config, "
        "updated_at = EXCLUDED.updated_at RETURNING version",
        tenant_id,
        config,
        now,
    )


async def lock_member_levels(
    conn: asyncpg.Connection, tenant_id: int, member_ids: list[int], now: datetime
) -> dict[int, asyncpg.Record]:
    rows = await conn.fetch(
        "INSERT INTO member_levels (tenant_id, member_id, level_index, since) "
        "SELECT $1, m, 0, $3 FROM unnest($2::bigint[]) AS u(m) ORDER BY m "
        "ON CONFLICT (tenant_id, member_id) DO UPDATE SET since = member_levels.since "
        "RETURNING member_id, level_index, since, review_at",
        tenant_id,
        sorted(set(member_ids)),
        now,
    )
    return {r["member_id"]: r for r in rows}


async def member_level(conn: asyncpg.Connection, tenant_id: int, member_id: int):  # type: ignore[no-untyped-def]
    return await conn.fetchrow(
        "SELECT level_index, since, review_at FROM member_levels "
        "WHERE tenant_id = $1 AND member_id = $2",
        tenant_id,
        member_id,
    )


async def member_level_indexes(
    conn: asyncpg.Connection, tenant_id: int, member_ids: list[int]
) -> dict[int, int]:
    rows = await conn.fetch(
        "SELECT member_id, level_index FROM member_levels WHERE tenant_id = $1 "
        "AND member_id = ANY($2::bigint[])",
        tenant_id,
        member_ids,
    )
    return {r["member_id"]: r["level_index"] for r in rows}


@dataclass(frozen=True, slots=True)
class LevelRow:
    """A member's level as stored: index into the ladder, since when, next validity review."""

    member_id: int
    level_index: int
    since: datetime
    review_at: datetime | None


async def set_levels(conn: asyncpg.Connection, tenant_id: int, rows: list[LevelRow]) -> None:
    await conn.execute(
        "UPDATE member_levels l SET level_index = u.i, since = u.s, review_at = u.r "
        "FROM unnest($2::bigint[], $3::smallint[], $4::timestamptz[], $5::timestamptz[]) "
        "AS u(m, i, s, r) WHERE l.tenant_id = $1 AND l.member_id = u.m",
        tenant_id,
        [r.member_id for r in rows],
        [r.level_index for r in rows],
        [r.since for r in rows],
        [r.review_at for r in rows],
    )


async def window_growth(
    conn: asyncpg.Connection,
    tenant_id: int,
    member_ids: list[int],
    start: datetime,
    end: datetime,
) -> dict[int, int]:
    rows = await conn.fetch(
        "SELECT member_id, COALESCE(sum(delta), 0) AS g FROM ledger_entries "
        "WHERE tenant_id = $1 AND member_id = ANY($2::bigint[]) AND currency = 'growth' "
        "AND kind IN ('credit', 'reverse') AND created_at >= $3 AND created_at <= $4 "
        "GROUP BY member_id",
        tenant_id,
        member_ids,
        start,
        end,
    )
    return {r["member_id"]: int(r["g"]) for r in rows}


async def due_reviews(conn: asyncpg.Connection, now: datetime, limit: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT tenant_id, member_id FROM member_levels WHERE review_at IS NOT NULL "
        "AND review_at <= $1 ORDER BY review_at LIMIT $2",
        now,
        limit,
    )


# The card's facts as a select list over $1 tenant, $2 member, $3 now, $4 until (the end of
# the "expiring soon" window): ``card_facts`` runs it alone, /v1/me embeds it in its one read.
CARD_FACTS = (
    "(SELECT balance FROM point_accounts WHERE tenant_id = $1 AND member_id = $2 "
    " AND currency = 'points') AS points, "
    "(SELECT COALESCE(sum(remaining), 0)::bigint FROM point_lots WHERE tenant_id = $1 "
    f" AND member_id = $2 AND currency = 'points' AND {DUE_LOTS.format(now='$3')}) "
    " AS points_due, "
    "(SELECT balance FROM point_accounts WHERE tenant_id = $1 AND member_id = $2 "
    " AND currency = 'growth') AS growth, "
    "(SELECT earned_total FROM point_accounts WHERE tenant_id = $1 AND member_id = $2 "
    " AND currency = 'growth') AS growth_earned, "
    "(SELECT level_index FROM member_levels WHERE tenant_id = $1 AND member_id = $2) "
    " AS level_index, "
    "(SELECT review_at FROM member_levels WHERE tenant_id = $1 AND member_id = $2) "
    " AS review_at, "
    "(SELECT array_agg(expires_at ORDER BY expires_at) FROM point_lots WHERE tenant_id = $1 "
    " AND member_id = $2 AND currency = 'points' AND remaining > 0 AND expires_at > $3 "
    " AND expires_at <= $4) AS exp_at, "
    "(SELECT array_agg(remaining ORDER BY expires_at) FROM point_lots WHERE tenant_id = $1 "
    " AND member_id = $2 AND currency = 'points' AND remaining > 0 AND expires_at > $3 "
    " AND expires_at <= $4) AS exp_amount"
)


async def card_facts(
    conn: asyncpg.Connection, tenant_id: int, member_id: int, now: datetime, until: datetime
) -> asyncpg.Record:
    """Everything the member card needs in one round trip: balances (points past their date
    not counted), growth earned, level, and the lots expiring before ``until``."""
    return await conn.fetchrow(
        f"SELECT {CARD_FACTS}",
        tenant_id,
        member_id,
        now,
        until,
    )


async def expiring_by_member(
    conn: asyncpg.Connection, tenant_id: int, now: datetime, until: datetime, limit: int
) -> list[asyncpg.Record]:
    """Per member: points expiring in (now, until] and the first expiry instant."""
    return await conn.fetch(
        "SELECT member_id, sum(remaining)::bigint AS points, min(expires_at) AS first_expiry "
        "FROM point_lots WHERE tenant_id = $1 AND currency = 'points' AND remaining > 0 "
        "AND expires_at > $2 AND expires_at <= $3 GROUP BY member_id ORDER BY member_id "
        "LIMIT $4",
        tenant_id,
        now,
        until,
        limit,
    )
