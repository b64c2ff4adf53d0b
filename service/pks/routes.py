"""Routes: PK definitions and settlement (operators); the live scoreboard (members)."""

from __future__ import annotations

from typing import Annotated

from litestar import Request, Response, Router, get, post, put
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody, Parameter

from service.core.apidoc import errors
from service.core.http import (
    MemberRequest,
    RequestUnit,
    get_ctx,
    member_principal,
    operator_principal,
)
from service.core.tenancy import Operator
from service.pks import service
from service.pks.schemas import PkBoard, PkIn, PkKey, PkList, PkOut, SettlementOut

Key = Annotated[PkKey, Parameter(description="The PK's key.")]


@errors("PK_STARTED", "PK_SETTLED", idempotent=True)
@put(
    "/pks/{key:str}",
    opt={"scope": "config"},
    summary="Create or change a team PK",
    tags=["pks"],
    description=(
        "Versioned. Invalid: 422 VALIDATION_FAILED with every problem in `details.problems` "
        "(fewer than two teams, unknown teams, teams of different sets, an empty window, a "
        "bad metric, an overlap with another PK of the same teams when overlaps are "
        "forbidden). Started: teams, metric and start are fixed (409 PK_STARTED). Settled: "
        "409 PK_SETTLED. A parked PK resumes on a PUT and catches up what it missed."
    ),
)
async def put_pk(
    key: Key,
    data: JSONBody[PkIn],
    operator: NamedDependency[Operator],
    state: State,
    request: Request,
) -> Response[PkOut]:
    ctx = get_ctx(state)
    return await RequestUnit(request, ctx, operator).respond(
        service.put_pk, operator.tenant_id, key, data
    )


@errors("PK_NOT_FOUND")
@get("/pks/{key:str}", opt={"scope": "config"}, summary="A team PK and its state", tags=["pks"])
async def get_pk(key: Key, operator: NamedDependency[Operator], state: State) -> PkOut:
    return await service.get_pk(get_ctx(state), operator.tenant_id, key)


@errors()
@get("/pks", opt={"scope": "config"}, summary="Every team PK of the tenant", tags=["pks"])
async def list_pks(operator: NamedDependency[Operator], state: State) -> PkList:
    return await service.list_pks(get_ctx(state), operator.tenant_id)


@errors("PK_NOT_FOUND", "PK_NOT_ENDED", idempotent=True)
@post(
    "/pks/{key:str}/settle",
    status_code=200,
    opt={"scope": "config"},
    summary="Settle a PK now (after its end)",
    tags=["pks"],
    description=(
        "Exactly once: freezes the standings, rewards the winning team's members and each "
        "team's MVP through the ledger, emits pk.settled / pk.won / pk.mvp. Settling again "
        "(or while the settlement job runs) answers the first result. Before the end: 409 "
        "PK_NOT_ENDED."
    ),
)
async def settle_pk(
    key: Key, operator: NamedDependency[Operator], state: State, request: Request
) -> Response[SettlementOut]:
    ctx = get_ctx(state)
    return await RequestUnit(request, ctx, operator).respond(
        service.settle, operator.tenant_id, key, f"operator:{operator.key_id}"
    )


@errors("PK_NOT_FOUND", "PK_PARKED")
@get(
    "/pks/{pkKey:str}",
    summary="A team PK's live scoreboard",
    tags=["pks"],
    description=(
        "Team scores and ranks (ties: who reached the score first), my team, my contribution "
        "and rank inside my team, the top contributors of each team, time left. Once settled, "
        "the frozen result with the winner and each team's MVP. Parked: 409 PK_PARKED. Team "
        "scores and top contributors may be up to a second old; my contribution is exact."
    ),
)
async def read_pk(pkKey: Key, request: Request) -> PkBoard:
    async with MemberRequest(request) as m:
        return await service.read(m.ctx, m.member.tenant_id, m.member.member_id, pkKey, m.rate)


member_router = Router(
    path="/v1", route_handlers=[read_pk], dependencies={"member": Provide(member_principal)}
)
admin_router = Router(
    path="/admin/v1",
    route_handlers=[put_pk, get_pk, list_pks, settle_pk],
    dependencies={"operator": Provide(operator_principal)},
)
