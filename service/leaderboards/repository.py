"""SQL for boards: definitions, durable scores, periods, the archive and red/black boards."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from service.leaderboards.rules import MAX_SCORE, TIME_SPAN

BOARD_COLUMNS = "id, tenant_id, key, version, config, created_at, updated_at, archived_at"


# ---------------------------------------------------------------- definitions


async def get_board(conn: asyncpg.Connection, tenant_id: int, key: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {BOARD_COLUMNS} FROM leaderboards WHERE tenant_id = $1 AND key = $2",
        tenant_id,
        key,
    )


async def get_board_by_id(conn: asyncpg.Connection, board_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {BOARD_COLUMNS} FROM leaderboards WHERE id = $1", board_id)


async def lock_board(conn: asyncpg.Connection, tenant_id: int, key: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {BOARD_COLUMNS} FROM leaderboards WHERE tenant_id = $1 AND key = $2 FOR UPDATE",
        tenant_id,
        key,
    )


async def insert_board(
    conn: asyncpg.Connection, tenant_id: int, key: str, config: dict[str, Any], now: datetime
) -> asyncpg.Record | None:
    """None when another request created the key first."""
    return await conn.fetchrow(
        f"INSERT INTO leaderboards (tenant_id, key, version, config, created_at, updated_at) "
        f"VALUES ($1, $2, 1, $3, $4, $4) ON CONFLICT (tenant_id, key) DO NOTHING "
        f"RETURNING {BOARD_COLUMNS}",
        tenant_id,
        key,
        config,
        now,
    )


async def update_board(
    conn: asyncpg.Connection, board_id: int, config: dict[str, Any], now: datetime
) -> asyncpg.Record:
    return await conn.fetchrow(
        f"UPDATE leaderboards SET config = $2, version = version + 1, updated_at = $3 "
        f"WHERE id = $1 RETURNING {BOARD_COLUMNS}",
        board_id,
        config,
        now,
    )


async def boards_for_tenants(
    conn: asyncpg.Connection, tenant_ids: Sequence[int]
) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"SELECT {BOARD_COLUMNS} FROM leaderboards WHERE tenant_id = ANY($1::int[]) "
        "AND archived_at IS NULL ORDER BY id",
        list(tenant_ids),
    )


async def all_boards(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"SELECT {BOARD_COLUMNS} FROM leaderboards WHERE archived_at IS NULL ORDER BY id"
    )


async def tenant_boards(conn: asyncpg.Connection, tenant_id: int) -> list[asyncpg.Record]:
    """Every board of a tenant, archived ones too (the operator's list)."""
    return await conn.fetch(
        f"SELECT {BOARD_COLUMNS} FROM leaderboards WHERE tenant_id = $1 ORDER BY key", tenant_id
    )


async def has_counted(conn: asyncpg.Connection, board_id: int) -> bool:
    """True once any event counted on the board (a period got a score)."""
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM board_periods WHERE board_id = $1)", board_id
        )
    )


async def archive_board(conn: asyncpg.Connection, board_id: int, now: datetime) -> asyncpg.Record:
    return await conn.fetchrow(
        "UPDATE leaderboards SET updated_at = CASE WHEN archived_at IS NULL THEN $2 "
        "ELSE updated_at END, archived_at = COALESCE(archived_at, $2) "
        f"WHERE id = $1 RETURNING {BOARD_COLUMNS}",
        board_id,
        now,
    )


# ---------------------------------------------------------------- scoring


async def ensure_periods(
    conn: asyncpg.Connection,
    rows: Sequence[tuple[int, int, str, datetime, datetime | None]],
) -> dict[tuple[int, str], tuple[str, bool]]:
    """Create the periods that get scores; returns each one's (status, created now). The no-op
    update locks the row, so scoring a period waits for (and then sees) a close running at the
    same time."""
    if not rows:
        return {}
    ordered = sorted(set(rows), key=lambda r: (r[1], r[2]))
    got = await conn.fetch(
        "INSERT INTO board_periods (tenant_id, board_id, period_id, starts_at, ends_at, status, "
        "entries) SELECT t, b, p, s, e, 'open', 0 FROM unnest($1::int[], $2::bigint[], "
        "$3::text[], $4::timestamptz[], $5::timestamptz[]) AS u(t, b, p, s, e) "
        "ON CONFLICT (board_id, period_id) DO UPDATE SET entries = board_periods.entries "
        "RETURNING board_id, period_id, status, (xmax = 0) AS inserted",
        [r[0] for r in ordered],
        [r[1] for r in ordered],
        [r[2] for r in ordered],
        [r[3] for r in ordered],
        [r[4] for r in ordered],
    )
    return {(r["board_id"], r["period_id"]): (r["status"], r["inserted"]) for r in got}


