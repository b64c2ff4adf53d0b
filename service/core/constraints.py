"""Shared constraint types and the one strict decoder for every request body, path and query.

Every feature's schemas build on the aliases here (``AwareDatetime``, ``ExternalId``, ``Key``,
``PageSize``, ...), so a time, a member id or a page size means the same thing on every route
and the OpenAPI file shows the same constraints.

Bodies are decoded strictly (``strict_request``): no ``"10"`` -> 10, no ``0`` -> 1970-01-01, no
offset-less times. When a body does not fit its type, ``problems_of`` walks the type (via
``msgspec.inspect``) over the raw JSON and reports every problem at once, each in the agreed
shape ``{"source", "path", "code", "problem"}``. The answer is 422 ``VALIDATION_FAILED``;
an unparseable body is 400 ``MALFORMED_REQUEST``; a body that is not JSON is 415.
"""

from __future__ import annotations

import contextlib
import copy
import json
import re
import types
import typing
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal, TypeVar

import msgspec
from litestar.params import Parameter
from msgspec import Meta
from msgspec import inspect as mi

# ------------------------------------------------------------------ the shared aliases


def constrained(
    base: Any, description: str = "", examples: list | None = None, **limits: Any
) -> Any:
    """One constraint type for bodies and parameters alike: msgspec reads the ``Meta`` (body
    fields), Litestar the ``Parameter`` (path, query; it ignores ``Meta`` there), and both put
    the same limits in the OpenAPI file. The strict decoder checks both kinds of use."""
    extra: dict[str, Any] = {"description": description} if description else {}
    # Limits are Meta's keyword arguments, passed through by name (mypy cannot see which).
    meta = Meta(**limits, **extra, **({"examples": examples} if examples else {}))  # type: ignore[call-overload]
    limits.pop("extra", None)  # Meta's own checks (EXTRA_CHECKS); Parameter has no such field
    return Annotated[base, meta, Parameter(**limits, **extra)]


# The representable range of every time and date an input may carry (bodies, query parameters,
# period and month ids): the instant (in UTC) or the date must lie in the years 2000-2100. Out
# of it is 422 VALIDATION_FAILED with an OUT_OF_RANGE problem on the field. Inside it, a time
# moved by any offset or time zone (+-1 day) and any period arithmetic stays representable.
YEAR_MIN, YEAR_MAX = 2000, 2100
TIME_MIN = datetime(YEAR_MIN, 1, 1, tzinfo=UTC)  # inclusive
TIME_MAX = datetime(YEAR_MAX + 1, 1, 1, tzinfo=UTC)  # exclusive
DATE_MIN, DATE_MAX = date(YEAR_MIN, 1, 1), date(YEAR_MAX, 12, 31)  # inclusive
TIME_RANGE_TEXT = f"must be in the years {YEAR_MIN}-{YEAR_MAX} (UTC)"  # "a time ..."


def time_in_range(t: datetime) -> bool:
    """Whether an instant lies in the representable range (a naive time is read as UTC)."""
    # Aware comparison never converts (converting 0001-01-01T00:00+14:00 to UTC overflows).
    return TIME_MIN <= (t if t.tzinfo is not None else t.replace(tzinfo=UTC)) < TIME_MAX


def date_in_range(d: date) -> bool:
    return DATE_MIN <= d <= DATE_MAX


def _year_prefix_problem(value: str) -> str | None:
    """A period or month id (``2026-11``, ``2026-W48``, ``2026-11-23``) outside the range."""
    m = re.match(r"^(\d{4})-", value)
    if m and not YEAR_MIN <= int(m[1]) <= YEAR_MAX:
        return f"the year must be {YEAR_MIN}-{YEAR_MAX}"
    return None


_PERIOD_SHAPES = (
    re.compile(r"^(\d{4})-(\d{2})-(\d{2})$"),  # a day
    re.compile(r"^(\d{4})-W(\d{2})$"),  # an ISO week
    re.compile(r"^(\d{4})-(\d{2})$"),  # a month
)


def _period_id_problem(value: str) -> str | tuple[str, str] | None:
    """A board period id: the year in range (OUT_OF_RANGE), and a day, ISO week or month that
    exists on the calendar (``2026-02-30``, ``2000-W00``, ``2026-W54``, ``2100-13`` are
    FORMAT_INVALID). Other words (``current``, ``all``, ``window``) are the board's to judge."""
    year = _year_prefix_problem(value)
    if year is not None:
        return year
    day, week, month = (shape.match(value) for shape in _PERIOD_SHAPES)
    try:
        if day:
            date(int(day[1]), int(day[2]), int(day[3]))
        elif week:
            date.fromisocalendar(int(week[1]), int(week[2]), 1)
        elif month:
            date(int(month[1]), int(month[2]), 1)
    except ValueError:
        return "FORMAT_INVALID", f"{value!r} is not a day, ISO week or month of the calendar"
    return None


# Extra checks a constraint type may name in ``Meta(extra={"check": name})``: run by the strict
# decoder on bodies and parameters alike; each returns the problem text (with the check's
# code), a (code, text) pair, or None.
EXTRA_CHECKS: dict[str, tuple[str, Callable[[Any], str | tuple[str, str] | None]]] = {
    "yearPrefix": ("OUT_OF_RANGE", _year_prefix_problem),
    "periodId": ("OUT_OF_RANGE", _period_id_problem),
}
YEAR_BOUNDED = {"check": "yearPrefix"}
PERIOD_ID = {"check": "periodId"}

# A calendar date that is not an event or campaign time (a date of birth): 1900-01-01 up to
# today. The shape check bounds it by BIRTH_DATE_MIN and the years' end (no clock here); the
# feature checks "not after today" against ctx.clock (``birth_date_problem``).
BIRTH_DATE_MIN = date(1900, 1, 1)
BIRTH_DATE_TEXT = "a date of birth must be from 1900-01-01 to today"
CALENDAR_DATE = {"check": "calendarDate"}
BirthDate = Annotated[
    date,
    Meta(
        extra=CALENDAR_DATE,
        description="A calendar date YYYY-MM-DD from 1900-01-01 to today (not in the future).",
        examples=["1990-05-17"],
    ),
]


def birth_date_problem(d: date | None, today: date) -> str | None:
    """The problem text of a date of birth given ``today`` (the feature's clock), or None."""
    if d is not None and not BIRTH_DATE_MIN <= d <= today:
        return BIRTH_DATE_TEXT
    return None


