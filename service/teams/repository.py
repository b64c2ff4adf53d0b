"""SQL of teams and memberships."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

_TEAM = (
    "SELECT t.*, (SELECT count(*) FROM team_memberships m WHERE m.team_id = t.id "
    "AND m.left_at IS NULL) AS member_count FROM teams t"
)


async def lock_team(conn: asyncpg.Connection, tenant_id: int, key: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM teams WHERE tenant_id = $1 AND key = $2 FOR UPDATE", tenant_id, key
    )


async def get_team(conn: asyncpg.Connection, tenant_id: int, key: str) -> asyncpg.Record | None:
    return await conn.fetchrow(f"{_TEAM} WHERE t.tenant_id = $1 AND t.key = $2", tenant_id, key)


async def list_teams(
    conn: asyncpg.Connection, tenant_id: int, team_set: str | None
) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"{_TEAM} WHERE t.tenant_id = $1 AND ($2::text IS NULL OR t.team_set = $2) ORDER BY t.key",
        tenant_id,
        team_set,
    )


async def teams_by(
    conn: asyncpg.Connection,
    tenant_id: int,
    *,
    keys: list[str] | None = None,
    ids: list[int] | None = None,
    team_set: str | None = None,
) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT id, key, name, kind, team_set, captain_id FROM teams WHERE tenant_id = $1 "
        "AND ($2::text[] IS NULL OR key = ANY($2)) AND ($3::bigint[] IS NULL OR id = ANY($3)) "
        "AND ($4::text IS NULL OR team_set = $4) ORDER BY id",
        tenant_id,
        keys,
        ids,
        team_set,
    )


async def insert_team(
    conn: asyncpg.Connection, tenant_id: int, key: str, doc: dict[str, Any], now: datetime
) -> asyncpg.Record:
    return await conn.fetchrow(
        "INSERT INTO teams (tenant_id, key, team_set, kind, name, captain_id, capacity, open, "
        "join_code, version, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, "
        "1, $10, $10) ON CONFLICT (tenant_id, key) DO NOTHING RETURNING *",
        tenant_id,
        key,
        doc["team_set"],
        doc["kind"],
        doc["name"],
        doc["captain_id"],
        doc["capacity"],
        doc["open"],
        doc["join_code"],
        now,
    )


async def update_team(
    conn: asyncpg.Connection, team_id: int, doc: dict[str, Any], now: datetime
) -> asyncpg.Record:
    return await conn.fetchrow(
        "UPDATE teams SET team_set = $2, kind = $3, name = $4, captain_id = $5, capacity = $6, "
        "open = $7, join_code = $8, version = version + 1, updated_at = $9 WHERE id = $1 "
        "RETURNING *",
        team_id,
        doc["team_set"],
        doc["kind"],
        doc["name"],
        doc["captain_id"],
        doc["capacity"],
        doc["open"],
        doc["join_code"],
        now,
    )


async def has_history(conn: asyncpg.Connection, team_id: int) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM team_memberships WHERE team_id = $1)", team_id
        )
    )


async def active_count(conn: asyncpg.Connection, team_id: int) -> int:
    return int(
        await conn.fetchval(
            "SELECT count(*) FROM team_memberships WHERE team_id = $1 AND left_at IS NULL", team_id
        )
    )


async def open_stays(
    conn: asyncpg.Connection, tenant_id: int, team_set: str, member_ids: list[int]
) -> list[asyncpg.Record]:
    """Current stays of these members in any team of the set (locked: they may end now)."""
    return await conn.fetch(
        "SELECT m.id, m.member_id, m.team_id, t.key FROM team_memberships m "
        "JOIN teams t ON t.id = m.team_id WHERE m.tenant_id = $1 AND m.team_set = $2 "
        "AND m.member_id = ANY($3::bigint[]) AND m.left_at IS NULL ORDER BY m.id FOR UPDATE OF m",
        tenant_id,
        team_set,
        member_ids,
    )


async def end_stays(conn: asyncpg.Connection, stay_ids: list[int], now: datetime) -> None:
    await conn.execute(
        "UPDATE team_memberships SET left_at = $2 WHERE id = ANY($1::bigint[]) AND left_at IS NULL",
        stay_ids,
        now,
    )


async def start_stays(
    conn: asyncpg.Connection,
    tenant_id: int,
    team_id: int,
    team_set: str,
    member_ids: list[int],
    now: datetime,
    via: str,
) -> list[int]:
    """Open a stay for each member; a member already in a team of the set is skipped (the
    partial unique index decides under concurrency). Returns the members who joined."""
    rows = await conn.fetch(
        "INSERT INTO team_memberships (tenant_id, team_id, team_set, member_id, joined_at, "
        "joined_via) SELECT $1, $2, $3, m, $5, $6 FROM unnest($4::bigint[]) AS m "
        "ON CONFLICT (tenant_id, team_set, member_id) WHERE left_at IS NULL DO NOTHING "
        "RETURNING member_id",
        tenant_id,
        team_id,
        team_set,
        member_ids,
        now,
        via,
    )
    return [r["member_id"] for r in rows]


async def stays_of_team(
    conn: asyncpg.Connection, team_id: int, history: bool
) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT member_id, joined_at, left_at, joined_via FROM team_memberships "
        "WHERE team_id = $1 AND ($2 OR left_at IS NULL) ORDER BY joined_at, id",
        team_id,
        history,
    )


async def my_teams(
    conn: asyncpg.Connection, tenant_id: int, member_id: int
) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"SELECT x.*, m.joined_at FROM ({_TEAM}) x JOIN team_memberships m ON m.team_id = x.id "
        "WHERE m.tenant_id = $1 AND m.member_id = $2 AND m.left_at IS NULL ORDER BY x.team_set",
        tenant_id,
        member_id,
    )


async def stays_at(
    conn: asyncpg.Connection, tenant_id: int, team_ids: list[int], member_ids: list[int]
) -> list[asyncpg.Record]:
    """Every stay of these members in these teams (history included)."""
    return await conn.fetch(
        "SELECT member_id, team_id, joined_at, left_at FROM team_memberships "
        "WHERE tenant_id = $1 AND team_id = ANY($2::bigint[]) AND member_id = ANY($3::bigint[]) "
        "ORDER BY member_id, joined_at",
        tenant_id,
        team_ids,
        member_ids,
    )


async def members_at(
    conn: asyncpg.Connection, team_ids: list[int], at: datetime
) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT DISTINCT team_id, member_id FROM team_memberships "
        "WHERE team_id = ANY($1::bigint[]) "
        "AND joined_at <= $2 AND (left_at IS NULL OR left_at > $2) ORDER BY team_id, member_id",
        team_ids,
        at,
    )


async def headcounts(
    conn: asyncpg.Connection, team_ids: list[int], start: datetime, end: datetime
) -> dict[int, int]:
    rows = await conn.fetch(
        "SELECT team_id, count(DISTINCT member_id) AS n FROM team_memberships "
        "WHERE team_id = ANY($1::bigint[]) AND joined_at < $3 "
        "AND (left_at IS NULL OR left_at > $2) "
        "GROUP BY team_id",
        team_ids,
        start,
        end,
    )
    return {r["team_id"]: r["n"] for r in rows}
