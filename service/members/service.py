"""Member login and profile: verifiers, first-login creation, tokens, login-code replay."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import msgspec

from service.core.auth import TokenService
from service.core.context import Context
from service.core.errors import DomainError
from service.core.tenancy import find_wechat_app
from service.core.uow import UnitOfWork, unit_of_work
from service.members import repository as repo
from service.members.schemas import InviteOutcome, LoginOut, MemberOut, TokenOut, member_out
from service.members.wechat import DevVerifier, Verifier

_PENDING = b"pending"

# Who records an invite code given at login (the rituals feature registers itself, so that
# members know nothing of invitations): (uow, tenant_id, member_id, code) -> outcome.
InviteHook = Callable[[UnitOfWork, int, int, str], Awaitable[InviteOutcome]]
_invite_hooks: list[InviteHook] = []


def on_invite_code(hook: InviteHook) -> None:
    """Register the function that records invite codes given at login (one)."""
    if hook not in _invite_hooks:
        _invite_hooks.append(hook)


async def _invite(
    uow: UnitOfWork, tenant_id: int, member_id: int, code: str | None
) -> InviteOutcome | None:
    if code is None or not _invite_hooks:
        return None
    return await _invite_hooks[0](uow, tenant_id, member_id, code)


def _tokens(ctx: Context) -> TokenService:
    return ctx.tokens


def _emit_joined(uow: UnitOfWork, tenant_id: int, member_id: int, via: str) -> None:
    uow.emit(
        tenant_id=tenant_id,
        type="member.joined",
        member_id=member_id,
        payload={"via": via},
        occurred_at=uow.ctx.clock.now(),
    )


async def _login_once(
    ctx: Context, app_id: str, code: str, invite_code: str | None = None
) -> LoginOut:
    async with ctx.db.connection() as conn:
        app = await find_wechat_app(conn, app_id)
    if app is None:
        raise DomainError("APP_NOT_REGISTERED", details={"appId": app_id})
    verifier: Verifier
    if app["verifier"] == "dev":
        if not ctx.settings.dev_login_enabled:
            raise DomainError("DEV_LOGIN_DISABLED")
        verifier = DevVerifier()
    else:
        verifier = ctx.wechat_verifier
    ident = await verifier.verify(app_id, app["app_secret"], code)
    tenant_id = app["tenant_id"]
    async with unit_of_work(ctx) as uow:
        row, created = await repo.get_or_create_by_identity(
            uow.conn, tenant_id, "wechat", app_id, ident.openid, ident.unionid, ctx.clock.now()
        )
        if created:
            _emit_joined(uow, tenant_id, row["id"], "wechat")
        invitation = await _invite(uow, tenant_id, row["id"], invite_code)
    pair = _tokens(ctx).issue(tenant_id, row["id"])
    return LoginOut(
        pair.access_token,
        pair.expires_in,
        pair.refresh_token,
        pair.refresh_expires_in,
        member_out(row),
        created,
        invitation,
    )


async def login_wechat(
    ctx: Context, app_id: str, code: str, invite_code: str | None = None
) -> LoginOut:
    """Log in with a mini-program code. A repeated code within the replay window answers the
    first result (wx.request retries blindly; WeChat would reject the reused code with 40163)."""
    ttl = ctx.settings.login_replay_ttl_s
    if ttl <= 0:
        return await _login_once(ctx, app_id, code, invite_code)
    key = ctx.keys.global_("login", app_id, hashlib.sha256(code.encode()).hexdigest())
    for _ in range(50):
        if await ctx.redis.set(key, _PENDING, nx=True, ex=30):
            # The pending marker is a lock: released whatever happens unless the answer
            # replaced it (a failed or cancelled login lets the retry try again at once).
            answered = False
            try:
                result = await _login_once(ctx, app_id, code, invite_code)
                await ctx.redis.set(key, msgspec.json.encode(result), ex=ttl)
                answered = True
                return result
            finally:
                if not answered:
                    await ctx.redis.delete(key)
        cached = await ctx.redis.get(key)
        if cached and cached != _PENDING:
            return msgspec.json.decode(cached, type=LoginOut)
        await asyncio.sleep(0.1)
    raise DomainError("IDEMPOTENCY_IN_FLIGHT", headers={"Retry-After": "1"})


async def refresh(ctx: Context, refresh_token: str) -> TokenOut:
    member = _tokens(ctx).verify(refresh_token, typ="refresh")
    async with ctx.db.connection() as conn:
        if await repo.get(conn, member.tenant_id, member.member_id) is None:
            raise DomainError("TOKEN_INVALID")
    pair = _tokens(ctx).issue(member.tenant_id, member.member_id)
    return TokenOut(pair.access_token, pair.expires_in, pair.refresh_token, pair.refresh_expires_in)


async def mint_for_external_id(
    uow: UnitOfWork,
    tenant_id: int,
    external_id: str,
    nickname: str | None,
    avatar_url: str | None,
    invite_code: str | None = None,
) -> LoginOut:
    ctx, conn = uow.ctx, uow.conn
    row, created = await repo.get_or_create_by_external_id(
        conn, tenant_id, external_id, ctx.clock.now()
    )
    if nickname is not None or avatar_url is not None:
        row = await repo.update_profile(conn, tenant_id, row["id"], nickname, avatar_url)
    if created:
        _emit_joined(uow, tenant_id, row["id"], "h5")
    invitation = await _invite(uow, tenant_id, row["id"], invite_code)
    pair = _tokens(ctx).issue(tenant_id, row["id"])
    return LoginOut(
        pair.access_token,
        pair.expires_in,
        pair.refresh_token,
        pair.refresh_expires_in,
        member_out(row),
        created,
        invitation,
    )


async def resolve_member_id(conn, tenant_id: int, external_id: str) -> int:  # type: ignore[no-untyped-def]
    """Public lookup other features use: the member id behind a brand's externalId, or 404."""
    row = await repo.get_by_external_id(conn, tenant_id, external_id)
    if row is None:
        raise DomainError("MEMBER_NOT_FOUND", details={"externalId": external_id})
    return int(row["id"])


