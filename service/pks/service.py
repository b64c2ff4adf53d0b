"""Team PKs: definitions, scoring from domain events (per-PK isolation), the live scoreboard
(one Redis script call, rebuilt from PostgreSQL on a miss), settlement exactly once, rebuild.

Features used through their public functions: teams (who was in which team when, headcounts),
leaderboards (the metric rules and the rank encoding), points (the ledger's credit), members
(display). Ceremonies and badges follow the ``pk.won`` events this feature emits.
"""

from __future__ import annotations

import asyncio
import functools
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

import msgspec
import structlog

from service.core import outbox, parking
from service.core.cache import Cache
from service.core.constraints import register_io_check, validation_failed
from service.core.context import Context
from service.core.errors import DependencyUnavailable, DomainError, register_codes
from service.core.outbox import Event
from service.core.ratelimit import RateCheck
from service.core.uow import UnitOfWork, unit_of_work
from service.leaderboards import service as boards
from service.members import service as members
from service.pks import repository as repo
from service.pks import rules, store
from service.pks.schemas import (
    Contributor,
    MeInPk,
    PkBoard,
    PkIn,
    PkList,
    PkOut,
    SettlementOut,
    Shown,
    TeamResult,
    TeamStanding,
)
from service.points import service as points
from service.teams import service as teams

log = structlog.get_logger("engage.pks")

register_codes(
    {
        "PK_NOT_FOUND": (404, "PK 不存在", "No such team PK."),
        "PK_STARTED": (
            409,
            "PK 已开始，队伍、指标和开始时间不能再改",
            "The PK has started: its teams, metric and start are fixed (name, end, rewards "
            "and display may still change).",
        ),
        "PK_SETTLED": (409, "PK 已结算", "The PK is settled; its definition is final."),
        "PK_NOT_ENDED": (409, "PK 尚未结束", "The PK has not ended yet; settle it after its end."),
        "PK_PARKED": (
            409,
            "PK 暂停计分，等待运营修正",
            "The PK failed while counting events and is set aside until an operator corrects "
            "it; details give the reason and since when.",
        ),
    }
)

FEATURE = "pks"  # the feature name of parked PKs
SUBSCRIBER = "pks"
EVENT_TYPES = boards.METRIC_EVENT_TYPES
CONFIG_TTL_S = 5.0
MEMBER_TTL_S = 10.0  # "my team" follows a team change within this
HEADCOUNT_TTL_S = 5.0
GRACE = timedelta(days=7)  # Redis views outlive the end by this (reads go to PostgreSQL after)
SPEC_CACHE = "pks.spec"
DISPLAY_TTL_S = 30.0
LIVE_CACHE = "pks.live"
LIVE_TTL_S = 1.0  # team scores and top contributors lag at most this in other processes


def _spec_cache(ctx: Context) -> Cache[tuple[int, str], Any]:
    return ctx.caches.get(SPEC_CACHE, CONFIG_TTL_S)


def _member_cache(ctx: Context) -> Cache[tuple[int, int], int | None]:
    return ctx.caches.get("pks.my-team", MEMBER_TTL_S, max_entries=200_000)


def _headcount_cache(ctx: Context) -> Cache[int, dict[int, int]]:
    return ctx.caches.get("pks.headcounts", HEADCOUNT_TTL_S)


def _team_cache(ctx: Context) -> Cache[Any, dict[int, Any]]:
    return ctx.caches.get("pks.teams", CONFIG_TTL_S)


def _display_cache(ctx: Context) -> Cache[tuple[int, int], Shown]:
    return ctx.caches.get("pks.display", DISPLAY_TTL_S, max_entries=200_000)


class Spec(msgspec.Struct, frozen=True):
    id: int
    tenant_id: int
    key: str
    name: str
    team_ids: tuple[int, ...]
    start: datetime
    end: datetime
    metric: str
    event_type: str | None
    campaign: str | None
    value_scale: float
    aggregation: str
    min_headcount: int
    top: int
    settle_delay_s: int
    reward_win: dict[str, int]
    reward_mvp: dict[str, int]
    settled: bool

    @property
    def metric_spec(self) -> Any:
        return boards.metric_spec(
            self.tenant_id,
            self.metric,
            event_type=self.event_type,
            campaign=self.campaign,
            value_scale=self.value_scale,
        )

    @property
    def period(self) -> Any:
        return boards.window_period(self.start, self.end)

    @property
    def expire_at(self) -> int:
        return int((self.end + GRACE).timestamp())


def _spec(row: Any) -> Spec:
    c = row["config"]
    rw = c.get("rewards") or {}
    return Spec(
        id=row["id"],
        tenant_id=row["tenant_id"],
        key=row["key"],
        name=c.get("name", row["key"]),
        team_ids=tuple(row["team_ids"]),
        start=row["starts_at"],
        end=row["ends_at"],
        metric=c["metric"],
        event_type=c.get("eventType"),
        campaign=c.get("campaign"),
        value_scale=float(c.get("valueScale", 1.0)),
        aggregation=c.get("aggregation", "sum"),
        min_headcount=int(c.get("minHeadcount", 1)),
        top=int(c.get("topContributors", 3)),
        settle_delay_s=int(c.get("settleDelaySeconds", 60)),
        reward_win=dict(rw.get("winners") or {}),
        reward_mvp=dict(rw.get("mvp") or {}),
        settled=row["settled_at"] is not None,
    )


