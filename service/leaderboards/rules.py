"""Pure board rules: validation, periods in the board's time zone, scoring, the tie encoding.

The score encoding (what the Redis sorted set stores)
------------------------------------------------------
Ties are ordered to the board's tick: among equal scores, whoever reached the score first ranks
higher, when the reaches are at least one tick apart (41 us daily ... 1 s all-time, below).
Within one tick the smaller member id ranks first. We pack three things in the order key

    key = score * 2**31 + (2**31 - 1 - tick)          (a 62-bit integer)

- ``score`` is the member's score in the period, clamped to ``0 .. MAX_SCORE`` (2**31 - 1 =
  2,147,483,647): 31 bits. A score past it is shown as MAX_SCORE (PostgreSQL keeps the sum).
- ``tick`` is when the member reached that score (the latest business time ``occurred_at`` of
  the events making it) in ``unit`` microseconds from the period start: 31 bits. The
  complement makes an earlier reach sort higher. The unit is the smallest whole number of
  microseconds that spans the period in 2**31 ticks: 41 us for a day, 282 us for a week,
  1,248 us for a month, 1 s for all-time (from 2020-01-01 to 2088-01-19; later reaches share
  the last tick), and per window likewise.
- Still equal (same score, same tick): the smaller member id ranks first. Members are stored
  as 6 bytes big-endian of ``2**48 - 1 - member_id``; Redis orders equal scores by member in
  reverse byte order, which puts the smaller member id first. 6 bytes also keep a 1M-member
  set compact (see ``engage bench leaderboard``).

A sorted-set score is a double, and a double holds only 53 bits of integer exactly. But the
IEEE-754 bit patterns of positive, finite doubles are in the same order as their values, so
the key is stored as the double whose bit pattern is ``key + 2**52`` (the offset skips the
subnormals): 62 bits, exact, ordered, and the same 8 bytes per member as before. Redis prints
scores with 17 significant digits and Python's ``repr`` is the shortest round-trip form, so the
double crosses the wire unchanged both ways (``encode`` / ``decode_key``).

The order is therefore (score desc, tick asc, member id asc) everywhere: Redis, the archive
SQL (``repository.ARCHIVE_ORDER``) and ``sort_key`` below, which the tests compare.
"""

from __future__ import annotations

import math
import re
import struct
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

TIME_BITS = 31
TIME_SPAN = 1 << TIME_BITS
SCORE_BITS = 31
MAX_SCORE = (1 << SCORE_BITS) - 1
MEMBER_BYTES = 6
MAX_MEMBER_ID = (1 << (8 * MEMBER_BYTES)) - 1
ALL_TIME_EPOCH = datetime(2020, 1, 1, tzinfo=UTC)
ALL_TIME_UNIT = 1_000_000  # microseconds: 2**31 s from 2020 reaches 2088
_NORMAL = 1 << 52  # bit pattern of the smallest positive normal double

METRICS = ("points", "growth", "checkins", "eventValue", "eventCount", "invites")
PERIODS = ("allTime", "daily", "weekly", "monthly", "window")
DISPLAYS = ("masked", "full", "anonymous")
SCOPES = ("member", "team")
MAX_LIMIT = 100
MAX_RADIUS = 25
MAX_FRIENDS = 200
MAX_EXPORT_LIMIT = 1000
KEY_RE = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,63}$")


@dataclass(frozen=True, slots=True)
class Period:
    id: str
    start: datetime
    end: datetime | None  # None: never ends (all-time)
    unit: int  # microseconds per tie tick


@dataclass(frozen=True, slots=True)
class BoardSpec:
    """The parts of a board definition the rules need (built from the stored config)."""

    id: int
    tenant_id: int
    key: str
    metric: str
    period: str
    timezone: str
    event_type: str | None = None
    campaign: str | None = None
    value_scale: float = 1.0
    min_score: int = 1
    display: str = "masked"
    show_avatar: bool = True
    window_start: datetime | None = None
    window_end: datetime | None = None
    grace_s: int = 7 * 86400
    close_delay_s: int = 300
    starts_at: datetime | None = None  # events before it are not counted (board creation)
    scope: str = "member"  # member | team (entries are the teams of team_set)
    team_set: str | None = None

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def source(self) -> str:
        """Boards fed by the same events share a Redis hash tag (one script call per batch)."""
        if self.metric in ("eventValue", "eventCount"):
            return f"ev:{self.event_type}"
        return self.metric


# ---------------------------------------------------------------- validation


