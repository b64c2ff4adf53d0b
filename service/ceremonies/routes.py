"""Routes: the ceremony queue, replays and the honour wall (members); templates and hiding
honour wall entries (operators)."""

from __future__ import annotations

from typing import Annotated

from litestar import Request, Response, Router, get, post, put
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody, Parameter

from service.ceremonies import rules, service
from service.ceremonies.schemas import (
    AckOut,
    CeremonyOut,
    CeremonyPage,
    CeremonySettingsIn,
    CeremonySettingsOut,
    Kind,
    PendingOut,
    WallEntryIn,
    WallEntryOut,
    WallPage,
    WallPreferenceIn,
    WallPreferenceOut,
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

Id = Annotated[int, Parameter(description="The ceremony's id.", ge=1, le=2**62)]
Cursor = constraints.Cursor


PendingLimit = Annotated[int, Parameter(ge=1, le=20, description="Groups at most, 1..20.")]
PageLimit = Annotated[int, Parameter(ge=1, le=50, description="Page size, 1..50.")]
KindFilter = Annotated[Kind | None, Parameter(description="Only honours of this kind.")]
KindPath = Annotated[
    str, Parameter(description="A ceremony kind.", max_length=16, pattern=r"^[A-Za-z]{1,16}$")
]


def _lang(request: Request) -> str:
    return pick_language(request.headers.get("accept-language"))


@errors()
@get(
    "/ceremonies/pending",
    summary="Honours to play on launch, most important first",
    tags=["ceremonies"],
    description=(
        "At most `limit` groups (1..20, default 3); a group holds the honours of one business "
        "event (play it as one modal). `more` counts pending ceremonies left out. Copy in "
        "Chinese unless Accept-Language prefers English."
    ),
)
async def pending(
    member: NamedDependency[Member], state: State, request: Request, limit: PendingLimit = 3
) -> PendingOut:
    return await service.pending(
        get_ctx(state), member.tenant_id, member.member_id, limit, _lang(request)
    )


@errors("CEREMONY_NOT_FOUND", idempotent=True)
@post(
    "/ceremonies/{id:int}/ack",
    status_code=200,
    summary="Mark a ceremony played (idempotent)",
    tags=["ceremonies"],
    description="Only the owner: any other id is 404 CEREMONY_NOT_FOUND.",
)
async def ack(
    id: Id, member: NamedDependency[Member], work: NamedDependency[RequestUnit]
) -> Response[AckOut]:
    return await work.respond(service.ack, member.tenant_id, member.member_id, id)


@errors()
@get("/ceremonies/played", summary="My played ceremonies, newest first", tags=["ceremonies"])
async def played(
    member: NamedDependency[Member],
    state: State,
    request: Request,
    cursor: Cursor = None,
    limit: PageLimit = 20,
) -> CeremonyPage:
    return await service.played(
        get_ctx(state), member.tenant_id, member.member_id, cursor, limit, _lang(request)
    )


@errors("CEREMONY_NOT_FOUND")
@get("/ceremonies/{id:int}", summary="One of my ceremonies, to replay it", tags=["ceremonies"])
async def replay(
    id: Id, member: NamedDependency[Member], state: State, request: Request
) -> CeremonyOut:
    return await service.replay(
        get_ctx(state), member.tenant_id, member.member_id, id, _lang(request)
    )


@errors("CEREMONY_KIND_UNKNOWN")
@get(
    "/honour-wall",
    summary="Recent honours across the brand (喜报)",
    tags=["honour-wall"],
    description=(
        "Newest first, cursor-paginated (`limit` 1..50, default 20), filter by `kind`. "
        "Masked nicknames and shown titles; members who opted out never appear."
    ),
)
async def honour_wall(
    member: NamedDependency[Member],
    state: State,
    request: Request,
    kind: KindFilter = None,
    cursor: Cursor = None,
    limit: PageLimit = 20,
) -> WallPage:
    return await service.wall(get_ctx(state), member.tenant_id, kind, cursor, limit, _lang(request))


@errors(idempotent=True)
@put(
    "/me/honour-wall",
    summary="Opt out of (or back into) the honour wall",
    tags=["honour-wall"],
)
async def put_wall_preference(
    data: JSONBody[WallPreferenceIn],
    member: NamedDependency[Member],
    work: NamedDependency[RequestUnit],
) -> Response[WallPreferenceOut]:
    return await work.respond(
        service.set_wall_preference, member.tenant_id, member.member_id, data.hidden
    )


# ---------------------------------------------------------------- operators


@errors("CEREMONY_KIND_UNKNOWN", idempotent=True)
@put(
    "/ceremonies/{kind:str}",
    opt={"scope": "config"},
    summary="Override a ceremony kind's templates (zh, en) and pending expiry",
    tags=["ceremonies"],
    description=(
        f"Kinds: {', '.join(rules.KINDS)}. Templates use the kind's facts as {{placeholders}}; "
        "an unknown one is 422 VALIDATION_FAILED."
    ),
)
async def put_settings(
    kind: KindPath,
    data: JSONBody[CeremonySettingsIn],
    operator: NamedDependency[Operator],
    work: NamedDependency[RequestUnit],
) -> Response[CeremonySettingsOut]:
    return await work.respond(service.put_settings, operator.tenant_id, kind, data)


@errors("CEREMONY_KIND_UNKNOWN")
@get(
    "/ceremonies/{kind:str}",
    opt={"scope": "config"},
    summary="A ceremony kind's templates and expiry (defaults or the override)",
    tags=["ceremonies"],
)
async def get_settings(
    kind: KindPath, operator: NamedDependency[Operator], state: State
) -> CeremonySettingsOut:
    return await service.get_settings(get_ctx(state), operator.tenant_id, kind)


@errors("HONOUR_NOT_FOUND", idempotent=True)
@put(
    "/honour-wall/{id:int}",
    opt={"scope": "admin"},
    summary="Hide an honour wall entry (or show it again)",
    tags=["honour-wall"],
)
async def hide_entry(
    id: Id,
    data: JSONBody[WallEntryIn],
    operator: NamedDependency[Operator],
    work: NamedDependency[RequestUnit],
) -> Response[WallEntryOut]:
    return await work.respond(service.hide_entry, operator.tenant_id, id, data.hidden)


member_router = Router(
    path="/v1",
    route_handlers=[pending, ack, played, replay, honour_wall, put_wall_preference],
    dependencies={"member": Provide(member_principal), "work": Provide(member_work)},
    security=[{"memberToken": []}],
)
admin_router = Router(
    path="/admin/v1",
    route_handlers=[put_settings, get_settings, hide_entry],
    dependencies={"operator": Provide(operator_principal), "work": Provide(operator_work)},
)
