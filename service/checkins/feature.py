"""Daily check-ins: routes, the calendar rebuild, and the `engage bench checkins` command."""

from __future__ import annotations

import argparse

from service.checkins import routes, service
from service.core.context import Context
from service.core.feature import Feature


async def _rebuild(ctx: Context) -> dict:
    return await service.rebuild(ctx)


def _bench(group: argparse._SubParsersAction) -> None:
    from service.checkins import bench

    bench.add_command(group)


FEATURE = Feature(
    name="checkins",
    routers=[routes.member_router, routes.admin_router],
    rebuild=_rebuild,
    bench=_bench,
)