AwareDatetime = Annotated[
    datetime,
    Meta(
        tz=True,
        description="RFC 3339 date-time with an offset (`Z` or `+08:00`); an offset is "
        f"required. The instant must be in the years {YEAR_MIN}-{YEAR_MAX} (UTC).",
        examples=["2026-11-11T00:00:00+08:00"],
    ),
]
ExternalId = constrained(
    str,
    "The brand's member id: 1-128 of A-Z a-z 0-9 _ . : @ -",
    min_length=1,
    max_length=128,
    pattern=r"^[A-Za-z0-9_.:@\-]+$",
)
KEY_PATTERN = r"^[a-z0-9][a-z0-9_\-]*$"
Key = constrained(
    str,
    "A config key: 1-64 of a-z 0-9 _ -, starting with a letter or digit.",
    min_length=1,
    max_length=64,
    pattern=KEY_PATTERN,
)
# Page sizes: a client page (/v1) holds 1-100 items, an operator list (/admin/v1) 1-1,000.
# Too large or too small is 422 VALIDATION_FAILED with an OUT_OF_RANGE problem on `limit`.
CLIENT_PAGE_MAX = 100
OPERATOR_PAGE_MAX = 1000
PageSize = Annotated[
    int, Parameter(ge=1, le=CLIENT_PAGE_MAX, description=f"Page size, 1-{CLIENT_PAGE_MAX}.")
]
OperatorPageSize = Annotated[
    int,
    Parameter(ge=1, le=OPERATOR_PAGE_MAX, description=f"Page size, 1-{OPERATOR_PAGE_MAX}."),
]
CURSOR_PATTERN = r"^[A-Za-z0-9_\-]{1,64}$"
Cursor = Annotated[
    str | None,
    # Every malformation of a cursor (pattern, length, characters) is one code: CURSOR_INVALID.
    Meta(extra={"code": "CURSOR_INVALID"}),
    Parameter(
        max_length=64,
        pattern=CURSOR_PATTERN,
        description="`nextCursor` of the previous page, as given. A cursor this list did not "
        "issue is 422 VALIDATION_FAILED with a CURSOR_INVALID problem.",
    ),
]
EVENT_BATCH_MAX = 1000

# URLs an operator or member gives (webhook targets, icons, images, avatars): one constraint.
# Only http(s) (or, for images, a relative path), no whitespace or control characters (a CR/LF
# would split a header or a log line), no credentials, a port of 1-65535, a bounded length.
# A URL that breaks it is 422 VALIDATION_FAILED with a URL_INVALID problem at its path.
_URL_CHAR = r"[^\s\x00-\x1f\x7f-\x9f]"
_URL_HOST = r"(?:\[[0-9A-Fa-f:.]+\]|[^\s\x00-\x1f\x7f-\x9f/?#@\[\]:\\]+)"
_URL_PORT = (
    r"(?::(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}"
    r"|[1-9][0-9]{0,3}))?"
)
_URL_TAIL = rf"(?:[/?#]{_URL_CHAR}*)?"
# A relative path: no scheme (`javascript:`, `data:`), not protocol-relative (`//host`).
_URL_RELATIVE = r"(?![A-Za-z][A-Za-z0-9+.\-]*:)(?![/\\]{2})[^\s\x00-\x1f\x7f-\x9f\\]+"
_PATTERN_PROBLEMS: dict[str, tuple[str, str]] = {}
_URL_PATTERNS: set[str] = set()

# Free text an operator writes for people (a reason, a note): any language, no control
# characters (tabs and line breaks included), not only spaces.
FREE_TEXT_PATTERN = r"^(?=.*\S)[^\x00-\x1f\x7f-\x9f]+$"
_PATTERN_PROBLEMS[FREE_TEXT_PATTERN] = (
    "FORMAT_INVALID",
    "free text: any language, no control characters, not only spaces",
)


def free_text(max_length: int, description: str, examples: list | None = None) -> Any:
    """Free text (``活动补偿``, ``goodwill``) of 1-``max_length`` characters."""
    return constrained(
        str,
        description,
        examples,
        min_length=1,
        max_length=max_length,
        pattern=FREE_TEXT_PATTERN,
    )


Reason = free_text(
    64,
    "Why, in the operator's words: 1-64 characters of any language, no control characters.",
    ["活动补偿"],
)
LongReason = free_text(
    500,
    "Why, in the operator's words: 1-500 characters of any language, no control characters.",
    ["member request"],
)
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")


def normalize_url(value: str) -> str:
    """RFC 3986 6.2.2.1: the scheme in lower case (`HTTPS://x` -> `https://x`)."""
    m = _SCHEME.match(value)
    return value if m is None or m[1].islower() else m[1].lower() + value[len(m[1]) :]


def normalize_urls(type_: Any, value: Any) -> Any:
    """``value`` (raw JSON data of ``type_``) with every URL field (the ``web_url``
    constraint) normalized; containers are changed in place. Other values are left as they
    are (a malformed one is the decoder's to report)."""
    return _normalize(mi.type_info(type_), value)


def _normalize(t: Any, v: Any) -> Any:
    if isinstance(t, mi.Metadata):
        return _normalize(t.type, v)
    if isinstance(t, mi.UnionType):
        return _normalize(_pick(t, v), v)
    if isinstance(t, mi.StrType):
        return normalize_url(v) if t.pattern in _URL_PATTERNS and isinstance(v, str) else v
    if isinstance(t, mi.StructType) and isinstance(v, dict):
        for f in t.fields:
            if f.encode_name in v:
                v[f.encode_name] = _normalize(f.type, v[f.encode_name])
    elif isinstance(t, mi.ListType | mi.SetType | mi.FrozenSetType | mi.VarTupleType):
        if isinstance(v, list):
            v[:] = [_normalize(t.item_type, item) for item in v]
    elif isinstance(t, mi.DictType) and isinstance(v, dict):
        for k in list(v):
            v[k] = _normalize(t.value_type, v[k])
    return v


