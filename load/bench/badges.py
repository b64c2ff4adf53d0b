"""`engage bench badges`: events per second through the badge subscriber (batches of 1,000
events, 20 badge definitions live) next to the ingestion rate of the same events without
badges, in the same run and process; then `GET /v1/ceremonies/pending` against `/health/live`
over HTTP. Run it against a scratch database: it creates a tenant, rules, badges and members.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import time
import urllib.request
from typing import Any

import msgspec

from load.bench import httpkit as benchkit
from service.core.uow import UnitOfWork, unit_of_work


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
    from service.core import tenancy
    from service.core.outbox import Event
    from service.events import service as events
    from service.events.schemas import EventIn, RuleIn

    now = ctx.clock.now()
    async with ctx.db.transaction() as conn:
        t = await tenancy.create_tenant(conn, "bbench-" + secrets.token_hex(4), "bench", now)
        rule = msgspec.convert(
            {
                "eventType": "order.paid",
                "effect": {"kind": "credit", "currency": "growth", "amount": 1},
            },
            RuleIn,
        )
        await events.put_rule(UnitOfWork(ctx, conn), t.id, "orders", rule)
    run = secrets.token_hex(3)

    def make(n: int) -> list[EventIn]:
        return [
            EventIn(
                event_id=f"{run}-{n}-{i}",
                external_id=f"m-{(n * batch + i) % members}",
                type="order.paid",
                occurred_at=now,
                value=10.0,
            )
            for i in range(batch)
        ]

    # Members exist before timing (their creation is not what is measured).
    for n in range(max(1, members // batch)):
        async with unit_of_work(ctx) as uow:
            await events.ingest(uow, t.id, make(10**6 + n))
    async with ctx.db.connection() as conn:
        start = await conn.fetchval("SELECT coalesce(max(id), 0) FROM outbox")
    t0 = time.perf_counter()
    for n in range(batches):
        async with unit_of_work(ctx) as uow:
            await events.ingest(uow, t.id, make(n))
    ingest_s = time.perf_counter() - t0
    ingested = batches * batch

    async with ctx.db.transaction() as conn:
        for key, cfg in _definitions():
            await badges.put_definition(ctx, conn, t.id, key, msgspec.convert(cfg, BadgeIn))
    async with ctx.db.connection() as conn:
        rows = await conn.fetch(
            "SELECT id, event_id, tenant_id, type, member_id, payload, occurred_at FROM outbox "
            "WHERE id > $1 AND tenant_id = $2 AND type = ANY($3::text[]) ORDER BY id",
            start,
            t.id,
            list(badges.EVENT_TYPES),
        )
    evs = [Event(*r) for r in rows]
    t0 = time.perf_counter()
    for i in range(0, len(evs), batch):
        await badges.on_events(ctx, evs[i : i + batch])
    badge_s = time.perf_counter() - t0
    async with ctx.db.connection() as conn:
        earned = await conn.fetchval(
            "SELECT count(*) FROM member_badges WHERE tenant_id = $1", t.id
        )
    return {
        "tenant": t.slug,
        "ingested": ingested,
        "ingestPerSecond": ingested / ingest_s,
        "subscriberEvents": len(evs),
        "subscriberPerSecond": len(evs) / badge_s,
        "badgesEarned": int(earned),
    }


def run(args: argparse.Namespace) -> int:
    from service.app import open_context
    from service.config import load_settings
    from service.core import tenancy
    from service.core.migrate import migrate
    from service.runtime import Servers
    from service.runtime import settings_or_exit as _settings

    settings = _settings()
    servers = Servers(settings, need_redis=True)
    try:
        resolved = load_settings(database_url=servers.database_url, redis_url=servers.redis_url)

        async def phase_one() -> tuple[dict, str]:
            await migrate(servers.database_url)
            async with open_context(resolved) as ctx:
                out = await _subscriber_vs_ingestion(ctx, args.batches, args.batch, args.members)
                # Ceremonies of what was earned exist before the HTTP phase, which then
                # measures reads alone.
                await ctx.dispatcher.drain(ctx)
                async with ctx.db.transaction() as conn:
                    t = await tenancy.get_tenant_by_slug(conn, out["tenant"])
                    assert t is not None
                    key, _ = await tenancy.create_api_key(
                        conn, t.id, ["admin"], "bench", ctx.clock.now()
                    )
                return out, key

        out, api_key = asyncio.run(phase_one())
        env = {"ENGAGE_DATABASE_URL": servers.database_url, "ENGAGE_REDIS_URL": servers.redis_url}
        with benchkit.server(env, workers=args.workers, port=args.port) as base:
            # Many members, so the per-member rate limit is never what is measured.
            tokens = []
            for i in range(args.tokens):
                req = urllib.request.Request(
                    base + f"/admin/v1/members/m-{i}/token",
                    data=b"{}",
                    method="POST",
                    headers={
                        "Authorization": f"Bearer {api_key}",
                        "Content-Type": "application/json",
                    },
                )
                with urllib.request.urlopen(req, timeout=30) as r:
                    tokens.append(json.loads(r.read())["accessToken"])
            pending_reqs = [
                benchkit.request_bytes(
                    "GET", "/v1/ceremonies/pending", {"Authorization": f"Bearer {t}"}
                )
                for t in tokens
            ]
            live_req = benchkit.request_bytes("GET", "/health/live", {})
            pending = benchkit.http_load(
                base, lambda n: pending_reqs[n % len(pending_reqs)], args.seconds, args.connections
            )
            live = benchkit.http_load(base, lambda _: live_req, args.seconds, args.connections)
        print(
            benchkit.report(
                [
                    (
                        "badge subscriber, 20 definitions (events/s)",
                        out["subscriberPerSecond"],
                        "ingestion, no badges",
                        out["ingestPerSecond"],
                    ),
                    (
                        "GET /v1/ceremonies/pending (req/s)",
                        pending.rate,
                        "GET /health/live",
                        live.rate,
                    ),
                ]
            )
        )
        print(
            json.dumps(
                {
                    **{k: round(v) if isinstance(v, float) else v for k, v in out.items()},
                    "pendingP99ms": round(pending.p(0.99), 1),
                    "liveP99ms": round(live.p(0.99), 1),
                    "pendingErrors": pending.errors,
                }
            )
        )
        return 0 if pending.errors == 0 else 1
    finally:
        servers.stop()


def add_parser(bench: argparse._SubParsersAction) -> None:
    b = bench.add_parser(
        "badges",
        help="events/s through the badge subscriber (20 badges) vs ingestion; pending vs live",
    )
    b.add_argument("--batches", type=int, default=10, help="batches of events to time")
    b.add_argument("--batch", type=int, default=1000)
    b.add_argument("--members", type=int, default=2000)
    b.add_argument("--seconds", type=float, default=5.0, help="HTTP phase, per endpoint")
    b.add_argument("--connections", type=int, default=32)
    b.add_argument("--tokens", type=int, default=200, help="members whose pending list is read")
    b.add_argument("--workers", type=int, default=1)
    b.add_argument("--port", type=int, default=None, help="server port (default: a free one)")
    b.set_defaults(fn=run)
