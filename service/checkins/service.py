"""Check-ins: campaign config, the daily check-in, make-ups, calendars, and the rebuild.

PostgreSQL decides: one row per member per local day (the unique key is the last guard) and
the member's streak row, which every write of the member changes. A check-in or make-up is
read -> pure plan -> ONE statement (issue 10): one read of the member's state, a plan by
``rules.plan_checkin`` / ``rules.plan_makeup``, then ``repository.write``: the streak row
guarded by the state read (``total_days`` and ``last_day``), the day's row, the reward or
cost through the ledger's ``engage_ledger_post`` and the events, all one statement, which is
its own transaction (``respond_single``: no BEGIN/COMMIT). When another write of the member
landed in between, the guard makes the statement fail as a whole (``engage_conflict``,
SQLSTATE 40001) and the request re-reads and re-plans (a repeated tap then finds its day and
replays). With an Idempotency-Key the same code runs in a transaction, the streak row locked
before the read. Round trips: PostgreSQL 2 (read, write), Redis 1.

Redis holds the calendars the read path serves (bitmaps). The choice (issue 10): the day's
bit is set BEFORE the write, in the request's one Redis call together with its folded rate
limit (``checkin_mark.lua``; 429 marks nothing), and the bits that call turned on are
cleared again by an ``on_rollback`` hook when the write does not commit (a refused make-up,
a failure). The write statement's return is the commit point (``uow.committed()``): from
there the bits stay, whatever fails later (encoding the answer, a cancellation). Nothing
runs after the commit but the dispatcher's wake. Consequences:

- between the mark and the commit (milliseconds) a page may show the day checked early;
- if the process dies between the mark and the end of the statement, or Redis fails just
  when the mark is taken back, the calendar shows a day PostgreSQL does not have until
  ``engage rebuild checkins``, which drops each campaign's calendars and seeds them from
  PostgreSQL (then catches up rows written meanwhile), so the calendars equal PostgreSQL;
- a calendar Redis lacks (never seeded, expired, flushed) is not seeded by the write: the
  mark sets the day on the calendar key alone, which leaves the calendar incomplete (its
  make-up key missing), and the next read merges it with PostgreSQL (``store.read``);
- one member firing many writes of different days at once (e.g. twenty make-ups) makes them
  re-plan in turn; after ``WRITE_ATTEMPTS`` lost races a write answers 409 CONFLICT with
  Retry-After (effects are never doubled: the guard and the unique day key hold).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import msgspec
import structlog

from service.checkins import repository as repo
from service.checkins import rules, store
from service.checkins.schemas import (
    CalendarDay,
    CampaignIn,
    CheckinOut,
    CheckinState,
    DayReward,
    MakeupState,
    RewardOut,
)
from service.core import outbox, retry
from service.core.constraints import problem, register_check, validation_failed
from service.core.context import CONFIG_CACHE_TTL_S, Context
from service.core.errors import DomainError, register_codes
from service.core.metrics import CHECKINS
from service.core.ratelimit import RateCheck
from service.core.uow import UnitOfWork
from service.members import service as members
from service.points import ledger
from service.points import service as points

log = structlog.get_logger("engage.checkins")

register_codes(
    {
        "CAMPAIGN_NOT_FOUND": (404, "签到活动不存在", "No such check-in campaign."),
        "CAMPAIGN_NOT_LIVE": (
            409,
            "签到活动未在进行中",
            "The check-in campaign is not running now.",
        ),
        "MAKEUP_NOT_OFFERED": (409, "本活动不支持补签", "This campaign offers no make-ups."),
        "MAKEUP_DATE_IN_FUTURE": (422, "不能补签未来的日期", "The date is in the future."),
        "MAKEUP_DATE_IS_TODAY": (422, "今天请直接签到", "Today is checked in, not made up."),
        "MAKEUP_WINDOW_PASSED": (
            422,
            "该日期已超出可补签范围",
            "The date is older than the make-up window.",
        ),
        "MAKEUP_BEFORE_CAMPAIGN": (
            422,
            "活动开始前的日期不能补签",
            "The date is before the campaign started.",
        ),
        "MAKEUP_BEFORE_JOINING": (
            422,
            "入会前的日期不能补签",
            "The date is before the member joined.",
        ),
        "MAKEUP_QUOTA_USED": (409, "本月补签次数已用完", "No make-ups left for that month."),
        "MAKEUP_DAY_CHECKED": (409, "该日期已签到，无需补签", "That day is already checked in."),
    }
)

UPCOMING_DAYS = 7


async def _count_checkin() -> None:
    CHECKINS.inc()


_CACHE_TTL = CONFIG_CACHE_TTL_S  # seen by every process within it (core/context.py)
_JOINED_CACHE_TTL = 3600.0  # joining never changes
_JOINED_CACHE_MAX = 100_000


@dataclass(frozen=True, slots=True)
class Campaign:
    id: int
    tenant_id: int
    key: str
    version: int
    state: str
    tz: ZoneInfo
    starts_at: datetime
    ends_at: datetime | None
    epoch: date  # local day of the start: bit 0 of every calendar
    plan: rules.RewardPlan
    makeup: rules.MakeupRules
    config: dict[str, Any]
    updated_at: datetime

    def effective_state(self, now: datetime) -> str:
        if self.state != "live":
            return self.state
        if now < self.starts_at:
            return "upcoming"
        if self.ends_at is not None and now >= self.ends_at:
            return "ended"
        return "live"

    def offset(self, day: date) -> int:
        return (day - self.epoch).days

    def last_day(self) -> date | None:
        """The last local day one can check in (the day containing the last instant)."""
        if self.ends_at is None:
            return None
        return rules.local_day(self.ends_at - timedelta(microseconds=1), self.tz)


def _campaign(row: asyncpg.Record) -> Campaign:
    cfg = row["config"]
    tz = ZoneInfo(row["timezone"])
    cycle = cfg.get("cycle") or {}
    mk = cfg.get("makeup") or {}
    base = cfg.get("baseReward") or {}
    plan = rules.RewardPlan(
        rules.Reward(int(base.get("points", 0)), int(base.get("growth", 0))),
        tuple(
            rules.Milestone(
                int(m["day"]), rules.Reward(int(m.get("points", 0)), int(m.get("growth", 0)))
            )
            for m in cfg.get("streakRewards") or []
        ),
        int(cycle.get("days") or 0) if cycle.get("mode") == "ladder" else 0,
    )
    return Campaign(
        row["id"],
        row["tenant_id"],
        row["key"],
        row["version"],
        row["state"],
        tz,
        row["starts_at"],
        row["ends_at"],
        rules.local_day(row["starts_at"], tz),
        plan,
        rules.MakeupRules(
            int(mk.get("perMonth", 0)), int(mk.get("costPoints", 0)), int(mk.get("windowDays", 7))
        ),
        cfg,
        row["updated_at"],
    )


CAMPAIGN_CACHE = "checkins.campaigns"


async def find_campaign(
    ctx: Context, conn: asyncpg.Connection, tenant_id: int, key: str, *, fresh: bool = False
) -> Campaign | None:
    """The campaign (drafts included), cached in-process for a few seconds: the check-in hot
    path must not read its config on every call. Other processes drop it within a second of
    a change (service.core.cache)."""

    async def load() -> Campaign | None:
        row = await repo.get_campaign(conn, tenant_id, key)
        return None if row is None else _campaign(row)

    cache = ctx.caches.get(CAMPAIGN_CACHE, _CACHE_TTL)
    campaign = await cache.get((tenant_id, key), load, fresh=fresh)
    if campaign is None:
        cache.drop((tenant_id, key))  # a campaign created next is seen at once
    return campaign


async def member_campaign(
    ctx: Context, conn: asyncpg.Connection, tenant_id: int, key: str
) -> Campaign:
    """A campaign as members may see it. A draft exists but is not open: 409
    CAMPAIGN_NOT_LIVE with ``state: "draft"`` (as an ended one answers its state)."""
    c = await find_campaign(ctx, conn, tenant_id, key)
    if c is None:
        raise DomainError("CAMPAIGN_NOT_FOUND", details={"campaign": key})
    if c.state == "draft":
        raise DomainError("CAMPAIGN_NOT_LIVE", details={"campaign": c.key, "state": "draft"})
    return c


def _require_live(c: Campaign, now: datetime) -> None:
    state = c.effective_state(now)
    if state != "live":
        raise DomainError("CAMPAIGN_NOT_LIVE", details={"campaign": c.key, "state": state})


# ----------------------------------------------------------------------------- config


def config_problems(data: CampaignIn) -> list[dict[str, str]]:
    """Every problem of a campaign config, each with a path, a code and words."""
    problems: list[dict[str, str]] = []
    if rules.zone(data.timezone) is None:
        problems.append(
            {"path": "timezone", "code": "TIMEZONE_UNKNOWN", "problem": "no such time zone"}
        )
    # Offsets are required by the decoder (AwareDatetime): no naive time reaches this point.
    if data.ends_at is not None and data.ends_at <= data.starts_at:
        problems.append(
            {"path": "endsAt", "code": "WINDOW_EMPTY", "problem": "endsAt must follow startsAt"}
        )
    cycle_days = 0
    if data.cycle.mode == "ladder":
        if not data.cycle.days:
            problems.append(
                {
                    "path": "cycle.days",
                    "code": "CYCLE_DAYS_MISSING",
                    "problem": "a ladder needs days",
                }
            )
        else:
            cycle_days = data.cycle.days
    elif data.cycle.days is not None:
        problems.append(
            {
                "path": "cycle.days",
                "code": "CYCLE_DAYS_UNUSED",
                "problem": "days applies to the ladder mode only",
            }
        )
    for i, msg in rules.ladder_problems([m.day for m in data.streak_rewards], cycle_days):
        problems.append(
            {"path": f"streakRewards[{i}].day", "code": "STREAK_LADDER_INVALID", "problem": msg}
        )
    for i, m in enumerate(data.streak_rewards):
        if m.points == 0 and m.growth == 0:
            problems.append(
                {
                    "path": f"streakRewards[{i}]",
                    "code": "REWARD_EMPTY",
                    "problem": "a streak reward gives points or growth",
                }
            )
    return problems


register_check(CampaignIn, config_problems)


async def put_campaign(uow: UnitOfWork, tenant_id: int, key: str, data: CampaignIn) -> Campaign:
    ctx, conn = uow.ctx, uow.conn
    problems = config_problems(data)
    if problems:
        raise validation_failed(problems)
    row = await repo.put_campaign(
        conn,
        tenant_id,
        key,
        data.state,
        data.timezone,
        data.starts_at,
        data.ends_at,
        msgspec.to_builtins(data),
        ctx.clock.now(),
    )
    uow.after_commit(functools.partial(ctx.caches.changed, CAMPAIGN_CACHE, (tenant_id, key)))
    return _campaign(row)


# ----------------------------------------------------------------------------- outputs


def _reward_out(reward: rules.Reward, m: rules.Milestone | None) -> RewardOut:
    return RewardOut(reward.points, reward.growth, m.day if m else None)


def _day_reward(c: Campaign, day: date, streak: int) -> DayReward:
    reward, m = c.plan.reward_for(streak)
    return DayReward(day, streak, c.plan.position(streak), _reward_out(reward, m))


def _checkin_out(
    c: Campaign, row: Any, today: date, alive: int, checked_today: bool, replayed: bool
) -> CheckinOut:
    """The answer of a check-in or make-up. ``tomorrow`` is the next day one can check in:
    tomorrow after a check-in; after a make-up, today if today is still open."""
    nxt = today + timedelta(days=1) if checked_today else today
    last = c.last_day()
    tomorrow = _day_reward(c, nxt, alive + 1) if last is None or nxt <= last else None
    return CheckinOut(
        c.key,
        row["day"],
        row["kind"],
        row["streak"] if row["kind"] == "daily" else alive,
        RewardOut(row["reward_points"], row["reward_growth"], row["milestone"]),
        row["cost"],
        tomorrow,
        row["created_at"],
        replayed,
    )


# ----------------------------------------------------------------------------- check-in

# A write planned from a read loses when another write of the same member lands in between
# (its guard fails, nothing is written): re-read and re-plan, this many times at most, after a
# short random pause (so that writers of one member who all lost re-read one after the other
# instead of racing again together), then 409 CONFLICT with Retry-After.
WRITE_ATTEMPTS = 12
_BACK_OFF_S = 0.005  # base of the jittered back-off between lost races (service.core.retry)


def _conflict(c: Campaign, day: date) -> DomainError:
    return DomainError(
        "CONFLICT",
        details={"campaign": c.key, "date": day.isoformat()},
        headers={"Retry-After": "1"},
    )


@dataclass(frozen=True, slots=True)
class Mark:
    """A day on a member's Redis calendar."""

    tenant_id: int
    campaign_id: int
    epoch: date
    member_id: int
    offset: int
    makeup: bool


