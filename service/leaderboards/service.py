"""Boards: definitions, scoring from domain events, reads, the close job, rebuild, red/black."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import re
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from typing import Any, TypeVar

import msgspec
import structlog

from service.core import outbox, parking
from service.core.cache import Cache
from service.core.constraints import (
    cursor_invalid,
    out_of_range,
    problem,
    register_check,
    time_in_range,
    validation_failed,
)
from service.core.context import CONFIG_CACHE_TTL_S, Context
from service.core.errors import DependencyUnavailable, DomainError, register_codes
from service.core.outbox import Event
from service.core.ratelimit import RateCheck
from service.core.uow import UnitOfWork, unit_of_work
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
    LeaderboardList,
    LeaderboardOut,
    MemberShown,
    MeOnBoard,
    NoteIn,
    ParkedOut,
    PeriodOut,
    PreferenceOut,
    PublicationOut,
    RedBlackEntry,
    RedBlackEntryAdmin,
    RedBlackIn,
    RedBlackOut,
    RedBlackView,
    TeamShown,
)
from service.members import service as members
from service.teams import service as teams

log = structlog.get_logger("engage.leaderboards")

register_codes(
    {
        "LEADERBOARD_NOT_FOUND": (404, "排行榜不存在", "No such leaderboard."),
        "LEADERBOARD_KEY_CLASH": (
            409,
            "该排行榜标识已被占用",
            "This key belongs to a board that has counted with another metric, period or time "
            "zone; archive it and use a new key.",
        ),
        "LEADERBOARD_PERIOD_NOT_FOUND": (404, "该周期不存在", "No such period on this board."),
        "LEADERBOARD_PARKED": (
            409,
            "排行榜暂停计分，等待运营修正",
            "The board failed while counting events and is set aside until an operator "
            "corrects it; details give its state, reason and since when.",
        ),
        "LEADERBOARD_ARCHIVED": (
            409,
            "排行榜已归档",
            "The board is archived: it counts nothing more and its key stays taken.",
        ),
        "RED_BLACK_NOT_FOUND": (404, "红黑榜不存在", "No such red/black board."),
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
FEATURE = "leaderboards"  # the feature name of its parked definitions
TOP_CACHE_TTL_S = 1.0
DISPLAY_CACHE_TTL_S = 30.0
MAX_OFFSET = 10_000


# ---------------------------------------------------------------- small caches


TOP_CACHE = "leaderboards.top"
CONFIG_CACHE = "leaderboards.config"
DISPLAY_CACHE = "leaderboards.display"


Shown = tuple[members.MemberDisplay | None, str | None]  # display info, shown title


def top_cache(ctx: Context) -> Cache[Any, tuple[list[BoardItem], datetime | None]]:
    """Board pages, per process, single-flight: a stale page lags at most TOP_CACHE_TTL_S
    (never a wrong "my rank", which is read live)."""
    return ctx.caches.get(TOP_CACHE, TOP_CACHE_TTL_S)


def _config_cache(
    ctx: Context,
) -> Cache[tuple[int, str], tuple[Any, parking.Parked | None, BoardSpec | None] | None]:
    return ctx.caches.get(CONFIG_CACHE, CONFIG_CACHE_TTL_S)


def _display_cache(ctx: Context) -> Cache[tuple[int, int], Shown]:
    return ctx.caches.get(DISPLAY_CACHE, DISPLAY_CACHE_TTL_S, max_entries=200_000)


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
        scope=c.get("scope", "member"),
        team_set=c.get("teamSet"),
    )


def _dt(v: Any) -> datetime | None:
    return None if v is None else msgspec.convert(v, datetime)


_FIELD_AT = re.compile(r"at `\$\.(\w+)")


def _stored_config(config: dict[str, Any]) -> LeaderboardIn:
    """The stored document; a field that no longer decodes (written by an older version, or
    by hand) is left out rather than failing the operator's read of a parked board."""
    doc = dict(config)
    for _ in range(len(doc) + 1):
        try:
            return msgspec.convert(doc, LeaderboardIn)
        except msgspec.ValidationError as exc:
            m = _FIELD_AT.search(str(exc))
            if m is None or m[1] not in doc:
                break
            doc.pop(m[1])
    return LeaderboardIn(metric=str(config.get("metric", "")), period=str(config.get("period", "")))


def _board_out(
    row: Any, red_black: str | None, parked: parking.Parked | None = None
) -> LeaderboardOut:
    state = "archived" if row["archived_at"] else parked.state if parked else "active"
    return LeaderboardOut(
        key=row["key"],
        version=row["version"],
        config=_stored_config(row["config"]),
        red_black=red_black,
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        state=state,
        parked=ParkedOut(parked.reason, parked.parked_at) if parked else None,
        archived_at=row["archived_at"],
    )


