"""SQL of the wheel: wheels and versions, stock guards, member state, draws, coupons, awards."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import asyncpg

WHEEL_COLUMNS = (
    "id, tenant_id, key, version, layout_version, config, seed, seed_hash, created_at, updated_at"
)


# ----------------------------------------------------------------------------- wheels


async def get_wheel(conn: asyncpg.Connection, tenant_id: int, key: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {WHEEL_COLUMNS} FROM wheels WHERE tenant_id = $1 AND key = $2", tenant_id, key
    )


async def lock_wheel(conn: asyncpg.Connection, tenant_id: int, key: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {WHEEL_COLUMNS} FROM wheels WHERE tenant_id = $1 AND key = $2 FOR UPDATE",
        tenant_id,
        key,
    )


async def insert_wheel(
    conn: asyncpg.Connection,
    tenant_id: int,
    key: str,
    config: dict,
    seed: bytes,
    seed_hash: str,
    now: datetime,
) -> asyncpg.Record | None:
    """None when another request created the wheel first."""
    return await conn.fetchrow(
        "INSERT INTO wheels (tenant_id, key, version, layout_version, config, seed, seed_hash, "
        "created_at, updated_at) VALUES ($1, $2, 1, 1, $3, $4, $5, $6, $6) "
        f"ON CONFLICT (tenant_id, key) DO NOTHING RETURNING {WHEEL_COLUMNS}",
        tenant_id,
        key,
        config,
        seed,
        seed_hash,
        now,
    )


async def update_wheel(
    conn: asyncpg.Connection,
    wheel_id: int,
    config: dict,
    version: int,
    layout_version: int,
    now: datetime,
) -> asyncpg.Record:
    return await conn.fetchrow(
        "UPDATE wheels SET config = $2, version = $3, layout_version = $4, updated_at = $5 "
        f"WHERE id = $1 RETURNING {WHEEL_COLUMNS}",
        wheel_id,
        config,
        version,
        layout_version,
        now,
    )


async def insert_version(
    conn: asyncpg.Connection,
    tenant_id: int,
    wheel_id: int,
    version: int,
    layout_version: int,
    config: dict,
    now: datetime,
) -> None:
    await conn.execute(
        "INSERT INTO wheel_versions (tenant_id, wheel_id, version, layout_version, config, "
        "created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        tenant_id,
        wheel_id,
        version,
        layout_version,
        config,
        now,
    )


async def version_configs(conn: asyncpg.Connection, wheel_id: int) -> dict[int, dict]:
    rows = await conn.fetch(
        "SELECT version, config FROM wheel_versions WHERE wheel_id = $1", wheel_id
    )
    return {r["version"]: r["config"] for r in rows}


async def all_wheels(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return await conn.fetch(f"SELECT {WHEEL_COLUMNS} FROM wheels ORDER BY id")


# ----------------------------------------------------------------------------- stock guards


async def sync_stock(
    conn: asyncpg.Connection, tenant_id: int, wheel_id: int, totals: list[tuple[str, int | None]]
) -> None:
    """Set each prize's total. A prize that becomes limited starts from the wins it already
    has (it was not counted while unlimited, to keep hot rows off the spin path)."""
    await conn.execute(
        "INSERT INTO wheel_prize_stock (tenant_id, wheel_id, prize_key, total, issued) "
        "SELECT $1, $2, k, t, (SELECT count(*) FROM wheel_draws d "
        "  WHERE d.wheel_id = $2 AND d.prize_key = k) "
        "FROM unnest($3::text[], $4::int[]) AS u(k, t) "
        "ON CONFLICT (wheel_id, prize_key) DO UPDATE SET total = EXCLUDED.total, "
        "issued = CASE WHEN wheel_prize_stock.total IS NULL THEN EXCLUDED.issued "
        "ELSE wheel_prize_stock.issued END",
        tenant_id,
        wheel_id,
        [k for k, _ in totals],
        [t for _, t in totals],
    )


async def take_stock(conn: asyncpg.Connection, wheel_id: int, prize_key: str) -> None:
    """Count one win of a limited prize; the table's check raises when it would oversell."""
    await conn.execute(
        "UPDATE wheel_prize_stock SET issued = issued + 1 WHERE wheel_id = $1 AND prize_key = $2",
        wheel_id,
        prize_key,
    )