async def _mark_first(uow: UnitOfWork, mark: Mark, rate: RateCheck | None) -> None:
    """The request's one Redis call, before PostgreSQL: its rate limit (folded in: 429 and
    nothing else when refused) and the day's bits. If the write does not commit, the bits
    this call turned on are cleared again (on_rollback); see the module docstring."""
    ctx = uow.ctx
    m = mark
    turned = await store.mark(
        ctx, m.tenant_id, m.campaign_id, m.epoch, m.member_id, m.offset, m.makeup, rate
    )
    if turned:

        async def unmark() -> None:
            await store.unmark(
                ctx, m.tenant_id, m.campaign_id, m.epoch, m.member_id, m.offset, turned
            )

        uow.on_rollback(unmark)


async def _read(
    uow: UnitOfWork, c: Campaign, member_id: int, day: date, *, with_days: bool = False
) -> repo.MemberRead:
    """The member's state to plan from. In a single-statement unit it is a plain read (the
    write's guard catches a change made meanwhile); in a transactional unit (a request with
    an Idempotency-Key) the member's streak row is locked first, so the plan cannot go
    stale (the guard cannot fail there, and a failed statement could not be retried)."""
    if not uow.single_statement:
        await repo.lock_streak(uow.conn, c.tenant_id, c.id, member_id, uow.ctx.clock.now())
    return await repo.read_member(uow.conn, c.tenant_id, c.id, member_id, day, with_days=with_days)


