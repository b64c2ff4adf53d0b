"""Boards: definitions, scoring from domain events, reads, the close job, rebuild, red/black."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import msgspec
import structlog

from service.core import outbox
from service.core.context import Context
from service.core.errors import DomainError, register_codes
from service.core.outbox import Event
from service.leaderboards import repository as repo
from service.leaderboards import rules, store
from service.leaderboards.rules import BoardSpec, Period
from service.leaderboards.schemas import (
    BoardItem,
    BoardPage,
    EntriesPage,
    EntryOut,
    FriendsIn,
    LeaderboardIn,
    LeaderboardOut,
    MemberShown,
    MeOnBoard,
    NoteIn,
    PeriodOut,
    PreferenceOut,
    PublicationOut,
    RedBlackEntry,
    RedBlackEntryAdmin,
    RedBlackIn,
    RedBlackOut,
    RedBlackView,
)
from service.members import service as members

log = structlog.get_logger("engage.leaderboards")

register_codes(
    {
        "LEADERBOARD_NOT_FOUND": (404, "排行榜不存在", "No such leaderboard."),
        "LEADERBOARD_CONFIG_INVALID": (
            422,
            "排行榜配置有误",
            "The leaderboard definition is invalid; see details.problems.",
        ),
        "LEADERBOARD_KEY_CLASH": (
            409,
            "该排行榜标识已被占用",
            "This key belongs to a board with another metric, period or time zone; use a new key.",
        ),
        "LEADERBOARD_PERIOD_NOT_FOUND": (404, "该周期不存在", "No such period on this board."),
        "LEADERBOARD_LIMIT_OUT_OF_RANGE": (
            400,
            "请求条数超出范围",
            "The limit or radius is outside the allowed range; see details.",
        ),
        "LEADERBOARD_CURSOR_INVALID": (400, "分页游标无效", "The cursor is not valid."),
        "RED_BLACK_NOT_FOUND": (404, "红黑榜不存在", "No such red/black board."),
        "RED_BLACK_CONFIG_INVALID": (
            422,
            "红黑榜配置有误",
            "The red/black board definition is invalid; see details.problems.",
        ),
        "RED_BLACK_BOARD_TAKEN": (
            409,
            "该排行榜已挂载其他红黑榜",
            "Another red/black board is attached to this leaderboard.",
        ),
        "RED_BLACK_NOT_PUBLISHED": (404, "红黑榜尚未发布", "Nothing is published for that period."),
        "LEADERBOARD_PERIOD_OPEN": (
            409,
            "该周期尚未结束",
            "The period has not closed yet; it can be published after it closes.",
        ),
    }
)

SUBSCRIBER = "leaderboards"
TOP_CACHE_TTL_S = 1.0
CONFIG_CACHE_TTL_S = 5.0
DISPLAY_CACHE_TTL_S = 30.0
MAX_OFFSET = 10_000


# ---------------------------------------------------------------- small caches


class TtlCache:
    """A per-process cache with single-flight: concurrent misses of one key share one load.

    Each process keeps its own copy (nothing another process needs lives here): a stale entry
    costs at most ``ttl`` seconds of staleness on the public top page, never a wrong "my rank".
    """

    def __init__(self, ttl: float, max_entries: int = 10_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._data: dict[Any, tuple[float, Any]] = {}
        self._inflight: dict[Any, asyncio.Future[Any]] = {}
        self.loads = 0

    def clear(self) -> None:
        self._data.clear()

    def pop(self, key: Any) -> None:
        self._data.pop(key, None)

    async def get(self, key: Any, load: Callable[[], Awaitable[Any]]) -> Any:
        hit = self._data.get(key)
        now = time.monotonic()
        if hit is not None and hit[0] > now:
            return hit[1]
        waiting = self._inflight.get(key)
        if waiting is not None:
            return await asyncio.shield(waiting)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._inflight[key] = fut
        try:
            self.loads += 1
            value = await load()
        except BaseException as exc:
            fut.set_exception(exc)
            fut.exception()  # mark retrieved: waiters re-raise it, nobody else must
            raise
        finally:
            self._inflight.pop(key, None)
        fut.set_result(value)
        if len(self._data) >= self.max_entries:
            self._data.clear()
        self._data[key] = (time.monotonic() + self.ttl, value)
        return value


_top_cache = TtlCache(TOP_CACHE_TTL_S)
_config_cache = TtlCache(CONFIG_CACHE_TTL_S)
Shown = tuple[members.MemberDisplay | None, str | None]  # display info, shown title
_display: dict[tuple[int, int], tuple[float, Shown]] = {}


def clear_caches() -> None:
    _top_cache.clear()
    _config_cache.clear()
    _display.clear()


# ---------------------------------------------------------------- definitions


def _spec(row: Any) -> BoardSpec:
    c = row["config"]
    return BoardSpec(
        id=row["id"],
        tenant_id=row["tenant_id"],
        key=row["key"],
        metric=c["metric"],
        period=c["period"],
        timezone=c.get("timezone") or "Asia/Shanghai",
        event_type=c.get("eventType"),
        campaign=c.get("campaign"),
        value_scale=float(c.get("valueScale", 1.0)),
        min_score=int(c.get("minScore", 1)),
        display=c.get("display", "masked"),
        show_avatar=bool(c.get("showAvatar", True)),
        window_start=_dt(c.get("windowStart")),
        window_end=_dt(c.get("windowEnd")),
        grace_s=int(c.get("graceDays", 7)) * 86400,
        close_delay_s=int(c.get("closeDelaySeconds", 300)),
        starts_at=row["created_at"],
    )


def _dt(v: Any) -> datetime | None:
    return None if v is None else msgspec.convert(v, datetime)


def _board_out(row: Any, red_black: str | None) -> LeaderboardOut:
    return LeaderboardOut(
        key=row["key"],
        version=row["version"],
        config=msgspec.convert(row["config"], LeaderboardIn),
        red_black=red_black,
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


async def put_board(ctx: Context, conn: Any, tenant_id: int, key: str, data: LeaderboardIn) -> Any:
    """Create or change a board. Every problem is reported at once (422) and nothing changes."""
    if not rules.KEY_RE.match(key):
        raise DomainError(
            "LEADERBOARD_CONFIG_INVALID",
            details={"problems": [{"field": "key", "problem": "lowercase a-z, 0-9, _ or -"}]},
        )
    doc = msgspec.to_builtins(data)
    check = dict(doc, windowStart=data.window_start, windowEnd=data.window_end)
    problems = rules.validate_board(check)
    if problems:
        raise DomainError("LEADERBOARD_CONFIG_INVALID", details={"problems": problems})
    now = ctx.clock.now()
    existing = await repo.lock_board(conn, tenant_id, key)
    if existing is None:
        row = await repo.insert_board(conn, tenant_id, key, doc, now)
        if row is None:
            raise DomainError("CONFLICT")
    else:
        if rules.identity_of(existing["config"]) != rules.identity_of(doc):
            raise DomainError(
                "LEADERBOARD_KEY_CLASH",
                details={
                    "key": key,
                    "fixed": [
                        "metric",
                        "eventType",
                        "campaign",
                        "period",
                        "timezone",
                        "windowStart",
                        "windowEnd",
                        "valueScale",
                    ],
                },
            )
        row = await repo.update_board(conn, existing["id"], doc, now)
    _config_cache.pop((tenant_id, key))
    rb = await repo.red_black_for_board(conn, row["id"])
    return _board_out(row, rb["key"] if rb else None)


async def get_board(ctx: Context, tenant_id: int, key: str) -> LeaderboardOut:
    async with ctx.db.connection() as conn:
        row = await repo.get_board(conn, tenant_id, key)
        if row is None:
            raise DomainError("LEADERBOARD_NOT_FOUND", details={"key": key})
        rb = await repo.red_black_for_board(conn, row["id"])
    return _board_out(row, rb["key"] if rb else None)


async def board_spec(ctx: Context, tenant_id: int, key: str) -> BoardSpec:
    async def load() -> BoardSpec | None:
        async with ctx.db.connection() as conn:
            row = await repo.get_board(conn, tenant_id, key)
        return _spec(row) if row else None

    spec = await _config_cache.get((tenant_id, key), load)
    if spec is None:
        raise DomainError("LEADERBOARD_NOT_FOUND", details={"key": key})
    return spec  # type: ignore[no-any-return]


# ---------------------------------------------------------------- scoring


def _key(ctx: Context, spec: BoardSpec, period_id: str) -> str:
    return store.period_key(ctx, spec.tenant_id, spec.source, spec.id, period_id)


def _expire_ts(spec: BoardSpec, period: Period) -> int:
    at = rules.expires_at(spec, period)
    return 0 if at is None else int(at.timestamp())


async def on_events(ctx: Context, events: list[Event]) -> None:
    """Outbox subscriber: add each event to every period of every board it feeds.

    One PostgreSQL transaction per batch: the periods (locked against a concurrent close), the
    dedup rows (at-least-once delivery counts once), the score upserts, then the totals read
    under row locks and written to Redis in one round trip before commit. Writing absolute
    totals while holding the row locks means no later writer can be overtaken by an earlier
    one, and a redelivered batch only re-sets the same values.
    """
    scored = [e for e in events if e.member_id is not None]
    if not scored:
        return
    async with ctx.db.transaction() as conn:
        rows = await repo.boards_for_tenants(conn, sorted({e.tenant_id for e in scored}))
        boards: dict[int, list[BoardSpec]] = defaultdict(list)
        for row in rows:
            boards[row["tenant_id"]].append(_spec(row))
        hits: list[tuple[BoardSpec, Period, Event, int]] = []
        for e in scored:
            for spec in boards.get(e.tenant_id, ()):
                if spec.starts_at is not None and e.occurred_at < spec.starts_at:
                    continue
                delta = rules.contribution(spec, e.type, e.payload)
                if delta == 0:
                    continue
                period = rules.period_for(spec, e.occurred_at)
                if period is not None:
                    hits.append((spec, period, e, delta))
        if not hits:
            return
        status = await repo.ensure_periods(
            conn, [(s.tenant_id, s.id, p.id, p.start, p.end) for s, p, _, _ in hits]
        )
        hits = [h for h in hits if status.get((h[0].id, h[1].id)) == "open"]
        fresh = await repo.mark_applied(conn, [(s.id, p.id, e.event_id) for s, p, e, _ in hits])
        adds: dict[tuple[int, str, int], list[Any]] = {}
        for spec, period, e, delta in hits:
            if (spec.id, e.event_id) not in fresh:
                continue
            k = (spec.id, period.id, e.member_id)
            cur = adds.get(k)
            if cur is None:
                adds[k] = [spec.tenant_id, spec.id, period.id, e.member_id, delta, e.occurred_at, 1]
            else:
                cur[4] += delta
                cur[5] = max(cur[5], e.occurred_at)
                cur[6] += 1
        await repo.add_scores(conn, [tuple(v) for v in adds.values()])  # type: ignore[misc]
        # Totals of everything the batch touched (replays too, so a lost Redis write heals).
        wanted = {(s.id, p.id, e.member_id): (s, p) for s, p, e, _ in hits}
        totals = await repo.lock_scores(conn, list(wanted))  # type: ignore[arg-type]
        groups: dict[tuple[int, str], dict[str, tuple[int, list[store.Update]]]] = defaultdict(dict)
        for t in totals:
            spec, period = wanted[(t["board_id"], t["period_id"], t["member_id"])]
            key = _key(ctx, spec, period.id)
            slot = groups[(spec.tenant_id, spec.source)].setdefault(
                key, (_expire_ts(spec, period), [])
            )
            enc = rules.encode(t["score"], t["reached_at"], period)
            keep = rules.clamp_score(t["score"]) > 0
            slot[1].append((rules.member_bytes(t["member_id"]), enc if keep else None))
        await store.apply(
            ctx,
            {g: [(k, exp, ups) for k, (exp, ups) in keys.items()] for g, keys in groups.items()},
            ctx.clock.now(),
        )


# ---------------------------------------------------------------- reads


def _period_out(period: Period, closed: bool) -> PeriodOut:
    return PeriodOut(period.id, period.start, period.end, closed)


async def _resolve_period(ctx: Context, spec: BoardSpec, wanted: str) -> tuple[Period, bool]:
    """(period, closed). ``current`` always exists; anything else must have been scored."""
    now = ctx.clock.now()
    if wanted == "current":
        period = rules.current_period(spec, now)
        if period is None:
            raise DomainError("LEADERBOARD_PERIOD_NOT_FOUND", details={"period": wanted})
        closed = False
        if spec.period == "window" and period.end is not None and now >= period.end:
            async with ctx.db.connection() as conn:
                row = await repo.get_period(conn, spec.id, period.id)
            closed = row is not None and row["status"] == "closed"
        return period, closed
    if wanted == "previous":
        period = rules.previous_period(spec, now)
    else:
        period = rules.period_by_id(spec, wanted)
    if period is None:
        raise DomainError("LEADERBOARD_PERIOD_NOT_FOUND", details={"period": wanted})
    current = rules.current_period(spec, now)
    if current is not None and current.id == period.id:
        return await _resolve_period(ctx, spec, "current")
    async with ctx.db.connection() as conn:
        row = await repo.get_period(conn, spec.id, period.id)
    if row is None:
        if wanted == "previous" or (period.end is not None and period.end <= now):
            # A past period nobody scored in: it exists, and it is empty.
            return period, True
        raise DomainError("LEADERBOARD_PERIOD_NOT_FOUND", details={"period": wanted})
    return period, row["status"] == "closed"


def _check_limit(name: str, value: int, lo: int, hi: int) -> None:
    if not lo <= value <= hi:
        raise DomainError(
            "LEADERBOARD_LIMIT_OUT_OF_RANGE", details={name: value, "min": lo, "max": hi}
        )


def _offset(cursor: str | None) -> int:
    if cursor is None or cursor == "":
        return 0
    if not cursor.isdigit() or int(cursor) > MAX_OFFSET:
        raise DomainError("LEADERBOARD_CURSOR_INVALID")
    return int(cursor)


async def _displays(ctx: Context, tenant_id: int, member_ids: list[int]) -> dict[int, Shown]:
    """Display info and the title each member shows (asked of the badges feature), cached
    per process for DISPLAY_CACHE_TTL_S."""
    from service.badges import service as badges

    now = time.monotonic()
    out: dict[int, Shown] = {}
    missing = []
    for m in member_ids:
        hit = _display.get((tenant_id, m))
        if hit is not None and hit[0] > now:
            out[m] = hit[1]
        else:
            missing.append(m)
    if missing:
        async with ctx.db.connection() as conn:
            found = await members.display_info(conn, tenant_id, missing)
            titles = await badges.shown_titles(ctx, conn, tenant_id, missing)
        if len(_display) > 200_000:
            _display.clear()
        for m in missing:
            out[m] = (found.get(m), titles.get(m))
            _display[(tenant_id, m)] = (now + DISPLAY_CACHE_TTL_S, out[m])
    return out


def _shown(spec: BoardSpec, shown: Shown) -> MemberShown:
    d, title = shown
    if d is None or spec.display == "anonymous":
        return MemberShown(members.ANONYMOUS, "")
    name = d.nickname if spec.display == "full" and d.nickname else d.masked_nickname
    return MemberShown(name, d.avatar_url if spec.show_avatar else "", title)


async def _items(
    ctx: Context, spec: BoardSpec, ranked: list[tuple[int, int, int]], me: int | None
) -> list[BoardItem]:
    """(rank, member, score) -> items with display info."""
    shown = await _displays(ctx, spec.tenant_id, [m for _, m, _ in ranked])
    return [BoardItem(r, _shown(spec, shown[m]), s, m == me) for r, m, s in ranked]


async def _top_page(
    ctx: Context, spec: BoardSpec, period: Period, closed: bool, offset: int, limit: int
) -> tuple[list[BoardItem], datetime | None]:
    """The shared part of a board page (ranked items with display info), cached per process for
    TOP_CACHE_TTL_S with single-flight: thousands of readers a second cost one Redis read."""

    async def load() -> tuple[list[BoardItem], datetime | None]:
        upd: datetime | None
        if closed:
            async with ctx.db.connection() as conn:
                rows = await repo.archive_page(
                    conn, spec.id, period.id, offset, limit, spec.min_score
                )
                prow = await repo.get_period(conn, spec.id, period.id)
            ranked = [(r["rank"], r["member_id"], r["score"]) for r in rows]
            upd = prow["closed_at"] if prow else None
        else:
            key = _key(ctx, spec, period.id)
            min_enc = spec.min_score * rules.TIME_SPAN
            pairs = await store.top(ctx, key, offset, limit, min_enc)
            upd = await store.updated_at(ctx, spec.tenant_id, spec.source, key)
            ranked = [
                (offset + i + 1, rules.member_of(m), rules.decode_score(s))
                for i, (m, s) in enumerate(pairs)
            ]
        return await _items(ctx, spec, ranked, None), upd

    return await _top_cache.get(  # type: ignore[no-any-return]
        (spec.tenant_id, spec.id, period.id, closed, offset, limit), load
    )


async def _my_place(
    ctx: Context, spec: BoardSpec, period: Period, closed: bool, member_id: int
) -> MeOnBoard:
    """Always exact: read on every request, never from the page cache."""
    if closed:
        async with ctx.db.connection() as conn:
            row = await repo.archive_entry(conn, spec.id, period.id, member_id)
            if row is None or row["score"] < spec.min_score:
                return MeOnBoard(None, row["score"] if row else 0, None)
            prev = None
            if row["rank"] > 1:
                above = await repo.archive_ranks(
                    conn, spec.id, period.id, row["rank"] - 1, row["rank"] - 1
                )
                prev = above[0]["score"] - row["score"] if above else None
        return MeOnBoard(row["rank"], row["score"], prev)
    got = await store.me(ctx, _key(ctx, spec, period.id), rules.member_bytes(member_id))
    if got is None:
        return MeOnBoard(None, 0, None)
    rank, enc, prev = got
    score = rules.decode_score(enc)
    if score < spec.min_score:
        return MeOnBoard(None, score, None)
    return MeOnBoard(rank + 1, score, rules.gap_to_previous(enc, prev))


async def read_board(
    ctx: Context,
    tenant_id: int,
    member_id: int,
    key: str,
    period_param: str,
    limit: int,
    cursor: str | None,
) -> BoardPage:
    _check_limit("limit", limit, 1, rules.MAX_LIMIT)
    offset = _offset(cursor)
    spec = await board_spec(ctx, tenant_id, key)
    period, closed = await _resolve_period(ctx, spec, period_param)
    cached, upd = await _top_page(ctx, spec, period, closed, offset, limit)
    me = await _my_place(ctx, spec, period, closed, member_id)
    items = cached
    if me.rank is not None and offset < me.rank <= offset + len(cached):
        # The cached list is shared: mark "me" on a copy, never in place.
        items = list(cached)
        i = me.rank - offset - 1
        items[i] = msgspec.structs.replace(items[i], is_me=True)
    nxt = str(offset + limit) if len(cached) == limit and offset + limit <= MAX_OFFSET else None
    return BoardPage(_period_out(period, closed), upd, items, me, nxt)


async def around_me(
    ctx: Context, tenant_id: int, member_id: int, key: str, period_param: str, radius: int
) -> BoardPage:
    _check_limit("radius", radius, 1, rules.MAX_RADIUS)
    spec = await board_spec(ctx, tenant_id, key)
    period, closed = await _resolve_period(ctx, spec, period_param)
    ranked: list[tuple[int, int, int]] = []
    me = MeOnBoard(None, 0, None)
    if closed:
        me = await _my_place(ctx, spec, period, closed, member_id)
        if me.rank is not None:
            async with ctx.db.connection() as conn:
                rows = await repo.archive_ranks(
                    conn, spec.id, period.id, me.rank - radius, me.rank + radius
                )
            ranked = [(r["rank"], r["member_id"], r["score"]) for r in rows]
    else:
        k = _key(ctx, spec, period.id)
        got = await store.around(ctx, k, rules.member_bytes(member_id), radius)
        if got is not None:
            rank, start, pairs = got
            ranked = [
                (start + i + 1, rules.member_of(m), rules.decode_score(s))
                for i, (m, s) in enumerate(pairs)
            ]
            mine = next((x for x in ranked if x[0] == rank + 1), None)
            above = next((x for x in ranked if x[0] == rank), None)
            if mine is not None:
                gap = above[2] - mine[2] if above else None
                me = MeOnBoard(rank + 1, mine[2], gap)
                if mine[2] < spec.min_score:
                    me = MeOnBoard(None, mine[2], None)
    ranked = [x for x in ranked if x[2] >= spec.min_score] if me.rank is not None else []
    items = await _items(ctx, spec, ranked, member_id)
    return BoardPage(_period_out(period, closed), None, items, me)


async def friends(
    ctx: Context, tenant_id: int, member_id: int, key: str, data: FriendsIn
) -> BoardPage:
    """My rank among the given members (and me), on the same order as the board."""
    spec = await board_spec(ctx, tenant_id, key)
    period, closed = await _resolve_period(ctx, spec, data.period)
    ids = set(data.member_ids)
    if data.external_ids:
        async with ctx.db.connection() as conn:
            ids |= set(
                (await members.resolve_member_ids(conn, tenant_id, data.external_ids)).values()
            )
    # Only members of this tenant count: a foreign id simply has no score here.
    ids.add(member_id)
    ordered = sorted(ids)
    scored: list[tuple[float, int]] = []
    if closed:
        async with ctx.db.connection() as conn:
            rows = await repo.archive_members(conn, spec.id, period.id, ordered)
        scored = [(-r["rank"], r["member_id"]) for r in rows if r["score"] >= spec.min_score]
    else:
        got = await store.scores_of(
            ctx, _key(ctx, spec, period.id), [rules.member_bytes(m) for m in ordered]
        )
        scored = [
            (s, m)
            for m, s in zip(ordered, got, strict=True)
            if s is not None and rules.decode_score(s) >= spec.min_score
        ]
    scored.sort(key=lambda x: (-x[0], x[1]))
    if closed:
        scores = {r["member_id"]: r["score"] for r in rows}
        ranked = [(i + 1, m, scores[m]) for i, (_, m) in enumerate(scored)]
    else:
        ranked = [(i + 1, m, rules.decode_score(s)) for i, (s, m) in enumerate(scored)]
    mine = next((x for x in ranked if x[1] == member_id), None)
    if mine is None:
        me = MeOnBoard(None, 0, None)
    else:
        above = ranked[mine[0] - 2] if mine[0] > 1 else None
        me = MeOnBoard(mine[0], mine[2], above[2] - mine[2] if above else None)
    items = await _items(ctx, spec, ranked, member_id)
    return BoardPage(_period_out(period, closed), None, items, me)


async def entries(
    ctx: Context, tenant_id: int, key: str, period_param: str, limit: int, cursor: str | None
) -> EntriesPage:
    """Operator export: full member ids in board order, from PostgreSQL."""
    _check_limit("limit", limit, 1, rules.MAX_EXPORT_LIMIT)
    offset = _offset(cursor) if cursor else 0
    spec = await board_spec(ctx, tenant_id, key)
    period, closed = await _resolve_period(ctx, spec, period_param)
    async with ctx.db.connection() as conn:
        if closed:
            rows = await repo.archive_page(conn, spec.id, period.id, offset, limit, 1)
            items = [EntryOut(r["rank"], r["member_id"], r["score"], r["reached_at"]) for r in rows]
        else:
            rows = await repo.scores_page(
                conn, spec.id, period.id, period.start, period.unit, offset, limit
            )
            items = [
                EntryOut(offset + i + 1, r["member_id"], r["score"], r["reached_at"])
                for i, r in enumerate(rows)
            ]
    nxt = str(offset + limit) if len(items) == limit else None
    return EntriesPage(_period_out(period, closed), items, nxt)


# ---------------------------------------------------------------- close and archive


async def close_period(ctx: Context, spec: BoardSpec, period_id: str) -> int | None:
    """Archive a period's final ranking and publish its red/black board. Idempotent: a period
    already closed returns None and changes nothing."""
    period = rules.period_by_id(spec, period_id)
    if period is None:
        return None
    now = ctx.clock.now()
    async with ctx.db.transaction() as conn:
        row = await repo.get_period(conn, spec.id, period_id, lock=True)
        if row is None or row["status"] == "closed":
            return None
        n = await repo.archive(conn, spec.id, period_id, period.start, period.unit)
        await repo.mark_closed(conn, spec.id, period_id, now, n)
        rb = await repo.red_black_for_board(conn, spec.id)
        if rb is not None:
            await _publish(ctx, conn, spec, rb, period_id, {}, "", "auto")
    await store.forget_updated(ctx, spec.tenant_id, spec.source, _key(ctx, spec, period_id))
    _top_cache.clear()
    log.info("period closed", board=spec.id, period=period_id, entries=n)
    return n


async def close_due_periods(ctx: Context) -> int:
    """Periodic job: close every period whose end plus the board's close delay has passed."""
    now = ctx.clock.now()
    closed = 0
    async with ctx.db.connection() as conn:
        due = await repo.periods_ended_by(conn, now)
        boards = {}
        for d in due:
            if d["board_id"] not in boards:
                row = await repo.get_board_by_id(conn, d["board_id"])
                boards[d["board_id"]] = _spec(row) if row else None
    for d in due:
        spec = boards[d["board_id"]]
        if spec is None or not rules.is_due_for_close(spec, d["ends_at"], now):
            continue
        if await close_period(ctx, spec, d["period_id"]) is not None:
            closed += 1
    return closed


