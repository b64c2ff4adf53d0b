"""`python -m load.bench` (also `python3 dev.py bench` and `engage bench`): every row of issue
10's targets table in one run, each next to its reference measured in the same run.
`python -m load.bench badges|pk|leaderboard|events`: the feature benchmarks outside the table.

1. A scratch database (dropped after, unless --keep-db) and Redis prefix on the configured
   servers (ENGAGE_DATABASE_URL / ENGAGE_REDIS_URL; embedded ones when empty).
2. In process (the app over ASGI): the tenant, configs and members; then ONE real request per
   durable write, recorded on the real clients: its PostgreSQL / Redis round trips and the SQL
   it ran, which becomes that path's pgbench script (load/bench/capture.py, paths.py).
3. `engage serve` on a loopback port: /health/live, then each write (every request a real
   write: fresh members, new event ids) and each read with wrk (or a Python driver), each for
   --seconds over --connections keep-alive connections; /health/live again at the end (the
   reference is the mean of both).
4. pgbench of each write's recorded SQL, --pg-clients clients, --seconds each.
5. The table: printed, and written to --out as JSON and Markdown; `--readme FILE.json`
   rewrites README.md's performance table from such a file, without measuring.

Bounded: about (2 + 9) x --seconds of HTTP plus 5 x --seconds of pgbench plus setup.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import asdict
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx

from load.bench import kit, table
from load.bench.capture import pgbench_script, recording
from load.bench.paths import READS, WRITES, Setup, configs, event

DESCRIPTION = (
    "Every row of issue 10's performance targets table in one run, each next to its reference "
    "(pgbench of the same SQL, /health/live) measured in the same run; writes JSON and Markdown."
)


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m load.bench", description=DESCRIPTION)
    p.add_argument("--seconds", type=float, default=10.0, help="per measured run (HTTP, pgbench)")
    p.add_argument("--connections", type=int, default=16, help="HTTP connections (p99 at these)")
    p.add_argument("--pg-clients", type=int, default=16, help="pgbench clients")
    p.add_argument("--workers", type=int, default=2, help="`engage serve` worker processes")
    p.add_argument("--pool", type=int, default=10, help="PostgreSQL pool per worker")
    p.add_argument("--members", type=int, default=None, help="fresh members (default: enough)")
    p.add_argument("--pool-members", type=int, default=200, help="members holding points")
    p.add_argument(
        "--pgbench-pool",
        type=int,
        default=None,
        help="members for pgbench's paid spins, one each (default: 4,000 per second)",
    )
    p.add_argument("--driver", choices=["auto", "wrk", "python"], default="auto")
    p.add_argument("--out", type=Path, default=kit.REPO_ROOT / "load" / "results" / "bench")
    p.add_argument("--keep-db", action="store_true", help="keep the scratch database")
    p.add_argument(
        "--smoke", action="store_true", help="tiny run (1 s phases, 2 connections): checks it runs"
    )
    p.add_argument(
        "--readme",
        type=Path,
        default=None,
        metavar="FILE.json",
        help="only rewrite README.md's performance table from FILE.json",
    )
    args = p.parse_args(argv)
    if args.smoke:
        args.seconds, args.connections, args.pg_clients = 1.0, 2, 2
        args.workers, args.pool, args.pool_members = 1, 4, 5
        args.members = args.members or 4000  # fresh tokens for 1 s phases even on a quiet box
        args.pgbench_pool = args.pgbench_pool or 1000
    if args.pgbench_pool is None:
        args.pgbench_pool = int(args.seconds * 4000)
    return args


def _with_db(url: str, db: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + db))


@contextlib.asynccontextmanager
async def scratch_database(url: str, keep: bool) -> AsyncIterator[str]:
    name = "engage_bench_" + secrets.token_hex(4)
    admin = await asyncpg.connect(url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield _with_db(url, name)
    finally:
        if not keep:
            admin = await asyncpg.connect(url)
            try:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await admin.close()
        else:
            _say(f"kept database {name}")


@contextlib.asynccontextmanager
async def in_process(settings: Any) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    """The app in this event loop (lifespan included) and its context; no background work."""
    from service.app import create_app

    app = create_app(settings, background=False)
    started, stop = asyncio.Event(), asyncio.Event()

    async def lifespan() -> None:
        async with app.lifespan():
            started.set()
            await stop.wait()

    task = asyncio.create_task(lifespan())
    waiter = asyncio.create_task(started.wait())
    await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        task.result()
    try:
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(
            transport=transport, base_url="http://bench", timeout=60
        ) as client:
            yield client, app.state.ctx
    finally:
        stop.set()
        await task


async def setup_and_record(settings: Any, args: argparse.Namespace) -> tuple[Setup, dict]:
    """Tenant, configs, members and tokens; then one recorded request per durable write."""
    from service.core import tenancy

    async with in_process(settings) as (client, ctx):
        now = ctx.clock.now()
        async with ctx.db.transaction() as conn:
            t = await tenancy.create_tenant(conn, "bench" + secrets.token_hex(3), "bench", now)
            key, _ = await tenancy.create_api_key(conn, t.id, ["admin"], "bench", now)
            rows = await conn.fetch(
                "INSERT INTO members (tenant_id, external_id, nickname, avatar_url, created_at) "
                "SELECT $1, 'b' || g, '', '', $2 FROM generate_series(1, $3) AS g "
                "ORDER BY g RETURNING id",
                t.id,
                now,
                args.members,
            )
        ids = [r["id"] for r in rows]
        if ids[-1] - ids[0] != len(ids) - 1:
            raise RuntimeError("the members' ids are not contiguous")
        tokens = [ctx.tokens.issue(t.id, m).access_token for m in ids]
        s = Setup(
            t.id,
            key,
            args.members,
            fresh_tokens=tokens[args.pool_members :],
            pool_tokens=tokens[: args.pool_members],
            now=now,
            pool_ids=(ids[0], ids[args.pool_members - 1]),
        )
        for method, path, body in configs(s):
            r = await client.request(method, path, headers=s.admin, json=body)
            if r.status_code != 200:
                raise RuntimeError(f"{method} {path}: {r.status_code} {r.text}")
        for i in range(1, args.pool_members + 1):  # points for paid spins
            r = await client.post(
                f"/admin/v1/members/b{i}/points",
                headers=s.admin,
                json={"amount": 1_000_000, "currency": "points", "reason": "bench"},
            )
            r.raise_for_status()
        half = args.pool_members // 2
        for team, members in (("red", range(1, half + 1)), ("blue", range(half + 1, 2 * half + 1))):
            r = await client.put(
                f"/admin/v1/teams/{team}",
                headers=s.admin,
                json={"name": team, "kind": "store", "teamSet": "benchstores"},
            )
            r.raise_for_status()
            r = await client.post(
                f"/admin/v1/teams/{team}/members",
                headers=s.admin,
                json={"add": [f"b{i}" for i in members]},
            )
            r.raise_for_status()
        r = await client.put(
            "/admin/v1/pks/bench",
            headers=s.admin,
            json={
                "name": "bench",
                "startsAt": "2020-01-01T00:00:00+00:00",
                "endsAt": "2100-01-01T00:00:00+00:00",
                "metric": "points",
                "teams": ["red", "blue"],
            },
        )
        r.raise_for_status()

        # pgbench's paid spins: members who never spun, holding one point each (one lot),
        # credited through brand events (the rule credits 1 point an event).
        async with ctx.db.transaction() as conn:
            rows = await conn.fetch(
                "INSERT INTO members (tenant_id, external_id, nickname, avatar_url, created_at) "
                "SELECT $1, 'p' || g, '', '', $2 FROM generate_series(1, $3) AS g "
                "ORDER BY g RETURNING id",
                t.id,
                now,
                args.pgbench_pool,
            )
        s.pgbench_pool = (rows[0]["id"], rows[-1]["id"])
        if s.pgbench_pool[1] - s.pgbench_pool[0] != len(rows) - 1:
            raise RuntimeError("the pgbench pool's ids are not contiguous")
        for start in range(1, args.pgbench_pool + 1, 1000):
            batch = [
                event(s, f"pool-{g}", f"p{g}")
                for g in range(start, min(args.pgbench_pool, start + 999) + 1)
            ]
            r = await client.post("/admin/v1/events", headers=s.admin, json=batch)
            if r.status_code != 200:
                raise RuntimeError(f"pgbench pool: {r.status_code} {r.text[:500]}")

        recorded: dict[str, Any] = {}
        async with ctx.db.connection() as conn:
            for path in WRITES:
                for warm_up in (True, False):  # the first fills caches, prepares statements
                    fresh, send = await path.one(client, s)
                    with recording() as rec:
                        r = await send()
                    if r.status_code != 200:
                        raise RuntimeError(f"{path.name}: {r.status_code} {r.text}")
                    if warm_up:
                        continue
                chosen = path.reference(rec.pg)
                recorded[path.name] = {
                    "pg": len(rec.pg),
                    "redis": len(rec.redis),
                    "statements": [
                        f"{st.source}: {' '.join(st.sql.split())[:60]}" for st in rec.pg
                    ],
                    "redisCalls": rec.redis,
                    "script": await pgbench_script(conn, chosen, fresh),
                }
    return s, recorded


async def _entries(url: str, tenant_id: int) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM ledger_entries WHERE tenant_id = $1", tenant_id
            )
        )
    finally:
        await conn.close()


async def _forget_redis(url: str, prefix: str) -> None:
    """Delete this run's keys (its own random prefix) from the shared Redis."""
    from service.config import load_settings
    from service.core.redis import create_redis

    redis = create_redis(load_settings(redis_url=url, redis_prefix=prefix))
    try:
        async for key in redis.scan_iter(match=f"{prefix}*", count=1000):
            await redis.delete(key)
    finally:
        await redis.aclose()


