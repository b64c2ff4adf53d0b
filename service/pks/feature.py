"""Team PKs: routes, the outbox subscriber with per-PK parking, the settlement job, rebuild."""

from __future__ import annotations

from service.core.feature import Feature
from service.core.outbox import Dispatcher
from service.pks import routes, service


def subscribe(dispatcher: Dispatcher) -> None:
    dispatcher.subscribe(service.SUBSCRIBER, service.on_events, types=service.EVENT_TYPES)
    dispatcher.on_catch_up(service.FEATURE, service.catch_up)


FEATURE = Feature(
    name="pks",
    routers=[routes.member_router, routes.admin_router],
    subscribe=subscribe,
    rebuild=service.rebuild,
    jobs=[(30.0, service.settle_due)],
)