# ---------------------------------------------------------------- rebuild


async def rebuild_board(ctx: Context, spec: BoardSpec) -> dict[str, int]:
    """Recompute every open period of a board from PostgreSQL into Redis. The period row is
    locked meanwhile, so scoring of that period waits and no event falls between the read and
    the swap."""
    out: dict[str, int] = {}
    async with ctx.db.connection() as conn:
        periods = await repo.open_periods(conn, spec.id)
    for p in periods:
        period = rules.period_by_id(spec, p["period_id"])
        if period is None:
            continue
        async with ctx.db.transaction() as conn:
            if await repo.get_period(conn, spec.id, period.id, lock=True) is None:
                continue
            rows = await repo.period_scores(conn, spec.id, period.id)
            out[period.id] = await store.replace(
                ctx,
                spec.tenant_id,
                spec.source,
                _key(ctx, spec, period.id),
                (
                    (
                        rules.member_bytes(r["member_id"]),
                        rules.encode(r["score"], r["reached_at"], period),
                    )
                    for r in rows
                    if rules.clamp_score(r["score"]) > 0
                ),
                _expire_ts(spec, period),
                ctx.clock.now(),
            )
    return out


async def rebuild(ctx: Context) -> dict[str, Any]:
    async with ctx.db.connection() as conn:
        rows = await repo.all_boards(conn)
    periods = members_total = 0
    for row in rows:
        done = await rebuild_board(ctx, _spec(row))
        periods += len(done)
        members_total += sum(done.values())
    _top_cache.clear()
    return {"boards": len(rows), "periods": periods, "entries": members_total}