async def mark_applied(
    conn: asyncpg.Connection, rows: Sequence[tuple[int, str, uuid.UUID]]
) -> set[tuple[int, uuid.UUID]]:
    """Record (board, period, event) as counted; returns the pairs that were new."""
    if not rows:
        return set()
    got = await conn.fetch(
        "INSERT INTO board_applied_events (board_id, period_id, event_id) "
        "SELECT * FROM unnest($1::bigint[], $2::text[], $3::uuid[]) "
        "ON CONFLICT (board_id, event_id) DO NOTHING RETURNING board_id, event_id",
        [r[0] for r in rows],
        [r[1] for r in rows],
        [r[2] for r in rows],
    )
    return {(r["board_id"], r["event_id"]) for r in got}


async def add_scores(
    conn: asyncpg.Connection,
    rows: Sequence[tuple[int, int, str, int, int, datetime, int]],
) -> None:
    """Add (tenant, board, period, member, delta, occurred_at, events) atomically; rows are
    sorted so concurrent batches lock members in the same order."""
    if not rows:
        return
    ordered = sorted(rows, key=lambda r: (r[1], r[2], r[3]))
    await conn.execute(
        "INSERT INTO board_scores (tenant_id, board_id, period_id, member_id, score, reached_at, "
        "events) SELECT * FROM unnest($1::int[], $2::bigint[], $3::text[], $4::bigint[], "
        "$5::bigint[], $6::timestamptz[], $7::int[]) "
        "ON CONFLICT (board_id, period_id, member_id) DO UPDATE SET "
        "score = board_scores.score + EXCLUDED.score, "
        "reached_at = GREATEST(board_scores.reached_at, EXCLUDED.reached_at), "
        "events = board_scores.events + EXCLUDED.events",
        *([r[i] for r in ordered] for i in range(7)),
    )


async def lock_scores(
    conn: asyncpg.Connection, keys: Sequence[tuple[int, str, int]]
) -> list[asyncpg.Record]:
    """Current totals of (board, period, member), locked until commit so the Redis write made
    inside this transaction cannot be overtaken by an older total."""
    if not keys:
        return []
    ordered = sorted(set(keys))
    return await conn.fetch(
        "SELECT s.board_id, s.period_id, s.member_id, s.score, s.reached_at "
        "FROM board_scores s JOIN unnest($1::bigint[], $2::text[], $3::bigint[]) "
        "AS k(b, p, m) ON s.board_id = k.b AND s.period_id = k.p AND s.member_id = k.m "
        "ORDER BY s.board_id, s.period_id, s.member_id FOR UPDATE OF s",
        [k[0] for k in ordered],
        [k[1] for k in ordered],
        [k[2] for k in ordered],
    )


# ---------------------------------------------------------------- periods and the archive


async def get_period(
    conn: asyncpg.Connection, board_id: int, period_id: str, *, lock: bool = False
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT board_id, period_id, starts_at, ends_at, status, closed_at, entries "
        "FROM board_periods WHERE board_id = $1 AND period_id = $2"
        + (" FOR UPDATE" if lock else ""),
        board_id,
        period_id,
    )


async def open_periods(conn: asyncpg.Connection, board_id: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT period_id, starts_at, ends_at FROM board_periods "
        "WHERE board_id = $1 AND status = 'open' ORDER BY period_id",
        board_id,
    )


async def periods_ended_by(conn: asyncpg.Connection, now: datetime) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT board_id, period_id, ends_at FROM board_periods "
        "WHERE status = 'open' AND ends_at IS NOT NULL AND ends_at <= $1 ORDER BY ends_at",
        now,
    )


# The board order in SQL; it mirrors rules.encode / rules.sort_key (score clamped to MAX_SCORE,
# reach time in ticks of the period's unit in microseconds, then member id). The archive
# test checks they agree.
ARCHIVE_ORDER = (
    f"LEAST(score, {MAX_SCORE}) DESC, "
    f"LEAST(GREATEST(floor((extract(epoch FROM reached_at) - extract(epoch FROM $3::timestamptz))"
    f" * 1000000 / $4::bigint), 0), "
    f"{TIME_SPAN - 1}) ASC, member_id ASC"
)


