"""Daily check-ins: routes and the calendar rebuild."""

from __future__ import annotations

from service.checkins import routes, service
from service.core.context import Context
from service.core.feature import Feature


async def _rebuild(ctx: Context) -> dict:
    return await service.rebuild(ctx)


FEATURE = Feature(
    name="checkins",
    routers=[routes.member_router, routes.admin_router],
    rebuild=_rebuild,
)
