"""Points and growth: the ledger, expiry, reversals, levels."""

from __future__ import annotations

import argparse
import json

from service.core.context import Context
from service.core.feature import Feature
from service.points import routes, service


async def expire_job(ctx: Context) -> None:
    await service.expire_due(ctx)


async def review_job(ctx: Context) -> None:
    await service.review_levels(ctx)


def _cli(sub: argparse._SubParsersAction) -> None:
    from service.runtime import run_with_context

    def expire(args: argparse.Namespace) -> int:
        n = run_with_context(service.expire_due, need_redis=False)
        print(json.dumps({"expired": n}))
        return 0

    def review(args: argparse.Namespace) -> int:
        n = run_with_context(service.review_levels, need_redis=False)
        print(json.dumps({"reviewed": n}))
        return 0

    sub.add_parser("expire", help="write due point expiries (idempotent)").set_defaults(fn=expire)
    lv = sub.add_parser("levels", help="level maintenance").add_subparsers(
        dest="sub", required=True
    )
    lv.add_parser("review", help="run due level validity reviews").set_defaults(fn=review)


FEATURE = Feature(
    name="points",
    routers=[routes.member_router, routes.admin_router],
    jobs=[(60.0, expire_job), (300.0, review_job)],
    cli=_cli,
)
