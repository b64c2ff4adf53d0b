"""SQL of rituals, member numbers, invitations and erasures."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import asyncpg

# ---------------------------------------------------------------- definitions


# The newest ritual definition of tenant $1; also embedded in the member read model
# (service/me/repository.py), so the rule lives here only.
CURRENT_DEFINITION_SQL = (
    "SELECT version, covenant_version, config, created_at FROM ritual_definitions "
    "WHERE tenant_id = $1 ORDER BY version DESC LIMIT 1"
)


async def current_definition(conn: asyncpg.Connection, tenant_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(
        CURRENT_DEFINITION_SQL,
        tenant_id,
    )


async def insert_definition(
    conn: asyncpg.Connection,
    tenant_id: int,
    covenant_version: str | None,
    config: dict,
    now: datetime,
) -> int:
    """A new version (the previous highest + 1); concurrent PUTs serialize on the lock."""
    await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", 0x72697475, tenant_id)
    return await conn.fetchval(
        "INSERT INTO ritual_definitions (tenant_id, version, covenant_version, config, "
        "created_at) SELECT $1, COALESCE(max(version), 0) + 1, $2, $3, $4 "
        "FROM ritual_definitions WHERE tenant_id = $1 RETURNING version",
        tenant_id,
        covenant_version,
        config,
        now,
    )


# ---------------------------------------------------------------- progress

PROGRESS = (
    "member_id, steps, covenant_version, profile, consents, started_version, "
    "completed_version, completed_at, updated_at"
)


async def get_progress(
    conn: asyncpg.Connection, tenant_id: int, member_id: int
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {PROGRESS} FROM ritual_progress WHERE tenant_id = $1 AND member_id = $2",
        tenant_id,
        member_id,
    )


async def lock_progress(
    conn: asyncpg.Connection, tenant_id: int, member_id: int, version: int, now: datetime
) -> asyncpg.Record:
    """The member's row, created if needed, locked for the rest of the transaction: two
    devices completing steps at once run one after the other."""
    return await conn.fetchrow(
        "INSERT INTO ritual_progress (tenant_id, member_id, steps, profile, consents, "
        "started_version, updated_at) VALUES ($1, $2, '{}', '{}', '{}', $3, $4) "
        "ON CONFLICT (tenant_id, member_id) DO UPDATE SET updated_at = ritual_progress.updated_at "
        f"RETURNING {PROGRESS}",
        tenant_id,
        member_id,
        version,
        now,
    )


async def save_progress(
    conn: asyncpg.Connection,
    tenant_id: int,
    member_id: int,
    steps: dict,
    covenant_version: str | None,
    profile: dict,
    consents: dict,
    completed: tuple[int, datetime] | None,
    now: datetime,
) -> None:
    await conn.execute(
        "UPDATE ritual_progress SET steps = $3, covenant_version = $4, "
        "profile = $5, consents = $6, updated_at = $7, "
        "completed_version = COALESCE(completed_version, $8), "
        "completed_at = COALESCE(completed_at, $9) WHERE tenant_id = $1 AND member_id = $2",
        tenant_id,
        member_id,
        steps,
        covenant_version,
        profile,
        consents,
        now,
        completed[0] if completed else None,
        completed[1] if completed else None,
    )


async def lock_completed(conn: asyncpg.Connection, tenant_id: int, member_id: int) -> bool:
    """Whether the member completed the ritual, locking its progress row (if any) so that a
    completion running now waits for this transaction, or this one for it."""
    done = await conn.fetchval(
        "SELECT completed_at IS NOT NULL FROM ritual_progress WHERE tenant_id = $1 "
        "AND member_id = $2 FOR UPDATE",
        tenant_id,
        member_id,
    )
    return bool(done)


async def erase_progress(conn: asyncpg.Connection, tenant_id: int, member_id: int) -> None:
    await conn.execute(
        "UPDATE ritual_progress SET profile = '{}', consents = '{}', "
        "steps = (SELECT COALESCE(jsonb_object_agg(k, jsonb_build_object('at', v->'at')), "
        "'{}') FROM jsonb_each(steps) AS e(k, v)) WHERE tenant_id = $1 AND member_id = $2",
        tenant_id,
        member_id,
    )


# ---------------------------------------------------------------- member numbers


async def lock_counter(conn: asyncpg.Connection, tenant_id: int, now: datetime) -> int:
    """The tenant's next member number; the row stays locked until the transaction ends."""
    return await conn.fetchval(
        "INSERT INTO member_number_counters (tenant_id, next_no, updated_at) VALUES ($1, 1, $2) "
        "ON CONFLICT (tenant_id) DO UPDATE SET updated_at = member_number_counters.updated_at "
        "RETURNING next_no",
        tenant_id,
        now,
    )


