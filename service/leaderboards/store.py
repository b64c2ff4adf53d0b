"""Redis side of boards: period sorted sets, the updated-at hash, and the board scripts.

Keys: ``<prefix>:{t<tenant>:lb:<source>}:b:<boardId>:<periodId>`` where ``source`` is what feeds
the board (``points``, ``growth``, ``checkins``, ``ev:<type>``). Every board fed by the same
events shares the hash tag, so one script call updates all of their periods for a batch of
events, and it stays on one Redis Cluster slot; different sources spread over the cluster.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from service.core.context import Context

Update = tuple[bytes, int | None]  # (member bytes, encoded score or None to remove)


def period_key(ctx: Context, tenant_id: int, source: str, board_id: int, period_id: str) -> str:
    return ctx.keys.tagged(tenant_id, f"lb:{source}", "b", board_id, period_id)


def meta_key(ctx: Context, tenant_id: int, source: str) -> str:
    return ctx.keys.tagged(tenant_id, f"lb:{source}", "upd")


def _apply_args(
    now_ms: int, groups: Sequence[tuple[str, int, Sequence[Update]]]
) -> list[bytes | str | int]:
    args: list[bytes | str | int] = [now_ms]
    for _key, expire_at, updates in groups:
        args += [expire_at, len(updates)]
        for member, encoded in updates:
            args += [member, "" if encoded is None else str(encoded)]
    return args


async def apply(
    ctx: Context,
    batches: dict[tuple[int, str], list[tuple[str, int, list[Update]]]],
    now: datetime,
) -> None:
    """Write absolute scores: one script call per (tenant, source) tag, all in one pipeline
    (one network round trip for the whole event batch)."""
    if not batches:
        return
    now_ms = int(now.timestamp() * 1000)
    pipe = ctx.redis.pipeline(transaction=False)
    for (tenant_id, source), groups in batches.items():
        keys = [k for k, _, _ in groups] + [meta_key(ctx, tenant_id, source)]
        await ctx.scripts.lb_apply(keys=keys, args=_apply_args(now_ms, groups), client=pipe)
    await pipe.execute()


async def updated_at(ctx: Context, tenant_id: int, source: str, key: str) -> datetime | None:
    raw = await ctx.redis.hget(meta_key(ctx, tenant_id, source), key)
    return datetime.fromtimestamp(int(raw) / 1000, UTC) if raw else None


async def forget_updated(ctx: Context, tenant_id: int, source: str, key: str) -> None:
    """A closed period is read from the archive: drop its updated-at field."""
    await ctx.redis.hdel(meta_key(ctx, tenant_id, source), key)


async def top(
    ctx: Context, key: str, offset: int, limit: int, min_encoded: int
) -> list[tuple[bytes, float]]:
    """Members in rank order from ``offset``, only those at or above the minimum score."""
    return await ctx.redis.zrevrangebyscore(  # type: ignore[return-value]  # bytes with withscores
        key, "+inf", min_encoded, start=offset, num=limit, withscores=True
    )


async def me(ctx: Context, key: str, member: bytes) -> tuple[int, float, float | None] | None:
    """(0-based rank, my encoded score, the encoded score just above me) in one round trip."""
    reply = await ctx.scripts.lb_me(keys=[key], args=[member])
    if not reply:
        return None
    rank, score, prev = reply
    return int(rank), float(score), (float(prev) if prev else None)


async def around(
    ctx: Context, key: str, member: bytes, radius: int
) -> tuple[int, int, list[tuple[bytes, float]]] | None:
    reply = await ctx.scripts.lb_around(keys=[key], args=[member, radius])
    if not reply:
        return None
    rank, start, flat = reply
    pairs = [(flat[i], float(flat[i + 1])) for i in range(0, len(flat), 2)]
    return int(rank), int(start), pairs


async def scores_of(ctx: Context, key: str, members: Sequence[bytes]) -> list[float | None]:
    if not members:
        return []
    return await ctx.redis.zmscore(key, list(members))  # type: ignore[arg-type]  # bytes members


async def replace(
    ctx: Context,
    tenant_id: int,
    source: str,
    key: str,
    entries: Iterable[tuple[bytes, int]],
    expire_at: int,
    now: datetime,
    chunk: int = 5000,
) -> int:
    """Load a period into a scratch key in pipelined chunks, then swap it in atomically (RENAME
    keeps the hash tag, so readers see the old or the new set, never a half-built one)."""
    tmp = f"{key}:rebuild"
    await ctx.redis.delete(tmp)
    count = 0
    buf: dict[bytes, int] = {}
    pipe = ctx.redis.pipeline(transaction=False)
    for member, encoded in entries:
        buf[member] = encoded
        if len(buf) >= chunk:
            pipe.zadd(tmp, buf)
            count += len(buf)
            buf = {}
            if len(pipe) >= 20:
                await pipe.execute()
    if buf:
        pipe.zadd(tmp, buf)
        count += len(buf)
    if count:
        pipe.rename(tmp, key)
        if expire_at > 0:
            pipe.expireat(key, expire_at)
    else:
        pipe.delete(key)
    pipe.hset(meta_key(ctx, tenant_id, source), key, int(now.timestamp() * 1000))
    await pipe.execute()
    return count


async def count(ctx: Context, key: str) -> int:
    return int(await ctx.redis.zcard(key))


async def delete(ctx: Context, keys: Sequence[str]) -> None:
    for k in keys:
        await ctx.redis.delete(k)


async def memory_usage(ctx: Context, key: str) -> int:
    return int(await ctx.redis.memory_usage(key, samples=0) or 0)


async def dump(ctx: Context, key: str) -> list[tuple[bytes, float]]:
    """The whole set in rank order (tests and the rebuild check)."""
    return await ctx.redis.zrevrange(key, 0, -1, withscores=True)  # type: ignore[return-value]
