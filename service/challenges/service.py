"""Wager challenges: config, joining (stake into escrow), the member's list, settlement.

Stakes move through the ledger only (``points.debit`` on join, ``points.apply_credits`` on
settlement); the escrow is the challenge row's counters, whose check constraint keeps
``staked_total = escrow + paid_out + platform_cut`` at every commit.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import structlog

from service.challenges import repository as repo
from service.challenges import rules
from service.challenges.schemas import (
    ChallengeAdminOut,
    ChallengeIn,
    ChallengeList,
    ChallengeView,
    JoinOut,
    MyEntry,
    Progress,
    SettlementOut,
)
from service.checkins import service as checkins
from service.core.clock import in_utc
from service.core.constraints import validation_failed
from service.core.context import Context
from service.core.errors import DomainError, register_codes
from service.core.uow import UnitOfWork, unit_of_work
from service.points import service as points

log = structlog.get_logger("engage.challenges")

register_codes(
    {
        "CHALLENGE_NOT_FOUND": (404, "挑战不存在", "No such challenge."),
        "CHALLENGE_CLOSED": (409, "挑战不在报名时间内", "The challenge is not open for joining."),
        "CHALLENGE_FULL": (409, "挑战名额已满", "The challenge is full."),
        "CHALLENGE_NOT_ENDED": (409, "挑战尚未结束", "The challenge has not ended yet."),
        "CHALLENGE_SETTLED": (409, "挑战已结算", "The challenge is settled and cannot change."),
    }
)

LIST_LIMIT = 100
SETTLE_BATCH = 500
LOCKED_TERMS = (
    "campaign",
    "stake",
    "startDate",
    "days",
    "required",
    "makeupsCount",
    "platformCutPct",
    "noWinner",
)


def _status(row: Any, now: datetime) -> str:
    if row["state"] == "cancelled":
        return "cancelled"
    if row["settled_at"] is not None:
        return "settled"
    if row["state"] == "draft":
        return "draft"
    if now >= row["ends_at"]:
        return "ended"
    if now < row["join_opens_at"]:
        return "upcoming"
    if now < row["join_closes_at"]:
        return "open"
    return "running"


def _admin_out(row: Any, now: datetime) -> ChallengeAdminOut:
    return ChallengeAdminOut(
        row["key"],
        row["version"],
        in_utc(msgspec.convert(row["config"], ChallengeIn)),
        _status(row, now),
        row["entrants"],
        row["escrow"],
        row["staked_total"],
        row["paid_out"],
        row["platform_cut"],
        row["outcome"],
        row["settled_at"],
        row["updated_at"],
    )


# ----------------------------------------------------------------------------- config


async def put_challenge(
    uow: UnitOfWork, tenant_id: int, key: str, data: ChallengeIn
) -> ChallengeAdminOut:
    """Validate as a whole (422 VALIDATION_FAILED with every problem); cancelling refunds all
    stakes in this same transaction."""
    ctx, conn = uow.ctx, uow.conn
    now = ctx.clock.now()
    current = await repo.get(conn, tenant_id, key, lock=True)
    if current is not None and current["settled_at"] is not None:
        raise DomainError("CHALLENGE_SETTLED", details={"challenge": key})
    problems: list[dict[str, str]] = []
    tz_name = await checkins.campaign_timezone(ctx, conn, tenant_id, data.campaign)
    if tz_name is None:
        problems.append(
            {"path": "campaign", "code": "CAMPAIGN_NOT_FOUND", "problem": "no such campaign"}
        )
    if data.required > data.days:
        problems.append(
            {"path": "required", "code": "REQUIRED_TOO_HIGH", "problem": "more than days"}
        )
    if data.join_closes_at <= data.join_opens_at:
        problems.append(
            {"path": "joinClosesAt", "code": "WINDOW_EMPTY", "problem": "must follow joinOpensAt"}
        )
    elif tz_name is not None and data.join_closes_at > rules.starts_at(
        data.start_date, ZoneInfo(tz_name)
    ):
        # Joining after the first day would let a member join knowing how the days went.
        problems.append(
            {
                "path": "joinClosesAt",
                "code": "JOIN_AFTER_START",
                "problem": "joining closes when the first day begins at the latest",
            }
        )
    config = msgspec.to_builtins(data)
    if current is not None and current["entrants"] > 0:
        for name in LOCKED_TERMS:
            if current["config"].get(name) != config.get(name):
                problems.append(
                    {
                        "path": name,
                        "code": "TERMS_LOCKED",
                        "problem": "members joined on these terms; they cannot change",
                    }
                )
        if data.state == "draft":
            problems.append(
                {"path": "state", "code": "TERMS_LOCKED", "problem": "members joined already"}
            )
    if problems:
        raise validation_failed(problems)
    assert tz_name is not None
    tz = ZoneInfo(tz_name)
    row = await repo.upsert(
        conn,
        tenant_id,
        key,
        {
            "state": data.state,
            "campaign_key": data.campaign,
            "timezone": tz_name,
            "stake": data.stake,
            "start_date": data.start_date,
            "days": data.days,
            "required": data.required,
            "makeups_count": data.makeups_count,
            "join_opens_at": data.join_opens_at,
            "join_closes_at": data.join_closes_at,
            "ends_at": rules.ends_at(data.start_date, data.days, tz),
            "max_entrants": data.max_entrants,
            "platform_cut_pct": data.platform_cut_pct,
            "no_winner": data.no_winner,
            "config": config,
        },
        now,
    )
    if data.state == "cancelled":
        await _settle_locked(uow, row, cancel=True)
        row = await repo.get(conn, tenant_id, key)
    return _admin_out(row, now)


async def get_challenge(ctx: Context, tenant_id: int, key: str) -> ChallengeAdminOut:
    async with ctx.db.connection() as conn:
        row = await repo.get(conn, tenant_id, key)
    if row is None:
        raise DomainError("CHALLENGE_NOT_FOUND", details={"challenge": key})
    return _admin_out(row, ctx.clock.now())


# ----------------------------------------------------------------------------- join


async def join(uow: UnitOfWork, tenant_id: int, member_id: int, key: str) -> JoinOut:
    """Join with the stake: debited through the ledger into the escrow, in this transaction.
    Joining again answers the first entry (replayed); the challenge row lock serializes
    joins, so the entrant cap holds exactly."""
    ctx, conn = uow.ctx, uow.conn
    now = ctx.clock.now()
    row = await repo.get(conn, tenant_id, key, lock=True)
    if row is None:
        raise DomainError("CHALLENGE_NOT_FOUND", details={"challenge": key})
    existing = await repo.entry(conn, tenant_id, row["id"], member_id)
    if existing is not None:
        return JoinOut(key, existing["stake"], row["entrants"], existing["joined_at"], None, True)
    status = _status(row, now)
    if status != "open":
        raise DomainError("CHALLENGE_CLOSED", details={"challenge": key, "status": status})
    if row["max_entrants"] is not None and row["entrants"] >= row["max_entrants"]:
        raise DomainError(
            "CHALLENGE_FULL", details={"challenge": key, "maxEntrants": row["max_entrants"]}
        )
    debit = await points.debit(
        uow,
        tenant_id,
        member_id,
        row["stake"],
        reason="challenge.stake",
        source_ref=f"challenge:{row['id']}",
        idempotency_key=f"challenge:{row['id']}:{member_id}:stake",
    )
    await repo.insert_entry(conn, tenant_id, row["id"], member_id, row["stake"], debit.id, now)
    entrants = await repo.add_to_escrow(conn, row["id"], row["stake"])
    uow.emit(
        tenant_id=tenant_id,
        type="challenge.joined",
        member_id=member_id,
        payload={"challenge": key, "stake": row["stake"]},
        occurred_at=now,
    )
    return JoinOut(key, row["stake"], entrants, now, debit.balance_after, False)


# ----------------------------------------------------------------------------- member list


def _progress(row: Any, checked: int, before_today: int, now: datetime) -> Progress:
    """``before_today``: check-ins on the challenge's days before today; a day gone by without
    one is missed (a make-up may still recover it where make-ups count)."""
    tz = ZoneInfo(row["timezone"])
    today = now.astimezone(tz).date()
    elapsed = max(0, min(row["days"], (today - row["start_date"]).days))
    missed = elapsed - before_today
    return Progress(
        checked,
        row["required"],
        row["days"],
        elapsed,
        row["days"] - elapsed,
        checked >= row["required"],
        row["days"] - missed >= row["required"],
    )


def _view(row: Any, me: MyEntry | None, now: datetime) -> ChallengeView:
    cfg = row["config"]
    return ChallengeView(
        key=row["key"],
        title=str(cfg.get("title", "")),
        rules_text=str(cfg.get("rulesText", "")),
        campaign=row["campaign_key"],
        status=_status(row, now),
        stake=row["stake"],
        start_date=row["start_date"],
        end_date=rules.last_day(row["start_date"], row["days"]),
        days=row["days"],
        required=row["required"],
        makeups_count=row["makeups_count"],
        join_opens_at=row["join_opens_at"],
        join_closes_at=row["join_closes_at"],
        max_entrants=row["max_entrants"],
        entrants=row["entrants"],
        pool=row["staked_total"],
        platform_cut_pct=row["platform_cut_pct"],
        no_winner=row["no_winner"],
        me=me,
    )


async def member_list(ctx: Context, tenant_id: int, member_id: int) -> ChallengeList:
    now = ctx.clock.now()
    out = ChallengeList([], [], [])
    async with ctx.db.connection() as conn:
        rows = await repo.visible(conn, tenant_id, LIST_LIMIT)
        mine = await repo.entries_of_member(conn, tenant_id, member_id, [r["id"] for r in rows])
        for row in rows:
            entry = mine.get(row["id"])
            if entry is None:
                full = row["max_entrants"] is not None and row["entrants"] >= row["max_entrants"]
                if _status(row, now) == "open" and not full:
                    out.open.append(_view(row, None, now))
                continue
            last = rules.last_day(row["start_date"], row["days"])
            yesterday = now.astimezone(ZoneInfo(row["timezone"])).date() - timedelta(days=1)
            ranges = [(row["start_date"], last), (row["start_date"], min(last, yesterday))]
            found = []
            for first, upto in ranges:
                counts = await checkins.count_checked_days(
                    ctx,
                    conn,
                    tenant_id,
                    row["campaign_key"],
                    [member_id],
                    first,
                    upto,
                    include_makeups=row["makeups_count"],
                )
                found.append(counts.get(member_id, 0))
            checked, before = found
            if entry["checkins"] is not None:  # settled: what settlement counted
                checked = entry["checkins"]
            me = MyEntry(
                entry["stake"],
                entry["status"],
                entry["payout"],
                entry["joined_at"],
                _progress(row, checked, before, now),
            )
            (out.joined if entry["status"] == "active" else out.finished).append(
                _view(row, me, now)
            )
    return out


# ----------------------------------------------------------------------------- settlement


def _settlement_out(row: Any, winners: int, replayed: bool) -> SettlementOut:
    return SettlementOut(
        row["key"],
        row["outcome"] or "",
        row["entrants"],
        winners,
        row["staked_total"],
        row["paid_out"],
        row["platform_cut"],
        row["settled_at"],
        replayed,
    )


@dataclass(frozen=True, slots=True)
class _Outcome:
    status: str
    event: str | None


def _entry_outcome(outcome: str, finished: bool) -> _Outcome:
    if outcome == "cancelled":
        return _Outcome("refunded", "challenge.refunded")
    if finished:
        return _Outcome("won", "challenge.won")
    return _Outcome("refunded" if outcome == "refund" else "lost", "challenge.lost")


async def _settle_locked(uow: UnitOfWork, row: Any, *, cancel: bool) -> SettlementOut:
    """Settle a challenge whose row this transaction holds locked. Settling twice changes
    nothing: a settled challenge answers its settlement again."""
    ctx, conn = uow.ctx, uow.conn
    now = ctx.clock.now()
    if row["settled_at"] is not None:
        winners = await repo.count_winners(conn, row["id"])
        return _settlement_out(row, winners, True)
    cancelled = cancel or row["state"] == "cancelled"
    if not cancelled and now < row["ends_at"]:
        raise DomainError(
            "CHALLENGE_NOT_ENDED", details={"challenge": row["key"], "endsAt": row["ends_at"]}
        )
    entries = await repo.active_entries(conn, row["id"])
    counts: dict[int, int] = {}
    if not cancelled and entries:
        counts = await checkins.count_checked_days(
            ctx,
            conn,
            row["tenant_id"],
            row["campaign_key"],
            [e["member_id"] for e in entries],
            row["start_date"],
            rules.last_day(row["start_date"], row["days"]),
            include_makeups=row["makeups_count"],
        )
    finished = {e["id"]: counts.get(e["member_id"], 0) >= row["required"] for e in entries}
    s = rules.settle(
        [rules.Stake(e["id"], e["stake"], finished[e["id"]]) for e in entries],
        row["platform_cut_pct"],
        row["no_winner"],
        cancelled=cancelled,
    )
    tenant_id, key = row["tenant_id"], row["key"]
    reason = "challenge.refund" if s.outcome in ("refund", "cancelled") else "challenge.payout"
    credits = [
        points.Credit(
            e["member_id"],
            "points",
            s.payouts[e["id"]],
            reason,
            source_ref=f"challenge:{row['id']}",
            idempotency_key=f"challenge:{row['id']}:{e['member_id']}:payout",
        )
        for e in entries
        if s.payouts[e["id"]] > 0
    ]
    # Accounts are locked in member order within a chunk; sorting first keeps that order across
    # chunks too, so a large settlement cannot deadlock with a concurrent batch.
    credits.sort(key=lambda c: c.member_id)
    for i in range(0, len(credits), SETTLE_BATCH):
        await points.apply_credits(uow, tenant_id, credits[i : i + SETTLE_BATCH])
    updates = []
    for e in entries:
        o = _entry_outcome(s.outcome, finished[e["id"]])
        checked = None if cancelled else counts.get(e["member_id"], 0)
        updates.append((e["id"], o.status, checked, s.payouts[e["id"]]))
        if o.event:
            uow.emit(
                tenant_id=tenant_id,
                type=o.event,
                member_id=e["member_id"],
                payload={
                    "challenge": key,
                    "stake": e["stake"],
                    "payout": s.payouts[e["id"]],
                    "checkins": checked,
                    "outcome": s.outcome,
                },
                occurred_at=now,
            )
    await repo.settle_entries(conn, row["id"], updates, now)
    settled = await repo.close_escrow(conn, row["id"], s.paid, s.platform_cut, s.outcome, now)
    log.info(
        "challenge settled",
        tenant=tenant_id,
        challenge=key,
        outcome=s.outcome,
        entrants=len(entries),
        paid=s.paid,
        cut=s.platform_cut,
    )
    return _settlement_out(settled, sum(finished.values()), False)


async def settle(
    uow: UnitOfWork, tenant_id: int, key: str, *, cancel: bool = False
) -> SettlementOut:
    """The operator's settle (or cancel)."""
    ctx, conn = uow.ctx, uow.conn
    row = await repo.get(conn, tenant_id, key, lock=True)
    if row is None:
        raise DomainError("CHALLENGE_NOT_FOUND", details={"challenge": key})
    if row["state"] == "draft" and not cancel:
        raise DomainError("CHALLENGE_NOT_FOUND", details={"challenge": key})
    if cancel and row["state"] != "cancelled" and row["settled_at"] is None:
        row = await repo.cancel(conn, row["id"], ctx.clock.now())
    return await _settle_locked(uow, row, cancel=cancel)


async def settle_due(ctx: Context, batch: int = 100) -> int:
    """The settlement job: every ended (or cancelled) unsettled challenge, each in its own
    transaction. Safe in several processes at once: the row lock and settled_at decide."""
    done = 0
    async with ctx.db.connection() as conn:
        due = await repo.due(conn, ctx.clock.now(), batch)
    for r in due:
        async with unit_of_work(ctx) as uow:
            conn = uow.conn
            row = await repo.get_by_id_locked(conn, r["id"])
            if row is None or row["settled_at"] is not None:
                continue
            await _settle_locked(uow, row, cancel=False)
            done += 1
    return done


async def live_keys(ctx: Context, conn: Any, tenant_id: int) -> list[str]:
    """Public (the launch summary): keys of challenges members can see now (open to join or
    running), in one statement."""
    return live_keys_from(await repo.challenge_rows(conn, tenant_id), ctx.clock.now())


def live_keys_from(rows: Iterable[Any], now: datetime) -> list[str]:
    """Public: ``live_keys`` from the caller's rows of the tenant's challenges (``key, state,
    settled_at, ends_at, join_opens_at, join_closes_at``, by key)."""
    return [r["key"] for r in rows if _status(r, now) in ("open", "running")]
