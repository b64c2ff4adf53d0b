"""Routes: badge definitions, manual award/revoke and backfill (operators); the badge wall,
my badges and my shown title (members)."""

from __future__ import annotations

from litestar import Request, Response, Router, get, post, put
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody

from service.badges import service
from service.badges.schemas import (
    AwardIn,
    AwardOut,
    BackfillOut,
    BadgeCatalogue,
    BadgeIn,
    BadgeList,
    BadgeOut,
    MyBadges,
    ShownTitleOut,
    TitleIn,
)
from service.core import constraints
from service.core.apidoc import errors
from service.core.auth import Member
from service.core.errors import pick_language
from service.core.http import (
    RequestUnit,
    get_ctx,
    member_principal,
    member_work,
    operator_principal,
    operator_work,
)
from service.core.tenancy import Operator

Key = constraints.Key
ExternalId = constraints.ExternalId

# ---------------------------------------------------------------- operators


@errors(idempotent=True)
@put(
    "/badges/{key:str}",
    opt={"scope": "config"},
    summary="Create or change a badge (徽章)",
    tags=["badges"],
    description=(
        "Criteria are declared, never code: eventCount, valueSum, firstTime, checkinStreak, "
        "levelReached, totalEarned, boardRank, challengeFinished, memberJoined, "
        "ritualCompleted, badgeEarned, pkWon, manual (all must be met in one period). "
        "Invalid: 422 "
        "VALIDATION_FAILED listing every problem (unknown event type, board, level or "
        "campaign, a window without offsets, counts below 1, a reward cycle), nothing saved. "
        "A new or changed badge is backfilled from history by a job within a minute "
        "(or `POST .../backfill`)."
    ),
)
async def put_badge(
    key: Key,
    data: JSONBody[BadgeIn],
    operator: NamedDependency[Operator],
    work: NamedDependency[RequestUnit],
) -> Response[BadgeOut]:
    return await work.respond(service.put_definition, operator.tenant_id, key, data)


@errors("BADGE_NOT_FOUND")
@get("/badges/{key:str}", opt={"scope": "config"}, summary="A badge definition", tags=["badges"])
async def get_badge(key: Key, operator: NamedDependency[Operator], state: State) -> BadgeOut:
    return await service.get_definition(get_ctx(state), operator.tenant_id, key)


@errors()
@get(
    "/badges",
    opt={"scope": "config"},
    summary="Every badge definition, with its status (active or parked)",
    tags=["badges"],
)
async def list_badges(operator: NamedDependency[Operator], state: State) -> BadgeList:
    return await service.list_definitions(get_ctx(state), operator.tenant_id)


@errors("BADGE_NOT_FOUND")
@post(
    "/badges/{key:str}/backfill",
    opt={"scope": "config"},
    status_code=200,
    summary="Replay history through a badge now (members who already qualify earn it)",
    tags=["badges"],
)
async def backfill_badge(
    key: Key, operator: NamedDependency[Operator], state: State
) -> BackfillOut:
    return await service.backfill(get_ctx(state), operator.tenant_id, key)


@errors("BADGE_NOT_FOUND", "MEMBER_NOT_FOUND", idempotent=True)
@post(
    "/members/{externalId:str}/badges/{key:str}/award",
    opt={"scope": "admin"},
    status_code=200,
    summary="Award a badge to a member by hand, with a reason (audited)",
    tags=["badges"],
    description="Unknown badge: 404 BADGE_NOT_FOUND; unknown member: 404 MEMBER_NOT_FOUND.",
)
async def award_badge(
    externalId: ExternalId,
    key: Key,
    data: JSONBody[AwardIn],
    operator: NamedDependency[Operator],
    work: NamedDependency[RequestUnit],
) -> Response[AwardOut]:
    return await work.respond(
        service.award, operator.tenant_id, externalId, key, data.reason, operator.key_id
    )


@errors("BADGE_NOT_FOUND", "MEMBER_NOT_FOUND", idempotent=True)
@post(
    "/members/{externalId:str}/badges/{key:str}/revoke",
    opt={"scope": "admin"},
    status_code=200,
    summary="Revoke a member's badge and the title it gave, with a reason (audited)",
    tags=["badges"],
)
async def revoke_badge(
    externalId: ExternalId,
    key: Key,
    data: JSONBody[AwardIn],
    operator: NamedDependency[Operator],
    work: NamedDependency[RequestUnit],
) -> Response[AwardOut]:
    return await work.respond(
        service.revoke, operator.tenant_id, externalId, key, data.reason, operator.key_id
    )


# ---------------------------------------------------------------- members


@errors()
@get(
    "/badges",
    summary="The badge wall: every badge with my progress {current, target}",
    tags=["badges"],
)
async def badge_wall(
    member: NamedDependency[Member], state: State, request: Request
) -> BadgeCatalogue:
    lang = pick_language(request.headers.get("accept-language"))
    return await service.catalogue(get_ctx(state), member.tenant_id, member.member_id, lang)


@errors()
@get("/me/badges", summary="My badges and titles, newest first", tags=["badges"])
async def my_badges(member: NamedDependency[Member], state: State) -> MyBadges:
    return await service.my_badges(get_ctx(state), member.tenant_id, member.member_id)


@errors("TITLE_NOT_HELD", idempotent=True)
@put(
    "/me/title",
    summary="Choose the title (头衔) I show, or none",
    tags=["badges"],
    description="Only a title I hold: 422 TITLE_NOT_HELD otherwise.",
)
async def put_title(
    data: JSONBody[TitleIn], member: NamedDependency[Member], work: NamedDependency[RequestUnit]
) -> Response[ShownTitleOut]:
    return await work.respond(service.set_title, member.tenant_id, member.member_id, data.title)


member_router = Router(
    path="/v1",
    route_handlers=[badge_wall, my_badges, put_title],
    dependencies={"member": Provide(member_principal), "work": Provide(member_work)},
    security=[{"memberToken": []}],
)
admin_router = Router(
    path="/admin/v1",
    route_handlers=[put_badge, get_badge, list_badges, backfill_badge, award_badge, revoke_badge],
    dependencies={"operator": Provide(operator_principal), "work": Provide(operator_work)},
)
