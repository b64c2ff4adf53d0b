"""Routes: board and red/black definitions (operators), board reads and red/black (members)."""

from __future__ import annotations

from typing import Annotated

from litestar import Request, Response, Router, delete, get, post, put
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody, Parameter
from msgspec import Meta

from service.core.apidoc import errors
from service.core.auth import Member
from service.core.constraints import PERIOD_ID, Cursor, OperatorPageSize, PageSize
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
from service.leaderboards import rules, service
from service.leaderboards.schemas import (
    BoardKey,
    BoardPage,
    EntriesPage,
    FriendsIn,
    LeaderboardIn,
    LeaderboardList,
    LeaderboardOut,
    PreferenceIn,
    PreferenceOut,
    PublicationOut,
    PublishIn,
    RedBlackIn,
    RedBlackOut,
    RedBlackView,
)

PERIOD_DOC = (
    "`current` (default), `previous`, or a period id: `all`, `window`, `2026-11-23`, "
    "`2026-W48` (ISO week, Monday start, in the board's time zone), `2026-11`. Closed periods "
    "are read from the archive. Unknown: 404 LEADERBOARD_PERIOD_NOT_FOUND. A year outside "
    "2000-2100: 422 VALIDATION_FAILED (OUT_OF_RANGE); a day, week or month that is not on "
    "the calendar (`2026-02-30`, `2000-W00`, `2026-13`): 422 VALIDATION_FAILED (FORMAT_INVALID)."
)
Period = Annotated[str, Meta(extra=PERIOD_ID), Parameter(description=PERIOD_DOC, max_length=32)]
Key = BoardKey


# ---------------------------------------------------------------- operators


@errors("LEADERBOARD_KEY_CLASH", "LEADERBOARD_ARCHIVED", idempotent=True)
@put(
    "/leaderboards/{key:str}",
    opt={"scope": "config"},
    summary="Create or change a leaderboard",
    tags=["leaderboards"],
    description=(
        "Versioned: each PUT bumps `version`. Invalid: 422 VALIDATION_FAILED with "
        "every problem in `details.problems`, nothing changed. A board that never counted "
        "anything can be corrected in place; once it counted, metric, period, time zone and "
        "window cannot change under its key: 409 LEADERBOARD_KEY_CLASH (archive it, use a new "
        "key). A parked board resumes on a correcting PUT and catches up the events it missed. "
        "Archived: 409 LEADERBOARD_ARCHIVED."
    ),
)
async def put_board(
    key: Key,
    data: JSONBody[LeaderboardIn],
    operator: NamedDependency[Operator],
    work: NamedDependency[RequestUnit],
) -> Response[LeaderboardOut]:
    return await work.respond(service.put_board, operator.tenant_id, key, data)


@errors("LEADERBOARD_NOT_FOUND")
@get(
    "/leaderboards/{key:str}",
    opt={"scope": "config"},
    summary="A leaderboard definition and its state (active, parked with why, archived)",
    tags=["leaderboards"],
)
async def get_board(key: Key, operator: NamedDependency[Operator], state: State) -> LeaderboardOut:
    return await service.get_board(get_ctx(state), operator.tenant_id, key)


@errors()
@get(
    "/leaderboards",
    opt={"scope": "config"},
    summary="Every leaderboard of the tenant with its state, archived ones too",
    tags=["leaderboards"],
)
async def list_boards(operator: NamedDependency[Operator], state: State) -> LeaderboardList:
    return await service.list_boards(get_ctx(state), operator.tenant_id)


ARCHIVE_DOC = (
    "Retires the board: it counts nothing more, members get 409 LEADERBOARD_ARCHIVED, "
    "operators still read its definition and `/entries`. The key stays taken (a PUT answers "
    "409 LEADERBOARD_ARCHIVED), so nothing new is shown under an old board's name. Idempotent."
)


@errors("LEADERBOARD_NOT_FOUND", idempotent=True)
@post(
    "/leaderboards/{key:str}/archive",
    opt={"scope": "config"},
    summary="Archive a leaderboard",
    tags=["leaderboards"],
    description=ARCHIVE_DOC,
    status_code=200,
)
async def archive_board(
    key: Key, operator: NamedDependency[Operator], work: NamedDependency[RequestUnit]
) -> Response[LeaderboardOut]:
    return await work.respond(service.archive_board, operator.tenant_id, key)


