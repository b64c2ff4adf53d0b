"""Composes the member's card from the features' public functions (no tables of its own)."""

from __future__ import annotations

import msgspec

from service.badges import service as badges
from service.ceremonies import service as ceremonies
from service.core.context import Context
from service.me.schemas import BadgeChip, Balances, ExpiringSoon, LevelCard, MeOut, NextLevel
from service.members import service as members
from service.points import service as points
from service.points.schemas import Privilege


async def me(ctx: Context, tenant_id: int, member_id: int) -> MeOut:
    async with ctx.db.connection() as conn:
        profile = await members.profile(ctx, tenant_id, member_id, conn)
        card = await points.member_card(ctx, conn, tenant_id, member_id)
        shown, titles = await badges.titles_for_card(ctx, conn, tenant_id, member_id)
        recent, earned = await badges.recent_badges(ctx, conn, tenant_id, member_id, 10)
        pending = await ceremonies.pending_count(ctx, conn, tenant_id, member_id)
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
        ExpiringSoon(card.expiring_amount, card.expiring_at) if card.expiring_at else None,
        titles,
        shown,
        [BadgeChip(b.key, b.name, b.icon, b.earned_at) for b in recent],
        earned,
        pending,
    )