def web_url(
    max_length: int,
    description: str,
    *,
    https_only: bool = False,
    relative: bool = False,
    empty: bool = False,
) -> Any:
    """The shared URL constraint (see above) as a string type with ``max_length``; ``relative``
    also allows a relative path, ``empty`` the empty string (no URL)."""
    # The scheme is case-insensitive (RFC 3986 3.1): `HTTPS://` is taken and stored lower-case.
    scheme = "[Hh][Tt][Tt][Pp][Ss]" if https_only else "[Hh][Tt][Tt][Pp][Ss]?"
    forms = [f"{scheme}://{_URL_HOST}{_URL_PORT}{_URL_TAIL}"]
    if relative:
        forms.append(_URL_RELATIVE)
    pattern = "^(?:" + "|".join(forms) + ")" + ("?" if empty else "") + "$"
    what = "an https URL" if https_only else "an http(s) URL"
    if relative:
        what += " or a relative path"
    _URL_PATTERNS.add(pattern)
    _PATTERN_PROBLEMS[pattern] = (
        "URL_INVALID",
        f"must be {what}: no spaces or control characters, no credentials, port 1-65535",
    )
    return constrained(str, description, max_length=max_length, pattern=pattern)


HttpUrl = web_url(2048, "An http(s) URL (port 1-65535, no spaces, no credentials).")
ImageUrl = web_url(
    512, "An image: an http(s) URL or a relative path; empty for none.", relative=True, empty=True
)
AvatarUrl = web_url(
    512, "An https URL of the member's avatar; empty for none.", https_only=True, empty=True
)

# Codes a problem item may carry (besides feature codes such as TIMEZONE_UNKNOWN).
PROBLEM_CODES: dict[str, str] = {
    "REQUIRED": "A required field is missing.",
    "UNKNOWN_FIELD": "The field is not part of this body.",
    "WRONG_TYPE": "The value has the wrong JSON type (e.g. a string for a number).",
    "OFFSET_MISSING": "A time has no offset; give `Z` or `+08:00`.",
    "FORMAT_INVALID": "The text does not have the required format (pattern, date, time).",
    "OUT_OF_RANGE": "The number is below the minimum or above the maximum, or a time or date "
    f"is outside the years {YEAR_MIN}-{YEAR_MAX}.",
    "LENGTH_OUT_OF_RANGE": "The text or list is too short or too long.",
    "NOT_ALLOWED": "The value is not one of the allowed values.",
    "CURSOR_INVALID": "The cursor was not issued by this list.",
    "CHARACTER_NOT_ALLOWED": "The text holds a NUL character or a lone UTF-16 surrogate.",
    "JSON_INVALID": "The body is not parseable JSON, or nested deeper than 32 levels "
    "(with MALFORMED_REQUEST).",
    "URL_INVALID": "Not an allowed URL: http(s) only (the scheme in any case, stored in lower "
    "case), no spaces or control characters, no credentials, port 1-65535.",
    "INVALID": "The value breaks a rule of this configuration; see problem.",
}

Source = Literal["body", "query", "path", "header"]


# Deepest nesting of arrays and objects a body may have (the deepest real body has 5 levels).
MAX_JSON_DEPTH = 32
# Text no field may hold: NUL (PostgreSQL cannot store it) and lone UTF-16 surrogates (not
# Unicode characters; they cannot be encoded as UTF-8).
_BAD_TEXT = re.compile("[\x00\ud800-\udfff]")


def bad_text(value: str) -> str | None:
    """Why ``value`` cannot be text of any field (a problem sentence), or None."""
    m = _BAD_TEXT.search(value)
    if m is None:
        return None
    return "holds a NUL character" if m[0] == "\x00" else "holds a lone UTF-16 surrogate"


def scan_json(raw: Any, source: Source = "body") -> tuple[int, list[dict[str, str]]]:
    """One iterative pass over decoded JSON: its nesting depth (stops counting past
    MAX_JSON_DEPTH) and a CHARACTER_NOT_ALLOWED problem for every string or key holding
    bad text, at its path."""
    out: list[dict[str, str]] = []
    deepest = 0
    stack: list[tuple[Any, str, int]] = [(raw, "", 0)]
    while stack:
        v, path, depth = stack.pop()
        if isinstance(v, str):
            if (why := bad_text(v)) is not None:
                out.append(problem(source, path, "CHARACTER_NOT_ALLOWED", why))
            continue
        if not isinstance(v, dict | list):
            continue
        depth += 1
        deepest = max(deepest, depth)
        if depth > MAX_JSON_DEPTH:
            continue
        if isinstance(v, dict):
            for k, item in v.items():
                sub = _join(path, str(k))
                if (why := bad_text(k)) is not None:
                    out.append(problem(source, sub, "CHARACTER_NOT_ALLOWED", f"the key {why}"))
                stack.append((item, sub, depth))
        else:
            stack.extend((item, _join(path, i), depth) for i, item in enumerate(v))
    out.sort(key=lambda p: p["path"])
    return deepest, out


def _too_deep() -> Exception:
    from service.core.errors import DomainError

    return DomainError(
        "MALFORMED_REQUEST",
        details={
            "problems": [
                problem("body", "", "JSON_INVALID", f"nested deeper than {MAX_JSON_DEPTH} levels")
            ]
        },
    )


def problem(source: str, path: str, code: str, text: str) -> dict[str, str]:
    """One item of ``details.problems``: the agreed shape everywhere."""
    return {"source": source, "path": path, "code": code, "problem": text}


def normalize_problems(items: list[Any], default_source: str = "body") -> list[dict[str, str]]:
    """Bring any problem item to ``{source, path, code, problem}`` (a safety net)."""
    out = []
    for item in items:
        if not isinstance(item, dict):
            out.append(problem(default_source, "", "INVALID", str(item)))
            continue
        out.append(
            problem(
                str(item.get("source") or default_source),
                str(item.get("path") or item.get("field") or ""),
                str(item.get("code") or "INVALID"),
                str(item.get("problem") or item.get("message") or ""),
            )
        )
    return out


# ------------------------------------------------------------------ the walker

_JSON_NAMES = {
    bool: "boolean",
    int: "integer",
    float: "number",
    str: "string",
    list: "array",
    dict: "object",
    type(None): "null",
}


def _json_name(value: Any) -> str:
    return _JSON_NAMES.get(type(value), type(value).__name__)


def _join(path: str, part: str | int) -> str:
    if isinstance(part, int):
        return f"{path}[{part}]"
    return f"{path}.{part}" if path else part