# ---------------------------------------------------------------- red/black


def _rb_out(row: Any, board_key: str) -> RedBlackOut:
    cfg = msgspec.convert(dict(row["config"], boardKey=board_key), RedBlackIn)
    return RedBlackOut(row["key"], row["version"], cfg, row["created_at"], row["updated_at"])


async def put_red_black(
    ctx: Context, conn: Any, tenant_id: int, key: str, data: RedBlackIn
) -> RedBlackOut:
    doc = msgspec.to_builtins(data)
    problems = rules.validate_red_black(doc)
    if not rules.KEY_RE.match(key):
        problems.append({"field": "key", "problem": "lowercase a-z, 0-9, _ or -"})
    board = await repo.get_board(conn, tenant_id, data.board_key)
    if board is None:
        problems.append({"field": "boardKey", "problem": f"no board {data.board_key!r}"})
    if problems:
        raise DomainError("RED_BLACK_CONFIG_INVALID", details={"problems": problems})
    taken = await repo.red_black_for_board(conn, board["id"])
    if taken is not None and taken["key"] != key:
        raise DomainError("RED_BLACK_BOARD_TAKEN", details={"attached": taken["key"]})
    config = {k: v for k, v in doc.items() if k != "boardKey"}
    row = await repo.upsert_red_black(conn, tenant_id, key, board["id"], config, ctx.clock.now())
    return _rb_out(row, data.board_key)


