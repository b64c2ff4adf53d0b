"""Routes of the ledger: my history; operator adjustments, reversals, levels and policy."""

from __future__ import annotations

import msgspec
from litestar import Request, Response, Router, get, post, put
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody

from service.core import cursors
from service.core.apidoc import errors
from service.core.auth import Member
from service.core.constraints import (
    Cursor,
    OperatorPageSize,
    PageSize,
    problem,
    register_check,
    validation_failed,
)
from service.core.errors import DomainError
from service.core.http import get_ctx, idempotent, member_principal, operator_principal
from service.core.tenancy import Operator
from service.members import service as members
from service.members.schemas import ExternalId
from service.points import service
from service.points.schemas import (
    AdjustIn,
    AdjustOut,
    Currency,
    EntryOut,
    LadderIn,
    LadderOut,
    LedgerPage,
    PolicyIn,
    ReverseIn,
)


def entry_out(e: service.Entry) -> EntryOut:
    return EntryOut(
        e.id,
        e.currency,
        e.kind,
        e.delta,
        e.balance_after,
        e.reason,
        e.note,
        e.source_ref,
        e.reverses_entry_id,
        e.shortfall,
        e.expires_at,
        e.created_at,
    )


def _encode_cursor(row_id: int) -> str:
    return cursors.encode("e", row_id)


def _decode_cursor(cursor: str | None) -> int | None:
    return cursors.decode("e", cursor)


async def _page(
    state: State,
    tenant_id: int,
    member_id: int,
    currency: str | None,
    cursor: str | None,
    limit: int,
) -> LedgerPage:
    ctx = get_ctx(state)
    before = _decode_cursor(cursor)
    async with ctx.db.connection() as conn:
        entries = await service.history(
            ctx, conn, tenant_id, member_id, currency, before, limit + 1
        )
    more = len(entries) > limit
    entries = entries[:limit]
    return LedgerPage(
        [entry_out(e) for e in entries],
        _encode_cursor(entries[-1].id) if more and entries else None,
    )


@errors()
@get("/me/ledger", summary="My points and growth history, newest first", tags=["points"])
async def my_ledger(
    member: NamedDependency[Member],
    state: State,
    currency: Currency | None = None,
    cursor: Cursor = None,
    limit: PageSize = 20,
) -> LedgerPage:
    return await _page(state, member.tenant_id, member.member_id, currency, cursor, limit)


async def _member_id(ctx, conn, tenant_id: int, external_id: str) -> int:  # type: ignore[no-untyped-def]
    policy = await service.policy_of(ctx, conn, tenant_id)
    found = await members.resolve_many(
        ctx, conn, tenant_id, [external_id], create=policy.unknown_member == "create"
    )
    if external_id not in found:
        raise DomainError("MEMBER_NOT_FOUND", details={"externalId": external_id})
    return found[external_id]


@errors("MEMBER_NOT_FOUND", "INSUFFICIENT_POINTS", "GROWTH_NOT_SPENDABLE", idempotent=True)
@post(
    "/members/{externalId:str}/points",
    status_code=200,
    opt={"scope": "points"},
    summary="Credit or debit a member manually",
    tags=["points"],
    description=(
        "A positive amount credits, a negative one debits (points only; growth is credited, "
        "and corrected by reversal). Send an Idempotency-Key: a retry replays the first "
        "answer and never adds a second entry."
    ),
)
async def adjust(
    externalId: ExternalId,
    data: JSONBody[AdjustIn],
    operator: NamedDependency[Operator],
    state: State,
    request: Request,
) -> Response[AdjustOut]:
    ctx = get_ctx(state)
    if data.amount == 0:
        raise validation_failed([problem("body", "amount", "OUT_OF_RANGE", "must not be zero")])
    header_key = request.headers.get("idempotency-key")
    ledger_key = f"manual:{operator.key_id}:{header_key}" if header_key else None

    async def run(conn):  # type: ignore[no-untyped-def]
        member_id = await _member_id(ctx, conn, operator.tenant_id, externalId)
        if data.amount > 0:
            e = await service.credit(
                ctx,
                conn,
                operator.tenant_id,
                member_id,
                data.currency,
                data.amount,
                reason=data.reason,
                note=data.note,
                source_ref=f"manual:{operator.key_id}",
                idempotency_key=ledger_key,
            )
        else:
            e = await service.debit(
                ctx,
                conn,
                operator.tenant_id,
                member_id,
                -data.amount,
                reason=data.reason,
                note=data.note,
                source_ref=f"manual:{operator.key_id}",
                idempotency_key=ledger_key,
                currency=data.currency,
            )
        return AdjustOut(entry_out(e), e.balance_after, e.replayed)

    return await idempotent(request, ctx, operator, run)


@errors(
    "MEMBER_NOT_FOUND", "ENTRY_NOT_FOUND", "NOT_REVERSIBLE", "REVERSAL_SHORTFALL", idempotent=True
)
@post(
    "/members/{externalId:str}/points/reversals",
    status_code=200,
    opt={"scope": "points"},
    summary="Reverse an earlier credit (e.g. the order was refunded)",
    tags=["points"],
)
async def reverse(
    externalId: ExternalId,
    data: JSONBody[ReverseIn],
    operator: NamedDependency[Operator],
    state: State,
    request: Request,
) -> Response[AdjustOut]:
    ctx = get_ctx(state)

    async def run(conn):  # type: ignore[no-untyped-def]
        member_id = await _member_id(ctx, conn, operator.tenant_id, externalId)
        entry = await service.reverse(
            ctx, conn, operator.tenant_id, data.entry_id, reason=data.reason, note=data.note
        )
        if entry.member_id != member_id:
            raise DomainError("ENTRY_NOT_FOUND", details={"entryId": data.entry_id})
        return AdjustOut(entry_out(entry), entry.balance_after, entry.replayed)

    return await idempotent(request, ctx, operator, run)


