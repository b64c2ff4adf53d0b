"""`engage bench badges`: events per second through the badge subscriber (batches of 1,000
events, 20 badge definitions live) next to the ingestion rate of the same events without
badges, in the same run and process; then `GET /v1/ceremonies/pending` against `/health/live`
over HTTP. Run it against a scratch database: it creates a tenant, rules, badges and members.
"""

from __future__ import annotations

import argparse
from typing import Any

import msgspec

from load.bench import subscriber as sub


def _definitions() -> list[tuple[str, dict[str, Any]]]:
    """20 definitions over the kinds the ingested events feed (orders, values, points)."""
    defs: list[tuple[str, dict[str, Any]]] = []
    for i, n in enumerate((1, 2, 3, 5, 8, 13, 21, 34)):
        defs.append((f"orders-{n}", {"kind": "eventCount", "eventType": "order.paid", "count": n}))
        if i < 6:
            defs.append(
                (f"spend-{n}", {"kind": "valueSum", "eventType": "order.paid", "value": 50 * n})
            )
    defs.append(("first-order", {"kind": "firstTime", "eventType": "order.paid"}))
    defs.append(("weekly-orders", {"kind": "eventCount", "eventType": "order.paid", "count": 3}))
    for n in (10, 100, 1000):
        defs.append((f"earned-{n}", {"kind": "totalEarned", "currency": "growth", "amount": n}))
    out = []
    for key, crit in defs[:20]:
        cfg: dict[str, Any] = {"name": key, "criteria": [crit]}
        if key == "weekly-orders":
            cfg["repeat"] = "weekly"
        out.append((key, cfg))
    return out


async def _subscriber_vs_ingestion(ctx: Any, batches: int, batch: int, members: int) -> dict:
    from service.badges import service as badges
    from service.badges.schemas import BadgeIn
    from service.core.outbox import Event

    # a tenant, its rule, members, then the timed ingestion (see subscriber.ingest_batches)
    ing = await sub.ingest_batches(ctx, "bbench-", "growth", batches, batch, members)
    async with ctx.db.transaction() as conn:
        for key, cfg in _definitions():
            await badges.put_definition(
                ctx, conn, ing.tenant_id, key, msgspec.convert(cfg, BadgeIn)
            )
    evs = [Event(*r) for r in await sub.outbox_rows(ctx, ing, badges.EVENT_TYPES)]
    badge_s = await sub.time_subscriber(badges.on_events, ctx, evs, batch)
    async with ctx.db.connection() as conn:
        earned = await conn.fetchval(
            "SELECT count(*) FROM member_badges WHERE tenant_id = $1", ing.tenant_id
        )
    return {**sub.summary(ing, evs, badge_s), "badgesEarned": int(earned)}


def run(args: argparse.Namespace) -> int:
    # Ceremonies of what was earned exist before the HTTP phase (drain), which then measures
    # reads alone.
    with sub.scratch_run(args, _subscriber_vs_ingestion, drain=True) as (out, api_key, env):
        return sub.reads_vs_live(
            args,
            out,
            api_key,
            env,
            path="/v1/ceremonies/pending",
            subscriber_row=("badge subscriber, 20 definitions (events/s)", "ingestion, no badges"),
            read_row="GET /v1/ceremonies/pending (req/s)",
            key="pending",
        )


def add_parser(bench: argparse._SubParsersAction) -> None:
    b = bench.add_parser(
        "badges",
        help="events/s through the badge subscriber (20 badges) vs ingestion; pending vs live",
    )
    sub.add_arguments(b, tokens_help="members whose pending list is read")
    b.set_defaults(fn=run)
