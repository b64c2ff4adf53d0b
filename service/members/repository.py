"""SQL for members and their identities."""

from __future__ import annotations

from datetime import datetime

import asyncpg

COLUMNS = "id, tenant_id, external_id, nickname, avatar_url, member_no, created_at"
M_COLUMNS = ", ".join("m." + c for c in COLUMNS.split(", "))


async def get(conn: asyncpg.Connection, tenant_id: int, member_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {COLUMNS} FROM members WHERE tenant_id = $1 AND id = $2", tenant_id, member_id
    )


async def get_by_external_id(
    conn: asyncpg.Connection, tenant_id: int, external_id: str
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {COLUMNS} FROM members WHERE tenant_id = $1 AND external_id = $2",
        tenant_id,
        external_id,
    )


async def get_or_create_by_external_id(
    conn: asyncpg.Connection, tenant_id: int, external_id: str, now: datetime
) -> tuple[asyncpg.Record, bool]:
    row = await conn.fetchrow(
        f"INSERT INTO members (tenant_id, external_id, nickname, avatar_url, created_at) "
        f"VALUES ($1, $2, '', '', $3) ON CONFLICT (tenant_id, external_id) DO NOTHING "
        f"RETURNING {COLUMNS}",
        tenant_id,
        external_id,
        now,
    )
    if row is not None:
        return row, True
    row = await get_by_external_id(conn, tenant_id, external_id)
    assert row is not None
    return row, False


async def get_or_create_by_identity(
    conn: asyncpg.Connection,
    tenant_id: int,
    provider: str,
    app_id: str,
    subject: str,
    unionid: str | None,
    now: datetime,
) -> tuple[asyncpg.Record, bool]:
    """Find the member behind an identity, creating both on first sight (race-safe)."""
    found = await conn.fetchrow(
        f"SELECT {M_COLUMNS} FROM member_identities i "
        "JOIN members m ON m.id = i.member_id "
        "WHERE i.tenant_id = $1 AND i.provider = $2 AND i.app_id = $3 AND i.subject = $4",
        tenant_id,
        provider,
        app_id,
        subject,
    )
    if found is not None:
        return found, False
    async with conn.transaction():
        member = await conn.fetchrow(
            f"INSERT INTO members (tenant_id, nickname, avatar_url, created_at) "
            f"VALUES ($1, '', '', $2) RETURNING {COLUMNS}",
            tenant_id,
            now,
        )
        inserted = await conn.fetchval(
            "INSERT INTO member_identities (tenant_id, member_id, provider, app_id, subject, "
            "unionid, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) "
            "ON CONFLICT (tenant_id, provider, app_id, subject) DO NOTHING RETURNING id",
            tenant_id,
            member["id"],
            provider,
            app_id,
            subject,
            unionid,
            now,
        )
        if inserted is None:
            # A concurrent login created the identity first: drop our member, use theirs.
            await conn.execute("DELETE FROM members WHERE id = $1", member["id"])
        else:
            return member, True
    again = await conn.fetchrow(
        f"SELECT {M_COLUMNS} FROM member_identities i "
        "JOIN members m ON m.id = i.member_id "
        "WHERE i.tenant_id = $1 AND i.provider = $2 AND i.app_id = $3 AND i.subject = $4",
        tenant_id,
        provider,
        app_id,
        subject,
    )
    assert again is not None
    return again, False


async def update_profile(
    conn: asyncpg.Connection,
    tenant_id: int,
    member_id: int,
    nickname: str | None,
    avatar_url: str | None,
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"UPDATE members SET nickname = COALESCE($3, nickname), "
        f"avatar_url = COALESCE($4, avatar_url) WHERE tenant_id = $1 AND id = $2 "
        f"RETURNING {COLUMNS}",
        tenant_id,
        member_id,
        nickname,
        avatar_url,
    )


async def ids_by_external(
    conn: asyncpg.Connection, tenant_id: int, external_ids: list[str]
) -> dict[str, int]:
    rows = await conn.fetch(
        "SELECT external_id, id FROM members WHERE tenant_id = $1 "
        "AND external_id = ANY($2::text[])",
        tenant_id,
        external_ids,
    )
    return {r["external_id"]: r["id"] for r in rows}


async def create_by_external(
    conn: asyncpg.Connection, tenant_id: int, external_ids: list[str], now: datetime
) -> dict[str, int]:
    """Create members for external ids not seen yet; returns only the ones created here."""
    rows = await conn.fetch(
        "INSERT INTO members (tenant_id, external_id, nickname, avatar_url, created_at) "
        "SELECT $1, e, '', '', $3 FROM unnest($2::text[]) AS u(e) ORDER BY e "
        "ON CONFLICT (tenant_id, external_id) DO NOTHING RETURNING external_id, id",
        tenant_id,
        sorted(set(external_ids)),
        now,
    )
    return {r["external_id"]: r["id"] for r in rows}