def _length(t: Any, n: int, path: str, source: str, out: list) -> None:
    lo, hi = getattr(t, "min_length", None), getattr(t, "max_length", None)
    if lo is not None and n < lo:
        out.append(problem(source, path, "LENGTH_OUT_OF_RANGE", f"at least {lo} needed, got {n}"))
    elif hi is not None and n > hi:
        out.append(problem(source, path, "LENGTH_OUT_OF_RANGE", f"at most {hi} allowed, got {n}"))


def _number(t: Any, v: float, path: str, source: str, out: list) -> None:
    if t.ge is not None and v < t.ge:
        out.append(problem(source, path, "OUT_OF_RANGE", f"must be >= {t.ge}"))
    elif t.le is not None and v > t.le:
        out.append(problem(source, path, "OUT_OF_RANGE", f"must be <= {t.le}"))
    elif t.gt is not None and v <= t.gt:
        out.append(problem(source, path, "OUT_OF_RANGE", f"must be > {t.gt}"))
    elif t.lt is not None and v >= t.lt:
        out.append(problem(source, path, "OUT_OF_RANGE", f"must be < {t.lt}"))
    elif t.multiple_of is not None and v % t.multiple_of:
        out.append(problem(source, path, "OUT_OF_RANGE", f"must be a multiple of {t.multiple_of}"))


def _matches(t: mi.Type, v: Any) -> bool:
    """Whether ``v`` is of the JSON kind ``t`` expects (used to pick a union member)."""
    if isinstance(t, mi.NoneType):
        return v is None
    if isinstance(t, mi.BoolType):
        return isinstance(v, bool)
    if isinstance(t, mi.IntType):
        return isinstance(v, int) and not isinstance(v, bool)
    if isinstance(t, mi.FloatType):
        return isinstance(v, int | float) and not isinstance(v, bool)
    if isinstance(t, mi.StrType | mi.DateTimeType | mi.DateType | mi.TimeType | mi.LiteralType):
        return isinstance(v, str) if not isinstance(t, mi.LiteralType) else True
    if isinstance(t, mi.ListType | mi.SetType | mi.FrozenSetType | mi.VarTupleType):
        return isinstance(v, list)
    if isinstance(t, mi.StructType | mi.DictType | mi.TypedDictType | mi.DataclassType):
        return isinstance(v, dict)
    return True


def _walk(t: mi.Type, v: Any, path: str, source: str, out: list) -> None:
    if isinstance(t, mi.AnyType):
        return
    if isinstance(t, mi.Metadata):
        before = len(out)
        if (t.extra or {}).get("check") == "calendarDate" and isinstance(t.type, mi.DateType):
            _walk_calendar_date(v, path, source, out)
            return
        _walk(t.type, v, path, source, out)
        check = EXTRA_CHECKS.get((t.extra or {}).get("check", ""))
        if check is not None and len(out) == before and isinstance(v, str):
            got = check[1](v)
            if got is not None:
                code, text = got if isinstance(got, tuple) else (check[0], got)
                out.append(problem(source, path, code, text))
        return
    if isinstance(t, mi.UnionType):
        candidates = [m for m in t.types if _matches(m, v)]
        structs = [m for m in candidates if isinstance(m, mi.StructType) and m.tag_field]
        if structs and isinstance(v, dict):
            tag_field = structs[0].tag_field
            tags = {m.tag: m for m in structs}
            tag = v.get(tag_field)
            if tag not in tags:
                allowed = ", ".join(repr(x) for x in tags)
                out.append(
                    problem(
                        source, _join(path, tag_field or ""), "NOT_ALLOWED", f"one of {allowed}"
                    )
                )
                return
            _walk(tags[tag], v, path, source, out)
            return
        if not candidates:
            names = " | ".join(_type_name(m) for m in t.types)
            out.append(
                problem(source, path, "WRONG_TYPE", f"expected {names}, got {_json_name(v)}")
            )
            return
        # The first member of the right JSON kind decides (None is only None).
        _walk(candidates[0], v, path, source, out)
        return
    if not _matches(t, v):
        out.append(
            problem(source, path, "WRONG_TYPE", f"expected {_type_name(t)}, got {_json_name(v)}")
        )
        return
    if isinstance(t, mi.StructType):
        _walk_struct(t, v, path, source, out)
    elif isinstance(t, mi.ListType | mi.SetType | mi.FrozenSetType | mi.VarTupleType):
        _length(t, len(v), path, source, out)
        for i, item in enumerate(v):
            _walk(t.item_type, item, _join(path, i), source, out)
    elif isinstance(t, mi.DictType):
        _length(t, len(v), path, source, out)
        for k, item in v.items():
            _walk(t.key_type, k, _join(path, str(k)), source, out)
            _walk(t.value_type, item, _join(path, str(k)), source, out)
    elif isinstance(t, mi.IntType | mi.FloatType):
        _number(t, v, path, source, out)
    elif isinstance(t, mi.StrType):
        _length(t, len(v), path, source, out)
        if t.pattern is not None and not re.search(t.pattern, v):
            code, text = _PATTERN_PROBLEMS.get(t.pattern, ("FORMAT_INVALID", ""))
            out.append(problem(source, path, code, text or f"must match {t.pattern}"))
    elif isinstance(t, mi.LiteralType):
        if v not in t.values:
            allowed = ", ".join(repr(x) for x in t.values)
            out.append(problem(source, path, "NOT_ALLOWED", f"one of {allowed}"))
    elif isinstance(t, mi.DateTimeType):
        _walk_datetime(t, v, path, source, out)
    elif isinstance(t, mi.DateType):
        try:
            d = msgspec.convert(v, date)
        except msgspec.ValidationError:
            out.append(problem(source, path, "FORMAT_INVALID", "expected a date YYYY-MM-DD"))
        else:
            if not date_in_range(d):
                out.append(problem(source, path, "OUT_OF_RANGE", f"a date {TIME_RANGE_TEXT}"))
    else:
        _fallback(t, v, path, source, out)


