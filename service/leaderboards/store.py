"""Redis side of boards: period sorted sets, the updated-at hash, and the board scripts.

Keys: ``<prefix>:{t<tenant>:lb:<source>}:b:<boardId>:<periodId>`` where ``source`` is what feeds
the board (``points``, ``growth``, ``checkins``, ``ev:<type>``). Every board fed by the same
events shares the hash tag, so one script call updates all of their periods for a batch of
events, and it stays on one Redis Cluster slot; different sources spread over the cluster.

Every period set is a view of PostgreSQL, and it knows whether it is whole: it holds the
``BUILT`` marker member (score -inf: below everyone, never shown) once built. Redis restarted
empty, an evicted key or a set of an older encoding has no marker; every script that reads or
writes a set checks it in the same call (no extra round trip) and answers ``NotBuilt`` instead
of a silently empty or partial board; the caller rebuilds the period from PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from service.core.context import Context
from service.core.ratelimit import RateCheck

Update = tuple[bytes, float | None]  # (member bytes, encoded score or None to remove)

# The marker of a built set. Bump the version when the encoding changes: sets of the old one
# are then rebuilt on their next read.
BUILT = b"~built:v2"


class NotBuilt(Exception):
    """The period set is missing or incomplete; rebuild it from PostgreSQL, then read again."""


def period_key(ctx: Context, tenant_id: int, source: str, board_id: int, period_id: str) -> str:
    return ctx.keys.tagged(tenant_id, f"lb:{source}", "b", board_id, period_id)


def meta_key(ctx: Context, tenant_id: int, source: str) -> str:
    return ctx.keys.tagged(tenant_id, f"lb:{source}", "upd")


Group = tuple[str, int, bool, Sequence[Update]]  # (key, expire_at, created now, updates)


def _apply_args(now_ms: int, groups: Sequence[Group]) -> list[bytes | str | int]:
    args: list[bytes | str | int] = [now_ms, BUILT]
    for _key, expire_at, create, updates in groups:
        args += [expire_at, int(create), len(updates)]
        for member, encoded in updates:
            args += [member, "" if encoded is None else repr(encoded)]
    return args


async def apply(
    ctx: Context, batches: dict[tuple[int, str], list[Group]], now: datetime
) -> list[str]:
    """Write absolute scores: one script call per (tenant, source) tag, all in one pipeline
    (one network round trip for the whole event batch). Returns the keys skipped as not built
    (their next read rebuilds them from PostgreSQL, which already holds these scores)."""
    if not batches:
        return []
    now_ms = int(now.timestamp() * 1000)
    pipe = ctx.redis.pipeline(transaction=False)
    order = []
    for (tenant_id, source), groups in batches.items():
        keys = [g[0] for g in groups] + [meta_key(ctx, tenant_id, source)]
        order.append(keys)
        await ctx.scripts.lb_apply(keys=keys, args=_apply_args(now_ms, groups), client=pipe)
    replies = await pipe.execute()
    return [keys[int(i) - 1] for keys, skipped in zip(order, replies, strict=True) for i in skipped]


async def forget_updated(ctx: Context, tenant_id: int, source: str, key: str) -> None:
    """A closed period is read from the archive: drop its updated-at field."""
    await ctx.redis.hdel(meta_key(ctx, tenant_id, source), key)


def _checked(reply: Any) -> Any:
    """A script's reply, or NotBuilt when it answered -1 (the set is not built)."""
    if reply == -1:
        raise NotBuilt
    return reply


async def top(
    ctx: Context, tenant_id: int, source: str, key: str, offset: int, limit: int, min_enc: float
) -> tuple[list[tuple[bytes, float]], datetime | None]:
    """Members in rank order from ``offset``, only those at or above the minimum encoded
    score, and when the period was last updated; one round trip. NotBuilt when not built."""
    reply = _checked(
        await ctx.scripts.lb_top(
            keys=[key, meta_key(ctx, tenant_id, source)], args=[BUILT, repr(min_enc), offset, limit]
        )
    )
    raw, flat = reply
    pairs = [(flat[i], float(flat[i + 1])) for i in range(0, len(flat), 2)]
    upd = datetime.fromtimestamp(int(raw) / 1000, UTC) if raw else None
    return pairs, upd