async def peek_counter(conn: asyncpg.Connection, tenant_id: int) -> int:
    n = await conn.fetchval(
        "SELECT next_no FROM member_number_counters WHERE tenant_id = $1", tenant_id
    )
    return int(n or 1)


async def set_counter(
    conn: asyncpg.Connection, tenant_id: int, next_no: int, now: datetime
) -> None:
    await conn.execute(
        "UPDATE member_number_counters SET next_no = $2, updated_at = $3 WHERE tenant_id = $1",
        tenant_id,
        next_no,
        now,
    )


async def reservations_from(
    conn: asyncpg.Connection, tenant_id: int, start: int
) -> list[tuple[int, int]]:
    rows = await conn.fetch(
        "SELECT first_no, last_no FROM member_number_reservations WHERE tenant_id = $1 "
        "AND last_no >= $2 ORDER BY first_no",
        tenant_id,
        start,
    )
    return [(r["first_no"], r["last_no"]) for r in rows]


async def reservations(conn: asyncpg.Connection, tenant_id: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT id, first_no, last_no, note, created_at FROM member_number_reservations "
        "WHERE tenant_id = $1 ORDER BY first_no",
        tenant_id,
    )


async def insert_reservation(
    conn: asyncpg.Connection, tenant_id: int, lo: int, hi: int, note: str, now: datetime
) -> asyncpg.Record:
    return await conn.fetchrow(
        "INSERT INTO member_number_reservations (tenant_id, first_no, last_no, note, created_at) "
        "VALUES ($1, $2, $3, $4, $5) RETURNING id, first_no, last_no, note, created_at",
        tenant_id,
        lo,
        hi,
        note,
        now,
    )


async def delete_reservation(conn: asyncpg.Connection, tenant_id: int, rid: int) -> bool:
    status = await conn.execute(
        "DELETE FROM member_number_reservations WHERE tenant_id = $1 AND id = $2", tenant_id, rid
    )
    return status.endswith(" 1")


# ---------------------------------------------------------------- invitations


async def code_of(conn: asyncpg.Connection, tenant_id: int, member_id: int) -> str | None:
    return await conn.fetchval(
        "SELECT code FROM invite_codes WHERE tenant_id = $1 AND member_id = $2",
        tenant_id,
        member_id,
    )


async def insert_code(
    conn: asyncpg.Connection, tenant_id: int, member_id: int, code: str, now: datetime
) -> str | None:
    """The member's code: ``code`` if it was free, the existing one if the member has one,
    None if another member holds ``code`` (draw again)."""
    got = await conn.fetchval(
        "INSERT INTO invite_codes (tenant_id, member_id, code, created_at) "
        "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING code",
        tenant_id,
        member_id,
        code,
        now,
    )
    if got is not None:
        return got
    return await code_of(conn, tenant_id, member_id)


async def member_of_code(conn: asyncpg.Connection, tenant_id: int, code: str) -> int | None:
    return await conn.fetchval(
        "SELECT member_id FROM invite_codes WHERE tenant_id = $1 AND code = $2", tenant_id, code
    )


async def lock_referrals(conn: asyncpg.Connection, tenant_id: int) -> None:
    """Referral recordings of one tenant run one at a time, so two members using each
    other's codes at the same instant cannot form a cycle."""
    await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", 0x72656665, tenant_id)


async def referral_of(
    conn: asyncpg.Connection, tenant_id: int, invitee_id: int
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT inviter_id, code, via, state, created_at, joined_at FROM referrals "
        "WHERE tenant_id = $1 AND invitee_id = $2",
        tenant_id,
        invitee_id,
    )