async def archive(
    conn: asyncpg.Connection, board_id: int, period_id: str, start: datetime, unit: int
) -> int:
    status = await conn.execute(
        "INSERT INTO board_archive (tenant_id, board_id, period_id, rank, member_id, score, "
        f"reached_at) SELECT tenant_id, board_id, period_id, row_number() OVER (ORDER BY "
        f"{ARCHIVE_ORDER}), member_id, LEAST(score, {MAX_SCORE}), reached_at FROM board_scores "
        "WHERE board_id = $1 AND period_id = $2 AND score > 0",
        board_id,
        period_id,
        start,
        unit,
    )
    return int(status.split()[-1])


async def mark_closed(
    conn: asyncpg.Connection, board_id: int, period_id: str, now: datetime, entries: int
) -> None:
    await conn.execute(
        "UPDATE board_periods SET status = 'closed', closed_at = $3, entries = $4 "
        "WHERE board_id = $1 AND period_id = $2",
        board_id,
        period_id,
        now,
        entries,
    )
    # The dedup rows only guard open periods: late events for a closed period are not counted.
    await conn.execute(
        "DELETE FROM board_applied_events WHERE board_id = $1 AND period_id = $2",
        board_id,
        period_id,
    )


async def archive_page(
    conn: asyncpg.Connection,
    board_id: int,
    period_id: str,
    offset: int,
    limit: int,
    min_score: int,
) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT rank, member_id, score, reached_at FROM board_archive "
        "WHERE board_id = $1 AND period_id = $2 AND rank > $3 AND score >= $5 "
        "ORDER BY rank LIMIT $4",
        board_id,
        period_id,
        offset,
        limit,
        min_score,
    )


async def archive_ranked(
    conn: asyncpg.Connection, board_id: int, period_id: str
) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT rank, member_id, score FROM board_archive WHERE board_id = $1 AND period_id = $2 "
        "ORDER BY rank",
        board_id,
        period_id,
    )


async def archive_entry(
    conn: asyncpg.Connection, board_id: int, period_id: str, member_id: int
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT rank, score FROM board_archive WHERE board_id = $1 AND period_id = $2 "
        "AND member_id = $3",
        board_id,
        period_id,
        member_id,
    )


async def archive_ranks(
    conn: asyncpg.Connection, board_id: int, period_id: str, lo: int, hi: int
) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT rank, member_id, score FROM board_archive WHERE board_id = $1 "
        "AND period_id = $2 AND rank BETWEEN $3 AND $4 ORDER BY rank",
        board_id,
        period_id,
        lo,
        hi,
    )


async def archive_members(
    conn: asyncpg.Connection, board_id: int, period_id: str, member_ids: Sequence[int]
) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT rank, member_id, score FROM board_archive WHERE board_id = $1 "
        "AND period_id = $2 AND member_id = ANY($3::bigint[])",
        board_id,
        period_id,
        list(member_ids),
    )


async def scores_page(
    conn: asyncpg.Connection,
    board_id: int,
    period_id: str,
    start: datetime,
    unit: int,
    offset: int,
    limit: int,
) -> list[asyncpg.Record]:
    """An open period in board order, from PostgreSQL (operator export)."""
    return await conn.fetch(
        f"SELECT member_id, LEAST(score, {MAX_SCORE}) AS score, reached_at FROM board_scores "
        f"WHERE board_id = $1 AND period_id = $2 AND score > 0 ORDER BY {ARCHIVE_ORDER} "
        "OFFSET $5 LIMIT $6",
        board_id,
        period_id,
        start,
        unit,
        offset,
        limit,
    )


async def period_scores(
    conn: asyncpg.Connection, board_id: int, period_id: str
) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT member_id, score, reached_at FROM board_scores "
        "WHERE board_id = $1 AND period_id = $2 AND score > 0",
        board_id,
        period_id,
    )


# ---------------------------------------------------------------- red/black


RB_COLUMNS = "id, tenant_id, key, board_id, version, config, created_at, updated_at"


async def get_red_black(
    conn: asyncpg.Connection, tenant_id: int, key: str
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {RB_COLUMNS} FROM red_black_boards WHERE tenant_id = $1 AND key = $2",
        tenant_id,
        key,
    )


async def red_black_for_board(conn: asyncpg.Connection, board_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {RB_COLUMNS} FROM red_black_boards WHERE board_id = $1", board_id
    )


async def upsert_red_black(
    conn: asyncpg.Connection,
    tenant_id: int,
    key: str,
    board_id: int,
    config: dict[str, Any],
    now: datetime,
) -> asyncpg.Record:
    return await conn.fetchrow(
        "INSERT INTO red_black_boards (tenant_id, key, board_id, version, config, created_at, "
        "updated_at) VALUES ($1, $2, $3, 1, $4, $5, $5) ON CONFLICT (tenant_id, key) DO UPDATE "
        "SET board_id = EXCLUDED.board_id, config = EXCLUDED.config, "
        "version = red_black_boards.version + 1, updated_at = EXCLUDED.updated_at "
        f"RETURNING {RB_COLUMNS}",
        tenant_id,
        key,
        board_id,
        config,
        now,
    )