# ---------------------------------------------------------------- definitions


async def _out(conn: Any, row: Any, parked: parking.Parked | None, now: datetime) -> PkOut:
    found = await teams.teams_by_ids(conn, row["tenant_id"], row["team_ids"])
    state = rules.state_of(row["starts_at"], row["ends_at"], row["settled_at"] is not None, now)
    if parked is not None and state != "settled":
        state = "parked"
    return PkOut(
        key=row["key"],
        version=row["version"],
        config=_stored(row),
        team_keys=[found[t].key for t in row["team_ids"] if t in found],
        state=state,
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        settled_at=row["settled_at"],
        parked_reason=parked.reason if parked else None,
    )


def _stored(row: Any) -> PkIn:
    """The stored document; one that no longer decodes (written by hand or an older version)
    is shown with what is known rather than failing the operator's read of a parked PK."""
    try:
        return msgspec.convert(row["config"], PkIn)
    except msgspec.ValidationError:
        c = row["config"]
        return PkIn(
            name=str(c.get("name") or row["key"]),
            starts_at=row["starts_at"],
            ends_at=row["ends_at"],
            metric=str(c.get("metric", "")),
        )


async def _cursor(ctx: Context) -> tuple[int, int]:
    """The first outbox position the PK subscriber has not passed yet."""
    async with ctx.db.connection() as conn:
        cur = await conn.fetchrow(
            "SELECT last_txid, last_id FROM outbox_cursors WHERE subscriber = $1", SUBSCRIBER
        )
    return (cur["last_txid"], cur["last_id"] + 1) if cur else (0, 0)


IDENTITY = ("metric", "eventType", "campaign", "valueScale", "startsAt")


async def _problems(conn: Any, tenant_id: int, key: str, data: PkIn) -> tuple[list, list]:
    """(every rule problem of the document, the teams it names or its set holds)."""
    doc = msgspec.to_builtins(data)
    named = await teams.teams_by_keys(conn, tenant_id, data.teams)
    in_set = await teams.teams_in_set(conn, tenant_id, data.team_set) if data.team_set else None
    chosen = (
        [named[k] for k in dict.fromkeys(data.teams) if k in named] if data.teams else in_set or []
    )
    clashes: list[tuple[str, list[str]]] = []
    if data.ends_at > data.starts_at and data.starts_at.tzinfo and data.ends_at.tzinfo:
        ids = {t.id for t in chosen}
        for other in await repo.overlapping(conn, tenant_id, key, data.starts_at, data.ends_at):
            shared = ids & set(other["team_ids"])
            forbid = not data.allow_overlap or not other["config"].get("allowOverlap", True)
            if shared and forbid:
                keys = sorted(t.key for t in chosen if t.id in shared)
                clashes.append((other["key"], keys))
    problems = rules.validate(
        {**doc, "startsAt": data.starts_at, "endsAt": data.ends_at},
        metric_problems=boards.metric_problems(doc),
        known_teams={k: t.team_set for k, t in named.items()},
        set_teams=[t.key for t in in_set] if in_set is not None else None,
        clashes=clashes,
    )
    if not rules.KEY_RE.match(key):
        problems.append(rules.problem("key", "KEY_INVALID", "lowercase a-z, 0-9, _ or -"))
    return problems, chosen


async def _rule_problems_with_shape(request: Any, data: PkIn) -> list:
    """The rule problems of a PUT whose body also has shape problems (malformed fields left
    out), so the operator gets every problem in one 422."""
    from service.core.http import get_ctx, operator_principal

    state = request.app.state
    op = await operator_principal(request, state)
    ctx = get_ctx(state)
    async with ctx.db.connection() as conn:
        problems, _ = await _problems(
            conn, op.tenant_id, str(request.path_params.get("key", "")), data
        )
    return problems


register_io_check(PkIn, _rule_problems_with_shape)