def _walk_calendar_date(v: Any, path: str, source: str, out: list) -> None:
    """A calendar date that is not an event time (``BirthDate``): 1900-01-01 to 2100-12-31
    here; the feature bounds it by today."""
    if not isinstance(v, str):
        out.append(problem(source, path, "WRONG_TYPE", f"expected a date, got {_json_name(v)}"))
        return
    try:
        d = msgspec.convert(v, date)
    except msgspec.ValidationError:
        out.append(problem(source, path, "FORMAT_INVALID", "expected a date YYYY-MM-DD"))
        return
    if not BIRTH_DATE_MIN <= d <= DATE_MAX:
        out.append(problem(source, path, "OUT_OF_RANGE", BIRTH_DATE_TEXT))


def _walk_datetime(t: mi.DateTimeType, v: str, path: str, source: str, out: list) -> None:
    try:
        parsed = msgspec.convert(v, datetime)
    except msgspec.ValidationError:
        out.append(
            problem(source, path, "FORMAT_INVALID", "expected an RFC 3339 date-time with offset")
        )
        return
    if t.tz and parsed.tzinfo is None:
        out.append(
            problem(source, path, "OFFSET_MISSING", "give the time with an offset (Z or +08:00)")
        )
    elif not time_in_range(parsed):
        out.append(problem(source, path, "OUT_OF_RANGE", f"a time {TIME_RANGE_TEXT}"))


def _walk_struct(t: mi.StructType, v: dict, path: str, source: str, out: list) -> None:
    by_name = {f.encode_name: f for f in t.fields}
    for f in t.fields:
        if f.encode_name in v:
            _walk(f.type, v[f.encode_name], _join(path, f.encode_name), source, out)
        elif f.required:
            out.append(problem(source, _join(path, f.encode_name), "REQUIRED", "is required"))
    if t.forbid_unknown_fields:
        for name in v:
            if name not in by_name and name != t.tag_field:
                out.append(problem(source, _join(path, name), "UNKNOWN_FIELD", "is not a field"))


def _fallback(t: Any, v: Any, path: str, source: str, out: list) -> None:
    cls = getattr(t, "cls", None)
    if cls is None:
        return
    try:
        msgspec.convert(v, cls, strict=True)
    except msgspec.ValidationError as exc:
        out.append(problem(source, path, "WRONG_TYPE", str(exc)))


def _type_name(t: mi.Type) -> str:
    names = {
        mi.IntType: "integer",
        mi.FloatType: "number",
        mi.StrType: "string",
        mi.BoolType: "boolean",
        mi.NoneType: "null",
        mi.DateTimeType: "date-time",
        mi.DateType: "date",
        mi.ListType: "array",
        mi.StructType: "object",
        mi.DictType: "object",
        mi.LiteralType: "string",
    }
    return names.get(type(t), type(t).__name__)


_RANGED: dict[Any, bool] = {}


def _has_ranged(t: Any, seen: set[int]) -> bool:
    if id(t) in seen:
        return False
    seen.add(id(t))
    if isinstance(t, mi.DateTimeType | mi.DateType):
        return True
    if isinstance(t, mi.Metadata):
        return bool((t.extra or {}).get("check")) or _has_ranged(t.type, seen)
    if isinstance(t, mi.UnionType):
        return any(_has_ranged(m, seen) for m in t.types)
    if isinstance(t, mi.StructType | mi.DataclassType | mi.TypedDictType):
        return any(_has_ranged(f.type, seen) for f in t.fields)
    if isinstance(t, mi.ListType | mi.SetType | mi.FrozenSetType | mi.VarTupleType):
        return _has_ranged(t.item_type, seen)
    if isinstance(t, mi.DictType):
        return _has_ranged(t.key_type, seen) or _has_ranged(t.value_type, seen)
    return False


def range_problems(type_: Any, value: Any, source: Source = "body", path: str = "") -> list:
    """Problems msgspec cannot see in a value that fits ``type_``: times and dates outside the
    representable range, and the ``EXTRA_CHECKS`` a type names. Empty (and cheap) for types
    without either."""
    try:
        ranged = _RANGED.get(type_)
    except TypeError:
        ranged = None
    if ranged is None:
        ranged = _has_ranged(mi.type_info(type_), set())
        with contextlib.suppress(TypeError):
            _RANGED[type_] = ranged
    return problems_of(type_, value, source, path) if ranged else []


def problems_of(type_: Any, value: Any, source: Source = "body", path: str = "") -> list[dict]:
    """Every problem of ``value`` (raw JSON data) against ``type_``, in the agreed shape."""
    out: list[dict] = []
    _walk(mi.type_info(type_), value, path, source, out)
    return out


def convert_strict(type_: Any, value: Any, source: Source = "body") -> Any:
    """Convert raw JSON data strictly (URL fields normalized); raise 422 VALIDATION_FAILED
    with every problem."""
    value = normalize_urls(type_, value)
    try:
        converted = msgspec.convert(value, type_, strict=True)
    except msgspec.ValidationError as exc:
        found = problems_of(type_, value, source) or [
            problem(source, _msgspec_path(str(exc)), "INVALID", str(exc).split(" - ")[0])
        ]
        raise validation_failed(found) from exc
    found = range_problems(type_, value, source)
    if found:
        raise validation_failed(found)
    return converted


def _msgspec_path(message: str) -> str:
    m = re.search(r"at `\$\.?(.*)`$", message)
    return m.group(1) if m else ""


def validation_failed(problems: list[dict]) -> Exception:
    """422 VALIDATION_FAILED listing ``problems`` (shape and rule problems alike)."""
    from service.core.errors import DomainError

    return DomainError("VALIDATION_FAILED", details={"problems": normalize_problems(problems)})


def cursor_invalid(name: str = "cursor") -> Exception:
    return validation_failed([problem("query", name, "CURSOR_INVALID", "not a cursor we issued")])


def out_of_range(name: str, value: int, lo: int, hi: int, source: str = "query") -> Exception:
    return validation_failed(
        [problem(source, name, "OUT_OF_RANGE", f"{value} is not in {lo}-{hi}")]
    )


# ------------------------------------------------------------------ rule checks in the same pass

_CHECKS: dict[Any, Callable[[Any], list[dict]]] = {}


def register_check(type_: Any, check: Callable[[Any], list[dict]]) -> None:
    """A feature's pure rule check of a body type (no I/O), run together with the shape
    check: when some fields are malformed, the rules are still checked on the rest, so one
    answer lists every problem. The service runs the same check again on a valid body."""
    _CHECKS[type_] = check


_IO_CHECKS: dict[Any, Callable[[Any, Any], Awaitable[list[dict]]]] = {}


