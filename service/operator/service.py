"""Operator reads shared by the operator API and the console: configs, keys, member cards."""

from __future__ import annotations

import csv
import io
import json

from service.core import tenancy
from service.core.context import Context
from service.core.errors import DomainError
from service.core.tenancy import KEY_PREFIX
from service.me import service as me_service
from service.members import repository as members_repo
from service.operator.schemas import ApiKeyList, ApiKeyOut, MemberCard, MemberHit, MemberHits
from service.points import service as points
from service.points.routes import entry_out
from service.wheel import service as wheel


async def api_keys(ctx: Context, tenant_id: int) -> ApiKeyList:
    async with ctx.db.connection() as conn:
        rows = await tenancy.list_api_keys(conn, tenant_id)
    return ApiKeyList(
        [
            ApiKeyOut(
                r["key_id"],
                f"{KEY_PREFIX}{r['key_id']}_",
                r["name"],
                list(r["scopes"]),
                r["created_at"],
                r["last_used_at"],
                r["revoked_at"],
            )
            for r in rows
        ]
    )


async def revoke_key(ctx: Context, tenant_id: int, key_id: str) -> None:
    """Revoke one of the tenant's keys. Errors: NOT_FOUND (no such unrevoked key here)."""
    async with ctx.db.transaction() as conn:
        done = await tenancy.revoke_tenant_key(conn, tenant_id, key_id, ctx.clock.now())
    # Every process drops its cached keys now (not after the cache's ttl).
    await ctx.caches.changed(tenancy.API_KEY_CACHE)
    if not done:
        raise DomainError("NOT_FOUND", details={"keyId": key_id})


async def find_member_id(
    ctx: Context, tenant_id: int, external_id: str | None, member_no: int | None
) -> int:
    """The member with this externalId or member number. Errors: MEMBER_NOT_FOUND."""
    async with ctx.db.connection() as conn:
        if external_id is not None:
            row = await members_repo.get_by_external_id(conn, tenant_id, external_id)
        elif member_no is not None:
            row = await members_repo.get_by_member_no(conn, tenant_id, member_no)
        else:
            row = None
    if row is None:
        raise DomainError(
            "MEMBER_NOT_FOUND", details={"externalId": external_id, "memberNo": member_no}
        )
    return int(row["id"])


async def member_card(ctx: Context, tenant_id: int, member_id: int, ledger: int = 20) -> MemberCard:
    """Card (balances, level), prizes won and the newest ``ledger`` entries of one member."""
    card = await me_service.me(ctx, tenant_id, member_id)
    prizes = await wheel.my_awards(ctx, tenant_id, member_id, None, 50)
    async with ctx.db.connection() as conn:
        entries = await points.history(ctx, conn, tenant_id, member_id, None, None, ledger)
    return MemberCard(card, prizes, [entry_out(e) for e in entries])


def member_number_of(text: str) -> int | None:
    """The member number in ``text`` as an operator types it: ``000002``, ``NO.000002``,
    ``no 2`` or ``#2``; None when ``text`` is not a member number."""
    t = text.strip().upper()
    for prefix in ("NO.", "NO:", "NO", "#"):
        if t.startswith(prefix):
            t = t[len(prefix) :].strip()
            break
    return int(t) if t.isdigit() and 0 < len(t) < 18 else None


async def member_id_in_tenant(ctx: Context, tenant_id: int, member_id: int) -> int:
    """``member_id`` when that member belongs to the tenant. Errors: MEMBER_NOT_FOUND."""
    async with ctx.db.connection() as conn:
        row = await members_repo.get(conn, tenant_id, member_id)
    if row is None:
        raise DomainError("MEMBER_NOT_FOUND", details={"memberId": member_id})
    return int(row["id"])


async def search_members(ctx: Context, tenant_id: int, text: str, limit: int = 20) -> MemberHits:
    """Members whose externalId or nickname starts with ``text``, or whose member number is
    ``text`` (``000002`` or ``NO.000002``), newest first."""
    number = member_number_of(text)
    async with ctx.db.connection() as conn:
        rows = await members_repo.search(conn, tenant_id, text, limit)
        if number is not None and not any(r["member_no"] == number for r in rows):
            row = await members_repo.get_by_member_no(conn, tenant_id, number)
            if row is not None:
                rows = [row, *rows][:limit]
    return MemberHits(
        [
            MemberHit(r["id"], r["external_id"], r["nickname"], r["member_no"], r["created_at"])
            for r in rows
        ]
    )