def measure(
    args: argparse.Namespace, env: dict[str, str], db_url: str, s: Setup, recorded: dict
) -> dict[str, Any]:
    """The HTTP phases against `engage serve`, then pgbench of each write's recorded SQL."""
    live = kit.Request("GET", "/health/live")
    writes: dict[str, Any] = {}
    reads: dict[str, Any] = {}
    with kit.server(env, args.workers) as base:
        for path in [] if args.smoke else WRITES:  # warm-up: caches, prepared statements
            res = kit.http_load(base, path.load(s), 1.0, args.connections, args.driver)
            if path.fresh_group:
                s.consume(path.fresh_group, res.consumed)
        _say(f"/health/live, {args.connections} connections, {args.seconds:g} s")
        before = kit.http_load(base, live, args.seconds, args.connections, args.driver)
        for path in WRITES:
            _say(f"{path.name}: HTTP")
            n0 = asyncio.run(_entries(db_url, s.tenant_id))
            res = kit.http_load(base, path.load(s), args.seconds, args.connections, args.driver)
            if path.fresh_group:
                s.consume(path.fresh_group, res.consumed)
            written = (asyncio.run(_entries(db_url, s.tenant_id)) - n0) // path.entries
            writes[path.name] = {"http": res, "written": written}
            if written < res.ok:
                _say(f"  {path.name}: {res.ok} answered 2xx but {written} writes found")
        for read in READS:
            _say(f"{read.name}: HTTP")
            res = kit.http_load(base, read.load(s), args.seconds, args.connections, args.driver)
            reads[read.name] = {"http": res, "target": read.target, "targetNote": read.target_note}
        after = kit.http_load(base, live, args.seconds, args.connections, args.driver)
    for path in WRITES:
        _say(f"{path.name}: pgbench")
        try:
            tps = kit.pgbench(db_url, recorded[path.name]["script"], args.seconds, args.pg_clients)
        except RuntimeError as exc:  # reported in the table (MISS) and the JSON
            _say(f"  {exc}")
            tps, writes[path.name]["pgbenchError"] = 0.0, str(exc)[-600:]
        writes[path.name]["pgbenchTps"] = tps
    for name, w in writes.items():
        w.update({k: recorded[name][k] for k in ("pg", "redis", "statements", "redisCalls")})
        w["pgbenchScript"] = recorded[name]["script"]
    for group in (writes, reads):
        for m in group.values():
            m["http"] = {k: v for k, v in asdict(m["http"]).items() if k != "latencies"}
    return {
        "live": {
            "rate": (before.rate + after.rate) / 2,
            "before": before.rate,
            "after": after.rate,
            "p99_ms": max(before.p99_ms, after.p99_ms),
        },
        "writes": writes,
        "reads": reads,
        "driver": before.driver,
    }