def board_problems(data: LeaderboardIn) -> list[dict]:
    """Every rule problem of a board definition (times stay datetimes for the checks)."""
    doc = msgspec.to_builtins(data)
    return rules.validate_board(dict(doc, windowStart=data.window_start, windowEnd=data.window_end))


register_check(LeaderboardIn, board_problems)


async def put_board(uow: UnitOfWork, tenant_id: int, key: str, data: LeaderboardIn) -> Any:
    """Create or change a board. Every problem is reported at once (422) and nothing changes."""
    ctx, conn = uow.ctx, uow.conn
    if not rules.KEY_RE.match(key):
        raise validation_failed(
            [problem("path", "key", "FORMAT_INVALID", "lowercase a-z, 0-9, _ or -")]
        )
    doc = msgspec.to_builtins(data)
    problems = board_problems(data)
    if problems:
        raise validation_failed(problems)
    now = ctx.clock.now()
    existing = await repo.lock_board(conn, tenant_id, key)
    parked = None
    if existing is None:
        row = await repo.insert_board(conn, tenant_id, key, doc, now)
        if row is None:
            raise DomainError("CONFLICT")
    else:
        if existing["archived_at"] is not None:
            raise DomainError(
                "LEADERBOARD_ARCHIVED",
                details={"key": key, "state": "archived", "archivedAt": existing["archived_at"]},
            )
        # A board that never counted anything holds no scores the change could mislabel: it
        # is corrected in place. Once it counted, its identity is fixed.
        if rules.identity_of(existing["config"]) != rules.identity_of(
            doc
        ) and await repo.has_counted(conn, existing["id"]):
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
        # A parked board resumes: the dispatcher replays the events it missed, then it counts.
        if await parking.resume(conn, FEATURE, row["id"]):
            parked = await parking.state_of(conn, FEATURE, row["id"])
            uow.wake_dispatcher()
    uow.after_commit(functools.partial(ctx.caches.changed, CONFIG_CACHE, (tenant_id, key)))
    rb = await repo.red_black_for_board(conn, row["id"])
    return _board_out(row, rb["key"] if rb else None, parked)


async def archive_board(uow: UnitOfWork, tenant_id: int, key: str) -> LeaderboardOut:
    """Retire a board: it counts nothing more (its subscriber skips it), members get 409
    LEADERBOARD_ARCHIVED, and operators still read its definition and entries. The key stays
    taken, so nothing new is ever shown under an archived board's name. Idempotent."""
    ctx, conn = uow.ctx, uow.conn
    existing = await repo.lock_board(conn, tenant_id, key)
    if existing is None:
        raise DomainError("LEADERBOARD_NOT_FOUND", details={"key": key})
    row = await repo.archive_board(conn, existing["id"], ctx.clock.now())
    await parking.forget(conn, FEATURE, row["id"])
    uow.after_commit(functools.partial(ctx.caches.changed, CONFIG_CACHE, (tenant_id, key)))
    rb = await repo.red_black_for_board(conn, row["id"])
    return _board_out(row, rb["key"] if rb else None)


def _rb_key(rb: Any) -> str | None:
    return rb["key"] if rb else None


async def list_boards(ctx: Context, tenant_id: int) -> LeaderboardList:
    async with ctx.db.connection() as conn:
        rows = await repo.tenant_boards(conn, tenant_id)
        states = await parking.states_of(conn, FEATURE, [r["id"] for r in rows])
        rbs = {r["id"]: await repo.red_black_for_board(conn, r["id"]) for r in rows}
    return LeaderboardList(
        [_board_out(r, _rb_key(rbs[r["id"]]), states.get(r["id"])) for r in rows]
    )


async def get_board(ctx: Context, tenant_id: int, key: str) -> LeaderboardOut:
    async with ctx.db.connection() as conn:
        row = await repo.get_board(conn, tenant_id, key)
        if row is None:
            raise DomainError("LEADERBOARD_NOT_FOUND", details={"key": key})
        rb = await repo.red_black_for_board(conn, row["id"])
        parked = await parking.state_of(conn, FEATURE, row["id"])
    return _board_out(row, rb["key"] if rb else None, parked)


