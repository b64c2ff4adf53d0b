"""Wire types of check-ins: campaign config, the member's state, check-in and make-up answers."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from service.core.constraints import YEAR_BOUNDED, AwareDatetime, constrained
from service.core.constraints import Key as Key

Amount = Annotated[int, Meta(ge=0, le=1_000_000)]
MonthParam = constrained(
    str,
    "A month, YYYY-MM, in the years 2000-2100.",
    examples=["2026-11"],
    pattern=r"^\d{4}-(0[1-9]|1[0-2])$",
    extra=YEAR_BOUNDED,
)


class Strict(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    """Operator and member input: unknown fields are an error, not silently dropped."""


class RewardIn(Strict):
    points: Amount = 0
    growth: Amount = 0


class StreakRewardIn(Strict):
    day: Annotated[int, Meta(ge=1, le=3660, description="Streak day (position in the cycle).")]
    points: Amount = 0
    growth: Amount = 0


class CycleIn(Strict):
    mode: Annotated[
        Literal["continuous", "ladder"],
        Meta(
            description="continuous: streak rewards are paid once, the day the streak reaches "
            "them. ladder: the reward ladder restarts every `days` days of a streak."
        ),
    ] = "continuous"
    days: Annotated[int, Meta(ge=1, le=366)] | None = None


class MakeupIn(Strict):
    per_month: Annotated[
        int,
        Meta(
            ge=0,
            le=31,
            description="Make-ups allowed per calendar month (the month of the day made up); "
            "0 turns make-ups off.",
        ),
    ] = 0
    cost_points: Annotated[int, Meta(ge=0, le=1_000_000)] = 0
    window_days: Annotated[
        int, Meta(ge=1, le=366, description="Only the last N days can be made up.")
    ] = 7


class CampaignIn(Strict):
    """A check-in campaign. Validated as a whole; each save bumps the version."""

    starts_at: AwareDatetime
    ends_at: AwareDatetime | None = None
    state: Literal["draft", "live", "ended"] = "draft"
    title: Annotated[str, Meta(max_length=64)] = ""
    rules_text: Annotated[
        str, Meta(max_length=2000, description="The rules as shown to members.")
    ] = ""
    timezone: Annotated[str, Meta(max_length=64, examples=["Asia/Shanghai"])] = "Asia/Shanghai"
    base_reward: RewardIn = msgspec.field(default_factory=RewardIn)
    streak_rewards: Annotated[list[StreakRewardIn], Meta(max_length=100)] = []
    cycle: CycleIn = msgspec.field(default_factory=CycleIn)
    makeup: MakeupIn = msgspec.field(default_factory=MakeupIn)


class CampaignOut(msgspec.Struct, rename="camel"):
    key: str
    version: int
    config: CampaignIn
    effective_state: Annotated[
        str, Meta(description="draft, upcoming, live or ended (state and window together).")
    ]
    updated_at: datetime


class RewardOut(msgspec.Struct, rename="camel"):
    points: int
    growth: int
    streak_bonus_day: Annotated[
        int | None, Meta(description="The streak reward included, if any (its day).")
    ] = None


class DayReward(msgspec.Struct, rename="camel"):
    date: date
    streak: Annotated[int, Meta(description="The streak this day would reach.")]
    cycle_day: int
    reward: RewardOut


class CalendarDay(msgspec.Struct, rename="camel"):
    date: date
    checked: bool
    makeup: bool
    can_make_up: bool


class MakeupState(msgspec.Struct, rename="camel"):
    per_month: int
    used_this_month: int
    left_this_month: int
    cost_points: int
    window_days: int


class CheckinState(msgspec.Struct, rename="camel"):
    campaign: str
    title: str
    rules_text: str
    state: str
    timezone: str
    today: date
    now: datetime
    checked_in_today: bool
    current_streak: int
    longest_streak: int
    total_days: int
    month: str
    calendar: list[CalendarDay]
    makeup: MakeupState
    upcoming: list[DayReward]


class CheckinOut(msgspec.Struct, rename="camel"):
    campaign: str
    date: date
    kind: Annotated[str, Meta(description="daily or makeup")]
    streak: int
    reward: RewardOut
    cost_points: int
    tomorrow: DayReward | None
    checked_in_at: datetime
    replayed: Annotated[
        bool, Meta(description="True when this day was already done: the first result again.")
    ]


class MakeupBody(Strict):
    date: date
