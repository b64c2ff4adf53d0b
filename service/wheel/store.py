"""Redis side of the wheel: the stock hash per wheel and the scripts that draw from it."""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from service.core.context import Context
from service.core.ratelimit import RateCheck
from service.wheel.rules import Drawn as Drawn  # the draw's result, a pure value (re-exported)
from service.wheel.rules import PrizeTable


def stock_key(ctx: Context, tenant_id: int, wheel_id: int) -> str:
    # The wheel's own hash tag: a hot wheel sits on its own cluster slot, not its tenant's.
    return ctx.keys.tagged(tenant_id, f"wheel:{wheel_id}", "stock")


def load_lock_key(ctx: Context, tenant_id: int, wheel_id: int) -> str:
    return ctx.keys.tagged(tenant_id, f"wheel:{wheel_id}", "loading")


def total_field(prize_key: str) -> str:
    return f"i:{prize_key}"


def daily_field(day: str, prize_key: str) -> str:
    return f"d:{day}:{prize_key}"


NOT_LOADED = "NOT_LOADED"
EXHAUSTED = "EXHAUSTED"


async def draw(
    ctx: Context,
    tenant_id: int,
    wheel_id: int,
    table: PrizeTable,
    day: str,
    pity_due: bool,
    words: Sequence[int],
    blocked: Sequence[bool],
    rate: RateCheck | None = None,
) -> Drawn | str:
    """Run wheel_draw.lua: pick among what is in stock and take it, in one step. ``rate``:
    the request's pending rate limit, counted first in the same call (429 RATE_LIMITED and
    nothing taken when refused; on a Redis Cluster a call of its own first, the limit's and
    the wheel's keys having different hash tags: see service.core.redis)."""
    args: list[str | int] = [
        day,
        table.out_of_stock,
        table.consolation + 1,
        1 if pity_due else 0,
        len(words),
        *words,
        len(table.prizes),
    ]
    for i, p in enumerate(table.prizes):
        args += [
            p.key,
            p.weight,
            -1 if p.total is None else p.total,
            -1 if p.daily is None else p.daily,
            1 if i in table.pity else 0,
            1 if blocked[i] else 0,
        ]
    res = await ctx.scripts.wheel_draw(
        keys=[stock_key(ctx, tenant_id, wheel_id)], args=args, rate=rate
    )
    status = res[0].decode() if isinstance(res[0], bytes) else res[0]
    if status != "OK":
        return str(status)
    limited = [p.limited for p in table.prizes]
    epoch = res[5].decode() if isinstance(res[5], bytes) else str(res[5])
    return Drawn(
        index=int(res[1]) - 1,
        word_index=int(res[2]),
        value=int(res[3]) if int(res[2]) >= 0 else None,
        weight_total=int(res[4]),
        epoch=epoch,
        fallback=bool(int(res[6])),
        forced=bool(int(res[7])),
        remaining=[int(v) if limited[i] else None for i, v in enumerate(res[8:])],
    )


async def give_back(
    ctx: Context,
    tenant_id: int,
    wheel_id: int,
    epoch: str,
    total_field_name: str,
    daily_field_name: str,
) -> bool:
    got = await ctx.scripts.wheel_give_back(
        keys=[stock_key(ctx, tenant_id, wheel_id)],
        args=[epoch, total_field_name, daily_field_name],
    )
    return bool(got)


async def mark_out(ctx: Context, tenant_id: int, wheel_id: int, field: str, limit: int) -> None:
    await ctx.scripts.wheel_mark_out(
        keys=[stock_key(ctx, tenant_id, wheel_id)], args=[field, limit]
    )


async def load(
    ctx: Context, tenant_id: int, wheel_id: int, counts: dict[str, int]
) -> tuple[str, int]:
    """Replace the hash with ``counts`` (field -> wins) under a fresh epoch."""
    epoch = secrets.token_hex(8)
    args: list[str | int] = [epoch]
    for field, n in counts.items():
        args += [field, n]
    n = await ctx.scripts.wheel_load(keys=[stock_key(ctx, tenant_id, wheel_id)], args=args)
    return epoch, int(n)


async def try_load_lock(ctx: Context, tenant_id: int, wheel_id: int) -> bool:
    """One process reloads a lost hash; the others wait for it (a stampede at 00:00 would
    otherwise run the same PostgreSQL count thousands of times)."""
    return bool(await ctx.redis.set(load_lock_key(ctx, tenant_id, wheel_id), "1", nx=True, px=2000))


async def release_load_lock(ctx: Context, tenant_id: int, wheel_id: int) -> None:
    await ctx.redis.delete(load_lock_key(ctx, tenant_id, wheel_id))


async def counts(ctx: Context, tenant_id: int, wheel_id: int) -> dict[str, int] | None:
    """The hash as stored (None when not loaded): for operators and tests."""
    raw = await ctx.redis.hgetall(stock_key(ctx, tenant_id, wheel_id))
    if not raw or b"_epoch" not in raw:
        return None
    return {
        (k.decode() if isinstance(k, bytes) else k): int(v)
        for k, v in raw.items()
        if k != b"_epoch"
    }


async def drop(ctx: Context, tenant_id: int, wheel_id: int) -> None:
    await ctx.redis.delete(stock_key(ctx, tenant_id, wheel_id))
