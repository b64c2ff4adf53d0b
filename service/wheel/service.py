"""The wheel's orchestration: config, the spin (Redis draw, then one PostgreSQL transaction),
the member view, audit and verification, coupons, claims and shipping, stock rebuilds."""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import msgspec
import structlog

from service.core import outbox
from service.core.cache import Cache
from service.core.constraints import register_check, validation_failed
from service.core.context import CONFIG_CACHE_TTL_S, Context
from service.core.errors import DependencyUnavailable, DomainError, register_codes
from service.core.ratelimit import RateCheck
from service.core.uow import UnitOfWork, unit_of_work
from service.points import ledger
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

_CACHE_TTL = CONFIG_CACHE_TTL_S  # seen by every process within it (core/context.py)
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
#
# A spin, start to end (``spin``):
#   1. one read of the member's counters (and an id for the award it may give);
#   2. the pure plan (rules.plan_spin: number, free or paid, caps);
#   3. one Redis call draws and takes the stock (wheel_draw.lua);
#   4. the pure write (rules.spin_write: rows, counts, events);
#   5. ONE statement writes it all (repository.record_spin), in a single-statement unit its
#      own transaction. It fails as a whole when another spin of the member came first (the
#      draw's number is taken: read and plan again), when PostgreSQL's stock guard refuses a
#      win a stale Redis allowed, or when the coupon pool ran dry (draw again without that
#      prize). Stock Redis took is given back whenever the statement does not commit: by the
#      retry below, or by the unit of work's on_rollback hook for any other failure.

_SPIN_ATTEMPTS = 20  # each lost race means another spin of the member committed


@dataclass(slots=True)
class Hold:
    """Stock a draw took in Redis, to give back if the PostgreSQL transaction fails."""

    tenant_id: int
    wheel_id: int
    epoch: str
    total_field: str
    daily_field: str


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
    rate: RateCheck | None,
) -> tuple[store.Drawn, int]:
    """Draw in Redis (the request's rate limit counted in the first call: later calls run
    the draw alone); returns the draw and the HMAC block its word came from."""
    block = 0
    ws = rules.words(rt.seed, member_id, spin_no, block)
    for _ in range(_LOAD_ATTEMPTS):
        res = await store.draw(ctx, rt.tenant_id, rt.id, rt.table, day, pity_due, ws, blocked, rate)
        if isinstance(res, store.Drawn):
            return res, block
        if res == store.EXHAUSTED:
            block += 1
            ws = rules.words(rt.seed, member_id, spin_no, block)
        elif res == store.NOT_LOADED:
            # Redis lost the hash (flush, failover): one spin reloads it from PostgreSQL
            # through its own unit's connection (a pool full of waiting spins must not
            # starve the loader), the others wait for it.
            if await store.try_load_lock(ctx, rt.tenant_id, rt.id):
                try:
                    await load_stock(ctx, conn, rt)
                finally:
                    await store.release_load_lock(ctx, rt.tenant_id, rt.id)
            else:
                await asyncio.sleep(_LOAD_WAIT_S)
    raise DependencyUnavailable(details={"dependency": "redis", "problem": "stock not loaded"})


async def spin(
    uow: UnitOfWork, tenant_id: int, member_id: int, key: str, rate: RateCheck | None = None
) -> SpinOut:
    """One spin (see "A spin, start to end" above). Works in a single-statement unit (no
    BEGIN/COMMIT: 2 PostgreSQL round trips, 1 Redis call) and unchanged in a transactional
    one (an Idempotency-Key), with the same guard and retry (a savepoint around the statement).
    ``rate``: the request's pending rate limit, folded into the draw's Redis call (counted
    before anything is taken; a spin refused before the draw leaves it to the caller).

    Errors: 404 WHEEL_NOT_FOUND, 409 WHEEL_NOT_LIVE, WHEEL_CAP_REACHED, WHEEL_NO_SPINS_LEFT,
    INSUFFICIENT_POINTS (the ledger refuses inside the statement: no draw logged, the stock
    the draw took in Redis given back), 403 WHEEL_LEVEL_TOO_LOW, 409
    CONFLICT when the member's own concurrent spins kept overtaking this one."""
    ctx = uow.ctx
    rt = await runtime(ctx, uow.conn, tenant_id, key)
    now = ctx.clock.now()
    _refuse(rules.spin_refusal(rt.config, rt.status(now), None))
    if int(rt.config.get("minLevel", 0)) > 0:  # one more read, for level-gated wheels only
        level = await points.member_level_index(ctx, uow.conn, tenant_id, member_id)
        _refuse(rules.spin_refusal(rt.config, rt.status(now), level))
    holds: list[Hold] = []
    uow.on_rollback(functools.partial(give_back, ctx, holds))
    refused: set[str] = set()
    for _ in range(_SPIN_ATTEMPTS):
        write = await _plan_and_draw(uow, rt, member_id, now, refused, rate)
        hold = _hold_of(rt, write)
        if hold is not None:
            holds.append(hold)
        recorded = await _record(uow, rt, write, holds, hold, refused)
        if recorded is not None:
            if uow.single_statement:
                holds.clear()  # committed with the statement: nothing left to give back
            return _spin_out(rt, write, recorded)
    raise DomainError(
        "CONFLICT",
        details={"problem": "your other spins kept coming first"},
        headers={"Retry-After": "1"},
    )