async def put_pk(uow: UnitOfWork, tenant_id: int, key: str, data: PkIn) -> PkOut:
    """Create or change a PK. Every problem at once (422 VALIDATION_FAILED), nothing changed:
    fewer than two teams, unknown teams, teams of different sets, an empty window, a bad
    metric, an overlap with another PK of the same teams when either forbids overlaps."""
    ctx, conn = uow.ctx, uow.conn
    now = ctx.clock.now()
    doc = msgspec.to_builtins(data)
    problems, chosen = await _problems(conn, tenant_id, key, data)
    if problems:
        raise validation_failed(problems)
    team_ids = [t.id for t in chosen]
    existing = await repo.lock_pk(conn, tenant_id, key)
    if existing is None:
        row = await repo.insert_pk(
            conn, tenant_id, key, doc, team_ids, data.starts_at, data.ends_at, now
        )
        if row is None:
            raise DomainError("CONFLICT")
    else:
        if existing["settled_at"] is not None:
            raise DomainError("PK_SETTLED", details={"key": key})
        old = existing["config"]
        started = now >= existing["starts_at"] or await repo.has_counted(conn, existing["id"])
        # A field missing from the stored document was unreadable (the PK is parked for it):
        # restoring it is the correction, not a change of what the scores mean.
        changed = [f for f in IDENTITY if f in old and old[f] != doc.get(f)]
        if started and (changed or sorted(team_ids) != sorted(existing["team_ids"])):
            raise DomainError(
                "PK_STARTED", details={"key": key, "fixed": [*IDENTITY, "teams", "teamSet"]}
            )
        row = await repo.update_pk(
            conn, existing["id"], doc, team_ids, data.starts_at, data.ends_at, now
        )
        if await parking.resume(conn, FEATURE, row["id"]):
            ctx.dispatcher.wake()
        # The end may have moved: the view is rebuilt on its next read with the new expiry.
        await store.drop(ctx, tenant_id, row["id"], row["team_ids"])
    await repo.ensure_team_rows(conn, row["id"], team_ids)
    # Every process drops its copy once the change is committed.
    uow.after_commit(functools.partial(ctx.caches.changed, SPEC_CACHE, (tenant_id, key)))
    return await _out(conn, row, await parking.state_of(conn, FEATURE, row["id"]), now)


async def get_pk(ctx: Context, tenant_id: int, key: str) -> PkOut:
    async with ctx.db.connection() as conn:
        row = await repo.get_pk(conn, tenant_id, key)
        if row is None:
            raise DomainError("PK_NOT_FOUND", details={"key": key})
        return await _out(
            conn, row, await parking.state_of(conn, FEATURE, row["id"]), ctx.clock.now()
        )


async def list_pks(ctx: Context, tenant_id: int) -> PkList:
    async with ctx.db.connection() as conn:
        rows = await repo.list_pks(conn, tenant_id)
        states = await parking.states_of(conn, FEATURE, [r["id"] for r in rows])
        now = ctx.clock.now()
        return PkList([await _out(conn, r, states.get(r["id"]), now) for r in rows])


async def live_keys(ctx: Context, conn: Any, tenant_id: int, member_id: int) -> list[str]:
    """Public (the launch summary): keys of the running PKs of the member's teams, and of
    those with an open team the member may join (one statement)."""
    return await repo.live_keys_for_member(conn, tenant_id, member_id, ctx.clock.now())


async def spec_of(ctx: Context, tenant_id: int, key: str) -> Spec:
    """The PK's rules (cached CONFIG_TTL_S); 404 unknown, 409 PK_PARKED when parked."""

    async def load() -> tuple[Any, Spec | None, parking.Parked | None]:
        async with ctx.db.connection() as conn:
            row = await repo.get_pk(conn, tenant_id, key)
            if row is None:
                return None, None, None
            parked = await parking.state_of(conn, FEATURE, row["id"])
        if parked is not None and parked.state == "parked":
            return row, None, parked
        try:
            return row, _spec(row), parked
        except Exception as exc:
            # A definition its rules cannot read is parked here too: a read never 500s.
            await parking.park(ctx, FEATURE, tenant_id, row["id"], exc, [], await _cursor(ctx))
            return row, None, parking.Parked("parked", parking.reason_of(exc), ctx.clock.now())

    row, spec, parked = await _spec_cache(ctx).get((tenant_id, key), load)
    if row is None:
        raise DomainError("PK_NOT_FOUND", details={"key": key})
    if spec is None or (parked is not None and parked.state == "parked" and not spec.settled):
        # Members get a fixed sentence, never the stored reason (it may quote internal
        # failure text); operators read it on GET /admin/v1/pks/{key} (parkedReason).
        raise DomainError(
            "PK_PARKED",
            details={"key": key, "reason": MEMBER_PARKED_REASON, "parkedAt": parked.parked_at},
        )
    return spec


MEMBER_PARKED_REASON = "The PK is paused until the operator corrects it."


# ---------------------------------------------------------------- scoring


Hit = tuple[Spec, Event, int]


def hits_of(spec: Spec, events: list[Event]) -> list[Hit]:
    """What each event adds to the PK (pure; raises on a broken definition)."""
    metric = spec.metric_spec
    out = []
    for e in events:
        if e.member_id is None or not rules.in_window(spec.start, spec.end, e.occurred_at):
            continue
        delta = boards.metric_contribution(metric, e.type, e.payload)
        if delta:
            out.append((spec, e, delta))
    return out