async def take_daily(
    conn: asyncpg.Connection,
    tenant_id: int,
    wheel_id: int,
    prize_key: str,
    day: date,
    limit: int,
) -> None:
    await conn.execute(
        "INSERT INTO wheel_prize_days (tenant_id, wheel_id, prize_key, day, daily_limit, issued) "
        "VALUES ($1, $2, $3, $4, $5, 1) ON CONFLICT (wheel_id, prize_key, day) DO UPDATE "
        "SET issued = wheel_prize_days.issued + 1, daily_limit = EXCLUDED.daily_limit",
        tenant_id,
        wheel_id,
        prize_key,
        day,
        limit,
    )


async def stock_rows(conn: asyncpg.Connection, wheel_id: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT prize_key, total, issued FROM wheel_prize_stock WHERE wheel_id = $1", wheel_id
    )


async def day_rows(conn: asyncpg.Connection, wheel_id: int, since: date) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT prize_key, day, issued FROM wheel_prize_days WHERE wheel_id = $1 AND day >= $2",
        wheel_id,
        since,
    )


async def wins_by_prize(conn: asyncpg.Connection, wheel_id: int) -> dict[str, int]:
    rows = await conn.fetch(
        "SELECT prize_key, count(*) AS n FROM wheel_draws WHERE wheel_id = $1 GROUP BY prize_key",
        wheel_id,
    )
    return {r["prize_key"]: r["n"] for r in rows}


# ----------------------------------------------------------------------------- members


async def lock_member(
    conn: asyncpg.Connection, tenant_id: int, wheel_id: int, member_id: int, now: datetime
) -> asyncpg.Record:
    """Create the member's row if needed and lock it for the rest of the transaction."""
    return await conn.fetchrow(
        "INSERT INTO wheel_members (tenant_id, wheel_id, member_id, spins, spins_day, "
        "free_used_day, pity, wins, updated_at) VALUES ($1, $2, $3, 0, 0, 0, 0, '{}', $4) "
        "ON CONFLICT (wheel_id, member_id) DO UPDATE SET updated_at = wheel_members.updated_at "
        "RETURNING id, spins, day, spins_day, free_used_day, pity, wins",
        tenant_id,
        wheel_id,
        member_id,
        now,
    )


async def get_member(
    conn: asyncpg.Connection, wheel_id: int, member_id: int
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT id, spins, day, spins_day, free_used_day, pity, wins FROM wheel_members "
        "WHERE wheel_id = $1 AND member_id = $2",
        wheel_id,
        member_id,
    )


# ----------------------------------------------------------------------------- draws

DRAW_COLUMNS = (
    "id, spin_id, member_id, spin_no, prize_key, slot_index, kind, value, table_version, "
    "layout_version, word_index, random_word, random_value, weight_total, stock_seen, pity, "
    "fallback, free, cost, day, created_at"
)


