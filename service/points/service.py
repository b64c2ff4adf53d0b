"""The ledger and levels: credit, debit, reverse, expire; level ups, reviews; event rules.

Every function that changes balances takes the caller's connection and runs inside the
caller's transaction (the request boundary commits); each is ONE call of the ledger's one
writer, the server-side ``engage_ledger_post`` (service.points.ledger), which other features
may also call inside their own single statement. Other features pay through ``credit`` and
``debit``; the ledger never calls them back.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from service.core.constraints import problem, validation_failed
from service.core.context import CONFIG_CACHE_TTL_S, Context
from service.core.errors import DomainError, register_codes
from service.core.tenancy import get_tenant, update_tenant_settings
from service.core.uow import UnitOfWork, unit_of_work
from service.points import ledger, rules
from service.points import repository as repo

register_codes(
    {
        "INSUFFICIENT_POINTS": (409, "积分不足", "Not enough points."),
        "ENTRY_NOT_FOUND": (404, "积分记录不存在", "No such ledger entry."),
        "NOT_REVERSIBLE": (422, "该记录不能冲正", "Only credits can be reversed."),
        "REVERSAL_SHORTFALL": (
            409,
            "积分已被使用，无法全额扣回",
            "The credited points were already spent.",
        ),
        "GROWTH_NOT_SPENDABLE": (422, "成长值不能扣减", "Growth cannot be spent or debited."),
        "LEVELS_NOT_CONFIGURED": (404, "尚未配置会员等级", "No level ladder is configured."),
        "RULE_NOT_FOUND": (404, "规则不存在", "No such rule."),
        "EVENT_IN_FUTURE": (
            422,
            "事件时间不能晚于当前时间",
            "The event's occurredAt is in the future.",
        ),
    }
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
EXPIRING_SOON_DAYS = 30


# ----------------------------------------------------------------------------- tenant policy


@dataclass(frozen=True, slots=True)
class Policy:
    tz: ZoneInfo
    expiry: rules.ExpiryPolicy
    reversal_shortfall: str  # "partial" or "refuse"
    unknown_member: str  # "create" or "reject"


DEFAULT_POLICY = {
    "expiry": {"mode": "never"},
    "reversalShortfall": "partial",
    "unknownMember": "create",
}

_CACHE_TTL = CONFIG_CACHE_TTL_S  # seen by every process within it (core/context.py)


POLICY_CACHE = "points.policy"
LADDER_CACHE = "points.ladder"


async def invalidate_caches(ctx: Context, tenant_id: int) -> None:
    """The tenant's policy or ladder changed: every process drops its copy (after commit)."""
    for name in (POLICY_CACHE, LADDER_CACHE):
        await ctx.caches.changed(name, tenant_id)


async def policy_of(ctx: Context, conn: asyncpg.Connection, tenant_id: int) -> Policy:
    return await ctx.caches.get(POLICY_CACHE, _CACHE_TTL).get(
        tenant_id, functools.partial(_load_policy, conn, tenant_id)
    )


async def _load_policy(conn: asyncpg.Connection, tenant_id: int) -> Policy:
    tenant = await get_tenant(conn, tenant_id)
    if tenant is None:
        raise DomainError("NOT_FOUND")
    raw = {**DEFAULT_POLICY, **(tenant.settings.get("points") or {})}
    exp = raw["expiry"]
    policy = Policy(
        tz=ZoneInfo(tenant.timezone),
        expiry=rules.ExpiryPolicy(
            exp.get("mode", "never"),
            int(exp.get("days") or 0),
            int(1 if exp.get("yearsAfter") is None else exp["yearsAfter"]),
        ),
        reversal_shortfall=raw["reversalShortfall"],
        unknown_member=raw["unknownMember"],
    )
    return policy


async def put_policy(uow: UnitOfWork, tenant_id: int, raw: dict) -> dict:
    ctx, conn = uow.ctx, uow.conn
    await update_tenant_settings(conn, tenant_id, {"points": raw})
    for name in (POLICY_CACHE, LADDER_CACHE):  # this transaction reads the new policy too
        ctx.caches.get(name, _CACHE_TTL).drop(tenant_id)
    uow.after_commit(functools.partial(invalidate_caches, ctx, tenant_id))
    return raw


