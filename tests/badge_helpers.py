"""Helpers of the badge and ceremony tests: deliver the outbox fully, define badges, count rows."""

from __future__ import annotations

import asyncio
from typing import Any

SUBSCRIBERS = ("badges", "ceremonies", "leaderboards")


async def deliver(ctx) -> None:  # type: ignore[no-untyped-def]
    """Drain until the badge and ceremony subscribers passed every event, including the ones
    their own handlers emitted (badge.earned -> ceremonies). Other test sessions may share
    the PostgreSQL server, so one drain may not be enough (see the dispatcher's snapshot)."""
    for _ in range(600):
        async with ctx.db.connection() as conn:
            target = await conn.fetchrow(
                "SELECT txid, id FROM outbox ORDER BY txid DESC, id DESC LIMIT 1"
            )
        await ctx.dispatcher.drain(ctx)
        async with ctx.db.connection() as conn:
            curs = await conn.fetch(
                "SELECT last_txid, last_id FROM outbox_cursors WHERE subscriber = ANY($1)",
                list(SUBSCRIBERS),
            )
            latest = await conn.fetchrow(
                "SELECT txid, id FROM outbox ORDER BY txid DESC, id DESC LIMIT 1"
            )
        if target is None:
            return
        done = len(curs) == len(SUBSCRIBERS) and all(
            (c[0], c[1]) >= (latest[0], latest[1]) for c in curs
        )
        if done:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the outbox did not deliver in time")


async def put_badge(client, tenant, key: str, **cfg: Any) -> dict:  # type: ignore[no-untyped-def]
    r = await client.put(f"/admin/v1/badges/{key}", json=cfg, headers=tenant.admin)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def count(ctx, sql: str, *args: Any) -> int:  # type: ignore[no-untyped-def]
    async with ctx.db.connection() as conn:
        return int(await conn.fetchval(sql, *args))
