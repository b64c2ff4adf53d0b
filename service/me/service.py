"""Composes the member's card and the launch summary from the features' public functions
(no tables of its own)."""

from __future__ import annotations

from typing import Any

import msgspec

from service.badges import service as badges
from service.ceremonies import service as ceremonies
from service.challenges import service as challenges
from service.checkins import service as checkins
from service.core.context import Context
from service.leaderboards import service as leaderboards
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
from service.pks import service as pks
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


async def me(ctx: Context, tenant_id: int, member_id: int) -> MeOut:
    async with ctx.db.connection() as conn:
        profile = await members.profile(ctx, tenant_id, member_id, conn)
        card = await points.member_card(ctx, conn, tenant_id, member_id)
        shown, titles = await badges.titles_for_card(ctx, conn, tenant_id, member_id)
        recent, earned = await badges.recent_badges(ctx, conn, tenant_id, member_id, 10)
        pending = await ceremonies.pending_count(ctx, conn, tenant_id, member_id)
        number = await rituals.formatted_number(conn, tenant_id, profile.member_no)
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
        titles,
        shown,
        [BadgeChip(b.key, b.name, b.icon, b.earned_at) for b in recent],
        earned,
        pending,
        number,
    )


async def summary(ctx: Context, tenant_id: int, member_id: int) -> SummaryOut:
    """GET /v1/me/summary: one connection, a fixed number of statements whatever the number
    of campaigns (each feature answers for all its live campaigns in one statement)."""
    async with ctx.db.connection() as conn:
        profile = await members.profile(ctx, tenant_id, member_id, conn)
        card = await points.member_card(ctx, conn, tenant_id, member_id)
        number = await rituals.formatted_number(conn, tenant_id, profile.member_no)
        status, nxt = await rituals.member_state(ctx, conn, tenant_id, member_id)
        days = await checkins.live_for_member(ctx, conn, tenant_id, member_id)
        wheels = await wheel.live_for_member(ctx, conn, tenant_id, member_id)
        pending = await ceremonies.pending_count(ctx, conn, tenant_id, member_id)
        boards = await leaderboards.live_keys(ctx, conn, tenant_id)
        games = await challenges.live_keys(ctx, conn, tenant_id)
        pk_keys = await pks.live_keys(ctx, conn, tenant_id, member_id)
    level, next_level = _levels(card)
    return SummaryOut(
        SummaryMember(
            profile.id,
            profile.nickname,
            profile.avatar_url,
            profile.member_no,
            number,
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
        pending,
        LiveCampaigns([d["key"] for d in days], [w["key"] for w in wheels], boards, games, pk_keys),
    )
