"""Pure badge rules: criteria, what an event adds to each, periods, earning, reward cycles.

A badge has one or more criteria, all of which must be met in one period (the whole life for a
once-only badge, a local day, ISO week or month for a repeatable one). Each criterion keeps one
number per member and period, ``current``, grown by domain events in one of two ways:

- ``add``: counts and sums (N check-ins, N spins, N paid orders, order value, points earned);
- ``max``: levels reached (streak days, level index, "it happened" as 1).

Nothing here is evaluated as code: a criterion is a kind plus a few declared fields, checked on
save by ``problems``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

# Domain events the service itself emits that a badge may count (eventCount / firstTime).
DOMAIN_EVENT_TYPES = frozenset(
    {
        "checkin.done",
        "checkin.makeup",
        "checkin.streak",
        "wheel.spun",
        "prize.won",
        "prize.claimed",
        "challenge.joined",
        "challenge.won",
        "challenge.lost",
        "challenge.refunded",
        "member.joined",
        "ritual.completed",
        "level.up",
        "points.credited",
        "growth.credited",
        "pk.won",
        "pk.mvp",
        "team.joined",
    }
)
CURRENCIES = ("points", "growth")
REPEATS = ("once", "daily", "weekly", "monthly")
TIERS = ("bronze", "silver", "gold", "platinum", "diamond")
CHALLENGE_OUTCOMES = ("won", "any")
KINDS = (
    "eventCount",
    "valueSum",
    "firstTime",
    "checkinStreak",
    "levelReached",
    "totalEarned",
    "boardRank",
    "challengeFinished",
    "memberJoined",
    "ritualCompleted",
    "badgeEarned",
    "pkWon",
    "manual",
)
MAX_TARGET = 10**12


@dataclass(frozen=True, slots=True)
class Criterion:
    kind: str
    target: int = 1
    event_type: str | None = None  # eventCount, valueSum, firstTime
    campaign: str | None = None  # checkinStreak
    currency: str | None = None  # totalEarned
    board: str | None = None  # boardRank (the red/black board's leaderboard key)
    challenge: str | None = None  # challengeFinished (None: any)
    outcome: str = "won"  # challengeFinished
    badge: str | None = None  # badgeEarned
    pk: str | None = None  # pkWon (None: any)


@dataclass(frozen=True, slots=True)
class BadgeSpec:
    """The parts of a definition the rules need (built from the stored config)."""

    id: int
    tenant_id: int
    key: str
    criteria: tuple[Criterion, ...]
    repeat: str = "once"
    timezone: str = "Asia/Shanghai"
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    reward_points: int = 0
    reward_growth: int = 0
    reward_title: str | None = None
    title_days: int | None = None
    title_until_period_end: bool = False

    @property
    def manual_only(self) -> bool:
        return all(c.kind == "manual" for c in self.criteria)


def criterion_from(raw: Mapping[str, Any]) -> Criterion:
    kind = raw["kind"]
    target = {
        "eventCount": raw.get("count", 1),
        "valueSum": raw.get("value", 1),
        "checkinStreak": raw.get("days", 1),
        "levelReached": raw.get("level", 1),
        "totalEarned": raw.get("amount", 1),
        "boardRank": raw.get("top", 1),
        "challengeFinished": raw.get("count", 1),
        "pkWon": raw.get("count", 1),
    }.get(kind, 1)
    return Criterion(
        kind=kind,
        target=int(target),
        event_type=raw.get("eventType"),
        campaign=raw.get("campaign"),
        currency=raw.get("currency"),
        board=raw.get("board"),
        challenge=raw.get("challenge"),
        outcome=raw.get("outcome", "won"),
        badge=raw.get("badge"),
        pk=raw.get("pk"),
    )


def spec_from(
    badge_id: int, tenant_id: int, key: str, config: Mapping[str, Any], tz: str
) -> BadgeSpec:
    window = config.get("window") or {}
    reward = config.get("reward") or {}
    return BadgeSpec(
        id=badge_id,
        tenant_id=tenant_id,
        key=key,
        criteria=tuple(criterion_from(c) for c in config.get("criteria", [])),
        repeat=config.get("repeat", "once"),
        timezone=config.get("timezone") or tz,
        starts_at=_dt(window.get("startsAt")),
        ends_at=_dt(window.get("endsAt")),
        reward_points=int(reward.get("points", 0)),
        reward_growth=int(reward.get("growth", 0)),
        reward_title=reward.get("title") or None,
        title_days=reward.get("titleDays"),
        title_until_period_end=reward.get("titleUntil") == "periodEnd",
    )


def _dt(v: Any) -> datetime | None:
    if v is None or isinstance(v, datetime):
        return v
    return datetime.fromisoformat(v)


# ---------------------------------------------------------------- what an event adds


def event_types(c: Criterion) -> frozenset[str]:
    """The outbox event types that can move a criterion."""
    if c.kind in ("eventCount", "valueSum", "firstTime"):
        assert c.event_type is not None
        return frozenset({c.event_type if c.event_type in DOMAIN_EVENT_TYPES else "member.event"})
    return {
        "checkinStreak": frozenset({"checkin.done", "checkin.makeup"}),
        "levelReached": frozenset({"level.up"}),
        "totalEarned": frozenset({f"{c.currency}.credited"}),
        "boardRank": frozenset({"red-black.published"}),
        "challengeFinished": frozenset({"challenge.won", "challenge.lost", "challenge.refunded"}),
        "memberJoined": frozenset({"member.joined"}),
        "ritualCompleted": frozenset({"ritual.completed"}),
        "badgeEarned": frozenset({"badge.earned"}),
        "pkWon": frozenset({"pk.won"}),
    }.get(c.kind, frozenset())


def spec_event_types(spec: BadgeSpec) -> frozenset[str]:
    out: frozenset[str] = frozenset()
    for c in spec.criteria:
        out |= event_types(c)
    return out


Hit = tuple[int, str, int]  # member id, "add" | "max", value


def hits(c: Criterion, type_: str, member_id: int | None, payload: Mapping[str, Any]) -> list[Hit]:
    """What one event adds to a criterion, per member (most events concern one member; a
    red/black publication concerns everyone on the red list)."""
    k = c.kind
    if k == "boardRank":
        if type_ != "red-black.published" or payload.get("boardKey") != c.board:
            return []
        red = payload.get("red") or []
        return [(int(m), "max", 1) for m in red[: c.target]]
    if member_id is None:
        return []
    if k in ("eventCount", "firstTime", "valueSum"):
        if c.event_type in DOMAIN_EVENT_TYPES:
            if type_ != c.event_type:
                return []
            value = payload.get("amount", 1) if k == "valueSum" else 1
        else:
            if type_ != "member.event" or payload.get("type") != c.event_type:
                return []
            value = payload.get("value", 1) if k == "valueSum" else 1
        if k == "valueSum":
            try:
                value = int(value or 0)
            except (TypeError, ValueError):
                return []
            return [(member_id, "add", value)] if value > 0 else []
        return [(member_id, "max" if k == "firstTime" else "add", 1)]
    if k == "checkinStreak":
        if type_ not in ("checkin.done", "checkin.makeup"):
            return []
        if c.campaign is not None and payload.get("campaign") != c.campaign:
            return []
        return [(member_id, "max", int(payload.get("streak") or 0))]
    if k == "levelReached":
        return [(member_id, "max", int(payload.get("to") or 0))] if type_ == "level.up" else []
    if k == "totalEarned":
        if type_ != f"{c.currency}.credited":
            return []
        return [(member_id, "add", max(0, int(payload.get("amount") or 0)))]
    if k == "challengeFinished":
        if not type_.startswith("challenge.") or type_ == "challenge.joined":
            return []
        if c.outcome == "won" and type_ != "challenge.won":
            return []
        if c.challenge is not None and payload.get("challenge") != c.challenge:
            return []
        return [(member_id, "add", 1)]
    if k == "memberJoined":
        return [(member_id, "max", 1)] if type_ == "member.joined" else []
    if k == "ritualCompleted":
        return [(member_id, "max", 1)] if type_ == "ritual.completed" else []
    if k == "pkWon":
        if type_ != "pk.won" or (c.pk is not None and payload.get("key") != c.pk):
            return []
        return [(member_id, "add", 1)]
    if k == "badgeEarned":
        if type_ == "badge.earned" and payload.get("key") == c.badge:
            return [(member_id, "max", 1)]
        return []
    return []


def combine(mode: str, current: int, value: int) -> int:
    return current + value if mode == "add" else max(current, value)


# ---------------------------------------------------------------- periods and earning


def period_id(spec: BadgeSpec, at: datetime) -> str | None:
    """The period an event at ``at`` counts in; None outside the badge's window."""
    if spec.starts_at is not None and at < spec.starts_at:
        return None
    if spec.ends_at is not None and at >= spec.ends_at:
        return None
    if spec.repeat == "once":
        return ""
    local = at.astimezone(ZoneInfo(spec.timezone))
    if spec.repeat == "daily":
        return local.date().isoformat()
    if spec.repeat == "weekly":
        y, w, _ = local.isocalendar()
        return f"{y}-W{w:02d}"
    return f"{local.year}-{local.month:02d}"


