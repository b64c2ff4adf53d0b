"""The wheel's orchestration: config, the spin (Redis draw, then one PostgreSQL transaction),
the member view, audit and verification, coupons, claims and shipping, stock rebuilds."""

from __future__ import annotations

import asyncio
import functools
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import msgspec
import structlog

from service.core.cache import Cache
from service.core.constraints import register_check, validation_failed
from service.core.context import Context
from service.core.errors import DependencyUnavailable, DomainError, register_codes
from service.core.uow import UnitOfWork, unit_of_work
from service.points import service as points
from service.wheel import repository as repo
from service.wheel import rules, store
from service.wheel.schemas import (
    AwardOut,
    ClaimIn,
    CodesOut,
    DrawOut,
    PrizeStats,
    PrizeView,
    ShipIn,
    SimulatedPrize,
    SimulateOut,
    SpinOut,
    WheelIn,
    WheelOut,
    WheelView,
    WonPrize,
)

log = structlog.get_logger("engage.wheel")

register_codes(
    {
        "WHEEL_NOT_FOUND": (404, "转盘活动不存在", "No such wheel."),
        "WHEEL_NOT_LIVE": (409, "活动未开始或已结束", "The wheel is not open for spins now."),
        "WHEEL_LEVEL_TOO_LOW": (
            403,
            "会员等级不足，暂不能参与",
            "Your level cannot spin this yet.",
        ),
        "WHEEL_CAP_REACHED": (409, "抽奖次数已用完", "You have used all your spins."),
        "WHEEL_NO_SPINS_LEFT": (
            409,
            "今日免费次数已用完",
            "No free spins left today, and this wheel has no paid spins.",
        ),
        "PRIZE_NOT_FOUND": (404, "奖品不存在", "No such prize."),
        "PRIZE_NOT_CLAIMABLE": (
            409,
            "该奖品无需领取或已领取",
            "This prize needs no claim or was claimed already.",
        ),
        "PRIZE_NOT_SHIPPABLE": (409, "该奖品尚未领取或已发货", "Not claimed yet, or shipped."),
    }
)

SCHEME = (
    "words = HMAC-SHA256(seed, f'{memberId}:{spinNo}:{block}') as four big-endian 64-bit "
    "words, each shifted right by 12 (52 bits); block 0 first. Candidates: the available pity "
    "prizes when pity is due, else the available prizes (outOfStock=redraw) or all prizes "
    "(consolation), weight > 0, in slot order. W = their total weight; the first word below "
    "floor(2^52 / W) * W gives value = word mod W, and the prize whose cumulative weight "
    "range holds value wins; an unavailable pick gives the consolation prize. Available = not "
    "blocked and remaining > 0 as logged in stockSeen. sha256(seed) = seedCommitment."
)

_CACHE_TTL = 2.0
_LOAD_WAIT_S = 0.01
_LOAD_ATTEMPTS = 300


# ----------------------------------------------------------------------------- wheel runtime


@dataclass(frozen=True, slots=True)
class Runtime:
    id: int
    tenant_id: int
    key: str
    version: int
    layout_version: int
    config: dict[str, Any]
    table: rules.PrizeTable
    seed: bytes
    seed_hash: str
    tz: ZoneInfo
    updated_at: datetime

    def status(self, now: datetime) -> str:
        return rules.status_of(self.config, now)

    def seed_if_revealed(self, now: datetime) -> str | None:
        return self.seed.hex() if self.status(now) == "ended" else None


def _runtime(row: asyncpg.Record) -> Runtime:
    config = row["config"]
    return Runtime(
        row["id"],
        row["tenant_id"],
        row["key"],
        row["version"],
        row["layout_version"],
        config,
        rules.table_from_config(config),
        bytes(row["seed"]),
        row["seed_hash"],
        ZoneInfo(config.get("timezone", "Asia/Shanghai")),
        row["updated_at"],
    )


RUNTIME_CACHE = "wheel.runtime"


def _cache(ctx: Context) -> Cache[tuple[int, str], Runtime]:
    return ctx.caches.get(RUNTIME_CACHE, _CACHE_TTL)


async def runtime(
    ctx: Context, conn: asyncpg.Connection, tenant_id: int, key: str, *, fresh: bool = False
) -> Runtime:
    """The wheel's config and seed, cached for a moment per process (a spin at 00:00 should
    not read the same row ten thousand times; a config change reaches every process within
    a second, see service.core.cache, and each draw logs the version it used)."""

    async def load() -> Runtime:
        row = await repo.get_wheel(conn, tenant_id, key)
        if row is None:
            raise DomainError("WHEEL_NOT_FOUND", details={"wheelKey": key})
        return _runtime(row)

    return await _cache(ctx).get((tenant_id, key), load, fresh=fresh)


