"""Public hand-out of coupon codes from a wheel's coupon pools outside a draw (the ritual's
welcome gift, and any feature that grants "a coupon from a pool").

A pool is a coupon prize of a wheel (``PUT /admin/v1/wheels/{key}``, codes uploaded with
``POST /admin/v1/wheels/{key}/prizes/{prizeKey}/codes``); draws and hand-outs share it, and
each code is issued once whoever takes it.

Once per member per grant source: the grant row (unique tenant, member, source) is inserted
first, so a concurrent second hand-out for the same member and source waits on it and then
finds it (never a second code). Distinct members take distinct codes: the code is claimed
with ``FOR UPDATE SKIP LOCKED``, so concurrent hand-outs never take one code twice.

Pool empty (or the wheel or prize gone): the grant is recorded as ``owed`` with a reason
(``poolEmpty``, ``poolUnknown``) and ``coupon.owed`` is emitted, so the operator can make it
good (webhook ``coupon.*``); nothing fails, the caller's other grants stand. A code that a
concurrent transaction holds locked and then gives back is not seen (SKIP LOCKED): that
grant is owed too. An issued grant emits ``coupon.issued`` (without the code: it is shown to
the member only).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import structlog

from service.core.uow import UnitOfWork

log = structlog.get_logger("engage.wheel.coupons")

GRANT_COLUMNS = "wheel_key, prize_key, code, state, reason, created_at, issued_at"


@dataclass(frozen=True, slots=True)
class Grant:
    """A coupon handed out (or owed) to a member for one grant source."""

    wheel_key: str
    prize_key: str
    state: str  # issued | owed
    code: str | None
    reason: str | None  # owed: poolEmpty | poolUnknown
    granted_at: datetime
    new: bool = False  # True when this call made the grant


def _grant(row: Any, new: bool = False) -> Grant:
    return Grant(
        row["wheel_key"],
        row["prize_key"],
        row["state"],
        row["code"],
        row["reason"],
        row["created_at"],
        new,
    )


async def _wheel_pool(
    conn: asyncpg.Connection, tenant_id: int, wheel_key: str, prize_key: str
) -> tuple[int | None, bool]:
    """(wheel id or None, whether ``prize_key`` is a coupon prize of its current config)."""
    row = await conn.fetchrow(
        "SELECT id, config FROM wheels WHERE tenant_id = $1 AND key = $2", tenant_id, wheel_key
    )
    if row is None:
        return None, False
    prizes = (row["config"] or {}).get("prizes") or []
    is_coupon = any(p.get("key") == prize_key and p.get("kind") == "coupon" for p in prizes)
    return row["id"], is_coupon


async def pool_problem(
    conn: asyncpg.Connection, tenant_id: int, wheel_key: str, prize_key: str
) -> tuple[str, str] | None:
    """(code, text) when ``wheel_key``/``prize_key`` names no coupon pool, else None:
    ``WHEEL_UNKNOWN`` (no such wheel), ``COUPON_PRIZE_UNKNOWN`` (no coupon prize of that key).
    An empty pool is fine here (codes may be uploaded later)."""
    wheel_id, is_coupon = await _wheel_pool(conn, tenant_id, wheel_key, prize_key)
    if wheel_id is None:
        return "WHEEL_UNKNOWN", f"no wheel {wheel_key!r}"
    if not is_coupon:
        return "COUPON_PRIZE_UNKNOWN", f"wheel {wheel_key!r} has no coupon prize {prize_key!r}"
    return None


async def hand_out(
    uow: UnitOfWork,
    tenant_id: int,
    member_id: int,
    wheel_key: str,
    prize_key: str,
    source: str,
) -> Grant:
    """Give the member one code of the pool (wheel ``wheel_key``, coupon prize
    ``prize_key``) for ``source`` (e.g. ``ritual:welcome``), in the caller's transaction.
    Once per member and source: a repeated or concurrent call answers the first grant
    (``new`` False). No code to give: the grant is ``owed`` (see the module doc)."""
    ctx, conn = uow.ctx, uow.conn
    now = ctx.clock.now()
    inserted = await conn.fetchrow(
        "INSERT INTO coupon_grants (tenant_id, member_id, source, wheel_key, prize_key, state, "
        "created_at) VALUES ($1, $2, $3, $4, $5, 'owed', $6) "
        "ON CONFLICT (tenant_id, member_id, source) DO NOTHING RETURNING id",
        tenant_id,
        member_id,
        source,
        wheel_key,
        prize_key,
        now,
    )
    if inserted is None:
        existing = await grant_of(conn, tenant_id, member_id, source)
        assert existing is not None  # the conflicting row is committed (we waited on it)
        return existing
    wheel_id, is_coupon = await _wheel_pool(conn, tenant_id, wheel_key, prize_key)
    code: str | None = None
    reason: str | None = "poolUnknown"
    if wheel_id is not None and is_coupon:
        code = await conn.fetchval(
            "UPDATE wheel_coupon_codes SET member_id = $3, issued_at = $4 "
            "WHERE id = (SELECT id FROM wheel_coupon_codes WHERE wheel_id = $1 "
            "AND prize_key = $2 AND member_id IS NULL ORDER BY id LIMIT 1 "
            "FOR UPDATE SKIP LOCKED) RETURNING code",
            wheel_id,
            prize_key,
            member_id,
            now,
        )
        reason = None if code is not None else "poolEmpty"
    row = await conn.fetchrow(
        "UPDATE coupon_grants SET wheel_id = $2, code = $3, state = $4, reason = $5, "
        f"issued_at = $6 WHERE id = $1 RETURNING {GRANT_COLUMNS}",
        inserted["id"],
        wheel_id,
        code,
        "issued" if code is not None else "owed",
        reason,
        now if code is not None else None,
    )
    payload = {"wheelKey": wheel_key, "prizeKey": prize_key, "source": source}
    if code is None:
        log.warning("coupon owed", tenant=tenant_id, member=member_id, reason=reason, **payload)
        payload["reason"] = reason or ""
    uow.emit(
        tenant_id=tenant_id,
        type="coupon.issued" if code is not None else "coupon.owed",
        member_id=member_id,
        payload=payload,
        occurred_at=now,
    )
    return _grant(row, True)


async def grant_of(
    conn: asyncpg.Connection, tenant_id: int, member_id: int, source: str
) -> Grant | None:
    """The member's grant for ``source``, or None."""
    row = await conn.fetchrow(
        f"SELECT {GRANT_COLUMNS} FROM coupon_grants WHERE tenant_id = $1 AND member_id = $2 "
        "AND source = $3",
        tenant_id,
        member_id,
        source,
    )
    return _grant(row) if row else None


async def grants_of(conn: asyncpg.Connection, tenant_id: int, member_id: int) -> list[dict]:
    """Every grant of the member (privacy export), oldest first."""
    rows = await conn.fetch(
        f"SELECT source, {GRANT_COLUMNS} FROM coupon_grants WHERE tenant_id = $1 "
        "AND member_id = $2 ORDER BY id",
        tenant_id,
        member_id,
    )
    return [
        {
            "source": r["source"],
            "wheelKey": r["wheel_key"],
            "prizeKey": r["prize_key"],
            "state": r["state"],
            "code": r["code"],
            "reason": r["reason"],
            "grantedAt": r["created_at"].isoformat(),
        }
        for r in rows
    ]