async def on_events(ctx: Context, events: list[Event], only: int | None = None) -> None:
    """Outbox subscriber: add each event to the team the member was in when it happened, in
    every unsettled PK of the tenant. Each PK is isolated (service.core.parking): one whose
    rules or writes fail is parked alone with the reason. ``only``: the catch-up of one
    corrected PK (failures raise)."""
    scored = [e for e in events if e.member_id is not None]
    if not scored:
        return
    by_tenant: dict[int, list[Event]] = defaultdict(list)
    for e in scored:
        by_tenant[e.tenant_id].append(e)
    async with ctx.db.connection() as conn:
        rows = await repo.unsettled_for_tenants(conn, sorted(by_tenant))
        if only is not None:
            rows = [r for r in rows if r["id"] == only]
            skip: set[int] = set()
        else:
            skip = await parking.parked_ids(conn, FEATURE, [r["id"] for r in rows])
    per_pk: dict[int, list[Hit]] = {}
    for row in rows:
        if row["id"] in skip:
            continue
        try:
            hs = hits_of(_spec(row), by_tenant[row["tenant_id"]])
        except Exception as exc:
            if only is not None or outbox.is_outage(exc):
                raise
            await _park(ctx, row, exc, events)
            continue
        if hs:
            per_pk[row["id"]] = hs
    if not per_pk:
        return
    try:
        await _apply(ctx, [h for hs in per_pk.values() for h in hs])
    except Exception as exc:
        if only is not None or outbox.is_outage(exc) or len(per_pk) == 1:
            raise
        failed = []
        for pk_id, hs in per_pk.items():
            try:
                await _apply(ctx, hs)
            except Exception as one:
                if outbox.is_outage(one):
                    raise
                failed.append((pk_id, one))
        if len(failed) == len(per_pk):
            raise
        by_id = {r["id"]: r for r in rows}
        for pk_id, exc in failed:
            await _park(ctx, by_id[pk_id], exc, events)


async def _park(ctx: Context, row: Any, exc: BaseException, events: list[Event]) -> None:
    await parking.park(ctx, FEATURE, row["tenant_id"], row["id"], exc, events)
    await ctx.caches.changed(SPEC_CACHE, (row["tenant_id"], row["key"]))


async def catch_up(ctx: Context, events: list[Event], pk_id: int) -> None:
    """Replay missed events to one corrected PK (dispatcher catch-up, see parking)."""
    await on_events(ctx, events, only=pk_id)


async def _apply(ctx: Context, hits: list[Hit]) -> None:
    """One transaction: dedup rows, the team each event counts for (membership history),
    contribution upserts, team totals under their row locks, then the absolute values to
    Redis in one round trip before commit (no later writer can be overtaken)."""
    async with ctx.db.transaction() as conn:
        fresh = await repo.mark_applied(conn, [(s.id, e.event_id) for s, e, _ in hits])
        hits = [h for h in hits if (h[0].id, h[1].event_id) in fresh]
        if not hits:
            return
        # The team each event counts for: the member's team at the event's business time.
        team_of: dict[tuple[int, int, datetime], int] = {}
        by_pk: dict[int, list[Hit]] = defaultdict(list)
        for h in hits:
            by_pk[h[0].id].append(h)
        for hs in by_pk.values():
            spec = hs[0][0]
            got = await teams.teams_at(
                conn,
                spec.tenant_id,
                spec.team_ids,
                [(e.member_id, e.occurred_at) for _, e, _ in hs if e.member_id is not None],
            )
            for (m, at), t in got.items():
                team_of[(spec.id, m, at)] = t
        adds: dict[tuple[int, int, int], list[Any]] = {}
        specs: dict[int, Spec] = {}
        for spec, e, delta in hits:
            if e.member_id is None:
                continue  # PK metrics count members' events only
            team = team_of.get((spec.id, e.member_id, e.occurred_at))
            if team is None:
                continue  # not in any of the PK's teams when it happened
            specs[spec.id] = spec
            k = (spec.id, team, e.member_id)
            cur = adds.get(k)
            if cur is None:
                adds[k] = [delta, e.occurred_at, 1, spec.tenant_id]
            else:
                cur[0] += delta
                cur[1] = max(cur[1], e.occurred_at)
                cur[2] += 1
        if not adds:
            return
        pairs = sorted({(p, t) for p, t, _ in adds})
        await repo.lock_teams(conn, pairs)
        new = await repo.add_contributions(
            conn, [(v[3], p, t, m, v[0], v[1], v[2]) for (p, t, m), v in sorted(adds.items())]
        )
        team_adds: dict[tuple[int, int], list[Any]] = {pt: [0, None] for pt in pairs}
        contribs: dict[int, dict[int, list[tuple[bytes, float | None]]]] = defaultdict(
            lambda: defaultdict(list)
        )
        for r in new:
            k = (r["pk_id"], r["team_id"], r["member_id"])
            delta, at = adds[k][0], adds[k][1]
            ta = team_adds[(r["pk_id"], r["team_id"])]
            moved = rules.team_delta(r["score"], delta)
            ta[0] += moved
            if moved:
                ta[1] = at if ta[1] is None else max(ta[1], at)
            spec = specs[r["pk_id"]]
            score = None
            if r["score"] > 0:
                score = boards.rank_score(r["score"], r["reached_at"], spec.period)
            contribs[r["pk_id"]][r["team_id"]].append((boards.entry_bytes(r["member_id"]), score))
        totals = await repo.add_totals(
            conn, [(p, t, v[0], v[1]) for (p, t), v in sorted(team_adds.items())]
        )
        per_pk_totals: dict[int, list[tuple[int, int, datetime | None]]] = defaultdict(list)
        for r in totals:
            per_pk_totals[r["pk_id"]].append((r["team_id"], r["total"], r["reached_at"]))
        writes = [
            store.Write(
                specs[p].tenant_id,
                p,
                specs[p].expire_at,
                per_pk_totals[p],
                {t: items for t, items in contribs[p].items()},
            )
            for p in specs
        ]
        skipped = await store.apply(ctx, writes, ctx.clock.now())
        live = _live_cache(ctx)
        for p in specs:
            live.drop(p)  # this process's readers see the new scores at once
        if skipped:
            log.info("pk views not built; left for the next read to rebuild", pks=skipped)


