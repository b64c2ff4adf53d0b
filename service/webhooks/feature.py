"""Webhooks: operator routes, the outbox subscriber that queues deliveries, the send worker."""

from __future__ import annotations

from service.core.context import Context
from service.core.feature import Feature
from service.core.outbox import Dispatcher
from service.webhooks import routes, service


def subscribe(dispatcher: Dispatcher) -> None:
    dispatcher.subscribe(service.SUBSCRIBER, service.on_events)


async def deliver_job(ctx: Context) -> None:
    await service.deliver_due(ctx)


async def purge_job(ctx: Context) -> None:
    await service.purge_log(ctx)


FEATURE = Feature(
    name="webhooks",
    routers=[routes.admin_router],
    subscribe=subscribe,
    jobs=[(1.0, deliver_job), (3600.0, purge_job)],
)
