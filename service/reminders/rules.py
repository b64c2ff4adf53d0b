"""Pure reminder rules: kinds and their variables, WeChat template field limits, quiet hours,
occasion keys, and what each WeChat error code means for a reminder and its grant."""

from __future__ import annotations

import re
import string
from datetime import date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

# Each kind, the variables its templates may use, and what triggers it.
KINDS: dict[str, tuple[str, ...]] = {
    # A live streak not yet extended today, at the tenant's chosen local time.
    "checkin.streak_at_risk": ("campaign", "streak", "deadline"),
    # Points that expire within the tenant's N days.
    "points.expiring": ("points", "expiresOn"),
    # The `prize.shipped` event.
    "prize.shipped": ("prize", "carrier", "trackingNo"),
    # The `pk.settled` event (team PK), one per member in it.
    "pk.result": ("pk", "result"),
}

# WeChat subscription-message value types (the key's letters, e.g. thing1 -> thing) and the
# most characters each takes; WeChat refuses a longer value with 47003.
FIELD_LIMITS: dict[str, int] = {
    "thing": 20,
    "name": 10,
    "phrase": 5,
    "character_string": 32,
    "number": 32,
    "letter": 32,
    "symbol": 5,
    "amount": 11,
    "car_number": 8,
    "phone_number": 17,
    "date": 32,
    "time": 32,
}
_ELLIPSIS = {"thing", "name"}  # free text: cut with "…"; codes and numbers are cut bare
FIELD_KEY_RE = re.compile(r"^([a-z_]+?)(\d+)$")


def field_type(key: str) -> str | None:
    m = FIELD_KEY_RE.match(key)
    if not m or m.group(1) not in FIELD_LIMITS:
        return None
    return m.group(1)


def fit_value(key: str, value: str) -> str:
    """A value cut to its field's limit in characters (code points, never bytes, so a
    Chinese text is never split inside a character), with an ellipsis for free text."""
    kind = field_type(key)
    limit = FIELD_LIMITS.get(kind or "", 20)
    text = " ".join(str(value).split())  # WeChat refuses line breaks in values
    if len(text) <= limit:
        return text
    if kind in _ELLIPSIS:
        return text[: limit - 1] + "…"
    return text[:limit]


def placeholders(template: str) -> list[str]:
    return [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]


def template_problems(kind: str, fields: dict[str, str]) -> list[tuple[str, str, str]]:
    """(field key, code, problem) for every unusable field of a kind's template."""
    problems = []
    allowed = set(KINDS[kind])
    for key, template in fields.items():
        if field_type(key) is None:
            problems.append((key, "FIELD_TYPE_UNKNOWN", "not a WeChat field key like thing1"))
            continue
        try:
            names = placeholders(template)
        except ValueError:
            problems.append((key, "TEMPLATE_MALFORMED", "unbalanced braces"))
            continue
        unknown = sorted(set(names) - allowed)
        if unknown:
            problems.append(
                (key, "VARIABLE_UNKNOWN", f"{unknown} not among {sorted(allowed)} of {kind}")
            )
    return problems


class _Blank(dict):
    def __missing__(self, key: str) -> str:
        return ""


def render(fields: dict[str, str], values: dict[str, object]) -> dict[str, dict[str, str]]:
    """WeChat's ``data`` object: each field's template filled in and fitted to its limit."""
    filled = _Blank({k: "" if v is None else str(v) for k, v in values.items()})
    return {
        key: {"value": fit_value(key, template.format_map(filled))}
        for key, template in fields.items()
    }


def parse_hhmm(text: str) -> time:
    hh, mm = text.split(":")
    return time(int(hh), int(mm))


def release_at(now: datetime, tz: ZoneInfo, start: time | None, end: time | None) -> datetime:
    """``now`` when outside quiet hours, else the instant they end (local, may wrap midnight)."""
    if start is None or end is None or start == end:
        return now
    local = now.astimezone(tz)
    t = local.time()
    quiet = (start <= t < end) if start < end else (t >= start or t < end)
    if not quiet:
        return now
    end_day = local.date() if t < end else local.date() + timedelta(days=1)
    return datetime.combine(end_day, end, tzinfo=tz)


def local_day(now: datetime, tz: ZoneInfo) -> date:
    return now.astimezone(tz).date()


def end_of_day(day: date, tz: ZoneInfo) -> datetime:
    """The first instant of the next local day."""
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)


def past_local_time(now: datetime, tz: ZoneInfo, at: time) -> bool:
    return now.astimezone(tz).time() >= at


Outcome = Literal["sent", "refused", "token", "retry", "failed"]

# WeChat's subscribe/send error codes and what they mean here.
#  - refused: the member's consent is gone (43101: refused or used up); the grant is spent and
#    the reminder is not retried, ever.
#  - token: our access token is invalid or expired; refresh it and retry at once.
#  - retry: WeChat's side is busy or rate-limited; retry later with the same grant.
#  - failed: our configuration is wrong (template, page, openid, values); not retried.
WECHAT_OUTCOMES: dict[int, Outcome] = {
    0: "sent",
    43101: "refused",
    40001: "token",
    40014: "token",
    42001: "token",
    -1: "retry",
    45009: "retry",
    45047: "retry",
    40003: "failed",
    40037: "failed",
    41030: "failed",
    47003: "failed",
}


def classify(errcode: int) -> Outcome:
    return WECHAT_OUTCOMES.get(errcode, "failed")


RETRY_BASE_S = 60.0
MAX_ATTEMPTS = 6


def retry_delay(attempts: int, jitter: float) -> timedelta:
    """Exponential wait (1, 2, 4 ... minutes) with ``jitter`` in [0, 1) spreading half of it."""
    ceiling = RETRY_BASE_S * 2 ** (attempts - 1)
    return timedelta(seconds=ceiling / 2 + jitter * ceiling / 2)
