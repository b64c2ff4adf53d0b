"""Routes: the ritual and invitations (members); the ritual definition, member number
reservations and manual numbers (operators)."""

from __future__ import annotations

from typing import Annotated

from litestar import Response, Router, delete, get, post, put
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody, Parameter

from service.core.apidoc import errors
from service.core.auth import Member
from service.core.constraints import Cursor, PageSize, constrained
from service.core.http import (
    RequestUnit,
    get_ctx,
    member_principal,
    member_work,
    operator_principal,
    operator_work,
)
from service.core.tenancy import Operator
from service.members.schemas import ExternalId
from service.rituals import service
from service.rituals.schemas import (
    AssignNumberIn,
    InvitationsOut,
    InviteIn,
    InviteOutcome,
    MemberNumberOut,
    ReservationIn,
    ReservationList,
    ReservationOut,
    RitualIn,
    RitualOut,
    RitualView,
    StepIn,
)

StepPath = constrained(
    str,
    "The step's key in the ritual definition.",
    min_length=1,
    max_length=32,
    pattern=r"^[a-z0-9][a-z0-9_\-]*$",
)
ReservationId = Annotated[int, Parameter(description="The reservation's id.", ge=1, le=2**62)]


# ---------------------------------------------------------------- members


@errors("RITUAL_NOT_CONFIGURED")
@get(
    "/ritual",
    summary="The entry ritual: steps, my state, what is next",
    tags=["ritual"],
    description=(
        "`status`: notStarted, inProgress, completed, reacceptRequired. `next` is the step to "
        "show. Resumable on any device: the state lives on the server. 404 RITUAL_NOT_CONFIGURED."
    ),
)
async def ritual(member: NamedDependency[Member], state: State) -> RitualView:
    return await service.view(get_ctx(state), member.tenant_id, member.member_id)


@errors(
    "RITUAL_NOT_CONFIGURED",
    "RITUAL_STEP_UNKNOWN",
    "RITUAL_STEP_OUT_OF_ORDER",
    "RITUAL_STEP_INVALID",
    "PHONE_CONSENT_REQUIRED",
    "PHONE_INVALID",
    idempotent=True,
)
@post(
    "/ritual/steps/{stepKey:str}",
    status_code=200,
    summary="Complete a ritual step (idempotent; steps in order)",
    tags=["ritual"],
    description=(
        "A step already done answers the current state. A step whose required predecessor "
        "is missing: 409 RITUAL_STEP_OUT_OF_ORDER with `details.next`. Completing the last "
        "required step makes the member join: `justCompleted: true`, `memberNo`, "
        "`memberNumber` (`NO.001024`); the welcome gift and the entry ceremony follow in the "
        "same transaction. A phone without `phoneConsent: true`: 422 PHONE_CONSENT_REQUIRED; "
        "malformed: 422 PHONE_INVALID. An `inviteCode` is recorded if valid (see "
        "`invitation`), never failing the step."
    ),
)
async def complete_step(
    stepKey: StepPath,
    data: JSONBody[StepIn],
    member: NamedDependency[Member],
    work: NamedDependency[RequestUnit],
) -> Response[RitualView]:
    return await work.respond(
        service.complete_step, member.tenant_id, member.member_id, stepKey, data
    )


@errors("CONFLICT")
@get(
    "/me/invitations",
    summary="My invite code, my invitees and the rewards they brought",
    tags=["invitations"],
    description=(
        "`code` goes in an H5 link (`?inviteCode=`), `scene` in a mini-program code "
        "(wxacode.getUnlimited, at most 32 characters). Invitees are masked; `state`: pending "
        "(not joined yet), joined, capped (over the daily limit: not rewarded)."
    ),
)
async def my_invitations(
    member: NamedDependency[Member], state: State, cursor: Cursor = None, limit: PageSize = 20
) -> InvitationsOut:
    return await service.invitations(
        get_ctx(state), member.tenant_id, member.member_id, cursor, limit
    )


@errors("INVITE_CODE_INVALID", idempotent=True)
@post(
    "/me/inviter",
    status_code=200,
    summary="Record who invited me (an invite code from a link or scene)",
    tags=["invitations"],
    description=(
        "The first valid code counts, once. Unknown, own, a second code, a code of someone I "
        "invited (cycle), or I already joined: 422 INVITE_CODE_INVALID with `details.reason`."
    ),
)
async def accept_invite(
    data: JSONBody[InviteIn], member: NamedDependency[Member], work: NamedDependency[RequestUnit]
) -> Response[InviteOutcome]:
    return await work.respond(
        service.accept_invite, member.tenant_id, member.member_id, data.code, "api"
    )


