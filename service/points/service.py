"""The ledger and levels: credit, debit, reverse, expire; level ups, reviews; event rules.

Every function that changes balances takes the caller's connection and runs inside the
caller's transaction (the request boundary commits). Other features pay through ``credit`` and
``debit``; the ledger never calls them back.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from service.core.constraints import problem, validation_failed
from service.core.context import Context
from service.core.errors import DomainError, register_codes
from service.core.tenancy import get_tenant, update_tenant_settings
from service.core.uow import UnitOfWork, unit_of_work
from service.points import repository as repo
from service.points import rules

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

_CACHE_TTL = 5.0


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


@dataclass(frozen=True, slots=True)
class Entry:
    id: int
    member_id: int
    currency: str
    kind: str
    delta: int
    balance_after: int
    reason: str
    note: str
    source_ref: str | None
    reverses_entry_id: int | None
    shortfall: int
    expires_at: datetime | None
    created_at: datetime
    replayed: bool = False


def _entry(row: Any, replayed: bool = False) -> Entry:
    return Entry(
        row["id"],
        row["member_id"],
        row["currency"],
        row["kind"],
        row["delta"],
        row["balance_after"],
        row["reason"],
        row["note"],
        row["source_ref"],
        row["reverses_entry_id"],
        row["shortfall"],
        row["expires_at"],
        row["created_at"],
        replayed,
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
                member_id, currency, amount, reason, note, source_ref, idempotency_key, key_is_new
            )
        ],
    )
    return entry


async def apply_credits(uow: UnitOfWork, tenant_id: int, credits: list[Credit]) -> list[Entry]:
    """Credit many at once: a handful of statements whatever the count (event batches)."""
    ctx, conn = uow.ctx, uow.conn
    for c in credits:
        _check_currency(c.currency)
        if c.amount <= 0:
            raise validation_failed([problem("body", "amount", "OUT_OF_RANGE", "must be positive")])
    now = ctx.clock.now()
    policy = await policy_of(ctx, conn, tenant_id)
    accounts = await repo.lock_accounts(
        conn, tenant_id, [(c.member_id, c.currency) for c in credits], now
    )
    keys = [c.idempotency_key for c in credits if c.idempotency_key and not c.key_is_new]
    existing = await repo.find_entries_by_keys(conn, tenant_id, keys) if keys else {}
    running = {k: v[0] for k, v in accounts.items()}
    rows: list[tuple] = []
    fresh: list[int] = []  # index into credits of each new row
    seen_keys: set[str] = set()
    for i, c in enumerate(credits):
        if c.idempotency_key and (c.idempotency_key in existing or c.idempotency_key in seen_keys):
            continue
        if c.idempotency_key:
            seen_keys.add(c.idempotency_key)
        acct = (c.member_id, c.currency)
        running[acct] += c.amount
        expires = (
            rules.expiry_for(policy.expiry, now, policy.tz) if c.currency == "points" else None
        )
        rows.append(
            (
                c.member_id,
                c.currency,
                "credit",
                c.amount,
                running[acct],
                c.reason,
                c.note,
                c.source_ref,
                c.idempotency_key,
                None,
                0,
                expires,
            )
        )
        fresh.append(i)
    # The statement writes the expiry of these members' lots past their date first, so each
    # credit's balance_after is the balance at ``now`` (see repository.DUE_LOTS).
    written = (
        await repo.write_credits(
            conn,
            tenant_id,
            [(r[0], r[1], r[3], r[4], r[5], r[6], r[7], r[8], r[11]) for r in rows],
            now,
        )
        if rows
        else []
    )
    totals: dict[tuple[int, str], int] = defaultdict(int)
    for r in rows:
        totals[(r[0], r[1])] += r[3]
    if totals:
        growth_members = sorted({m for (m, c) in totals if c == "growth"})
        if growth_members:
            earned = {m: accounts[(m, "growth")][1] + totals[(m, "growth")] for m in growth_members}
            await _levels_after_growth(uow, tenant_id, earned, now, allow_down=False)
    by_index: dict[int, Entry] = {}
    for i, r, (eid, after) in zip(fresh, rows, written, strict=True):
        by_index[i] = Entry(
            eid, r[0], r[1], "credit", r[3], after, r[5], r[6], r[7], None, 0, r[11], now
        )
    out: list[Entry] = []
    new_by_key = {
        credits[i].idempotency_key: e for i, e in by_index.items() if credits[i].idempotency_key
    }
    for i, c in enumerate(credits):
        if i in by_index:
            out.append(by_index[i])
        elif c.idempotency_key in existing:
            out.append(_entry(existing[c.idempotency_key], replayed=True))
        else:
            out.append(new_by_key[c.idempotency_key])
    return out


async def _expire_locked(
    uow: UnitOfWork,
    tenant_id: int,
    member_id: int,
    currency: str,
    due: list[Any],
    balance: int,
    now: datetime,
) -> int:
    """Write the expiry of already-locked due lots; returns the new balance."""
    conn = uow.conn
    amount = sum(r["remaining"] for r in due)
    if amount <= 0:
        return balance
    [eid] = await repo.insert_entries(
        conn,
        tenant_id,
        [
            (
                member_id,
                currency,
                "expire",
                -amount,
                balance - amount,
                "expiry",
                "",
                None,
                None,
                None,
                0,
                None,
            )
        ],
        now,
    )
    await repo.take_from_lots(conn, eid, [(r["id"], r["remaining"]) for r in due])
    await repo.add_to_accounts(conn, tenant_id, [(member_id, currency, -amount, 0)], now)
    uow.emit(
        tenant_id=tenant_id,
        type=f"{currency}.expired",
        member_id=member_id,
        payload={"currency": currency, "amount": amount, "entryId": eid},
        occurred_at=now,
    )
    return balance - amount


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
    _check_currency(currency)
    if currency == "growth":
        raise DomainError("GROWTH_NOT_SPENDABLE")
    if amount <= 0:
        raise validation_failed([problem("body", "amount", "OUT_OF_RANGE", "must be positive")])
    now = ctx.clock.now()
    accounts = await repo.lock_accounts(conn, tenant_id, [(member_id, currency)], now)
    balance = accounts[(member_id, currency)][0]
    if idempotency_key and not key_is_new:
        found = await repo.find_entries_by_keys(conn, tenant_id, [idempotency_key])
        if idempotency_key in found:
            return _entry(found[idempotency_key], replayed=True)
    lots = await repo.open_lots(conn, tenant_id, member_id, currency)
    # repository.DUE_LOTS, evaluated on the locked lots: due ones expire before the spend.
    due = [r for r in lots if r["expires_at"] is not None and r["expires_at"] <= now]
    live = [rules.Lot(r["id"], r["remaining"], r["expires_at"]) for r in lots if r not in due]
    if due:
        balance = await _expire_locked(uow, tenant_id, member_id, currency, due, balance, now)
    available = sum(lot.remaining for lot in live)
    if amount > available:
        raise DomainError(
            "INSUFFICIENT_POINTS", details={"balance": available, "requested": amount}
        )
    takes = rules.allocate(live, amount)
    [eid] = await repo.insert_entries(
        conn,
        tenant_id,
        [
            (
                member_id,
                currency,
                "debit",
                -amount,
                balance - amount,
                reason,
                note,
                source_ref,
                idempotency_key,
                None,
                0,
                None,
            )
        ],
        now,
    )
    await repo.take_from_lots(conn, eid, takes)
    await repo.add_to_accounts(conn, tenant_id, [(member_id, currency, -amount, 0)], now)
    uow.emit(
        tenant_id=tenant_id,
        type=f"{currency}.debited",
        member_id=member_id,
        payload={
            "currency": currency,
            "amount": amount,
            "entryId": eid,
            "reason": reason,
            "balance": balance - amount,
        },
        occurred_at=now,
    )
    return Entry(
        eid,
        member_id,
        currency,
        "debit",
        -amount,
        balance - amount,
        reason,
        note,
        source_ref,
        None,
        0,
        None,
        now,
    )


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
    """
    ctx, conn = uow.ctx, uow.conn
    credit_row = await repo.get_entry(conn, tenant_id, entry_id)
    if credit_row is None:
        raise DomainError("ENTRY_NOT_FOUND", details={"entryId": entry_id})
    if credit_row["kind"] != "credit":
        raise DomainError(
            "NOT_REVERSIBLE", details={"entryId": entry_id, "kind": credit_row["kind"]}
        )
    member_id, currency = credit_row["member_id"], credit_row["currency"]
    now = ctx.clock.now()
    accounts = await repo.lock_accounts(conn, tenant_id, [(member_id, currency)], now)
    balance, earned = accounts[(member_id, currency)]
    already = await repo.reversal_of(conn, entry_id)
    if already is not None:
        return _entry(already, replayed=True)
    # Lots past their date are gone whether or not the job wrote it: write it now, so the
    # reversal takes back only what is left and answers the balance at ``now``.
    due = await repo.due_lots(conn, tenant_id, member_id, currency, now)
    balance = await _expire_locked(uow, tenant_id, member_id, currency, due, balance, now)
    lots = await repo.lots_of_entry(conn, entry_id)
    clawback = sum(r["remaining"] for r in lots)
    shortfall = credit_row["delta"] - clawback
    policy = await policy_of(ctx, conn, tenant_id)
    if shortfall > 0 and policy.reversal_shortfall == "refuse":
        raise DomainError(
            "REVERSAL_SHORTFALL",
            details={"entryId": entry_id, "credited": credit_row["delta"], "available": clawback},
        )
    [eid] = await repo.insert_entries(
        conn,
        tenant_id,
        [
            (
                member_id,
                currency,
                "reverse",
                -clawback,
                balance - clawback,
                reason,
                note,
                credit_row["source_ref"],
                None,
                entry_id,
                shortfall,
                None,
            )
        ],
        now,
    )
    await repo.take_from_lots(
        conn, eid, [(r["id"], r["remaining"]) for r in lots if r["remaining"] > 0]
    )
    await repo.add_to_accounts(conn, tenant_id, [(member_id, currency, -clawback, -clawback)], now)
    uow.emit(
        tenant_id=tenant_id,
        type=f"{currency}.reversed",
        member_id=member_id,
        payload={
            "currency": currency,
            "amount": clawback,
            "entryId": eid,
            "reversedEntryId": entry_id,
            "shortfall": shortfall,
        },
        occurred_at=now,
    )
    if currency == "growth":
        await _levels_after_growth(
            uow, tenant_id, {member_id: earned - clawback}, now, allow_down=True
        )
    return Entry(
        eid,
        member_id,
        currency,
        "reverse",
        -clawback,
        balance - clawback,
        reason,
        note,
        credit_row["source_ref"],
        entry_id,
        shortfall,
        None,
        now,
    )