async def board_spec(
    ctx: Context, tenant_id: int, key: str, *, operator: bool = False
) -> BoardSpec:
    """The board's rules, cached CONFIG_CACHE_TTL_S. States are answered as states: archived
    (members only) and parked are 409s. A definition whose rules raise is parked here too,
    so a read never turns into a 500."""

    async def load() -> tuple[Any, parking.Parked | None, BoardSpec | None] | None:
        async with ctx.db.connection() as conn:
            row = await repo.get_board(conn, tenant_id, key)
            if row is None:
                return None
            parked = await parking.state_of(conn, FEATURE, row["id"])
        if parked is not None and parked.state == "parked":
            return row, parked, None
        try:
            spec = _spec(row)
            now = ctx.clock.now()
            rules.period_for(spec, now)
            rules.current_period(spec, now)
            rules.previous_period(spec, now)
        except Exception as exc:
            await parking.park(ctx, FEATURE, tenant_id, row["id"], exc, [], await _cursor(ctx))
            return row, parking.Parked("parked", parking.reason_of(exc), ctx.clock.now()), None
        return row, parked, spec

    got = await _config_cache(ctx).get((tenant_id, key), load)
    if got is None:
        raise DomainError("LEADERBOARD_NOT_FOUND", details={"key": key})
    row, parked, spec = got
    if row["archived_at"] is not None and not operator:
        raise DomainError(
            "LEADERBOARD_ARCHIVED",
            details={"key": key, "state": "archived", "archivedAt": row["archived_at"]},
        )
    if spec is None:
        raise _parked_error(
            key, parked or parking.Parked("parked", "", ctx.clock.now()), operator=operator
        )
    return spec


MEMBER_PARKED_REASON = "The board is paused until the operator corrects it."


def _parked_error(key: str, parked: parking.Parked, *, operator: bool) -> DomainError:
    """409 LEADERBOARD_PARKED. Operators see the stored reason (it may quote the failure);
    members get a fixed sentence, never internal exception text."""
    return DomainError(
        "LEADERBOARD_PARKED",
        details={
            "key": key,
            "state": parked.state,
            "reason": parked.reason if operator else MEMBER_PARKED_REASON,
            "parkedAt": parked.parked_at,
        },
    )


async def _cursor(ctx: Context) -> tuple[int, int]:
    """The first outbox position the boards subscriber has not passed yet."""
    async with ctx.db.connection() as conn:
        cur = await conn.fetchrow(
            "SELECT last_txid, last_id FROM outbox_cursors WHERE subscriber = $1", SUBSCRIBER
        )
    return (cur["last_txid"], cur["last_id"] + 1) if cur else (0, 0)


# ---------------------------------------------------------------- scoring


def _key(ctx: Context, spec: BoardSpec, period_id: str) -> str:
    return store.period_key(ctx, spec.tenant_id, spec.source, spec.id, period_id)


def _expire_ts(spec: BoardSpec, period: Period) -> int:
    at = rules.expires_at(spec, period)
    return 0 if at is None else int(at.timestamp())


def _countable(at: Any) -> bool:
    """An aware time within the representable range (constraints.TIME_MIN .. TIME_MAX)."""
    return isinstance(at, datetime) and at.tzinfo is not None and time_in_range(at)


def _hits(spec: BoardSpec, events: list[Event]) -> list[tuple[BoardSpec, Period, Event, int]]:
    """What each event adds to each period of one board (pure; raises on a broken board)."""
    hits = []
    for e in events:
        if not _countable(e.occurred_at):
            continue  # stored before inputs were bounded: no board can place it; skip, never park
        if spec.starts_at is not None and e.occurred_at < spec.starts_at:
            continue
        delta = rules.contribution(spec, e.type, e.payload)
        if delta == 0:
            continue
        period = rules.period_for(spec, e.occurred_at)
        if period is not None:
            hits.append((spec, period, e, delta))
    return hits


async def on_events(ctx: Context, events: list[Event], only: int | None = None) -> None:
    """Outbox subscriber: add each event to every period of every board it feeds.

    Each board is isolated (service.core.parking): a board whose rules raise on these events
    is parked with the reason, and the others count them. If the batch then fails as a whole
    (not an outage), every board is applied alone and the ones that still fail are parked;
    when all fail, the fault is the events', and the dispatcher's retry handles it.
    ``only``: apply to that one board (the catch-up of a corrected board), failures raise.
    """
    scored = [e for e in events if e.member_id is not None]
    if not scored:
        return
    by_tenant: dict[int, list[Event]] = defaultdict(list)
    for e in scored:
        by_tenant[e.tenant_id].append(e)
    async with ctx.db.connection() as conn:
        rows = await repo.boards_for_tenants(conn, sorted(by_tenant))
        if only is not None:
            rows = [r for r in rows if r["id"] == only]
            skip: set[int] = set()
        else:
            skip = await parking.parked_ids(conn, FEATURE, [r["id"] for r in rows])
    per_board: dict[int, tuple[BoardSpec, list[Any]]] = {}
    for row in rows:
        if row["id"] in skip:
            continue
        try:
            spec = _spec(row)
            hits = _hits(spec, by_tenant[row["tenant_id"]])
        except Exception as exc:
            if only is not None or outbox.is_outage(exc):
                raise
            await _park(ctx, row["tenant_id"], row["id"], row["key"], exc, events)
            continue
        if hits:
            per_board[spec.id] = (spec, hits)
    if not per_board:
        return
    await _to_teams(ctx, per_board)
    try:
        await _apply_hits(ctx, [h for _, hs in per_board.values() for h in hs])
    except Exception as exc:
        if only is not None or outbox.is_outage(exc) or len(per_board) == 1:
            raise
        failed = []
        for spec, hs in per_board.values():
            try:
                await _apply_hits(ctx, hs)
            except Exception as one:
                if outbox.is_outage(one):
                    raise
                failed.append((spec, one))
        if len(failed) == len(per_board):
            raise
        for spec, error in failed:
            await _park(ctx, spec.tenant_id, spec.id, spec.key, error, events)