# ----------------------------------------------------------------------------- config


register_check(WheelIn, lambda data: rules.config_problems(msgspec.to_builtins(data)))


async def put_wheel(uow: UnitOfWork, tenant_id: int, key: str, data: WheelIn) -> WheelOut:
    """Create or change a wheel. Validated as a whole; raising leaves nothing changed (the
    caller's transaction rolls back). The seed is made once, at creation."""
    ctx, conn = uow.ctx, uow.conn
    now = ctx.clock.now()
    config = msgspec.to_builtins(data)
    existing = await repo.lock_wheel(conn, tenant_id, key)
    issued = await repo.wins_by_prize(conn, existing["id"]) if existing else {}
    problems = rules.config_problems(
        config, issued=issued, previous=existing["config"] if existing else None, now=now
    )
    if problems:
        raise validation_failed(problems)
    if existing is None:
        # The injected RNG is the CSPRNG in production; tests pin it.
        seed = ctx.rng.getrandbits(256).to_bytes(32, "big")
        row = await repo.insert_wheel(
            conn, tenant_id, key, config, seed, rules.commitment(seed), now
        )
        if row is None:
            raise DomainError("CONFLICT", details={"problem": "the wheel was created meanwhile"})
    else:
        layout = existing["layout_version"]
        if rules.layout_of(existing["config"]) != rules.layout_of(config):
            layout += 1
        row = await repo.update_wheel(
            conn, existing["id"], config, existing["version"] + 1, layout, now
        )
    await repo.insert_version(
        conn, tenant_id, row["id"], row["version"], row["layout_version"], config, now
    )
    await repo.sync_stock(conn, tenant_id, row["id"], [(p.key, p.total_stock) for p in data.prizes])
    rt = _runtime(row)
    uow.after_commit(functools.partial(ctx.caches.changed, RUNTIME_CACHE, (tenant_id, key)))
    # Counts in Redis follow PostgreSQL's (a prize that became limited starts from its wins).
    await load_stock(ctx, conn, rt)
    return await admin_view(ctx, conn, rt)


async def admin_view(ctx: Context, conn: asyncpg.Connection, rt: Runtime) -> WheelOut:
    now = ctx.clock.now()
    stock = {r["prize_key"]: r for r in await repo.stock_rows(conn, rt.id)}
    wins = await repo.wins_by_prize(conn, rt.id)
    codes = await repo.code_counts(conn, rt.id)
    in_redis = await store.counts(ctx, rt.tenant_id, rt.id)
    nominal = rules.nominal_probabilities(rt.table)
    after = rules.probabilities_after_stock_out(rt.table)
    stats = []
    for i, p in enumerate(rt.table.prizes):
        issued = wins.get(p.key, 0)
        remaining = None
        redis_left = None
        if p.total is not None:
            srow = stock.get(p.key)
            remaining = p.total - (srow["issued"] if srow else issued)
            if in_redis is not None:
                redis_left = p.total - in_redis.get(store.total_field(p.key), 0)
        c = codes.get(p.key) if p.kind == "coupon" else None
        stats.append(
            PrizeStats(
                i,
                p.key,
                round(nominal[i] * 100, 4),
                round(after[i] * 100, 4),
                p.total,
                issued,
                remaining,
                redis_left,
                c[0] if c else (0 if p.kind == "coupon" else None),
                c[1] if c else (0 if p.kind == "coupon" else None),
            )
        )
    return WheelOut(
        rt.key,
        rt.version,
        rt.layout_version,
        rt.status(now),
        rt.seed_hash,
        rt.seed_if_revealed(now),
        msgspec.convert(rt.config, WheelIn),
        stats,
        sum(wins.values()),
        rt.updated_at,
    )


async def get_admin(ctx: Context, tenant_id: int, key: str) -> WheelOut:
    async with ctx.db.connection() as conn:
        rt = await runtime(ctx, conn, tenant_id, key, fresh=True)
        return await admin_view(ctx, conn, rt)


# ----------------------------------------------------------------------------- stock in Redis