def period_end(spec: BadgeSpec, at: datetime) -> datetime | None:
    """When the period containing ``at`` ends (None for once-only badges)."""
    if spec.repeat == "once":
        return None
    tz = ZoneInfo(spec.timezone)
    day = at.astimezone(tz).date()
    if spec.repeat == "daily":
        end = day + timedelta(days=1)
    elif spec.repeat == "weekly":
        end = day + timedelta(days=7 - day.weekday())
    else:
        end = (day.replace(day=1) + timedelta(days=32)).replace(day=1)
    return datetime(end.year, end.month, end.day, tzinfo=tz)


def title_expiry(spec: BadgeSpec, now: datetime) -> datetime | None:
    """Until when a title from this badge is held: for good, ``titleDays`` days, or (for a
    repeatable badge, e.g. first on last week's board) until the current period ends, when
    the next holder is decided."""
    if spec.title_until_period_end:
        return period_end(spec, now)
    if spec.title_days:
        return now + timedelta(days=spec.title_days)
    return None


def met(spec: BadgeSpec, currents: Mapping[int, int]) -> bool:
    """True when every criterion reached its target (a manual criterion never does)."""
    if not spec.criteria or spec.manual_only:
        return False
    return all(
        c.kind != "manual" and currents.get(i, 0) >= c.target for i, c in enumerate(spec.criteria)
    )