async def get_policy_raw(conn: asyncpg.Connection, tenant_id: int) -> dict:
    tenant = await get_tenant(conn, tenant_id)
    assert tenant is not None
    return {**DEFAULT_POLICY, **(tenant.settings.get("points") or {})}


# ----------------------------------------------------------------------------- entries

# Every balance change is written by one server-side function (service.points.ledger); the
# functions below are Python's door to it (one round trip each, in the caller's transaction).
Entry = ledger.Entry


def _entry(row: Any, replayed: bool = False) -> Entry:
    return Entry(
        id=row["id"],
        member_id=row["member_id"],
        currency=row["currency"],
        kind=row["kind"],
        delta=row["delta"],
        balance_after=row["balance_after"],
        reason=row["reason"],
        note=row["note"],
        source_ref=row["source_ref"],
        reverses_entry_id=row["reverses_entry_id"],
        shortfall=row["shortfall"],
        expires_at=row["expires_at"],
        created_at=row["created_at"],
        replayed=replayed,
    )


@dataclass(slots=True)
class Credit:
    member_id: int
    currency: str
    amount: int
    reason: str
    note: str = ""
    source_ref: str | None = None
    idempotency_key: str | None = None
    # The caller just created what the key names (a fresh spin id, a check-in row inserted in
    # this transaction): no entry can hold it yet, so the lookup is skipped. The ledger's
    # unique key on idempotency_key still refuses a duplicate.
    key_is_new: bool = False


def _check_currency(currency: str) -> None:
    if currency not in rules.CURRENCIES:
        raise validation_failed(
            [problem("body", "currency", "NOT_ALLOWED", "one of 'points', 'growth'")]
        )


def check_credit(currency: str, amount: int) -> None:
    """Public: 422 unless ``currency`` is one of rules.CURRENCIES and ``amount`` positive."""
    _check_currency(currency)
    if amount <= 0:
        raise validation_failed([problem("body", "amount", "OUT_OF_RANGE", "must be positive")])


def check_debit(currency: str, amount: int) -> None:
    """Public: as ``check_credit``; growth is never spent (422 GROWTH_NOT_SPENDABLE)."""
    _check_currency(currency)
    if currency == "growth":
        raise DomainError("GROWTH_NOT_SPENDABLE")
    if amount <= 0:
        raise validation_failed([problem("body", "amount", "OUT_OF_RANGE", "must be positive")])


async def expiry_at(
    ctx: Context, conn: asyncpg.Connection, tenant_id: int, currency: str, now: datetime
) -> datetime | None:
    """Public: when points credited at ``now`` expire under the tenant's policy (cached; no
    round trip in steady state). Growth never expires."""
    if currency != "points":
        return None
    policy = await policy_of(ctx, conn, tenant_id)
    return rules.expiry_for(policy.expiry, now, policy.tz)


def credit_posting(c: Credit, expires_at: datetime | None) -> ledger.Posting:
    """Public: the ledger posting of a ``Credit`` (``expires_at`` from ``expiry_at``)."""
    return ledger.Posting(
        kind="credit",
        member_id=c.member_id,
        currency=c.currency,
        amount=c.amount,
        reason=c.reason,
        note=c.note,
        source_ref=c.source_ref,
        idempotency_key=c.idempotency_key,
        key_is_new=c.key_is_new,
        expires_at=expires_at if c.currency == "points" else None,
    )


async def credit(
    uow: UnitOfWork,
    tenant_id: int,
    member_id: int,
    currency: str,
    amount: int,
    *,
    reason: str,
    note: str = "",
    source_ref: str | None = None,
    idempotency_key: str | None = None,
    key_is_new: bool = False,
) -> Entry:
    """Public: add points or growth. A repeated idempotency key returns the first entry
    (``key_is_new``: the caller knows no entry holds the key, see ``Credit``)."""
    [entry] = await apply_credits(
        uow,
        tenant_id,
        [
            Credit(
                member_id,
                currency,
                amount,
                reason,
                note,
                source_ref,
                idempotency_key,
                key_is_new,
            )
        ],
    )
    return entry


