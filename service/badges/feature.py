"""Badges and titles: routes, the outbox subscriber, the backfill job and command, bench."""

from __future__ import annotations

import argparse
import json

from service.badges import routes, service
from service.core.context import Context
from service.core.feature import Feature
from service.core.outbox import Dispatcher


def subscribe(dispatcher: Dispatcher) -> None:
    dispatcher.subscribe(service.SUBSCRIBER, service.on_events, types=service.EVENT_TYPES)
    dispatcher.on_catch_up(service.FEATURE, service.catch_up)


async def backfill_job(ctx: Context) -> None:
    await service.backfill_due(ctx)


def _cli(sub: argparse._SubParsersAction) -> None:
    from service.runtime import run_with_context

    def backfill(args: argparse.Namespace) -> int:
        async def fn(ctx: Context) -> dict:
            if args.tenant is None:
                return {"backfilled": await service.backfill_due(ctx)}
            from service.core.tenancy import get_tenant_by_slug

            async with ctx.db.connection() as conn:
                tenant = await get_tenant_by_slug(conn, args.tenant)
            if tenant is None:
                raise SystemExit(f"engage: no tenant {args.tenant}")
            out = await service.backfill(ctx, tenant.id, args.badge)
            return {"key": out.key, "events": out.events, "earned": out.earned}

        print(json.dumps(run_with_context(fn, need_redis=False)))
        return 0

    b = sub.add_parser("badges", help="badges").add_subparsers(dest="sub", required=True)
    bf = b.add_parser(
        "backfill",
        help="replay history through badges: one (--tenant SLUG --badge KEY) or every due one",
    )
    bf.add_argument("--tenant", help="tenant slug")
    bf.add_argument("--badge", help="badge key (with --tenant)")
    bf.set_defaults(fn=backfill)


FEATURE = Feature(
    name="badges",
    routers=[routes.member_router, routes.admin_router],
    subscribe=subscribe,
    rebuild=service.rebuild,
    jobs=[(30.0, backfill_job)],
    cli=_cli,
)