async def _to_teams(ctx: Context, per_board: dict[int, tuple[BoardSpec, list[Any]]]) -> None:
    """On team boards the entry is the team the member was in when the event happened (asked
    of the teams feature); events of members in none of the set's teams count for nobody."""
    team_boards = [b for b, (spec, _) in per_board.items() if spec.scope == "team"]
    if not team_boards:
        return
    async with ctx.db.connection() as conn:
        for b in team_boards:
            spec, hits = per_board[b]
            ids = [
                t.id for t in await teams.teams_in_set(conn, spec.tenant_id, spec.team_set or "")
            ]
            got = await teams.teams_at(
                conn, spec.tenant_id, ids, [(e.member_id, e.occurred_at) for _, _, e, _ in hits]
            )
            mapped = []
            for sp, period, e, delta in hits:
                team = got.get((e.member_id, e.occurred_at))
                if team is not None:
                    mapped.append((sp, period, dataclasses.replace(e, member_id=team), delta))
            if mapped:
                per_board[b] = (spec, mapped)
            else:
                del per_board[b]


async def _park(
    ctx: Context, tenant_id: int, board_id: int, key: str, exc: BaseException, events: list[Event]
) -> None:
    await parking.park(ctx, FEATURE, tenant_id, board_id, exc, events)
    await ctx.caches.changed(CONFIG_CACHE, (tenant_id, key))


async def catch_up(ctx: Context, events: list[Event], board_id: int) -> None:
    """Replay missed events to one corrected board (dispatcher catch-up, see parking)."""
    await on_events(ctx, events, only=board_id)


async def _apply_hits(ctx: Context, hits: list[tuple[BoardSpec, Period, Event, int]]) -> None:
    """One PostgreSQL transaction: the periods (locked against a concurrent close), the
    dedup rows (at-least-once delivery counts once), the score upserts, then the totals read
    under row locks and written to Redis in one round trip before commit. Writing absolute
    totals while holding the row locks means no later writer can be overtaken by an earlier
    one, and a redelivered batch only re-sets the same values."""
    async with ctx.db.transaction() as conn:
        if not hits:
            return
        status = await repo.ensure_periods(
            conn, [(s.tenant_id, s.id, p.id, p.start, p.end) for s, p, _, _ in hits]
        )
        hits = [h for h in hits if status.get((h[0].id, h[1].id), ("",))[0] == "open"]
        fresh = await repo.mark_applied(conn, [(s.id, p.id, e.event_id) for s, p, e, _ in hits])
        adds: dict[tuple[int, str, int], list[Any]] = {}
        for spec, period, e, delta in hits:
            if (spec.id, e.event_id) not in fresh or e.member_id is None:
                continue
            k = (spec.id, period.id, e.member_id)
            cur = adds.get(k)
            if cur is None:
                adds[k] = [spec.tenant_id, spec.id, period.id, e.member_id, delta, e.occurred_at, 1]
            else:
                cur[4] += delta
                cur[5] = max(cur[5], e.occurred_at)
                cur[6] += 1
        await repo.add_scores(conn, [tuple(v) for v in adds.values()])
        # Totals of everything the batch touched (replays too, so a lost Redis write heals).
        wanted = {(s.id, p.id, e.member_id): (s, p) for s, p, e, _ in hits}
        totals = await repo.lock_scores(conn, list(wanted))  # type: ignore[arg-type]
        groups: dict[tuple[int, str], dict[str, tuple[int, bool, list[store.Update]]]] = (
            defaultdict(dict)
        )
        for t in totals:
            spec, period = wanted[(t["board_id"], t["period_id"], t["member_id"])]
            key = _key(ctx, spec, period.id)
            slot = groups[(spec.tenant_id, spec.source)].setdefault(
                key, (_expire_ts(spec, period), status[(spec.id, period.id)][1], [])
            )
            enc = rules.encode(t["score"], t["reached_at"], period)
            keep = rules.clamp_score(t["score"]) > 0
            slot[2].append((rules.member_bytes(t["member_id"]), enc if keep else None))
        skipped = await store.apply(
            ctx,
            {g: [(k, *rest) for k, rest in keys.items()] for g, keys in groups.items()},
            ctx.clock.now(),
        )
        if skipped:
            # Those sets were lost; PostgreSQL has the scores, the next read rebuilds them.
            log.warning("board sets not built; left for the next read to rebuild", keys=skipped)