async def latest_publication(
    conn: asyncpg.Connection, red_black_id: int, period_id: str | None
) -> asyncpg.Record | None:
    if period_id is None:
        return await conn.fetchrow(
            "SELECT * FROM red_black_publications WHERE red_black_id = $1 "
            "ORDER BY published_at DESC, period_id DESC, revision DESC LIMIT 1",
            red_black_id,
        )
    return await conn.fetchrow(
        "SELECT * FROM red_black_publications WHERE red_black_id = $1 AND period_id = $2 "
        "ORDER BY revision DESC LIMIT 1",
        red_black_id,
        period_id,
    )


async def insert_publication(
    conn: asyncpg.Connection,
    tenant_id: int,
    red_black_id: int,
    period_id: str,
    entries: list[dict[str, Any]],
    note: str,
    now: datetime,
    by: str,
) -> asyncpg.Record:
    # Lock the red/black row so two publications of one period number their revisions in turn.
    await conn.execute("SELECT 1 FROM red_black_boards WHERE id = $1 FOR UPDATE", red_black_id)
    return await conn.fetchrow(
        "INSERT INTO red_black_publications (tenant_id, red_black_id, period_id, revision, "
        "entries, note, published_at, published_by) VALUES ($1, $2, $3, COALESCE((SELECT "
        "max(revision) FROM red_black_publications WHERE red_black_id = $2::bigint "
        "AND period_id = $3::varchar), "
        "0) + 1, $4, $5, $6, $7) RETURNING *",
        tenant_id,
        red_black_id,
        period_id,
        entries,
        note,
        now,
        by,
    )


async def hidden_from_black(
    conn: asyncpg.Connection, tenant_id: int, member_ids: Sequence[int]
) -> set[int]:
    rows = await conn.fetch(
        "SELECT member_id FROM board_preferences WHERE tenant_id = $1 "
        "AND member_id = ANY($2::bigint[]) AND hide_from_black",
        tenant_id,
        list(member_ids),
    )
    return {r["member_id"] for r in rows}


async def set_preference(
    conn: asyncpg.Connection, tenant_id: int, member_id: int, hide: bool, now: datetime
) -> None:
    await conn.execute(
        "INSERT INTO board_preferences (tenant_id, member_id, hide_from_black, updated_at) "
        "VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id, member_id) DO UPDATE SET "
        "hide_from_black = EXCLUDED.hide_from_black, updated_at = EXCLUDED.updated_at",
        tenant_id,
        member_id,
        hide,
        now,
    )


# Keys and configs of the tenant's ($1) boards that are not archived; also embedded in the
# member read model (service/me/repository.py), so the rule lives here only.
BOARD_KEYS_SQL = "SELECT key, config FROM leaderboards WHERE tenant_id = $1 AND archived_at IS NULL"


async def board_keys(conn: Any, tenant_id: int) -> list[Any]:
    """Keys and configs of a tenant's boards that are not archived (one statement)."""
    return await conn.fetch(BOARD_KEYS_SQL + " ORDER BY key", tenant_id)


async def forget_member(conn: Any, tenant_id: int, member_id: int) -> int:
    """Remove a member from every board of a tenant: open scores, and archived places (the
    places below move up one, so a closed ranking keeps no hole). Returns rows removed."""
    scores = await conn.execute(
        "DELETE FROM board_scores WHERE tenant_id = $1 AND member_id = $2", tenant_id, member_id
    )
    placed = await conn.fetch(
        "DELETE FROM board_archive WHERE tenant_id = $1 AND member_id = $2 "
        "RETURNING board_id, period_id, rank",
        tenant_id,
        member_id,
    )
    for p in placed:
        # Two steps: the unique (board, period, rank) key is checked row by row.
        await conn.execute(
            "UPDATE board_archive SET rank = -(rank - 1) WHERE board_id = $1 AND period_id = $2 "
            "AND rank > $3",
            p["board_id"],
            p["period_id"],
            p["rank"],
        )
        await conn.execute(
            "UPDATE board_archive SET rank = -rank WHERE board_id = $1 AND period_id = $2 "
            "AND rank < 0",
            p["board_id"],
            p["period_id"],
        )
    return int(scores.split()[-1]) + len(placed)