def _refuse(refusal: rules.SpinRefused | None) -> None:
    if refusal is not None:
        raise DomainError(refusal.code, details=refusal.details)


async def _plan_and_draw(
    uow: UnitOfWork,
    rt: Runtime,
    member_id: int,
    now: datetime,
    refused: set[str],
    rate: RateCheck | None,
) -> rules.SpinWrite:
    """Read the member (one round trip), plan, draw in Redis (one call, the request's rate
    limit included); the pure write of what was drawn."""
    ctx = uow.ctx
    # No row lock at the read, in either unit: the write statement's guard (the unique spin
    # number) decides races, and a keyed spin (a transaction) that locked the member's row
    # first would take its locks in another order than an unkeyed spin's one statement, and
    # deadlock with it (tests/test_wheel_race.py, keyed and unkeyed spins of one member).
    row = await repo.spin_state(uow.conn, rt.tenant_id, rt.id, member_id, now, lock=False)
    member = rules.member_spins(row) or rules.MemberSpins(0, None, 0, 0)
    today = now.astimezone(rt.tz).date()
    try:
        plan = rules.plan_spin(rt.config, member, today)
    except rules.SpinRefused as refusal:
        raise DomainError(refusal.code, details=refusal.details) from None
    keys = rules.SpinKeys(
        rt.tenant_id,
        rt.id,
        rt.key,
        rt.version,
        rt.layout_version,
        member_id,
        uuid.uuid4(),
        row["award_id"],
        today,
        now,
    )
    pity_due = rules.pity_due(rt.table, member.pity)
    blocked = rules.blocked_prizes(rt.table, member.wins, refused)
    drawn, block = await _draw(
        ctx, uow.conn, rt, today.isoformat(), pity_due, member_id, plan.spin_no, blocked, rate
    )
    return rules.spin_write(
        rt.table,
        keys,
        member,
        plan,
        drawn,
        ws=rules.words(rt.seed, member_id, plan.spin_no, block),
        block=block,
        blocked=blocked,
        pity_was_due=pity_due,
    )


def _hold_of(rt: Runtime, w: rules.SpinWrite) -> Hold | None:
    """The stock the draw took in Redis (None: an unlimited prize took none)."""
    p = w.prize
    if not p.limited:
        return None
    return Hold(
        rt.tenant_id,
        rt.id,
        w.drawn.epoch,
        store.total_field(p.key) if p.total is not None else "",
        store.daily_field(w.keys.today.isoformat(), p.key) if p.daily is not None else "",
    )


async def _record(
    uow: UnitOfWork,
    rt: Runtime,
    w: rules.SpinWrite,
    holds: list[Hold],
    hold: Hold | None,
    refused: set[str],
) -> repo.SpinRecorded | None:
    """Run the spin's statement; None when the spin must be planned and drawn again (its
    stock then given back, or set to PostgreSQL's count). Any other failure propagates and
    the unit of work gives back every hold."""
    ctx = uow.ctx
    try:
        recorded = await _statement(uow, w)
    except asyncpg.UniqueViolationError as exc:
        if exc.constraint_name != repo.SPIN_NUMBER_TAKEN:
            raise
        log.info("spin overtaken by the member's other spin", wheel=rt.id, member=w.keys.member_id)
    except asyncpg.DeadlockDetectedError:
        log.warning("spin deadlocked, retried", wheel=rt.id, member=w.keys.member_id)
    except asyncpg.CheckViolationError as exc:
        prize = w.prize
        if exc.constraint_name == repo.POOL_EMPTY:
            log.warning("coupon pool empty", wheel=rt.id, prize=prize.key)
        elif exc.constraint_name in (repo.DAILY_STOCK_GUARD, repo.TOTAL_STOCK_GUARD):
            log.warning("postgres refused a win redis allowed", wheel=rt.id, prize=prize.key)
            daily = exc.constraint_name == repo.DAILY_STOCK_GUARD
            if hold is not None:
                holds.remove(hold)  # mark_out sets Redis to what PostgreSQL says instead
                hold = None
            await store.mark_out(
                ctx,
                rt.tenant_id,
                rt.id,
                store.daily_field(w.keys.today.isoformat(), prize.key)
                if daily
                else store.total_field(prize.key),
                int((prize.daily if daily else prize.total) or 0),
            )
        else:
            raise
        refused.add(prize.key)
    else:
        return recorded
    if hold is not None:
        holds.remove(hold)
        await give_back(ctx, [hold])
    return None