async def _red_black_and_board(conn: Any, tenant_id: int, key: str) -> tuple[Any, Any]:
    rb = await repo.get_red_black(conn, tenant_id, key)
    if rb is None:
        raise DomainError("RED_BLACK_NOT_FOUND", details={"key": key})
    board = await repo.get_board_by_id(conn, rb["board_id"])
    return rb, board


async def get_red_black(ctx: Context, tenant_id: int, key: str) -> RedBlackOut:
    async with ctx.db.connection() as conn:
        rb, board = await _red_black_and_board(conn, tenant_id, key)
    return _rb_out(rb, board["key"])


async def _publish(
    ctx: Context,
    conn: Any,
    spec: BoardSpec,
    rb: Any,
    period_id: str,
    notes: dict[int, str],
    reason: str,
    by: str,
) -> Any:
    """Snapshot red and black from the archive as a new revision (earlier ones are kept), and
    emit ``red-black.published``. Notes of the previous revision carry over unless replaced."""
    cfg = rb["config"]
    ranked = [
        (r["member_id"], r["score"]) for r in await repo.archive_ranked(conn, spec.id, period_id)
    ]
    hidden = await repo.hidden_from_black(conn, spec.tenant_id, [m for m, _ in ranked])
    red, black = rules.pick_red_black(
        ranked,
        int(cfg.get("redSize", 10)),
        int(cfg.get("blackSize", 0)),
        bool(cfg.get("blackEnabled", False)),
        int(cfg.get("minActivity", 1)),
        hidden,
    )
    before = await repo.latest_publication(conn, rb["id"], period_id)
    carried = {e["memberId"]: e.get("note", "") for e in (before["entries"] if before else [])}
    carried.update(notes)
    entries = [
        {"list": lst, "rank": r, "memberId": m, "score": s, "note": carried.get(m, "")}
        for lst, part in (("red", red), ("black", black))
        for r, m, s in part
    ]
    now = ctx.clock.now()
    pub = await repo.insert_publication(
        conn, spec.tenant_id, rb["id"], period_id, entries, reason, now, by
    )
    await outbox.emit(
        conn,
        tenant_id=spec.tenant_id,
        type="red-black.published",
        occurred_at=now,
        payload={
            "key": rb["key"],
            "boardKey": spec.key,
            "period": period_id,
            "revision": pub["revision"],
            "red": [m for _, m, _ in red],
            "black": [m for _, m, _ in black],
        },
    )
    return pub


