"""Routes of reminders: the operator's config and log; the member's subscription grants."""

from __future__ import annotations

from typing import Annotated

from litestar import Response, Router, get, post, put
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody, Parameter

from service.core.apidoc import errors
from service.core.auth import Member
from service.core.constraints import OperatorPageSize
from service.core.http import (
    RequestUnit,
    get_ctx,
    member_principal,
    member_work,
    operator_principal,
    operator_work,
)
from service.core.tenancy import Operator
from service.reminders import service
from service.reminders.schemas import (
    ReminderConfigIn,
    ReminderConfigOut,
    ReminderPage,
    SubscriptionsIn,
    SubscriptionsOut,
)


@errors(idempotent=True)
@post(
    "/me/subscriptions",
    status_code=200,
    tags=["reminders"],
    summary="Record the result of wx.requestSubscribeMessage",
    description="Send the result object as `results` (template id to `accept`, `reject`, "
    "`ban` or `filter`). Each `accept` allows one reminder with that template, as WeChat does; "
    "the answer lists what is still available. Send an `Idempotency-Key` so a retry does not "
    "count a tap twice.",
)
async def post_subscriptions(
    data: JSONBody[SubscriptionsIn],
    member: NamedDependency[Member],
    work: NamedDependency[RequestUnit],
) -> Response[SubscriptionsOut]:
    return await work.respond(service.record_grants, member.tenant_id, member.member_id, data)


@errors()
@get(
    "/me/subscriptions",
    tags=["reminders"],
    summary="The brand's reminder templates and my unused grants",
    description="`templates[].kinds` says what each template reminds of: pass these template "
    "ids to wx.requestSubscribeMessage.",
)
async def get_subscriptions(member: NamedDependency[Member], state: State) -> SubscriptionsOut:
    return await service.my_subscriptions(get_ctx(state), member.tenant_id, member.member_id)


@errors(idempotent=True)
@put(
    "/reminders/config",
    opt={"scope": "config"},
    tags=["reminders"],
    summary="Set the reminder config: sender, templates per kind, quiet hours, times",
    description="422 VALIDATION_FAILED lists every problem (unknown field keys, placeholders "
    "that are not the kind's variables, an appId not registered to this tenant, a webhook "
    "target on a private address).",
)
async def put_config(
    data: JSONBody[ReminderConfigIn],
    operator: NamedDependency[Operator],
    work: NamedDependency[RequestUnit],
) -> Response[ReminderConfigOut]:
    return await work.respond(service.put_config, operator.tenant_id, data)


@errors("REMINDERS_NOT_CONFIGURED")
@get(
    "/reminders/config",
    opt={"scope": "config"},
    tags=["reminders"],
    summary="The reminder config (404 REMINDERS_NOT_CONFIGURED before the first PUT)",
)
async def get_config(operator: NamedDependency[Operator], state: State) -> ReminderConfigOut:
    return await service.get_config(get_ctx(state), operator.tenant_id)


@errors()
@get(
    "/reminders",
    opt={"scope": "config"},
    tags=["reminders"],
    summary="Recent reminders, newest first, with their status",
)
async def list_reminders(
    operator: NamedDependency[Operator],
    state: State,
    member_id: Annotated[int | None, Parameter(query="memberId", ge=1, le=2**62)] = None,
    limit: OperatorPageSize = 50,
) -> ReminderPage:
    return await service.list_reminders(get_ctx(state), operator.tenant_id, member_id, limit)


member_router = Router(
    path="/v1",
    route_handlers=[post_subscriptions, get_subscriptions],
    dependencies={"member": Provide(member_principal), "work": Provide(member_work)},
    security=[{"memberToken": []}],
)
admin_router = Router(
    path="/admin/v1",
    route_handlers=[put_config, get_config, list_reminders],
    dependencies={"operator": Provide(operator_principal), "work": Provide(operator_work)},
    security=[{"apiKey": []}],
)
