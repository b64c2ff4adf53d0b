"""The member's own card: profile, member number, level and progress, balances, expiry."""

from __future__ import annotations

from datetime import datetime

import msgspec

from service.points.schemas import Privilege


class LevelCard(msgspec.Struct, rename="camel"):
    index: int
    name: str
    badge_url: str
    points_multiplier_pct: int
    privileges: list[Privilege]
    review_at: datetime | None


class NextLevel(msgspec.Struct, rename="camel"):
    name: str
    threshold: int
    growth_needed: int
    privileges: list[Privilege]


class Balances(msgspec.Struct, rename="camel"):
    points: int
    growth: int
    growth_earned: int


class ExpiringSoon(msgspec.Struct, rename="camel"):
    amount: int
    at: datetime


class BadgeChip(msgspec.Struct, rename="camel"):
    key: str
    name: str
    icon: str
    earned_at: datetime


class MeOut(msgspec.Struct, rename="camel"):
    id: int
    external_id: str | None
    nickname: str
    avatar_url: str
    member_no: int | None
    joined_at: datetime
    balances: Balances
    level: LevelCard | None
    next_level: NextLevel | None
    expiring_soon: ExpiringSoon | None
    titles: list[str] = []
    title: str | None = None  # the title shown (chosen with PUT /v1/me/title)
    badges: list[BadgeChip] = []  # the latest badges earned, newest first (at most 10)
    badges_earned: int = 0
    pending_ceremonies: int = 0