async def apply_credits(uow: UnitOfWork, tenant_id: int, credits: list[Credit]) -> list[Entry]:
    """Credit many at once, in one round trip whatever the count (event batches)."""
    ctx, conn = uow.ctx, uow.conn
    for c in credits:
        check_credit(c.currency, c.amount)
    if not credits:
        return []
    now = ctx.clock.now()
    expires = await expiry_at(ctx, conn, tenant_id, "points", now)
    entries = await ledger.post(conn, tenant_id, now, [credit_posting(c, expires) for c in credits])
    uow.committed()  # single-statement unit: ledger.post was its write (no-op in a transaction)
    uow.wake_dispatcher()
    return [_written(e) for e in entries]


def _written(e: Entry | None) -> Entry:
    assert e is not None  # only an ``expire`` posting may answer null
    return e


async def debit(
    uow: UnitOfWork,
    tenant_id: int,
    member_id: int,
    amount: int,
    *,
    reason: str,
    note: str = "",
    source_ref: str | None = None,
    idempotency_key: str | None = None,
    currency: str = "points",
    key_is_new: bool = False,
) -> Entry:
    """Public: spend points, earliest-expiring first. 409 INSUFFICIENT_POINTS if short.
    A repeated idempotency key returns the first entry (``key_is_new``: see ``Credit``)."""
    ctx, conn = uow.ctx, uow.conn
    check_debit(currency, amount)
    posting = ledger.Posting(
        kind="debit",
        member_id=member_id,
        currency=currency,
        amount=amount,
        reason=reason,
        note=note,
        source_ref=source_ref,
        idempotency_key=idempotency_key,
        key_is_new=key_is_new,
    )
    [entry] = await ledger.post(conn, tenant_id, ctx.clock.now(), [posting])
    uow.wake_dispatcher()
    return _written(entry)


async def reverse(
    uow: UnitOfWork,
    tenant_id: int,
    entry_id: int,
    *,
    reason: str = "reversal",
    note: str = "",
) -> Entry:
    """Public: claw back a credit from the lots it created. Reversing twice changes nothing.

    If part of the credit was already spent or expired, the tenant's policy decides:
    ``partial`` (default) takes what is left and records the shortfall on the reversal entry;
    ``refuse`` answers 409 REVERSAL_SHORTFALL and changes nothing. We never take the missing
    part from other lots: points the member earned elsewhere are not collateral.
    404 ENTRY_NOT_FOUND, 422 NOT_REVERSIBLE (not a credit).
    """
    ctx, conn = uow.ctx, uow.conn
    policy = await policy_of(ctx, conn, tenant_id)
    posting = ledger.Posting(
        kind="reverse",
        reverses_entry_id=entry_id,
        reason=reason,
        note=note,
        refuse_shortfall=policy.reversal_shortfall == "refuse",
    )
    [entry] = await ledger.post(conn, tenant_id, ctx.clock.now(), [posting])
    uow.wake_dispatcher()
    return _written(entry)


async def expire_member(uow: UnitOfWork, tenant_id: int, member_id: int, currency: str) -> int:
    """Expire what is due for one member; returns the amount expired (0 if nothing)."""
    ctx = uow.ctx
    posting = ledger.Posting(kind="expire", member_id=member_id, currency=currency)
    [entry] = await ledger.post(uow.conn, tenant_id, ctx.clock.now(), [posting])
    if entry is None:
        return 0
    uow.wake_dispatcher()
    return -entry.delta


async def expire_due(ctx: Context, batch: int = 500) -> int:
    """The expiry job: write expiry entries for every lot past its date. Safe to rerun and to
    run in several processes at once (each member's expiry locks that member's account)."""
    total = 0
    while True:
        async with ctx.db.connection() as conn:
            due = await repo.due_accounts(conn, ctx.clock.now(), batch)
        if not due:
            return total
        for row in due:
            async with unit_of_work(ctx) as uow:
                total += await expire_member(
                    uow, row["tenant_id"], row["member_id"], row["currency"]
                )
        if len(due) < batch:
            return total


# ----------------------------------------------------------------------------- levels


