"""SQL of badges. Every function takes the caller's connection (or transaction)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

# ---------------------------------------------------------------- definitions


async def put_definition(
    conn: asyncpg.Connection, tenant_id: int, key: str, config: dict, reset: bool, now: datetime
) -> asyncpg.Record:
    """Insert or bump a definition. ``reset``: the criteria changed, so progress is rebuilt
    from history (the backfill job) and the dedup guard is cleared with it."""
    row = await conn.fetchrow(
        "INSERT INTO badge_definitions (tenant_id, key, version, config, backfill_due, "
        "created_at, updated_at) VALUES ($1, $2, 1, $3, true, $4, $4) "
        "ON CONFLICT (tenant_id, key) DO UPDATE SET version = badge_definitions.version + 1, "
        "config = EXCLUDED.config, backfill_due = badge_definitions.backfill_due OR $5, "
        "updated_at = EXCLUDED.updated_at "
        "RETURNING *",
        tenant_id,
        key,
        config,
        now,
        reset,
    )
    if reset and row["version"] > 1:
        await conn.execute("DELETE FROM badge_progress WHERE badge_id = $1", row["id"])
        await conn.execute("DELETE FROM badge_events_applied WHERE badge_id = $1", row["id"])
    return row


async def get_definition(
    conn: asyncpg.Connection, tenant_id: int, key: str, *, lock: bool = False
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM badge_definitions WHERE tenant_id = $1 AND key = $2"
        + (" FOR UPDATE" if lock else ""),
        tenant_id,
        key,
    )


async def list_definitions(conn: asyncpg.Connection, tenant_id: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT * FROM badge_definitions WHERE tenant_id = $1 ORDER BY key", tenant_id
    )


async def tenant_definitions(
    conn: asyncpg.Connection, tenant_ids: Sequence[int]
) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT * FROM badge_definitions WHERE tenant_id = ANY($1::int[]) ORDER BY tenant_id, id",
        list(tenant_ids),
    )


async def definition_by_id(conn: asyncpg.Connection, badge_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM badge_definitions WHERE id = $1", badge_id)


async def due_backfills(
    conn: asyncpg.Connection, limit: int, skip: Sequence[int] = ()
) -> list[asyncpg.Record]:
    """Definitions waiting for a backfill, except ``skip`` (parked ones)."""
    return await conn.fetch(
        "SELECT * FROM badge_definitions WHERE backfill_due AND NOT (id = ANY($2::bigint[])) "
        "ORDER BY updated_at LIMIT $1",
        limit,
        list(skip),
    )


async def mark_backfilled(
    conn: asyncpg.Connection, badge_id: int, version: int, now: datetime
) -> None:
    """Clear the flag unless the definition changed again meanwhile."""
    await conn.execute(
        "UPDATE badge_definitions SET backfill_due = false, backfilled_at = $3 "
        "WHERE id = $1 AND version = $2",
        badge_id,
        version,
        now,
    )


# ---------------------------------------------------------------- progress


async def mark_applied(
    conn: asyncpg.Connection, badge_id: int, event_ids: Sequence[uuid.UUID]
) -> set[uuid.UUID]:
    """The events not yet counted for this badge (now marked counted)."""
    rows = await conn.fetch(
        "INSERT INTO badge_events_applied (badge_id, event_id) "
        "SELECT $1, e FROM unnest($2::uuid[]) AS e "
        "ON CONFLICT (badge_id, event_id) DO NOTHING RETURNING event_id",
        badge_id,
        list(event_ids),
    )
    return {r["event_id"] for r in rows}


async def bump_progress(
    conn: asyncpg.Connection,
    tenant_id: int,
    badge_id: int,
    rows: Sequence[tuple[int, str, int, str, int]],
    now: datetime,
) -> None:
    """(member, period, criterion, mode, value): add to counts, raise levels ("max"); one
    statement per mode, rows in a fixed lock order."""
    for mode, update in (
        ("add", "badge_progress.current + EXCLUDED.current"),
        ("max", "GREATEST(badge_progress.current, EXCLUDED.current)"),
    ):
        part = sorted((r for r in rows if r[3] == mode), key=lambda r: (r[0], r[1], r[2]))
        if not part:
            continue
        await conn.execute(
            "INSERT INTO badge_progress (tenant_id, badge_id, member_id, period_id, criterion, "
            "current, updated_at) "
            "SELECT $1, $2, m, p, c, v, $7 FROM unnest($3::bigint[], $4::text[], $5::int[], "
            "$6::bigint[]) AS u(m, p, c, v) "
            "ON CONFLICT (badge_id, member_id, period_id, criterion) DO UPDATE SET "
            f"current = {update}, updated_at = EXCLUDED.updated_at",
            tenant_id,
            badge_id,
            [r[0] for r in part],
            [r[1] for r in part],
            [r[2] for r in part],
            [r[4] for r in part],
            now,
        )


async def progress_of(
    conn: asyncpg.Connection, badge_id: int, keys: Sequence[tuple[int, str]]
) -> list[asyncpg.Record]:
    """Every criterion's value for the (member, period) pairs given."""
    return await conn.fetch(
        "SELECT p.member_id, p.period_id, p.criterion, p.current FROM badge_progress p "
        "JOIN unnest($2::bigint[], $3::text[]) AS k(m, pe) ON p.member_id = k.m "
        "AND p.period_id = k.pe WHERE p.badge_id = $1",
        badge_id,
        [k[0] for k in keys],
        [k[1] for k in keys],
    )


