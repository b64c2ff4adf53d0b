"""Routes: a member's support card, data export and erasure (operators)."""

from __future__ import annotations

from litestar import Response, Router, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody

from service.core.apidoc import errors
from service.core.http import RequestUnit, get_ctx, operator_principal, operator_work
from service.core.tenancy import Operator
from service.members.schemas import ExternalId
from service.privacy import service
from service.privacy.schemas import EraseIn, EraseOut, ExportOut, SupportCard

External = ExternalId


@errors("MEMBER_NOT_FOUND")
@get(
    "/members/{externalId:str}",
    opt={"scope": "members"},
    summary="A member's support card",
    tags=["privacy"],
    description="Masked personal data, member number, balances, level, ritual and invitations.",
)
async def card(
    externalId: External, operator: NamedDependency[Operator], state: State
) -> SupportCard:
    return await service.support_card(get_ctx(state), operator.tenant_id, externalId)


@errors("MEMBER_NOT_FOUND")
@get(
    "/members/{externalId:str}/export",
    opt={"scope": "admin"},
    summary="Export one member's data (PIPL access request)",
    tags=["privacy"],
    description=(
        "Profile, login identities, consents and ritual data, the whole ledger, badges and "
        "titles, prizes. Phones and shipping contacts stay masked."
    ),
)
async def export(
    externalId: External, operator: NamedDependency[Operator], state: State
) -> ExportOut:
    return await service.export(get_ctx(state), operator.tenant_id, externalId)


@errors("MEMBER_NOT_FOUND", idempotent=True)
@post(
    "/members/{externalId:str}/erase",
    status_code=200,
    opt={"scope": "admin"},
    summary="Erase a member's personal data (PIPL deletion request)",
    tags=["privacy"],
    description=(
        "Nickname, avatar, login identities, ritual profile data and consents, prize "
        "contacts are removed; the member leaves every board and the honour wall. The ledger, "
        "balances, member number and audit stay. Audited with `reason`."
    ),
)
async def erase(
    externalId: External,
    data: JSONBody[EraseIn],
    operator: NamedDependency[Operator],
    work: NamedDependency[RequestUnit],
) -> Response[EraseOut]:
    return await work.respond(
        service.erase, operator.tenant_id, externalId, data.reason, f"key:{operator.key_id}"
    )


admin_router = Router(
    path="/admin/v1",
    route_handlers=[card, export, erase],
    dependencies={"operator": Provide(operator_principal), "work": Provide(operator_work)},
    security=[{"apiKey": []}],
)
