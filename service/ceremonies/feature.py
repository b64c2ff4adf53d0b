"""Ceremonies and the honour wall: routes, the outbox subscriber, rebuild of the wall cache."""

from __future__ import annotations

from service.ceremonies import routes, rules, service
from service.core.feature import Feature
from service.core.outbox import Dispatcher


def subscribe(dispatcher: Dispatcher) -> None:
    dispatcher.subscribe(service.SUBSCRIBER, service.on_events, types=rules.EVENT_TYPES)


FEATURE = Feature(
    name="ceremonies",
    routers=[routes.member_router, routes.admin_router],
    subscribe=subscribe,
    rebuild=service.rebuild,
)