@errors("LEADERBOARD_NOT_FOUND", idempotent=True)
@delete(
    "/leaderboards/{key:str}",
    opt={"scope": "config"},
    summary="Archive a leaderboard (same as POST .../archive)",
    tags=["leaderboards"],
    description=ARCHIVE_DOC,
    status_code=200,
)
async def delete_board(
    key: Key, operator: NamedDependency[Operator], work: NamedDependency[RequestUnit]
) -> Response[LeaderboardOut]:
    return await work.respond(service.archive_board, operator.tenant_id, key)


@errors("LEADERBOARD_NOT_FOUND", "LEADERBOARD_PERIOD_NOT_FOUND", "LEADERBOARD_PARKED")
@get(
    "/leaderboards/{key:str}/entries",
    opt={"scope": "reports"},
    summary="Export a period's entries with full member ids",
    tags=["leaderboards"],
)
async def board_entries(
    key: Key,
    operator: NamedDependency[Operator],
    state: State,
    period: Period = "current",
    limit: OperatorPageSize = 100,
    cursor: Cursor = None,
) -> EntriesPage:
    return await service.entries(get_ctx(state), operator.tenant_id, key, period, limit, cursor)


@errors("RED_BLACK_BOARD_TAKEN", idempotent=True)
@put(
    "/red-black/{key:str}",
    opt={"scope": "config"},
    summary="Create or change a red/black board (红黑榜)",
    tags=["red-black"],
    description=(
        "Attached to one leaderboard. Red: the top `redSize`; black: the bottom `blackSize` "
        "among members with at least `minActivity` in the period, only when `blackEnabled` "
        "(off by default), never showing members who opted out. Published at period close."
    ),
)
async def put_red_black(
    key: Key,
    data: JSONBody[RedBlackIn],
    operator: NamedDependency[Operator],
    work: NamedDependency[RequestUnit],
) -> Response[RedBlackOut]:
    return await work.respond(service.put_red_black, operator.tenant_id, key, data)


@errors("RED_BLACK_NOT_FOUND")
@get(
    "/red-black/{key:str}",
    opt={"scope": "config"},
    summary="A red/black board definition",
    tags=["red-black"],
)
async def get_red_black(key: Key, operator: NamedDependency[Operator], state: State) -> RedBlackOut:
    return await service.get_red_black(get_ctx(state), operator.tenant_id, key)


@errors(
    "RED_BLACK_NOT_FOUND",
    "LEADERBOARD_NOT_FOUND",
    "LEADERBOARD_PERIOD_NOT_FOUND",
    "LEADERBOARD_PERIOD_OPEN",
    "LEADERBOARD_PARKED",
    idempotent=True,
)
@post(
    "/red-black/{key:str}/publish",
    status_code=200,
    opt={"scope": "config"},
    summary="Re-publish a closed period's red/black board (a correction)",
    tags=["red-black"],
    description=(
        "Adds a revision recomputed from the archive, with a note per entry; earlier "
        "revisions stay. Open period: 409 LEADERBOARD_PERIOD_OPEN. Emits red-black.published."
    ),
)
async def publish_red_black(
    key: Key,
    data: JSONBody[PublishIn],
    operator: NamedDependency[Operator],
    work: NamedDependency[RequestUnit],
) -> Response[PublicationOut]:
    return await work.respond(
        service.publish,
        operator.tenant_id,
        key,
        data.period,
        data.notes,
        data.reason,
        f"operator:{operator.key_id}",
    )


# ---------------------------------------------------------------- members