def register_io_check(type_: Any, check: Callable[[Any, Any], Awaitable[list[dict]]]) -> None:
    """A feature's rule check of a body type that needs I/O (teams that exist, overlapping
    windows), ``await check(request, value)``: run like ``register_check`` on the
    well-formed part of a body that has shape problems, so one answer lists every problem.
    The check authenticates the request itself; a check that fails (a DomainError such as a
    bad key) adds nothing. The service runs the same rules again on a valid body."""
    _IO_CHECKS[type_] = check


def _well_formed(type_: Any, raw: Any, shape: list[dict]) -> tuple[Any, dict] | None:
    """(``raw`` with each malformed field that may be left out left out (its default stands
    in) and each malformed list item taken out, converted; the list items taken out), or
    None when a malformed field is required (the rules cannot be judged)."""
    if not isinstance(raw, dict):
        return None
    info = mi.type_info(type_)
    patched = copy.deepcopy(raw)
    for p in shape:
        if not p["path"] or not _drop(info, patched, _tokens(p["path"])):
            return None
    removed: dict[str, list[int]] = {}
    _compact(patched, "", removed)
    try:
        return msgspec.convert(patched, type_, strict=True), removed
    except Exception:  # whatever the left-out fields break: the rules are not judged
        return None


def _compact(v: Any, path: str, removed: dict[str, list[int]]) -> None:
    """Take the list items ``_drop`` marked gone out of their lists, noting (per list, in the
    compacted paths) which original indices went, so rule problems can name the sent ones."""
    if isinstance(v, dict):
        for k, item in v.items():
            _compact(item, _join(path, str(k)), removed)
    elif isinstance(v, list):
        gone = [i for i, item in enumerate(v) if item is _GONE]
        if gone:
            removed[path] = gone
            v[:] = [item for item in v if item is not _GONE]
        for i, item in enumerate(v):
            _compact(item, _join(path, i), removed)


def _remap(path: str, removed: dict[str, list[int]]) -> str:
    """A problem path of the compacted value -> the path in the body as sent."""
    if not removed:
        return path
    compact = original = ""
    for tok in _tokens(path):
        if isinstance(tok, int):
            sent = tok
            for r in removed.get(compact, []):
                if r <= sent:
                    sent += 1
            compact, original = _join(compact, tok), _join(original, sent)
        else:
            compact, original = _join(compact, tok), _join(original, tok)
    return original


def _outside(found: list[dict], shape: list[dict], removed: dict[str, list[int]]) -> list:
    bad = [p["path"] for p in shape]
    out = []
    for p in found:
        p = {**p, "path": _remap(p["path"], removed)}
        if not any(_within(p["path"], b) for b in bad):
            out.append(p)
    return out


def rule_problems_of(type_: Any, raw: Any, shape: list[dict]) -> list[dict]:
    """Rule problems of the well-formed part of ``raw``: each malformed field that may be left
    out is left out (its default stands in), then the feature's rule check runs. Empty when
    a malformed field is required, so the rules cannot be judged."""
    check = _CHECKS.get(type_)
    if check is None:
        return []
    got = _well_formed(type_, raw, shape)
    if got is None:
        return []
    try:
        found = normalize_problems(check(got[0]))
    except Exception:
        return []
    return _outside(found, shape, got[1])


async def io_rule_problems_of(request: Any, type_: Any, raw: Any, shape: list[dict]) -> list:
    """As ``rule_problems_of`` for a check registered with ``register_io_check``."""
    from service.core.errors import DomainError

    check = _IO_CHECKS.get(type_)
    if check is None:
        return []
    got = _well_formed(type_, raw, shape)
    if got is None:
        return []
    try:
        found = normalize_problems(await check(request, got[0]))
    except DomainError:
        return []
    return _outside(found, shape, got[1])


def _tokens(path: str) -> list[str | int]:
    return [int(i) if i else n for n, i in re.findall(r"([^.\[\]]+)|\[(\d+)\]", path)]


def _within(path: str, outer: str) -> bool:
    return path == outer or path.startswith((outer + ".", outer + "["))


def _pick(t: Any, v: Any) -> Any:
    """The member of a union (or the type under Metadata) that ``v`` is meant for."""
    while True:
        if isinstance(t, mi.Metadata):
            t = t.type
        elif isinstance(t, mi.UnionType):
            tagged = [m for m in t.types if isinstance(m, mi.StructType) and m.tag_field]
            if tagged and isinstance(v, dict):
                t = next((m for m in tagged if v.get(m.tag_field) == m.tag), tagged[0])
            else:
                t = next((m for m in t.types if _matches(m, v)), t.types[0])
        else:
            return t


_GONE = object()  # a list item left out (see ``_compact``)


_NO_STAND_IN = object()


def _stand_in(t: Any) -> Any:
    """A neutral value of a required scalar field (JSON data) put in place of a malformed one
    so the rules can judge the rest of the document (the rules' problems on that field are
    dropped: the shape problem names it). The earliest time, the least number, a short
    string, a literal, an empty list; ``_NO_STAND_IN`` for anything else. A stand-in that
    breaks another limit (a pattern) fails the conversion: the rules are then not judged."""
    while isinstance(t, mi.Metadata):
        t = t.type
    if isinstance(t, mi.StrType):
        return "x" * max(1, t.min_length or 0)
    if isinstance(t, mi.IntType):
        lo = t.ge if t.ge is not None else (t.gt + 1 if t.gt is not None else 0)
        return lo if t.le is None or lo <= t.le else _NO_STAND_IN
    if isinstance(t, mi.BoolType):
        return False
    if isinstance(t, mi.DateTimeType):
        return TIME_MIN.isoformat()
    if isinstance(t, mi.DateType):
        return DATE_MIN.isoformat()
    if isinstance(t, mi.LiteralType):
        return sorted(t.values, key=str)[0]
    if isinstance(t, mi.ListType):
        return []
    return _NO_STAND_IN