def progress(spec: BadgeSpec, currents: Mapping[int, int]) -> tuple[int, int]:
    """One ``{current, target}`` for the wall: the criterion's own numbers when there is one,
    else criteria met out of criteria."""
    crits = [c for c in spec.criteria if c.kind != "manual"]
    if not crits:
        return 0, 1
    if len(spec.criteria) == 1:
        c = spec.criteria[0]
        return min(currents.get(0, 0), c.target), c.target
    done = sum(
        1
        for i, c in enumerate(spec.criteria)
        if c.kind != "manual" and currents.get(i, 0) >= c.target
    )
    return done, len(crits)


# ---------------------------------------------------------------- validation


def _produces(spec: BadgeSpec) -> set[str]:
    out = {f"badge.earned:{spec.key}"}
    if spec.reward_points:
        out.add("points.credited")
    if spec.reward_growth:
        out |= {"growth.credited", "level.up"}
    return out


def _consumes(spec: BadgeSpec) -> set[str]:
    out: set[str] = set()
    for c in spec.criteria:
        if c.kind == "badgeEarned":
            out.add(f"badge.earned:{c.badge}")
        elif c.kind in ("eventCount", "valueSum", "firstTime") and c.event_type == "badge.earned":
            out.add("badge.earned:*")
        else:
            out |= set(event_types(c)) - {"badge.earned"}
    return out


def reward_cycle(specs: Iterable[BadgeSpec], key: str) -> list[str] | None:
    """A chain of badges whose rewards lead back to ``key`` (a badge whose reward earns
    itself, directly or through others), or None. Earning A feeds B when A's reward or its
    ``badge.earned`` is an event B's criteria count."""
    by_key = {s.key: s for s in specs}
    if key not in by_key:
        return None
    # Badges each one can only be earned after (every criterion must be met, so a
    # ``badgeEarned`` criterion makes it wait for that badge), transitively.
    direct = {
        s.key: {c.badge for c in s.criteria if c.kind == "badgeEarned" and c.badge}
        for s in by_key.values()
    }
    after: dict[str, set[str]] = {}
    for k in by_key:
        todo, got = list(direct[k]), set()
        while todo:
            b = todo.pop()
            if b not in got:
                got.add(b)
                todo.extend(direct.get(b, ()))
        after[k] = got

    def feeds(a: BadgeSpec, b: BadgeSpec) -> bool:
        # A once-only badge that A must wait for is already held when A pays: A's reward can
        # never earn it (unless they wait for each other, which nothing can ever earn).
        if b.repeat == "once" and b.key in after[a.key] and a.key not in after[b.key]:
            return False
        prod, cons = _produces(a), _consumes(b)
        if "badge.earned:*" in cons:
            return True
        return bool(prod & cons)

    # Depth-first search from key back to key.
    stack: list[tuple[str, list[str]]] = [(key, [key])]
    seen: set[str] = set()
    while stack:
        cur, path = stack.pop()
        for nxt, spec in by_key.items():
            if not feeds(by_key[cur], spec):
                continue
            if nxt == key:
                return [*path, key]
            if nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, [*path, nxt]))
    return None


def problem(path: str, code: str, text: str) -> dict[str, str]:
    return {"source": "body", "path": path, "code": code, "problem": text}