async def member_progress(
    conn: asyncpg.Connection, tenant_id: int, member_id: int
) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT badge_id, period_id, criterion, current FROM badge_progress "
        "WHERE tenant_id = $1 AND member_id = $2",
        tenant_id,
        member_id,
    )


# ---------------------------------------------------------------- earning


async def earn(
    conn: asyncpg.Connection,
    tenant_id: int,
    badge_id: int,
    rows: Sequence[tuple[int, str, uuid.UUID | None]],
    source: str,
    now: datetime,
) -> list[asyncpg.Record]:
    """(member, period, source event): the badges newly earned (an existing key is skipped,
    so however often this runs, a badge is earned once per member and period)."""
    ordered = sorted(rows, key=lambda r: (r[0], r[1]))
    return await conn.fetch(
        "INSERT INTO member_badges (tenant_id, badge_id, member_id, period_id, source, "
        "source_event_id, earned_at) "
        "SELECT $1, $2, m, p, $6, e, $7 FROM unnest($3::bigint[], $4::text[], $5::uuid[]) "
        "AS u(m, p, e) ON CONFLICT (badge_id, member_id, period_id) DO NOTHING "
        "RETURNING id, member_id, period_id, source_event_id, award_no",
        tenant_id,
        badge_id,
        [r[0] for r in ordered],
        [r[1] for r in ordered],
        [r[2] for r in ordered],
        source,
        now,
    )


async def get_member_badge(
    conn: asyncpg.Connection, badge_id: int, member_id: int, period_id: str, *, lock: bool = False
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM member_badges WHERE badge_id = $1 AND member_id = $2 AND period_id = $3"
        + (" FOR UPDATE" if lock else ""),
        badge_id,
        member_id,
        period_id,
    )


async def reaward(conn: asyncpg.Connection, member_badge_id: int) -> asyncpg.Record:
    """Restore a revoked badge as its next award (``award_no`` + 1)."""
    return await conn.fetchrow(
        "UPDATE member_badges SET revoked_at = NULL, award_no = award_no + 1 WHERE id = $1 "
        "RETURNING id, member_id, period_id, source_event_id, award_no",
        member_badge_id,
    )


async def set_revoked(conn: asyncpg.Connection, member_badge_id: int, at: datetime | None) -> None:
    await conn.execute(
        "UPDATE member_badges SET revoked_at = $2 WHERE id = $1", member_badge_id, at
    )


async def member_badges(
    conn: asyncpg.Connection, tenant_id: int, member_id: int
) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT mb.*, d.key, d.config FROM member_badges mb JOIN badge_definitions d "
        "ON d.id = mb.badge_id WHERE mb.tenant_id = $1 AND mb.member_id = $2 "
        "AND mb.revoked_at IS NULL ORDER BY mb.earned_at DESC, mb.id DESC",
        tenant_id,
        member_id,
    )


async def earned_members(conn: asyncpg.Connection, badge_id: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT member_id, period_id FROM member_badges WHERE badge_id = $1 "
        "AND revoked_at IS NULL ORDER BY member_id",
        badge_id,
    )


async def audit(
    conn: asyncpg.Connection,
    tenant_id: int,
    badge_id: int,
    member_id: int,
    action: str,
    reason: str,
    actor: str,
    now: datetime,
) -> None:
    await conn.execute(
        "INSERT INTO badge_audit (tenant_id, badge_id, member_id, action, reason, actor, at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7)",
        tenant_id,
        badge_id,
        member_id,
        action,
        reason,
        actor,
        now,
    )


# ---------------------------------------------------------------- titles