async def _write(
    uow: UnitOfWork,
    c: Campaign,
    member_id: int,
    plan: rules.CheckinPlan,
    now: datetime,
    events: list[outbox.OutboxRow],
    postings: list[ledger.Posting],
) -> bool:
    """Write the plan in one statement; False when the member's state changed since the read
    (nothing written: re-read and re-plan). A ledger refusal (INSUFFICIENT_POINTS) is raised
    as its DomainError, nothing written. In a single-statement unit the statement's return is
    the commit point (``uow.committed()``): the calendar's ``unmark`` is disarmed there."""
    try:
        with ledger.refusals():
            await repo.write(uow.conn, c.tenant_id, c.id, member_id, plan, now, events, postings)
    except asyncpg.SerializationError:
        if not uow.single_statement:
            raise  # cannot happen under the row lock; the boundary answers 409 CONFLICT
        return False
    uow.committed()  # the commit point: the day's bits stay on the calendar from here on
    uow.wake_dispatcher()
    return True


def _checkin_events(
    c: Campaign, member_id: int, plan: rules.CheckinPlan, now: datetime
) -> list[outbox.OutboxRow]:
    """checkin.done, and checkin.streak when the day is a configured streak day."""
    day = plan.day.isoformat()
    events = [
        outbox.OutboxRow(
            c.tenant_id,
            uuid.uuid4(),
            "checkin.done",
            member_id,
            {"campaign": c.key, "date": day, "streak": plan.streak},
            now,
        )
    ]
    if plan.milestone is not None:
        events.append(
            outbox.OutboxRow(
                c.tenant_id,
                uuid.uuid4(),
                "checkin.streak",
                member_id,
                {
                    "campaign": c.key,
                    "date": day,
                    "streak": plan.streak,
                    "milestone": plan.milestone.day,
                    "points": plan.reward.points,
                    "growth": plan.reward.growth,
                },
                now,
            )
        )
    return events


