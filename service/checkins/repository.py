"""SQL of check-ins. A member's writes in a campaign all change that member's streak row: a
check-in or make-up is one read (``READ_SQL``) and one statement (``WRITE_SQL``) guarded by
the streak row as read, so writes of one member never interleave (a loser re-plans); the
unique day key is the last guard. With an Idempotency-Key the row is locked first
(``lock_streak``), in a transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import asyncpg

from service.checkins import rules
from service.core import outbox
from service.points import ledger

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


@dataclass(frozen=True, slots=True)
class MemberRead:
    """A member's state in a campaign, read in one statement (one snapshot).

    ``streaks`` the streak row (zeros when the member has none), ``row`` the member's row of
    the day asked for (``CHECKIN_COLUMNS``) or None, ``days`` every checked day with its kind
    (``daily``/``makeup``) when asked for, else None."""

    streaks: rules.Streaks
    row: asyncpg.Record | None
    days: dict[date, str] | None


_READ_SQL = (
    "SELECT s.last_day, s.current_streak, s.longest_streak, s.total_days, "
    "c.day, c.kind, c.streak, c.reward_points, c.reward_growth, c.milestone, c.cost, "
    "c.created_at{days} FROM (SELECT 1) one "
    "LEFT JOIN checkin_streaks s ON s.tenant_id = $1 AND s.campaign_id = $2 "
    "AND s.member_id = $3 "
    "LEFT JOIN checkins c ON c.tenant_id = $1 AND c.campaign_id = $2 AND c.member_id = $3 "
    "AND c.day = $4"
)
# The read of a check-in ($1 tenant, $2 campaign, $3 member, $4 day): streak row and the day's.
READ_SQL = _READ_SQL.format(days="")
# The read of a make-up: the same, and every checked day of the member with its kind.
READ_SQL_DAYS = _READ_SQL.format(
    days=", (SELECT array_agg(d.day ORDER BY d.day) FROM checkins d WHERE d.tenant_id = $1 "
    "AND d.campaign_id = $2 AND d.member_id = $3) AS days, "
    "(SELECT array_agg(d.kind ORDER BY d.day) FROM checkins d WHERE d.tenant_id = $1 "
    "AND d.campaign_id = $2 AND d.member_id = $3) AS kinds"
)


async def read_member(
    conn: asyncpg.Connection,
    tenant_id: int,
    campaign_id: int,
    member_id: int,
    day: date,
    *,
    with_days: bool = False,
) -> MemberRead:
    """The member's streak row, their row of ``day`` and (``with_days``) every checked day:
    the one read a check-in or a make-up plans from."""
    r = await conn.fetchrow(
        READ_SQL_DAYS if with_days else READ_SQL, tenant_id, campaign_id, member_id, day
    )
    streaks = rules.Streaks(
        r["last_day"],
        r["current_streak"] or 0,
        r["longest_streak"] or 0,
        r["total_days"] or 0,
    )
    member_days = None
    if with_days:
        member_days = dict(zip(r["days"] or [], r["kinds"] or [], strict=True))
    return MemberRead(streaks, r if r["day"] is not None else None, member_days)


# The write of a check-in or make-up, ONE statement. Its guard: the streak row still holds
# the state the plan was made from ($9 total days, $10 last day): total_days grows with every
# row written for the member, so an unchanged count means nothing was written since the read.
# When the guard fails nothing is written, the ledger is not called (it runs FROM c), and
# engage_conflict() aborts the statement (SQLSTATE 40001), which also drops its events.
_WRITE_SQL = (
    "WITH s AS (INSERT INTO checkin_streaks AS s (tenant_id, campaign_id, member_id, "
    "last_day, current_streak, longest_streak, total_days, updated_at) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8) "
    "ON CONFLICT (tenant_id, campaign_id, member_id) DO UPDATE SET "
    "last_day = EXCLUDED.last_day, current_streak = EXCLUDED.current_streak, "
    "longest_streak = EXCLUDED.longest_streak, total_days = EXCLUDED.total_days, "
    "updated_at = EXCLUDED.updated_at "
    "WHERE s.total_days = $9 AND s.last_day IS NOT DISTINCT FROM $10::date "
    "RETURNING 1), "
    "c AS (INSERT INTO checkins (tenant_id, campaign_id, member_id, day, kind, streak, "
    "reward_points, reward_growth, milestone, cost, created_at) "
    "SELECT $1, $2, $3, $11, $12, $13, $14, $15, $16, $17, $8 FROM s "
    "ON CONFLICT (tenant_id, campaign_id, member_id, day) DO NOTHING RETURNING id), "
    f"ev AS ({outbox.insert_sql(18)}){{ledger}} "
    "SELECT CASE WHEN EXISTS (SELECT 1 FROM c) THEN true ELSE engage_conflict() END AS ok"
    "{entries}"
)
WRITE_SQL = _WRITE_SQL.format(ledger="", entries="")
# With postings ($24): the ledger's one writer, called only when the day's row was written.
WRITE_SQL_LEDGER = _WRITE_SQL.format(
    ledger=f", led AS (SELECT {ledger.call_sql('$1', '$8', '$24')} AS entries FROM c)",
    entries=", (SELECT entries FROM led) AS entries",
)


async def write(
    conn: asyncpg.Connection,
    tenant_id: int,
    campaign_id: int,
    member_id: int,
    plan: rules.CheckinPlan,
    now: datetime,
    events: list[outbox.OutboxRow],
    postings: list[ledger.Posting],
) -> None:
    """Write a planned check-in or make-up in ONE statement: the streak row (guarded), the
    day's row, the ledger postings (the reward's credits or the make-up's debit) and the
    events. Raises asyncpg.SerializationError (nothing written) when the member's state
    changed since it was read (re-read and re-plan), and the ledger's refusal (asyncpg
    RaiseError, see ``ledger.refusals``) when the points do not suffice."""
    before, after = plan.before, plan.after
    args: list[Any] = [
        tenant_id,
        campaign_id,
        member_id,
        after.last_day,
        after.current,
        after.longest,
        after.total,
        now,
        before.total,
        before.last_day,
        plan.day,
        plan.kind,
        plan.streak,
        plan.reward.points,
        plan.reward.growth,
        plan.milestone.day if plan.milestone else None,
        plan.cost,
        *outbox.params(events),
    ]
    if postings:
        await conn.execute(WRITE_SQL_LEDGER, *args, postings)
    else:
        await conn.execute(WRITE_SQL, *args)


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
    conn: asyncpg.Connection, campaign_id: int, batch: int = 1000, since: datetime | None = None
) -> AsyncIterator[list[asyncpg.Record]]:
    """Per member of a campaign: (member_id, days[], kinds[]), in batches (keyset by member);
    with ``since``, only the rows created at or after it."""
    after = 0
    while True:
        rows = await conn.fetch(
            "SELECT member_id, array_agg(day ORDER BY day) AS days, "
            "array_agg(kind ORDER BY day) AS kinds FROM checkins "
            "WHERE campaign_id = $1 AND member_id > $2 "
            "AND ($4::timestamptz IS NULL OR created_at >= $4) "
            "GROUP BY member_id ORDER BY member_id LIMIT $3",
            campaign_id,
            after,
            batch,
            since,
        )
        if not rows:
            return
        yield rows
        after = rows[-1]["member_id"]
        if len(rows) < batch:
            return


# Live campaigns of tenant $1 at $3 with member $2's streak row; also embedded in the member
# read model (service/me/repository.py), so the rule lives here only.
LIVE_WITH_STREAKS_SQL = (
    "SELECT c.key, c.timezone, c.config->>'title' AS title, s.last_day, s.current_streak "
    "FROM checkin_campaigns c LEFT JOIN checkin_streaks s ON s.tenant_id = c.tenant_id "
    "AND s.campaign_id = c.id AND s.member_id = $2 WHERE c.tenant_id = $1 "
    "AND c.state = 'live' AND c.starts_at <= $3 AND (c.ends_at IS NULL OR c.ends_at > $3)"
)


async def live_with_streaks(
    conn: asyncpg.Connection, tenant_id: int, member_id: int, now: datetime
) -> list[asyncpg.Record]:
    """Live campaigns of a tenant with the member's streak row (one statement)."""
    return await conn.fetch(
        LIVE_WITH_STREAKS_SQL + " ORDER BY c.key",
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
