"""Routes of check-ins: the member's page, check in, make up; the operator's campaign config."""

from __future__ import annotations

import msgspec
from litestar import Request, Response, Router, get, post, put
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody

from service.checkins import service
from service.checkins.schemas import (
    CampaignIn,
    CampaignOut,
    CheckinOut,
    CheckinState,
    Key,
    MakeupBody,
    MonthParam,
)
from service.core.apidoc import errors
from service.core.clock import in_utc
from service.core.errors import DomainError
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
from service.core.uow import UnitOfWork


@errors("CAMPAIGN_NOT_FOUND", "CAMPAIGN_NOT_LIVE")
@get(
    "/checkins/{campaignKey:str}",
    summary="My check-in page: today, streaks, a month's calendar, rewards ahead",
    tags=["checkins"],
    description="`today` is the campaign's day (its time zone), never the phone's. "
    "`?month=2026-11` shows another month's calendar.",
)
async def get_state(
    campaignKey: Key, request: Request, month: MonthParam | None = None
) -> CheckinState:
    # One Redis round trip: the rate limit rides in the calendar read's pipeline.
    async with MemberRequest(request) as m:
        return await service.member_state(
            m.ctx, m.member.tenant_id, m.member.member_id, campaignKey, month, m.rate
        )


@errors("CAMPAIGN_NOT_FOUND", "CAMPAIGN_NOT_LIVE", idempotent=True)
@post(
    "/checkins/{campaignKey:str}",
    status_code=200,
    summary="Check in for today",
    tags=["checkins"],
    description="Once per member per local day. A repeated tap answers 200 with the first "
    "result and `replayed: true`; nothing is paid twice.",
)
async def check_in(campaignKey: Key, request: Request) -> Response[CheckinOut]:
    """Transaction: without an Idempotency-Key there is no BEGIN; the commit point is the one
    statement in ``repository.write`` (with a key: BEGIN .. COMMIT around the same code and
    the key's record). Before it, one Redis call (rate limit + the day's calendar bits). After
    commit: the dispatcher is woken, the check-in counted. On failure before the commit
    point: the bits that call set are cleared (on_rollback); after it, nothing is undone."""
    async with MemberRequest(request) as m:
        return await m.work().respond_single(
            service.check_in, m.member.tenant_id, m.member.member_id, campaignKey, m.rate
        )


@errors(
    "CAMPAIGN_NOT_FOUND",
    "CAMPAIGN_NOT_LIVE",
    "MAKEUP_NOT_OFFERED",
    "MAKEUP_DATE_IN_FUTURE",
    "MAKEUP_DATE_IS_TODAY",
    "MAKEUP_BEFORE_CAMPAIGN",
    "MAKEUP_BEFORE_JOINING",
    "MAKEUP_WINDOW_PASSED",
    "MAKEUP_DAY_CHECKED",
    "MAKEUP_QUOTA_USED",
    "INSUFFICIENT_POINTS",
    idempotent=True,
)
@post(
    "/checkins/{campaignKey:str}/makeups",
    status_code=200,
    summary="Make up a missed day",
    tags=["checkins"],
    description="Fills a missed day within the make-up window, within the monthly quota, "
    "debiting the cost in the same transaction; the streak is recounted.",
)
async def make_up(
    campaignKey: Key, data: JSONBody[MakeupBody], request: Request
) -> Response[CheckinOut]:
    """Transaction: as ``check_in``: no BEGIN without an Idempotency-Key; the commit point is
    the one statement in ``repository.write`` (day row, streak, cost debit, event). After
    commit: the dispatcher is woken. On failure before it (a refusal, INSUFFICIENT_POINTS, an
    error): the day and make-up bits set in Redis are cleared; after it, nothing is undone."""
    async with MemberRequest(request) as m:
        return await m.work().respond_single(
            service.make_up, m.member.tenant_id, m.member.member_id, campaignKey, data.date, m.rate
        )


def _campaign_out(c: service.Campaign, now) -> CampaignOut:  # type: ignore[no-untyped-def]
    return CampaignOut(
        c.key,
        c.version,
        in_utc(msgspec.convert(c.config, CampaignIn)),
        c.effective_state(now),
        c.updated_at,
    )


@errors(idempotent=True)
@put(
    "/checkin-campaigns/{key:str}",
    opt={"scope": "config"},
    tags=["checkins"],
    summary="Create or replace a check-in campaign",
    description="Validated as a whole: 422 VALIDATION_FAILED lists every problem (each with a "
    "code: TIMEZONE_UNKNOWN, STREAK_LADDER_INVALID, ...) and changes nothing. Each save bumps "
    "the version.",
)
async def put_campaign(
    key: Key,
    data: JSONBody[CampaignIn],
    operator: NamedDependency[Operator],
    work: NamedDependency[RequestUnit],
) -> Response[CampaignOut]:
    return await work.respond(_put_campaign, operator.tenant_id, key, data)


async def _put_campaign(uow: UnitOfWork, tenant_id: int, key: str, data: CampaignIn) -> CampaignOut:
    c = await service.put_campaign(uow, tenant_id, key, data)
    return _campaign_out(c, uow.ctx.clock.now())


@errors("CAMPAIGN_NOT_FOUND")
@get(
    "/checkin-campaigns/{key:str}",
    opt={"scope": "config"},
    tags=["checkins"],
    summary="A check-in campaign",
)
async def get_campaign(key: Key, operator: NamedDependency[Operator], state: State) -> CampaignOut:
    ctx = get_ctx(state)
    async with ctx.db.connection() as conn:
        c = await service.find_campaign(ctx, conn, operator.tenant_id, key, fresh=True)
    if c is None:
        raise DomainError("CAMPAIGN_NOT_FOUND", details={"campaign": key})
    return _campaign_out(c, ctx.clock.now())


member_router = Router(
    path="/v1",
    route_handlers=[get_state, check_in, make_up],
    dependencies={"member": Provide(member_principal), "work": Provide(member_work)},
    security=[{"memberToken": []}],
)
admin_router = Router(
    path="/admin/v1",
    route_handlers=[put_campaign, get_campaign],
    dependencies={"operator": Provide(operator_principal), "work": Provide(operator_work)},
    security=[{"apiKey": []}],
)