async def _reward_postings(
    uow: UnitOfWork, c: Campaign, member_id: int, plan: rules.CheckinPlan, now: datetime
) -> list[ledger.Posting]:
    """The check-in's reward as ledger credits (idempotency key per campaign, day, member and
    currency; the statement writes the day's row, so no entry holds the key yet)."""
    ref = f"checkin:{c.id}:{plan.day.isoformat()}"
    out = []
    for currency, amount in (("points", plan.reward.points), ("growth", plan.reward.growth)):
        if amount > 0:
            expires = await points.expiry_at(uow.ctx, uow.conn, c.tenant_id, currency, now)
            out.append(
                ledger.Posting(
                    kind="credit",
                    member_id=member_id,
                    currency=currency,
                    amount=amount,
                    reason="checkin.daily",
                    source_ref=ref,
                    idempotency_key=f"{ref}:{member_id}:{currency}",
                    key_is_new=True,
                    expires_at=expires,
                )
            )
    return out


def _planned_row(plan: rules.CheckinPlan, streak: int, now: datetime) -> dict[str, Any]:
    """The day's row as the write stores it (the answer is shaped from it)."""
    return {
        "day": plan.day,
        "kind": plan.kind,
        "streak": streak,
        "reward_points": plan.reward.points,
        "reward_growth": plan.reward.growth,
        "milestone": plan.milestone.day if plan.milestone else None,
        "cost": plan.cost,
        "created_at": now,
    }