def ladder_from_config(config: dict) -> rules.Ladder:
    validity = config.get("validity") or {"mode": "forever"}
    return rules.Ladder(
        tuple(
            rules.Level(lv["name"], int(lv["threshold"]), int(lv.get("pointsMultiplierPct", 100)))
            for lv in config["levels"]
        ),
        validity.get("mode", "forever"),
        int(validity.get("days") or 0),
    )


async def ladder_of(
    ctx: Context, conn: asyncpg.Connection, tenant_id: int
) -> tuple[rules.Ladder, dict] | None:

    async def load() -> tuple[rules.Ladder, dict] | None:
        row = await repo.get_ladder(conn, tenant_id)
        return (ladder_from_config(row["config"]), row["config"]) if row else None

    return await ctx.caches.get(LADDER_CACHE, _CACHE_TTL).get(tenant_id, load)


async def review_levels(ctx: Context, batch: int = 500) -> int:
    """Validity reviews (rolling ladders): keep or drop one step. Returns members reviewed."""
    reviewed = 0
    while True:
        now = ctx.clock.now()
        async with ctx.db.connection() as conn:
            due = await repo.due_reviews(conn, now, batch)
        if not due:
            return reviewed
        for row in due:
            async with unit_of_work(ctx) as uow:
                await _review_one(uow, row["tenant_id"], row["member_id"], now)
            reviewed += 1
        if len(due) < batch:
            return reviewed


async def _review_one(uow: UnitOfWork, tenant_id: int, member_id: int, now: datetime) -> None:
    ctx, conn = uow.ctx, uow.conn
    current = (await repo.lock_member_levels(conn, tenant_id, [member_id], now))[member_id]
    review_at = current["review_at"]
    if review_at is None or review_at > now:
        return
    got = await ladder_of(ctx, conn, tenant_id)
    if got is None or got[0].validity_mode != "rolling":
        await repo.set_levels(
            conn,
            tenant_id,
            [repo.LevelRow(member_id, current["level_index"], current["since"], None)],
        )
        return
    ladder = got[0]
    days = timedelta(days=ladder.validity_days)
    cur = min(current["level_index"], len(ladder.levels) - 1)
    # Reviews that fell behind (the service was down) are caught up one window at a time.
    while review_at is not None and review_at <= now:
        window = (
            await repo.window_growth(conn, tenant_id, [member_id], review_at - days, review_at)
        ).get(member_id, 0)
        new = rules.review_outcome(ladder, cur, window)
        if new < cur:
            uow.emit(
                tenant_id=tenant_id,
                type="level.down",
                member_id=member_id,
                payload={
                    "from": cur,
                    "to": new,
                    "fromName": ladder.levels[cur].name,
                    "toName": ladder.levels[new].name,
                    "review": True,
                },
                occurred_at=review_at,
            )
        cur = new
        review_at = review_at + days if cur > 0 else None
    await repo.set_levels(
        conn,
        tenant_id,
        [
            repo.LevelRow(
                member_id,
                cur,
                now if cur != current["level_index"] else current["since"],
                review_at,
            )
        ],
    )


# ----------------------------------------------------------------------------- member card


@dataclass(slots=True)
class Card:
    points: int
    growth: int
    growth_earned: int
    level_index: int | None
    level: dict | None
    next_level: dict | None
    growth_to_next: int | None
    level_review_at: datetime | None
    expiring_amount: int = 0
    expiring_at: datetime | None = None
    ladder_validity: dict = field(default_factory=dict)


async def member_card(
    ctx: Context, conn: asyncpg.Connection, tenant_id: int, member_id: int
) -> Card:
    """Public: balances, level, progress to the next level, next expiry within 30 days."""
    now = ctx.clock.now()
    f = await repo.card_facts(
        conn, tenant_id, member_id, now, now + timedelta(days=EXPIRING_SOON_DAYS)
    )
    return await card_from_facts(ctx, conn, tenant_id, member_id, f, None)


def rolling_window_start(got: tuple[rules.Ladder, dict] | None, now: datetime) -> datetime | None:
    """Public: where the growth window of a rolling ladder starts (None for other ladders):
    a caller reading the card's facts itself sums the member's growth entries from there
    (``repository.window_growth``) and hands the sum to ``card_from_facts``."""
    if got is None or got[0].validity_mode != "rolling":
        return None
    return now - timedelta(days=got[0].validity_days)


