"""What `engage bench badges` and `engage bench pk` share: a scratch tenant with one
``order.paid`` rule, members created before timing, the timed ingestion of batches of events,
the outbox rows a subscriber then reads, member tokens minted over HTTP, the run's servers, the HTTP
phase (a member read against `/health/live`), its printed table and JSON line, and the
command-line options both take."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec

from load.bench import httpkit as benchkit


@dataclass
class Ingested:
    """A scratch tenant after the timed ingestion: ``start`` is the outbox id before it,
    ``ingest_s`` the seconds it took for ``ingested`` events."""

    tenant_id: Any
    slug: str
    now: datetime
    start: int
    ingested: int
    ingest_s: float


async def ingest_batches(
    ctx: Any, slug_prefix: str, currency: str, batches: int, batch: int, members: int
) -> Ingested:
    """Create a tenant ``<slug_prefix><hex>`` whose rule credits 1 ``currency`` per
    ``order.paid``; ingest events for ``members`` members (not timed), then time ``batches``
    batches of ``batch`` events (10.0 each, spread over the members), one unit of work each."""
    from service.core import tenancy
    from service.core.uow import unit_of_work
    from service.events import service as events
    from service.events.schemas import EventIn, RuleIn

    now = ctx.clock.now()
    async with unit_of_work(ctx) as uow:
        t = await tenancy.create_tenant(uow.conn, slug_prefix + secrets.token_hex(4), "bench", now)
        rule = msgspec.convert(
            {
                "eventType": "order.paid",
                "effect": {"kind": "credit", "currency": currency, "amount": 1},
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
    return Ingested(t.id, t.slug, now, int(start), batches * batch, ingest_s)


async def outbox_rows(ctx: Any, ing: Ingested, types: Sequence[str]) -> list[Any]:
    """The outbox rows of ``types`` the timed ingestion wrote, in order, as the columns of
    ``service.core.outbox.Event``."""
    async with ctx.db.connection() as conn:
        return list(
            await conn.fetch(
                "SELECT id, event_id, tenant_id, type, member_id, payload, occurred_at "
                "FROM outbox WHERE id > $1 AND tenant_id = $2 AND type = ANY($3::text[]) "
                "ORDER BY id",
                ing.start,
                ing.tenant_id,
                list(types),
            )
        )


async def time_subscriber(
    on_events: Callable[[Any, list[Any]], Awaitable[Any]], ctx: Any, evs: list[Any], batch: int
) -> float:
    """Seconds ``on_events`` takes over ``evs`` handed to it ``batch`` at a time."""
    t0 = time.perf_counter()
    for i in range(0, len(evs), batch):
        await on_events(ctx, evs[i : i + batch])
    return time.perf_counter() - t0


def summary(ing: Ingested, evs: list[Any], subscriber_s: float) -> dict[str, Any]:
    """The keys both commands report of the subscriber phase (rates in events/s)."""
    return {
        "tenant": ing.slug,
        "ingested": ing.ingested,
        "ingestPerSecond": ing.ingested / ing.ingest_s,
        "subscriberEvents": len(evs),
        "subscriberPerSecond": len(evs) / subscriber_s,
    }


Measure = Callable[[Any, int, int, int], Awaitable[dict[str, Any]]]


@contextlib.contextmanager
def scratch_run(
    args: argparse.Namespace, measure: Measure, *, drain: bool = False
) -> Iterator[tuple[dict[str, Any], str, dict[str, str]]]:
    """Start the run's PostgreSQL/Redis, migrate, run ``measure(ctx, batches, batch, members)``
    (then drain the dispatcher when ``drain``) and mint an admin API key of its tenant; yields
    (the measure's dict, the key, the env a server under test needs); stops the servers after."""
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

        async def phase_one() -> tuple[dict[str, Any], str]:
            await migrate(servers.database_url)
            async with open_context(resolved) as ctx:
                out = await measure(ctx, args.batches, args.batch, args.members)
                if drain:
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
        yield out, api_key, env
    finally:
        servers.stop()


def member_tokens(base: str, api_key: str, count: int) -> list[str]:
    """Access tokens of members ``m-0`` .. ``m-<count-1>``, minted through the admin API."""
    tokens = []
    for i in range(count):
        req = urllib.request.Request(
            base + f"/admin/v1/members/m-{i}/token",
            data=b"{}",
            method="POST",
            headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=30) as r:
            tokens.append(json.loads(r.read())["accessToken"])
    return tokens


def reads_vs_live(
    args: argparse.Namespace,
    out: dict[str, Any],
    api_key: str,
    env: dict[str, str],
    *,
    path: str,
    subscriber_row: tuple[str, str],
    read_row: str,
    key: str,
    warm_up: bool = False,
) -> int:
    """The HTTP phase: a server under test, ``args.tokens`` members each reading ``path``
    (after a 2 s unmeasured warm-up when ``warm_up``) against `/health/live`, both for
    ``args.seconds`` over ``args.connections``; prints the ratio table (the subscriber's rate
    against ingestion's as ``subscriber_row``, then ``read_row``) and one JSON line (``out``
    rounded, ``<key>P99ms``, ``liveP99ms``, ``<key>Errors``). Exit status 0 when no read
    failed, else 1."""
    with benchkit.server(env, workers=args.workers, port=args.port) as base:
        # Many members, so the per-member rate limit is never what is measured.
        tokens = member_tokens(base, api_key, args.tokens)
        reads = [
            benchkit.request_bytes("GET", path, {"Authorization": f"Bearer {t}"}) for t in tokens
        ]
        live_req = benchkit.request_bytes("GET", "/health/live", {})
        if warm_up:
            benchkit.http_load(base, lambda n: reads[n % len(reads)], 2.0, args.connections)
        read = benchkit.http_load(
            base, lambda n: reads[n % len(reads)], args.seconds, args.connections
        )
        live = benchkit.http_load(base, lambda _: live_req, args.seconds, args.connections)
    print(
        benchkit.report(
            [
                (
                    subscriber_row[0],
                    out["subscriberPerSecond"],
                    subscriber_row[1],
                    out["ingestPerSecond"],
                ),
                (read_row, read.rate, "GET /health/live", live.rate),
            ]
        )
    )
    print(
        json.dumps(
            {
                **{k: round(v) if isinstance(v, float) else v for k, v in out.items()},
                f"{key}P99ms": round(read.p(0.99), 1),
                "liveP99ms": round(live.p(0.99), 1),
                f"{key}Errors": read.errors,
            }
        )
    )
    return 0 if read.errors == 0 else 1


def add_arguments(b: argparse.ArgumentParser, tokens_help: str) -> None:
    """The options both commands take, with the same defaults."""
    b.add_argument("--batches", type=int, default=10, help="batches of events to time")
    b.add_argument("--batch", type=int, default=1000)
    b.add_argument("--members", type=int, default=2000)
    b.add_argument("--seconds", type=float, default=5.0, help="HTTP phase, per endpoint")
    b.add_argument("--connections", type=int, default=32)
    b.add_argument("--tokens", type=int, default=200, help=tokens_help)
    b.add_argument("--workers", type=int, default=1)
    b.add_argument("--port", type=int, default=None, help="server port (default: a free one)")