def run(args: argparse.Namespace) -> int:
    from service.config import load_settings
    from service.core.migrate import migrate
    from service.runtime import Servers

    started = time.monotonic()
    settings = load_settings()
    servers = Servers(settings, need_redis=True, command="bench")
    try:
        if args.members is None:  # enough fresh members for a warm-up + a phase at 6,000/s
            args.members = args.pool_members + int((args.seconds + 1) * 6000) + 1000
        prefix = "bench" + secrets.token_hex(4)

        async def prepare(db_url: str) -> tuple[Setup, dict]:
            await migrate(db_url)
            resolved = load_settings(
                database_url=db_url,
                redis_url=servers.redis_url,
                redis_prefix=prefix,
                rate_ip_per_min=100_000_000,
                rate_member_per_min=100_000,
                log_level="warning",
            )
            return await setup_and_record(resolved, args)

        async def with_db() -> None:
            async with scratch_database(servers.database_url, args.keep_db) as db_url:
                _say(f"scratch database {urlsplit(db_url).path[1:]}, redis prefix {prefix}")
                s, recorded = await prepare(db_url)
                env = {
                    "ENGAGE_DATABASE_URL": db_url,
                    "ENGAGE_REDIS_URL": servers.redis_url,
                    "ENGAGE_REDIS_PREFIX": prefix,
                    "ENGAGE_RATE_IP_PER_MIN": "100000000",
                    "ENGAGE_RATE_MEMBER_PER_MIN": "100000",
                    "ENGAGE_DB_POOL_MAX": str(args.pool),
                    # The server under test owns a folder of its own: the bench's (embedded
                    # servers' or the default) folder is held by this process.
                    "ENGAGE_DATA_DIR": tempfile.mkdtemp(prefix="engage-bench-serve-"),
                }
                try:
                    measured = await asyncio.to_thread(measure, args, env, db_url, s, recorded)
                finally:
                    await _forget_redis(servers.redis_url, prefix)
                results.update(measured)

        results: dict[str, Any] = {}
        asyncio.run(with_db())
        results["run"] = {
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "seconds": args.seconds,
            "connections": args.connections,
            "pgClients": args.pg_clients,
            "workers": args.workers,
            "driver": results.pop("driver"),
            "note": "smoke run, numbers meaningless" if args.smoke else "read ratios, not rates",
            "totalSeconds": round(time.monotonic() - started),
        }
        rows = table.rows(results)
        print(table.text(rows), flush=True)
        j, m = table.write(args.out, results, rows)
        if args.smoke:
            _say(f"wrote {j} and {m}. SMOKE RUN: it only checks that every row runs; its")
            _say("numbers mean nothing (1 s phases, 2 connections) and must not go in the README.")
        else:
            _say(f"wrote {j} and {m}; README: python -m load.bench --readme {j}")
        return 0
    finally:
        servers.stop()


OTHERS = ("badges", "pk", "leaderboard", "events")


def others(argv: list[str]) -> int:
    """The feature benchmarks outside the targets table (subscribers vs ingestion, a 1M-member
    board's memory, event batches): `python -m load.bench <name> --help`."""
    from load.bench import badges, events_batch, leaderboard, pk

    p = argparse.ArgumentParser(prog="python -m load.bench")
    sub = p.add_subparsers(dest="bench", required=True)
    badges.add_parser(sub)
    pk.add_parser(sub)
    leaderboard.add_parser(sub)
    events_batch.add_bench(sub)
    args = p.parse_args(argv)
    return int(args.fn(args) or 0)


def main(argv: list[str] | None = None) -> int:
    raw = sys.argv[1:] if argv is None else argv
    if raw[:1] and raw[0] in OTHERS:
        return others(raw)
    args = parse(raw)
    if args.readme is not None:
        table.update_readme(kit.REPO_ROOT / "README.md", args.readme)
        _say(f"README.md performance table rewritten from {args.readme}")
        return 0
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