async def card_from_facts(
    ctx: Context,
    conn: asyncpg.Connection,
    tenant_id: int,
    member_id: int,
    f: Any,
    window_growth: int | None,
) -> Card:
    """Public: the member card from a row of ``repository.CARD_FACTS`` read by the caller
    ($3 = now, $4 = now + ``EXPIRING_SOON_DAYS``);
    ``window_growth`` is the member's growth since ``rolling_window_start`` when the caller
    read it (None: read here when a rolling ladder needs it). The ladder and the policy come
    from the caches (a statement only when cold)."""
    now = ctx.clock.now()
    earned = f["growth_earned"] or 0
    card = Card(
        (f["points"] or 0) - f["points_due"], f["growth"] or 0, earned, None, None, None, None, None
    )
    got = await ladder_of(ctx, conn, tenant_id)
    if got is not None:
        ladder, config = got
        idx = min(f["level_index"] or 0, len(ladder.levels) - 1)
        card.level_index = idx
        card.level = config["levels"][idx]
        card.level_review_at = f["review_at"]
        card.ladder_validity = config.get("validity") or {"mode": "forever"}
        if idx + 1 < len(ladder.levels):
            card.next_level = config["levels"][idx + 1]
            if ladder.validity_mode == "rolling" and window_growth is not None:
                have = window_growth
            elif ladder.validity_mode == "rolling":
                window_start = now - timedelta(days=ladder.validity_days)
                have = (
                    await repo.window_growth(conn, tenant_id, [member_id], window_start, now)
                ).get(member_id, 0)
            else:
                have = earned
            card.growth_to_next = max(0, ladder.levels[idx + 1].threshold - have)
    if f["exp_at"]:
        policy = await policy_of(ctx, conn, tenant_id)
        first_day = f["exp_at"][0].astimezone(policy.tz).date()
        card.expiring_at = f["exp_at"][0]
        card.expiring_amount = sum(
            amount
            for at, amount in zip(f["exp_at"], f["exp_amount"], strict=True)
            if at.astimezone(policy.tz).date() == first_day
        )
    return card


async def history(
    ctx: Context,
    conn: asyncpg.Connection,
    tenant_id: int,
    member_id: int,
    currency: str | None,
    before_id: int | None,
    limit: int,
) -> list[Entry]:
    if currency is not None:
        _check_currency(currency)
    return [
        _entry(r)
        for r in await repo.history(conn, tenant_id, member_id, currency, before_id, limit)
    ]


async def level_multiplier_pcts(
    ctx: Context, conn: asyncpg.Connection, tenant_id: int, member_ids: list[int]
) -> dict[int, int]:
    got = await ladder_of(ctx, conn, tenant_id)
    if got is None:
        return {}
    ladder = got[0]
    idx = await repo.member_level_indexes(conn, tenant_id, member_ids)
    return {
        m: ladder.levels[min(i, len(ladder.levels) - 1)].points_multiplier_pct
        for m, i in idx.items()
    }


async def member_level_index(
    ctx: Context, conn: asyncpg.Connection, tenant_id: int, member_id: int
) -> int:
    """Public: the member's level index (0 when no ladder or never leveled)."""
    row = await repo.member_level(conn, tenant_id, member_id)
    return int(row["level_index"]) if row else 0


async def credits_from_source(
    conn: asyncpg.Connection, tenant_id: int, source_ref: str
) -> list[int]:
    """Public: ids of the credits made for a source (e.g. ``event:<id>``), oldest first."""
    return [r["id"] for r in await repo.credit_entries_by_source(conn, tenant_id, source_ref)]


async def expiring_soon(
    conn: asyncpg.Connection, tenant_id: int, now: datetime, within: timedelta, limit: int = 10_000
) -> list[tuple[int, int, datetime]]:
    """Public: (member id, points, first expiry) of members whose points expire within
    ``within`` from ``now``."""
    rows = await repo.expiring_by_member(conn, tenant_id, now, now + within, limit)
    return [(r["member_id"], r["points"], r["first_expiry"]) for r in rows]
