"""The entry ritual, member numbers and invitations: routes and the first-order subscriber."""

from __future__ import annotations

from service.core.feature import Feature
from service.core.outbox import Dispatcher
from service.members import service as members
from service.rituals import routes, service

members.on_invite_code(service.invite_at_login)


def subscribe(dispatcher: Dispatcher) -> None:
    dispatcher.subscribe(service.SUBSCRIBER, service.on_events, types=("member.event",))


FEATURE = Feature(
    name="rituals",
    routers=[routes.member_router, routes.admin_router],
    subscribe=subscribe,
)
