"""`engage bench events`: brand events ingested per second in batches of 1,000."""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures as cf
import json
import secrets
import time
import urllib.request

import asyncpg

from load.bench import httpkit as benchkit
from service.core import tenancy
from service.core.clock import SystemClock
from service.core.migrate import migrate
from service.runtime import Servers
from service.runtime import settings_or_exit as _settings

TARGET = 10_000  # events/s, performance.md


async def _prepare(db_url: str) -> str:
    await migrate(db_url)
    conn = await asyncpg.connect(db_url)
    try:
        now = SystemClock().now()
        async with conn.transaction():
            t = await tenancy.create_tenant(conn, "evbench-" + secrets.token_hex(4), "bench", now)
            key, _ = await tenancy.create_api_key(conn, t.id, ["admin"], "bench", now)
        return key
    finally:
        await conn.close()


def _post(base: str, key: str, path: str, body: bytes, method: str = "POST") -> dict:
    req = urllib.request.Request(
        base + path,
        data=body,
        method=method,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.loads(r.read())


def run(args: argparse.Namespace) -> int:
    settings = _settings()
    servers = Servers(settings, need_redis=True)
    try:
        key = asyncio.run(_prepare(servers.database_url))
        env = {"ENGAGE_DATABASE_URL": servers.database_url, "ENGAGE_REDIS_URL": servers.redis_url}
        run_id = secrets.token_hex(3)
        now = SystemClock().now().isoformat()

        def batch(n: int) -> bytes:
            return json.dumps(
                [
                    {
                        "eventId": f"{run_id}-{n}-{i}",
                        "externalId": f"m-{(n * 1000 + i) % args.members}",
                        "type": "order.paid",
                        "occurredAt": now,
                        "value": 10,
                    }
                    for i in range(args.batch)
                ]
            ).encode()

        with benchkit.server(env, workers=args.workers) as base:
            rule = {
                "eventType": "order.paid",
                "effect": {
                    "kind": "credit",
                    "currency": "points",
                    "mode": "per_unit",
                    "amount": 1,
                    "unit": 1,
                },
            }
            _post(base, key, "/admin/v1/rules/order-points", json.dumps(rule).encode(), "PUT")
            for n in range(max(1, args.members // args.batch)):  # members exist before timing
                _post(base, key, "/admin/v1/events", batch(10**6 + n))
            bodies = [batch(n) for n in range(args.batches)]
            t0 = time.monotonic()
            with cf.ThreadPoolExecutor(args.senders) as ex:
                results = list(ex.map(lambda b: _post(base, key, "/admin/v1/events", b), bodies))
            seconds = time.monotonic() - t0
        applied = sum(r["applied"] for r in results)
        rate = applied / seconds
        print(
            json.dumps(
                {
                    "batches": len(results),
                    "batchSize": args.batch,
                    "applied": applied,
                    "seconds": round(seconds, 2),
                    "eventsPerSecond": round(rate),
                    "target": TARGET,
                    "ratioToTarget": round(rate / TARGET, 2),
                    "senders": args.senders,
                    "workers": args.workers,
                }
            )
        )
        return 0 if applied == args.batches * args.batch else 1
    finally:
        servers.stop()


def add_bench(bench: argparse._SubParsersAction) -> None:
    b = bench.add_parser("events", help="brand events ingested per second, batches of 1,000")
    b.add_argument("--batches", type=int, default=40)
    b.add_argument("--batch", type=int, default=1000)
    b.add_argument("--senders", type=int, default=4)
    b.add_argument("--members", type=int, default=5000)
    b.add_argument("--workers", type=int, default=2)
    b.set_defaults(fn=run)