async def check_in(
    uow: UnitOfWork, tenant_id: int, member_id: int, key: str, rate: RateCheck | None = None
) -> CheckinOut:
    """Check in for today in the campaign's time zone: once per local day, whatever happens.

    Round trips: Redis once (``rate``, the request's pending rate limit, and today's bit:
    ``_mark_first``), then PostgreSQL twice: read the member's state (one statement), plan
    with ``rules.plan_checkin``, write streak, row, reward (``engage_ledger_post``) and events
    in one guarded statement (``repository.write``), which is its own transaction in a
    single-statement unit. A repeated tap finds today's row and answers the first result
    (``replayed``); a tap that lost a race to another re-reads and replays."""
    ctx = uow.ctx
    c = await member_campaign(ctx, uow.conn, tenant_id, key)
    now = ctx.clock.now()
    _require_live(c, now)
    today = rules.local_day(now, c.tz)
    mark = Mark(tenant_id, c.id, c.epoch, member_id, c.offset(today), False)
    await _mark_first(uow, mark, rate)
    for attempt in range(WRITE_ATTEMPTS):
        got = await _read(uow, c, member_id, today)
        if got.row is not None:
            alive = rules.alive_streak(got.streaks, today)
            return _checkin_out(c, got.row, today, alive, True, True)
        history = None
        if rules.needs_history(got.streaks, today):
            # The clock moved back (demos): the streaks are recounted from the days.
            rows = await repo.member_days(uow.conn, tenant_id, c.id, member_id)
            history = {r["day"] for r in rows}
        plan = rules.plan_checkin(c.plan, got.streaks, today, history)
        events = _checkin_events(c, member_id, plan, now)
        postings = await _reward_postings(uow, c, member_id, plan, now)
        if not await _write(uow, c, member_id, plan, now, events, postings):
            await retry.back_off(ctx, attempt, _BACK_OFF_S)
            continue
        uow.after_commit(_count_checkin)  # engage_checkins_total: committed check-ins only
        row = _planned_row(plan, plan.streak, now)
        return _checkin_out(c, row, today, rules.alive_streak(plan.after, today), True, False)
    raise _conflict(c, today)