def problems(
    config: Mapping[str, Any],
    *,
    known_event_types: Iterable[str],
    known_boards: Iterable[str],
    level_count: int | None,
    known_campaigns: Iterable[str],
    known_badges: Iterable[str],
) -> list[dict[str, str]]:
    """Every problem of a definition at once, each with a path, a stable code and words.
    ``level_count`` is the number of levels of the tenant's ladder (None: no ladder)."""
    out: list[dict[str, str]] = []
    events = set(known_event_types) | DOMAIN_EVENT_TYPES
    boards, campaigns, badges = set(known_boards), set(known_campaigns), set(known_badges)
    criteria = config.get("criteria") or []
    if not criteria:
        out.append(problem("criteria", "CRITERIA_MISSING", "a badge needs at least one criterion"))
    for i, c in enumerate(criteria):
        p = f"criteria[{i}]"
        kind = c.get("kind")
        for field in ("count", "value", "days", "level", "amount", "top"):
            v = c.get(field)
            if v is None:
                continue
            lo = 0 if field == "level" else 1
            if not isinstance(v, int) or isinstance(v, bool) or v < lo or v > MAX_TARGET:
                out.append(
                    problem(
                        f"{p}.{field}",
                        "COUNT_INVALID",
                        f"{field} must be a whole number from {lo} to {MAX_TARGET}",
                    )
                )
        if kind in ("eventCount", "valueSum", "firstTime"):
            et = c.get("eventType")
            if not et:
                out.append(problem(f"{p}.eventType", "EVENT_TYPE_MISSING", "name an event type"))
            elif et not in events:
                out.append(
                    problem(
                        f"{p}.eventType",
                        "EVENT_TYPE_UNKNOWN",
                        f"no event type {et!r}: use a domain event or a type that has an "
                        "event rule",
                    )
                )
        if kind == "checkinStreak" and c.get("campaign") and c["campaign"] not in campaigns:
            out.append(problem(f"{p}.campaign", "CAMPAIGN_UNKNOWN", "no such check-in campaign"))
        if kind == "levelReached":
            lv = c.get("level")
            if level_count is None:
                out.append(problem(f"{p}.level", "LEVEL_UNKNOWN", "no level ladder configured"))
            elif isinstance(lv, int) and not 0 <= lv < level_count:
                out.append(
                    problem(
                        f"{p}.level",
                        "LEVEL_UNKNOWN",
                        f"the ladder has levels 0..{level_count - 1}",
                    )
                )
        if kind == "totalEarned" and c.get("currency") not in CURRENCIES:
            out.append(problem(f"{p}.currency", "CURRENCY_UNKNOWN", "points or growth"))
        if kind == "boardRank" and c.get("board") not in boards:
            out.append(
                problem(f"{p}.board", "BOARD_UNKNOWN", "no red/black board on this leaderboard")
            )
        if kind == "badgeEarned" and c.get("badge") not in badges:
            out.append(problem(f"{p}.badge", "BADGE_UNKNOWN", "no such badge"))
        if kind == "challengeFinished" and c.get("outcome", "won") not in CHALLENGE_OUTCOMES:
            out.append(problem(f"{p}.outcome", "OUTCOME_UNKNOWN", "won or any"))
    window = config.get("window")
    if window:
        s, e = window.get("startsAt"), window.get("endsAt")
        ds, de = _parse(s), _parse(e)
        for name, raw, d in (("startsAt", s, ds), ("endsAt", e, de)):
            if raw is None:
                out.append(problem(f"window.{name}", "WINDOW_INCOMPLETE", f"give {name}"))
            elif d is None:
                out.append(problem(f"window.{name}", "TIME_INVALID", "not an ISO 8601 time"))
            elif d.tzinfo is None:
                out.append(
                    problem(
                        f"window.{name}",
                        "OFFSET_MISSING",
                        "give times with an offset, e.g. +08:00",
                    )
                )
        if ds and de and ds.tzinfo and de.tzinfo and de <= ds:
            out.append(problem("window.endsAt", "WINDOW_EMPTY", "endsAt must follow startsAt"))
    reward = config.get("reward") or {}
    if reward.get("titleUntil") == "periodEnd" and config.get("repeat", "once") == "once":
        out.append(
            problem(
                "reward.titleUntil",
                "TITLE_UNTIL_NEEDS_REPEAT",
                "periodEnd needs a repeatable badge (daily, weekly or monthly)",
            )
        )
    for field, lo, hi in (("points", 0, 10**9), ("growth", 0, 10**9), ("titleDays", 1, 3660)):
        v = reward.get(field)
        if v is not None and (not isinstance(v, int) or not lo <= v <= hi):
            out.append(
                problem(f"reward.{field}", "COUNT_INVALID", f"{field} must be from {lo} to {hi}")
            )
    return out


def _parse(raw: Any) -> datetime | None:
    if raw is None:
        return None
    try:
        return datetime.fromisoformat(str(raw))
    except ValueError:
        return None
