"""Pure check-in rules: local days, streaks, reward ladders and cycles, make-up eligibility."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def zone(name: str) -> ZoneInfo | None:
    """The zone named ``name``, or None when the tz database does not know it."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        return None


def local_day(instant: datetime, tz: ZoneInfo) -> date:
    """The calendar day ``instant`` falls on in ``tz`` (the campaign's "today")."""
    return instant.astimezone(tz).date()


def day_start(day: date, tz: ZoneInfo) -> datetime:
    """The instant a local day begins (midnight in ``tz``; DST-safe via fold=0)."""
    return datetime.combine(day, time(0), tzinfo=tz)


def month_bounds(month: date) -> tuple[date, date]:
    """First and last day of the month containing ``month``."""
    first = month.replace(day=1)
    nxt = (
        first.replace(year=first.year + 1, month=1)
        if first.month == 12
        else first.replace(month=first.month + 1)
    )
    return first, nxt - timedelta(days=1)


# ----------------------------------------------------------------------------- rewards


@dataclass(frozen=True, slots=True)
class Reward:
    points: int = 0
    growth: int = 0

    def __add__(self, other: Reward) -> Reward:
        return Reward(self.points + other.points, self.growth + other.growth)

    @property
    def empty(self) -> bool:
        return self.points == 0 and self.growth == 0


@dataclass(frozen=True, slots=True)
class Milestone:
    day: int
    reward: Reward


@dataclass(frozen=True, slots=True)
class RewardPlan:
    """What a day of a streak pays. ``cycle_days`` 0 means continuous: a milestone is paid
    once, the day the streak reaches it. With a ladder of N days the position restarts every
    N days (day N+1 of a streak is day 1 of the ladder again), so milestones repeat."""

    base: Reward
    milestones: tuple[Milestone, ...] = ()
    cycle_days: int = 0

    def position(self, streak: int) -> int:
        if streak < 1:
            raise ValueError("a streak starts at 1")
        return (streak - 1) % self.cycle_days + 1 if self.cycle_days else streak

    def milestone_for(self, streak: int) -> Milestone | None:
        pos = self.position(streak)
        for m in self.milestones:
            if m.day == pos:
                return m
        return None

    def reward_for(self, streak: int) -> tuple[Reward, Milestone | None]:
        m = self.milestone_for(streak)
        return (self.base + m.reward if m else self.base), m


def ladder_problems(milestone_days: Sequence[int], cycle_days: int) -> list[tuple[int, str]]:
    """Problems of a streak ladder as (index, message): days must increase strictly and fit
    in the cycle."""
    problems = []
    for i, d in enumerate(milestone_days):
        if i and d <= milestone_days[i - 1]:
            problems.append((i, "streak days must increase strictly"))
        if cycle_days and d > cycle_days:
            problems.append((i, f"day {d} is beyond the {cycle_days}-day cycle"))
    return problems


# ----------------------------------------------------------------------------- streaks


def runs(days: Iterable[date]) -> list[tuple[date, date]]:
    """Maximal runs of consecutive days, as (first, last), in date order."""
    out: list[tuple[date, date]] = []
    for d in sorted(set(days)):
        if out and d - out[-1][1] == timedelta(days=1):
            out[-1] = (out[-1][0], d)
        else:
            out.append((d, d))
    return out


@dataclass(frozen=True, slots=True)
class Streaks:
    last_day: date | None
    current: int  # the run ending at last_day
    longest: int
    total: int


def streaks_of(days: Iterable[date]) -> Streaks:
    """Streak state of a set of checked days (the make-up recomputation)."""
    rs = runs(days)
    if not rs:
        return Streaks(None, 0, 0, 0)
    lengths = [(b - a).days + 1 for a, b in rs]
    return Streaks(rs[-1][1], lengths[-1], max(lengths), sum(lengths))


def after_checkin(state: Streaks, day: date) -> Streaks:
    """Streak state after checking in ``day``, when ``day`` is later than every checked day
    (the hot path: no need to read the history)."""
    if state.last_day is not None and day <= state.last_day:
        raise ValueError("after_checkin needs a day after the last one")
    joined = state.last_day is not None and day - state.last_day == timedelta(days=1)
    current = state.current + 1 if joined else 1
    return Streaks(day, current, max(state.longest, current), state.total + 1)


def streak_ending(days: set[date], day: date) -> int:
    """How many consecutive checked days end at ``day`` (0 if ``day`` is not checked)."""
    n = 0
    while day - timedelta(days=n) in days:
        n += 1
    return n


def alive_streak(state: Streaks, today: date) -> int:
    """The streak a member sees today: it survives until the end of the day after its last
    check-in, so an evening check-in keeps it going."""
    if state.last_day is None or today - state.last_day > timedelta(days=1):
        return 0
    return state.current


# ----------------------------------------------------------------------------- bitmaps


def bit_set(bitmap: bytes, offset: int) -> bool:
    """Redis bit order: offset 0 is the most significant bit of the first byte."""
    if offset < 0:
        return False
    i = offset >> 3
    return i < len(bitmap) and bool(bitmap[i] & (0x80 >> (offset & 7)))