async def grant_titles(
    conn: asyncpg.Connection,
    tenant_id: int,
    rows: Sequence[tuple[int, str, str, datetime | None]],
    now: datetime,
) -> list[asyncpg.Record]:
    """(member, title, source, expires): titles newly gained (or regained after expiry)."""
    ordered = sorted(rows, key=lambda r: (r[0], r[1]))
    return await conn.fetch(
        "INSERT INTO member_titles (tenant_id, member_id, title, source, gained_at, expires_at) "
        "SELECT $1, m, t, s, $6, x FROM unnest($2::bigint[], $3::text[], $4::text[], "
        "$5::timestamptz[]) AS u(m, t, s, x) "
        "ON CONFLICT (tenant_id, member_id, title) DO UPDATE SET source = EXCLUDED.source, "
        "gained_at = EXCLUDED.gained_at, expires_at = EXCLUDED.expires_at "
        "WHERE member_titles.expires_at IS NOT NULL AND member_titles.expires_at <= $6 "
        "RETURNING member_id, title, expires_at",
        tenant_id,
        [r[0] for r in ordered],
        [r[1] for r in ordered],
        [r[2] for r in ordered],
        [r[3] for r in ordered],
        now,
    )


async def drop_title(conn: asyncpg.Connection, tenant_id: int, member_id: int, source: str) -> None:
    await conn.execute(
        "DELETE FROM member_titles WHERE tenant_id = $1 AND member_id = $2 AND source = $3",
        tenant_id,
        member_id,
        source,
    )


# The titles member $2 (tenant $1) holds at $3 (with ``id`` for the newest-first order); also
# embedded in the member read model (service/me/repository.py), so the rule lives here only.
TITLES_SQL = (
    "SELECT title, source, gained_at, expires_at, id FROM member_titles "
    "WHERE tenant_id = $1 AND member_id = $2 AND (expires_at IS NULL OR expires_at > $3)"
)


async def titles_of(
    conn: asyncpg.Connection, tenant_id: int, member_id: int, now: datetime
) -> list[asyncpg.Record]:
    return await conn.fetch(
        TITLES_SQL + " ORDER BY gained_at DESC, id DESC",
        tenant_id,
        member_id,
        now,
    )


async def set_shown_title(
    conn: asyncpg.Connection, tenant_id: int, member_id: int, title: str | None, now: datetime
) -> None:
    if title is None:
        await conn.execute(
            "DELETE FROM member_shown_titles WHERE tenant_id = $1 AND member_id = $2",
            tenant_id,
            member_id,
        )
        return
    await conn.execute(
        "INSERT INTO member_shown_titles (tenant_id, member_id, title, updated_at) "
        "VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id, member_id) DO UPDATE SET "
        "title = EXCLUDED.title, updated_at = EXCLUDED.updated_at",
        tenant_id,
        member_id,
        title,
        now,
    )


async def shown_titles(
    conn: asyncpg.Connection, tenant_id: int, member_ids: Sequence[int], now: datetime
) -> dict[int, str]:
    """The title each member shows, if they still hold it."""
    rows = await conn.fetch(
        "SELECT s.member_id, s.title FROM member_shown_titles s JOIN member_titles t "
        "ON t.tenant_id = s.tenant_id AND t.member_id = s.member_id AND t.title = s.title "
        "WHERE s.tenant_id = $1 AND s.member_id = ANY($2::bigint[]) "
        "AND (t.expires_at IS NULL OR t.expires_at > $3)",
        tenant_id,
        list(member_ids),
        now,
    )
    return {r["member_id"]: r["title"] for r in rows}


# ---------------------------------------------------------------- history (backfill)


async def history_page(
    conn: asyncpg.Connection,
    tenant_id: int,
    types: Sequence[str],
    after: tuple[int, int],
    limit: int,
) -> list[Any]:
    """The tenant's committed domain events of some types, in delivery order, after a cursor."""
    return await conn.fetch(
        "SELECT id, txid, event_id, tenant_id, type, member_id, payload, occurred_at "
        "FROM outbox WHERE tenant_id = $1 AND type = ANY($2::text[]) AND (txid, id) > ($3, $4) "
        "AND txid < pg_snapshot_xmin(pg_current_snapshot())::text::bigint "
        "ORDER BY txid, id LIMIT $5",
        tenant_id,
        list(types),
        after[0],
        after[1],
        limit,
    )


async def live_member_badges(conn: asyncpg.Connection, tenant_id: int, ids: list[int]) -> set[int]:
    rows = await conn.fetch(
        "SELECT id FROM member_badges WHERE tenant_id = $1 AND id = ANY($2::bigint[]) "
        "AND revoked_at IS NULL FOR SHARE",
        tenant_id,
        ids,
    )
    return {r["id"] for r in rows}