# ---------------------------------------------------------------- rebuild


_building: dict[int, asyncio.Lock] = {}
rebuilt_on_read = 0


async def rebuild_pk(ctx: Context, spec: Spec, *, only_if_missing: bool = False) -> bool:
    """Recompute a PK's Redis view from PostgreSQL. The team rows are locked meanwhile, so
    scoring waits and nothing falls between the read and the swap. Single flight per process;
    ``only_if_missing``: stop when another reader built it first."""
    if len(_building) > 10_000:
        _building.clear()
    async with _building.setdefault(spec.id, asyncio.Lock()):
        meta = store.meta_key(ctx, spec.tenant_id, spec.id)
        if only_if_missing and await ctx.redis.hexists(meta, "built"):
            return False
        async with ctx.db.transaction() as conn:
            totals = await repo.team_totals(conn, spec.id, lock=True)
            rows = await repo.contributions(conn, spec.id)
            if only_if_missing and await ctx.redis.hexists(meta, "built"):
                return False
            contribs: dict[int, list[tuple[bytes, float]]] = {t: [] for t in spec.team_ids}
            period = spec.period
            for r in rows:
                if r["score"] > 0 and r["team_id"] in contribs:
                    contribs[r["team_id"]].append(
                        (
                            boards.entry_bytes(r["member_id"]),
                            boards.rank_score(r["score"], r["reached_at"], period),
                        )
                    )
            await store.replace(
                ctx,
                spec.tenant_id,
                spec.id,
                spec.team_ids,
                [(r["team_id"], r["total"], r["reached_at"]) for r in totals],
                contribs,
                max(spec.expire_at, int(ctx.clock.now().timestamp()) + 3600),
                ctx.clock.now(),
            )
        _live_cache(ctx).drop(spec.id)
    return True


async def rebuild(ctx: Context) -> dict[str, Any]:
    """``engage rebuild``: every unsettled PK's view from PostgreSQL."""
    async with ctx.db.connection() as conn:
        rows = await repo.all_unsettled(conn)
    for row in rows:
        await rebuild_pk(ctx, _spec(row))
    return {"pks": len(rows)}


# ---------------------------------------------------------------- the live scoreboard


async def _my_team(ctx: Context, spec: Spec, member_id: int) -> int | None:
    async def load() -> int | None:
        at = min(ctx.clock.now(), spec.end - timedelta(microseconds=1))
        async with ctx.db.connection() as conn:
            got = await teams.teams_at(conn, spec.tenant_id, spec.team_ids, [(member_id, at)])
        return next(iter(got.values()), None)

    return await _member_cache(ctx).get((spec.id, member_id), load)


async def _headcounts(ctx: Context, spec: Spec) -> dict[int, int]:
    """Distinct members of each team during the PK so far (cached HEADCOUNT_TTL_S): the
    divisor of an average PK, and shown for a sum PK too (the client guide's scoreboard)."""

    async def load() -> dict[int, int]:
        end = min(max(ctx.clock.now(), spec.start + timedelta(microseconds=1)), spec.end)
        async with ctx.db.connection() as conn:
            return await teams.headcounts(conn, spec.team_ids, spec.start, end)

    return await _headcount_cache(ctx).get(spec.id, load)


async def _team_info(ctx: Context, spec: Spec) -> dict[int, Any]:
    """The PK's teams (key, name), cached like the definition: a read asks PostgreSQL for
    nothing it already knows."""

    async def load() -> dict[int, Any]:
        async with ctx.db.connection() as conn:
            return await teams.teams_by_ids(conn, spec.tenant_id, spec.team_ids)

    return await _team_cache(ctx).get((spec.id, spec.team_ids), load)


async def _shown(ctx: Context, tenant_id: int, member_ids: list[int]) -> dict[int, Shown]:
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
        for m in missing:
            d = found.get(m)
            out[m] = Shown(d.masked_nickname, d.avatar_url) if d else Shown(members.ANONYMOUS, "")
            cache.put((tenant_id, m), out[m])
    return out


class _Live(msgspec.Struct, frozen=True):
    """The per-PK part of a live scoreboard (the same for every member), cached LIVE_TTL_S:
    ranked standings (no "mine"/"me" marks) and the member ids of each team's top
    contributors, in the same order."""

    standings: list[tuple[int, TeamStanding, list[int]]]  # (team id, standing, top ids)
    keys: dict[int, str]  # team id -> key