def validate_board(doc: dict[str, Any]) -> list[dict[str, str]]:
    """Every problem of a board document, as ``{source, path, code, problem}``; empty when valid."""
    problems = validate_metric(doc)

    def bad(field: str, problem: str) -> None:
        problems.append({"source": "body", "path": field, "code": "INVALID", "problem": problem})

    period = doc.get("period")
    if period not in PERIODS:
        bad("period", f"unknown period {period!r}; one of {', '.join(PERIODS)}")
    tz = doc.get("timezone") or "Asia/Shanghai"
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        bad("timezone", f"unknown time zone {tz!r}")
    ws, we = doc.get("windowStart"), doc.get("windowEnd")
    if period == "window":
        if ws is None or we is None:
            bad("windowStart", "a window board needs windowStart and windowEnd")
        elif we <= ws:
            bad("windowEnd", "must be after windowStart")
    elif ws is not None or we is not None:
        bad("windowStart", "only window boards take windowStart/windowEnd")
    scope = doc.get("scope", "member")
    if scope not in SCOPES:
        bad("scope", f"one of {', '.join(SCOPES)}")
    if scope == "team" and not doc.get("teamSet"):
        bad("teamSet", "a team board names the team set whose teams it ranks")
    if scope != "team" and doc.get("teamSet"):
        bad("teamSet", "only team boards take a teamSet")
    if doc.get("display", "masked") not in DISPLAYS:
        bad("display", f"one of {', '.join(DISPLAYS)}")
    if int(doc.get("minScore", 1)) < 1:
        bad("minScore", "must be at least 1")
    return problems


def validate_metric(doc: dict[str, Any]) -> list[dict[str, str]]:
    """Problems of the metric part of a document (metric, eventType, campaign, valueScale):
    shared by boards and team PKs, which count the same metrics."""
    problems: list[dict[str, str]] = []

    def bad(field: str, problem: str) -> None:
        problems.append({"source": "body", "path": field, "code": "INVALID", "problem": problem})

    metric = doc.get("metric")
    if metric not in METRICS:
        bad("metric", f"unknown metric {metric!r}; one of {', '.join(METRICS)}")
    if metric in ("eventValue", "eventCount") and not doc.get("eventType"):
        bad("eventType", "required for event metrics (e.g. order.paid)")
    if metric not in ("eventValue", "eventCount") and doc.get("eventType"):
        bad("eventType", "only event metrics take an eventType")
    if doc.get("campaign") and metric != "checkins":
        bad("campaign", "only the checkins metric filters by campaign")
    scale = doc.get("valueScale", 1.0)
    if not (isinstance(scale, int | float) and 0 < scale <= 10_000):
        bad("valueScale", "must be > 0 and <= 10000")
    if scale != 1.0 and metric != "eventValue":
        bad("valueScale", "only eventValue metrics scale values")
    return problems


def identity_of(config: dict[str, Any]) -> tuple[Any, ...]:
    """What a board's stored scores mean; changing any of it under the same key is a clash."""
    return (
        config.get("metric"),
        config.get("eventType"),
        config.get("campaign"),
        config.get("valueScale", 1.0),
        config.get("period"),
        config.get("timezone"),
        config.get("windowStart"),
        config.get("windowEnd"),
        config.get("scope", "member"),
        config.get("teamSet"),
    )


def validate_red_black(doc: dict[str, Any]) -> list[dict[str, str]]:
    problems: list[dict[str, str]] = []
    red, black = doc.get("redSize", 10), doc.get("blackSize", 0)
    if not 1 <= red <= 100:
        problems.append(
            {"source": "body", "path": "redSize", "code": "INVALID", "problem": "must be 1..100"}
        )
    if not 0 <= black <= 100:
        problems.append(
            {"source": "body", "path": "blackSize", "code": "INVALID", "problem": "must be 0..100"}
        )
    if doc.get("blackEnabled") and black < 1:
        problems.append(
            {
                "source": "body",
                "path": "blackSize",
                "code": "INVALID",
                "problem": "blackEnabled needs blackSize >= 1",
            }
        )
    if doc.get("minActivity", 1) < 1:
        problems.append(
            {
                "source": "body",
                "path": "minActivity",
                "code": "INVALID",
                "problem": "must be at least 1",
            }
        )
    return problems


# ---------------------------------------------------------------- periods


def _local_midnight(tz: ZoneInfo, d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=tz).astimezone(UTC)


