"""Pure rules of the ledger: expiry dates, FIFO allocation, levels, event-rule conditions.

Nothing here does I/O or reads the clock: callers pass "now" and the tenant's time zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_FLOOR, Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

CURRENCIES = ("points", "growth")

# ----------------------------------------------------------------------------- expiry


@dataclass(frozen=True, slots=True)
class ExpiryPolicy:
    """When earned points expire. Growth never expires (levels have their own validity).

    mode: ``never``; ``days`` (``days`` after earning); ``end_of_month`` (the end of the month
    of earning); ``end_of_year`` (the end of the calendar year ``years_after`` years after the
    year of earning; 0 = the same year, 1 = the following year, the common 次年年底 policy).
    Month and year ends are taken in the tenant's time zone: a lot "expires at the end of
    2026-11" is gone at 2026-12-01T00:00 local time.
    """

    mode: str = "never"
    days: int = 0
    years_after: int = 1


def expiry_for(policy: ExpiryPolicy, earned_at: datetime, tz: ZoneInfo) -> datetime | None:
    if policy.mode == "never":
        return None
    if policy.mode == "days":
        return earned_at + timedelta(days=policy.days)
    local = earned_at.astimezone(tz)
    if policy.mode == "end_of_month":
        first_next = (
            date(local.year + 1, 1, 1)
            if local.month == 12
            else date(local.year, local.month + 1, 1)
        )
        return datetime.combine(first_next, time(0), tz).astimezone(UTC)
    if policy.mode == "end_of_year":
        return datetime.combine(
            date(local.year + 1 + policy.years_after, 1, 1), time(0), tz
        ).astimezone(UTC)
    raise ValueError(f"unknown expiry mode {policy.mode}")


def local_day(at: datetime, tz: ZoneInfo) -> date:
    return at.astimezone(tz).date()


# ----------------------------------------------------------------------------- FIFO


@dataclass(frozen=True, slots=True)
class Lot:
    id: int
    remaining: int
    expires_at: datetime | None


def fifo_order_key(lot: Lot) -> tuple[int, datetime, int]:
    """Earliest-expiring first; lots that never expire last; ties by age (id)."""
    if lot.expires_at is None:
        return (1, datetime.max.replace(tzinfo=None), lot.id)
    return (0, lot.expires_at.replace(tzinfo=None), lot.id)


def allocate(lots: list[Lot], amount: int) -> list[tuple[int, int]]:
    """Take ``amount`` from lots in FIFO order: [(lot id, taken)]. Caller checks the total."""
    out: list[tuple[int, int]] = []
    left = amount
    for lot in sorted(lots, key=fifo_order_key):
        if left <= 0:
            break
        take = min(lot.remaining, left)
        if take > 0:
            out.append((lot.id, take))
            left -= take
    if left > 0:
        raise ValueError("not enough in the lots")
    return out


# ----------------------------------------------------------------------------- levels


@dataclass(frozen=True, slots=True)
class Level:
    name: str
    threshold: int
    points_multiplier_pct: int = 100


@dataclass(frozen=True, slots=True)
class Ladder:
    levels: tuple[Level, ...]
    validity_mode: str = "forever"  # or "rolling"
    validity_days: int = 0

    def index_for(self, growth: int) -> int:
        """The highest level whose threshold the growth reaches."""
        idx = 0
        for i, lvl in enumerate(self.levels):
            if growth >= lvl.threshold:
                idx = i
        return idx


def upgrade_target(ladder: Ladder, current: int, qualifying_growth: int) -> int:
    """Levels only go up on earning; the review (rolling validity) brings them down."""
    return max(current, ladder.index_for(qualifying_growth))


def review_outcome(ladder: Ladder, current: int, window_growth: int) -> int:
    """At the end of a validity window: keep the level if the window's growth still reaches
    its threshold, otherwise go down one step (never more at once: 会员有效期 downgrades
    gently, and the member sees what to earn to win it back)."""
    if current <= 0:
        return 0
    if window_growth >= ladder.levels[current].threshold:
        return current
    return current - 1


def apply_multiplier(amount: int, pct: int) -> int:
    return (amount * pct) // 100


# ----------------------------------------------------------------------------- event rules

NUMERIC_OPS = ("gt", "gte", "lt", "lte")
OPS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "not_in", "exists")


@dataclass(frozen=True, slots=True)
class Condition:
    attribute: str
    op: str
    value: Any = None


def _num(v: Any) -> Decimal | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int | float):
        return Decimal(str(v))
    return None


def condition_problems(conditions: list[Condition]) -> list[str]:
    """Every reason a rule's conditions are malformed or can never all hold."""
    problems: list[str] = []
    lows: dict[str, tuple[Decimal, bool]] = {}
    highs: dict[str, tuple[Decimal, bool]] = {}
    eqs: dict[str, Any] = {}
    for i, c in enumerate(conditions):
        where = f"conditions[{i}]"
        if c.op not in OPS:
            problems.append(f"{where}.op: unknown operator {c.op!r}")
            continue
        if c.op in NUMERIC_OPS:
            n = _num(c.value)
            if n is None:
                problems.append(f"{where}.value: {c.op} needs a number")
                continue
            if c.op in ("gt", "gte"):
                prev = lows.get(c.attribute)
                strict = c.op == "gt"
                if prev is None or n > prev[0] or (n == prev[0] and strict):
                    lows[c.attribute] = (n, strict)
            else:
                prev = highs.get(c.attribute)
                strict = c.op == "lt"
                if prev is None or n < prev[0] or (n == prev[0] and strict):
                    highs[c.attribute] = (n, strict)
        elif c.op in ("in", "not_in"):
            if not isinstance(c.value, list) or not c.value:
                problems.append(f"{where}.value: {c.op} needs a non-empty list")
        elif c.op == "exists":
            if not isinstance(c.value, bool):
                problems.append(f"{where}.value: exists needs true or false")
        elif c.op == "eq":
            if c.attribute in eqs and eqs[c.attribute] != c.value:
                problems.append(
                    f"{where}: {c.attribute} cannot equal both {eqs[c.attribute]!r} and {c.value!r}"
                )
            eqs[c.attribute] = c.value
    for attr, (lo, lo_strict) in lows.items():
        hi = highs.get(attr)
        if hi is not None and (lo > hi[0] or (lo == hi[0] and (lo_strict or hi[1]))):
            problems.append(f"conditions: no value of {attr} is both above {lo} and below {hi[0]}")
    for attr, v in eqs.items():
        n = _num(v)
        if n is not None:
            low = lows.get(attr)
            high = highs.get(attr)
            if (low and (n < low[0] or (n == low[0] and low[1]))) or (
                high and (n > high[0] or (n == high[0] and high[1]))
            ):
                problems.append(f"conditions: {attr} = {v} contradicts its range")
        for i, c in enumerate(conditions):
            if c.attribute == attr and c.op == "ne" and c.value == v:
                problems.append(f"conditions[{i}]: {attr} cannot both equal and differ from {v!r}")
            if (
                c.attribute == attr
                and c.op == "not_in"
                and isinstance(c.value, list)
                and v in c.value
            ):
                problems.append(f"conditions[{i}]: {attr} = {v!r} is excluded by not_in")
            if (
                c.attribute == attr
                and c.op == "in"
                and isinstance(c.value, list)
                and (v not in c.value)
            ):
                problems.append(f"conditions[{i}]: {attr} = {v!r} is not in the in-list")
            if c.attribute == attr and c.op == "exists" and c.value is False:
                problems.append(f"conditions[{i}]: {attr} must exist to equal {v!r}")
    return problems


