"""Routes of the wheel: member view, spins and prizes; operator config, audit, pools, shipping."""

from __future__ import annotations

from typing import Annotated, Literal

from litestar import Request, Response, Router, get, post, put
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody, Parameter

from service.core import cursors
from service.core.apidoc import errors
from service.core.auth import Member
from service.core.constraints import Cursor, OperatorPageSize, PageSize
from service.core.http import (
    MemberRequest,
    RequestUnit,
    get_ctx,
    member_principal,
    member_work,
    operator_principal,
    operator_work,
)
from service.core.tenancy import Operator
from service.wheel import service
from service.wheel.schemas import (
    AwardOut,
    AwardsPage,
    ClaimIn,
    CodesIn,
    CodesOut,
    DrawsPage,
    Key,
    ShipIn,
    SimulateIn,
    SimulateOut,
    SpinOut,
    WheelIn,
    WheelOut,
    WheelView,
)

AwardId = Annotated[int, Parameter(ge=1, le=2**62)]


def _encode_cursor(row_id: int) -> str:
    return cursors.encode("w", row_id)


def _decode_cursor(cursor: str | None) -> int | None:
    return cursors.decode("w", cursor)


# ----------------------------------------------------------------------------- members


@errors("WHEEL_NOT_FOUND", "WHEEL_NOT_LIVE")
@get(
    "/wheels/{wheelKey:str}",
    tags=["wheel"],
    summary="A wheel: prizes in slot order, cost, spins left today, seed commitment",
)
async def wheel_view(wheelKey: Key, member: NamedDependency[Member], state: State) -> WheelView:
    ctx = get_ctx(state)
    return await service.member_view(ctx, member.tenant_id, member.member_id, wheelKey)


@errors(
    "WHEEL_NOT_FOUND",
    "WHEEL_NOT_LIVE",
    "WHEEL_CAP_REACHED",
    "WHEEL_LEVEL_TOO_LOW",
    "WHEEL_NO_SPINS_LEFT",
    "INSUFFICIENT_POINTS",
    idempotent=True,
)
@post(
    "/wheels/{wheelKey:str}/spins",
    status_code=200,
    tags=["wheel"],
    summary="Spin: the server draws, the client animates to slotIndex",
    description=(
        "Answers after the draw is committed, with the prize, its `slotIndex` on the wheel "
        "of `layoutVersion` (reload the wheel if yours differs). Send an Idempotency-Key: a "
        "retry replays the same spin. 409 INSUFFICIENT_POINTS (no draw), WHEEL_CAP_REACHED, "
        "WHEEL_NO_SPINS_LEFT, WHEEL_NOT_LIVE; 403 WHEEL_LEVEL_TOO_LOW."
    ),
)
async def spin(wheelKey: Key, request: Request) -> Response[SpinOut]:
    """Transaction: without an Idempotency-Key there is no BEGIN; the commit point is the one
    statement in ``repository.record_spin`` (with a key: BEGIN .. COMMIT around the same code
    and the key's record). Before it, one Redis call: the rate limit and the draw, which takes
    stock. After commit: the dispatcher is woken. On failure before the commit point (a lost
    race retries; INSUFFICIENT_POINTS, an error) the stock goes back (on_rollback)."""
    async with MemberRequest(request) as m:
        return await m.work().respond_single(
            service.spin, m.member.tenant_id, m.member.member_id, wheelKey, m.rate
        )


@errors()
@get("/me/prizes", tags=["wheel"], summary="Prizes I won and their fulfilment state")
async def my_prizes(
    member: NamedDependency[Member],
    state: State,
    cursor: Cursor = None,
    limit: PageSize = 20,
) -> AwardsPage:
    ctx = get_ctx(state)
    items = await service.my_awards(
        ctx, member.tenant_id, member.member_id, _decode_cursor(cursor), limit + 1
    )
    more = len(items) > limit
    items = items[:limit]
    return AwardsPage(items, _encode_cursor(items[-1].id) if more and items else None)


@errors("PRIZE_NOT_FOUND", "PRIZE_NOT_CLAIMABLE", idempotent=True)
@post(
    "/me/prizes/{awardId:int}/claim",
    status_code=200,
    tags=["wheel"],
    summary="Claim a physical prize: name, phone and address for shipping",
)
async def claim_prize(
    awardId: AwardId,
    data: JSONBody[ClaimIn],
    member: NamedDependency[Member],
    work: NamedDependency[RequestUnit],
) -> Response[AwardOut]:
    return await work.respond(service.claim, member.tenant_id, member.member_id, awardId, data)


# ----------------------------------------------------------------------------- operators


@errors(idempotent=True)
@put(
    "/wheels/{key:str}",
    opt={"scope": "config"},
    tags=["wheel"],
    summary="Create or change a wheel",
    description="Validated as a whole: 422 VALIDATION_FAILED lists every problem and changes "
    "nothing. Each save bumps `version`; changing the slots bumps `layoutVersion`. The seed "
    "commitment is fixed at creation; an ended wheel cannot be reopened.",
)
async def put_wheel(
    key: Key,
    data: JSONBody[WheelIn],
    operator: NamedDependency[Operator],
    work: NamedDependency[RequestUnit],
) -> Response[WheelOut]:
    return await work.respond(service.put_wheel, operator.tenant_id, key, data)