def tick_unit(start: datetime, end: datetime) -> int:
    """Microseconds per tick so that the period fits in TIME_SPAN ticks."""
    return max(1, -(-((end - start) // timedelta(microseconds=1)) // TIME_SPAN))


def _month_after(d: date) -> date:
    return date(d.year + (d.month == 12), d.month % 12 + 1, 1)


def period_for(spec: BoardSpec, at: datetime) -> Period | None:
    """The period an instant falls in (in the board's zone); None when the board does not count
    it (outside its window)."""
    if spec.period == "allTime":
        return Period("all", ALL_TIME_EPOCH, None, ALL_TIME_UNIT)
    if spec.period == "window":
        assert spec.window_start is not None and spec.window_end is not None
        if not spec.window_start <= at < spec.window_end:
            return None
        per_tick = tick_unit(spec.window_start, spec.window_end)
        return Period("window", spec.window_start, spec.window_end, per_tick)
    tz = spec.tz
    local = at.astimezone(tz).date()
    if spec.period == "daily":
        return Period(
            local.isoformat(),
            _local_midnight(tz, local),
            _local_midnight(tz, local + timedelta(days=1)),
            tick_unit(_local_midnight(tz, local), _local_midnight(tz, local + timedelta(days=1))),
        )
    if spec.period == "weekly":
        monday = local - timedelta(days=local.weekday())
        year, week, _ = monday.isocalendar()
        return Period(
            f"{year}-W{week:02d}",
            _local_midnight(tz, monday),
            _local_midnight(tz, monday + timedelta(days=7)),
            tick_unit(_local_midnight(tz, monday), _local_midnight(tz, monday + timedelta(days=7))),
        )
    first = local.replace(day=1)
    return Period(
        f"{first.year}-{first.month:02d}",
        _local_midnight(tz, first),
        _local_midnight(tz, _month_after(first)),
        tick_unit(_local_midnight(tz, first), _local_midnight(tz, _month_after(first))),
    )


_DAY = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


def period_by_id(spec: BoardSpec, period_id: str) -> Period | None:
    """Parse a period id of this board's kind; None when it is not one."""
    try:
        if spec.period == "allTime":
            return period_for(spec, ALL_TIME_EPOCH) if period_id == "all" else None
        if spec.period == "window":
            return period_for(spec, spec.window_start) if period_id == "window" else None  # type: ignore[arg-type]
        if spec.period == "daily" and (m := _DAY.match(period_id)):
            d = date(int(m[1]), int(m[2]), int(m[3]))
        elif spec.period == "weekly" and (m := _WEEK.match(period_id)):
            d = date.fromisocalendar(int(m[1]), int(m[2]), 1)
        elif spec.period == "monthly" and (m := _MONTH.match(period_id)):
            d = date(int(m[1]), int(m[2]), 1)
        else:
            return None
    except ValueError:
        return None
    p = period_for(spec, _local_midnight(spec.tz, d) + timedelta(hours=1))
    return p if p is not None and p.id == period_id else None


def previous_period(spec: BoardSpec, now: datetime) -> Period | None:
    """The period before the current one; None for boards with a single period."""
    if spec.period in ("allTime", "window"):
        return None
    current = period_for(spec, now)
    assert current is not None
    return period_for(spec, current.start - timedelta(seconds=1))


def current_period(spec: BoardSpec, now: datetime) -> Period | None:
    if spec.period == "window":
        # A window board has one period: shown (empty) before it opens, archived after.
        return period_by_id(spec, "window")
    return period_for(spec, now)


def expires_at(spec: BoardSpec, period: Period) -> datetime | None:
    """When the period's Redis key may go: after its end plus the grace time."""
    return None if period.end is None else period.end + timedelta(seconds=spec.grace_s)


def is_due_for_close(spec: BoardSpec, period_end: datetime | None, now: datetime) -> bool:
    return period_end is not None and now >= period_end + timedelta(seconds=spec.close_delay_s)


# ---------------------------------------------------------------- scoring


def contribution(spec: BoardSpec, type_: str, payload: dict[str, Any]) -> int:
    """How much one domain event adds to a member's score on this board (0: not at all).

    Reversals: a ``points.reversed`` of the board's currency lowers "points earned" (or
    "growth earned") by its amount in the period the reversal happened, because a credit that
    was taken back was not earned. A reversal that names ``"reverses": "debit"`` gives spent
    points back and is not earning, so it is ignored. Debits and expiries never score.
    """
    m = spec.metric
    if m in ("points", "growth"):
        currency = payload.get("currency", m)
        if currency != m:
            return 0
        amount = payload.get("amount")
        if not isinstance(amount, int):
            return 0
        if type_ == f"{m}.credited" and amount > 0:
            return amount
        if type_ == "points.reversed" and payload.get("reverses", "credit") == "credit":
            return -abs(amount)
        return 0
    if m == "invites":
        # 推荐人数: one per invitee who joined (``referral.joined`` is the inviter's event).
        return 1 if type_ == "referral.joined" else 0
    if m == "checkins":
        if type_ != "checkin.done":
            return 0
        if spec.campaign and payload.get("campaign") != spec.campaign:
            return 0
        return 1
    if type_ != "member.event" or payload.get("type") != spec.event_type:
        return 0
    if m == "eventCount":
        return 1
    value = payload.get("value")
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        return 0
    return round(value * spec.value_scale)


EVENT_TYPES = (
    "points.credited",
    "growth.credited",
    "points.reversed",
    "checkin.done",
    "member.event",
    "referral.joined",
)


def clamp_score(score: int) -> int:
    return max(0, min(score, MAX_SCORE))


def tick_of(period: Period, reached_at: datetime) -> int:
    # Whole microseconds avoid float drift at the tick edges.
    delta = reached_at - period.start
    ticks = delta // timedelta(microseconds=period.unit)
    return max(0, min(int(ticks), TIME_SPAN - 1))


def order_key(score: int, reached_at: datetime, period: Period) -> int:
    """The 62-bit order key: higher ranks first (see the module doc)."""
    return (clamp_score(score) << TIME_BITS) | (TIME_SPAN - 1 - tick_of(period, reached_at))


def key_to_double(key: int) -> float:
    """The double whose bit pattern is ``key + 2**52``: same order, exact both ways."""
    return float(struct.unpack("<d", struct.pack("<q", key + _NORMAL))[0])


def decode_key(encoded: float) -> int:
    return int(struct.unpack("<q", struct.pack("<d", float(encoded)))[0]) - _NORMAL


def encode(score: int, reached_at: datetime, period: Period) -> float:
    """The sorted-set score: the order key as an order-preserving double."""
    return key_to_double(order_key(score, reached_at, period))


def min_encoded(min_score: int) -> float:
    """The lowest sorted-set score of a member with at least ``min_score``."""
    return key_to_double(clamp_score(min_score) << TIME_BITS)


def decode_score(encoded: float) -> int:
    return decode_key(encoded) >> TIME_BITS


def member_bytes(member_id: int) -> bytes:
    if not 0 < member_id <= MAX_MEMBER_ID:
        raise ValueError("member id out of range for the board encoding")
    return (MAX_MEMBER_ID - member_id).to_bytes(MEMBER_BYTES, "big")


def member_of(raw: bytes) -> int:
    return MAX_MEMBER_ID - int.from_bytes(raw, "big")


def sort_key(score: int, reached_at: datetime, member_id: int, period: Period) -> tuple:
    """The board order as a Python key (for the archive check and the tests' model)."""
    return (-clamp_score(score), tick_of(period, reached_at), member_id)


# ---------------------------------------------------------------- reads


def gap_to_previous(my_encoded: float | None, prev_encoded: float | None) -> int | None:
    """How far the member just above me is ahead, in score (None when I am first or unranked);
    0 means a tie they reached earlier."""
    if my_encoded is None or prev_encoded is None:
        return None
    return decode_score(prev_encoded) - decode_score(my_encoded)


def pick_red_black(
    ranked: list[tuple[int, int]],
    red_size: int,
    black_size: int,
    black_enabled: bool,
    min_activity: int,
    hidden_from_black: set[int],
) -> tuple[list[tuple[int, int, int]], list[tuple[int, int, int]]]:
    """From (member, score) in rank order: red = top K, black = bottom K, as (rank, member,
    score). Only members with at least ``min_activity`` count; black never shows a member who
    opted out, and never a member already on red (small boards)."""
    eligible = [(i + 1, m, s) for i, (m, s) in enumerate(ranked) if s >= min_activity]
    red = eligible[:red_size]
    black: list[tuple[int, int, int]] = []
    if black_enabled and black_size > 0:
        on_red = {m for _, m, _ in red}
        pool = [e for e in eligible if e[1] not in on_red and e[1] not in hidden_from_black]
        black = list(reversed(pool[-black_size:]))
    return red, black
