"""Routes: member login and refresh, the profile, and minting tokens for H5 pages."""

from __future__ import annotations

from litestar import Request, Response, Router, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody

from service.core.apidoc import errors
from service.core.http import RequestUnit, client_ip, get_ctx, operator_principal, operator_work
from service.core.tenancy import Operator
from service.members import service
from service.members.schemas import (
    ExternalId,
    LoginOut,
    MintTokenIn,
    RefreshIn,
    TokenOut,
    WechatLoginIn,
)


@errors(
    "RATE_LIMITED",
    "APP_NOT_REGISTERED",
    "DEV_LOGIN_DISABLED",
    "WECHAT_CODE_INVALID",
    "WECHAT_CODE_USED",
    "WECHAT_RATE_LIMITED",
    "WECHAT_USER_BLOCKED",
    "WECHAT_UNAVAILABLE",
    "IDEMPOTENCY_IN_FLIGHT",
)
@post(
    "/auth/wechat",
    status_code=200,
    summary="Log in with a mini-program code",
    tags=["auth"],
    description=(
        "Exchanges a `wx.login()` code for member tokens. The member is created on first "
        "login. A repeated code within a few minutes answers the first result."
    ),
)
async def wechat_login(data: JSONBody[WechatLoginIn], state: State, request: Request) -> LoginOut:
    ctx = get_ctx(state)
    # The client IP as for every other /v1 route: behind a trusted proxy, the socket peer is
    # the proxy, and limiting by it would make every member share one login budget.
    await ctx.limiter.hit(
        ctx.settings.rate_ip_per_min, "ip", client_ip(request, ctx.trusted_proxies)
    )
    return await service.login_wechat(ctx, data.app_id, data.code, data.invite_code)


@errors("TOKEN_EXPIRED", "TOKEN_INVALID")
@post(
    "/auth/refresh",
    status_code=200,
    summary="Exchange a refresh token for new tokens",
    tags=["auth"],
)
async def refresh_tokens(data: JSONBody[RefreshIn], state: State) -> TokenOut:
    return await service.refresh(get_ctx(state), data.refresh_token)


@errors(idempotent=True)
@post(
    "/members/{externalId:str}/token",
    status_code=200,
    opt={"scope": "members"},
    summary="Mint a member token for an H5 page",
    tags=["members"],
    description=(
        "The brand's back end calls this after its own login. The member is created on "
        "first use, keyed by the brand's externalId."
    ),
)
async def mint_token(
    externalId: ExternalId,
    operator: NamedDependency[Operator],
    work: NamedDependency[RequestUnit],
    data: JSONBody[MintTokenIn | None] = None,
) -> Response[LoginOut]:
    body = data or MintTokenIn()
    return await work.respond(
        service.mint_for_external_id,
        operator.tenant_id,
        externalId,
        body.nickname,
        body.avatar_url,
        body.invite_code,
    )


public_router = Router(path="/v1", route_handlers=[wechat_login, refresh_tokens])
admin_router = Router(
    path="/admin/v1",
    route_handlers=[mint_token],
    dependencies={"operator": Provide(operator_principal), "work": Provide(operator_work)},
    security=[{"apiKey": []}],
)