def condition_holds(c: Condition, attributes: dict[str, Any]) -> bool:
    present = c.attribute in attributes
    if c.op == "exists":
        return present == bool(c.value)
    if not present:
        return c.op in ("ne", "not_in")
    v = attributes[c.attribute]
    if c.op == "eq":
        return bool(v == c.value)
    if c.op == "ne":
        return bool(v != c.value)
    if c.op == "in":
        return v in c.value
    if c.op == "not_in":
        return v not in c.value
    a, b = _num(v), _num(c.value)
    if a is None or b is None:
        return False
    return {"gt": a > b, "gte": a >= b, "lt": a < b, "lte": a <= b}[c.op]


def all_hold(conditions: list[Condition], attributes: dict[str, Any]) -> bool:
    return all(condition_holds(c, attributes) for c in conditions)


def effect_amount(mode: str, amount: int, unit: Decimal, value: Decimal | None) -> int:
    """``fixed``: amount; ``per_unit``: amount for every whole ``unit`` of the event's value
    (1 point per yuan: amount 1, unit 1; value 99.9 gives 99)."""
    if mode == "fixed":
        return amount
    if value is None or value <= 0:
        return 0
    units = (value / unit).to_integral_value(rounding=ROUND_FLOOR)
    return int(units) * amount


def parse_value(raw: Any) -> Decimal | None:
    if raw is None or isinstance(raw, bool):
        return None
    try:
        d = Decimal(str(raw))
    except InvalidOperation:
        return None
    return d if d.is_finite() else None


def capped(amount: int, cap: int | None, used: int) -> int:
    if cap is None:
        return amount
    return max(0, min(amount, cap - used))