async def _joined_day(ctx: Context, tenant_id: int, member_id: int, tz: ZoneInfo) -> date:
    """The local day the member joined; joining never changes, so it is cached in-process."""
    cache = ctx.caches.get("checkins.joined", _JOINED_CACHE_TTL, max_entries=_JOINED_CACHE_MAX)

    async def load() -> datetime:
        return (await members.profile(ctx, tenant_id, member_id)).joined_at

    return rules.local_day(await cache.get((tenant_id, member_id), load), tz)


def _makeup_refusal(c: Campaign, code: str, day: date) -> DomainError:
    if code == "MAKEUP_QUOTA_USED":
        return DomainError(
            code, details={"month": day.strftime("%Y-%m"), "perMonth": c.makeup.per_month}
        )
    return DomainError(code, details={"date": day.isoformat()})


def _cost_posting(c: Campaign, member_id: int, plan: rules.CheckinPlan) -> list[ledger.Posting]:
    """The make-up's cost as a ledger debit (earliest-expiring points first; refused with
    INSUFFICIENT_POINTS when short, and then nothing of the make-up is written)."""
    if plan.cost <= 0:
        return []
    ref = f"checkin:{c.id}:{plan.day.isoformat()}"
    return [
        ledger.Posting(
            kind="debit",
            member_id=member_id,
            currency="points",
            amount=plan.cost,
            reason="checkin.makeup",
            source_ref=ref,
            idempotency_key=f"{ref}:{member_id}:makeup",
            key_is_new=True,  # the statement writes the day's row: no entry holds the key
        )
    ]


async def make_up(
    uow: UnitOfWork,
    tenant_id: int,
    member_id: int,
    key: str,
    day: date,
    rate: RateCheck | None = None,
) -> CheckinOut:
    """Fill a missed ``day``: the date checks, then (from one read of the member's days) the
    monthly quota and the recounted streaks (a make-up joining two runs makes one), written
    with the cost debited in one guarded statement; a concurrent make-up makes the guard fail
    and this one re-reads, so the quota holds. Round trips as ``check_in``: the day's bits
    go with the rate limit before the write, and are taken back if it does not commit."""
    ctx = uow.ctx
    c = await member_campaign(ctx, uow.conn, tenant_id, key)
    now = ctx.clock.now()
    _require_live(c, now)
    today = rules.local_day(now, c.tz)
    joined = await _joined_day(ctx, tenant_id, member_id, c.tz)
    problem = rules.makeup_problem(c.makeup, day, today, c.epoch, joined)
    if problem is not None:
        raise DomainError(
            problem,
            details={
                "date": day.isoformat(),
                "today": today.isoformat(),
                "windowDays": c.makeup.window_days,
            },
        )
    mark = Mark(tenant_id, c.id, c.epoch, member_id, c.offset(day), True)
    await _mark_first(uow, mark, rate)
    for attempt in range(WRITE_ATTEMPTS):
        got = await _read(uow, c, member_id, day, with_days=True)
        if got.row is not None and got.row["kind"] == "makeup":
            alive = rules.alive_streak(got.streaks, today)
            return _checkin_out(c, got.row, today, alive, got.streaks.last_day == today, True)
        plan = rules.plan_makeup(c.makeup, got.streaks, got.days or {}, day, today)
        if isinstance(plan, str):
            raise _makeup_refusal(c, plan, day)
        alive = rules.alive_streak(plan.after, today)
        event = outbox.OutboxRow(
            tenant_id,
            uuid.uuid4(),
            "checkin.makeup",
            member_id,
            {"campaign": c.key, "date": day.isoformat(), "streak": alive, "cost": plan.cost},
            now,
        )
        postings = _cost_posting(c, member_id, plan)
        if not await _write(uow, c, member_id, plan, now, [event], postings):
            await retry.back_off(ctx, attempt, _BACK_OFF_S)
            continue
        row = _planned_row(plan, alive, now)
        return _checkin_out(c, row, today, alive, plan.after.last_day == today, False)
    raise _conflict(c, day)


# ----------------------------------------------------------------------------- calendars


