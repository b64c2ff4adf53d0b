"""Redis view of check-in calendars: one bit per day since the campaign epoch, per member.

Keys: ``<prefix>:{t<tenant>}:ci:<campaign id>:<epoch ordinal>:<member>:cal`` (every checked
day) and ``...:mk`` (the days that were make-ups). The epoch is in the key, so an operator
moving the campaign's start simply leaves the old keys behind and the new ones are seeded
from PostgreSQL on first use.
"""

from __future__ import annotations

from datetime import date

from service.core.context import Context
from service.core.ratelimit import RateCheck


def keys(ctx: Context, tenant_id: int, campaign_id: int, epoch: date, member_id: int) -> list[str]:
    base = ("ci", campaign_id, epoch.toordinal(), member_id)
    return [ctx.keys.tenant(tenant_id, *base, "cal"), ctx.keys.tenant(tenant_id, *base, "mk")]


async def mark(
    ctx: Context,
    tenant_id: int,
    campaign_id: int,
    epoch: date,
    member_id: int,
    offset: int,
    makeup: bool,
    rate: RateCheck | None = None,
) -> int:
    """Set one day's bit (and its make-up bit) before the write that makes it true; returns
    the bits this call turned on (1 the calendar's, 2 the make-up's) for ``unmark``. An
    incomplete calendar (not seeded) gets the calendar bit only and stays incomplete: the
    read path merges it with PostgreSQL (checkin_mark.lua). ``rate``: the request's pending
    rate limit, counted first in the same call (429 RATE_LIMITED, nothing marked)."""
    turned = await ctx.scripts.checkin_mark(
        keys=keys(ctx, tenant_id, campaign_id, epoch, member_id),
        args=[offset, "1" if makeup else "0", "1"],
        rate=rate,
    )
    return int(turned)


async def unmark(
    ctx: Context,
    tenant_id: int,
    campaign_id: int,
    epoch: date,
    member_id: int,
    offset: int,
    bits: int,
) -> None:
    """Clear the bits a mark set (``bits``: 1 the calendar's, 2 the make-up's, 3 both) when
    the write it announced did not commit."""
    await ctx.scripts.checkin_unmark(
        keys=keys(ctx, tenant_id, campaign_id, epoch, member_id), args=[offset, bits]
    )


async def seed(
    ctx: Context,
    tenant_id: int,
    campaign_id: int,
    epoch: date,
    member_id: int,
    calendar: bytes,
    makeups: bytes,
) -> None:
    await ctx.scripts.checkin_seed(
        keys=keys(ctx, tenant_id, campaign_id, epoch, member_id), args=[calendar, makeups]
    )


async def seed_many(
    ctx: Context,
    tenant_id: int,
    campaign_id: int,
    epoch: date,
    items: list[tuple[int, bytes, bytes]],
) -> None:
    """Seed many members' calendars in one pipelined round trip (the rebuild)."""
    async with ctx.redis.pipeline(transaction=False) as pipe:
        for member_id, calendar, makeups in items:
            await ctx.scripts.checkin_seed(
                keys=keys(ctx, tenant_id, campaign_id, epoch, member_id),
                args=[calendar, makeups],
                client=pipe,
            )
        await pipe.execute()


async def read(
    ctx: Context,
    tenant_id: int,
    campaign_id: int,
    epoch: date,
    member_id: int,
    rate: RateCheck | None = None,
) -> tuple[bytes, bytes] | None:
    """(calendar, make-ups) or None when the calendar is not in Redis or incomplete (one of
    its two keys missing: seed it from PostgreSQL, see checkin_mark.lua). ``rate``: the
    request's pending rate limit, sent first in the same pipeline (429 when refused)."""
    ks = keys(ctx, tenant_id, campaign_id, epoch, member_id)
    if rate is None or rate.done:
        cal, mk = await ctx.redis.mget(ks)
    else:
        async with ctx.redis.pipeline(transaction=False) as pipe:
            await rate.queue(pipe)
            # Two GETs, not MGET: redis-py refuses MGET inside a Redis Cluster pipeline (the
            # keys share the tenant's hash tag, so they still go to one node).
            for k in ks:
                pipe.get(k)
            cal, mk = await rate.execute(pipe)
    if cal is None or mk is None:
        return None
    return _bytes(cal), _bytes(mk)


def _bytes(v: bytes | str) -> bytes:
    return v if isinstance(v, bytes) else v.encode("latin-1")


async def delete_campaign(ctx: Context, tenant_id: int, campaign_id: int) -> int:
    """Drop every calendar of a campaign (tests and a clean rebuild)."""
    pattern = ctx.keys.tenant(tenant_id, "ci", campaign_id, "*")
    n = 0
    async for key in ctx.redis.scan_iter(match=pattern, count=1000):
        n += await ctx.redis.delete(key)
    return n
