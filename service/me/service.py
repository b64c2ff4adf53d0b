"""Composes the member's card and the launch summary: ONE read statement over the features'
tables (the read model, service/me/repository.py; no tables of its own), each feature's rules
applied to the rows by the feature's own functions that take pre-fetched rows."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, NamedTuple

import msgspec

from service.badges import service as badges
from service.challenges import service as challenges
from service.checkins import service as checkins
from service.core.context import Context
from service.leaderboards import service as leaderboards
from service.me import repository as repo
from service.me.schemas import (
    BadgeChip,
    Balances,
    CheckinToday,
    ExpiringSoon,
    LevelCard,
    LiveCampaigns,
    MeOut,
    NextLevel,
    RitualState,
    SummaryMember,
    SummaryOut,
    Validity,
    WheelSpins,
)
from service.members import service as members
from service.members.schemas import MemberOut
from service.points import service as points
from service.points.schemas import Privilege
from service.rituals import service as rituals
from service.wheel import service as wheel


def _levels(card: Any) -> tuple[LevelCard | None, NextLevel | None]:
    level = next_level = None
    if card.level is not None and card.level_index is not None:
        lv = card.level
        level = LevelCard(
            card.level_index,
            lv["name"],
            lv.get("badgeUrl", ""),
            lv.get("pointsMultiplierPct", 100),
            msgspec.convert(lv.get("privileges", []), list[Privilege]),
            card.level_review_at,
        )
        if card.next_level is not None:
            nx = card.next_level
            next_level = NextLevel(
                nx["name"],
                nx["threshold"],
                card.growth_to_next or 0,
                msgspec.convert(nx.get("privileges", []), list[Privilege]),
            )
    return level, next_level


def _expiring(card: Any) -> ExpiringSoon | None:
    return ExpiringSoon(card.expiring_amount, card.expiring_at) if card.expiring_at else None


RECENT_BADGES = 10


async def _read(ctx: Context, tenant_id: int, member_id: int, *, summary: bool) -> Read:
    """One statement (the read model, service/me/repository.py); the level ladder and the
    points policy come from the points caches (a statement each only when cold)."""
    async with ctx.db.connection() as conn:
        got = await points.ladder_of(ctx, conn, tenant_id)
        now = ctx.clock.now()
        row = await repo.read(
            conn,
            tenant_id,
            member_id,
            now,
            now + timedelta(days=points.EXPIRING_SOON_DAYS),
            points.rolling_window_start(got, now),
            RECENT_BADGES,
            summary=summary,
        )
        profile = members.profile_from(row)  # 401 TOKEN_INVALID without a member row
        assert row is not None
        wg = row["window_growth"]
        card = await points.card_from_facts(
            ctx, conn, tenant_id, member_id, row, None if wg is None else int(wg)
        )
    ritual = row["ritual_config"]
    return Read(
        now,
        row,
        profile,
        card,
        rituals.number_from(ritual, profile.member_no),
        int(row["pending_ceremonies"]),
    )


class Read(NamedTuple):
    now: datetime
    row: Any
    profile: MemberOut
    card: points.Card
    number: str | None
    pending: int


async def me(ctx: Context, tenant_id: int, member_id: int) -> MeOut:
    """GET /v1/me: one PostgreSQL statement in steady state (warm caches)."""
    r = await _read(ctx, tenant_id, member_id, summary=False)
    profile, card, row = r.profile, r.card, r.row
    recent = badges.recent_from(
        repo.rows(
            row,
            {
                "key": "badge_keys",
                "config": "badge_configs",
                "period_id": "badge_periods",
                "earned_at": "badge_earned_at",
            },
        )
    )
    level, next_level = _levels(card)
    return MeOut(
        profile.id,
        profile.external_id,
        profile.nickname,
        profile.avatar_url,
        profile.member_no,
        profile.joined_at,
        Balances(card.points, card.growth, card.growth_earned),
        level,
        next_level,
        _expiring(card),
        list(row["titles"] or []),
        row["shown_title"],
        [BadgeChip(b.key, b.name, b.icon, b.earned_at) for b in recent],
        int(row["badges_earned"]),
        r.pending,
        r.number,
    )


async def summary(ctx: Context, tenant_id: int, member_id: int) -> SummaryOut:
    """GET /v1/me/summary: one PostgreSQL statement in steady state (warm caches) whatever
    the number of campaigns (each kind of campaign comes back as parallel arrays)."""
    r = await _read(ctx, tenant_id, member_id, summary=True)
    profile, card, row, now = r.profile, r.card, r.row, r.now
    status, nxt = rituals.state_from(
        row["ritual_config"],
        {
            "steps": row["ritual_steps"],
            "covenant_version": row["ritual_covenant_version"],
            "completed_at": row["ritual_completed_at"],
        }
        if row["ritual_started"]
        else None,
    )
    days = checkins.live_from(
        repo.rows(
            row,
            {
                "key": "checkin_keys",
                "timezone": "checkin_timezones",
                "title": "checkin_titles",
                "last_day": "checkin_last_days",
                "current_streak": "checkin_streaks",
            },
        ),
        now,
    )
    wheels = wheel.live_from(
        repo.rows(
            row,
            {
                "key": "wheel_keys",
                "config": "wheel_configs",
                "spins": "wheel_spins",
                "day": "wheel_days",
                "spins_day": "wheel_spins_day",
                "free_used_day": "wheel_free_used_day",
            },
        ),
        now,
    )
    boards = leaderboards.live_keys_from(
        repo.rows(row, {"key": "board_keys", "config": "board_configs"}), now
    )
    games = challenges.live_keys_from(
        repo.rows(
            row,
            {
                "key": "challenge_keys",
                "state": "challenge_states",
                "settled_at": "challenge_settled_at",
                "ends_at": "challenge_ends_at",
                "join_opens_at": "challenge_join_opens_at",
                "join_closes_at": "challenge_join_closes_at",
            },
        ),
        now,
    )
    level, next_level = _levels(card)
    return SummaryOut(
        SummaryMember(
            profile.id,
            profile.nickname,
            profile.avatar_url,
            profile.member_no,
            r.number,
            profile.joined_at,
        ),
        Balances(card.points, card.growth, card.growth_earned),
        level,
        next_level,
        Validity(
            str((card.ladder_validity or {}).get("mode", "forever")),
            card.level_review_at,
            _expiring(card),
        ),
        RitualState(status, nxt),
        [msgspec.convert(d, CheckinToday) for d in days],
        [msgspec.convert(w, WheelSpins) for w in wheels],
        r.pending,
        LiveCampaigns(
            [d["key"] for d in days],
            [w["key"] for w in wheels],
            boards,
            games,
            list(row["pk_keys"] or []),
        ),
    )
