"""SQL of check-ins. A member's changes in a campaign lock that member's streak row first, so
check-ins and make-ups of one member serialize; the unique day key is the last guard."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, datetime

import asyncpg

CAMPAIGN_COLUMNS = (
    "id, tenant_id, key, version, state, timezone, starts_at, ends_at, config, updated_at"
)
CHECKIN_COLUMNS = "day, kind, streak, reward_points, reward_growth, milestone, cost, created_at"


async def get_campaign(conn: asyncpg.Connection, tenant_id: int, key: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {CAMPAIGN_COLUMNS} FROM checkin_campaigns WHERE tenant_id = $1 AND key = $2",
        tenant_id,
        key,
    )


async def put_campaign(
    conn: asyncpg.Connection,
    tenant_id: int,
    key: str,
    state: str,
    timezone: str,
    starts_at: datetime,
    ends_at: datetime | None,
    config: dict,
    now: datetime,
) -> asyncpg.Record:
    """Insert or replace the config, bumping the version."""
    return await conn.fetchrow(
        "INSERT INTO checkin_campaigns (tenant_id, key, version, state, timezone, starts_at, "
        "ends_at, config, created_at, updated_at) VALUES ($1, $2, 1, $3, $4, $5, $6, $7, $8, $8) "
        "ON CONFLICT (tenant_id, key) DO UPDATE SET version = checkin_campaigns.version + 1, "
        "state = EXCLUDED.state, timezone = EXCLUDED.timezone, starts_at = EXCLUDED.starts_at, "
        "ends_at = EXCLUDED.ends_at, config = EXCLUDED.config, updated_at = EXCLUDED.updated_at "
        f"RETURNING {CAMPAIGN_COLUMNS}",
        tenant_id,
        key,
        state,
        timezone,
        starts_at,
        ends_at,
        config,
        now,
    )


async def lock_streak(
    conn: asyncpg.Connection, tenant_id: int, campaign_id: int, member_id: int, now: datetime
) -> asyncpg.Record:
    """Create the member's streak row if missing and lock it for this transaction."""
    return await conn.fetchrow(
        "INSERT INTO checkin_streaks (tenant_id, campaign_id, member_id, last_day, "
        "current_streak, longest_streak, total_days, updated_at) "
        "VALUES ($1, $2, $3, NULL, 0, 0, 0, $4) "
        "ON CONFLICT (tenant_id, campaign_id, member_id) DO UPDATE "
        "SET updated_at = checkin_streaks.updated_at "
        "RETURNING last_day, current_streak, longest_streak, total_days",
        tenant_id,
        campaign_id,
        member_id,
        now,
    )


async def advance_streak(
    conn: asyncpg.Connection,
    tenant_id: int,
    campaign_id: int,
    member_id: int,
    day: date,
    now: datetime,
) -> asyncpg.Record | None:
    """The hot path in one statement: lock the member's streak row and move it to ``day`` if
    ``day`` is later than its last day (yesterday continues the streak, a gap restarts it).
    ON CONFLICT works on the latest committed row and locks it even when its WHERE is false,
    so a concurrent tap waits here and then gets None (today is done: replay)."""
    return await conn.fetchrow(
        "INSERT INTO checkin_streaks AS s (tenant_id, campaign_id, member_id, last_day, "
        "current_streak, longest_streak, total_days, updated_at) "
        "VALUES ($1, $2, $3, $4, 1, 1, 1, $5) "
        "ON CONFLICT (tenant_id, campaign_id, member_id) DO UPDATE SET "
        "current_streak = CASE WHEN s.last_day = $4 - 1 THEN s.current_streak + 1 ELSE 1 END, "
        "longest_streak = GREATEST(s.longest_streak, "
        "CASE WHEN s.last_day = $4 - 1 THEN s.current_streak + 1 ELSE 1 END), "
        "total_days = s.total_days + 1, last_day = $4, updated_at = $5 "
        "WHERE s.last_day IS NULL OR s.last_day < $4 "
        "RETURNING last_day, current_streak, longest_streak, total_days",
        tenant_id,
        campaign_id,
        member_id,
        day,
        now,
    )


async def set_streak(
    conn: asyncpg.Connection,
    tenant_id: int,
    campaign_id: int,
    member_id: int,
    last_day: date | None,
    current: int,
    longest: int,
    total: int,
    now: datetime,
) -> None:
    await conn.execute(
        "UPDATE checkin_streaks SET last_day = $4, current_streak = $5, longest_streak = $6, "
        "total_days = $7, updated_at = $8 "
        "WHERE tenant_id = $1 AND campaign_id = $2 AND member_id = $3",
        tenant_id,
        campaign_id,
        member_id,
        last_day,
        current,
        longest,
        total,
        now,
    )