async def profile(ctx: Context, tenant_id: int, member_id: int, conn=None) -> MemberOut:  # type: ignore[no-untyped-def]
    """Public: the member's profile (on the caller's connection when given)."""
    if conn is None:
        async with ctx.db.connection() as own:
            row = await repo.get(own, tenant_id, member_id)
    else:
        row = await repo.get(conn, tenant_id, member_id)
    return profile_from(row)


def profile_from(row: Any) -> MemberOut:
    """Public: the profile from a member row read by the caller (``repository.COLUMNS``);
    401 TOKEN_INVALID when there is none (the member was erased)."""
    if row is None:
        raise DomainError("TOKEN_INVALID")
    return member_out(row)


async def update_profile(
    uow: UnitOfWork,
    tenant_id: int,
    member_id: int,
    nickname: str | None,
    avatar_url: str | None,
) -> MemberOut:
    conn = uow.conn
    row = await repo.update_profile(conn, tenant_id, member_id, nickname, avatar_url)
    if row is None:
        raise DomainError("TOKEN_INVALID")
    return member_out(row)


async def find_many(
    conn: asyncpg.Connection, tenant_id: int, external_ids: list[str]
) -> dict[str, int]:
    """Public: member ids for the brand's externalIds; unknown ones are absent."""
    return await repo.ids_by_external(conn, tenant_id, external_ids)


async def resolve_for_events(
    uow: UnitOfWork, tenant_id: int, external_ids: list[str], create: bool
) -> tuple[dict[str, int], set[str]]:
    """Public (event ingestion): (externalId -> member id, externalIds of erased members).
    An erased member is never resolved nor re-created: the caller refuses their events.
    ``create``: unknown externalIds become members (as ``resolve_many``). The lookup is the
    same one statement as without erasures."""
    found, erased = await repo.ids_and_erased(uow.conn, tenant_id, external_ids)
    if create:
        wanted = [e for e in external_ids if e not in erased]
        found = await _create_missing(uow, tenant_id, wanted, found)
    return found, erased


async def resolve_many(uow: UnitOfWork, tenant_id: int, external_ids: list[str]) -> dict[str, int]:
    """Public: member ids for the brand's externalIds, creating the missing ones (and queueing
    member.joined for each) in the unit of work."""
    found = await repo.ids_by_external(uow.conn, tenant_id, external_ids)
    return await _create_missing(uow, tenant_id, external_ids, found)