def _drop(t: Any, v: Any, tokens: list[str | int], top: bool = True) -> bool:
    """Leave out the malformed value at ``tokens`` (or the nearest optional field holding it);
    a required scalar field outside a list takes a stand-in (``_stand_in``); False when only
    a required field could be left out."""
    if not tokens:
        # A field name made only of path punctuation (`]`, `.`) has no tokens: it cannot be
        # left out by path, so the rules are not judged (the shape problem still answers).
        return False
    t = _pick(t, v)
    head, rest = tokens[0], tokens[1:]
    if isinstance(t, mi.StructType) and isinstance(v, dict) and isinstance(head, str):
        field = next((f for f in t.fields if f.encode_name == head), None)
        if field is None:
            v.pop(head, None)  # an unknown field
            return True
        if rest and head in v and _drop(field.type, v[head], rest, top):
            return True
        if field.required:
            stand_in = _stand_in(field.type) if top else _NO_STAND_IN
            if stand_in is _NO_STAND_IN:
                return False
            v[head] = stand_in
            return True
        v.pop(head, None)
        return True
    if isinstance(t, mi.ListType) and isinstance(v, list) and isinstance(head, int):
        if head >= len(v) or v[head] is _GONE:
            return head < len(v)
        if rest and _drop(t.item_type, v[head], rest, False):
            return True
        v[head] = _GONE  # the malformed item goes (``_compact`` takes it out)
        return True
    return False


# ------------------------------------------------------------------ request hook

_V = TypeVar("_V")


def _per_handler(route_handler: Any, name: str, compute: Callable[[], _V]) -> _V:
    """What ``compute`` says about a handler, worked out once and kept ON the handler (its
    ``opt``). Not in a dict keyed by ``id(handler)``: tests build many apps, and a collected
    handler's id is reused by another one, which then got the first one's body type."""
    opt = route_handler.opt
    try:
        return opt[name]
    except KeyError:
        value = opt[name] = compute()
        return value


def body_required(route_handler: Any) -> bool:
    """Whether a handler's ``data`` must be sent (not ``X | None = None``)."""
    field = route_handler.parsed_data_field
    return field is not None and not field.is_optional and not field.has_default


def body_type_of(route_handler: Any) -> Any:
    """The declared type of a handler's ``data`` (with its Meta constraints), or None."""

    def compute() -> Any:
        field = route_handler.parsed_data_field
        if field is None:
            return None
        raw = field.raw
        # JSONBody[X] is Annotated[X, Body(...)]: keep X and any msgspec Meta on it.
        metas = tuple(m for m in getattr(raw, "__metadata__", ()) if isinstance(m, Meta))
        inner = getattr(raw, "__origin__", raw) if hasattr(raw, "__metadata__") else raw
        return Annotated[(inner, *metas)] if metas else inner

    return _per_handler(route_handler, "_body_type", compute)


_MESSAGE_CODES = (
    ("timezone", "OFFSET_MISSING"),
    ("Missing required", "REQUIRED"),
    ("matching regex", "FORMAT_INVALID"),
    ("Invalid enum value", "NOT_ALLOWED"),
    ("length", "LENGTH_OUT_OF_RANGE"),
    (">=", "OUT_OF_RANGE"),
    ("<=", "OUT_OF_RANGE"),
    ("> ", "OUT_OF_RANGE"),
    ("< ", "OUT_OF_RANGE"),
    ("Invalid", "FORMAT_INVALID"),
    ("Expected", "WRONG_TYPE"),
)


def code_of_message(message: str) -> str:
    """The problem code of a msgspec (or Litestar) validation message."""
    for needle, code in _MESSAGE_CODES:
        if needle in message:
            return code
    return "INVALID"


def _unwrap(t: Any) -> tuple[Any, list]:
    """``Annotated[X | None, m1, ...]`` (nested any way) -> (X, [m1, ...])."""
    metas: list = []
    while True:
        if hasattr(t, "__metadata__"):
            metas.extend(t.__metadata__)
            t = t.__origin__
            continue
        stripped = _without_none(t)
        if stripped is t:
            return t, metas
        t = stripped


def _without_none(t: Any) -> Any:
    """``X | None`` -> ``X`` (a parameter that is absent is handled before conversion)."""
    args = typing.get_args(t)
    if type(None) in args and typing.get_origin(t) in (typing.Union, types.UnionType):
        rest = tuple(a for a in args if a is not type(None))
        return rest[0] if len(rest) == 1 else typing.Union[rest]  # noqa: UP007
    return t


_CONSTRAINTS = ("ge", "le", "gt", "lt", "min_length", "max_length", "pattern")
_NOT_PARAMS = {"data", "state", "request", "scope", "headers", "cookies", "query", "body"}


def param_specs(route_handler: Any) -> list[tuple[str, str, Any, bool]]:
    """(name, wire name, type with every constraint, required) of each path/query/header
    parameter of a handler. Litestar drops msgspec ``Meta`` on parameters; this keeps it."""
    return _per_handler(route_handler, "_param_specs", lambda: _param_specs(route_handler))


def _param_specs(route_handler: Any) -> list[tuple[str, str, Any, bool]]:
    from litestar.params import BodyKwarg, DependencyKwarg, ParameterKwarg

    deps = set(route_handler.resolve_dependencies())
    specs = []
    for name, field in route_handler.parsed_fn_signature.parameters.items():
        kd = field.kwarg_definition
        if name in _NOT_PARAMS or name in deps or isinstance(kd, BodyKwarg | DependencyKwarg):
            continue
        wire = name
        if isinstance(kd, ParameterKwarg):
            if kd.cookie:
                continue
            wire = f"header:{kd.header}" if kd.header else (kd.query or name)
        # One Meta with every limit, from the alias (e.g. ExternalId) and from Parameter(...).
        limits: dict[str, Any] = {}
        base, found = _unwrap(field.raw)
        for m in found:
            if isinstance(m, Meta):
                limits.update({c: getattr(m, c) for c in _CONSTRAINTS if getattr(m, c) is not None})
                if m.extra:
                    limits["extra"] = m.extra
        if kd is not None:
            limits.update(
                {c: getattr(kd, c) for c in _CONSTRAINTS if getattr(kd, c, None) is not None}
            )
        metas = [Meta(**limits)] if limits else []
        type_ = Annotated[(base, *metas)] if metas else base
        required = not field.has_default and not field.is_optional
        specs.append((name, wire, type_, required))
    return specs


class _Param(typing.NamedTuple):
    """A parameter's spec with what checking it needs, worked out once per route."""

    name: str
    wire: str
    type_: Any
    required: bool
    is_list: bool  # a query parameter given as a list (?x=1&x=2)
    own_code: str | None
    has_extra: bool