async def load_stock(ctx: Context, conn: asyncpg.Connection, rt: Runtime) -> int:
    """Redis counts := PostgreSQL's (wins of limited prizes overall, and per recent day)."""
    counts: dict[str, int] = {}
    for r in await repo.stock_rows(conn, rt.id):
        if r["total"] is not None:
            counts[store.total_field(r["prize_key"])] = r["issued"]
    since = ctx.clock.now().astimezone(rt.tz).date() - timedelta(days=1)
    for r in await repo.day_rows(conn, rt.id, since):
        counts[store.daily_field(r["day"].isoformat(), r["prize_key"])] = r["issued"]
    _, n = await store.load(ctx, rt.tenant_id, rt.id, counts)
    return n


async def rebuild(ctx: Context) -> dict[str, Any]:
    """``engage rebuild``: every wheel's stock counts from PostgreSQL."""
    wheels = 0
    fields = 0
    async with ctx.db.connection() as conn:
        for row in await repo.all_wheels(conn):
            fields += await load_stock(ctx, conn, _runtime(row))
            wheels += 1
    return {"wheels": wheels, "stockFields": fields}


async def rebuild_one(ctx: Context, tenant_id: int, key: str) -> int:
    async with ctx.db.connection() as conn:
        rt = await runtime(ctx, conn, tenant_id, key, fresh=True)
        return await load_stock(ctx, conn, rt)


# ----------------------------------------------------------------------------- the spin


@dataclass(slots=True)
class Hold:
    """Stock a draw took in Redis, to give back if the PostgreSQL transaction fails."""

    tenant_id: int
    wheel_id: int
    epoch: str
    total_field: str
    daily_field: str


class _PoolEmpty(Exception):
    """The coupon pool had no code left: rolls the savepoint back; the prize is redrawn."""


async def give_back(ctx: Context, holds: list[Hold]) -> None:
    for h in holds:
        try:
            await store.give_back(
                ctx, h.tenant_id, h.wheel_id, h.epoch, h.total_field, h.daily_field
            )
        except Exception as exc:
            # Redis then counts one win too many until the next rebuild: it may refuse a
            # prize PostgreSQL still has, never the other way round.
            log.warning("stock give-back failed", wheel=h.wheel_id, error=repr(exc))
    holds.clear()


async def _draw(
    ctx: Context,
    conn: asyncpg.Connection,
    rt: Runtime,
    day: str,
    pity_due: bool,
    member_id: int,
    spin_no: int,
    blocked: list[bool],
) -> tuple[store.Drawn, int]:
    block = 0
    ws = rules.words(rt.seed, member_id, spin_no, block)
    for _ in range(_LOAD_ATTEMPTS):
        res = await store.draw(ctx, rt.tenant_id, rt.id, rt.table, day, pity_due, ws, blocked)
        if isinstance(res, store.Drawn):
            return res, block
        if res == store.EXHAUSTED:
            block += 1
            ws = rules.words(rt.seed, member_id, spin_no, block)
        elif res == store.NOT_LOADED:
            # Redis lost the hash (flush, failover): one spin reloads it from PostgreSQL
            # through its own transaction's connection (a pool full of waiting spins must
            # not starve the loader), the others wait for it.
            if await store.try_load_lock(ctx, rt.tenant_id, rt.id):
                try:
                    await load_stock(ctx, conn, rt)
                finally:
                    await store.release_load_lock(ctx, rt.tenant_id, rt.id)
            else:
                await asyncio.sleep(_LOAD_WAIT_S)
    raise DependencyUnavailable(details={"dependency": "redis", "problem": "stock not loaded"})