member_router = Router(
    path="/v1",
    route_handlers=[ritual, complete_step, my_invitations, accept_invite],
    dependencies={"member": Provide(member_principal), "work": Provide(member_work)},
    security=[{"memberToken": []}],
)


# ---------------------------------------------------------------- operators


@errors(idempotent=True)
@put(
    "/rituals",
    status_code=200,
    opt={"scope": "config"},
    summary="Define the entry ritual (a new version)",
    tags=["ritual"],
    description=(
        "Ordered steps (covenant, profile, privileges, subscription, custom), the welcome "
        "gift, the member number format and the invitation settings. Every problem at once: "
        "422 VALIDATION_FAILED, nothing saved. Members who completed an earlier version "
        "are never asked again, unless `reaskOnCovenantChange` and the covenant's `version` "
        "changed (they accept the covenant again; no second gift or number)."
    ),
)
async def put_ritual(
    data: JSONBody[RitualIn],
    operator: NamedDependency[Operator],
    work: NamedDependency[RequestUnit],
) -> Response[RitualOut]:
    return await work.respond(service.put_definition, operator.tenant_id, data)


@errors("RITUAL_NOT_CONFIGURED")
@get("/rituals", opt={"scope": "config"}, summary="The current entry ritual", tags=["ritual"])
async def get_ritual(operator: NamedDependency[Operator], state: State) -> RitualOut:
    return await service.get_definition(get_ctx(state), operator.tenant_id)


@errors()
@get(
    "/member-numbers/reservations",
    opt={"scope": "members"},
    summary="Reserved member numbers and the next number of the sequence",
    tags=["ritual"],
)
async def list_reservations(operator: NamedDependency[Operator], state: State) -> ReservationList:
    return await service.reservations(get_ctx(state), operator.tenant_id)


@errors("RESERVATION_CONFLICT", idempotent=True)
@post(
    "/member-numbers/reservations",
    status_code=200,
    opt={"scope": "members"},
    summary="Reserve member numbers (a range or one number)",
    tags=["ritual"],
    description=(
        "The sequence skips reserved numbers; they are given by hand (POST "
        "/admin/v1/members/{externalId}/member-number). Overlapping another reservation or a "
        "number already held: 409 RESERVATION_CONFLICT."
    ),
)
async def reserve(
    data: JSONBody[ReservationIn],
    operator: NamedDependency[Operator],
    work: NamedDependency[RequestUnit],
) -> Response[ReservationOut]:
    return await work.respond(service.reserve, operator.tenant_id, data)


@errors("RESERVATION_NOT_FOUND", idempotent=True)
@delete(
    "/member-numbers/reservations/{id:int}",
    status_code=200,
    opt={"scope": "members"},
    summary="Drop a reservation (numbers given from it stay)",
    tags=["ritual"],
)
async def unreserve(
    id: ReservationId, operator: NamedDependency[Operator], work: NamedDependency[RequestUnit]
) -> Response[ReservationList]:
    return await work.respond(service.unreserve, operator.tenant_id, id)


@errors(
    "MEMBER_NOT_FOUND",
    "MEMBER_NUMBER_TAKEN",
    "MEMBER_NUMBER_NOT_RESERVED",
    "MEMBER_ALREADY_NUMBERED",
    idempotent=True,
)
@post(
    "/members/{externalId:str}/member-number",
    status_code=200,
    opt={"scope": "members"},
    summary="Give a member a reserved number by hand",
    tags=["ritual"],
    description=(
        "Only reserved numbers (422 MEMBER_NUMBER_NOT_RESERVED). A number already held, "
        "requested again: 409 MEMBER_NUMBER_TAKEN. A member with a number keeps it: 409 "
        "MEMBER_ALREADY_NUMBERED."
    ),
)
async def assign_number(
    externalId: ExternalId,
    data: JSONBody[AssignNumberIn],
    operator: NamedDependency[Operator],
    work: NamedDependency[RequestUnit],
) -> Response[MemberNumberOut]:
    return await work.respond(service.assign_number, operator.tenant_id, externalId, data.number)


admin_router = Router(
    path="/admin/v1",
    route_handlers=[put_ritual, get_ritual, list_reservations, reserve, unreserve, assign_number],
    dependencies={"operator": Provide(operator_principal), "work": Provide(operator_work)},
    security=[{"apiKey": []}],
)
