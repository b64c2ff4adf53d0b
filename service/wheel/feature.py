"""The spin-the-wheel feature: routes, the stock rebuild, and the `engage wheel` commands."""

from __future__ import annotations

import argparse
import json
from typing import Any

from service.core.context import Context
from service.core.feature import Feature
from service.wheel import routes, service


def _cli(sub: argparse._SubParsersAction) -> None:
    from service.runtime import run_with_context

    def verify(args: argparse.Namespace) -> int:
        async def go(ctx: Context) -> Any:
            from service.core import tenancy

            async with ctx.db.connection() as conn:
                tenant = await tenancy.get_tenant_by_slug(conn, args.tenant)
            if tenant is None:
                return None
            return await service.verify(ctx, tenant.id, args.key)

        report = run_with_context(go)
        if report is None:
            print(json.dumps({"error": f"no tenant {args.tenant}"}))
            return 2
        print(
            json.dumps(
                {
                    "wheel": report.wheel,
                    "ok": report.ok,
                    "commitmentOk": report.commitment_ok,
                    "seedRevealed": report.revealed,
                    "draws": report.draws,
                    "mismatches": report.mismatches[:50],
                    "gaps": report.gaps[:50],
                },
                ensure_ascii=False,
            )
        )
        return 0 if report.ok else 1

    def oversell(args: argparse.Namespace) -> int:
        from service.wheel import checks

        result = run_with_context(
            lambda ctx: checks.oversell_check(
                ctx, spins=args.spins, stock=args.stock, concurrency=args.concurrency
            )
        )
        print(json.dumps(result))
        return 0 if result["ok"] else 1

    w = sub.add_parser("wheel", help="spin-the-wheel tools").add_subparsers(
        dest="sub", required=True
    )
    v = w.add_parser("verify", help="recompute every draw of a wheel from its seed")
    v.add_argument("key", help="wheel key")
    v.add_argument("--tenant", required=True, help="tenant slug")
    v.set_defaults(fn=verify)
    o = w.add_parser(
        "oversell-check",
        help="before a sale: N concurrent spins by distinct members on a scratch wheel with "
        "stock S; exactly S wins in PostgreSQL and Redis (a scratch tenant, removed after)",
    )
    o.add_argument("--spins", type=int, default=10_000)
    o.add_argument("--stock", type=int, default=100)
    o.add_argument("--concurrency", type=int, default=200)
    o.set_defaults(fn=oversell)


FEATURE = Feature(
    name="wheel",
    routers=[routes.member_router, routes.admin_router],
    rebuild=service.rebuild,
    cli=_cli,
)
