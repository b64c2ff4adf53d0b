"""Shared helpers of the wheel tests: configs, operator calls, bulk members, DB reads."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from service.core.context import Context

STARTS = datetime(2026, 11, 1, tzinfo=UTC)
ENDS = datetime(2026, 12, 31, tzinfo=UTC)


def prize(key: str, kind: str = "nothing", weight: int = 1, **kw: Any) -> dict[str, Any]:
    p = {"key": key, "name": kw.pop("name", key), "kind": kind, "weight": weight}
    p.update(kw)
    return p


def wheel_config(prizes: list[dict[str, Any]] | None = None, **kw: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "name": "Lucky wheel 幸运大转盘",
        "startsAt": STARTS.isoformat(),
        "endsAt": ENDS.isoformat(),
        "state": "live",
        "freeSpinsPerDay": 1,
        "consolationPrize": "thanks",
        "prizes": prizes
        or [
            prize("big", "physical", 1, totalStock=1),
            prize("pts", "points", 30, value=10),
            prize("thanks", "nothing", 69),
        ],
    }
    cfg.update(kw)
    return cfg


async def put_wheel(client, tenant, key: str, cfg: dict[str, Any], status: int = 200):  # type: ignore[no-untyped-def]
    r = await client.put(f"/admin/v1/wheels/{key}", headers=tenant.admin, json=cfg)
    assert r.status_code == status, r.text
    return r.json()


async def bulk_members(ctx: Context, tenant_id: int, n: int, prefix: str = "m") -> list[int]:
    """Members created in one statement (the race tests need thousands)."""
    async with ctx.db.connection() as conn:
        rows = await conn.fetch(
            "INSERT INTO members (tenant_id, external_id, nickname, avatar_url, created_at) "
            "SELECT $1, $2 || g::text, '', '', now() FROM generate_series(1, $3) AS g "
            "RETURNING id",
            tenant_id,
            prefix,
            n,
        )
    return [r["id"] for r in rows]


async def wheel_id(ctx: Context, tenant_id: int, key: str) -> int:
    async with ctx.db.connection() as conn:
        return await conn.fetchval(  # type: ignore[no-any-return]
            "SELECT id FROM wheels WHERE tenant_id = $1 AND key = $2", tenant_id, key
        )


async def wins_in_db(ctx: Context, wid: int, prize_key: str) -> int:
    async with ctx.db.connection() as conn:
        return await conn.fetchval(  # type: ignore[no-any-return]
            "SELECT count(*) FROM wheel_draws WHERE wheel_id = $1 AND prize_key = $2",
            wid,
            prize_key,
        )