def _param_plan(route_handler: Any) -> list[_Param]:
    return _per_handler(route_handler, "_param_plan", lambda: _plan_of(route_handler))


def _plan_of(route_handler: Any) -> list[_Param]:
    return [
        _Param(
            name,
            wire,
            type_,
            required,
            isinstance(getattr(mi.type_info(type_), "item_type", None), mi.Type),
            _own_code(type_),
            any(isinstance(m, Meta) and m.extra for m in _unwrap(type_)[1]),
        )
        for name, wire, type_, required in param_specs(route_handler)
    ]


def params_problems(request: Any) -> list[dict]:
    """Every problem of the path, query and header parameters of this request."""
    plan = _param_plan(request.route_handler)
    if not plan:
        return []
    out: list[dict] = []
    path_params = request.scope.get("path_params") or {}
    for name, wire, type_, required, is_list, own_code, has_extra in plan:
        if name in path_params:
            source, value = "path", path_params[name]
        elif wire.startswith("header:"):
            source, wire = "header", wire[len("header:") :]
            value = request.headers.get(wire)
        else:
            source = "query"
            values = request.query_params.getall(wire, [])
            value = values[-1] if values else None
            if is_list:
                value = values or None
        if value is None:
            if required:
                out.append(problem(source, wire, "REQUIRED", "is required"))
            continue
        texts = value if isinstance(value, list) else [value]
        if any(isinstance(t, str) and (why := bad_text(t)) is not None for t in texts):
            if own_code == "CURSOR_INVALID":
                out.append(problem(source, wire, own_code, "not a cursor we issued"))
            else:
                out.append(problem(source, wire, "CHARACTER_NOT_ALLOWED", why or ""))
            continue
        try:
            converted = msgspec.convert(value, type_, strict=False)
        except msgspec.ValidationError as exc:
            text = str(exc).split(" - at ")[0]
            if own_code == "CURSOR_INVALID":
                out.append(problem(source, wire, own_code, "not a cursor we issued"))
            else:
                out.append(problem(source, wire, code_of_message(text), text))
            continue
        for item in converted if isinstance(converted, list) else [converted]:
            if isinstance(item, datetime) and not time_in_range(item):
                out.append(problem(source, wire, "OUT_OF_RANGE", f"a time {TIME_RANGE_TEXT}"))
            elif isinstance(item, date) and not date_in_range(item):
                out.append(problem(source, wire, "OUT_OF_RANGE", f"a date {TIME_RANGE_TEXT}"))
            elif (
                has_extra
                and isinstance(item, str)
                and (extra := _extra_problem(type_, item)) is not None
            ):
                out.append(problem(source, wire, *extra))
    return out


def _own_code(type_: Any) -> str | None:
    """The one problem code a parameter type answers for any malformation (``Meta.extra``)."""
    for m in _unwrap(type_)[1]:
        if isinstance(m, Meta) and m.extra and "code" in m.extra:
            return str(m.extra["code"])
    return None


def _extra_problem(type_: Any, value: str) -> tuple[str, str] | None:
    """(code, text) of the extra check a parameter type names, or None."""
    for m in _unwrap(type_)[1]:
        if (
            isinstance(m, Meta)
            and m.extra
            and (check := EXTRA_CHECKS.get(m.extra.get("check", "")))
        ):
            got = check[1](value)
            if got is None:
                return None
            return got if isinstance(got, tuple) else (check[0], got)
    return None


_PRINCIPALS = frozenset({"member", "operator"})


def _needs_principal(route_handler: Any) -> bool:
    return _per_handler(
        route_handler,
        "_needs_principal",
        lambda: bool(_PRINCIPALS & set(route_handler.resolve_dependencies())),
    )


async def strict_request(request: Any) -> None:
    """Before any handler runs: refuse a non-JSON body (415), unparseable JSON (400), and
    path/query/header parameters and a body that do not fit their declared types strictly
    (422, every problem of every source at once)."""
    from service.core.errors import DomainError

    if request.url.path.startswith("/schema/"):
        return  # the docs UI and its static assets are not API inputs
    if _needs_principal(request.route_handler) and not request.headers.get("authorization"):
        return  # no credentials at all: the principal dependency answers 401 first
    found = params_problems(request)
    type_ = body_type_of(request.route_handler)
    if type_ is None:
        if found:
            raise validation_failed(found)
        return
    body = await request.body()
    if not body.strip():
        if body_required(request.route_handler):
            found.append(problem("body", "", "REQUIRED", "a JSON body is required"))
        if found:
            raise validation_failed(found)
        return
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise DomainError(
            "UNSUPPORTED_MEDIA_TYPE",
            details={"contentType": media_type or None, "expected": "application/json"},
        )
    try:
        raw = msgspec.json.decode(body)
    except RecursionError as exc:
        raise _too_deep() from exc
    except msgspec.DecodeError as exc:
        # msgspec refuses a lone surrogate escape ("\ud800") as if the JSON were cut short;
        # the standard parser reads it, so the problem can name its field.
        try:
            bad = scan_json(json.loads(body))[1]
        except (ValueError, RecursionError):
            bad = []
        if bad:
            raise validation_failed(found + bad) from exc
        raise DomainError(
            "MALFORMED_REQUEST",
            details={"problems": [problem("body", "", "JSON_INVALID", str(exc))]},
        ) from exc
    depth, bad = scan_json(raw)
    if depth > MAX_JSON_DEPTH:
        raise _too_deep()
    if bad:
        raise validation_failed(found + bad)
    raw = normalize_urls(type_, raw)
    try:
        value = msgspec.convert(raw, type_, strict=True)
        shape = range_problems(type_, raw, "body")
    except msgspec.ValidationError as exc:
        value = None
        shape = problems_of(type_, raw, "body") or [
            problem("body", _msgspec_path(str(exc)), "INVALID", str(exc).split(" - ")[0])
        ]
    if shape:
        found += shape + rule_problems_of(type_, raw, shape)
        found += await io_rule_problems_of(request, type_, raw, shape)
    if found:
        raise validation_failed(found)
    with contextlib.suppress(AttributeError):
        # The body is decoded and converted once, here: Litestar hands the handler this value
        # (its own conversion passes an instance of the declared type through unchanged).
        request._connection_state.json = value