# ---------------------------------------------------------------- reads

_T = TypeVar("_T")
_building: dict[str, asyncio.Lock] = {}
rebuilt_on_read = 0  # sets rebuilt by a read in this process (tests check single flight)


async def _built(
    ctx: Context, spec: BoardSpec, period: Period, read: Callable[[], Awaitable[_T]]
) -> _T:
    """Run a read of an open period's set; when the set is not built (Redis lost it, or it
    predates the encoding), rebuild the period from PostgreSQL first, then read again."""
    for _ in range(3):
        try:
            return await read()
        except store.NotBuilt:
            await ensure_built(ctx, spec, period)
    raise DependencyUnavailable(
        details={"dependency": "redis", "problem": "the board could not be rebuilt"}
    )


async def ensure_built(ctx: Context, spec: BoardSpec, period: Period) -> bool:
    """Rebuild one period set from PostgreSQL unless it is built; True when it rebuilt.

    Single flight: one rebuild per set per process (a lock per key), and across processes the
    period row lock (the second one finds the set built and stops). Scoring of the period
    waits on the same row lock, so no event falls between the read and the swap."""
    key = _key(ctx, spec, period.id)
    if len(_building) > 10_000:
        _building.clear()
    async with _building.setdefault(key, asyncio.Lock()):
        if await store.is_built(ctx, key):
            return False
        async with ctx.db.transaction() as conn:
            prow = await repo.get_period(conn, spec.id, period.id, lock=True)
            if await store.is_built(ctx, key):
                return False
            if prow is None:
                await store.build_empty(ctx, key, _rebuilt_expiry(ctx, spec, period))
            else:
                await _replace_period(ctx, conn, spec, period)
        global rebuilt_on_read
        rebuilt_on_read += 1
        log.info("board set rebuilt from PostgreSQL", board=spec.id, period=period.id)
        top_cache(ctx).clear()
        return True


def _rebuilt_expiry(ctx: Context, spec: BoardSpec, period: Period) -> int:
    """A rebuilt set must outlive the read that asked for it, even past its grace time (the
    close job archives it soon after)."""
    at = _expire_ts(spec, period)
    soon = int(ctx.clock.now().timestamp()) + 3600
    return at if at == 0 or at > soon else soon


async def _replace_period(ctx: Context, conn: Any, spec: BoardSpec, period: Period) -> int:
    rows = await repo.period_scores(conn, spec.id, period.id)
    return await store.replace(
        ctx,
        spec.tenant_id,
        spec.source,
        _key(ctx, spec, period.id),
        (
            (rules.member_bytes(r["member_id"]), rules.encode(r["score"], r["reached_at"], period))
            for r in rows
            if rules.clamp_score(r["score"]) > 0
        ),
        _rebuilt_expiry(ctx, spec, period),
        ctx.clock.now(),
    )


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
        raise out_of_range(name, value, lo, hi)


def _offset(cursor: str | None) -> int:
    if cursor is None or cursor == "":
        return 0
    if not cursor.isdigit() or int(cursor) > MAX_OFFSET:
        raise cursor_invalid()
    return int(cursor)


async def _displays(ctx: Context, tenant_id: int, member_ids: list[int]) -> dict[int, Shown]:
    """Display info and the title each member shows (asked of the badges feature), cached
    per process for DISPLAY_CACHE_TTL_S."""
    from service.badges import service as badges

    cache = _display_cache(ctx)
    out: dict[int, Shown] = {}
    missing = []
    for m in member_ids:
        hit = cache.peek((tenant_id, m))
        if hit is not None:
            out[m] = hit
        else:
            missing.append(m)
    if missing:
        async with ctx.db.connection() as conn:
            found = await members.display_info(conn, tenant_id, missing)
            titles = await badges.shown_titles(ctx, conn, tenant_id, missing)
        for m in missing:
            out[m] = (found.get(m), titles.get(m))
            cache.put((tenant_id, m), out[m])
    return out


def _shown(spec: BoardSpec, shown: Shown) -> MemberShown:
    d, title = shown
    if d is None or spec.display == "anonymous":
        return MemberShown(members.ANONYMOUS, "")
    name = d.nickname if spec.display == "full" and d.nickname else d.masked_nickname
    return MemberShown(name, d.avatar_url if spec.show_avatar else "", title)