async def insert_draw(
    conn: asyncpg.Connection,
    tenant_id: int,
    wheel_id: int,
    advance: tuple[Any, ...],
    **f: Any,
) -> int:
    """Log the draw and advance the member's row (``advance``: row id, spins, day, spins that
    day, free spins used that day, pity count, wins per capped prize, now) in one round trip:
    both are written on every spin, and a spin is a handful of statements at most."""
    return await conn.fetchval(
        "WITH adv AS (UPDATE wheel_members SET spins = $23, day = $24, spins_day = $25, "
        "free_used_day = $26, pity = $27, wins = $28, updated_at = $29 WHERE id = $30) "
        "INSERT INTO wheel_draws (spin_id, tenant_id, wheel_id, member_id, spin_no, prize_key, "
        "slot_index, kind, value, table_version, layout_version, word_index, random_word, "
        "random_value, weight_total, stock_seen, pity, fallback, free, cost, day, created_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, "
        "$18, $19, $20, $21, $22) RETURNING id",
        f["spin_id"],
        tenant_id,
        wheel_id,
        f["member_id"],
        f["spin_no"],
        f["prize_key"],
        f["slot_index"],
        f["kind"],
        f["value"],
        f["table_version"],
        f["layout_version"],
        f["word_index"],
        f["random_word"],
        f["random_value"],
        f["weight_total"],
        f["stock_seen"],
        f["pity"],
        f["fallback"],
        f["free"],
        f["cost"],
        f["day"],
        f["created_at"],
        *advance[1:],
        advance[0],
    )


async def list_draws(
    conn: asyncpg.Connection, tenant_id: int, wheel_id: int, after_id: int, limit: int
) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"SELECT {DRAW_COLUMNS} FROM wheel_draws WHERE tenant_id = $1 AND wheel_id = $2 "
        "AND id > $3 ORDER BY id LIMIT $4",
        tenant_id,
        wheel_id,
        after_id,
        limit,
    )


async def count_draws(conn: asyncpg.Connection, wheel_id: int) -> int:
    return await conn.fetchval("SELECT count(*) FROM wheel_draws WHERE wheel_id = $1", wheel_id)


# ----------------------------------------------------------------------------- coupons


async def add_codes(
    conn: asyncpg.Connection,
    tenant_id: int,
    wheel_id: int,
    prize_key: str,
    codes: list[str],
    now: datetime,
) -> int:
    status = await conn.execute(
        "INSERT INTO wheel_coupon_codes (tenant_id, wheel_id, prize_key, code, uploaded_at) "
        "SELECT $1, $2, $3, c, $5 FROM unnest($4::text[]) AS u(c) "
        "ON CONFLICT (wheel_id, prize_key, code) DO NOTHING",
        tenant_id,
        wheel_id,
        prize_key,
        codes,
        now,
    )
    return int(status.split()[-1])


async def issue_code(
    conn: asyncpg.Connection,
    wheel_id: int,
    prize_key: str,
    member_id: int,
    draw_id: int,
    now: datetime,
) -> str | None:
    """Hand out one unused code (SKIP LOCKED: concurrent winners take different codes)."""
    return await conn.fetchval(
        "UPDATE wheel_coupon_codes SET member_id = $3, draw_id = $4, issued_at = $5 "
        "WHERE id = (SELECT id FROM wheel_coupon_codes WHERE wheel_id = $1 AND prize_key = $2 "
        "AND member_id IS NULL ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING code",
        wheel_id,
        prize_key,
        member_id,
        draw_id,
        now,
    )


async def code_counts(conn: asyncpg.Connection, wheel_id: int) -> dict[str, tuple[int, int]]:
    """prize -> (codes uploaded, codes still free)."""
    rows = await conn.fetch(
        "SELECT prize_key, count(*) AS n, count(*) FILTER (WHERE member_id IS NULL) AS free "
        "FROM wheel_coupon_codes WHERE wheel_id = $1 GROUP BY prize_key",
        wheel_id,
    )
    return {r["prize_key"]: (r["n"], r["free"]) for r in rows}


# ----------------------------------------------------------------------------- awards

AWARD_COLUMNS = (
    "a.id, a.wheel_id, w.key AS wheel_key, a.draw_id, a.member_id, a.prize_key, a.kind, a.name, "
    "a.value, a.coupon_code, a.state, a.contact, a.shipment, a.won_at, a.claimed_at, a.shipped_at"
)