@errors("MEMBER_NOT_FOUND")
@get(
    "/members/{externalId:str}/ledger",
    opt={"scope": "reports"},
    tags=["points"],
    summary="A member's ledger for operators, newest first",
)
async def member_ledger(
    externalId: ExternalId,
    operator: NamedDependency[Operator],
    state: State,
    currency: Currency | None = None,
    cursor: Cursor = None,
    limit: OperatorPageSize = 20,
) -> LedgerPage:
    ctx = get_ctx(state)
    async with ctx.db.connection() as conn:
        found = await members.resolve_many(
            ctx, conn, operator.tenant_id, [externalId], create=False
        )
    if externalId not in found:
        raise DomainError("MEMBER_NOT_FOUND", details={"externalId": externalId})
    return await _page(state, operator.tenant_id, found[externalId], currency, cursor, limit)


def ladder_problems(data: LadderIn) -> list[dict]:
    problems = []
    if data.levels[0].threshold != 0:
        problems.append({"path": "levels[0].threshold", "problem": "the first level starts at 0"})
    for i in range(1, len(data.levels)):
        if data.levels[i].threshold <= data.levels[i - 1].threshold:
            problems.append(
                {"path": f"levels[{i}].threshold", "problem": "thresholds must increase strictly"}
            )
    names = [lv.name for lv in data.levels]
    for i, name in enumerate(names):
        if names.index(name) != i:
            problems.append({"path": f"levels[{i}].name", "problem": f"name {name!r} repeats"})
    for i, lv in enumerate(data.levels):
        codes = [p.code for p in lv.privileges]
        if len(codes) != len(set(codes)):
            problems.append(
                {"path": f"levels[{i}].privileges", "problem": "privilege codes repeat"}
            )
    if data.validity.mode == "rolling" and not data.validity.days:
        problems.append({"path": "validity.days", "problem": "rolling validity needs days"})
    return problems


register_check(LadderIn, ladder_problems)


@errors(idempotent=True)
@put(
    "/levels",
    opt={"scope": "config"},
    tags=["levels"],
    summary="Set the level ladder",
    description="Validated as a whole: 422 VALIDATION_FAILED lists every problem and changes "
    "nothing. Each save bumps the version.",
)
async def put_levels(
    data: JSONBody[LadderIn], operator: NamedDependency[Operator], state: State, request: Request
) -> Response[LadderOut]:
    ctx = get_ctx(state)
    problems = ladder_problems(data)
    if problems:
        raise validation_failed(problems)
    config = msgspec.to_builtins(data)

    async def run(conn):  # type: ignore[no-untyped-def]
        version = await service.repo.put_ladder(conn, operator.tenant_id, config, ctx.clock.now())
        service.invalidate_caches(ctx, operator.tenant_id)
        return LadderOut(version, data.levels, data.validity, ctx.clock.now())

    return await idempotent(request, ctx, operator, run)


@errors("LEVELS_NOT_CONFIGURED")
@get("/levels", opt={"scope": "config"}, tags=["levels"], summary="The level ladder")
async def get_levels(operator: NamedDependency[Operator], state: State) -> LadderOut:
    ctx = get_ctx(state)
    async with ctx.db.connection() as conn:
        row = await service.repo.get_ladder(conn, operator.tenant_id)
    if row is None:
        raise DomainError("LEVELS_NOT_CONFIGURED")
    ladder = msgspec.convert(row["config"], LadderIn)
    return LadderOut(row["version"], ladder.levels, ladder.validity, row["updated_at"])


@errors()
@put(
    "/points/policy",
    opt={"scope": "config"},
    tags=["points"],
    summary="Set the points policy: expiry, reversal shortfall, unknown members",
)
async def put_policy(
    data: JSONBody[PolicyIn], operator: NamedDependency[Operator], state: State
) -> PolicyIn:
    ctx = get_ctx(state)
    if data.expiry.mode == "days" and not data.expiry.days:
        raise validation_failed(
            [problem("body", "expiry.days", "REQUIRED", "mode days needs days")]
        )
    async with ctx.db.transaction() as conn:
        await service.put_policy(ctx, conn, operator.tenant_id, msgspec.to_builtins(data))
    return data


@errors()
@get("/points/policy", opt={"scope": "config"}, tags=["points"], summary="The points policy")
async def get_policy(operator: NamedDependency[Operator], state: State) -> PolicyIn:
    ctx = get_ctx(state)
    async with ctx.db.connection() as conn:
        raw = await service.get_policy_raw(conn, operator.tenant_id)
    return msgspec.convert(raw, PolicyIn)


member_router = Router(
    path="/v1",
    route_handlers=[my_ledger],
    dependencies={"member": Provide(member_principal)},
    security=[{"memberToken": []}],
)
admin_router = Router(
    path="/admin/v1",
    route_handlers=[adjust, reverse, member_ledger, put_levels, get_levels, put_policy, get_policy],
    dependencies={"operator": Provide(operator_principal)},
    security=[{"apiKey": []}],
)