def _bitmaps(c: Campaign, rows: list[Any]) -> tuple[bytes, bytes]:
    cal = rules.bitmap_of(c.offset(r["day"]) for r in rows)
    mk = rules.bitmap_of(c.offset(r["day"]) for r in rows if r["kind"] == "makeup")
    return cal, mk


async def _seed_member(ctx: Context, c: Campaign, member_id: int) -> tuple[bytes, bytes]:
    async with ctx.db.connection() as conn:
        rows = await repo.member_days(conn, c.tenant_id, c.id, member_id)
    cal, mk = _bitmaps(c, rows)
    await store.seed(ctx, c.tenant_id, c.id, c.epoch, member_id, cal, mk)
    return cal, mk


def _parse_month(month: str | None, today: date) -> date:
    if month is None:
        return today.replace(day=1)
    try:
        y, m = month.split("-")
        return date(int(y), int(m), 1)
    except ValueError as exc:
        raise validation_failed(
            [problem("query", "month", "FORMAT_INVALID", "a month such as 2026-11")]
        ) from exc


async def member_state(
    ctx: Context,
    tenant_id: int,
    member_id: int,
    key: str,
    month: str | None,
    rate: RateCheck | None = None,
) -> CheckinState:
    """What the check-in page shows, from the Redis calendar (seeded from PostgreSQL when
    missing): today, streaks, a month's calendar, make-ups left, the rewards ahead.
    ``rate``: the request's pending rate limit, counted in the calendar read's round trip."""
    async with ctx.db.connection() as conn:
        c = await member_campaign(ctx, conn, tenant_id, key)
    now = ctx.clock.now()
    today = rules.local_day(now, c.tz)
    first = _parse_month(month, today)
    got = await store.read(ctx, tenant_id, c.id, c.epoch, member_id, rate)
    cal, mk = got if got is not None else await _seed_member(ctx, c, member_id)
    state, alive = rules.streaks_from_bitmap(cal, c.epoch, today)
    checked_today = rules.bit_set(cal, c.offset(today))
    _, last = rules.month_bounds(first)
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    used = sum(rules.bit_set(mk, c.offset(d)) for d in days)
    left = max(0, c.makeup.per_month - used)
    joined: date | None = None
    calendar = []
    for d in days:
        checked = rules.bit_set(cal, c.offset(d))
        can = False
        if not checked and left > 0 and d < today and d >= c.epoch:
            if joined is None:
                joined = await _joined_day(ctx, tenant_id, member_id, c.tz)
            can = rules.makeup_problem(c.makeup, d, today, c.epoch, joined) is None
        calendar.append(CalendarDay(d, checked, rules.bit_set(mk, c.offset(d)), can))
    effective = c.effective_state(now)
    upcoming = []
    if effective in ("live", "upcoming"):
        last_day = c.last_day()
        for d, streak, _, _ in rules.upcoming(c.plan, state, today, checked_today, UPCOMING_DAYS):
            if last_day is not None and d > last_day:
                break
            upcoming.append(_day_reward(c, d, streak))
    return CheckinState(
        campaign=c.key,
        title=str(c.config.get("title", "")),
        rules_text=str(c.config.get("rulesText", "")),
        state=effective,
        timezone=c.tz.key,
        today=today,
        now=now.astimezone(UTC),
        checked_in_today=checked_today,
        current_streak=alive,
        longest_streak=state.longest,
        total_days=state.total,
        month=first.strftime("%Y-%m"),
        calendar=calendar,
        makeup=MakeupState(
            c.makeup.per_month, used, left, c.makeup.cost_points, c.makeup.window_days
        ),
        upcoming=upcoming,
    )


# A check-in marks its day before its statement runs (see check_in); one whose mark a rebuild
# dropped and whose commit the rebuild's read missed is caught up by a last pass over the rows
# created since shortly before the rebuild began.
REBUILD_CATCH_UP = timedelta(minutes=1)


