"""Ceremonies (荣誉仪式) and the honour wall (喜报).

Every honour event (``badge.earned``, ``title.gained``, ``level.up``, a red-list place,
``challenge.won``, a grand ``prize.won``, ``ritual.completed``) becomes exactly one ceremony per
member: its unique key is the event and the member, so redelivery creates nothing new. The
member's client asks for pending ceremonies on launch, plays them (grouped by the business
event they came from) and acks each. Copy is rendered at read time from templates (zh-CN
default, English by Accept-Language, a tenant may override), so a template change applies to
ceremonies already waiting.
"""

from __future__ import annotations

import functools
import time
import uuid
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import msgspec

from service.ceremonies import repository as repo
from service.ceremonies import rules, store
from service.ceremonies.schemas import (
    AckOut,
    Assets,
    CeremonyGroup,
    CeremonyOut,
    CeremonyPage,
    CeremonySettingsIn,
    CeremonySettingsOut,
    PendingOut,
    ShareCard,
    TemplateIn,
    WallEntry,
    WallEntryOut,
    WallMember,
    WallPage,
    WallPreferenceOut,
)
from service.core import cursors, outbox
from service.core.constraints import validation_failed
from service.core.context import Context
from service.core.errors import DomainError, register_codes
from service.core.outbox import Event
from service.core.uow import UnitOfWork

register_codes(
    {
        "CEREMONY_NOT_FOUND": (404, "仪式不存在", "No such ceremony for this member."),
        "CEREMONY_KIND_UNKNOWN": (404, "未知的仪式类型", "No such ceremony kind."),
        "HONOUR_NOT_FOUND": (404, "喜报不存在", "No such honour wall entry."),
    }
)

SUBSCRIBER = "ceremonies"
MAX_PENDING = 20
MAX_PAGE = 50
SETTINGS_TTL_S = 5.0
SETTINGS_CACHE = "ceremonies.settings"  # tenant -> {kind: override}; dropped on put_settings


async def _tenant_settings(
    ctx: Context, conn: asyncpg.Connection, tenant_id: int
) -> dict[str, dict]:
    async def load() -> dict[str, dict]:
        return await repo.settings_of(conn, tenant_id)

    return await ctx.caches.get(SETTINGS_CACHE, SETTINGS_TTL_S).get(tenant_id, load)


def _expiry_days(settings: dict[str, dict], kind: str) -> int:
    return int(settings.get(kind, {}).get("expiryDays") or rules.EXPIRY_DAYS[kind])


def _template(settings: dict[str, dict], kind: str, lang: str) -> tuple[str, str]:
    own = settings.get(kind, {}).get(lang)
    if own:
        return own["headline"], own.get("copy", "")
    return rules.TEMPLATES[lang][kind]


# ---------------------------------------------------------------- the subscriber


async def on_events(ctx: Context, events: list[Event]) -> None:
    """Outbox subscriber: one ceremony per honour per member, exactly once (unique key);
    emits ``ceremony.created`` for each new one and refreshes the honour wall's cache.

    A ``badge.revoked`` withdraws the ceremonies of that earned badge (``memberBadgeId``) and
    of the title it gave: no longer pending, off the wall. Events are handled in delivery
    order (honours before a revoke are created, then withdrawn), and a badge or title
    ceremony is only created while its earned badge is still held (checked under a share lock
    in the creating transaction), so an award and a revoke give the same end state whichever
    the subscriber sees first; a re-award after a revoke is a new honour with one ceremony."""
    origin = rules.sources(events)
    found: dict[int, list[rules.Honour]] = defaultdict(list)
    for e in events:
        if e.type == "badge.revoked" and e.member_id is not None:
            await _create(ctx, found)
            found = defaultdict(list)
            await _withdraw(ctx, e)
            continue
        found[e.tenant_id].extend(
            rules.honours(
                e.type, str(e.event_id), e.member_id, e.payload, origin.get((e.txid, e.member_id))
            )
        )
    await _create(ctx, found)


async def _withdraw(ctx: Context, e: Event) -> None:
    assert e.member_id is not None
    async with ctx.db.transaction() as conn:
        n = await repo.withdraw_badge(
            conn,
            e.tenant_id,
            e.member_id,
            str(e.payload.get("key")),
            str(e.payload.get("period") or ""),
            bool(e.payload.get("titleDropped")),
            e.payload.get("memberBadgeId"),
            e.payload.get("awardNo"),
        )
    if n:
        await store.wall_bump(ctx, e.tenant_id)


def _member_badge_of(h: rules.Honour) -> int | None:
    if h.kind not in ("badge", "title"):
        return None
    got = h.facts.get("memberBadgeId")
    return int(got) if isinstance(got, int) else None