async def spin(uow: UnitOfWork, tenant_id: int, member_id: int, key: str) -> SpinOut:
    """One spin inside the unit of work. Stock taken in Redis is held in ``holds``, which the
    unit of work gives back if the transaction does not commit."""
    ctx, conn = uow.ctx, uow.conn
    holds: list[Hold] = []
    uow.on_rollback(functools.partial(give_back, ctx, holds))
    rt = await runtime(ctx, conn, tenant_id, key)
    cfg = rt.config
    now = ctx.clock.now()
    status = rt.status(now)
    if status != "open":
        raise DomainError("WHEEL_NOT_LIVE", details={"status": status})
    min_level = int(cfg.get("minLevel", 0))
    if min_level > 0:
        level = await points.member_level_index(ctx, conn, tenant_id, member_id)
        if level < min_level:
            raise DomainError(
                "WHEEL_LEVEL_TOO_LOW", details={"minLevel": min_level, "level": level}
            )
    today = now.astimezone(rt.tz).date()
    # The member's row lock serializes this member's spins until commit: the spin number,
    # caps, free spins and pity count below are exact however many requests race.
    m = await repo.lock_member(conn, tenant_id, rt.id, member_id, now)
    try:
        plan = rules.plan_spin(
            cfg, rules.MemberSpins(m["spins"], m["day"], m["spins_day"], m["free_used_day"]), today
        )
    except rules.SpinRefused as refusal:
        raise DomainError(refusal.code, details=refusal.details) from None
    spin_no, free, cost = plan.spin_no, plan.free, plan.cost
    spins_day, free_used = plan.spins_day, plan.free_used
    spin_id = uuid.uuid4()
    source_ref = f"wheel:{key}:{spin_id}"
    if cost:
        # Paid before the draw: not enough points means no draw and no stock touched.
        await points.debit(
            uow,
            tenant_id,
            member_id,
            cost,
            reason="wheel.spin",
            source_ref=source_ref,
            idempotency_key=f"wheel:cost:{spin_id}",
            key_is_new=True,  # spin_id is a fresh uuid
        )
    table = rt.table
    wins: dict[str, int] = dict(m["wins"] or {})
    pity_due = rules.pity_due(table, m["pity"])
    refused: set[str] = set()
    day_s = today.isoformat()
    while True:
        blocked = [
            p.key in refused or (p.member_cap is not None and wins.get(p.key, 0) >= p.member_cap)
            for p in table.prizes
        ]
        drawn, block = await _draw(ctx, conn, rt, day_s, pity_due, member_id, spin_no, blocked)
        prize = table.prizes[drawn.index]
        hold = Hold(
            tenant_id,
            rt.id,
            drawn.epoch,
            store.total_field(prize.key) if prize.total is not None else "",
            store.daily_field(day_s, prize.key) if prize.daily is not None else "",
        )
        stock_seen = {
            "remaining": {
                p.key: drawn.remaining[i] for i, p in enumerate(table.prizes) if p.limited
            },
            "blocked": [p.key for i, p in enumerate(table.prizes) if blocked[i]],
            "pityDue": pity_due,
            "block": block,
        }
        wins_after = dict(wins)
        if prize.member_cap is not None:
            wins_after[prize.key] = wins.get(prize.key, 0) + 1
        advance = (
            m["id"],
            spin_no,
            today,
            spins_day + 1,
            free_used + (1 if free else 0),
            rules.next_pity_count(table, m["pity"], drawn.index),
            wins_after,
            now,
        )
        args = (
            uow,
            rt,
            member_id,
            spin_id,
            spin_no,
            drawn,
            stock_seen,
            free,
            cost,
            today,
            advance,
        )
        # From here on the stock Redis took is ours to give back if anything fails: a refused
        # win (below), but also a statement timeout, a deadlock or a lost connection in
        # _record, which the unit of work answers by giving back every hold (on_rollback).
        if prize.limited:
            holds.append(hold)
        if not (prize.limited or prize.kind == "coupon"):
            award_id, code = await _record(*args)
            break
        try:
            # A savepoint: if PostgreSQL refuses the win (its stock guard, or an empty coupon
            # pool), only this draw's rows roll back and the spin draws again without it.
            async with uow.savepoint():
                award_id, code = await _record(*args)
        except asyncpg.CheckViolationError as exc:
            field, limit = (
                (hold.daily_field, prize.daily)
                if exc.constraint_name == "wheel_prize_days_within_limit"
                else (hold.total_field, prize.total)
            )
            log.warning("postgres refused a win redis allowed", wheel=rt.id, prize=prize.key)
            if prize.limited:
                holds.remove(hold)  # mark_out sets Redis to what PostgreSQL says instead
            await store.mark_out(ctx, tenant_id, rt.id, field, int(limit or 0))
            refused.add(prize.key)
            continue
        except _PoolEmpty:
            log.warning("coupon pool empty", wheel=rt.id, prize=prize.key)
            if prize.limited:
                holds.remove(hold)
                await give_back(ctx, [hold])
            refused.add(prize.key)
            continue
        break
    uow.emit(
        tenant_id=tenant_id,
        type="wheel.spun",
        member_id=member_id,
        payload={
            "wheelKey": key,
            "spinId": str(spin_id),
            "spinNo": spin_no,
            "prizeKey": prize.key,
            "kind": prize.kind,
            "value": prize.value,
            "free": free,
            "cost": cost,
        },
        occurred_at=now,
    )
    return SpinOut(
        str(spin_id),
        spin_no,
        drawn.index,
        rt.layout_version,
        WonPrize(
            drawn.index,
            prize.key,
            prize.name,
            prize.image_url,
            prize.kind,
            prize.value,
            award_id,
            code,
            _initial_state(prize.kind) if award_id else None,
        ),
        free,
        cost,
        drawn.forced,
        plan.free_left,
        plan.spins_left,
    )


