"""Redis side of team PKs: team totals, per-team contribution sets and a meta hash.

Keys share the hash tag ``{t<tenant>:pk:<pkId>}`` (one Redis Cluster slot per PK, so the write
and the read are single scripts): ``...:t`` (zset team id -> total), ``...:m`` (hash: ``built``,
``upd`` ms, ``r:<team>`` the team's reach time in ms) and ``...:c:<teamId>`` (zset member bytes
-> the boards' rank score: contribution, then earlier reach). The ``built`` field says the view
is whole; without it (Redis lost, evicted) writes are skipped and the next read rebuilds the
PK from PostgreSQL (``service.rebuild_pk``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from service.core.context import Context
from service.core.ratelimit import RateCheck


class NotBuilt(Exception):
    """The PK's view is missing or partial: rebuild it from PostgreSQL, then read again."""


def _tag(pk_id: int) -> str:
    return f"pk:{pk_id}"


def totals_key(ctx: Context, tenant_id: int, pk_id: int) -> str:
    return ctx.keys.tagged(tenant_id, _tag(pk_id), "t")


def meta_key(ctx: Context, tenant_id: int, pk_id: int) -> str:
    return ctx.keys.tagged(tenant_id, _tag(pk_id), "m")


def contrib_key(ctx: Context, tenant_id: int, pk_id: int, team_id: int) -> str:
    return ctx.keys.tagged(tenant_id, _tag(pk_id), "c", team_id)


def _ms(at: datetime | None) -> int:
    return 0 if at is None else int(at.timestamp() * 1000)


@dataclass
class Write:
    """One PK's changes: absolute team totals and member contributions."""

    tenant_id: int
    pk_id: int
    expire_at: int
    teams: list[tuple[int, int, datetime | None]]  # team, total, reached at
    contribs: dict[int, list[tuple[bytes, float | None]]]  # team -> (member, score or None)


async def apply(ctx: Context, writes: Sequence[Write], now: datetime) -> list[int]:
    """All PKs' writes in one pipeline (one round trip); returns the PK ids skipped as not
    built."""
    if not writes:
        return []
    pipe = ctx.redis.pipeline(transaction=False)
    for w in writes:
        keys = [totals_key(ctx, w.tenant_id, w.pk_id), meta_key(ctx, w.tenant_id, w.pk_id)]
        args: list[int | str | bytes] = [_ms(now), w.expire_at, len(w.teams)]
        for team, total, reached in w.teams:
            args += [team, total, _ms(reached)]
        for team, items in w.contribs.items():
            keys.append(contrib_key(ctx, w.tenant_id, w.pk_id, team))
            args.append(len(items))
            for member, score in items:
                args += [member, "" if score is None else repr(score)]
        await ctx.scripts.pk_apply(keys=keys, args=args, client=pipe)
    replies = await pipe.execute()
    return [w.pk_id for w, r in zip(writes, replies, strict=True) if int(r) == 0]


@dataclass
class View:
    totals: dict[int, int]
    reached: dict[int, datetime | None]
    updated_at: datetime | None
    top: list[list[tuple[bytes, float]]]  # per team, in the order asked
    counts: list[int]
    my_rank: int | None  # 0-based
    my_score: float | None


def _at(ms: bytes | str | None) -> datetime | None:
    if not ms or int(ms) == 0:
        return None
    return datetime.fromtimestamp(int(ms) / 1000, UTC)


def _read_keys(ctx: Context, tenant_id: int, pk_id: int, team_ids: Sequence[int]) -> list[str]:
    keys = [totals_key(ctx, tenant_id, pk_id), meta_key(ctx, tenant_id, pk_id)]
    return keys + [contrib_key(ctx, tenant_id, pk_id, t) for t in team_ids]


def _place(rank: Any, score: Any) -> tuple[int | None, float | None]:
    return (None if rank is None else int(rank)), (None if score is None else float(score))


