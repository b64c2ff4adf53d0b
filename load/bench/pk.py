"""`engage bench pk`: events per second through the PK subscriber (batches of 1,000 events, a
live PK of two teams) next to the ingestion rate of the same events without PKs, in the same
run and process; then `GET /v1/pks/{key}` against `/health/live` over HTTP. Run it against a
scratch database: it creates a tenant, a rule, two teams, a PK and members.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import time
import urllib.request
from datetime import timedelta

import msgspec

from load.bench import httpkit as benchkit


async def _subscriber_vs_ingestion(ctx, batches: int, batch: int, members: int) -> dict:  # type: ignore[no-untyped-def]
    from service.core import tenancy
    from service.core.outbox import Event
    from service.core.uow import unit_of_work
    from service.events import service as events
    from service.events.schemas import EventIn, RuleIn
    from service.pks import service as pks
    from service.pks.schemas import PkIn
    from service.teams import service as teams
    from service.teams.schemas import MembershipIn, TeamIn

    now = ctx.clock.now()
    async with unit_of_work(ctx) as uow:
        t = await tenancy.create_tenant(uow.conn, "pkbench-" + secrets.token_hex(4), "bench", now)
        rule = msgspec.convert(
            {
                "eventType": "order.paid",
                "effect": {"kind": "credit", "currency": "points", "amount": 1},
            },
            RuleIn,
        )
        await events.put_rule(uow, t.id, "orders", rule)
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

    half = members // 2
    async with unit_of_work(ctx) as uow:
        for key, ids in (("red", range(half)), ("blue", range(half, members))):
            await teams.put_team(uow, t.id, key, TeamIn(name=key, kind="store", team_set="stores"))
            await teams.set_members(
                uow,
                t.id,
                key,
                MembershipIn(add=[f"m-{i}" for i in ids]),
            )
    async with unit_of_work(ctx) as uow:
        await pks.put_pk(
            uow,
            t.id,
            "bench",
            PkIn(
                name="bench",
                starts_at=now - timedelta(hours=1),
                ends_at=now + timedelta(days=1),
                metric="points",
                teams=["red", "blue"],
            ),
        )
    async with ctx.db.connection() as conn:
        rows = await conn.fetch(
            "SELECT id, event_id, tenant_id, type, member_id, payload, occurred_at FROM outbox "
            "WHERE id > $1 AND tenant_id = $2 AND type = ANY($3::text[]) ORDER BY id",
            start,
            t.id,
            list(pks.EVENT_TYPES),
        )
    # The counted events happen after the memberships began (they were ingested before).
    later = ctx.clock.now() + timedelta(seconds=1)
    evs = [Event(r[0], r[1], r[2], r[3], r[4], r[5], later) for r in rows]
    t0 = time.perf_counter()
    for i in range(0, len(evs), batch):
        await pks.on_events(ctx, evs[i : i + batch])
    pk_s = time.perf_counter() - t0
    async with ctx.db.connection() as conn:
        counted = await conn.fetchval(
            "SELECT coalesce(sum(total), 0) FROM pk_team_scores s JOIN pks p ON p.id = s.pk_id "
            "WHERE p.tenant_id = $1",
            t.id,
        )
    return {
        "tenant": t.slug,
        "ingested": ingested,
        "ingestPerSecond": ingested / ingest_s,
        "subscriberEvents": len(evs),
        "subscriberPerSecond": len(evs) / pk_s,
        "pointsCounted": int(counted),
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
            reads = [
                benchkit.request_bytes("GET", "/v1/pks/bench", {"Authorization": f"Bearer {t}"})
                for t in tokens
            ]
            live_req = benchkit.request_bytes("GET", "/health/live", {})
            # Warm-up (not measured): the first read rebuilds the view, per-process caches fill.
            benchkit.http_load(base, lambda n: reads[n % len(reads)], 2.0, args.connections)
            board = benchkit.http_load(
                base, lambda n: reads[n % len(reads)], args.seconds, args.connections
            )
            live = benchkit.http_load(base, lambda _: live_req, args.seconds, args.connections)
        print(
            benchkit.report(
                [
                    (
                        "PK subscriber, 1 live PK (events/s)",
                        out["subscriberPerSecond"],
                        "ingestion, no PKs",
                        out["ingestPerSecond"],
                    ),
                    ("GET /v1/pks/{key} (req/s)", board.rate, "GET /health/live", live.rate),
                ]
            )
        )
        print(
            json.dumps(
                {
                    **{k: round(v) if isinstance(v, float) else v for k, v in out.items()},
                    "pkP99ms": round(board.p(0.99), 1),
                    "liveP99ms": round(live.p(0.99), 1),
                    "pkErrors": board.errors,
                }
            )
        )
        return 0 if board.errors == 0 else 1
    finally:
        servers.stop()


def add_parser(bench: argparse._SubParsersAction) -> None:
    b = bench.add_parser(
        "pk", help="events/s through the PK subscriber vs ingestion; GET /v1/pks vs live"
    )
    b.add_argument("--batches", type=int, default=10, help="batches of events to time")
    b.add_argument("--batch", type=int, default=1000)
    b.add_argument("--members", type=int, default=2000)
    b.add_argument("--seconds", type=float, default=5.0, help="HTTP phase, per endpoint")
    b.add_argument("--connections", type=int, default=32)
    b.add_argument("--tokens", type=int, default=200, help="members who read the board")
    b.add_argument("--workers", type=int, default=1)
    b.add_argument("--port", type=int, default=None, help="server port (default: a free one)")
    b.set_defaults(fn=run)