def _initial_state(kind: str) -> str:
    return "won" if kind == "physical" else "issued"


async def _record(
    uow: UnitOfWork,
    rt: Runtime,
    member_id: int,
    spin_id: uuid.UUID,
    spin_no: int,
    drawn: store.Drawn,
    stock_seen: dict[str, Any],
    free: bool,
    cost: int,
    today: date,
    advance: tuple[Any, ...],
) -> tuple[int | None, str | None]:
    """The draw's rows: audit entry and the member's advanced state (one statement), award,
    ledger credit, coupon, event, stock guards last (the hot stock row is then locked only
    for the commit)."""
    ctx, conn = uow.ctx, uow.conn
    now = ctx.clock.now()
    prize = rt.table.prizes[drawn.index]
    ws = rules.words(rt.seed, member_id, spin_no, int(stock_seen["block"]))
    draw_id = await repo.insert_draw(
        conn,
        rt.tenant_id,
        rt.id,
        advance,
        spin_id=spin_id,
        member_id=member_id,
        spin_no=spin_no,
        prize_key=prize.key,
        slot_index=drawn.index,
        kind=prize.kind,
        value=prize.value,
        table_version=rt.version,
        layout_version=rt.layout_version,
        word_index=drawn.word_index,
        random_word=ws[drawn.word_index] if drawn.word_index >= 0 else None,
        random_value=drawn.value,
        weight_total=drawn.weight_total,
        stock_seen=stock_seen,
        pity=drawn.forced,
        fallback=drawn.fallback,
        free=free,
        cost=cost,
        day=today,
        created_at=now,
    )
    award_id: int | None = None
    code: str | None = None
    if prize.kind != "nothing":
        if prize.kind == "coupon":
            code = await repo.issue_code(conn, rt.id, prize.key, member_id, draw_id, now)
            if code is None:
                raise _PoolEmpty
        elif prize.kind in ("points", "growth"):
            await points.credit(
                uow,
                rt.tenant_id,
                member_id,
                prize.kind,
                prize.value,
                reason="wheel.prize",
                source_ref=f"wheel:{rt.key}:{spin_id}",
                idempotency_key=f"wheel:prize:{spin_id}",
                key_is_new=True,
            )
        award_id = await repo.insert_award(
            conn,
            rt.tenant_id,
            rt.id,
            draw_id,
            member_id,
            prize.key,
            prize.kind,
            prize.name,
            prize.value,
            code,
            _initial_state(prize.kind),
            now,
        )
        uow.emit(
            tenant_id=rt.tenant_id,
            type="prize.won",
            member_id=member_id,
            payload={
                "wheelKey": rt.key,
                "spinId": str(spin_id),
                "awardId": award_id,
                "prizeKey": prize.key,
                "name": prize.name,
                "kind": prize.kind,
                "value": prize.value,
            },
            occurred_at=now,
        )
    if prize.daily is not None:
        await repo.take_daily(conn, rt.tenant_id, rt.id, prize.key, today, prize.daily)
    if prize.total is not None:
        await repo.take_stock(conn, rt.id, prize.key)
    return award_id, code


async def spin_once(ctx: Context, tenant_id: int, member_id: int, key: str) -> SpinOut:
    """A spin in its own unit of work (no Idempotency-Key): for the CLI checks and tests."""
    async with unit_of_work(ctx) as uow:
        return await spin(uow, tenant_id, member_id, key)


# ----------------------------------------------------------------------------- member view