def _pub_out(pub: Any, key: str, board_key: str) -> PublicationOut:
    return PublicationOut(
        key=key,
        board_key=board_key,
        period=pub["period_id"],
        revision=pub["revision"],
        published_at=pub["published_at"],
        published_by=pub["published_by"],
        reason=pub["note"],
        entries=[msgspec.convert(e, RedBlackEntryAdmin) for e in pub["entries"]],
    )


async def publish(
    ctx: Context,
    conn: Any,
    tenant_id: int,
    key: str,
    period_param: str,
    notes: list[NoteIn],
    reason: str,
    by: str,
) -> PublicationOut:
    """Operator correction: a new revision of a closed period's red/black board."""
    rb, board = await _red_black_and_board(conn, tenant_id, key)
    spec = _spec(board)
    period, closed = await _resolve_period(ctx, spec, period_param)
    if not closed:
        raise DomainError("LEADERBOARD_PERIOD_OPEN", details={"period": period.id})
    prow = await repo.get_period(conn, spec.id, period.id)
    if prow is None:
        raise DomainError("LEADERBOARD_PERIOD_NOT_FOUND", details={"period": period.id})
    pub = await _publish(
        ctx, conn, spec, rb, period.id, {n.member_id: n.note for n in notes}, reason, by
    )
    return _pub_out(pub, key, board["key"])


