"""Badges and titles: definitions, progress from domain events, earning, backfill, views.

Earning is exactly once by unique keys, not by care: an outbox event counts once per badge
(``badge_events_applied``), a badge is earned once per member and period (``member_badges``),
its reward is credited under an idempotency key derived from that row, and its ceremony is
keyed by the ``badge.earned`` event. Redelivered or raced events therefore change nothing.

Each definition is processed in its own transaction: a definition that fails is parked with its
reason (``status = parked``) and every other definition, feature and tenant keeps going.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import asyncpg
import msgspec
import structlog

from service.badges import repository as repo
from service.badges import rules
from service.badges.rules import BadgeSpec
from service.badges.schemas import (
    AwardOut,
    BackfillOut,
    BadgeCatalogue,
    BadgeIn,
    BadgeList,
    BadgeOut,
    BadgeView,
    EarnedBadge,
    MyBadges,
    Progress,
    ShownTitleOut,
    TitleOut,
)
from service.core import outbox, parking
from service.core.constraints import validation_failed
from service.core.context import Context
from service.core.errors import DomainError, register_codes
from service.core.outbox import Event
from service.core.tenancy import get_tenant
from service.core.uow import UnitOfWork

log = structlog.get_logger("engage.badges")

register_codes(
    {
        "BADGE_NOT_FOUND": (404, "徽章不存在", "No such badge."),
        "TITLE_NOT_HELD": (422, "尚未获得该头衔", "You do not hold this title."),
    }
)

SUBSCRIBER = "badges"
FEATURE = "badges"  # the name of its definitions in core parking
# Every event type some criterion kind can count; the subscriber asks for these only.
EVENT_TYPES = sorted(
    rules.DOMAIN_EVENT_TYPES | {"member.event", "red-black.published", "badge.earned"}
)
BACKFILL_PAGE = 2000
HIDDEN_NAME = {"zh": "神秘徽章", "en": "Hidden badge"}


# ---------------------------------------------------------------- definitions


def _spec(row: Any, tz: str = "Asia/Shanghai") -> BadgeSpec:
    return rules.spec_from(row["id"], row["tenant_id"], row["key"], row["config"], tz)


def _out(row: Any, parked: parking.Parked | None = None) -> BadgeOut:
    cfg = dict(row["config"])
    cfg.pop("timezone", None)
    try:
        definition: BadgeIn | None = msgspec.convert(cfg, BadgeIn)
    except msgspec.ValidationError:
        definition = None  # a stored document that no longer reads (it gets parked)
    return BadgeOut(
        row["key"],
        row["version"],
        parked.state if parked else "active",
        parked.reason if parked else "",
        parked.parked_at if parked else None,
        definition,
        row["backfilled_at"],
        row["created_at"],
        row["updated_at"],
    )


async def _known(
    ctx: Context, conn: asyncpg.Connection, tenant_id: int, data: BadgeIn
) -> dict[str, Any]:
    """What a definition may reference: brand event types with rules, boards with a red/black
    board, check-in campaigns, the level ladder, other badges. Asked of each feature's public
    service functions."""
    from service.checkins import service as checkins
    from service.events import service as events
    from service.leaderboards import service as boards
    from service.points import service as points

    types = {r.rule.event_type for r in await events.list_rules(conn, tenant_id)}
    board_keys: set[str] = set()
    campaigns: set[str] = set()
    for c in data.criteria:
        board = getattr(c, "board", None)
        if isinstance(board, str):
            try:
                out = await boards.get_board(ctx, tenant_id, board)
            except DomainError:
                continue
            if out.red_black is not None:
                board_keys.add(board)
        campaign = getattr(c, "campaign", None)
        if isinstance(campaign, str) and await checkins.find_campaign(
            ctx, conn, tenant_id, campaign, fresh=True
        ):
            campaigns.add(campaign)
    ladder = await points.ladder_of(ctx, conn, tenant_id)
    badges = {r["key"] for r in await repo.list_definitions(conn, tenant_id)}
    return {
        "known_event_types": types,
        "known_boards": board_keys,
        "level_count": len(ladder[0].levels) if ladder else None,
        "known_campaigns": campaigns,
        "known_badges": badges,
    }


async def put_definition(uow: UnitOfWork, tenant_id: int, key: str, data: BadgeIn) -> BadgeOut:
    """Create or change a badge. Every problem at once as 422 VALIDATION_FAILED
    (``details.problems``), nothing saved. A change of criteria, repeat or window rebuilds
    progress from history (the backfill job); earned badges stay earned."""
    ctx, conn = uow.ctx, uow.conn
    config = msgspec.to_builtins(data)
    known = await _known(ctx, conn, tenant_id, data)
    problems = rules.problems(config, **known)
    existing = await repo.get_definition(conn, tenant_id, key, lock=True)
    tenant = await get_tenant(conn, tenant_id)
    tz = tenant.timezone if tenant else "Asia/Shanghai"
    if not problems:
        others = [
            _spec(r, tz) for r in await repo.list_definitions(conn, tenant_id) if r["key"] != key
        ]
        mine = rules.spec_from(0, tenant_id, key, config, tz)
        cycle = rules.reward_cycle([*others, mine], key)
        if cycle:
            problems.append(
                rules.problem(
                    "reward",
                    "REWARD_CYCLE",
                    "earning this badge leads back to earning it: " + " -> ".join(cycle),
                )
            )
    if problems:
        raise validation_failed(problems)
    config["timezone"] = tz
    reset = existing is None or any(
        existing["config"].get(f) != config.get(f) for f in ("criteria", "repeat", "window")
    )
    row = await repo.put_definition(conn, tenant_id, key, config, reset, ctx.clock.now())
    parked = None
    # A parked badge resumes: the dispatcher replays the events it missed, then it counts.
    if await parking.resume(conn, FEATURE, row["id"]):
        parked = await parking.state_of(conn, FEATURE, row["id"])
        uow.wake_dispatcher()  # after commit: the resumed badge's catch-up sees its config
    return _out(row, parked)


async def get_definition(ctx: Context, tenant_id: int, key: str) -> BadgeOut:
    async with ctx.db.connection() as conn:
        row = await repo.get_definition(conn, tenant_id, key)
        if row is None:
            raise DomainError("BADGE_NOT_FOUND", details={"key": key})
        parked = await parking.state_of(conn, FEATURE, row["id"])
    return _out(row, parked)


async def list_definitions(ctx: Context, tenant_id: int) -> BadgeList:
    async with ctx.db.connection() as conn:
        rows = await repo.list_definitions(conn, tenant_id)
        states = await parking.states_of(conn, FEATURE, [r["id"] for r in rows])
    return BadgeList([_out(r, states.get(r["id"])) for r in rows])


# ---------------------------------------------------------------- progress and earning


async def apply(
    ctx: Context,
    conn: asyncpg.Connection,
    spec: BadgeSpec,
    config: dict,
    events: Iterable[Event],
    source: str = "event",
) -> int:
    """Count events towards one badge in the caller's transaction; returns badges earned.

    Events already counted for this badge are skipped, so any overlap of live delivery,
    redelivery and backfill counts each event once."""
    found: list[tuple[Event, int, int, str, int]] = []  # event, member, criterion, mode, value
    unique = {e.event_id: e for e in events}  # a batch may repeat an event; it counts once
    for e in unique.values():
        for i, c in enumerate(spec.criteria):
            for member, mode, value in rules.hits(c, e.type, e.member_id, e.payload):
                found.append((e, member, i, mode, value))
    if not found:
        return 0
    fresh = await repo.mark_applied(conn, spec.id, sorted({f[0].event_id for f in found}))
    agg: dict[tuple[int, str, int], list[Any]] = {}
    trigger: dict[tuple[int, str], uuid.UUID] = {}
    for e, member, i, mode, value in found:
        if e.event_id not in fresh:
            continue
        period = rules.period_id(spec, e.occurred_at)
        if period is None:
            continue
        k = (member, period, i)
        cur = agg.get(k)
        agg[k] = [mode, value if cur is None else rules.combine(mode, cur[1], value)]
        trigger[(member, period)] = e.event_id
    if not agg:
        return 0
    now = ctx.clock.now()
    await repo.bump_progress(
        conn, spec.tenant_id, spec.id, [(m, p, i, v[0], v[1]) for (m, p, i), v in agg.items()], now
    )
    keys = sorted(trigger)
    currents: dict[tuple[int, str], dict[int, int]] = defaultdict(dict)
    for r in await repo.progress_of(conn, spec.id, keys):
        currents[(r["member_id"], r["period_id"])][r["criterion"]] = r["current"]
    done = [(m, p, trigger[(m, p)]) for (m, p) in keys if rules.met(spec, currents[(m, p)])]
    if not done:
        return 0
    earned = await repo.earn(conn, spec.tenant_id, spec.id, done, source, now)
    await _reward(ctx, conn, spec, config, earned, now)
    return len(earned)


async def _reward(
    ctx: Context,
    conn: asyncpg.Connection,
    spec: BadgeSpec,
    config: dict,
    earned: list,
    now: datetime,
) -> None:
    """Rewards of newly earned badges: points and growth through the ledger (keyed by the
    earned row, so never twice), the title, and the ``badge.earned`` / ``title.gained`` events."""
    if not earned:
        return
    from service.points import service as points

    credits = [
        points.Credit(
            r["member_id"],
            currency,
            amount,
            "badge.reward",
            spec.key,
            f"badge:{spec.key}",
            f"badge:{r['id']}:{currency}",
        )
        for r in earned
        for currency, amount in (("points", spec.reward_points), ("growth", spec.reward_growth))
        if amount > 0
    ]
    if credits:
        # The subscriber's transaction is already open: the ledger works in it, and its
        # events are written before the caller commits.
        uow = UnitOfWork(ctx, conn)
        await points.apply_credits(uow, spec.tenant_id, credits)
        await uow.flush()
    gained: set[int] = set()
    if spec.reward_title:
        expires = rules.title_expiry(spec, now)
        rows = await repo.grant_titles(
            conn,
            spec.tenant_id,
            [(r["member_id"], spec.reward_title, f"badge:{spec.key}", expires) for r in earned],
            now,
        )
        gained = {r["member_id"] for r in rows}
    events: list[tuple[uuid.UUID, int, str, int | None, dict[str, Any], datetime]] = []
    for r in earned:
        # A manual award has no source event: the badge's own event is the business event,
        # so the title it gives plays in the same group (one group per business event).
        earned_id = uuid.uuid4()
        source = str(r["source_event_id"]) if r["source_event_id"] else None
        events.append(
            (
                earned_id,
                spec.tenant_id,
                "badge.earned",
                r["member_id"],
                {
                    "key": spec.key,
                    "name": config.get("name", spec.key),
                    "icon": config.get("icon", ""),
                    "series": config.get("series", ""),
                    "tier": config.get("tier", ""),
                    "period": r["period_id"],
                    "memberBadgeId": r["id"],
                    "awardNo": r.get("award_no", 1),
                    "sourceEventId": source,
                    "title": spec.reward_title,
                    "points": spec.reward_points,
                    "growth": spec.reward_growth,
                },
                now,
            )
        )
        if r["member_id"] in gained:
            events.append(
                (
                    uuid.uuid4(),
                    spec.tenant_id,
                    "title.gained",
                    r["member_id"],
                    {
                        "title": spec.reward_title,
                        "source": f"badge:{spec.key}",
                        "sourceEventId": source or str(earned_id),
                        "memberBadgeId": r["id"],
                        "awardNo": r.get("award_no", 1),
                    },
                    now,
                )
            )
    await outbox.write(conn, [outbox.OutboxRow(t, i, ty, m, p, o) for i, t, ty, m, p, o in events])


def _is_outage(exc: BaseException) -> bool:
    """Redis or PostgreSQL away, or a deadlock with a concurrent writer: not the definition's
    fault, so the batch is retried, not the definition parked."""
    from service.core.errors import DependencyUnavailable
    from service.core.http import DEPENDENCY_ERRORS

    return isinstance(
        exc,
        (DependencyUnavailable, asyncpg.TransactionRollbackError, *DEPENDENCY_ERRORS, OSError),
    )


async def on_events(ctx: Context, events: list[Event], only: int | None = None) -> None:
    """Outbox subscriber: progress every definition of the events' tenants (``only``: one
    definition, for the catch-up of a resumed one).

    One transaction per tenant and batch, one savepoint per definition: a definition that
    fails (anything but an outage or a deadlock) is rolled back to its savepoint and parked
    (core parking) after commit, with its reason and the events it missed; the others commit.
    Parked definitions are skipped until a correcting PUT resumes them. An outage or deadlock
    raises, and the dispatcher retries the batch (events already counted are skipped)."""
    by_tenant: dict[int, list[Event]] = defaultdict(list)
    for e in events:
        by_tenant[e.tenant_id].append(e)
    async with ctx.db.connection() as conn:
        if only is not None:
            one = await repo.definition_by_id(conn, only)
            defs = [one] if one is not None else []
        else:
            defs = await repo.tenant_definitions(conn, sorted(by_tenant))
            skip = await parking.parked_ids(conn, FEATURE, [r["id"] for r in defs])
            defs = [r for r in defs if r["id"] not in skip]
    per_tenant: dict[int, list[Any]] = defaultdict(list)
    for row in defs:
        per_tenant[row["tenant_id"]].append(row)
    failed: list[tuple[Any, BaseException, list[Event]]] = []
    for tenant_id, rows in per_tenant.items():
        async with ctx.db.transaction() as conn:
            for row in rows:
                mine: list[Event] = []
                try:
                    spec = _spec(row)
                    types = rules.spec_event_types(spec)
                    mine = [e for e in by_tenant[tenant_id] if e.type in types]
                    if not mine:
                        continue
                    async with conn.transaction():  # a savepoint: this definition alone
                        await apply(ctx, conn, spec, row["config"], mine)
                except Exception as exc:
                    if _is_outage(exc) or only is not None:
                        raise  # a failed catch-up is parked again by core parking
                    failed.append((row, exc, mine or by_tenant[tenant_id]))
    for row, error, missed in failed:
        await parking.park(ctx, FEATURE, row["tenant_id"], row["id"], error, missed)
    ctx.dispatcher.wake()


async def catch_up(ctx: Context, events: list[Event], badge_id: int) -> None:
    """Replay missed events to one corrected badge (dispatcher catch-up, see core parking)."""
    await on_events(ctx, events, only=badge_id)


# ---------------------------------------------------------------- backfill


async def backfill(ctx: Context, tenant_id: int, key: str) -> BackfillOut:
    """Replay the tenant's history (the outbox in PostgreSQL) through one badge, so members
    who qualified before it was defined earn it. Safe to run at any time and any number of
    times, alongside live delivery: every event counts once per badge."""
    async with ctx.db.connection() as conn:
        row = await repo.get_definition(conn, tenant_id, key)
    if row is None:
        raise DomainError("BADGE_NOT_FOUND", details={"key": key})
    spec = _spec(row)
    types = sorted(rules.spec_event_types(spec))
    cursor, seen, earned = (0, 0), 0, 0
    while types:
        async with ctx.db.connection() as conn:
            page = await repo.history_page(conn, tenant_id, types, cursor, BACKFILL_PAGE)
        if not page:
            break
        evs = [outbox.event_of(r) for r in page]
        async with ctx.db.transaction() as conn:
            earned += await apply(ctx, conn, spec, row["config"], evs, source="backfill")
        seen += len(page)
        cursor = (page[-1]["txid"], page[-1]["id"])
        if len(page) < BACKFILL_PAGE:
            break
    async with ctx.db.connection() as conn:
        await repo.mark_backfilled(conn, row["id"], row["version"], ctx.clock.now())
    ctx.dispatcher.wake()
    log.info("badge backfilled", badge=key, tenant=tenant_id, events=seen, earned=earned)
    return BackfillOut(key, seen, earned)


async def backfill_due(ctx: Context) -> int:
    """Periodic job: backfill every definition created or whose criteria changed (parked
    ones wait for their correction)."""
    done = 0
    skipped: set[int] = set()
    while True:
        async with ctx.db.connection() as conn:
            due = await repo.due_backfills(conn, 20, sorted(skipped))
            parked = await parking.parked_ids(conn, FEATURE, [r["id"] for r in due])
        if not due:
            return done
        skipped |= parked
        for row in due:
            if row["id"] in parked:
                continue
            try:
                await backfill(ctx, row["tenant_id"], row["key"])
            except Exception as exc:
                if _is_outage(exc):
                    raise
                await parking.park(ctx, FEATURE, row["tenant_id"], row["id"], exc, [], (0, 0))
                skipped.add(row["id"])
            done += 1


# ---------------------------------------------------------------- manual award and revoke


async def award(
    uow: UnitOfWork, tenant_id: int, external_id: str, key: str, reason: str, actor: str
) -> AwardOut:
    """An operator awards a badge (in its current period); audited. Already held: nothing
    changes. A revoked one is restored without paying its reward again."""
    from service.members import service as members

    ctx, conn = uow.ctx, uow.conn
    member_id = await members.resolve_member_id(conn, tenant_id, external_id)
    return await award_member(ctx, conn, tenant_id, member_id, key, reason, actor)


async def award_member(
    ctx: Context,
    conn: asyncpg.Connection,
    tenant_id: int,
    member_id: int,
    key: str,
    reason: str,
    actor: str,
) -> AwardOut:
    """Public: award a badge to a member known by id (the ritual's welcome gift); as
    ``award``: audited, already held changes nothing; 404 BADGE_NOT_FOUND."""
    row = await repo.get_definition(conn, tenant_id, key, lock=True)
    if row is None:
        raise DomainError("BADGE_NOT_FOUND", details={"key": key})
    spec = _spec(row)
    now = ctx.clock.now()
    period = rules.period_id(spec, now) or ""
    existing = await repo.get_member_badge(conn, spec.id, member_id, period, lock=True)
    changed = True
    if existing is None:
        earned = await repo.earn(
            conn, tenant_id, spec.id, [(member_id, period, None)], "manual", now
        )
        await _reward(ctx, conn, spec, row["config"], earned, now)
    elif existing["revoked_at"] is not None:
        restored = await repo.reaward(conn, existing["id"])
        await _reward(ctx, conn, spec, row["config"], [restored], now)
    else:
        changed = False
    await repo.audit(conn, tenant_id, spec.id, member_id, "award", reason, actor, now)
    return AwardOut(key, member_id, period, True, changed)


async def revoke(
    uow: UnitOfWork, tenant_id: int, external_id: str, key: str, reason: str, actor: str
) -> AwardOut:
    """An operator revokes a member's badge (its latest period) and the title it gave;
    audited. Rewards already credited stay in the ledger (reverse them there if needed)."""
    from service.members import service as members

    ctx, conn = uow.ctx, uow.conn
    member_id = await members.resolve_member_id(conn, tenant_id, external_id)
    row = await repo.get_definition(conn, tenant_id, key, lock=True)
    if row is None:
        raise DomainError("BADGE_NOT_FOUND", details={"key": key})
    now = ctx.clock.now()
    held = [
        r
        for r in await repo.member_badges(conn, tenant_id, member_id)
        if r["badge_id"] == row["id"]
    ]
    period = held[0]["period_id"] if held else ""
    if held:
        await repo.set_revoked(conn, held[0]["id"], now)
        if len(held) == 1:
            await repo.drop_title(conn, tenant_id, member_id, f"badge:{key}")
        await outbox.emit(
            conn,
            tenant_id=tenant_id,
            type="badge.revoked",
            member_id=member_id,
            payload={
                "key": key,
                "period": period,
                "memberBadgeId": held[0]["id"],
                "awardNo": held[0]["award_no"],
                "titleDropped": len(held) == 1,
            },
            occurred_at=now,
        )
    await repo.audit(conn, tenant_id, row["id"], member_id, "revoke", reason, actor, now)
    return AwardOut(key, member_id, period, len(held) > 1, bool(held))


# ---------------------------------------------------------------- member views


async def catalogue(ctx: Context, tenant_id: int, member_id: int, lang: str) -> BadgeCatalogue:
    """Every badge with my progress in its current period; hidden ones masked until earned."""
    now = ctx.clock.now()
    async with ctx.db.connection() as conn:
        defs = await repo.list_definitions(conn, tenant_id)
        progress_rows = await repo.member_progress(conn, tenant_id, member_id)
        held = await repo.member_badges(conn, tenant_id, member_id)
    prog: dict[tuple[int, str], dict[int, int]] = defaultdict(dict)
    for p in progress_rows:
        prog[(p["badge_id"], p["period_id"])][p["criterion"]] = p["current"]
    earned: dict[int, list[Any]] = defaultdict(list)
    for h in held:
        earned[h["badge_id"]].append(h)
    items = []
    for row in defs:
        cfg = row["config"]
        try:
            spec = _spec(row, cfg.get("timezone", "Asia/Shanghai"))
        except (KeyError, TypeError, ValueError):
            continue  # a stored document that no longer reads: parked, not shown
        mine = earned.get(row["id"], [])
        period = rules.period_id(spec, now)
        is_earned = bool(mine) and (spec.repeat == "once" or mine[0]["period_id"] == period)
        if cfg.get("hidden") and not mine:
            items.append(
                BadgeView(
                    row["key"],
                    HIDDEN_NAME[lang],
                    "",
                    "",
                    cfg.get("iconLocked", ""),
                    cfg.get("series", ""),
                    cfg.get("tier", ""),
                    True,
                    spec.repeat,
                    False,
                    None,
                    0,
                    None,
                )
            )
            continue
        cur, target = rules.progress(spec, prog.get((row["id"], period or ""), {}))
        if is_earned:
            cur = target
        items.append(
            BadgeView(
                row["key"],
                cfg.get("name", row["key"]),
                cfg.get("description", ""),
                cfg.get("icon", ""),
                cfg.get("iconLocked", ""),
                cfg.get("series", ""),
                cfg.get("tier", ""),
                bool(cfg.get("hidden")),
                spec.repeat,
                is_earned,
                mine[0]["earned_at"] if mine else None,
                len(mine),
                None if spec.manual_only else Progress(cur, target),
            )
        )
    return BadgeCatalogue(items)


def _earned(h: Any) -> EarnedBadge:
    cfg = h["config"]
    return EarnedBadge(
        h["key"],
        cfg.get("name", h["key"]),
        cfg.get("icon", ""),
        cfg.get("series", ""),
        cfg.get("tier", ""),
        h["period_id"],
        h["earned_at"],
    )


async def my_badges(ctx: Context, tenant_id: int, member_id: int) -> MyBadges:
    """My earned badges and titles, newest first."""
    now = ctx.clock.now()
    async with ctx.db.connection() as conn:
        held = await repo.member_badges(conn, tenant_id, member_id)
        titles = await repo.titles_of(conn, tenant_id, member_id, now)
        shown = (await repo.shown_titles(conn, tenant_id, [member_id], now)).get(member_id)
    return MyBadges(
        [_earned(h) for h in held],
        [
            TitleOut(t["title"], t["source"], t["gained_at"], t["expires_at"], t["title"] == shown)
            for t in titles
        ],
        shown,
    )


async def set_title(
    uow: UnitOfWork, tenant_id: int, member_id: int, title: str | None
) -> ShownTitleOut:
    """Choose the title to show (one I hold), or none. 422 TITLE_NOT_HELD otherwise."""
    ctx, conn = uow.ctx, uow.conn
    now = ctx.clock.now()
    if title is not None:
        held = {t["title"] for t in await repo.titles_of(conn, tenant_id, member_id, now)}
        if title not in held:
            raise DomainError("TITLE_NOT_HELD", details={"title": title})
    await repo.set_shown_title(conn, tenant_id, member_id, title, now)
    return ShownTitleOut(title)


# ---------------------------------------------------------------- public to other features


async def titles_for_card(
    ctx: Context, conn: asyncpg.Connection, tenant_id: int, member_id: int
) -> tuple[str | None, list[str]]:
    """Public: (the title shown, every title held) of one member, for /v1/me."""
    now = ctx.clock.now()
    titles = [t["title"] for t in await repo.titles_of(conn, tenant_id, member_id, now)]
    shown = (await repo.shown_titles(conn, tenant_id, [member_id], now)).get(member_id)
    return shown, titles


async def recent_badges(
    ctx: Context, conn: asyncpg.Connection, tenant_id: int, member_id: int, limit: int
) -> tuple[list[EarnedBadge], int]:
    """Public: (the latest ``limit`` badges earned, newest first; how many in all), for /v1/me."""
    held = await repo.member_badges(conn, tenant_id, member_id)
    return recent_from(held[:limit]), len(held)


def recent_from(rows: Sequence[Any]) -> list[EarnedBadge]:
    """Public: earned badges from rows with ``key, config, period_id, earned_at`` (a member's
    badges joined with their definitions, newest first) read by the caller."""
    return [_earned(h) for h in rows]


async def shown_titles(
    ctx: Context, conn: asyncpg.Connection, tenant_id: int, member_ids: list[int]
) -> dict[int, str]:
    """Public: the title each member shows (members showing none are absent), for boards and
    the honour wall."""
    if not member_ids:
        return {}
    return await repo.shown_titles(conn, tenant_id, member_ids, ctx.clock.now())


async def live_member_badges(
    conn: asyncpg.Connection, tenant_id: int, member_badge_ids: list[int]
) -> set[int]:
    """Public: which of these earned badges (``memberBadgeId``) are held now, not revoked; read
    under a share lock so a concurrent revoke waits for the caller's transaction (for
    ceremonies: a revoked honour never gets a ceremony)."""
    if not member_badge_ids:
        return set()
    return await repo.live_member_badges(conn, tenant_id, member_badge_ids)


async def rebuild(ctx: Context) -> dict[str, Any]:
    """Badges keep no Redis view (PostgreSQL answers every read); nothing to restore."""
    return {"redisViews": 0}
