"""Redis lost: every Redis view notices it is missing and is rebuilt from PostgreSQL before it
answers (no `engage rebuild`), never answering empty or partial."""

from __future__ import annotations

import asyncio

import pytest

from service.leaderboards import service as boards
from tests.test_leaderboards import deliver, put_board
from tests.test_points_api import adjust
from tests.wheel_helpers import prize, put_wheel, wheel_config, wheel_id, wins_in_db

pytestmark = pytest.mark.asyncio


async def wipe_run_keys(ctx) -> int:  # type: ignore[no-untyped-def]
    """What a Redis restart without persistence does to this run (the suite shares one Redis:
    only this run's prefix is deleted)."""
    n = 0
    async for k in ctx.redis.scan_iter(match=f"{ctx.keys.prefix}:*", count=1000):
        n += await ctx.redis.delete(k)
    return n


async def test_boards_rebuild_themselves_after_redis_loses_everything(ctx, client, clock, tenant):
    for key, period in (("all", "allTime"), ("week", "weekly")):
        await put_board(client, tenant, key, period=period)
    heads = {}
    for i in range(19):
        ext = f"lost{i:02d}"
        _, heads[i] = await tenant.member(ext)
        clock.advance(seconds=1)
        assert (await adjust(client, tenant, ext, 10 * (19 - i))).status_code == 200
    await deliver(ctx)
    for key in ("all", "week"):
        r = await client.get(f"/v1/leaderboards/{key}", headers=heads[3])
        assert r.json()["me"]["rank"] == 4 and len(r.json()["items"]) == 19

    assert await wipe_run_keys(ctx) > 0
    ctx.caches.clear()  # a fresh process: nothing cached in memory either
    # New activity first: lost03 (160) earns 5; the truth is still rank 4 of 19, not 1 of 1.
    clock.advance(seconds=1)
    assert (await adjust(client, tenant, "lost03", 5)).status_code == 200
    await deliver(ctx)
    for key in ("all", "week"):
        r = await client.get(f"/v1/leaderboards/{key}", headers=heads[3])
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["me"] == {"rank": 4, "score": 165, "gapToPrevious": 5}
        assert [i["score"] for i in body["items"]] == sorted(
            [10 * (19 - i) for i in range(19) if i != 3] + [165], reverse=True
        )
    # Every other read of a wiped set, each first after a wipe.
    checks = {
        "around": lambda k: client.get(
            f"/v1/leaderboards/{k}/around-me", headers=heads[18], params={"radius": 2}
        ),
        "friends": lambda k: client.post(
            f"/v1/leaderboards/{k}/friends",
            headers=heads[10],
            json={"externalIds": ["lost00", "lost18"]},
        ),
        "page2": lambda k: client.get(
            f"/v1/leaderboards/{k}", headers=heads[0], params={"limit": 5, "cursor": "5"}
        ),
    }
    for name, call in checks.items():
        await wipe_run_keys(ctx)
        ctx.caches.clear()
        for key in ("all", "week"):
            r = await call(key)
            assert r.status_code == 200, (name, r.text)
            body = r.json()
            if name == "around":
                assert body["me"]["rank"] == 19
                assert [i["rank"] for i in body["items"]] == [17, 18, 19]
            elif name == "friends":
                assert [i["score"] for i in body["items"]] == [190, 90, 10]
                assert body["me"]["rank"] == 2
            else:
                assert [i["rank"] for i in body["items"]] == [6, 7, 8, 9, 10]
                assert body["me"]["rank"] == 1


async def test_many_readers_of_a_lost_board_share_one_rebuild(ctx, client, clock, tenant):
    await put_board(client, tenant, "crowd", period="allTime")
    heads = []
    for i in range(5):
        _, h = await tenant.member(f"crowd{i}")
        heads.append(h)
        assert (await adjust(client, tenant, f"crowd{i}", 10 + i)).status_code == 200
    await deliver(ctx)
    await wipe_run_keys(ctx)
    ctx.caches.clear()
    before = boards.rebuilt_on_read
    got = await asyncio.gather(
        *[client.get("/v1/leaderboards/crowd", headers=heads[i % 5]) for i in range(50)]
    )
    assert boards.rebuilt_on_read - before == 1
    for i, r in enumerate(got):
        assert r.status_code == 200, r.text
        assert r.json()["me"]["rank"] == 5 - i % 5 and len(r.json()["items"]) == 5


async def test_calendar_and_stock_reload_after_redis_loses_everything(ctx, client, tenant):
    from tests.test_checkins_api import CAMPAIGN

    r = await client.put("/admin/v1/checkin-campaigns/daily", headers=tenant.admin, json=CAMPAIGN)
    assert r.status_code == 200, r.text
    _, h = await tenant.member("cal")
    assert (await client.post("/v1/checkins/daily", headers=h)).status_code == 200
    await put_wheel(
        client,
        tenant,
        "lost",
        wheel_config([prize("big", "physical", 1000, totalStock=3), prize("thanks", "nothing", 1)]),
    )
    _, hw = await tenant.member("spin0")
    assert (await client.post("/v1/wheels/lost/spins", headers=hw)).status_code == 200

    assert await wipe_run_keys(ctx) > 0
    r = await client.get("/v1/checkins/daily", headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["checkedInToday"] is True and r.json()["totalDays"] == 1
    again = await client.post("/v1/checkins/daily", headers=h)
    assert again.status_code != 200 or again.json().get("replayed") is True
    await wipe_run_keys(ctx)
    r = await client.get("/admin/v1/wheels/lost", headers=tenant.admin)
    assert r.status_code == 200, r.text
    big = next(p for p in r.json()["prizes"] if p["key"] == "big")
    wid = await wheel_id(ctx, tenant.id, "lost")
    assert big["remaining"] == 3 - await wins_in_db(ctx, wid, "big")
    for i in range(1, 8):
        _, hw = await tenant.member(f"spin{i}")
        assert (await client.post("/v1/wheels/lost/spins", headers=hw)).status_code == 200
    assert await wins_in_db(ctx, wid, "big") == 3  # all of the stock, and never more
