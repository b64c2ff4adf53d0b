"""Reminders: routes, the event subscriber, the scan and send jobs."""

from __future__ import annotations

from service.core.context import Context
from service.core.feature import Feature
from service.core.outbox import Dispatcher
from service.reminders import routes, service


def subscribe(dispatcher: Dispatcher) -> None:
    dispatcher.subscribe(service.SUBSCRIBER, service.on_events, types=service.EVENT_TYPES)


async def scan_job(ctx: Context) -> None:
    await service.scan(ctx)


async def send_job(ctx: Context) -> None:
    await service.send_due(ctx)


FEATURE = Feature(
    name="reminders",
    routers=[routes.member_router, routes.admin_router],
    subscribe=subscribe,
    jobs=[(60.0, scan_job), (5.0, send_job)],
)