async def inviter_chain(conn: asyncpg.Connection, tenant_id: int, member_id: int) -> list[int]:
    """The member's referrer, the referrer's referrer, ... (bounded)."""
    rows = await conn.fetch(
        "WITH RECURSIVE up(id, depth) AS ("
        " SELECT inviter_id, 1 FROM referrals WHERE tenant_id = $1 AND invitee_id = $2"
        " UNION ALL"
        " SELECT r.inviter_id, up.depth + 1 FROM referrals r JOIN up ON r.invitee_id = up.id"
        " WHERE r.tenant_id = $1 AND up.depth < 1000"
        ") SELECT id FROM up",
        tenant_id,
        member_id,
    )
    return [r["id"] for r in rows]


async def insert_referral(
    conn: asyncpg.Connection,
    tenant_id: int,
    invitee_id: int,
    inviter_id: int,
    code: str,
    via: str,
    now: datetime,
) -> bool:
    status = await conn.execute(
        "INSERT INTO referrals (tenant_id, invitee_id, inviter_id, code, via, state, created_at, "
        "inviter_points, inviter_growth) VALUES ($1, $2, $3, $4, $5, 'pending', $6, 0, 0) "
        "ON CONFLICT (tenant_id, invitee_id) DO NOTHING",
        tenant_id,
        invitee_id,
        inviter_id,
        code,
        via,
        now,
    )
    return status.endswith(" 1")


async def take_pending(
    conn: asyncpg.Connection, tenant_id: int, invitee_id: int, now: datetime
) -> int | None:
    """Move the invitee's referral from pending to joined (once); the inviter's id."""
    return await conn.fetchval(
        "UPDATE referrals SET state = 'joined', joined_at = $3 WHERE tenant_id = $1 "
        "AND invitee_id = $2 AND state = 'pending' RETURNING inviter_id",
        tenant_id,
        invitee_id,
        now,
    )


async def count_daily(
    conn: asyncpg.Connection, tenant_id: int, inviter_id: int, day: date, limit: int
) -> bool:
    """Count one rewarded referral for the inviter's day if under ``limit`` (atomic)."""
    got = await conn.fetchval(
        "INSERT INTO referral_daily (tenant_id, inviter_id, day, rewarded) VALUES ($1, $2, $3, 1) "
        "ON CONFLICT (tenant_id, inviter_id, day) DO UPDATE "
        "SET rewarded = referral_daily.rewarded + 1 WHERE referral_daily.rewarded < $4 "
        "RETURNING rewarded",
        tenant_id,
        inviter_id,
        day,
        limit,
    )
    return got is not None


async def set_referral_outcome(
    conn: asyncpg.Connection, tenant_id: int, invitee_id: int, state: str, points: int, growth: int
) -> None:
    await conn.execute(
        "UPDATE referrals SET state = $3, inviter_points = $4, inviter_growth = $5 "
        "WHERE tenant_id = $1 AND invitee_id = $2",
        tenant_id,
        invitee_id,
        state,
        points,
        growth,
    )


async def invitees(
    conn: asyncpg.Connection, tenant_id: int, inviter_id: int, before: int | None, limit: int
) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT id, invitee_id, state, created_at, joined_at FROM referrals "
        "WHERE tenant_id = $1 AND inviter_id = $2 AND ($3::bigint IS NULL OR id < $3) "
        "ORDER BY id DESC LIMIT $4",
        tenant_id,
        inviter_id,
        before,
        limit,
    )


async def invite_totals(conn: asyncpg.Connection, tenant_id: int, inviter_id: int) -> Any:
    return await conn.fetchrow(
        "SELECT count(*) AS invited, count(*) FILTER (WHERE state <> 'pending') AS joined, "
        "COALESCE(sum(inviter_points), 0) AS points, COALESCE(sum(inviter_growth), 0) AS growth "
        "FROM referrals WHERE tenant_id = $1 AND inviter_id = $2",
        tenant_id,
        inviter_id,
    )


# ---------------------------------------------------------------- erasure audit


async def record_erasure(
    conn: asyncpg.Connection, tenant_id: int, member_id: int, actor: str, reason: str, now: datetime
) -> None:
    await conn.execute(
        "INSERT INTO member_erasures (tenant_id, member_id, actor, reason, erased_at) "
        "VALUES ($1, $2, $3, $4, $5)",
        tenant_id,
        member_id,
        actor,
        reason,
        now,
    )


async def erased_at(conn: asyncpg.Connection, tenant_id: int, member_id: int) -> datetime | None:
    return await conn.fetchval(
        "SELECT max(erased_at) FROM member_erasures WHERE tenant_id = $1 AND member_id = $2",
        tenant_id,
        member_id,
    )