async def _statement(uow: UnitOfWork, w: rules.SpinWrite) -> repo.SpinRecorded:
    """The spin's one statement, with the ledger's postings (the cost, a points or growth
    prize) inside it. Inside a transaction (an Idempotency-Key) a savepoint keeps a refused
    statement from aborting the transaction, so the spin can draw again. A ledger refusal
    (INSUFFICIENT_POINTS) fails the spin: nothing of the statement stays, the stock goes back
    (on_rollback)."""
    k = w.keys
    events = [
        outbox.OutboxRow(k.tenant_id, uuid.uuid4(), e.type, k.member_id, e.payload, k.now)
        for e in w.events
    ]
    postings = await _postings(uow, w)

    def call(p: Callable[[Any], str]) -> str:
        return ledger.call_sql(p(k.tenant_id), p(k.now), p(postings))

    with ledger.refusals():
        if uow.single_statement:
            recorded = await repo.record_spin(uow.conn, w, events, call if postings else None)
        else:
            async with uow.savepoint():
                recorded = await repo.record_spin(uow.conn, w, events, call if postings else None)
    points.wake_after_commit(uow)  # the statement wrote outbox rows
    return recorded


async def _postings(uow: UnitOfWork, w: rules.SpinWrite) -> list[ledger.Posting]:
    """The ledger moves of a spin: its cost (debit), then a points or growth prize (credit;
    the expiry of points from the tenant's policy, cached)."""
    k, out = w.keys, []
    if w.plan.cost:
        out.append(
            ledger.Posting(
                kind="debit",
                amount=w.plan.cost,
                member_id=k.member_id,
                reason="wheel.spin",
                source_ref=w.source_ref,
                idempotency_key=f"wheel:cost:{k.spin_id}",
                key_is_new=True,  # spin_id is a fresh uuid
            )
        )
    if w.credit is not None:
        currency, amount = w.credit
        points.check_credit(currency, amount)
        expires = await points.expiry_at(uow.ctx, uow.conn, k.tenant_id, currency, k.now)
        out.append(
            ledger.Posting(
                kind="credit",
                currency=currency,
                amount=amount,
                member_id=k.member_id,
                reason="wheel.prize",
                source_ref=w.source_ref,
                idempotency_key=f"wheel:prize:{k.spin_id}",
                key_is_new=True,
                expires_at=expires,
            )
        )
    return out


def _spin_out(rt: Runtime, w: rules.SpinWrite, recorded: repo.SpinRecorded) -> SpinOut:
    p, plan = w.prize, w.plan
    return SpinOut(
        str(w.keys.spin_id),
        plan.spin_no,
        w.drawn.index,
        rt.layout_version,
        WonPrize(
            w.drawn.index,
            p.key,
            p.name,
            p.image_url,
            p.kind,
            p.value,
            recorded.award_id,
            recorded.coupon_code,
            w.award_state,
        ),
        plan.free,
        plan.cost,
        w.drawn.forced,
        plan.free_left,
        plan.spins_left,
    )


async def spin_once(ctx: Context, tenant_id: int, member_id: int, key: str) -> SpinOut:
    """A spin in its own unit of work, as the route runs it without an Idempotency-Key (one
    statement, no BEGIN/COMMIT): for the CLI checks and tests."""
    async with unit_of_work(ctx, single_statement=True) as uow:
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
    member = rules.member_spins(m)
    left = rules.spins_left(cfg, member, now.astimezone(rt.tz).date())
    guaranteed_in = None
    if rt.table.pity_after is not None:
        guaranteed_in = max(1, rt.table.pity_after + 1 - (member.pity if member else 0))
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
        left.free_left,
        left.today,
        left.campaign,
        min_level,
        level >= min_level,
        guaranteed_in,
        left.spins,
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
    return live_from(await repo.wheels_with_member(conn, tenant_id, member_id), ctx.clock.now())


def live_from(rows: Iterable[Any], now: datetime) -> list[dict[str, Any]]:
    """Public: ``live_for_member`` from the caller's rows of every wheel with the member's
    counters (``key, config, spins, day, spins_day, free_used_day``, by key)."""
    out = []
    for r in rows:
        cfg = r["config"]
        if rules.status_of(cfg, now) != "open":
            continue
        today = now.astimezone(ZoneInfo(cfg.get("timezone", "Asia/Shanghai"))).date()
        left = rules.spins_left(cfg, rules.member_spins(r), today)
        out.append(
            {
                "key": r["key"],
                "name": cfg.get("name", ""),
                "freeSpinsLeft": left.free_left,
                "spinsLeftToday": left.today,
            }
        )
    return out


async def erase_contacts(conn: asyncpg.Connection, tenant_id: int, member_id: int) -> int:
    """Public (privacy erasure): the contacts given to claim prizes are removed; the awards,
    draws and audit stay."""
    return await repo.erase_contacts(conn, tenant_id, member_id)