async def expire_member(uow: UnitOfWork, tenant_id: int, member_id: int, currency: str) -> int:
    """Expire what is due for one member; returns the amount expired (0 if nothing)."""
    ctx, conn = uow.ctx, uow.conn
    now = ctx.clock.now()
    accounts = await repo.lock_accounts(conn, tenant_id, [(member_id, currency)], now)
    balance = accounts[(member_id, currency)][0]
    due = await repo.due_lots(conn, tenant_id, member_id, currency, now)
    after = await _expire_locked(uow, tenant_id, member_id, currency, due, balance, now)
    return balance - after


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


async def _levels_after_growth(
    uow: UnitOfWork,
    tenant_id: int,
    earned: dict[int, int],
    now: datetime,
    *,
    allow_down: bool,
) -> None:
    """Move members' levels after their growth changed. Earning only raises a level; a
    reversal (``allow_down``) may lower it to what the remaining growth supports."""
    ctx, conn = uow.ctx, uow.conn
    got = await ladder_of(ctx, conn, tenant_id)
    if got is None:
        return
    ladder, _ = got
    members = sorted(earned)
    current = await repo.lock_member_levels(conn, tenant_id, members, now)
    if ladder.validity_mode == "rolling":
        qualifying = await repo.window_growth(
            conn, tenant_id, members, now - timedelta(days=ladder.validity_days), now
        )
    else:
        qualifying = earned
    changes = []
    for m in members:
        cur = current[m]["level_index"]
        cur = min(cur, len(ladder.levels) - 1)
        target = ladder.index_for(qualifying.get(m, 0))
        new = target if allow_down else max(cur, target)
        if new == cur:
            continue
        review = (
            now + timedelta(days=ladder.validity_days)
            if ladder.validity_mode == "rolling" and new > 0
            else None
        )
        changes.append((m, new, now, review))
        uow.emit(
            tenant_id=tenant_id,
            type="level.up" if new > cur else "level.down",
            member_id=m,
            payload={
                "from": cur,
                "to": new,
                "fromName": ladder.levels[cur].name,
                "toName": ladder.levels[new].name,
            },
            occurred_at=now,
        )
    if changes:
        await repo.set_levels(conn, tenant_id, changes)


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
            conn, tenant_id, [(member_id, current["level_index"], current["since"], None)]
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
        [(member_id, cur, now if cur != current["level_index"] else current["since"], review_at)],
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
            if ladder.validity_mode == "rolling":
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