def bitmap_of(offsets: Iterable[int]) -> bytes:
    offs = [o for o in offsets if o >= 0]
    if not offs:
        return b""
    out = bytearray(max(offs) // 8 + 1)
    for o in offs:
        out[o >> 3] |= 0x80 >> (o & 7)
    return bytes(out)


def offsets_of(bitmap: bytes) -> list[int]:
    return [
        i * 8 + b for i, byte in enumerate(bitmap) if byte for b in range(8) if byte & (0x80 >> b)
    ]


def streaks_from_bitmap(bitmap: bytes, epoch: date, today: date) -> tuple[Streaks, int]:
    """(streak state, alive streak today) from a calendar bitmap: the read path."""
    days = [epoch + timedelta(days=o) for o in offsets_of(bitmap)]
    state = streaks_of(d for d in days if d <= today)
    return state, alive_streak(state, today)


# ----------------------------------------------------------------------------- make-ups


@dataclass(frozen=True, slots=True)
class MakeupRules:
    per_month: int
    cost_points: int
    window_days: int


def makeup_problem(
    rules: MakeupRules,
    day: date,
    today: date,
    campaign_first_day: date,
    member_first_day: date,
) -> str | None:
    """Why ``day`` cannot be made up (an error code), or None. The quota and "already
    checked" need the member's rows and are checked by the caller under its lock."""
    if rules.per_month <= 0:
        return "MAKEUP_NOT_OFFERED"
    if day > today:
        return "MAKEUP_DATE_IN_FUTURE"
    if day == today:
        return "MAKEUP_DATE_IS_TODAY"
    if (today - day).days > rules.window_days:
        return "MAKEUP_WINDOW_PASSED"
    if day < campaign_first_day:
        return "MAKEUP_BEFORE_CAMPAIGN"
    if day < member_first_day:
        return "MAKEUP_BEFORE_JOINING"
    return None


def upcoming(
    plan: RewardPlan, state: Streaks, today: date, checked_today: bool, n: int
) -> list[tuple[date, int, Reward, Milestone | None]]:
    """The next ``n`` days a member can check in, with the streak each would reach and what it
    pays, assuming no day is missed from here on."""
    streak = alive_streak(state, today)
    first = today + timedelta(days=1) if checked_today else today
    out = []
    for i in range(n):
        s = streak + 1 + i
        reward, m = plan.reward_for(s)
        out.append((first + timedelta(days=i), s, reward, m))
    return out


# ----------------------------------------------------------------------------- plans


@dataclass(frozen=True, slots=True)
class CheckinPlan:
    """What one check-in or make-up writes, decided from the member's state as read.

    ``before`` is that state (the write's guard: it applies only if the streak row still
    holds it), ``after`` the streak state to store, ``streak`` the streak the day's row
    records, ``reward`` what it pays (``milestone`` when a streak reward is part of it) and
    ``cost`` what a make-up costs in points."""

    day: date
    kind: str  # daily, makeup
    before: Streaks
    after: Streaks
    streak: int
    reward: Reward
    milestone: Milestone | None
    cost: int = 0


def needs_history(state: Streaks, today: date) -> bool:
    """True when a check-in of ``today`` cannot be planned from the streak row alone: today
    is not after the last checked day (the clock was moved back, in demos)."""
    return state.last_day is not None and today <= state.last_day


def plan_checkin(
    plan: RewardPlan, state: Streaks, today: date, history: set[date] | None = None
) -> CheckinPlan:
    """The check-in of ``today`` for a member whose streak row holds ``state``, today not yet
    checked. ``history`` (every checked day) is needed only when ``needs_history``: the
    streaks are then recounted from the days."""
    if needs_history(state, today):
        if history is None:
            raise ValueError("this check-in needs the member's checked days")
        days = history | {today}
        after = streaks_of(days)
        streak = streak_ending(days, today)
    else:
        after = after_checkin(state, today)
        streak = after.current
    reward, milestone = plan.reward_for(streak)
    return CheckinPlan(today, "daily", state, after, streak, reward, milestone)


def makeups_in_month(days: dict[date, str], day: date) -> int:
    """How many make-ups fall in the calendar month of ``day``."""
    first, last = month_bounds(day)
    return sum(1 for d, kind in days.items() if kind == "makeup" and first <= d <= last)


def plan_makeup(
    rules: MakeupRules, state: Streaks, days: dict[date, str], day: date, today: date
) -> CheckinPlan | str:
    """The make-up of ``day`` (already found eligible by ``makeup_problem``) for a member whose
    streak row holds ``state`` and whose checked days are ``days`` (day -> kind), or the code
    that refuses it: ``MAKEUP_DAY_CHECKED`` (a check-in holds the day) or ``MAKEUP_QUOTA_USED``
    (the month of ``day`` has its ``per_month`` make-ups). A make-up pays no reward; the
    streaks are recounted, so a make-up joining two runs makes one."""
    if day in days:
        return "MAKEUP_DAY_CHECKED"
    if makeups_in_month(days, day) >= rules.per_month:
        return "MAKEUP_QUOTA_USED"
    filled = set(days) | {day}
    after = streaks_of(d for d in filled if d <= today)
    return CheckinPlan(
        day,
        "makeup",
        state,
        after,
        streak_ending(filled, day),
        Reward(),
        None,
        rules.cost_points,
    )