async def external_ids_of(
    conn: asyncpg.Connection, tenant_id: int, member_ids: list[int]
) -> dict[int, str | None]:
    rows = await conn.fetch(
        "SELECT id, external_id FROM members WHERE tenant_id = $1 AND id = ANY($2::bigint[])",
        tenant_id,
        member_ids,
    )
    return {r["id"]: r["external_id"] for r in rows}


async def display_rows(
    conn: asyncpg.Connection, tenant_id: int, member_ids: list[int]
) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT id, nickname, avatar_url FROM members WHERE tenant_id = $1 "
        "AND id = ANY($2::bigint[])",
        tenant_id,
        member_ids,
    )


async def set_member_no(
    conn: asyncpg.Connection, tenant_id: int, member_id: int, member_no: int
) -> bool:
    """Give a member its number, only if it has none (a number is never reassigned)."""
    status = await conn.execute(
        "UPDATE members SET member_no = $3 WHERE tenant_id = $1 AND id = $2 AND member_no IS NULL",
        tenant_id,
        member_id,
        member_no,
    )
    return status.endswith(" 1")


async def member_with_no(conn: asyncpg.Connection, tenant_id: int, member_no: int) -> int | None:
    return await conn.fetchval(
        "SELECT id FROM members WHERE tenant_id = $1 AND member_no = $2", tenant_id, member_no
    )


async def count_numbers_between(conn: asyncpg.Connection, tenant_id: int, lo: int, hi: int) -> int:
    return await conn.fetchval(
        "SELECT count(*) FROM members WHERE tenant_id = $1 AND member_no BETWEEN $2 AND $3",
        tenant_id,
        lo,
        hi,
    )


async def identities_of(
    conn: asyncpg.Connection, tenant_id: int, member_id: int
) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT provider, app_id, subject, unionid, created_at FROM member_identities "
        "WHERE tenant_id = $1 AND member_id = $2 ORDER BY id",
        tenant_id,
        member_id,
    )


async def ids_and_erased(
    conn: asyncpg.Connection, tenant_id: int, external_ids: list[str]
) -> tuple[dict[str, int], set[str]]:
    """(externalId -> member id of the members not erased, externalIds of erased members)."""
    rows = await conn.fetch(
        "SELECT external_id, id, erased_at IS NOT NULL AS erased FROM members "
        "WHERE tenant_id = $1 AND external_id = ANY($2::text[])",
        tenant_id,
        external_ids,
    )
    return (
        {r["external_id"]: r["id"] for r in rows if not r["erased"]},
        {r["external_id"] for r in rows if r["erased"]},
    )


async def erase(
    conn: asyncpg.Connection, tenant_id: int, member_id: int, now: datetime | None = None
) -> bool:
    """Remove the personal fields: nickname, avatar, login identities (openid, unionid).
    The row, its id, externalId (the brand's own key) and member number stay, so the ledger
    and audit still add up."""
    await conn.execute(
        "DELETE FROM member_identities WHERE tenant_id = $1 AND member_id = $2",
        tenant_id,
        member_id,
    )
    status = await conn.execute(
        "UPDATE members SET nickname = '', avatar_url = '', "
        "erased_at = COALESCE(erased_at, $3::timestamptz) WHERE tenant_id = $1 AND id = $2",
        tenant_id,
        member_id,
        now,
    )
    return status.endswith(" 1")


async def get_by_member_no(
    conn: asyncpg.Connection, tenant_id: int, member_no: int
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {COLUMNS} FROM members WHERE tenant_id = $1 AND member_no = $2",
        tenant_id,
        member_no,
    )


async def search(
    conn: asyncpg.Connection, tenant_id: int, text: str, limit: int
) -> list[asyncpg.Record]:
    """Members whose externalId or nickname starts with ``text`` (or whose member number is
    ``text``), newest first."""
    like = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    number = int(text) if text.isdigit() and len(text) < 18 else None
    return await conn.fetch(
        f"SELECT {COLUMNS} FROM members WHERE tenant_id = $1 AND (external_id LIKE $2 "
        "OR nickname LIKE $2 OR member_no = $3) ORDER BY id DESC LIMIT $4",
        tenant_id,
        like,
        number,
        limit,
    )


async def wechat_identity(
    conn: asyncpg.Connection, tenant_id: int, member_id: int, app_id: str | None
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT app_id, subject FROM member_identities WHERE tenant_id = $1 AND member_id = $2 "
        "AND provider = 'wechat' AND ($3::text IS NULL OR app_id = $3) ORDER BY id LIMIT 1",
        tenant_id,
        member_id,
        app_id,
    )
