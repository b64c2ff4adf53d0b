"""The rate limit folded into a request's own Redis call: a folding script counts the member
and IP limits first and runs its body only when admitted (one round trip, nothing taken when
refused); a read pipeline may carry the check as its first command. Same sliding-window
semantics and 429 as RateLimiter.check (tests/test_ratelimit.py)."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime, timedelta

import pytest

from service.core.clock import FixedClock
from service.core.errors import DomainError
from service.core.ratelimit import RateLimiter
from service.core.redis import is_cluster

pytestmark = pytest.mark.asyncio

NOW = datetime(2026, 11, 23, 12, 0, 57, tzinfo=UTC)


def _limiter(ctx) -> tuple[RateLimiter, FixedClock]:  # type: ignore[no-untyped-def]
    clock = FixedClock(NOW)
    return RateLimiter(ctx.redis, ctx.scripts, ctx.settings.redis_prefix, clock), clock


async def test_a_folding_script_counts_first_and_takes_nothing_when_refused(ctx):
    limiter, clock = _limiter(ctx)
    tenant = 900_000 + secrets.randbelow(99_999)
    tag = f"t{tenant}"
    cal, mk = ctx.keys.tenant(tenant, "ci", 1, "cal"), ctx.keys.tenant(tenant, "ci", 1, "mk")
    await ctx.redis.setbit(cal, 0, 1)  # a calendar exists: marking answers 1
    calls = 0
    real = ctx.redis.execute_command

    async def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        return await real(*args, **kwargs)

    ctx.redis.execute_command = counting
    try:
        for day in (1, 2, 3):
            rate = limiter.pending(tag, (5, "ip:1.2.3.4"), (3, "m:1"))
            marked = await ctx.scripts.checkin_mark(keys=[cal, mk], args=[day, "0"], rate=rate)
            assert marked == 1 and rate.done
            # A retry of the same script in the same request does not count it again.
            assert await ctx.scripts.checkin_mark(keys=[cal, mk], args=[day, "0"], rate=rate)
        rate = limiter.pending(tag, (5, "ip:1.2.3.4"), (3, "m:1"))
        with pytest.raises(DomainError) as err:
            await ctx.scripts.checkin_mark(keys=[cal, mk], args=[9, "1"], rate=rate)
    finally:
        ctx.redis.execute_command = real
    assert err.value.code == "RATE_LIMITED"
    assert err.value.details == {"limit": 3, "window": "1m"}
    assert err.value.headers == {"Retry-After": "60"}
    assert calls == 7  # one call per script call: the limits rode in the first of each request
    # Refused: the body did not run (day 9 not marked, no make-up), nothing recorded.
    assert await ctx.redis.getbit(cal, 9) == 0 and await ctx.redis.getbit(mk, 9) == 0
    assert [await ctx.redis.getbit(cal, d) for d in (1, 2, 3)] == [1, 1, 1]
    assert await ctx.redis.zcard(limiter.key(tag, "m:1")) == 3
    assert await ctx.redis.zcard(limiter.key(tag, "ip:1.2.3.4")) == 3
    # Without a check the body runs alone (the args layout is the script's own).
    assert await ctx.scripts.checkin_mark(keys=[cal, mk], args=[9, "1"]) == 1
    assert await ctx.redis.getbit(mk, 9) == 1
    # One window later the member has room again.
    clock.set(NOW + timedelta(seconds=60))
    rate = limiter.pending(tag, (5, "ip:1.2.3.4"), (3, "m:1"))
    assert await ctx.scripts.checkin_mark(keys=[cal, mk], args=[10, "0"], rate=rate) == 1


async def test_a_fold_across_slots_is_one_call_on_one_redis_two_on_a_cluster(ctx):
    """A board's keys carry their own hash tag: on a single Redis the limits still ride in
    the board's script; on a cluster they are counted in a call of their own first."""
    limiter, _ = _limiter(ctx)
    tenant = 900_000 + secrets.randbelow(99_999)
    board = ctx.keys.tagged(tenant, "lb:points", "b", 1, "all")
    real = ctx.redis.execute_command
    seen: list[str] = []

    async def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(str(args[0]))
        return await real(*args, **kwargs)

    ctx.redis.execute_command = counting
    try:
        for _ in range(2):
            rate = limiter.pending(f"t{tenant}", (100, "ip:1.2.3.4"), (2, "m:7"))
            got = await ctx.scripts.lb_me(keys=[board], args=[b"\x00" * 6, b"~built:v2"], rate=rate)
            assert got == -1  # not built: the body ran
        rate = limiter.pending(f"t{tenant}", (100, "ip:1.2.3.4"), (2, "m:7"))
        with pytest.raises(DomainError):
            await ctx.scripts.lb_me(keys=[board], args=[b"\x00" * 6, b"~built:v2"], rate=rate)
    finally:
        ctx.redis.execute_command = real
    # The member limit of 2 admitted the first two requests only.
    assert await ctx.redis.zcard(limiter.key(f"t{tenant}", "m:7")) == 2
    assert len(seen) == (3 if not is_cluster(ctx.redis) else 5)


