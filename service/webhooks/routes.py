"""Operator routes of webhooks: endpoints, the delivery log, redelivery, test events."""

from __future__ import annotations

from typing import Annotated

from litestar import Response, Router, delete, get, post, put
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody, Parameter

from service.core.apidoc import errors
from service.core.constraints import Cursor, OperatorPageSize
from service.core.http import RequestUnit, get_ctx, operator_principal, operator_work
from service.core.tenancy import Operator
from service.webhooks import service
from service.webhooks.schemas import (
    DeliveryOut,
    DeliveryPage,
    Key,
    WebhookIn,
    WebhookList,
    WebhookOut,
)

DeliveryId = Annotated[int, Parameter(ge=1, le=2**62, description="A delivery's `id`.")]


@errors(idempotent=True)
@put(
    "/webhooks/{key:str}",
    opt={"scope": "config"},
    tags=["webhooks"],
    summary="Create or replace a webhook endpoint",
    description="Deliveries follow the Standard Webhooks specification (`webhook-id`, "
    "`webhook-timestamp`, `webhook-signature` headers; body `{type, timestamp, data}`). "
    "Without `secret` on creation one is generated and shown in this answer only. "
    "422 VALIDATION_FAILED: a malformed URL, a target on a private, loopback or link-local "
    "address (TARGET_NOT_PUBLIC), or an unusable secret. `enabled: true` re-enables an "
    "endpoint that was disabled after failures.",
)
async def put_webhook(
    key: Key,
    data: JSONBody[WebhookIn],
    operator: NamedDependency[Operator],
    work: NamedDependency[RequestUnit],
) -> Response[WebhookOut]:
    return await work.respond(service.put_webhook, operator.tenant_id, key, data)


@errors()
@get("/webhooks", opt={"scope": "config"}, tags=["webhooks"], summary="Webhook endpoints")
async def list_webhooks(operator: NamedDependency[Operator], state: State) -> WebhookList:
    return await service.list_webhooks(get_ctx(state), operator.tenant_id)


@errors("WEBHOOK_NOT_FOUND")
@get(
    "/webhooks/{key:str}",
    opt={"scope": "config"},
    tags=["webhooks"],
    summary="A webhook endpoint, with its health and why it was disabled",
)
async def get_webhook(key: Key, operator: NamedDependency[Operator], state: State) -> WebhookOut:
    return await service.get_webhook(get_ctx(state), operator.tenant_id, key)


@errors("WEBHOOK_NOT_FOUND")
@delete(
    "/webhooks/{key:str}",
    opt={"scope": "config"},
    tags=["webhooks"],
    summary="Remove a webhook endpoint and its delivery log",
    description="Pending deliveries are dropped. 404 WEBHOOK_NOT_FOUND.",
)
async def delete_webhook(key: Key, operator: NamedDependency[Operator], state: State) -> None:
    await service.delete_webhook(get_ctx(state), operator.tenant_id, key)


@errors("WEBHOOK_NOT_FOUND")
@get(
    "/webhooks/{key:str}/deliveries",
    opt={"scope": "config"},
    tags=["webhooks"],
    summary="The delivery log, newest first",
    description="Status (`pending`, `delivered`, `failed` once retries are given up), "
    "attempts, next attempt, last status code and error, latency of the last attempt.",
)
async def list_deliveries(
    key: Key,
    operator: NamedDependency[Operator],
    state: State,
    cursor: Cursor = None,
    limit: OperatorPageSize = 50,
) -> DeliveryPage:
    return await service.list_deliveries(get_ctx(state), operator.tenant_id, key, cursor, limit)


@errors("WEBHOOK_NOT_FOUND", "WEBHOOK_DELIVERY_NOT_FOUND", idempotent=True)
@post(
    "/webhooks/{key:str}/deliveries/{delivery_id:int}/redeliver",
    status_code=200,
    opt={"scope": "config"},
    tags=["webhooks"],
    summary="Deliver again (same webhook-id and body)",
    description="The delivery becomes pending and due now; the worker sends it. "
    "404 WEBHOOK_DELIVERY_NOT_FOUND.",
)
async def redeliver(
    key: Key,
    delivery_id: DeliveryId,
    operator: NamedDependency[Operator],
    work: NamedDependency[RequestUnit],
) -> Response[DeliveryOut]:
    return await work.respond(service.redeliver, operator.tenant_id, key, delivery_id)


@errors("WEBHOOK_NOT_FOUND")
@post(
    "/webhooks/{key:str}/test",
    status_code=200,
    opt={"scope": "config"},
    tags=["webhooks"],
    summary="Send a `webhook.test` event now and answer its outcome",
    description="Sent even to a disabled endpoint (to check a fix); not retried, and it does "
    "not count towards disabling. The answer is the delivery's log entry.",
)
async def send_test(key: Key, operator: NamedDependency[Operator], state: State) -> DeliveryOut:
    return await service.send_test(get_ctx(state), operator.tenant_id, key)


admin_router = Router(
    path="/admin/v1",
    route_handlers=[
        put_webhook,
        list_webhooks,
        get_webhook,
        delete_webhook,
        list_deliveries,
        redeliver,
        send_test,
    ],
    dependencies={"operator": Provide(operator_principal), "work": Provide(operator_work)},
    security=[{"apiKey": []}],
)
