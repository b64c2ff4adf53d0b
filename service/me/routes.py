"""Routes of the member's own card: GET and PATCH /v1/me."""

from __future__ import annotations

from litestar import Request, Response, Router, get, patch
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody

from service.core.apidoc import errors
from service.core.auth import Member
from service.core.http import MemberRequest, RequestUnit, member_principal, member_work
from service.me import service
from service.me.schemas import MeOut, SummaryOut
from service.members import service as members
from service.members.schemas import MemberOut, ProfileIn


@errors()
@get("/me", summary="My card: profile, member number, level and progress, balances", tags=["me"])
async def me(request: Request) -> MeOut:
    async with MemberRequest(request, fold=False) as m:
        return await service.me(m.ctx, m.member.tenant_id, m.member.member_id)


@errors()
@get(
    "/me/summary",
    summary="Launch summary: everything the first screen needs, in one call",
    tags=["me"],
    description=(
        "Balances, level card with privileges and progress, validity, ritual state, today's "
        "check-in state per live campaign, spins left per open wheel, pending ceremonies, and "
        "the keys of live campaigns of every kind (so a client hard-codes no key). A fixed "
        "number of database statements whatever the number of campaigns."
    ),
)
async def summary(request: Request) -> SummaryOut:
    async with MemberRequest(request, fold=False) as m:
        return await service.summary(m.ctx, m.member.tenant_id, m.member.member_id)


@errors(idempotent=True)
@patch("/me", summary="Update my nickname or avatar", tags=["me"])
async def update_me(
    data: JSONBody[ProfileIn], member: NamedDependency[Member], work: NamedDependency[RequestUnit]
) -> Response[MemberOut]:
    return await work.respond(
        members.update_profile, member.tenant_id, member.member_id, data.nickname, data.avatar_url
    )


member_router = Router(
    path="/v1",
    route_handlers=[me, summary, update_me],
    dependencies={"member": Provide(member_principal), "work": Provide(member_work)},
    security=[{"memberToken": []}],
)