def _live_cache(ctx: Context) -> Cache[int, _Live]:
    return ctx.caches.get(LIVE_CACHE, LIVE_TTL_S)


async def _live_of(ctx: Context, spec: Spec, view: store.View) -> _Live:
    heads = await _headcounts(ctx, spec)
    ranked = rules.rank_teams(
        spec.aggregation,
        spec.min_headcount,
        [
            rules.Standing(t, view.totals.get(t, 0), heads.get(t, 0), view.reached.get(t))
            for t in spec.team_ids
        ],
    )
    index = {t: i for i, t in enumerate(spec.team_ids)}
    tops = {
        t: [(boards.entry_of(m), boards.rank_decode(s)) for m, s in view.top[index[t]]]
        for t in spec.team_ids
    }
    shown = await _shown(ctx, spec.tenant_id, [m for items in tops.values() for m, _ in items])
    info = await _team_info(ctx, spec)
    standings = [
        (
            r.team_id,
            TeamStanding(
                rank=r.rank,
                key=info[r.team_id].key,
                name=info[r.team_id].name,
                score=rules.shown(r.score),
                total=r.total,
                headcount=r.headcount,
                reached_at=r.reached_at,
                is_mine=False,
                top_contributors=[
                    Contributor(i + 1, shown[m], s) for i, (m, s) in enumerate(tops[r.team_id])
                ],
                contributors=view.counts[index[r.team_id]],
            ),
            [m for m, _ in tops[r.team_id]],
        )
        for r in ranked
        if r.team_id in info
    ]
    return _Live(standings, {t: info[t].key for t in info})


def _marked(live: _Live, my_team: int | None, member_id: int) -> list[TeamStanding]:
    """The cached standings with my team and my own line marked (copies; the cache is
    shared)."""
    out = []
    for team_id, standing, top_ids in live.standings:
        if member_id in top_ids:  # (in an earlier team too, after a switch)
            i = top_ids.index(member_id)
            tops = list(standing.top_contributors)
            tops[i] = msgspec.structs.replace(tops[i], is_me=True)
            standing = msgspec.structs.replace(standing, top_contributors=tops)
        if team_id == my_team:
            standing = msgspec.structs.replace(standing, is_mine=True)
        out.append(standing)
    return out


async def read(
    ctx: Context, tenant_id: int, member_id: int, key: str, rate: RateCheck | None = None
) -> PkBoard:
    """The live scoreboard: team scores and ranks, my team, my contribution and rank in it,
    top contributors per team, time left. Settled: the frozen results from PostgreSQL.

    Live, ONE Redis call (which also counts the request's rate limit ``rate`` first): the
    per-PK part (scores, ranks, top contributors with display names) is cached in this
    process for LIVE_TTL_S and dropped when this process applies events to the PK, so a
    warm read asks Redis only for my place; a cold one reads the whole board and my place
    in the same call. A PK whose view Redis lost is rebuilt from PostgreSQL on the read."""
    spec = await spec_of(ctx, tenant_id, key)
    if spec.settled:
        return await _read_settled(ctx, spec, member_id)
    my_team = await _my_team(ctx, spec, member_id)
    me_bytes = boards.entry_bytes(member_id)
    team_ids = list(spec.team_ids)
    cache = _live_cache(ctx)
    live = cache.peek(spec.id)
    place: tuple[int | None, float | None] | None = None
    for _ in range(3):
        try:
            if live is not None:
                place = await store.read_mine(
                    ctx, tenant_id, spec.id, team_ids, my_team, me_bytes, rate
                )
            else:
                generation = cache.generation
                view = await store.read(
                    ctx, tenant_id, spec.id, team_ids, spec.top, my_team, me_bytes, rate
                )
                live = await _live_of(ctx, spec, view)
                cache.put(spec.id, live, generation)
                place = view.my_rank, view.my_score
            break
        except store.NotBuilt:
            global rebuilt_on_read
            live = None
            if await rebuild_pk(ctx, spec, only_if_missing=True):
                rebuilt_on_read += 1
    if place is None or live is None:
        raise DependencyUnavailable(
            details={"dependency": "redis", "problem": "the PK could not be rebuilt"}
        )
    my_rank, my_score = place
    me = MeInPk(
        live.keys.get(my_team) if my_team is not None else None,
        boards.rank_decode(my_score) if my_score is not None else 0,
        None if my_rank is None else my_rank + 1,
    )
    return _board(ctx, spec, _marked(live, my_team, member_id), me, None)


def _board(
    ctx: Context, spec: Spec, standings: list[TeamStanding], me: MeInPk, winner: str | None
) -> PkBoard:
    now = ctx.clock.now()
    left = max(0, int((spec.end - max(now, spec.start)).total_seconds()))
    return PkBoard(
        key=spec.key,
        name=spec.name,
        state=rules.state_of(spec.start, spec.end, spec.settled, now),
        starts_at=spec.start,
        ends_at=spec.end,
        time_left_seconds=left if now < spec.end else 0,
        metric=spec.metric,
        aggregation=spec.aggregation,
        teams=standings,
        me=me,
        winner=winner,
    )


