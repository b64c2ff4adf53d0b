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
from service.core.http import (
    RequestUnit,
    get_ctx,
    member_principal,
    member_work,
    operator_principal,
    operator_work,
)
from service.core.tenancy import Operator
from service.core.uow import unit_of_work
from service.members import service as members
from service.members.schemas import ExternalId
from service.points import operator as operator_ops
from service.points import service
from service.points.operator import entry_out
from service.points.schemas import (
    AdjustIn,
    AdjustOut,
    Currency,
    LadderIn,
    LadderOut,
    LedgerPage,
    PolicyIn,
    ReverseIn,
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
    work: NamedDependency[RequestUnit],
    request: Request,
) -> Response[AdjustOut]:
    """Transaction: without an Idempotency-Key there is no BEGIN; the commit point is the one
    statement ``ADJUST_SQL`` in ``points.operator.adjust`` (a member to create first, or a
    key: BEGIN .. COMMIT). After commit: the dispatcher is woken. On failure (e.g.
    INSUFFICIENT_POINTS) nothing is written and there is nothing to undo."""
    if data.amount == 0:
        raise validation_failed([problem("body", "amount", "OUT_OF_RANGE", "must not be zero")])
    header_key = request.headers.get("idempotency-key")
    ledger_key = f"manual:{operator.key_id}:{header_key}" if header_key else None
    return await work.respond_single(
        operator_ops.adjust, operator.tenant_id, operator.key_id, externalId, data, ledger_key
    )


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
    work: NamedDependency[RequestUnit],
) -> Response[AdjustOut]:
    return await work.respond(operator_ops.reverse, operator.tenant_id, externalId, data)


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
        found = await members.find_many(conn, operator.tenant_id, [externalId])
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
    data: JSONBody[LadderIn],
    operator: NamedDependency[Operator],
    work: NamedDependency[RequestUnit],
) -> Response[LadderOut]:
    problems = ladder_problems(data)
    if problems:
        raise validation_failed(problems)
    return await work.respond(operator_ops.put_ladder, operator.tenant_id, data)


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
    async with unit_of_work(ctx) as uow:
        await service.put_policy(uow, operator.tenant_id, msgspec.to_builtins(data))
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
    dependencies={"member": Provide(member_principal), "work": Provide(member_work)},
    security=[{"memberToken": []}],
)
admin_router = Router(
    path="/admin/v1",
    route_handlers=[adjust, reverse, member_ledger, put_levels, get_levels, put_policy, get_policy],
    dependencies={"operator": Provide(operator_principal), "work": Provide(operator_work)},
    security=[{"apiKey": []}],
)