async def _team_names(ctx: Context, tenant_id: int, ids: list[int]) -> dict[int, TeamShown]:
    async with ctx.db.connection() as conn:
        found = await teams.teams_by_ids(conn, tenant_id, ids)
    return {
        i: TeamShown(found[i].key, found[i].name) if i in found else TeamShown("", "") for i in ids
    }


async def _entry_of(ctx: Context, spec: BoardSpec, member_id: int) -> int | None:
    """Whose place on the board is "mine": me, or on a team board my team now (None: in none
    of the set's teams)."""
    if spec.scope != "team":
        return member_id
    async with ctx.db.connection() as conn:
        ids = [t.id for t in await teams.teams_in_set(conn, spec.tenant_id, spec.team_set or "")]
        now = ctx.clock.now()
        got = await teams.teams_at(conn, spec.tenant_id, ids, [(member_id, now)])
    return got.get((member_id, now))


async def _items(
    ctx: Context, spec: BoardSpec, ranked: list[tuple[int, int, int]], me: int | None
) -> list[BoardItem]:
    """(rank, member, score) -> items with display info."""
    if spec.scope == "team":
        names = await _team_names(ctx, spec.tenant_id, [m for _, m, _ in ranked])
        return [
            BoardItem(r, MemberShown(names[m].name, ""), s, m == me, names[m]) for r, m, s in ranked
        ]
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
            min_enc = rules.min_encoded(spec.min_score)
            pairs, upd = await _built(
                ctx,
                spec,
                period,
                lambda: store.top(ctx, spec.tenant_id, spec.source, key, offset, limit, min_enc),
            )
            ranked = [
                (offset + i + 1, rules.member_of(m), rules.decode_score(s))
                for i, (m, s) in enumerate(pairs)
            ]
        return await _items(ctx, spec, ranked, None), upd

    return await top_cache(ctx).get(
        (spec.tenant_id, spec.id, period.id, closed, offset, limit), load
    )


async def _my_place(
    ctx: Context,
    spec: BoardSpec,
    period: Period,
    closed: bool,
    member_id: int,
    rate: RateCheck | None = None,
) -> MeOnBoard:
    """Always exact: read on every request, never from the page cache; the live read counts
    the request's rate limit ``rate`` in the same call."""
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
    k = _key(ctx, spec, period.id)
    got = await _built(
        ctx, spec, period, lambda: store.me(ctx, k, rules.member_bytes(member_id), rate)
    )
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
    rate: RateCheck | None = None,
) -> BoardPage:
    """A page of the board (cached in process, TOP_CACHE_TTL_S) and my exact place, read
    live in one Redis call that also counts the request's rate limit ``rate``."""
    _check_limit("limit", limit, 1, rules.MAX_LIMIT)
    offset = _offset(cursor)
    spec = await board_spec(ctx, tenant_id, key)
    period, closed = await _resolve_period(ctx, spec, period_param)
    cached, upd = await _top_page(ctx, spec, period, closed, offset, limit)
    entry = await _entry_of(ctx, spec, member_id)
    me = (
        MeOnBoard(None, 0, None)
        if entry is None
        else await _my_place(ctx, spec, period, closed, entry, rate)
    )
    items = cached
    if me.rank is not None and offset < me.rank <= offset + len(cached):
        # The cached list is shared: mark "me" on a copy, never in place.
        items = list(cached)
        i = me.rank - offset - 1
        items[i] = msgspec.structs.replace(items[i], is_me=True)
    nxt = str(offset + limit) if len(cached) == limit and offset + limit <= MAX_OFFSET else None
    return BoardPage(_period_out(period, closed), upd, items, me, nxt)