async def _read_settled(ctx: Context, spec: Spec, member_id: int) -> PkBoard:
    async with ctx.db.connection() as conn:
        results = await repo.results(conn, spec.id)
        contribs = await repo.contributions(conn, spec.id)
        info = await teams.teams_by_ids(conn, spec.tenant_id, spec.team_ids)
    my_team = await _my_team(ctx, spec, member_id)
    per_team: dict[int, list[Any]] = defaultdict(list)
    for c in contribs:
        if c["score"] > 0:
            per_team[c["team_id"]].append(c)
    wanted = [c["member_id"] for cs in per_team.values() for c in cs[: spec.top]]
    shown = await _shown(ctx, spec.tenant_id, wanted)
    standings = []
    winner = None
    for r in results:
        cs = per_team[r["team_id"]]
        if r["winner"]:
            winner = info[r["team_id"]].key
        standings.append(
            TeamStanding(
                rank=r["rank"],
                key=info[r["team_id"]].key,
                name=info[r["team_id"]].name,
                score=float(r["score"]),
                total=r["total"],
                headcount=r["headcount"],
                reached_at=r["reached_at"],
                is_mine=r["team_id"] == my_team,
                top_contributors=[
                    Contributor(
                        i + 1, shown[c["member_id"]], c["score"], c["member_id"] == member_id
                    )
                    for i, c in enumerate(cs[: spec.top])
                ],
                contributors=len(cs),
                mvp=(
                    Contributor(
                        1,
                        (await _shown(ctx, spec.tenant_id, [r["mvp_member_id"]]))[
                            r["mvp_member_id"]
                        ],
                        r["mvp_score"],
                        r["mvp_member_id"] == member_id,
                    )
                    if r["mvp_member_id"] is not None
                    else None
                ),
            )
        )
    mine = [c for c in per_team.get(my_team or 0, [])]
    pos = next((i for i, c in enumerate(mine) if c["member_id"] == member_id), None)
    me = MeInPk(
        info[my_team].key if my_team in info else None,
        mine[pos]["score"] if pos is not None else 0,
        pos + 1 if pos is not None else None,
    )
    return _board(ctx, spec, standings, me, winner)


# ---------------------------------------------------------------- settlement


def _settlement_out(
    spec: Spec, row: Any, results: list[Any], info: dict[int, Any], rewarded: int
) -> SettlementOut:
    winner = next((info[r["team_id"]].key for r in results if r["winner"]), None)
    return SettlementOut(
        key=spec.key,
        settled_at=row["settled_at"],
        settled_by=row["settled_by"] or "",
        winner=winner,
        results=[
            TeamResult(
                r["rank"],
                info[r["team_id"]].key,
                float(r["score"]),
                r["total"],
                r["headcount"],
                r["reached_at"],
                bool(r["winner"]),
                r["mvp_member_id"],
                r["mvp_score"],
            )
            for r in results
        ],
        rewarded_members=rewarded,
    )