@errors("WHEEL_NOT_FOUND")
@get(
    "/wheels/{key:str}",
    opt={"scope": "config"},
    tags=["wheel"],
    summary="A wheel's config with odds (nominal and after stock runs out) and stock",
)
async def get_wheel(key: Key, operator: NamedDependency[Operator], state: State) -> WheelOut:
    return await service.get_admin(get_ctx(state), operator.tenant_id, key)


@errors("WHEEL_NOT_FOUND")
@get(
    "/wheels/{key:str}/draws",
    opt={"scope": "reports"},
    tags=["wheel"],
    summary="The audit log of draws, oldest first, with every input of each draw",
    description="Each draw recomputes from the seed (revealed once the wheel ended) as "
    "described in `scheme`; `tables` holds the prize table of every version on the page.",
)
async def get_draws(
    key: Key,
    operator: NamedDependency[Operator],
    state: State,
    cursor: Cursor = None,
    limit: OperatorPageSize = 100,
) -> DrawsPage:
    ctx = get_ctx(state)
    rt, rows, tables = await service.draws(
        ctx, operator.tenant_id, key, _decode_cursor(cursor) or 0, limit
    )
    return DrawsPage(
        rt.seed_hash,
        rt.seed_if_revealed(ctx.clock.now()),
        service.SCHEME,
        [service.draw_out(r) for r in rows],
        _encode_cursor(rows[-1]["id"]) if len(rows) == limit else None,
        {str(v): c for v, c in tables.items()},
    )


@errors("WHEEL_NOT_FOUND")
@post(
    "/wheels/{key:str}/simulate",
    status_code=200,
    opt={"scope": "reports"},
    tags=["wheel"],
    summary="Simulate N spins from the stock left now (changes nothing)",
)
async def simulate(
    key: Key, data: JSONBody[SimulateIn], operator: NamedDependency[Operator], state: State
) -> SimulateOut:
    return await service.simulate(get_ctx(state), operator.tenant_id, key, data.draws)


@errors("WHEEL_NOT_FOUND", "PRIZE_NOT_FOUND", idempotent=True)
@post(
    "/wheels/{key:str}/prizes/{prizeKey:str}/codes",
    status_code=200,
    opt={"scope": "config"},
    tags=["wheel"],
    summary="Upload coupon codes to a coupon prize's pool (each code is issued once)",
)
async def add_codes(
    key: Key,
    prizeKey: Key,
    data: JSONBody[CodesIn],
    operator: NamedDependency[Operator],
    work: NamedDependency[RequestUnit],
) -> Response[CodesOut]:
    return await work.respond(service.add_codes, operator.tenant_id, key, prizeKey, data.codes)


@errors("WHEEL_NOT_FOUND")
@get(
    "/wheels/{key:str}/awards",
    opt={"scope": "reports"},
    tags=["wheel"],
    summary="Prizes won on a wheel (contacts masked: this is the export)",
)
async def list_awards(
    key: Key,
    operator: NamedDependency[Operator],
    state: State,
    status: Literal["issued", "won", "claimed", "shipped"] | None = None,
    cursor: Cursor = None,
    limit: OperatorPageSize = 100,
) -> AwardsPage:
    ctx = get_ctx(state)
    items = await service.wheel_awards(
        ctx, operator.tenant_id, key, status, _decode_cursor(cursor) or 0, limit
    )
    return AwardsPage(items, _encode_cursor(items[-1].id) if len(items) == limit else None)


@errors("WHEEL_NOT_FOUND", "PRIZE_NOT_FOUND")
@get(
    "/wheels/{key:str}/awards/{awardId:int}",
    opt={"scope": "members"},
    tags=["wheel"],
    summary="One prize with the winner's full contact, for shipping",
)
async def get_award(
    key: Key, awardId: AwardId, operator: NamedDependency[Operator], state: State
) -> AwardOut:
    return await service.award_for_shipping(get_ctx(state), operator.tenant_id, key, awardId)


@errors("WHEEL_NOT_FOUND", "PRIZE_NOT_FOUND", "PRIZE_NOT_SHIPPABLE", idempotent=True)
@post(
    "/wheels/{key:str}/awards/{awardId:int}/ship",
    status_code=200,
    opt={"scope": "members"},
    tags=["wheel"],
    summary="Mark a claimed physical prize shipped",
)
async def ship_award(
    key: Key,
    awardId: AwardId,
    data: JSONBody[ShipIn],
    operator: NamedDependency[Operator],
    work: NamedDependency[RequestUnit],
) -> Response[AwardOut]:
    return await work.respond(service.ship, operator.tenant_id, key, awardId, data)


member_router = Router(
    path="/v1",
    route_handlers=[wheel_view, spin, my_prizes, claim_prize],
    dependencies={"member": Provide(member_principal), "work": Provide(member_work)},
    security=[{"memberToken": []}],
)
admin_router = Router(
    path="/admin/v1",
    route_handlers=[
        put_wheel,
        get_wheel,
        get_draws,
        simulate,
        add_codes,
        list_awards,
        get_award,
        ship_award,
    ],
    dependencies={"operator": Provide(operator_principal), "work": Provide(operator_work)},
    security=[{"apiKey": []}],
)
