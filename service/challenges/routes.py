"""Routes of wager challenges: the member's list and join; the operator's config and settle."""

from __future__ import annotations

from litestar import Response, Router, get, post, put
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody

from service.challenges import service
from service.challenges.schemas import (
    ChallengeAdminOut,
    ChallengeIn,
    ChallengeList,
    JoinOut,
    Key,
    SettleIn,
    SettlementOut,
)
from service.core.apidoc import errors
from service.core.auth import Member
from service.core.http import (
    RequestUnit,
    get_ctx,
    member_principal,
    member_work,
    operator_principal,
    operator_work,
)
from service.core.tenancy import Operator


@errors()
@get(
    "/challenges",
    summary="Wager challenges: open to join, joined, finished, with my progress",
    tags=["challenges"],
)
async def list_challenges(member: NamedDependency[Member], state: State) -> ChallengeList:
    ctx = get_ctx(state)
    return await service.member_list(ctx, member.tenant_id, member.member_id)


@errors(
    "CHALLENGE_NOT_FOUND",
    "CHALLENGE_CLOSED",
    "CHALLENGE_FULL",
    "INSUFFICIENT_POINTS",
    idempotent=True,
)
@post(
    "/challenges/{key:str}/entries",
    status_code=200,
    summary="Join a challenge with the stake",
    tags=["challenges"],
    description="The stake is debited into the challenge's escrow in one transaction. "
    "Joining again answers the first entry (`replayed: true`). 409 CHALLENGE_FULL, "
    "CHALLENGE_CLOSED or INSUFFICIENT_POINTS change nothing.",
)
async def join(
    key: Key, member: NamedDependency[Member], work: NamedDependency[RequestUnit]
) -> Response[JoinOut]:
    return await work.respond(service.join, member.tenant_id, member.member_id, key)


@errors("CHALLENGE_SETTLED", idempotent=True)
@put(
    "/challenges/{key:str}",
    opt={"scope": "config"},
    tags=["challenges"],
    summary="Create or replace a wager challenge",
    description="Validated as a whole (422 VALIDATION_FAILED lists every problem). Once members "
    "joined, the terms are locked. `state: cancelled` refunds every stake at once.",
)
async def put_challenge(
    key: Key,
    data: JSONBody[ChallengeIn],
    operator: NamedDependency[Operator],
    work: NamedDependency[RequestUnit],
) -> Response[ChallengeAdminOut]:
    return await work.respond(service.put_challenge, operator.tenant_id, key, data)


@errors("CHALLENGE_NOT_FOUND")
@get("/challenges/{key:str}", opt={"scope": "config"}, tags=["challenges"], summary="A challenge")
async def get_challenge(
    key: Key, operator: NamedDependency[Operator], state: State
) -> ChallengeAdminOut:
    return await service.get_challenge(get_ctx(state), operator.tenant_id, key)


@errors("CHALLENGE_NOT_FOUND", "CHALLENGE_NOT_ENDED", "CHALLENGE_SETTLED", idempotent=True)
@post(
    "/challenges/{key:str}/settle",
    status_code=200,
    opt={"scope": "config"},
    tags=["challenges"],
    summary="Settle an ended challenge now (or cancel it)",
    description="Idempotent: settling again answers the same settlement (`replayed: true`) "
    "and moves nothing. Before the end: 409 CHALLENGE_NOT_ENDED, unless cancelling.",
)
async def settle(
    key: Key,
    operator: NamedDependency[Operator],
    work: NamedDependency[RequestUnit],
    data: JSONBody[SettleIn | None] = None,
) -> Response[SettlementOut]:
    cancel = bool(data and data.cancel)
    return await work.respond(service.settle, operator.tenant_id, key, cancel=cancel)


member_router = Router(
    path="/v1",
    route_handlers=[list_challenges, join],
    dependencies={"member": Provide(member_principal), "work": Provide(member_work)},
    security=[{"memberToken": []}],
)
admin_router = Router(
    path="/admin/v1",
    route_handlers=[put_challenge, get_challenge, settle],
    dependencies={"operator": Provide(operator_principal), "work": Provide(operator_work)},
    security=[{"apiKey": []}],
)