async def member_view(ctx: Context, tenant_id: int, member_id: int, key: str) -> WheelView:
    now = ctx.clock.now()
    async with ctx.db.connection() as conn:
        rt = await runtime(ctx, conn, tenant_id, key)
        status = rt.status(now)
        if status == "draft":
            # A wheel the operator paused (set back to draft) exists: say so, as a spin does.
            raise DomainError("WHEEL_NOT_LIVE", details={"wheelKey": key, "status": status})
        m = await repo.get_member(conn, rt.id, member_id)
        min_level = int(rt.config.get("minLevel", 0))
        level = await points.member_level_index(ctx, conn, tenant_id, member_id) if min_level else 0
        remaining: dict[str, int] = {}
        if rt.config.get("showStock"):
            remaining = await _remaining(ctx, conn, rt, now)
    cfg = rt.config
    today = now.astimezone(rt.tz).date()
    same_day = m is not None and m["day"] == today
    spins_day = m["spins_day"] if m is not None and same_day else 0
    free_used = m["free_used_day"] if m is not None and same_day else 0
    spins = m["spins"] if m else 0
    cap_day, cap_all = cfg.get("maxSpinsPerDay"), cfg.get("maxSpinsPerCampaign")
    left_all = None if cap_all is None else max(0, cap_all - spins)
    left_day = None if cap_day is None else max(0, cap_day - spins_day)
    if left_all is not None:
        left_day = left_all if left_day is None else min(left_day, left_all)
    guaranteed_in = None
    if rt.table.pity_after is not None:
        guaranteed_in = max(1, rt.table.pity_after + 1 - (m["pity"] if m else 0))
    return WheelView(
        rt.key,
        cfg["name"],
        cfg.get("description", ""),
        status,
        rules.parse_dt(cfg["startsAt"]),
        rules.parse_dt(cfg["endsAt"]),
        cfg.get("timezone", "Asia/Shanghai"),
        rt.layout_version,
        [
            PrizeView(
                i,
                p.key,
                p.name,
                p.image_url,
                p.kind,
                p.value,
                remaining.get(p.key) if p.limited else None,
            )
            for i, p in enumerate(rt.table.prizes)
        ],
        int(cfg.get("costPoints", 0)),
        int(cfg.get("freeSpinsPerDay", 0)),
        max(0, int(cfg.get("freeSpinsPerDay", 0)) - free_used),
        left_day,
        left_all,
        min_level,
        level >= min_level,
        guaranteed_in,
        spins,
        rt.seed_hash,
        rt.seed_if_revealed(now),
    )


async def _remaining(
    ctx: Context, conn: asyncpg.Connection, rt: Runtime, now: datetime
) -> dict[str, int]:
    """Stock left per limited prize (overall and today), from Redis, else PostgreSQL."""
    day = now.astimezone(rt.tz).date()
    counts = await store.counts(ctx, rt.tenant_id, rt.id)
    if counts is None:
        counts = {
            store.total_field(r["prize_key"]): r["issued"]
            for r in await repo.stock_rows(conn, rt.id)
        }
        for r in await repo.day_rows(conn, rt.id, day):
            counts[store.daily_field(r["day"].isoformat(), r["prize_key"])] = r["issued"]
    out = {}
    for p in rt.table.prizes:
        left = []
        if p.total is not None:
            left.append(p.total - counts.get(store.total_field(p.key), 0))
        if p.daily is not None:
            left.append(p.daily - counts.get(store.daily_field(day.isoformat(), p.key), 0))
        if left:
            out[p.key] = max(0, min(left))
    return out


# ----------------------------------------------------------------------------- audit, verify


def draw_out(r: asyncpg.Record) -> DrawOut:
    return DrawOut(
        r["id"],
        str(r["spin_id"]),
        r["member_id"],
        r["spin_no"],
        r["prize_key"],
        r["slot_index"],
        r["table_version"],
        r["word_index"],
        r["random_word"],
        r["random_value"],
        r["weight_total"],
        r["stock_seen"],
        r["pity"],
        r["fallback"],
        r["free"],
        r["cost"],
        r["created_at"],
    )


async def draws(
    ctx: Context, tenant_id: int, key: str, after_id: int, limit: int
) -> tuple[Runtime, list[asyncpg.Record], dict[int, dict]]:
    async with ctx.db.connection() as conn:
        rt = await runtime(ctx, conn, tenant_id, key, fresh=True)
        rows = await repo.list_draws(conn, tenant_id, rt.id, after_id, limit)
        versions = await repo.version_configs(conn, rt.id)
    used = {r["table_version"] for r in rows}
    return rt, rows, {v: c for v, c in versions.items() if v in used}


@dataclass(slots=True)
class VerifyReport:
    wheel: str
    commitment_ok: bool
    revealed: bool
    draws: int
    mismatches: list[dict[str, Any]]
    gaps: list[dict[str, Any]]

    @property
    def ok(self) -> bool:
        return self.commitment_ok and not self.mismatches and not self.gaps