async def recent_events(ctx: Context, tenant_id: int, limit: int = 50) -> list[dict]:
    """The tenant's newest brand events as received (type, member, value, when)."""
    async with ctx.db.connection() as conn:
        rows = await conn.fetch(
            "SELECT e.event_id, e.type, e.value, e.occurred_at, e.received_at, m.external_id "
            "FROM member_events e LEFT JOIN members m ON m.id = e.member_id "
            "WHERE e.tenant_id = $1 ORDER BY e.id DESC LIMIT $2",
            tenant_id,
            limit,
        )
    return [dict(r) for r in rows]


async def dead_letters(ctx: Context, tenant_id: int, limit: int = 50) -> list[dict]:
    """The tenant's events a subscriber gave up on (subscriber, event type, error, attempts)."""
    async with ctx.db.connection() as conn:
        rows = await conn.fetch(
            "SELECT d.id, d.subscriber, d.attempts, d.error, d.created_at, o.type "
            "FROM outbox_dead_letters d JOIN outbox o ON o.id = d.outbox_id "
            "WHERE o.tenant_id = $1 ORDER BY d.id DESC LIMIT $2",
            tenant_id,
            limit,
        )
    return [dict(r) for r in rows]


async def replay_dead_letters(ctx: Context, tenant_id: int, subscriber: str | None) -> dict:
    """Deliver one tenant's dead letters again (never another tenant's):
    ``{"replayed", "stillFailing"}``."""
    return await ctx.dispatcher.replay_dead_letters(ctx, subscriber, tenant_id=tenant_id)


async def external_ids(
    ctx: Context, tenant_id: int, member_ids: list[int]
) -> dict[int, str | None]:
    async with ctx.db.connection() as conn:
        return await members_repo.external_ids_of(conn, tenant_id, member_ids)


_CSV_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object) -> str:
    """A CSV cell a spreadsheet shows as text (member-typed text starting with = + - @ is
    prefixed with ' so it is never run as a formula)."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_CSV_FORMULA) else text


async def winners_csv(ctx: Context, tenant_id: int, key: str) -> str:
    """Every prize won on a wheel as CSV, one row per award, everything an operator needs to
    ship: the member (number ``NO.000002``, nickname, externalId), the prize, the state and
    the claim's shipping contact in full (name, phone, province, city, district, address,
    postcode), carrier and tracking number once shipped. Operator-only (personal data).
    Errors: WHEEL_NOT_FOUND."""
    await wheel.wheel_awards(ctx, tenant_id, key, None, 0, 0)  # WHEEL_NOT_FOUND
    async with ctx.db.connection() as conn:
        rows = await conn.fetch(
            "SELECT a.id, a.prize_key, a.name, a.kind, a.value, a.state, a.won_at, "
            "a.claimed_at, a.shipped_at, a.contact, a.shipment, m.member_no, m.nickname, "
            "m.external_id FROM wheel_awards a JOIN wheels w ON w.id = a.wheel_id "
            "LEFT JOIN members m ON m.id = a.member_id AND m.tenant_id = a.tenant_id "
            "WHERE a.tenant_id = $1 AND w.tenant_id = $1 AND w.key = $2 ORDER BY a.id",
            tenant_id,
            key,
        )
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(
        [
            "awardId",
            "memberNumber",
            "nickname",
            "externalId",
            "prizeKey",
            "prizeName",
            "kind",
            "value",
            "state",
            "wonAt",
            "claimedAt",
            "shippedAt",
            "shipName",
            "shipPhone",
            "province",
            "city",
            "district",
            "address",
            "postcode",
            "carrier",
            "trackingNo",
        ]
    )
    for a in rows:
        contact = _json_obj(a["contact"])
        found = contact.get("address")
        address: dict = found if isinstance(found, dict) else {}
        shipment = _json_obj(a["shipment"])
        w.writerow(
            [
                a["id"],
                f"NO.{a['member_no']:06d}" if a["member_no"] is not None else "",
                _cell(a["nickname"]),
                _cell(a["external_id"]),
                a["prize_key"],
                _cell(a["name"]),
                a["kind"],
                a["value"],
                a["state"],
                a["won_at"].isoformat(),
                a["claimed_at"].isoformat() if a["claimed_at"] else "",
                a["shipped_at"].isoformat() if a["shipped_at"] else "",
                _cell(contact.get("name")),
                _cell(contact.get("phone")),
                _cell(address.get("province")),
                _cell(address.get("city")),
                _cell(address.get("district")),
                _cell(address.get("detail")),
                _cell(address.get("postcode")),
                _cell(shipment.get("carrier")),
                _cell(shipment.get("trackingNo")),
            ]
        )
    return buf.getvalue()


def _json_obj(value: object) -> dict:
    """A JSONB column as a dict (asyncpg hands JSON as text unless a codec is set)."""
    if isinstance(value, str):
        value = json.loads(value)
    return value if isinstance(value, dict) else {}