async def _create_missing(
    uow: UnitOfWork, tenant_id: int, external_ids: list[str], found: dict[str, int]
) -> dict[str, int]:
    """Create the members of ``external_ids`` not in ``found`` (queueing member.joined)."""
    ctx, conn = uow.ctx, uow.conn
    missing = [e for e in set(external_ids) if e not in found]
    if missing:
        now = ctx.clock.now()
        created = await repo.create_by_external(conn, tenant_id, missing, now)
        for mid in created.values():
            uow.emit(
                tenant_id=tenant_id,
                type="member.joined",
                member_id=mid,
                payload={"via": "event"},
                occurred_at=now,
            )
        found.update(created)
        still = [e for e in missing if e not in found]
        if still:  # created concurrently by another request
            found.update(await repo.ids_by_external(conn, tenant_id, still))
    return found


@dataclass(frozen=True, slots=True)
class MemberDisplay:
    """How another member is shown on boards and walls: masked unless a feature says otherwise."""

    nickname: str
    masked_nickname: str
    avatar_url: str


ANONYMOUS = "会员"


def mask_nickname(nickname: str) -> str:
    """Keep the first and last character, hide the middle: 张三丰 -> 张*丰, Alice -> A***e;
    one or two characters keep only the first. No nickname shows as 会员 (member)."""
    name = nickname.strip()
    if not name:
        return ANONYMOUS
    if len(name) <= 2:
        return name[0] + "*"
    return name[0] + "*" * min(len(name) - 2, 3) + name[-1]


async def display_info(conn, tenant_id: int, member_ids: list[int]) -> dict[int, MemberDisplay]:  # type: ignore[no-untyped-def]
    """Public batch lookup for other features: display info of members of one tenant by id.
    Ids of another tenant or unknown ids are simply absent from the answer."""
    if not member_ids:
        return {}
    rows = await repo.display_rows(conn, tenant_id, sorted(set(member_ids)))
    return {
        r["id"]: MemberDisplay(r["nickname"], mask_nickname(r["nickname"]), r["avatar_url"])
        for r in rows
    }


async def resolve_member_ids(conn, tenant_id: int, external_ids: list[str]) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """Public batch lookup: member ids behind the brand's externalIds (unknown ones absent)."""
    if not external_ids:
        return {}
    return await repo.ids_by_external(conn, tenant_id, sorted(set(external_ids)))


async def set_member_no(
    conn: asyncpg.Connection, tenant_id: int, member_id: int, member_no: int
) -> bool:
    """Public (the ritual feature): give the member ``member_no`` if it has no number yet;
    False when it already had one. A number held by another member raises
    asyncpg.UniqueViolationError (the (tenant, member_no) key)."""
    return await repo.set_member_no(conn, tenant_id, member_id, member_no)


async def member_with_no(conn: asyncpg.Connection, tenant_id: int, member_no: int) -> int | None:
    """Public: the member holding a number, if any."""
    return await repo.member_with_no(conn, tenant_id, member_no)


async def count_numbers_between(conn: asyncpg.Connection, tenant_id: int, lo: int, hi: int) -> int:
    """Public: how many numbers in lo..hi are held."""
    return await repo.count_numbers_between(conn, tenant_id, lo, hi)


async def identities(
    conn: asyncpg.Connection, tenant_id: int, member_id: int
) -> list[dict[str, Any]]:
    """Public (privacy export): the member's login identities."""
    return [dict(r) for r in await repo.identities_of(conn, tenant_id, member_id)]


async def erase_personal(
    conn: asyncpg.Connection, tenant_id: int, member_id: int, now: datetime | None = None
) -> None:
    """Public (privacy erasure): nickname, avatar and login identities removed, the member
    marked erased (``now``); the member's id, externalId and number stay so that the ledger
    and audit still add up."""
    if not await repo.erase(conn, tenant_id, member_id, now):
        raise DomainError("MEMBER_NOT_FOUND")


async def wechat_openid(
    conn: asyncpg.Connection, tenant_id: int, member_id: int, app_id: str | None
) -> tuple[str, str] | None:
    """Public: (appId, openid) of the member's WeChat identity (under ``app_id`` when
    given), for messages WeChat delivers by openid."""
    row = await repo.wechat_identity(conn, tenant_id, member_id, app_id)
    return (row["app_id"], row["subject"]) if row else None