async def insert_checkin(
    conn: asyncpg.Connection,
    tenant_id: int,
    campaign_id: int,
    member_id: int,
    day: date,
    kind: str,
    streak: int,
    reward_points: int,
    reward_growth: int,
    milestone: int | None,
    cost: int,
    now: datetime,
) -> bool:
    """False when the member already has that day (the unique key held)."""
    row = await conn.fetchval(
        "INSERT INTO checkins (tenant_id, campaign_id, member_id, day, kind, streak, "
        "reward_points, reward_growth, milestone, cost, created_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) "
        "ON CONFLICT (tenant_id, campaign_id, member_id, day) DO NOTHING RETURNING id",
        tenant_id,
        campaign_id,
        member_id,
        day,
        kind,
        streak,
        reward_points,
        reward_growth,
        milestone,
        cost,
        now,
    )
    return row is not None


async def get_checkin(
    conn: asyncpg.Connection, tenant_id: int, campaign_id: int, member_id: int, day: date
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {CHECKIN_COLUMNS} FROM checkins "
        "WHERE tenant_id = $1 AND campaign_id = $2 AND member_id = $3 AND day = $4",
        tenant_id,
        campaign_id,
        member_id,
        day,
    )


async def member_days(
    conn: asyncpg.Connection, tenant_id: int, campaign_id: int, member_id: int
) -> list[asyncpg.Record]:
    """Every checked day of a member in a campaign, oldest first, with its kind."""
    return await conn.fetch(
        "SELECT day, kind FROM checkins "
        "WHERE tenant_id = $1 AND campaign_id = $2 AND member_id = $3 ORDER BY day",
        tenant_id,
        campaign_id,
        member_id,
    )


async def makeups_between(
    conn: asyncpg.Connection,
    tenant_id: int,
    campaign_id: int,
    member_id: int,
    first: date,
    last: date,
) -> int:
    return await conn.fetchval(
        "SELECT count(*) FROM checkins WHERE tenant_id = $1 AND campaign_id = $2 "
        "AND member_id = $3 AND kind = 'makeup' AND day BETWEEN $4 AND $5",
        tenant_id,
        campaign_id,
        member_id,
        first,
        last,
    )


async def count_days(
    conn: asyncpg.Connection,
    tenant_id: int,
    campaign_id: int,
    member_ids: list[int],
    first: date,
    last: date,
    include_makeups: bool,
) -> dict[int, int]:
    rows = await conn.fetch(
        "SELECT member_id, count(*) AS n FROM checkins WHERE tenant_id = $1 "
        "AND campaign_id = $2 AND member_id = ANY($3::bigint[]) AND day BETWEEN $4 AND $5 "
        "AND ($6 OR kind = 'daily') GROUP BY member_id",
        tenant_id,
        campaign_id,
        member_ids,
        first,
        last,
        include_makeups,
    )
    return {r["member_id"]: r["n"] for r in rows}


async def campaigns(conn: asyncpg.Connection, tenant_id: int | None) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"SELECT {CAMPAIGN_COLUMNS} FROM checkin_campaigns "
        "WHERE ($1::int IS NULL OR tenant_id = $1) ORDER BY id",
        tenant_id,
    )


async def iter_calendars(
    conn: asyncpg.Connection, campaign_id: int, batch: int = 1000
) -> AsyncIterator[list[asyncpg.Record]]:
    """Per member of a campaign: (member_id, days[], kinds[]), in batches (keyset by member)."""
    after = 0
    while True:
        rows = await conn.fetch(
            "SELECT member_id, array_agg(day ORDER BY day) AS days, "
            "array_agg(kind ORDER BY day) AS kinds FROM checkins "
            "WHERE campaign_id = $1 AND member_id > $2 "
            "GROUP BY member_id ORDER BY member_id LIMIT $3",
            campaign_id,
            after,
            batch,
        )
        if not rows:
            return
        yield rows
        after = rows[-1]["member_id"]
        if len(rows) < batch:
            return


async def live_with_streaks(
    conn: asyncpg.Connection, tenant_id: int, member_id: int, now: datetime
) -> list[asyncpg.Record]:
    """Live campaigns of a tenant with the member's streak row (one statement)."""
    return await conn.fetch(
        "SELECT c.key, c.timezone, c.config->>'title' AS title, s.last_day, s.current_streak "
        "FROM checkin_campaigns c LEFT JOIN checkin_streaks s ON s.tenant_id = c.tenant_id "
        "AND s.campaign_id = c.id AND s.member_id = $2 WHERE c.tenant_id = $1 "
        "AND c.state = 'live' AND c.starts_at <= $3 AND (c.ends_at IS NULL OR c.ends_at > $3) "
        "ORDER BY c.key",
        tenant_id,
        member_id,
        now,
    )


async def streaks_at_risk(
    conn: asyncpg.Connection, tenant_id: int, today: date, limit: int
) -> list[asyncpg.Record]:
    """Live streaks whose last day is yesterday in the campaign's time zone: (campaign key,
    member, current streak)."""
    return await conn.fetch(
        "SELECT c.key, s.member_id, s.current_streak FROM checkin_streaks s "
        "JOIN checkin_campaigns c ON c.id = s.campaign_id "
        "WHERE s.tenant_id = $1 AND c.state = 'live' AND s.last_day = $2::date - 1 "
        "AND s.current_streak > 0 ORDER BY s.id LIMIT $3",
        tenant_id,
        today,
        limit,
    )
