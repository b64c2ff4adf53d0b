"""Wager challenges: routes and the periodic settlement of ended challenges."""

from __future__ import annotations

from service.challenges import routes, service
from service.core.context import Context
from service.core.feature import Feature


async def settle_job(ctx: Context) -> None:
    await service.settle_due(ctx)


FEATURE = Feature(
    name="challenges",
    routers=[routes.member_router, routes.admin_router],
    jobs=[(60.0, settle_job)],
)