async def verify(ctx: Context, tenant_id: int, key: str, batch: int = 5000) -> VerifyReport:
    """Recompute every logged draw from the seed, check the commitment and that each
    member's spin numbers run 1, 2, 3 ... with no gap (a skipped number would be a redraw)."""
    now = ctx.clock.now()
    async with ctx.db.connection() as conn:
        rt = await runtime(ctx, conn, tenant_id, key, fresh=True)
        tables = {
            v: rules.table_from_config(c)
            for v, c in (await repo.version_configs(conn, rt.id)).items()
        }
        report = VerifyReport(
            key, rules.commitment(rt.seed) == rt.seed_hash, rt.status(now) == "ended", 0, [], []
        )
        seen: dict[int, list[int]] = {}
        after = 0
        while True:
            rows = await repo.list_draws(conn, tenant_id, rt.id, after, batch)
            for r in rows:
                report.draws += 1
                problems = rules.verify_draw(
                    tables[r["table_version"]],
                    rt.seed,
                    r["member_id"],
                    r["spin_no"],
                    r["stock_seen"],
                    r["prize_key"],
                    r["random_value"],
                    r["weight_total"],
                )
                if problems:
                    report.mismatches.append({"drawId": r["id"], "problems": problems})
                seen.setdefault(r["member_id"], []).append(r["spin_no"])
            if len(rows) < batch:
                break
            after = rows[-1]["id"]
    for member_id, nos in seen.items():
        if sorted(nos) != list(range(1, len(nos) + 1)):
            report.gaps.append({"memberId": member_id, "spinNumbers": sorted(nos)[:20]})
    return report


async def simulate(ctx: Context, tenant_id: int, key: str, n: int) -> SimulateOut:
    now = ctx.clock.now()
    async with ctx.db.connection() as conn:
        rt = await runtime(ctx, conn, tenant_id, key, fresh=True)
        remaining = await _remaining(ctx, conn, rt, now)
    table = rt.table
    # The simulation pretends each limited prize's overall and daily stock is what is left.
    rem_total = [remaining.get(p.key) if p.total is not None else None for p in table.prizes]
    rem_daily = [
        remaining.get(p.key) if p.daily is not None and p.total is None else None
        for p in table.prizes
    ]
    counts = rules.simulate(table, rem_total, rem_daily, n, ctx.rng)
    return SimulateOut(
        n,
        [
            SimulatedPrize(p.key, counts[i], round(100 * counts[i] / n, 4))
            for i, p in enumerate(table.prizes)
        ],
    )


# ----------------------------------------------------------------------------- coupons


async def add_codes(
    uow: UnitOfWork,
    tenant_id: int,
    key: str,
    prize_key: str,
    codes: list[str],
) -> CodesOut:
    ctx, conn = uow.ctx, uow.conn
    rt = await runtime(ctx, conn, tenant_id, key, fresh=True)
    prize = next((p for p in rt.table.prizes if p.key == prize_key), None)
    if prize is None or prize.kind != "coupon":
        raise DomainError("PRIZE_NOT_FOUND", details={"prizeKey": prize_key, "kind": "coupon"})
    unique = list(dict.fromkeys(c.strip() for c in codes if c.strip()))
    added = await repo.add_codes(conn, tenant_id, rt.id, prize_key, unique, ctx.clock.now())
    total, left = (await repo.code_counts(conn, rt.id)).get(prize_key, (0, 0))
    # A pool that ran dry made Redis count the prize as gone; new codes bring it back.
    uow.after_commit(functools.partial(rebuild_one, ctx, tenant_id, key))
    return CodesOut(added, len(codes) - added, total, left)


# ----------------------------------------------------------------------------- awards


def award_out(r: asyncpg.Record, *, reveal: bool = False) -> AwardOut:
    contact = r["contact"] if reveal else rules.mask_contact(r["contact"])
    return AwardOut(
        r["id"],
        r["wheel_key"],
        r["prize_key"],
        r["name"],
        r["kind"],
        r["value"],
        r["coupon_code"],
        r["state"],
        r["won_at"],
        r["claimed_at"],
        r["shipped_at"],
        contact,
        r["shipment"],
        r["member_id"],
    )


async def my_awards(
    ctx: Context, tenant_id: int, member_id: int, before_id: int | None, limit: int
) -> list[AwardOut]:
    async with ctx.db.connection() as conn:
        rows = await repo.member_awards(conn, tenant_id, member_id, before_id, limit)
    return [award_out(r) for r in rows]