async def read_red_black(
    ctx: Context, tenant_id: int, board_key: str, period_param: str | None
) -> RedBlackView:
    spec = await board_spec(ctx, tenant_id, board_key)
    async with ctx.db.connection() as conn:
        rb = await repo.red_black_for_board(conn, spec.id)
        if rb is None:
            raise DomainError("RED_BLACK_NOT_FOUND", details={"boardKey": board_key})
        period_id = None
        if period_param not in (None, "", "latest"):
            period, _ = await _resolve_period(ctx, spec, period_param)  # type: ignore[arg-type]
            period_id = period.id
        pub = await repo.latest_publication(conn, rb["id"], period_id)
        if pub is None:
            raise DomainError("RED_BLACK_NOT_PUBLISHED", details={"period": period_param})
        black_on = bool(rb["config"].get("blackEnabled", False))
        listed = [e["memberId"] for e in pub["entries"]]
        # Opting out later still hides a member from black lists published before.
        hidden = await repo.hidden_from_black(conn, tenant_id, listed)
    shown = await _displays(ctx, tenant_id, listed)
    red, black = [], []
    for e in pub["entries"]:
        item = RedBlackEntry(e["rank"], _shown(spec, shown[e["memberId"]]), e["score"], e["note"])
        if e["list"] == "red":
            red.append(item)
        elif black_on and e["memberId"] not in hidden:
            black.append(item)
    return RedBlackView(
        rb["config"].get("title", ""),
        pub["period_id"],
        pub["revision"],
        pub["published_at"],
        red,
        black,
    )


