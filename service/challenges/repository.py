"""SQL of wager challenges. Joins and settlement lock the challenge row (its escrow) first."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

COLUMNS = (
    "id, tenant_id, key, version, state, campaign_key, timezone, stake, start_date, days, "
    "required, makeups_count, join_opens_at, join_closes_at, ends_at, max_entrants, "
    "platform_cut_pct, no_winner, config, entrants, escrow, staked_total, paid_out, "
    "platform_cut, outcome, settled_at, updated_at"
)
ENTRY_COLUMNS = "id, member_id, stake, status, checkins, payout, joined_at, settled_at"


async def get(
    conn: asyncpg.Connection, tenant_id: int, key: str, *, lock: bool = False
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {COLUMNS} FROM challenges WHERE tenant_id = $1 AND key = $2"
        + (" FOR UPDATE" if lock else ""),
        tenant_id,
        key,
    )


async def get_by_id_locked(conn: asyncpg.Connection, challenge_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {COLUMNS} FROM challenges WHERE id = $1 FOR UPDATE", challenge_id
    )


async def upsert(
    conn: asyncpg.Connection,
    tenant_id: int,
    key: str,
    cols: dict,
    now: datetime,
) -> asyncpg.Record:
    names = list(cols)
    values = [cols[n] for n in names]
    placeholders = ", ".join(f"${i + 3}" for i in range(len(names)))
    updates = ", ".join(f"{n} = EXCLUDED.{n}" for n in names)
    return await conn.fetchrow(
        f"INSERT INTO challenges (tenant_id, key, version, {', '.join(names)}, entrants, escrow, "
        f"staked_total, paid_out, platform_cut, created_at, updated_at) "
        f"VALUES ($1, $2, 1, {placeholders}, 0, 0, 0, 0, 0, ${len(names) + 3}, "
        f"${len(names) + 3}) ON CONFLICT (tenant_id, key) DO UPDATE SET "
        f"version = challenges.version + 1, {updates}, updated_at = EXCLUDED.updated_at "
        f"RETURNING {COLUMNS}",
        tenant_id,
        key,
        *values,
        now,
    )


async def visible(conn: asyncpg.Connection, tenant_id: int, limit: int) -> list[asyncpg.Record]:
    """Challenges members may see (not drafts), newest start first."""
    return await conn.fetch(
        f"SELECT {COLUMNS} FROM challenges WHERE tenant_id = $1 AND state <> 'draft' "
        "ORDER BY start_date DESC, id DESC LIMIT $2",
        tenant_id,
        limit,
    )


async def entries_of_member(
    conn: asyncpg.Connection, tenant_id: int, member_id: int, challenge_ids: list[int]
) -> dict[int, asyncpg.Record]:
    rows = await conn.fetch(
        f"SELECT challenge_id, {ENTRY_COLUMNS} FROM challenge_entries "
        "WHERE tenant_id = $1 AND member_id = $2 AND challenge_id = ANY($3::bigint[])",
        tenant_id,
        member_id,
        challenge_ids,
    )
    return {r["challenge_id"]: r for r in rows}


async def entry(
    conn: asyncpg.Connection, tenant_id: int, challenge_id: int, member_id: int
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {ENTRY_COLUMNS} FROM challenge_entries "
        "WHERE tenant_id = $1 AND challenge_id = $2 AND member_id = $3",
        tenant_id,
        challenge_id,
        member_id,
    )


async def insert_entry(
    conn: asyncpg.Connection,
    tenant_id: int,
    challenge_id: int,
    member_id: int,
    stake: int,
    stake_entry_id: int,
    now: datetime,
) -> None:
    await conn.execute(
        "INSERT INTO challenge_entries (tenant_id, challenge_id, member_id, stake, status, "
        "payout, stake_entry_id, joined_at) VALUES ($1, $2, $3, $4, 'active', 0, $5, $6)",
        tenant_id,
        challenge_id,
        member_id,
        stake,
        stake_entry_id,
        now,
    )


async def add_to_escrow(conn: asyncpg.Connection, challenge_id: int, stake: int) -> int:
    return await conn.fetchval(
        "UPDATE challenges SET entrants = entrants + 1, escrow = escrow + $2, "
        "staked_total = staked_total + $2 WHERE id = $1 RETURNING entrants",
        challenge_id,
        stake,
    )


async def active_entries(conn: asyncpg.Connection, challenge_id: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"SELECT {ENTRY_COLUMNS} FROM challenge_entries "
        "WHERE challenge_id = $1 AND status = 'active' ORDER BY id",
        challenge_id,
    )


async def settle_entries(
    conn: asyncpg.Connection,
    challenge_id: int,
    rows: list[tuple[int, str, int | None, int]],
    now: datetime,
) -> None:
    """rows: (entry id, status, check-ins counted, payout)."""
    if not rows:
        return
    await conn.execute(
        "UPDATE challenge_entries e SET status = u.s, checkins = u.c, payout = u.p, "
        "settled_at = $6 FROM unnest($2::bigint[], $3::text[], $4::int[], $5::int[]) "
        "AS u(id, s, c, p) WHERE e.challenge_id = $1 AND e.id = u.id",
        challenge_id,
        [r[0] for r in rows],
        [r[1] for r in rows],
        [r[2] for r in rows],
        [r[3] for r in rows],
        now,
    )


async def close_escrow(
    conn: asyncpg.Connection,
    challenge_id: int,
    paid_out: int,
    platform_cut: int,
    outcome: str,
    now: datetime,
) -> asyncpg.Record:
    """Empty the escrow into payouts and the cut; the table's check keeps the books balanced
    (staked_total = escrow + paid_out + platform_cut), so a wrong sum cannot commit."""
    return await conn.fetchrow(
        f"UPDATE challenges SET escrow = escrow - $2 - $3, paid_out = paid_out + $2, "
        f"platform_cut = platform_cut + $3, outcome = $4, settled_at = $5 "
        f"WHERE id = $1 RETURNING {COLUMNS}",
        challenge_id,
        paid_out,
        platform_cut,
        outcome,
        now,
    )


async def due(conn: asyncpg.Connection, now: datetime, limit: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT id FROM challenges WHERE settled_at IS NULL AND state <> 'draft' "
        "AND (ends_at <= $1 OR state = 'cancelled') ORDER BY ends_at LIMIT $2",
        now,
        limit,
    )


async def count_winners(conn: asyncpg.Connection, challenge_id: int) -> int:
    return await conn.fetchval(
        "SELECT count(*) FROM challenge_entries WHERE challenge_id = $1 AND status = 'won'",
        challenge_id,
    )


async def cancel(conn: asyncpg.Connection, challenge_id: int, now: datetime) -> asyncpg.Record:
    """Mark cancelled (a new version of the config saying so)."""
    return await conn.fetchrow(
        "UPDATE challenges SET state = 'cancelled', version = version + 1, updated_at = $2, "
        "config = jsonb_set(config, '{state}', '\"cancelled\"') "
        f"WHERE id = $1 RETURNING {COLUMNS}",
        challenge_id,
        now,
    )


# Every challenge of tenant $1 with what its status needs; also embedded in the member read
# model (service/me/repository.py), so the rule lives here only.
CHALLENGE_ROWS_SQL = (
    "SELECT key, state, settled_at, ends_at, join_opens_at, join_closes_at "
    "FROM challenges WHERE tenant_id = $1"
)


async def challenge_rows(conn: Any, tenant_id: int) -> list[Any]:
    """Every challenge of a tenant with what its status needs (one statement)."""
    return await conn.fetch(
        CHALLENGE_ROWS_SQL + " ORDER BY key",
        tenant_id,
    )