async def claim(
    uow: UnitOfWork,
    tenant_id: int,
    member_id: int,
    award_id: int,
    data: ClaimIn,
) -> AwardOut:
    ctx, conn = uow.ctx, uow.conn
    row = await repo.lock_award(conn, tenant_id, award_id)
    # Someone else's prize answers exactly like a missing one: ids reveal nothing.
    if row is None or row["member_id"] != member_id:
        raise DomainError("PRIZE_NOT_FOUND", details={"awardId": award_id})
    if row["kind"] != "physical" or row["state"] != "won":
        raise DomainError(
            "PRIZE_NOT_CLAIMABLE", details={"kind": row["kind"], "state": row["state"]}
        )
    now = ctx.clock.now()
    await repo.set_claimed(conn, award_id, msgspec.to_builtins(data), now)
    uow.emit(
        tenant_id=tenant_id,
        type="prize.claimed",
        member_id=member_id,
        payload={"awardId": award_id, "wheelKey": row["wheel_key"], "prizeKey": row["prize_key"]},
        occurred_at=now,
    )
    log.info("prize claimed", award=award_id, contact=rules.mask_contact(msgspec.to_builtins(data)))
    row = await repo.lock_award(conn, tenant_id, award_id)
    return award_out(row)


async def wheel_awards(
    ctx: Context, tenant_id: int, key: str, state: str | None, after_id: int, limit: int
) -> list[AwardOut]:
    async with ctx.db.connection() as conn:
        rt = await runtime(ctx, conn, tenant_id, key)
        rows = await repo.wheel_awards(conn, tenant_id, rt.id, state, after_id, limit)
    return [award_out(r) for r in rows]


async def award_for_shipping(ctx: Context, tenant_id: int, key: str, award_id: int) -> AwardOut:
    async with ctx.db.connection() as conn:
        rt = await runtime(ctx, conn, tenant_id, key)
        row = await repo.get_award(conn, tenant_id, rt.id, award_id)
    if row is None:
        raise DomainError("PRIZE_NOT_FOUND", details={"awardId": award_id})
    return award_out(row, reveal=True)


async def ship(uow: UnitOfWork, tenant_id: int, key: str, award_id: int, data: ShipIn) -> AwardOut:
    ctx, conn = uow.ctx, uow.conn
    rt = await runtime(ctx, conn, tenant_id, key)
    row = await repo.lock_award(conn, tenant_id, award_id)
    if row is None or row["wheel_id"] != rt.id:
        raise DomainError("PRIZE_NOT_FOUND", details={"awardId": award_id})
    if row["state"] != "claimed":
        raise DomainError("PRIZE_NOT_SHIPPABLE", details={"state": row["state"]})
    now = ctx.clock.now()
    await repo.set_shipped(conn, award_id, msgspec.to_builtins(data), now)
    uow.emit(
        tenant_id=tenant_id,
        type="prize.shipped",
        member_id=row["member_id"],
        payload={"awardId": award_id, "wheelKey": key, "prizeKey": row["prize_key"]},
        occurred_at=now,
    )
    row = await repo.lock_award(conn, tenant_id, award_id)
    return award_out(row)


# ----------------------------------------------------------------------------- launch summary


async def live_for_member(
    ctx: Context, conn: asyncpg.Connection, tenant_id: int, member_id: int
) -> list[dict[str, Any]]:
    """Public (the launch summary): every open wheel with the member's spins left today, in
    one statement whatever the number of wheels: ``{key, name, freeSpinsLeft, spinsLeftToday}``
    (``spinsLeftToday`` null when there is no daily or campaign cap)."""
    now = ctx.clock.now()
    out = []
    for r in await repo.wheels_with_member(conn, tenant_id, member_id):
        cfg = r["config"]
        if rules.status_of(cfg, now) != "open":
            continue
        today = now.astimezone(ZoneInfo(cfg.get("timezone", "Asia/Shanghai"))).date()
        same_day = r["day"] == today
        spins_day = r["spins_day"] if same_day else 0
        free_used = r["free_used_day"] if same_day else 0
        cap_day, cap_all = cfg.get("maxSpinsPerDay"), cfg.get("maxSpinsPerCampaign")
        left_all = None if cap_all is None else max(0, cap_all - (r["spins"] or 0))
        left_day = None if cap_day is None else max(0, cap_day - (spins_day or 0))
        if left_all is not None:
            left_day = left_all if left_day is None else min(left_day, left_all)
        out.append(
            {
                "key": r["key"],
                "name": cfg.get("name", ""),
                "freeSpinsLeft": max(0, int(cfg.get("freeSpinsPerDay", 0)) - (free_used or 0)),
                "spinsLeftToday": left_day,
            }
        )
    return out


async def erase_contacts(conn: asyncpg.Connection, tenant_id: int, member_id: int) -> int:
    """Public (privacy erasure): the contacts given to claim prizes are removed; the awards,
    draws and audit stay."""
    return await repo.erase_contacts(conn, tenant_id, member_id)