async def _create(ctx: Context, found: dict[int, list[rules.Honour]]) -> None:
    from service.badges import service as badges

    now = ctx.clock.now()
    for tenant_id, items in found.items():
        if not items:
            continue
        async with ctx.db.transaction() as conn:
            wanted = sorted({b for h in items if (b := _member_badge_of(h)) is not None})
            live = await badges.live_member_badges(conn, tenant_id, wanted)
            items = [h for h in items if (b := _member_badge_of(h)) is None or b in live]
            if not items:
                continue
            settings = await _tenant_settings(ctx, conn, tenant_id)
            rows = await repo.insert(
                conn,
                tenant_id,
                [
                    (
                        h.member_id,
                        h.kind,
                        h.dedup_key,
                        h.group_key,
                        h.priority,
                        h.facts,
                        h.assets,
                        now + timedelta(days=_expiry_days(settings, h.kind)),
                    )
                    for h in items
                ],
                now,
            )
            await outbox.write(
                conn,
                [
                    outbox.OutboxRow(
                        tenant_id,
                        uuid.uuid4(),
                        "ceremony.created",
                        r["member_id"],
                        {"ceremonyId": r["id"], "kind": r["kind"], "groupKey": r["group_key"]},
                        now,
                    )
                    for r in rows
                ],
            )
        if rows:
            await store.wall_bump(ctx, tenant_id)


# ---------------------------------------------------------------- the member's queue


async def _member_card(ctx: Context, conn: asyncpg.Connection, tenant_id: int, member_id: int):  # type: ignore[no-untyped-def]
    from service.members import service as members

    profile = await members.profile(ctx, tenant_id, member_id, conn)
    return members.mask_nickname(profile.nickname), profile.member_no


def _out(
    ctx: Context,
    row: Any,
    settings: dict[str, dict],
    lang: str,
    masked: str,
    member_no: int | None,
    tz: ZoneInfo,
) -> CeremonyOut:
    headline, copy = _template(settings, row["kind"], lang)
    facts = row["facts"]
    return CeremonyOut(
        row["id"],
        row["kind"],
        rules.render(headline, facts),
        rules.render(copy, facts),
        row["priority"],
        facts,
        Assets(row["assets"].get("icon", ""), row["assets"].get("animation", "")),
        ShareCard(
            masked,
            member_no,
            row["created_at"].astimezone(tz).date().isoformat(),
            rules.verification_code(ctx.settings.token_secret, row["tenant_id"], row["id"]),
        ),
        row["created_at"],
        row["expires_at"],
        row["played_at"],
    )


_zones: dict[int, tuple[float, ZoneInfo]] = {}


async def _zone(conn: asyncpg.Connection, tenant_id: int) -> ZoneInfo:
    """The tenant's time zone (the share card's date), cached per process like settings."""
    from service.core.tenancy import get_tenant

    hit = _zones.get(tenant_id)
    if hit is not None and hit[0] > time.monotonic():
        return hit[1]
    t = await get_tenant(conn, tenant_id)
    zone = ZoneInfo(t.timezone if t else "Asia/Shanghai")
    _zones[tenant_id] = (time.monotonic() + SETTINGS_TTL_S, zone)
    return zone


async def pending(
    ctx: Context, tenant_id: int, member_id: int, limit: int, lang: str
) -> PendingOut:
    """What to play on launch: at most ``limit`` groups, most important first, and how many
    pending ceremonies are left out. Expired ones are never returned."""
    if not 1 <= limit <= MAX_PENDING:
        raise DomainError(
            "VALIDATION_FAILED",
            details={
                "problems": [
                    {
                        "source": "query",
                        "path": "limit",
                        "code": "OUT_OF_RANGE",
                        "problem": f"1..{MAX_PENDING}",
                    }
                ]
            },
        )
    now = ctx.clock.now()
    async with ctx.db.connection() as conn:
        rows = await repo.pending(conn, tenant_id, member_id, now, 200)
        if not rows:
            return PendingOut([], 0)
        total = (
            len(rows)
            if len(rows) < 200
            else await repo.count_pending(conn, tenant_id, member_id, now)
        )
        settings = await _tenant_settings(ctx, conn, tenant_id)
        masked, member_no = await _member_card(ctx, conn, tenant_id, member_id)
        tz = await _zone(conn, tenant_id)
    groups = rules.group(list(rows))[:limit]
    shown = sum(len(g) for g in groups)
    return PendingOut(
        [
            CeremonyGroup(
                g[0]["group_key"],
                [_out(ctx, r, settings, lang, masked, member_no, tz) for r in g],
            )
            for g in groups
        ],
        total - shown,
    )


