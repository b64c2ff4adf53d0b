"""Routes: team definitions and bulk membership (operators); join, leave, my teams (members)."""

from __future__ import annotations

from typing import Annotated

from litestar import Request, Response, Router, delete, get, post, put
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody, Parameter

from service.core.apidoc import errors
from service.core.auth import Member
from service.core.constraints import KEY_PATTERN
from service.core.http import RequestUnit, get_ctx, member_principal, operator_principal
from service.core.tenancy import Operator
from service.teams import service
from service.teams.schemas import (
    JoinIn,
    LeaveOut,
    MembershipIn,
    MembershipOut,
    MyTeam,
    MyTeams,
    TeamIn,
    TeamKey,
    TeamList,
    TeamMembersOut,
    TeamOut,
)

Key = Annotated[TeamKey, Parameter(description="The team's key.")]


@errors("TEAM_SET_FIXED", idempotent=True)
@put(
    "/teams/{key:str}",
    opt={"scope": "config"},
    summary="Create or change a team",
    tags=["teams"],
    description=(
        "Versioned. The join code is generated on creation and kept unless given. The team "
        "set cannot change once the team has had members: 409 TEAM_SET_FIXED."
    ),
)
async def put_team(
    key: Key,
    data: JSONBody[TeamIn],
    operator: NamedDependency[Operator],
    state: State,
    request: Request,
) -> Response[TeamOut]:
    ctx = get_ctx(state)
    return await RequestUnit(request, ctx, operator).respond(
        service.put_team, operator.tenant_id, key, data
    )


@errors("TEAM_NOT_FOUND")
@get("/teams/{key:str}", opt={"scope": "config"}, summary="A team", tags=["teams"])
async def get_team(key: Key, operator: NamedDependency[Operator], state: State) -> TeamOut:
    return await service.get_team(get_ctx(state), operator.tenant_id, key)


@errors()
@get("/teams", opt={"scope": "config"}, summary="Every team, or those of one set", tags=["teams"])
async def list_teams(
    operator: NamedDependency[Operator],
    state: State,
    teamSet: Annotated[
        str | None,
        Parameter(
            description="Only this set's teams", min_length=1, max_length=64, pattern=KEY_PATTERN
        ),
    ] = None,
) -> TeamList:
    return await service.list_teams(get_ctx(state), operator.tenant_id, teamSet)


@errors("TEAM_NOT_FOUND", "TEAM_SET_TAKEN", "TEAM_FULL", idempotent=True)
@post(
    "/teams/{key:str}/members",
    status_code=200,
    opt={"scope": "config"},
    summary="Add, move or remove members in bulk by externalId",
    tags=["teams"],
    description=(
        "All or nothing. A member in another team of the same set: 409 TEAM_SET_TAKEN (listing "
        "them) unless `move` is true; past capacity: 409 TEAM_FULL. History keeps every stay."
    ),
)
async def set_members(
    key: Key,
    data: JSONBody[MembershipIn],
    operator: NamedDependency[Operator],
    state: State,
    request: Request,
) -> Response[MembershipOut]:
    ctx = get_ctx(state)
    return await RequestUnit(request, ctx, operator).respond(
        service.set_members, operator.tenant_id, key, data
    )


@errors("TEAM_NOT_FOUND")
@get(
    "/teams/{key:str}/members",
    opt={"scope": "config"},
    summary="A team's members, or its whole membership history",
    tags=["teams"],
)
async def team_members(
    key: Key,
    operator: NamedDependency[Operator],
    state: State,
    history: Annotated[bool, Parameter(description="true: every stay, past ones too")] = False,
) -> TeamMembersOut:
    return await service.team_members(get_ctx(state), operator.tenant_id, key, history)


@errors("TEAM_NOT_FOUND", "TEAM_JOIN_CODE_INVALID", "TEAM_SET_TAKEN", "TEAM_FULL", idempotent=True)
@post(
    "/teams/{key:str}/members",
    status_code=200,
    summary="Join a team (with its join code unless the team is open)",
    tags=["teams"],
    description=(
        "Idempotent: joining a team I am in answers the same. In another team of the same set: "
        "409 TEAM_SET_TAKEN; full: 409 TEAM_FULL; invite-only without the right code: 403 "
        "TEAM_JOIN_CODE_INVALID."
    ),
)
async def join_team(
    key: Key,
    data: JSONBody[JoinIn],
    member: NamedDependency[Member],
    state: State,
    request: Request,
) -> Response[MyTeam]:
    ctx = get_ctx(state)
    return await RequestUnit(request, ctx, member).respond(
        service.join, member.tenant_id, member.member_id, key, data
    )


@errors("TEAM_NOT_FOUND", idempotent=True)
@delete(
    "/teams/{key:str}/members/me",
    status_code=200,
    summary="Leave a team",
    tags=["teams"],
    description="Scores I made while in the team stay the team's. Not in it: `left` is false.",
)
async def leave_team(
    key: Key, member: NamedDependency[Member], state: State, request: Request
) -> Response[LeaveOut]:
    ctx = get_ctx(state)
    return await RequestUnit(request, ctx, member).respond(
        service.leave, member.tenant_id, member.member_id, key
    )


@errors()
@get("/teams/mine", summary="My teams (one per team set at most)", tags=["teams"])
async def my_teams(member: NamedDependency[Member], state: State) -> MyTeams:
    return await service.mine(get_ctx(state), member.tenant_id, member.member_id)


member_router = Router(
    path="/v1",
    route_handlers=[my_teams, join_team, leave_team],
    dependencies={"member": Provide(member_principal)},
)
admin_router = Router(
    path="/admin/v1",
    route_handlers=[put_team, get_team, list_teams, set_members, team_members],
    dependencies={"operator": Provide(operator_principal)},
)