async def insert_award(
    conn: asyncpg.Connection,
    tenant_id: int,
    wheel_id: int,
    draw_id: int,
    member_id: int,
    prize_key: str,
    kind: str,
    name: str,
    value: int,
    coupon_code: str | None,
    state: str,
    now: datetime,
) -> int:
    return await conn.fetchval(
        "INSERT INTO wheel_awards (tenant_id, wheel_id, draw_id, member_id, prize_key, kind, "
        "name, value, coupon_code, state, won_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
        tenant_id,
        wheel_id,
        draw_id,
        member_id,
        prize_key,
        kind,
        name,
        value,
        coupon_code,
        state,
        now,
    )


async def member_awards(
    conn: asyncpg.Connection, tenant_id: int, member_id: int, before_id: int | None, limit: int
) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"SELECT {AWARD_COLUMNS} FROM wheel_awards a JOIN wheels w ON w.id = a.wheel_id "
        "WHERE a.tenant_id = $1 AND a.member_id = $2 AND ($3::bigint IS NULL OR a.id < $3) "
        "ORDER BY a.id DESC LIMIT $4",
        tenant_id,
        member_id,
        before_id,
        limit,
    )


async def lock_award(
    conn: asyncpg.Connection, tenant_id: int, award_id: int
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {AWARD_COLUMNS} FROM wheel_awards a JOIN wheels w ON w.id = a.wheel_id "
        "WHERE a.tenant_id = $1 AND a.id = $2 FOR UPDATE OF a",
        tenant_id,
        award_id,
    )


async def get_award(
    conn: asyncpg.Connection, tenant_id: int, wheel_id: int, award_id: int
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {AWARD_COLUMNS} FROM wheel_awards a JOIN wheels w ON w.id = a.wheel_id "
        "WHERE a.tenant_id = $1 AND a.wheel_id = $2 AND a.id = $3",
        tenant_id,
        wheel_id,
        award_id,
    )


async def set_claimed(
    conn: asyncpg.Connection, award_id: int, contact: dict, now: datetime
) -> None:
    await conn.execute(
        "UPDATE wheel_awards SET state = 'claimed', contact = $2, claimed_at = $3 WHERE id = $1",
        award_id,
        contact,
        now,
    )


async def set_shipped(
    conn: asyncpg.Connection, award_id: int, shipment: dict, now: datetime
) -> None:
    await conn.execute(
        "UPDATE wheel_awards SET state = 'shipped', shipment = $2, shipped_at = $3 WHERE id = $1",
        award_id,
        shipment,
        now,
    )


async def wheel_awards(
    conn: asyncpg.Connection,
    tenant_id: int,
    wheel_id: int,
    state: str | None,
    after_id: int,
    limit: int,
) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"SELECT {AWARD_COLUMNS} FROM wheel_awards a JOIN wheels w ON w.id = a.wheel_id "
        "WHERE a.tenant_id = $1 AND a.wheel_id = $2 AND ($3::text IS NULL OR a.state = $3) "
        "AND a.id > $4 ORDER BY a.id LIMIT $5",
        tenant_id,
        wheel_id,
        state,
        after_id,
        limit,
    )


async def wheels_with_member(
    conn: asyncpg.Connection, tenant_id: int, member_id: int
) -> list[asyncpg.Record]:
    """Every wheel of a tenant with the member's counters (one statement)."""
    return await conn.fetch(
        "SELECT w.key, w.config, m.spins, m.day, m.spins_day, m.free_used_day FROM wheels w "
        "LEFT JOIN wheel_members m ON m.wheel_id = w.id AND m.member_id = $2 "
        "WHERE w.tenant_id = $1 ORDER BY w.key",
        tenant_id,
        member_id,
    )


async def erase_contacts(conn: asyncpg.Connection, tenant_id: int, member_id: int) -> int:
    """Remove the shipping contacts of a member's prizes (names, phones, addresses)."""
    status = await conn.execute(
        "UPDATE wheel_awards SET contact = NULL WHERE tenant_id = $1 AND member_id = $2 "
        "AND contact IS NOT NULL",
        tenant_id,
        member_id,
    )
    return int(status.split()[-1])