async def ack(uow: UnitOfWork, tenant_id: int, member_id: int, ceremony_id: int) -> AckOut:
    """Mark a ceremony played. Idempotent; another member's (or unknown) id: 404."""
    now = uow.ctx.clock.now()
    got = await repo.ack(uow.conn, tenant_id, member_id, ceremony_id, now)
    if got is None:
        raise DomainError("CEREMONY_NOT_FOUND", details={"id": ceremony_id})
    row, first = got
    if first:
        uow.emit(
            tenant_id=tenant_id,
            type="ceremony.played",
            member_id=member_id,
            payload={"ceremonyId": ceremony_id, "kind": row["kind"]},
            occurred_at=now,
        )
    return AckOut(ceremony_id, row["played_at"], not first)


async def played(
    ctx: Context, tenant_id: int, member_id: int, cursor: str | None, limit: int, lang: str
) -> CeremonyPage:
    """Ceremonies already played, newest first (to replay them)."""
    limit = max(1, min(limit, MAX_PAGE))
    before = cursors.decode("c", cursor)
    async with ctx.db.connection() as conn:
        rows = await repo.played(conn, tenant_id, member_id, before, limit)
        settings = await _tenant_settings(ctx, conn, tenant_id)
        masked, member_no = await _member_card(ctx, conn, tenant_id, member_id)
        tz = await _zone(conn, tenant_id)
    items = [_out(ctx, r, settings, lang, masked, member_no, tz) for r in rows]
    nxt = cursors.encode("c", rows[-1]["id"]) if len(rows) == limit else None
    return CeremonyPage(items, nxt)


async def replay(
    ctx: Context, tenant_id: int, member_id: int, ceremony_id: int, lang: str
) -> CeremonyOut:
    """One of my ceremonies, played or not (the replay button); 404 for anyone else's."""
    async with ctx.db.connection() as conn:
        row = await repo.one(conn, tenant_id, member_id, ceremony_id)
        if row is None:
            raise DomainError("CEREMONY_NOT_FOUND", details={"id": ceremony_id})
        settings = await _tenant_settings(ctx, conn, tenant_id)
        masked, member_no = await _member_card(ctx, conn, tenant_id, member_id)
        tz = await _zone(conn, tenant_id)
    return _out(ctx, row, settings, lang, masked, member_no, tz)


# ---------------------------------------------------------------- operator settings


def _check_kind(kind: str) -> None:
    if kind not in rules.KINDS:
        raise DomainError(
            "CEREMONY_KIND_UNKNOWN", details={"kind": kind, "known": list(rules.KINDS)}
        )


def _settings_out(kind: str, own: dict | None) -> CeremonySettingsOut:
    own = own or {}
    zh = own.get("zh") or dict(zip(("headline", "copy"), rules.TEMPLATES["zh"][kind], strict=True))
    en = own.get("en") or dict(zip(("headline", "copy"), rules.TEMPLATES["en"][kind], strict=True))
    return CeremonySettingsOut(
        kind,  # type: ignore[arg-type]
        msgspec.convert(zh, TemplateIn),
        msgspec.convert(en, TemplateIn),
        int(own.get("expiryDays") or rules.EXPIRY_DAYS[kind]),
        bool(own),
    )


async def put_settings(
    uow: UnitOfWork, tenant_id: int, kind: str, data: CeremonySettingsIn
) -> CeremonySettingsOut:
    """Override a kind's templates and expiry for the tenant. Unknown {placeholders}: 422
    VALIDATION_FAILED with every problem, nothing saved."""
    _check_kind(kind)
    problems = []
    for lang in ("zh", "en"):
        t: TemplateIn | None = getattr(data, lang)
        if t is None:
            continue
        problems += rules.template_problems(kind, lang, t.headline, f"{lang}.headline")
        problems += rules.template_problems(kind, lang, t.copy, f"{lang}.copy")
    if problems:
        raise validation_failed(problems)
    config = {k: v for k, v in msgspec.to_builtins(data).items() if v is not None}
    await repo.put_settings(uow.conn, tenant_id, kind, config, uow.ctx.clock.now())
    uow.after_commit(functools.partial(uow.ctx.caches.changed, SETTINGS_CACHE, tenant_id))
    return _settings_out(kind, config)


async def get_settings(ctx: Context, tenant_id: int, kind: str) -> CeremonySettingsOut:
    _check_kind(kind)
    async with ctx.db.connection() as conn:
        return _settings_out(kind, (await repo.settings_of(conn, tenant_id)).get(kind))


# ---------------------------------------------------------------- the honour wall