async def read(
    ctx: Context,
    tenant_id: int,
    pk_id: int,
    team_ids: Sequence[int],
    top: int,
    my_team: int | None,
    member: bytes,
    rate: RateCheck | None = None,
) -> View:
    """The whole scoreboard and my place in one script call (which counts the request's rate
    limit first: 429 when refused); NotBuilt when not built."""
    mine = team_ids.index(my_team) + 1 if my_team in team_ids else 0
    reply = await ctx.scripts.pk_read(
        keys=_read_keys(ctx, tenant_id, pk_id, team_ids), args=[top, mine, member, 1], rate=rate
    )
    if reply == -1:
        raise NotBuilt
    flat_totals, flat_meta, per, rank, score = reply
    totals = {
        int(flat_totals[i]): int(float(flat_totals[i + 1])) for i in range(0, len(flat_totals), 2)
    }
    meta = {flat_meta[i].decode(): flat_meta[i + 1] for i in range(0, len(flat_meta), 2)}
    reached = {t: _at(meta.get(f"r:{t}")) for t in team_ids}
    tops = [[(items[i], float(items[i + 1])) for i in range(0, len(items), 2)] for items, _ in per]
    my_rank, my_score = _place(rank, score)
    return View(
        totals, reached, _at(meta.get("upd")), tops, [int(c) for _, c in per], my_rank, my_score
    )


async def read_mine(
    ctx: Context,
    tenant_id: int,
    pk_id: int,
    team_ids: Sequence[int],
    my_team: int | None,
    member: bytes,
    rate: RateCheck | None = None,
) -> tuple[int | None, float | None]:
    """(my 0-based rank in my team, my encoded contribution) only, in one script call (the
    same script; the rate limit counted first); NotBuilt when not built."""
    keys = [totals_key(ctx, tenant_id, pk_id), meta_key(ctx, tenant_id, pk_id)]
    if my_team is not None and my_team in team_ids:
        keys.append(contrib_key(ctx, tenant_id, pk_id, my_team))  # only my team's set
    reply = await ctx.scripts.pk_read(keys=keys, args=[0, len(keys) - 2, member, 0], rate=rate)
    if reply == -1:
        raise NotBuilt
    return _place(reply[0] if reply else None, reply[1] if len(reply) > 1 else None)


async def replace(
    ctx: Context,
    tenant_id: int,
    pk_id: int,
    team_ids: Sequence[int],
    totals: Sequence[tuple[int, int, datetime | None]],
    contribs: dict[int, list[tuple[bytes, float]]],
    expire_at: int,
    now: datetime,
) -> None:
    """Swap in a PK's whole view atomically (MULTI: readers see the old or the new one)."""
    t, m = totals_key(ctx, tenant_id, pk_id), meta_key(ctx, tenant_id, pk_id)
    cks = {team: contrib_key(ctx, tenant_id, pk_id, team) for team in team_ids}
    pipe = ctx.redis.pipeline(transaction=True)
    pipe.delete(t, m, *cks.values())
    if totals:
        pipe.zadd(t, {str(team): total for team, total, _ in totals})
    fields: dict[str, int] = {"built": 1, "upd": _ms(now)}
    for team, _, reached in totals:
        fields[f"r:{team}"] = _ms(reached)
    pipe.hset(m, mapping=fields)  # type: ignore[arg-type]
    for team, items in contribs.items():
        if items:
            pipe.zadd(cks[team], dict(items))
    if expire_at > 0:
        for k in (t, m, *cks.values()):
            pipe.expireat(k, expire_at)
    await pipe.execute()


async def drop(ctx: Context, tenant_id: int, pk_id: int, team_ids: Sequence[int]) -> None:
    await ctx.redis.delete(
        totals_key(ctx, tenant_id, pk_id),
        meta_key(ctx, tenant_id, pk_id),
        *[contrib_key(ctx, tenant_id, pk_id, t) for t in team_ids],
    )
