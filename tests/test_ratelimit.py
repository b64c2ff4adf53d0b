"""Rate limits are atomic and exact: 1,000 concurrent requests against a limit of 10 let
exactly 10 pass, and no 60-second window, wherever it starts, holds more than 10 admissions
(issue 9, item 7: starting at second :57 of a minute used to let 12 through)."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime, timedelta

import pytest

from service.app import create_app
from service.core.clock import FixedClock
from service.core.errors import DomainError
from service.core.ratelimit import RateLimiter
from tests.conftest import http_client, make_settings, new_tenant

pytestmark = pytest.mark.asyncio


async def test_member_limit_under_concurrency(servers, ctx, client, clock):
    t = await new_tenant(ctx, client)
    # 1,000 requests start at once in this one event loop, so a request can wait well over a
    # second for CPU before it reaches Redis; with the default 1 s Redis timeout a loaded box
    # turned hundreds of them into 503s. This test is about atomicity, not latency: a long
    # timeout makes every answer a real limiter verdict.
    app = create_app(
        make_settings(servers, rate_member_per_min=10, redis_timeout_s=30),
        clock=clock,
        background=False,
    )
    async with http_client(app) as c:
        headers = await t.__class__(t.id, t.slug, t.api_key, t.app_id, c).login("limited")
        rs = await asyncio.gather(*[c.get("/v1/me", headers=headers) for _ in range(1000)])
    ok = [r for r in rs if r.status_code == 200]
    limited = [r for r in rs if r.status_code == 429]
    assert {r.status_code for r in rs} <= {200, 429}
    assert len(ok) == 10
    assert len(limited) == 1000 - len(ok)
    assert limited[0].json()["error"]["code"] == "RATE_LIMITED"
    assert int(limited[0].headers["retry-after"]) >= 1


async def test_ip_limit(servers, ctx, client, clock):
    t = await new_tenant(ctx, client)
    app = create_app(
        # 50 limiter calls at once through a 128-connection pool: on a loaded box one may wait
        # past the default 1 s for Redis and answer 503; this test judges the limit.
        make_settings(
            servers, rate_ip_per_min=5, redis_prefix="tip" + t.slug[-6:], redis_timeout_s=30
        ),
        clock=clock,
        background=False,
    )
    async with http_client(app) as c:
        rs = await asyncio.gather(*[c.get("/v1/me") for _ in range(50)])
    # Unauthenticated calls count against the IP too: 5 reach auth (401), the rest are 429.
    codes = sorted(r.status_code for r in rs)
    assert codes == [401] * 5 + [429] * 45, codes


def _minute(second: float) -> datetime:
    return datetime(2026, 11, 23, 12, 0, tzinfo=UTC) + timedelta(seconds=second)


@pytest.mark.parametrize("start", [57, 3])
async def test_member_limit_is_exact_across_the_minute_boundary(servers, ctx, client, start):
    """1,000 concurrent requests at second :57 (or :03), then 1,000 more a few seconds into
    the next minute: 10 in all, because [start, start + 60 s) is one window. One window later
    the next 10 pass; a millisecond earlier none does."""
    clock = FixedClock(_minute(start))
    t = await new_tenant(ctx, client)
    app = create_app(
        make_settings(servers, rate_member_per_min=10, redis_timeout_s=30),
        clock=clock,
        background=False,
    )

    async def burst(n: int) -> tuple[list, int]:
        rs = await asyncio.gather(*[c.get("/v1/me", headers=headers) for _ in range(n)])
        assert {r.status_code for r in rs} <= {200, 429}
        return [r for r in rs if r.status_code == 429], sum(r.status_code == 200 for r in rs)

    async with http_client(app) as c:
        headers = await t.__class__(t.id, t.slug, t.api_key, t.app_id, c).login("edge")
        _, first = await burst(1000)
        assert first == 10
        clock.set(_minute(start + 6))  # :03 of the next minute (or :09)
        limited, second = await burst(1000)
        assert second == 0
        # Retry-After names the moment the first admission leaves the window: 54 s.
        assert {r.headers["retry-after"] for r in limited} == {"54"}
        clock.set(_minute(start + 60) - timedelta(milliseconds=1))
        assert (await burst(50))[1] == 0
        clock.set(_minute(start + 60))
        assert (await burst(50))[1] == 10


async def test_any_window_holds_at_most_the_limit_and_no_fewer_than_it_may(ctx):
    """Bursts of concurrent requests every 1.7 s for three minutes against real Redis: no
    60-second window holds more than the limit, and every burst admits exactly what an ideal
    log allows (the limit is not stricter than promised either)."""
    clock = FixedClock(_minute(50))
    limiter = RateLimiter(ctx.redis, ctx.scripts, ctx.settings.redis_prefix, clock)
    tag, limit, window = "sweep" + secrets.token_hex(4), 10, timedelta(seconds=60)
    admitted: list[datetime] = []

    async def one() -> bool:
        try:
            await limiter.check(tag, (limit, "m"))
            return True
        except DomainError as e:
            assert e.code == "RATE_LIMITED"
            return False

    for step in range(110):
        now = _minute(50) + timedelta(seconds=1.7 * step)
        clock.set(now)
        room = limit - sum(now - window < a <= now for a in admitted)
        got = sum(await asyncio.gather(*[one() for _ in range(7)]))
        assert got == min(7, room), (step, got, room)
        admitted += [now] * got
    assert len(admitted) > 3 * limit
    for a in admitted:  # the fullest window starts at an admission
        assert sum(a <= b < a + window for b in admitted) <= limit


async def test_member_and_ip_limits_in_one_round_trip_count_all_or_nothing(ctx):
    clock = FixedClock(_minute(57))
    limiter = RateLimiter(ctx.redis, ctx.scripts, ctx.settings.redis_prefix, clock)
    tag = "t" + secrets.token_hex(4)
    calls = 0
    evalsha = ctx.redis.evalsha

    async def counting(*args):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        return await evalsha(*args)

    limiter.client = type("C", (), {"evalsha": staticmethod(counting)})()
    limiter.script.sha = limiter.script.sha or await ctx.redis.script_load(limiter.script.script)
    # IP limit 5 shared by two members with a member limit of 3 each.
    for _ in range(3):
        await limiter.check(tag, (5, "ip:1.2.3.4"), (3, "m:1"))
    with pytest.raises(DomainError) as err:
        await limiter.check(tag, (5, "ip:1.2.3.4"), (3, "m:1"))
    assert err.value.details == {"limit": 3, "window": "1m"}
    for _ in range(2):
        await limiter.check(tag, (5, "ip:1.2.3.4"), (3, "m:2"))
    with pytest.raises(DomainError) as err:  # the IP is full; member 2 still had room
        await limiter.check(tag, (5, "ip:1.2.3.4"), (3, "m:2"))
    assert err.value.details == {"limit": 5, "window": "1m"}
    assert calls == 7  # one EVALSHA per request, both limits in it
    ip_key = limiter.key(tag, "ip:1.2.3.4")
    assert await ctx.redis.zcard(ip_key) == 5  # refusals recorded nothing
    assert await ctx.redis.zcard(limiter.key(tag, "m:1")) == 3
    assert await ctx.redis.zcard(limiter.key(tag, "m:2")) == 2
    assert "{" + tag + "}" in ip_key and "{" + tag + "}" in limiter.key(tag, "m:1")
    assert 0 < await ctx.redis.pttl(ip_key) <= 61_000