async def around_me(
    ctx: Context,
    tenant_id: int,
    member_id: int,
    key: str,
    period_param: str,
    radius: int,
    rate: RateCheck | None = None,
) -> BoardPage:
    """The members around me; a live period in one Redis call that also counts ``rate``."""
    _check_limit("radius", radius, 1, rules.MAX_RADIUS)
    spec = await board_spec(ctx, tenant_id, key)
    period, closed = await _resolve_period(ctx, spec, period_param)
    ranked: list[tuple[int, int, int]] = []
    me = MeOnBoard(None, 0, None)
    entry = await _entry_of(ctx, spec, member_id)
    if entry is None:
        return BoardPage(_period_out(period, closed), None, [], me)
    member_id = entry
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
        got = await _built(
            ctx,
            spec,
            period,
            lambda: store.around(ctx, k, rules.member_bytes(member_id), radius, rate),
        )
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
    if spec.scope == "team":
        # A team board: where my friends' teams (and mine) stand.
        teams_now = [await _entry_of(ctx, spec, m) for m in sorted(ids)]
        member_id = await _entry_of(ctx, spec, member_id) or 0
        ids = {t for t in teams_now if t is not None}
    ordered = sorted(ids)
    scored: list[tuple[float, int]] = []
    if closed:
        async with ctx.db.connection() as conn:
            rows = await repo.archive_members(conn, spec.id, period.id, ordered)
        scored = [(-r["rank"], r["member_id"]) for r in rows if r["score"] >= spec.min_score]
    else:
        k = _key(ctx, spec, period.id)
        got = await _built(
            ctx,
            spec,
            period,
            lambda: store.scores_of(ctx, k, [rules.member_bytes(m) for m in ordered]),
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
    spec = await board_spec(ctx, tenant_id, key, operator=True)
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
    async with unit_of_work(ctx) as uow:
        conn = uow.conn
        row = await repo.get_period(conn, spec.id, period_id, lock=True)
        if row is None or row["status"] == "closed":
            return None
        n = await repo.archive(conn, spec.id, period_id, period.start, period.unit)
        await repo.mark_closed(conn, spec.id, period_id, now, n)
        rb = await repo.red_black_for_board(conn, spec.id)
        if rb is not None:
            await _publish(uow, spec, rb, period_id, {}, "", "auto")
    await store.forget_updated(ctx, spec.tenant_id, spec.source, _key(ctx, spec, period_id))
    top_cache(ctx).clear()
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
            out[period.id] = await _replace_period(ctx, conn, spec, period)
    return out


async def rebuild(ctx: Context) -> dict[str, Any]:
    async with ctx.db.connection() as conn:
        rows = await repo.all_boards(conn)
    periods = members_total = 0
    for row in rows:
        done = await rebuild_board(ctx, _spec(row))
        periods += len(done)
        members_total += sum(done.values())
    top_cache(ctx).clear()
    return {"boards": len(rows), "periods": periods, "entries": members_total}


# ---------------------------------------------------------------- red/black


def _rb_out(row: Any, board_key: str) -> RedBlackOut:
    cfg = msgspec.convert(dict(row["config"], boardKey=board_key), RedBlackIn)
    return RedBlackOut(row["key"], row["version"], cfg, row["created_at"], row["updated_at"])


async def put_red_black(uow: UnitOfWork, tenant_id: int, key: str, data: RedBlackIn) -> RedBlackOut:
    ctx, conn = uow.ctx, uow.conn
    doc = msgspec.to_builtins(data)
    problems = rules.validate_red_black(doc)
    if not rules.KEY_RE.match(key):
        problems.append(
            {
                "source": "path",
                "path": "key",
                "code": "FORMAT_INVALID",
                "problem": "lowercase a-z, 0-9, _ or -",
            }
        )
    board = await repo.get_board(conn, tenant_id, data.board_key)
    if board is None:
        problems.append(
            {
                "source": "body",
                "path": "boardKey",
                "code": "NOT_FOUND",
                "problem": f"no board {data.board_key!r}",
            }
        )
    if problems or board is None:
        raise validation_failed(problems)
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
    uow: UnitOfWork,
    spec: BoardSpec,
    rb: Any,
    period_id: str,
    notes: dict[int, str],
    reason: str,
    by: str,
) -> Any:
    """Snapshot red and black from the archive as a new revision (earlier ones are kept), and
    emit ``red-black.published``. Notes of the previous revision carry over unless replaced."""
    ctx, conn = uow.ctx, uow.conn
    cfg = rb["config"]
    ranked = [
        (r["member_id"], r["score"]) for r in await repo.archive_ranked(conn, spec.id, period_id)
    ]
    team_board = spec.scope == "team"
    hidden = (
        set()
        if team_board
        else await repo.hidden_from_black(conn, spec.tenant_id, [m for m, _ in ranked])
    )
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
    uow.emit(
        tenant_id=spec.tenant_id,
        type="red-black.published",
        occurred_at=now,
        payload={
            "key": rb["key"],
            "boardKey": spec.key,
            "period": period_id,
            "revision": pub["revision"],
            # Team boards list teams apart: followers of "red" (ceremonies, badges) take its
            # entries for members.
            "red": [] if team_board else [m for _, m, _ in red],
            "black": [] if team_board else [m for _, m, _ in black],
            "scope": spec.scope,
            **(
                {"redTeams": [m for _, m, _ in red], "blackTeams": [m for _, m, _ in black]}
                if team_board
                else {}
            ),
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
    uow: UnitOfWork,
    tenant_id: int,
    key: str,
    period_param: str,
    notes: list[NoteIn],
    reason: str,
    by: str,
) -> PublicationOut:
    """Operator correction: a new revision of a closed period's red/black board."""
    ctx, conn = uow.ctx, uow.conn
    rb, board = await _red_black_and_board(conn, tenant_id, key)
    spec = _spec(board)
    period, closed = await _resolve_period(ctx, spec, period_param)
    if not closed:
        raise DomainError("LEADERBOARD_PERIOD_OPEN", details={"period": period.id})
    prow = await repo.get_period(conn, spec.id, period.id)
    if prow is None:
        raise DomainError("LEADERBOARD_PERIOD_NOT_FOUND", details={"period": period.id})
    pub = await _publish(uow, spec, rb, period.id, {n.member_id: n.note for n in notes}, reason, by)
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
            period, _ = await _resolve_period(ctx, spec, period_param)
            period_id = period.id
        pub = await repo.latest_publication(conn, rb["id"], period_id)
        if pub is None:
            raise DomainError("RED_BLACK_NOT_PUBLISHED", details={"period": period_param})
        black_on = bool(rb["config"].get("blackEnabled", False))
        listed = [e["memberId"] for e in pub["entries"]]
        # Opting out later still hides a member from black lists published before.
        hidden = await repo.hidden_from_black(conn, tenant_id, listed)
    red, black = [], []
    if spec.scope == "team":
        names = await _team_names(ctx, tenant_id, listed)
        hidden = set()
    else:
        shown = await _displays(ctx, tenant_id, listed)
    for e in pub["entries"]:
        if spec.scope == "team":
            t = names[e["memberId"]]
            item = RedBlackEntry(e["rank"], MemberShown(t.name, ""), e["score"], e["note"], t)
        else:
            item = RedBlackEntry(
                e["rank"], _shown(spec, shown[e["memberId"]]), e["score"], e["note"]
            )
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
    uow: UnitOfWork, tenant_id: int, member_id: int, hide: bool
) -> PreferenceOut:
    ctx, conn = uow.ctx, uow.conn
    await repo.set_preference(conn, tenant_id, member_id, hide, ctx.clock.now())
    return PreferenceOut(hide)


