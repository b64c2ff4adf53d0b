"""GET /v1/me/summary: every field in one call, and a fixed number of statements whatever the
number of campaigns (no N+1): the statements are counted on the connections the call uses."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Any

from tests.ritual_helpers import complete, put_ritual
from tests.test_challenges_api import CHALLENGE
from tests.test_checkins_api import CAMPAIGN
from tests.test_points_api import LADDER
from tests.wheel_helpers import put_wheel, wheel_config


@asynccontextmanager
async def counting(ctx: Any, monkeypatch: Any):  # type: ignore[no-untyped-def]
    """Count every statement sent to PostgreSQL (query logger on each connection handed
    out) and every Redis command, while the block runs."""
    seen: list[str] = []
    original = ctx.db.connection

    @asynccontextmanager
    async def connection():  # type: ignore[no-untyped-def]
        async with original() as conn:
            log = lambda record: seen.append(record.query)  # noqa: E731
            conn.add_query_logger(log)
            try:
                yield conn
            finally:
                conn.remove_query_logger(log)

    redis_calls: list[Any] = []
    real = ctx.redis.execute_command

    async def execute_command(*args: Any, **kw: Any) -> Any:
        redis_calls.append(args[0])
        return await real(*args, **kw)

    monkeypatch.setattr(ctx.db, "connection", connection)
    monkeypatch.setattr(ctx.redis, "execute_command", execute_command)
    try:
        yield seen, redis_calls
    finally:
        monkeypatch.undo()


async def _campaigns(client, tenant, n: int, offset: int = 0) -> None:  # type: ignore[no-untyped-def]
    for i in range(offset, offset + n):
        r = await client.put(
            f"/admin/v1/checkin-campaigns/daily{i}", headers=tenant.admin, json=CAMPAIGN
        )
        assert r.status_code == 200, r.text
        await put_wheel(client, tenant, f"wheel{i}", wheel_config())
        r = await client.put(
            f"/admin/v1/leaderboards/board{i}",
            headers=tenant.admin,
            json={"metric": "points", "period": "weekly"},
        )
        assert r.status_code == 200, r.text
        r = await client.put(
            f"/admin/v1/challenges/ch{i}",
            headers=tenant.admin,
            json={**CHALLENGE, "campaign": f"daily{i}"},
        )
        assert r.status_code == 200, r.text


async def test_summary_has_every_field_in_a_fixed_number_of_statements(
    tenant, client, ctx, monkeypatch
):
    r = await client.put("/admin/v1/levels", headers=tenant.admin, json=LADDER)
    assert r.status_code == 200, r.text
    await put_ritual(client, tenant)
    await _campaigns(client, tenant, 1)
    m = await tenant.login("sum-1")
    r = await client.post("/v1/checkins/daily0", headers=m)
    assert r.status_code == 200, r.text
    s = (await client.get("/v1/me/summary", headers=m)).json()
    assert s["ritual"] == {"status": "notStarted", "next": "covenant"}
    assert s["checkins"] == [
        {
            "key": "daily0",
            "title": "每日签到",
            "today": "2026-11-23",
            "checkedInToday": True,
            "currentStreak": 1,
        }
    ]
    assert s["wheels"] == [
        {
            "key": "wheel0",
            "name": "Lucky wheel 幸运大转盘",
            "freeSpinsLeft": 1,
            "spinsLeftToday": None,
        }
    ]
    assert s["campaigns"] == {
        "checkins": ["daily0"],
        "wheels": ["wheel0"],
        "boards": ["board0"],
        "challenges": ["ch0"],
        "pks": [],
    }
    assert s["balances"]["points"] == 10
    assert s["level"]["name"] == "Bronze"
    assert s["nextLevel"]["name"] == "Silver"
    assert s["nextLevel"]["privileges"][0]["code"] == "free-ship"
    assert s["validity"]["mode"] == "forever"
    assert s["pendingCeremonies"] == 0
    assert s["member"]["memberNo"] is None

    async with counting(ctx, monkeypatch) as (one, redis_one):
        r = await client.get("/v1/me/summary", headers=m)
    assert r.status_code == 200
    await _campaigns(client, tenant, 5, offset=1)
    await client.get("/v1/me/summary", headers=m)  # warm the per-process caches again
    async with counting(ctx, monkeypatch) as (six, redis_six):
        r = await client.get("/v1/me/summary", headers=m)
    assert len(r.json()["campaigns"]["wheels"]) == 6
    assert len(r.json()["checkins"]) == 6
    # The same statements with 1 or 6 campaigns of each kind, and a small budget.
    assert len(six) == len(one), (one, six)
    assert 5 <= len(one) <= 14, one
    assert redis_six == redis_one


async def test_summary_after_the_ritual(tenant, client, ctx):
    await put_ritual(client, tenant)
    m = await tenant.login("sum-2")
    await complete(client, m)
    from tests.badge_helpers import deliver

    await deliver(ctx)
    s = (await client.get("/v1/me/summary", headers=m)).json()
    assert s["ritual"] == {"status": "completed", "next": None}
    assert (s["member"]["memberNo"], s["member"]["memberNumber"]) == (1, "NO.000001")
    assert s["balances"]["points"] == 100
    assert s["pendingCeremonies"] == 1
    assert (await client.get("/v1/me", headers=m)).json()["memberNumber"] == "NO.000001"
