"""The member's own card: profile, member number, level and progress, balances, expiry."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

import msgspec
from msgspec import Meta

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
    member_number: Annotated[
        str | None, Meta(description="The member number as the brand shows it: `NO.001024`.")
    ] = None


class Validity(msgspec.Struct, rename="camel"):
    """Membership validity: how levels are kept (`forever`, `rolling` window of days,
    `calendar` review), when my level is reviewed next, and points about to expire."""

    mode: str
    review_at: datetime | None
    expiring_soon: ExpiringSoon | None


class RitualState(msgspec.Struct, rename="camel"):
    """`status`: none (the brand has no ritual), notStarted, inProgress, completed,
    reacceptRequired; `next`: the step to show (GET /v1/ritual has the steps)."""

    status: str
    next: str | None


class CheckinToday(msgspec.Struct, rename="camel"):
    key: str
    title: str
    today: date
    checked_in_today: bool
    current_streak: int


class WheelSpins(msgspec.Struct, rename="camel"):
    key: str
    name: str
    free_spins_left: int
    spins_left_today: int | None


class LiveCampaigns(msgspec.Struct, rename="camel"):
    """Keys of what is live now, by kind, so a client hard-codes no key."""

    checkins: list[str]
    wheels: list[str]
    boards: list[str]
    challenges: list[str]
    pks: Annotated[
        list[str],
        Meta(description="Running team PKs of my teams, and those with an open team I may join."),
    ]


class SummaryMember(msgspec.Struct, rename="camel"):
    id: int
    nickname: str
    avatar_url: str
    member_no: int | None
    member_number: str | None
    joined_at: datetime


class SummaryOut(msgspec.Struct, rename="camel"):
    """Everything a client needs on launch, in one call (GET /v1/me/summary)."""

    member: SummaryMember
    balances: Balances
    level: LevelCard | None
    next_level: NextLevel | None
    validity: Validity
    ritual: RitualState
    checkins: list[CheckinToday]
    wheels: list[WheelSpins]
    pending_ceremonies: int
    campaigns: LiveCampaigns