# ---------------------------------------------------------------- public metric rules
# Team PKs count the same metrics as boards, ranked the same way: they use these functions
# instead of copying the rules.

METRIC_EVENT_TYPES = rules.EVENT_TYPES


def metric_problems(doc: dict[str, Any]) -> list[dict[str, str]]:
    """Problems (``{source, path, code, problem}``) of a metric document: ``metric``
    (points | growth | checkins | eventValue | eventCount), ``eventType``, ``campaign``,
    ``valueScale``."""
    return rules.validate_metric(doc)


def metric_spec(
    tenant_id: int,
    metric: str,
    *,
    event_type: str | None = None,
    campaign: str | None = None,
    value_scale: float = 1.0,
) -> BoardSpec:
    """A metric as the scoring rules take it (a board spec without periods)."""
    return BoardSpec(
        id=0,
        tenant_id=tenant_id,
        key="",
        metric=metric,
        period="allTime",
        timezone="Asia/Shanghai",
        event_type=event_type,
        campaign=campaign,
        value_scale=value_scale,
    )


def metric_contribution(spec: BoardSpec, type_: str, payload: dict[str, Any]) -> int:
    """What one domain event adds to the metric (0: nothing), reversals negative."""
    return rules.contribution(spec, type_, payload)


def window_period(start: datetime, end: datetime) -> Period:
    """A window as a board period, for ``rank_score``."""
    return Period("window", start, end, rules.tick_unit(start, end))


def rank_score(score: int, reached_at: datetime, period: Period) -> float:
    """The sorted-set score boards use: higher score first, then earlier reach (exact)."""
    return rules.encode(score, reached_at, period)


def rank_decode(encoded: float) -> int:
    """The score inside a ``rank_score``."""
    return rules.decode_score(encoded)


def entry_bytes(entry_id: int) -> bytes:
    """The sorted-set member of an entry id (smaller id first among exact ties)."""
    return rules.member_bytes(entry_id)


def entry_of(raw: bytes) -> int:
    return rules.member_of(raw)


async def live_keys(ctx: Context, conn: Any, tenant_id: int) -> list[str]:
    """Public (the launch summary): keys of the tenant's boards that are live now (a window
    board between its start and end; every other board always), in one statement."""
    return live_keys_from(await repo.board_keys(conn, tenant_id), ctx.clock.now())


def live_keys_from(rows: Iterable[Any], now: datetime) -> list[str]:
    """Public: ``live_keys`` from the caller's rows of the tenant's boards (``key, config``,
    by key)."""
    out = []
    for r in rows:
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
    # Cached top pages and display names, in every process.
    await ctx.caches.changed(TOP_CACHE)
    await ctx.caches.changed(DISPLAY_CACHE)
