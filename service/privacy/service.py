"""Member privacy (PIPL) over the features' public functions: the support card, the export
of one member's data, and erasure (personal fields removed or anonymized; the ledger, its
totals and every audit stay; boards and the honour wall no longer show the member)."""

from __future__ import annotations

import functools

import asyncpg
import msgspec

from service.badges import service as badges
from service.ceremonies import service as ceremonies
from service.core.context import Context
from service.core.uow import UnitOfWork
from service.leaderboards import service as leaderboards
from service.members import service as members
from service.points import service as points
from service.privacy.schemas import EraseOut, ExportOut, SupportCard
from service.rituals import rules as ritual_rules
from service.rituals import service as rituals
from service.wheel import service as wheel

EXPORT_PAGE = 500
EXPORT_MAX_ROWS = 100_000


async def support_card(ctx: Context, tenant_id: int, external_id: str) -> SupportCard:
    """GET /admin/v1/members/{externalId}: 404 MEMBER_NOT_FOUND."""
    async with ctx.db.connection() as conn:
        member_id = await members.resolve_member_id(conn, tenant_id, external_id)
        profile = await members.profile(ctx, tenant_id, member_id, conn)
        card = await points.member_card(ctx, conn, tenant_id, member_id)
        status, _ = await rituals.member_state(ctx, conn, tenant_id, member_id)
        personal = await rituals.personal_data(conn, tenant_id, member_id)
        invites = await rituals.invite_counts(conn, tenant_id, member_id)
        _, held = await badges.recent_badges(ctx, conn, tenant_id, member_id, 0)
        pending = await ceremonies.pending_count(ctx, conn, tenant_id, member_id)
        number = await rituals.formatted_number(conn, tenant_id, profile.member_no)
        erased = await rituals.erased_at(conn, tenant_id, member_id)
    return SupportCard(
        member_id,
        profile.external_id,
        profile.nickname,
        ritual_rules.mask_phone(personal["profile"].get("phone")),
        profile.member_no,
        number,
        profile.joined_at,
        card.points,
        card.growth,
        card.level["name"] if card.level else None,
        status,
        personal["invitedBy"],
        invites[0],
        invites[1],
        held,
        pending,
        erased,
    )


async def _ledger(ctx: Context, conn: asyncpg.Connection, tenant_id: int, member_id: int) -> list:
    out: list[dict] = []
    before: int | None = None
    while len(out) < EXPORT_MAX_ROWS:
        page = await points.history(ctx, conn, tenant_id, member_id, None, before, EXPORT_PAGE)
        out += [msgspec.to_builtins(e) for e in page]
        if len(page) < EXPORT_PAGE:
            break
        before = page[-1].id
    return out


async def export(ctx: Context, tenant_id: int, external_id: str) -> ExportOut:
    """GET /admin/v1/members/{externalId}/export: everything held about one member."""
    async with ctx.db.connection() as conn:
        member_id = await members.resolve_member_id(conn, tenant_id, external_id)
        profile = await members.profile(ctx, tenant_id, member_id, conn)
        identities = await members.identities(conn, tenant_id, member_id)
        personal = await rituals.personal_data(conn, tenant_id, member_id)
        ledger = await _ledger(ctx, conn, tenant_id, member_id)
    held = await badges.my_badges(ctx, tenant_id, member_id)
    prizes: list[dict] = []
    before: int | None = None
    while len(prizes) < EXPORT_MAX_ROWS:
        page = await wheel.my_awards(ctx, tenant_id, member_id, before, EXPORT_PAGE)
        prizes += [msgspec.to_builtins(a) for a in page]
        if len(page) < EXPORT_PAGE:
            break
        before = page[-1].id
    phone = personal["profile"].get("phone")
    ritual = {
        **personal,
        "profile": {**personal["profile"], "phone": ritual_rules.mask_phone(phone)},
    }
    return ExportOut(
        ctx.clock.now(),
        msgspec.to_builtins(profile),
        [{**i, "created_at": i["created_at"].isoformat()} for i in identities],
        ritual,
        ledger,
        msgspec.to_builtins(held),
        prizes,
    )


async def erase(
    uow: UnitOfWork, tenant_id: int, external_id: str, reason: str, actor: str
) -> EraseOut:
    """POST /admin/v1/members/{externalId}/erase, in one transaction: nickname, avatar, login
    identities, ritual profile data and consents, prize contacts removed; the member leaves
    every board and the honour wall. The ledger, balances, member number and every audit row
    stay (their totals must still add up). Audited; repeating it changes nothing more. From
    then on brand events for the externalId are refused (MEMBER_ERASED), so the member never
    reappears on boards or walls nor is re-created.
    Redis boards and the wall cache are refreshed once the erasure committed."""
    ctx, conn = uow.ctx, uow.conn
    member_id = await members.resolve_member_id(conn, tenant_id, external_id)
    await members.erase_personal(conn, tenant_id, member_id, ctx.clock.now())
    await rituals.erase_personal(ctx, conn, tenant_id, member_id, actor, reason)
    contacts = await wheel.erase_contacts(conn, tenant_id, member_id)
    rows = await leaderboards.forget_member(ctx, conn, tenant_id, member_id)
    await ceremonies.set_wall_preference(uow, tenant_id, member_id, True)  # wall: after commit
    uow.after_commit(functools.partial(_after_erase, ctx, tenant_id))
    return EraseOut(external_id, ctx.clock.now(), rows, contacts)


async def _after_erase(ctx: Context, tenant_id: int) -> None:
    """Once the erasure committed: boards rebuilt from PostgreSQL (the wall pages are dropped by
    ``ceremonies.set_wall_preference``'s own after-commit hook)."""
    await leaderboards.boards_changed(ctx, tenant_id)