async def _seed_calendars(
    ctx: Context, conn: asyncpg.Connection, c: Campaign, since: datetime | None = None
) -> int:
    n = 0
    async for batch in repo.iter_calendars(conn, c.id, since=since):
        items = []
        for r in batch:
            rows = [{"day": d, "kind": k} for d, k in zip(r["days"], r["kinds"], strict=True)]
            cal, mk = _bitmaps(c, rows)
            items.append((r["member_id"], cal, mk))
        await store.seed_many(ctx, c.tenant_id, c.id, c.epoch, items)
        n += len(items)
    return n


async def rebuild(ctx: Context, tenant_id: int | None = None) -> dict[str, Any]:
    """Make every calendar in Redis equal PostgreSQL: each campaign's calendars are dropped
    (a day marked by a check-in that never committed goes with them), seeded from PostgreSQL
    (merged, see checkin_seed.lua, so a check-in landing meanwhile is kept), then the rows
    written since shortly before the rebuild began are merged once more (a check-in in
    flight while its calendar was dropped). Returns ``{campaigns, calendars}``."""
    n_campaigns = n_calendars = 0
    since = ctx.clock.now() - REBUILD_CATCH_UP
    async with ctx.db.connection() as conn:
        campaigns = [_campaign(r) for r in await repo.campaigns(conn, tenant_id)]
        for c in campaigns:
            n_campaigns += 1
            await store.delete_campaign(ctx, c.tenant_id, c.id)
            n_calendars += await _seed_calendars(ctx, conn, c)
        for c in campaigns:
            await _seed_calendars(ctx, conn, c, since)
    return {"campaigns": n_campaigns, "calendars": n_calendars}


# ----------------------------------------------------------------------------- for challenges


async def campaign_timezone(
    ctx: Context, conn: asyncpg.Connection, tenant_id: int, key: str
) -> str | None:
    """Public: the time zone of a campaign, or None if there is no such campaign."""
    c = await find_campaign(ctx, conn, tenant_id, key)
    return c.tz.key if c else None


async def count_checked_days(
    ctx: Context,
    conn: asyncpg.Connection,
    tenant_id: int,
    key: str,
    member_ids: list[int],
    first: date,
    last: date,
    *,
    include_makeups: bool,
) -> dict[int, int]:
    """Public: how many days in [first, last] each member checked in (from PostgreSQL)."""
    c = await find_campaign(ctx, conn, tenant_id, key)
    if c is None or not member_ids:
        return {}
    return await repo.count_days(conn, tenant_id, c.id, member_ids, first, last, include_makeups)


# ----------------------------------------------------------------------------- launch summary


async def live_for_member(
    ctx: Context, conn: asyncpg.Connection, tenant_id: int, member_id: int
) -> list[dict[str, Any]]:
    """Public (the launch summary): every live campaign with today's state for the member,
    in one statement whatever the number of campaigns: ``{key, title, today,
    checkedInToday, currentStreak}`` ("today" in the campaign's time zone; a streak whose
    last day is before yesterday is broken: 0)."""
    now = ctx.clock.now()
    return live_from(await repo.live_with_streaks(conn, tenant_id, member_id, now), now)


def live_from(rows: Iterable[Any], now: datetime) -> list[dict[str, Any]]:
    """Public: ``live_for_member`` from the caller's rows of live campaigns (``key, timezone,
    title, last_day, current_streak``, by key)."""
    out = []
    for r in rows:
        today = rules.local_day(now, ZoneInfo(r["timezone"]))
        last = r["last_day"]
        alive = last is not None and (today - last).days <= 1
        out.append(
            {
                "key": r["key"],
                "title": r["title"] or "",
                "today": today,
                "checkedInToday": last == today,
                "currentStreak": int(r["current_streak"] or 0) if alive else 0,
            }
        )
    return out


async def streaks_at_risk(
    ctx: Context, conn: asyncpg.Connection, tenant_id: int, today: date, limit: int = 10_000
) -> list[tuple[str, int, int]]:
    """Public: (campaign key, member id, streak) of live streaks not yet extended ``today``
    (their last check-in was the day before): they break at the end of today."""
    rows = await repo.streaks_at_risk(conn, tenant_id, today, limit)
    return [(r["key"], r["member_id"], r["current_streak"]) for r in rows]