async def me(
    ctx: Context, key: str, member: bytes, rate: RateCheck | None = None
) -> tuple[int, float, float | None] | None:
    """(0-based rank, my encoded score, the encoded score just above me) in one round trip,
    which counts the request's rate limit ``rate`` first (429 when refused); None when I am
    not on the board; NotBuilt when the set is not built."""
    reply = _checked(await ctx.scripts.lb_me(keys=[key], args=[member, BUILT], rate=rate))
    if not reply:
        return None
    rank, score, prev = reply
    return int(rank), float(score), (float(prev) if prev else None)


async def around(
    ctx: Context, key: str, member: bytes, radius: int, rate: RateCheck | None = None
) -> tuple[int, int, list[tuple[bytes, float]]] | None:
    """(my 0-based rank, the slice's first rank, member/encoded pairs) in one round trip,
    the rate limit ``rate`` counted first; None when I am not on the board."""
    reply = _checked(
        await ctx.scripts.lb_around(keys=[key], args=[member, radius, BUILT], rate=rate)
    )
    if not reply:
        return None
    rank, start, flat = reply
    pairs = [(flat[i], float(flat[i + 1])) for i in range(0, len(flat), 2)]
    return int(rank), int(start), pairs


async def scores_of(ctx: Context, key: str, members: Sequence[bytes]) -> list[float | None]:
    reply = _checked(await ctx.scripts.lb_scores(keys=[key], args=[BUILT, *members]))
    return [None if s is None else float(s) for s in reply]


async def is_built(ctx: Context, key: str) -> bool:
    return await ctx.redis.zscore(key, BUILT) is not None


async def build_empty(ctx: Context, key: str, expire_at: int) -> bool:
    """Mark a period with no scores in PostgreSQL built (keeps what a subscriber wrote)."""
    return bool(await ctx.scripts.lb_build_empty(keys=[key], args=[BUILT, expire_at]))


async def replace(
    ctx: Context,
    tenant_id: int,
    source: str,
    key: str,
    entries: Iterable[tuple[bytes, float]],
    expire_at: int,
    now: datetime,
    chunk: int = 5000,
) -> int:
    """Load a period into a scratch key in pipelined chunks, then swap it in atomically (RENAME
    keeps the hash tag, so readers see the old or the new set, never a half-built one)."""
    tmp = f"{key}:rebuild"
    await ctx.redis.delete(tmp)
    count = 0
    buf: dict[bytes, float] = {BUILT: float("-inf")}
    pipe = ctx.redis.pipeline(transaction=False)
    for member, encoded in entries:
        buf[member] = encoded
        count += 1
        if len(buf) >= chunk:
            pipe.zadd(tmp, buf)
            buf = {}
            if len(pipe) >= 20:
                await pipe.execute()
    if buf:
        pipe.zadd(tmp, buf)
    # Always renamed: the marker keeps even an empty period "built".
    # As a raw command: redis-py refuses `pipe.rename` in a Redis Cluster pipeline (it cannot
    # know both keys share a slot; here they do, by the hash tag).
    pipe.execute_command("RENAME", tmp, key)
    if expire_at > 0:
        pipe.expireat(key, expire_at)
    pipe.hset(meta_key(ctx, tenant_id, source), key, int(now.timestamp() * 1000))
    await pipe.execute()
    return count


async def count(ctx: Context, key: str) -> int:
    """Members on the board (the built marker is not one)."""
    n = int(await ctx.redis.zcard(key))
    return n - 1 if await is_built(ctx, key) else n


async def delete(ctx: Context, keys: Sequence[str]) -> None:
    for k in keys:
        await ctx.redis.delete(k)


async def memory_usage(ctx: Context, key: str) -> int:
    return int(await ctx.redis.memory_usage(key, samples=0) or 0)


async def dump(ctx: Context, key: str) -> list[tuple[bytes, float]]:
    """The whole set in rank order (tests and the rebuild check)."""
    got: list[tuple[bytes, float]] = await ctx.redis.zrevrange(  # type: ignore[assignment]
        key, 0, -1, withscores=True
    )
    return [(m, s) for m, s in got if m != BUILT]
