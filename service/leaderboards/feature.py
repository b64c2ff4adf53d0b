"""Leaderboards and red/black boards: routes, the event subscriber, the close job, rebuild."""

from __future__ import annotations

from service.core.feature import Feature
from service.core.outbox import Dispatcher
from service.leaderboards import routes, rules, service


def subscribe(dispatcher: Dispatcher) -> None:
    dispatcher.subscribe(service.SUBSCRIBER, service.on_events, types=rules.EVENT_TYPES)
    dispatcher.on_catch_up(service.FEATURE, service.catch_up)


FEATURE = Feature(
    name="leaderboards",
    routers=[routes.member_router, routes.admin_router],
    subscribe=subscribe,
    rebuild=service.rebuild,
    jobs=[(60.0, service.close_due_periods)],
)