async def settle(uow: UnitOfWork, tenant_id: int, key: str, by: str) -> SettlementOut:
    """Settle a PK exactly once: freeze the final standings in PostgreSQL, decide the winner
    (pure rules), reward each member of the winning team and each team's MVP through the
    ledger (one idempotency key per member and reward), emit ``pk.settled``, a ``pk.won`` per
    winning member (ceremonies and badges follow it) and ``pk.mvp``. The PK row lock makes a
    concurrent second settlement (the job and an operator at once) wait and then answer the
    first result. Before the end: 409 PK_NOT_ENDED."""
    ctx, conn = uow.ctx, uow.conn
    now = ctx.clock.now()
    row = await repo.lock_pk(conn, tenant_id, key)
    if row is None:
        raise DomainError("PK_NOT_FOUND", details={"key": key})
    spec = _spec(row)
    info = await teams.teams_by_ids(conn, tenant_id, spec.team_ids)
    if row["settled_at"] is not None:
        # The first result, as it was answered (the membership history does not change).
        results = await repo.results(conn, spec.id)
        won = next((r["team_id"] for r in results if r["winner"]), None)
        rewarded = (
            len((await teams.members_at(conn, [won], spec.end - timedelta(microseconds=1)))[won])
            if won is not None
            else 0
        )
        return _settlement_out(spec, row, results, info, rewarded)
    if now < spec.end:
        raise DomainError("PK_NOT_ENDED", details={"key": key, "endsAt": spec.end})
    totals = await repo.team_totals(conn, spec.id, lock=True)
    heads = (
        await teams.headcounts(conn, spec.team_ids, spec.start, spec.end)
        if spec.aggregation == "average"
        else {}
    )
    ranked = rules.rank_teams(
        spec.aggregation,
        spec.min_headcount,
        [
            rules.Standing(r["team_id"], r["total"], heads.get(r["team_id"], 0), r["reached_at"])
            for r in totals
        ],
    )
    win = rules.winner(ranked)
    contribs: dict[int, list[rules.Contribution]] = defaultdict(list)
    for c in await repo.contributions(conn, spec.id):
        contribs[c["team_id"]].append((c["member_id"], c["score"], c["reached_at"]))
    mvps = {t: rules.mvp(contribs.get(t, [])) for t in spec.team_ids}
    results = [
        {
            "team_id": r.team_id,
            "rank": r.rank,
            "total": r.total,
            "headcount": r.headcount,
            "score": str(rules.shown(r.score)),
            "reached_at": r.reached_at,
            "mvp_member_id": mv[0] if (mv := mvps.get(r.team_id)) else None,
            "mvp_score": mv[1] if mv else None,
            "winner": int(r.team_id == win),
        }
        for r in ranked
    ]
    await repo.insert_results(conn, tenant_id, spec.id, results)
    winners = (
        (await teams.members_at(conn, [win], spec.end - timedelta(microseconds=1)))[win]
        if win is not None
        else []
    )
    credits = []
    for m in winners:
        for currency in ("points", "growth"):
            amount = int(spec.reward_win.get(currency, 0))
            if amount > 0:
                credits.append(
                    points.Credit(
                        m,
                        currency,
                        amount,
                        "pk.won",
                        spec.name,
                        f"pk:{spec.key}",
                        f"pk:{spec.id}:won:{m}:{currency}",
                    )
                )
    for t, best in mvps.items():
        if best is None:
            continue
        for currency in ("points", "growth"):
            amount = int(spec.reward_mvp.get(currency, 0))
            if amount > 0:
                credits.append(
                    points.Credit(
                        best[0],
                        currency,
                        amount,
                        "pk.mvp",
                        spec.name,
                        f"pk:{spec.key}",
                        f"pk:{spec.id}:mvp:{t}:{currency}",
                    )
                )
    if credits:
        await points.apply_credits(uow, tenant_id, credits)
    win_key = info[win].key if win is not None and win in info else None
    payload_results = [
        {
            "team": info[r["team_id"]].key,
            "rank": r["rank"],
            "score": r["score"],
            "total": r["total"],
            "mvp": r["mvp_member_id"],
        }
        for r in results
        if r["team_id"] in info
    ]
    # pk.settled: one for the PK (no member: webhooks, audit) and one per member of each team
    # at the end (reminders send each the result: "东区店 第1名").
    summary = {
        "key": spec.key,
        "pkKey": spec.key,
        "name": spec.name,
        "title": spec.name,
        "winner": win_key,
        "results": payload_results,
    }
    events: list[tuple[int, str, int | None, dict[str, Any], datetime]] = [
        (tenant_id, "pk.settled", None, summary, now)
    ]
    at_end = await teams.members_at(conn, spec.team_ids, spec.end - timedelta(microseconds=1))
    rank_of = {r["team_id"]: r["rank"] for r in results}
    for t, ms in at_end.items():
        if t not in info:
            continue
        result = f"{info[t].name} 第{rank_of.get(t, 0)}名"
        events += [
            (
                tenant_id,
                "pk.settled",
                m,
                {
                    "key": spec.key,
                    "pkKey": spec.key,
                    "name": spec.name,
                    "title": spec.name,
                    "team": info[t].key,
                    "rank": rank_of.get(t, 0),
                    "won": t == win,
                    "result": result,
                    "winner": win_key,
                },
                now,
            )
            for m in ms
        ]
    events += [
        (
            tenant_id,
            "pk.won",
            m,
            {
                "key": spec.key,
                "name": spec.name,
                "team": win_key,
                "teamName": info[win].name if win is not None else "",
                "reward": spec.reward_win,
            },
            now,
        )
        for m in winners
    ]
    events += [
        (
            tenant_id,
            "pk.mvp",
            best[0],
            {"key": spec.key, "name": spec.name, "team": info[t].key, "score": best[1]},
            now,
        )
        for t, best in mvps.items()
        if best is not None and t in info
    ]
    for tid, type_, member_id, payload, at in events:
        uow.emit(tenant_id=tid, type=type_, member_id=member_id, payload=payload, occurred_at=at)
    await repo.mark_settled(conn, spec.id, now, by)
    # Every process drops its copy once the change is committed.
    uow.after_commit(functools.partial(ctx.caches.changed, SPEC_CACHE, (tenant_id, key)))
    row = await repo.get_pk_by_id(conn, spec.id)
    log.info("pk settled", pk=spec.id, winner=win_key, rewarded=len(winners))
    return _settlement_out(spec, row, await repo.results(conn, spec.id), info, len(winners))


async def settle_due(ctx: Context) -> int:
    """Periodic job: settle every PK whose end plus its settle delay has passed."""
    now = ctx.clock.now()
    async with ctx.db.connection() as conn:
        due = await repo.due(conn, now)
    done = 0
    for d in due:
        delay = timedelta(seconds=int(d["config"].get("settleDelaySeconds", 60)))
        if now < d["ends_at"] + delay:
            continue
        try:
            async with unit_of_work(ctx) as uow:
                await settle(uow, d["tenant_id"], d["key"], "job")
            done += 1
        except Exception:
            log.exception("pk settlement failed", pk=d["id"])
    if done:
        ctx.dispatcher.wake()
    return done