class _WallRow(msgspec.Struct, array_like=True):
    """A cached wall entry: what the honour was, not who the member looks like now."""

    id: int
    kind: str
    member_id: int
    facts: dict[str, Any]
    at: datetime


class _WallRows(msgspec.Struct, array_like=True):
    rows: list[_WallRow]
    next_cursor: str | None


_page_encoder = msgspec.json.Encoder()
_page_decoder = msgspec.json.Decoder(_WallRows)


async def wall(
    ctx: Context, tenant_id: int, kind: str | None, cursor: str | None, limit: int, lang: str
) -> WallPage:
    """Recent honours across the tenant, newest first: masked nicknames, avatars and shown
    titles; hidden entries and members who opted out never appear.

    Which entries a page holds is cached in Redis and invalidated by every change to it (see
    store.py); who the members look like (nickname, avatar, shown title) and the headline's
    template are joined at read time, so a member's profile change shows on the next read."""
    if kind is not None:
        _check_kind(kind)
    limit = max(1, min(limit, MAX_PAGE))
    before = cursors.decode("w", cursor)
    field = f"{kind or ''}|{before or ''}|{limit}"
    gen, cached = await store.wall_get(ctx, tenant_id, field)
    from service.badges import service as badges
    from service.members import service as members

    async with ctx.db.connection() as conn:
        if cached is not None:
            page = _page_decoder.decode(cached)
        else:
            rows = await repo.wall(conn, tenant_id, kind, before, limit)
            page = _WallRows(
                [
                    _WallRow(r["id"], r["kind"], r["member_id"], r["facts"], r["created_at"])
                    for r in rows
                ],
                cursors.encode("w", rows[-1]["id"]) if len(rows) == limit else None,
            )
            await store.wall_put(ctx, tenant_id, gen, field, _page_encoder.encode(page))
        ids = sorted({r.member_id for r in page.rows})
        shown = await members.display_info(conn, tenant_id, ids)
        titles = await badges.shown_titles(ctx, conn, tenant_id, ids)
        settings = await _tenant_settings(ctx, conn, tenant_id)
    items = []
    for r in page.rows:
        d = shown.get(r.member_id)
        headline, _ = _template(settings, r.kind, lang)
        items.append(
            WallEntry(
                r.id,
                r.kind,  # type: ignore[arg-type]
                rules.render(headline, r.facts),
                WallMember(
                    d.masked_nickname if d else members.ANONYMOUS,
                    d.avatar_url if d else "",
                    titles.get(r.member_id),
                ),
                r.facts,
                r.at,
            )
        )
    return WallPage(items, page.next_cursor)


async def set_wall_preference(
    uow: UnitOfWork, tenant_id: int, member_id: int, hidden: bool
) -> WallPreferenceOut:
    """Opt out of (or back into) the honour wall (``wall_changed`` runs after the commit)."""
    await repo.set_preference(uow.conn, tenant_id, member_id, hidden, uow.ctx.clock.now())
    uow.after_commit(functools.partial(wall_changed, uow.ctx, tenant_id))
    return WallPreferenceOut(hidden)


async def hide_entry(
    uow: UnitOfWork, tenant_id: int, ceremony_id: int, hidden: bool
) -> WallEntryOut:
    """An operator hides (or shows again) one honour on the wall; 404 HONOUR_NOT_FOUND.
    ``wall_changed`` runs after the commit."""
    if not await repo.set_wall_hidden(uow.conn, tenant_id, ceremony_id, hidden):
        raise DomainError("HONOUR_NOT_FOUND", details={"id": ceremony_id})
    uow.after_commit(functools.partial(wall_changed, uow.ctx, tenant_id))
    return WallEntryOut(ceremony_id, hidden)


async def pending_count(
    ctx: Context, conn: asyncpg.Connection, tenant_id: int, member_id: int
) -> int:
    """Public: how many ceremonies wait for the member (for the launch card)."""
    return await repo.count_pending(conn, tenant_id, member_id, ctx.clock.now())


async def wall_changed(ctx: Context, tenant_id: int) -> None:
    """After a change to what the wall may show has committed: cached pages are dropped, and
    a page built from the state before the commit can no longer be cached (generations)."""
    await store.wall_bump(ctx, tenant_id)


def clear_caches() -> None:
    _zones.clear()


async def rebuild(ctx: Context) -> dict[str, Any]:
    """The honour wall cache is the only Redis view: start a new generation for every tenant
    that has ceremonies (pages are rebuilt from PostgreSQL on the next read)."""
    async with ctx.db.connection() as conn:
        tenants = await repo.tenants_with_ceremonies(conn)
    for t in tenants:
        await store.wall_bump(ctx, t)
    return {"wallCaches": len(tenants)}
