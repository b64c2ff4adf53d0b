"""Wire types of badges and titles: definitions (operators), the badge wall and titles (members)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from service.core.constraints import ImageUrl

BadgeKey = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_\-]*$")]
Title = Annotated[str, Meta(min_length=1, max_length=32)]
Url = ImageUrl
# Counts are plain integers on purpose: a negative or zero count is reported with every other
# problem of the definition (422 VALIDATION_FAILED), not as the first of many 400s.
Count = Annotated[int, Meta(description="A whole number >= 1 (checked on save).")]
EventType = Annotated[str, Meta(min_length=1, max_length=64)]


class Strict(msgspec.Struct, rename="camel", forbid_unknown_fields=True, tag_field="kind"):
    """Operator input: unknown fields are an error, not silently dropped."""


class EventCount(Strict, tag="eventCount"):
    """N events of a type: a domain event (`checkin.done`, `wheel.spun`, `prize.won`...) or a
    brand event type that has an event rule (`order.paid`)."""

    event_type: EventType
    count: Count = 1


class ValueSum(Strict, tag="valueSum"):
    """The sum of the `value` of brand events of a type (order totals), or of `amount`."""

    event_type: EventType
    value: Count


class FirstTime(Strict, tag="firstTime"):
    """The first event of a type (first spin, first paid order)."""

    event_type: EventType


class CheckinStreak(Strict, tag="checkinStreak"):
    """A check-in streak of `days` reached (in one campaign, or any)."""

    days: Count
    campaign: Annotated[str, Meta(max_length=64)] | None = None


class LevelReached(Strict, tag="levelReached"):
    """The level ladder's index `level` (0 = first level) reached."""

    level: int


class TotalEarned(Strict, tag="totalEarned"):
    """Points or growth earned in total (credits only; spending does not count back)."""

    currency: str
    amount: Count


class BoardRank(Strict, tag="boardRank"):
    """On the red list of a closed period of a leaderboard (its red/black board), within the
    top `top`."""

    board: Annotated[str, Meta(max_length=64, description="The leaderboard's key.")]
    top: Count = 1


class ChallengeFinished(Strict, tag="challengeFinished"):
    """A wager challenge finished: `won`, or `any` outcome; optionally one challenge."""

    outcome: str = "won"
    challenge: Annotated[str, Meta(max_length=64)] | None = None
    count: Count = 1


class MemberJoined(Strict, tag="memberJoined"):
    """The member joined (`member.joined`)."""


class RitualCompleted(Strict, tag="ritualCompleted"):
    """The entry ritual completed (`ritual.completed`, once the ritual feature emits it)."""


class BadgeEarned(Strict, tag="badgeEarned"):
    """Another badge earned (a series: gold needs silver)."""

    badge: BadgeKey


class PkWon(Strict, tag="pkWon"):
    """Team PKs won (`pk.won`: the member was in the winning team at its end); optionally
    one PK."""

    pk: Annotated[str, Meta(max_length=64, description="A PK key; absent: any PK.")] | None = None
    count: Count = 1


class Manual(Strict, tag="manual"):
    """Only an operator awards it (POST .../badges/{key}/award)."""


Criterion = (
    EventCount
    | ValueSum
    | FirstTime
    | CheckinStreak
    | LevelReached
    | TotalEarned
    | BoardRank
    | ChallengeFinished
    | MemberJoined
    | RitualCompleted
    | BadgeEarned
    | PkWon
    | Manual
)


class Plain(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    pass


class WindowIn(Plain):
    """Time-limited badges: only events in [startsAt, endsAt) count. Times need an offset."""

    starts_at: datetime | None = None
    ends_at: datetime | None = None


class RewardIn(Plain):
    points: int = 0
    growth: int = 0
    title: Title | None = None
    title_days: Annotated[
        int | None, Meta(description="Days the title is held; absent: for good.")
    ] = None
    title_until: Annotated[
        Literal["periodEnd"] | None,
        Meta(
            description="periodEnd: a repeatable badge's title is held until its period ends "
            "(first on last week's board holds it until this week's is decided)."
        ),
    ] = None


class BadgeIn(Plain):
    """A badge definition. Validated as a whole; each save bumps the version."""

    name: Annotated[str, Meta(min_length=1, max_length=32)]
    criteria: Annotated[list[Criterion], Meta(max_length=10)]
    description: Annotated[str, Meta(max_length=500)] = ""
    icon: Url = ""
    icon_locked: Url = ""
    series: Annotated[str, Meta(max_length=64)] = ""
    tier: Literal["", "bronze", "silver", "gold", "platinum", "diamond"] = ""
    hidden: Annotated[bool, Meta(description="Shown to members only once earned.")] = False
    repeat: Annotated[
        Literal["once", "daily", "weekly", "monthly"],
        Meta(
            description="once: earned once ever. daily/weekly/monthly: earned at most once per "
            "local day, ISO week or month (the tenant's time zone), counted."
        ),
    ] = "once"
    window: WindowIn | None = None
    reward: RewardIn = msgspec.field(default_factory=RewardIn)


class BadgeOut(msgspec.Struct, rename="camel"):
    key: str
    version: int
    status: Annotated[
        str,
        Meta(
            description="active; parked: the subscriber failed on it (see parkedReason), it "
            "counts nothing until a corrected PUT; resuming: catching up on missed events."
        ),
    ]
    parked_reason: str
    parked_at: datetime | None
    definition: Annotated[
        BadgeIn | None, Meta(description="null if the stored document no longer reads (parked)")
    ]
    backfilled_at: datetime | None
    created_at: datetime
    updated_at: datetime


class BadgeList(msgspec.Struct, rename="camel"):
    items: list[BadgeOut]


class AwardIn(Plain):
    reason: Annotated[str, Meta(min_length=1, max_length=500)]


class AwardOut(msgspec.Struct, rename="camel"):
    key: str
    member_id: int
    period: str
    earned: bool
    changed: Annotated[bool, Meta(description="False when it was already so (idempotent).")]


class BackfillOut(msgspec.Struct, rename="camel"):
    key: str
    events: int
    earned: int


# ---------------------------------------------------------------- members


class Progress(msgspec.Struct, rename="camel"):
    current: int
    target: int


class BadgeView(msgspec.Struct, rename="camel"):
    """One badge of the wall. A hidden badge not yet earned is masked: no name, description,
    icon or progress, only `iconLocked` and `hidden: true`."""

    key: str
    name: str
    description: str
    icon: str
    icon_locked: str
    series: str
    tier: str
    hidden: bool
    repeat: str
    earned: bool
    earned_at: datetime | None
    times_earned: int
    progress: Progress | None


class BadgeCatalogue(msgspec.Struct, rename="camel"):
    items: list[BadgeView]


class EarnedBadge(msgspec.Struct, rename="camel"):
    key: str
    name: str
    icon: str
    series: str
    tier: str
    period: str
    earned_at: datetime


class TitleOut(msgspec.Struct, rename="camel"):
    title: str
    source: str
    gained_at: datetime
    expires_at: datetime | None
    shown: bool


class MyBadges(msgspec.Struct, rename="camel"):
    badges: list[EarnedBadge]
    titles: list[TitleOut]
    shown_title: str | None


class TitleIn(Plain):
    title: Annotated[Title | None, Meta(description="A title I hold; null shows none.")] = None


class ShownTitleOut(msgspec.Struct, rename="camel"):
    shown_title: str | None
