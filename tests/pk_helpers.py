"""Helpers of the team and PK tests: teams, PKs, events, delivery."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from service.core import outbox

SUBSCRIBERS = ("pks", "ceremonies", "badges", "leaderboards")


async def deliver(ctx) -> None:  # type: ignore[no-untyped-def]
    """Drain until the PK, ceremony, badge and board subscribers passed every event (other
    sessions may share the PostgreSQL server, so one drain may not be enough)."""
    for _ in range(600):
        await ctx.dispatcher.drain(ctx)
        async with ctx.db.connection() as conn:
            curs = await conn.fetch(
                "SELECT last_txid, last_id FROM outbox_cursors WHERE subscriber = ANY($1)",
                list(SUBSCRIBERS),
            )
            latest = await conn.fetchrow(
                "SELECT txid, id FROM outbox ORDER BY txid DESC, id DESC LIMIT 1"
            )
        if latest is None or (
            len(curs) == len(SUBSCRIBERS)
            and all((c[0], c[1]) >= (latest[0], latest[1]) for c in curs)
        ):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the outbox did not deliver in time")


async def put_team(client, tenant, key: str, **cfg: Any) -> dict:  # type: ignore[no-untyped-def]
    body = {"name": key.upper(), "kind": "store", "teamSet": "stores", **cfg}
    r = await client.put(f"/admin/v1/teams/{key}", json=body, headers=tenant.admin)
    assert r.status_code == 200, r.text
    return r.json()


async def add_members(client, tenant, key: str, ext_ids: list[str], move: bool = False) -> dict:  # type: ignore[no-untyped-def]
    r = await client.post(
        f"/admin/v1/teams/{key}/members",
        json={"add": ext_ids, "move": move},
        headers=tenant.admin,
    )
    assert r.status_code == 200, r.text
    return r.json()


async def put_pk(client, tenant, key: str, **cfg: Any) -> dict:  # type: ignore[no-untyped-def]
    r = await client.put(f"/admin/v1/pks/{key}", json=cfg, headers=tenant.admin)
    assert r.status_code == 200, r.text
    return r.json()


async def credit_event(ctx, tenant_id: int, member_id: int, amount: int, at: datetime) -> None:  # type: ignore[no-untyped-def]
    async with ctx.db.transaction() as conn:
        await outbox.emit(
            conn,
            tenant_id=tenant_id,
            type="points.credited",
            member_id=member_id,
            payload={"currency": "points", "amount": amount, "entryId": 1, "reason": "test"},
            occurred_at=at,
        )


async def member_ids(ctx, tenant_id: int, ext_ids: list[str]) -> dict[str, int]:  # type: ignore[no-untyped-def]
    async with ctx.db.connection() as conn:
        rows = await conn.fetch(
            "SELECT external_id, id FROM members WHERE tenant_id = $1 AND external_id = ANY($2)",
            tenant_id,
            ext_ids,
        )
    return {r["external_id"]: r["id"] for r in rows}