async def test_the_check_as_the_first_command_of_a_read_pipeline(ctx):
    limiter, _ = _limiter(ctx)
    tag = "t" + secrets.token_hex(4)
    key = ctx.keys.global_("fold-test", secrets.token_hex(4))
    await ctx.redis.set(key, "v")
    for _ in range(2):
        rate = limiter.pending(tag, (2, "m:1"))
        pipe = ctx.redis.pipeline(transaction=False)
        await rate.queue(pipe)
        pipe.get(key)
        pipe.strlen(key)
        assert await rate.execute(pipe) == [b"v", 1]
    rate = limiter.pending(tag, (2, "m:1"))
    pipe = ctx.redis.pipeline(transaction=False)
    await rate.queue(pipe)
    pipe.get(key)
    with pytest.raises(DomainError) as err:
        await rate.execute(pipe)
    assert err.value.code == "RATE_LIMITED" and err.value.details["limit"] == 2
    assert await ctx.redis.zcard(limiter.key(tag, "m:1")) == 2


async def test_a_member_route_folds_its_limit_and_counts_what_never_reached_redis(
    servers, ctx, client, clock
):
    """GET /v1/pks/{key} (a MemberRequest route): with a member limit of 4, the live read
    carries the check in its one script call; a 404 that never reached Redis is counted on
    the way out; the fifth request of the minute is 429 with Retry-After, concurrency or not."""
    from service.app import create_app
    from tests.conftest import http_client, make_settings, new_tenant
    from tests.test_pks_api import put_pk, two_stores, window

    t = await new_tenant(ctx, client)
    app = create_app(
        make_settings(servers, rate_member_per_min=4, redis_timeout_s=30),
        clock=clock,
        background=False,
    )
    async with http_client(app) as c:
        tc = t.__class__(t.id, t.slug, t.api_key, t.app_id, c)
        await two_stores(c, tc, 1)
        await put_pk(
            c, tc, "fold", name="fold", teams=["east", "west"], metric="points", **window(5)
        )
        headers = await tc.login("a0")
        assert (await c.get("/v1/pks/fold", headers=headers)).status_code == 200
        assert (await c.get("/v1/pks/nope", headers=headers)).status_code == 404
        rs = await asyncio.gather(*[c.get("/v1/pks/fold", headers=headers) for _ in range(20)])
        assert sorted(r.status_code for r in rs) == [200, 200] + [429] * 18
        limited = next(r for r in rs if r.status_code == 429)
        assert limited.json()["error"]["code"] == "RATE_LIMITED"
        assert int(limited.headers["retry-after"]) >= 1
        r = await c.get("/v1/pks/nope", headers=headers)
        assert r.status_code == 429  # counted on its own on the way out, and refused
        assert (await c.get("/v1/pks/fold")).status_code == 401  # no token: the IP limit only