@errors(
    "LEADERBOARD_NOT_FOUND",
    "LEADERBOARD_PERIOD_NOT_FOUND",
    "LEADERBOARD_ARCHIVED",
    "LEADERBOARD_PARKED",
)
@get(
    "/leaderboards/{boardKey:str}",
    summary="Top of a board, with my rank and score",
    tags=["leaderboards"],
    description=(
        "`items` are ranked by score, then by who reached it first. The top page may be up to "
        "a second old (`updatedAt` says when the board last changed); `me` is always exact "
        "(`rank` null when I am not on the board)."
    ),
)
async def read_board(
    boardKey: Key,
    request: Request,
    period: Period = "current",
    limit: PageSize = 20,
    cursor: Cursor = None,
) -> BoardPage:
    async with MemberRequest(request) as m:
        return await service.read_board(
            m.ctx, m.member.tenant_id, m.member.member_id, boardKey, period, limit, cursor, m.rate
        )


@errors(
    "LEADERBOARD_NOT_FOUND",
    "LEADERBOARD_PERIOD_NOT_FOUND",
    "LEADERBOARD_ARCHIVED",
    "LEADERBOARD_PARKED",
)
@get(
    "/leaderboards/{boardKey:str}/around-me",
    summary="The members ranked just above and below me",
    tags=["leaderboards"],
)
async def around_me(
    boardKey: Key,
    request: Request,
    period: Period = "current",
    radius: Annotated[
        int,
        Parameter(
            ge=1, le=rules.MAX_RADIUS, description=f"Members each side, 1-{rules.MAX_RADIUS}."
        ),
    ] = 5,
) -> BoardPage:
    async with MemberRequest(request) as m:
        return await service.around_me(
            m.ctx, m.member.tenant_id, m.member.member_id, boardKey, period, radius, m.rate
        )


@errors(
    "LEADERBOARD_NOT_FOUND",
    "LEADERBOARD_PERIOD_NOT_FOUND",
    "LEADERBOARD_ARCHIVED",
    "LEADERBOARD_PARKED",
)
@post(
    "/leaderboards/{boardKey:str}/friends",
    status_code=200,
    summary="My rank among up to 200 given members (a friends board)",
    tags=["leaderboards"],
    description=(
        "A read with a body (the list is too long for a URL); nothing changes. Ids that are "
        "not members of this brand are ignored."
    ),
)
async def friends_board(
    boardKey: Key, data: JSONBody[FriendsIn], member: NamedDependency[Member], state: State
) -> BoardPage:
    return await service.friends(get_ctx(state), member.tenant_id, member.member_id, boardKey, data)


@errors(
    "LEADERBOARD_NOT_FOUND",
    "RED_BLACK_NOT_FOUND",
    "RED_BLACK_NOT_PUBLISHED",
    "LEADERBOARD_PERIOD_NOT_FOUND",
    "LEADERBOARD_ARCHIVED",
    "LEADERBOARD_PARKED",
)
@get(
    "/boards/{boardKey:str}/red-black",
    summary="The published red/black board of a period",
    tags=["red-black"],
    description="`period` defaults to the latest published period.",
)
async def read_red_black(
    boardKey: Key,
    member: NamedDependency[Member],
    state: State,
    period: Annotated[
        str | None, Meta(extra=PERIOD_ID), Parameter(description=PERIOD_DOC, max_length=32)
    ] = None,
) -> RedBlackView:
    return await service.read_red_black(get_ctx(state), member.tenant_id, boardKey, period)


@errors(idempotent=True)
@put(
    "/me/board-preferences",
    summary="Never show me on black lists",
    tags=["red-black"],
)
async def put_preferences(
    data: JSONBody[PreferenceIn],
    member: NamedDependency[Member],
    work: NamedDependency[RequestUnit],
) -> Response[PreferenceOut]:
    return await work.respond(
        service.set_preference, member.tenant_id, member.member_id, data.hide_from_black
    )


member_router = Router(
    path="/v1",
    route_handlers=[read_board, around_me, friends_board, read_red_black, put_preferences],
    dependencies={"member": Provide(member_principal), "work": Provide(member_work)},
)
admin_router = Router(
    path="/admin/v1",
    route_handlers=[
        put_board,
        get_board,
        list_boards,
        archive_board,
        delete_board,
        board_entries,
        put_red_black,
        get_red_black,
        publish_red_black,
    ],
    dependencies={"operator": Provide(operator_principal), "work": Provide(operator_work)},
)