async def set_preference(
    ctx: Context, conn: Any, tenant_id: int, member_id: int, hide: bool
) -> PreferenceOut:
    await repo.set_preference(conn, tenant_id, member_id, hide, ctx.clock.now())
    return PreferenceOut(hide)


async def live_keys(ctx: Context, conn: Any, tenant_id: int) -> list[str]:
    """Public (the launch summary): keys of the tenant's boards that are live now (a window
    board between its start and end; every other board always), in one statement."""
    now = ctx.clock.now()
    out = []
    for r in await repo.board_keys(conn, tenant_id):
        cfg = r["config"]
        if cfg.get("period") == "window":
            start, end = _dt(cfg.get("windowStart")), _dt(cfg.get("windowEnd"))
            if (start and now < start) or (end and now >= end):
                continue
        out.append(r["key"])
    return out


async def forget_member(ctx: Context, conn: Any, tenant_id: int, member_id: int) -> int:
    """Public (privacy erasure): the member leaves every board of the tenant, open periods
    and archives, in the caller's transaction. After commit, call ``boards_changed``."""
    return await repo.forget_member(conn, tenant_id, member_id)


async def boards_changed(ctx: Context, tenant_id: int) -> None:
    """After a member was forgotten: rebuild the tenant's Redis boards from PostgreSQL and
    drop the cached pages."""
    async with ctx.db.connection() as conn:
        rows = await repo.boards_for_tenants(conn, [tenant_id])
    for row in rows:
        await rebuild_board(ctx, _spec(row))
    clear_caches()
