"""SQL of team PKs."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg


async def lock_pk(conn: asyncpg.Connection, tenant_id: int, key: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM pks WHERE tenant_id = $1 AND key = $2 FOR UPDATE", tenant_id, key
    )


async def get_pk(conn: asyncpg.Connection, tenant_id: int, key: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM pks WHERE tenant_id = $1 AND key = $2", tenant_id, key
    )


async def get_pk_by_id(conn: asyncpg.Connection, pk_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM pks WHERE id = $1", pk_id)


async def list_pks(conn: asyncpg.Connection, tenant_id: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT * FROM pks WHERE tenant_id = $1 ORDER BY starts_at, key", tenant_id
    )


async def all_unsettled(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT * FROM pks WHERE settled_at IS NULL ORDER BY id")


async def unsettled_for_tenants(
    conn: asyncpg.Connection, tenant_ids: Sequence[int]
) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT * FROM pks WHERE tenant_id = ANY($1::int[]) AND settled_at IS NULL ORDER BY id",
        list(tenant_ids),
    )


async def overlapping(
    conn: asyncpg.Connection, tenant_id: int, key: str, start: datetime, end: datetime
) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT key, team_ids, config FROM pks WHERE tenant_id = $1 AND key <> $2 "
        "AND starts_at < $4 AND $3 < ends_at",
        tenant_id,
        key,
        start,
        end,
    )


async def insert_pk(
    conn: asyncpg.Connection,
    tenant_id: int,
    key: str,
    config: dict[str, Any],
    team_ids: list[int],
    start: datetime,
    end: datetime,
    now: datetime,
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "INSERT INTO pks (tenant_id, key, version, config, team_ids, starts_at, ends_at, "
        "created_at, updated_at) VALUES ($1, $2, 1, $3, $4, $5, $6, $7, $7) "
        "ON CONFLICT (tenant_id, key) DO NOTHING RETURNING *",
        tenant_id,
        key,
        config,
        team_ids,
        start,
        end,
        now,
    )


async def update_pk(
    conn: asyncpg.Connection,
    pk_id: int,
    config: dict[str, Any],
    team_ids: list[int],
    start: datetime,
    end: datetime,
    now: datetime,
) -> asyncpg.Record:
    return await conn.fetchrow(
        "UPDATE pks SET config = $2, team_ids = $3, starts_at = $4, ends_at = $5, "
        "version = version + 1, updated_at = $6 WHERE id = $1 RETURNING *",
        pk_id,
        config,
        team_ids,
        start,
        end,
        now,
    )


async def ensure_team_rows(conn: asyncpg.Connection, pk_id: int, team_ids: list[int]) -> None:
    await conn.execute(
        "INSERT INTO pk_team_scores (pk_id, team_id, total) SELECT $1, t, 0 "
        "FROM unnest($2::bigint[]) AS t ON CONFLICT (pk_id, team_id) DO NOTHING",
        pk_id,
        team_ids,
    )


async def has_counted(conn: asyncpg.Connection, pk_id: int) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM pk_applied_events WHERE pk_id = $1)", pk_id
        )
    )


async def mark_applied(
    conn: asyncpg.Connection, pairs: Sequence[tuple[int, Any]]
) -> set[tuple[int, Any]]:
    if not pairs:
        return set()
    rows = await conn.fetch(
        "INSERT INTO pk_applied_events (pk_id, event_id) SELECT * FROM "
        "unnest($1::bigint[], $2::uuid[]) ON CONFLICT (pk_id, event_id) DO NOTHING "
        "RETURNING pk_id, event_id",
        [p for p, _ in pairs],
        [e for _, e in pairs],
    )
    return {(r["pk_id"], r["event_id"]) for r in rows}


async def add_contributions(
    conn: asyncpg.Connection, rows: Sequence[tuple[Any, ...]]
) -> list[asyncpg.Record]:
    """Rows (tenant, pk, team, member, delta, reached_at, events), taken in a fixed lock
    order; returns the new scores."""
    rows = sorted(rows, key=lambda r: (r[1], r[2], r[3]))
    return await conn.fetch(
        "INSERT INTO pk_contributions (tenant_id, pk_id, team_id, member_id, score, reached_at, "
        "events) SELECT * FROM unnest($1::int[], $2::bigint[], $3::bigint[], $4::bigint[], "
        "$5::bigint[], $6::timestamptz[], $7::int[]) "
        "ON CONFLICT (pk_id, team_id, member_id) DO UPDATE SET "
        "score = pk_contributions.score + EXCLUDED.score, "
        "reached_at = greatest(pk_contributions.reached_at, EXCLUDED.reached_at), "
        "events = pk_contributions.events + EXCLUDED.events "
        "RETURNING pk_id, team_id, member_id, score, reached_at",
        *[[r[i] for r in rows] for i in range(7)],
    )


async def lock_teams(conn: asyncpg.Connection, pairs: Sequence[tuple[int, int]]) -> None:
    """Lock (pk, team) total rows in a fixed order (writers, rebuild and settlement)."""
    await conn.execute(
        "SELECT 1 FROM pk_team_scores s JOIN unnest($1::bigint[], $2::bigint[]) AS u(p, t) "
        "ON s.pk_id = u.p AND s.team_id = u.t ORDER BY s.pk_id, s.team_id FOR UPDATE OF s",
        [p for p, _ in pairs],
        [t for _, t in pairs],
    )


async def add_totals(
    conn: asyncpg.Connection, rows: Sequence[tuple[int, int, int, datetime | None]]
) -> list[asyncpg.Record]:
    """(pk, team, delta, reached_at): returns the new totals."""
    return await conn.fetch(
        "UPDATE pk_team_scores s SET total = s.total + u.d, "
        "reached_at = CASE WHEN u.r IS NULL THEN s.reached_at "
        "ELSE greatest(s.reached_at, u.r) END "
        "FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::timestamptz[]) "
        "AS u(p, t, d, r) "
        "WHERE s.pk_id = u.p AND s.team_id = u.t "
        "RETURNING s.pk_id, s.team_id, s.total, s.reached_at",
        [r[0] for r in rows],
        [r[1] for r in rows],
        [r[2] for r in rows],
        [r[3] for r in rows],
    )


async def team_totals(
    conn: asyncpg.Connection, pk_id: int, lock: bool = False
) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT team_id, total, reached_at FROM pk_team_scores WHERE pk_id = $1 ORDER BY team_id"
        + (" FOR UPDATE" if lock else ""),
        pk_id,
    )


async def contributions(conn: asyncpg.Connection, pk_id: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT team_id, member_id, score, reached_at FROM pk_contributions WHERE pk_id = $1 "
        "ORDER BY team_id, score DESC, reached_at, member_id",
        pk_id,
    )


async def member_contribution(
    conn: asyncpg.Connection, pk_id: int, team_id: int, member_id: int
) -> int:
    return int(
        await conn.fetchval(
            "SELECT score FROM pk_contributions WHERE pk_id = $1 AND team_id = $2 "
            "AND member_id = $3",
            pk_id,
            team_id,
            member_id,
        )
        or 0
    )


async def insert_results(
    conn: asyncpg.Connection, tenant_id: int, pk_id: int, rows: Sequence[dict[str, Any]]
) -> None:
    await conn.executemany(
        "INSERT INTO pk_results (tenant_id, pk_id, team_id, rank, total, headcount, score, "
        "reached_at, mvp_member_id, mvp_score, winner) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, "
        "$9, $10, $11)",
        [
            (
                tenant_id,
                pk_id,
                r["team_id"],
                r["rank"],
                r["total"],
                r["headcount"],
                r["score"],
                r["reached_at"],
                r["mvp_member_id"],
                r["mvp_score"],
                r["winner"],
            )
            for r in rows
        ],
    )


async def results(conn: asyncpg.Connection, pk_id: int) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT * FROM pk_results WHERE pk_id = $1 ORDER BY rank", pk_id)


async def mark_settled(conn: asyncpg.Connection, pk_id: int, now: datetime, by: str) -> None:
    await conn.execute(
        "UPDATE pks SET settled_at = $2, settled_by = $3 WHERE id = $1 AND settled_at IS NULL",
        pk_id,
        now,
        by,
    )


async def due(conn: asyncpg.Connection, now: datetime) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT id, tenant_id, key, ends_at, config FROM pks WHERE settled_at IS NULL "
        "AND ends_at <= $1 ORDER BY ends_at",
        now,
    )


# The running, unsettled PKs ($3 = now) of the tenant ($1) that the member's ($2) team is
# in, or that hold an open team the member could join; columns key, starts_at. Also embedded
# in the member read model (service/me/repository.py), so the rule lives here only.
LIVE_KEYS_SQL = (
    "SELECT p.key, p.starts_at FROM pks p WHERE p.tenant_id = $1 AND p.settled_at IS NULL "
    "AND p.starts_at <= $3 AND $3 < p.ends_at AND EXISTS ("
    "  SELECT 1 FROM teams t WHERE t.tenant_id = $1 "
    "  AND t.id IN (SELECT jsonb_array_elements_text(p.team_ids)::bigint) "
    "  AND (t.open OR EXISTS (SELECT 1 FROM team_memberships m WHERE m.team_id = t.id "
    "  AND m.member_id = $2 AND m.left_at IS NULL)))"
)


async def live_keys_for_member(
    conn: asyncpg.Connection, tenant_id: int, member_id: int, now: datetime
) -> list[str]:
    """Keys of the PKs running at ``now`` (not settled) that the member's team is in, or that
    hold an open team the member could join; one statement (``LIVE_KEYS_SQL``)."""
    rows = await conn.fetch(
        LIVE_KEYS_SQL + " ORDER BY p.starts_at, p.key",
        tenant_id,
        member_id,
        now,
    )
    return [r["key"] for r in rows]
