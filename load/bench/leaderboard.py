"""`engage bench leaderboard`: a 1M-member board's memory, and read rates next to /health/live.

Against a running server (``engage serve`` on the same PostgreSQL and Redis, with the rate
limits raised: ENGAGE_RATE_MEMBER_PER_MIN / ENGAGE_RATE_IP_PER_MIN). It creates a tenant, an
API key, a weekly board and 200 members through the server, loads N synthetic members straight
into the board's current-period sorted set with pipelined ZADD chunks (a Redis-only load: a
rebuild would drop them, as they have no rows in PostgreSQL), prints MEMORY USAGE per member,
then drives HTTP with wrk (or a Python driver when wrk is missing), each figure next to a bare
GET /health/live from the same run. Every phase is bounded by --duration.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from service.leaderboards import rules, store

TARGETS = {"top100+me": 0.35, "around-me": 0.25}
SYNTHETIC_BASE = 10**12  # synthetic member ids, far above real ones


def add_parser(sub: argparse._SubParsersAction) -> None:
    lb = sub.add_parser(
        "leaderboard", help="1M-member board: memory and read rates vs /health/live"
    )
    lb.add_argument("--url", default="http://127.0.0.1:8000", help="the running server")
    lb.add_argument("--members", type=int, default=1_000_000)
    lb.add_argument("--duration", type=int, default=10, help="seconds per measured run")
    lb.add_argument("--connections", type=int, default=64)
    lb.add_argument("--threads", type=int, default=2)
    lb.add_argument("--keep", action="store_true", help="keep the loaded board in Redis")
    lb.add_argument("--driver", choices=["auto", "wrk", "python"], default="auto")
    lb.set_defaults(fn=cmd_bench_leaderboard)


def cmd_bench_leaderboard(args: argparse.Namespace) -> int:
    from service.runtime import run_with_context

    return int(run_with_context(lambda ctx: _bench(ctx, args)) or 0)


async def _setup(ctx: Any, url: str) -> tuple[int, str, list[tuple[int, str]]]:
    from service.core import tenancy

    slug = f"bench{int(time.time())}"
    async with ctx.db.transaction() as conn:
        t = await tenancy.create_tenant(conn, slug, "bench", ctx.clock.now())
        api_key, _ = await tenancy.create_api_key(conn, t.id, ["admin"], "bench", ctx.clock.now())
    admin = {"Authorization": f"Bearer {api_key}"}
    async with httpx.AsyncClient(base_url=url, timeout=30) as c:
        r = await c.put(
            "/admin/v1/leaderboards/bench",
            json={"metric": "points", "period": "weekly", "title": "bench"},
            headers=admin,
        )
        r.raise_for_status()
        members: list[tuple[int, str]] = []
        for i in range(200):
            r = await c.post(
                f"/admin/v1/members/bench-{i}/token", json={"nickname": f"会员{i}"}, headers=admin
            )
            r.raise_for_status()
            members.append((r.json()["member"]["id"], r.json()["accessToken"]))
    return t.id, api_key, members


async def _load(ctx: Any, key: str, n: int, real: list[int], deadline: float) -> int:
    """Pipelined ZADD in chunks of 10,000, 10 chunks per round trip; stops at the deadline."""
    rnd = random.Random(7)
    chunk, loaded = 10_000, 0
    pipe = ctx.redis.pipeline(transaction=False)
    tick = rules.TIME_SPAN - 1
    for start in range(0, n, chunk):
        batch = {
            rules.member_bytes(SYNTHETIC_BASE + i): rules.key_to_double(
                (rnd.randint(1, 100_000) << rules.TIME_BITS) + rnd.randint(0, tick)
            )
            for i in range(start, min(n, start + chunk))
        }
        pipe.zadd(key, batch)
        loaded += len(batch)
        if len(pipe) >= 10:
            await pipe.execute()
            if time.monotonic() > deadline:
                break
    pipe.zadd(key, {store.BUILT: float("-inf")})  # the loaded set is the board as built
    for m in real:
        score = rules.key_to_double(rnd.randint(1, 100_000) << rules.TIME_BITS)
        pipe.zadd(key, {rules.member_bytes(m): score})
    await pipe.execute()
    return loaded + len(real)


_WRK_SCRIPT = """
tokens = {%s}
paths = {%s}
counter = 0
request = function()
  counter = counter + 1
  local t = tokens[(counter %% #tokens) + 1]
  local p = paths[(counter %% #paths) + 1]
  return wrk.format("GET", p, {["Authorization"] = "Bearer " .. t})
end
"""


def _wrk(
    url: str, path: str, tokens: list[str], conns: int, threads: int, duration: int
) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "s.lua"
        script.write_text(_WRK_SCRIPT % (",".join(f'"{t}"' for t in tokens) or '""', f'"{path}"'))
        out = subprocess.run(
            [
                "wrk",
                f"-t{threads}",
                f"-c{conns}",
                f"-d{duration}s",
                "--latency",
                "-s",
                str(script),
                url,
            ],
            capture_output=True,
            text=True,
            timeout=duration + 30,
            check=True,
        ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rate": rate,
        "p99_ms": float(p99.group(1)) * scale[p99.group(2)] if p99 else float("nan"),
        "errors": float(non2xx.group(1)) if non2xx else 0.0,
    }


async def _python_driver(
    url: str, path: str, tokens: list[str], conns: int, duration: int
) -> dict[str, float]:
    lat: list[float] = []
    errors = 0
    stop = time.monotonic() + duration

    async def worker(i: int) -> None:
        nonlocal errors
        async with httpx.AsyncClient(base_url=url, timeout=10) as c:
            n = i
            while time.monotonic() < stop:
                n += 1
                h = {"Authorization": f"Bearer {tokens[n % len(tokens)]}"} if tokens else {}
                t0 = time.perf_counter()
                r = await c.get(path, headers=h)
                lat.append((time.perf_counter() - t0) * 1000)
                errors += r.status_code >= 300

    await asyncio.gather(*(worker(i) for i in range(conns)))
    lat.sort()
    return {
        "rate": len(lat) / duration,
        "p99_ms": lat[int(len(lat) * 0.99)] if lat else float("nan"),
        "errors": float(errors),
    }


async def _drive(
    args: argparse.Namespace, path: str, tokens: list[str], conns: int
) -> dict[str, float]:
    use_wrk = args.driver == "wrk" or (args.driver == "auto" and shutil.which("wrk"))
    if use_wrk:
        return await asyncio.to_thread(
            _wrk, args.url, path, tokens, conns, args.threads, args.duration
        )
    return await _python_driver(args.url, path, tokens, conns, args.duration)


async def _bench(ctx: Any, args: argparse.Namespace) -> int:
    from service.leaderboards import service

    started = time.monotonic()
    tenant_id, _, members = await _setup(ctx, args.url)
    spec = await service.board_spec(ctx, tenant_id, "bench")
    period = rules.current_period(spec, ctx.clock.now())
    assert period is not None
    key = store.period_key(ctx, tenant_id, spec.source, spec.id, period.id)
    t0 = time.monotonic()
    loaded = await _load(ctx, key, args.members, [m for m, _ in members], t0 + 120)
    load_s = time.monotonic() - t0
    size = await store.count(ctx, key)
    mem = await store.memory_usage(ctx, key)
    per = mem / max(size, 1)
    print(
        json.dumps(
            {
                "loaded": loaded,
                "zcard": size,
                "loadSeconds": round(load_s, 1),
                "memoryUsageBytes": mem,
                "bytesPerMember": round(per, 1),
                "target": 120,
                "ok": per <= 120,
            }
        ),
        flush=True,
    )
    tokens = [t for _, t in members]
    driver = "wrk" if (args.driver != "python" and shutil.which("wrk")) else "python"
    paths = {
        "health": "/health/live",
        "me(ref)": "/v1/me",
        "top100+me": "/v1/leaderboards/bench?limit=100",
        "around-me": "/v1/leaderboards/bench/around-me?radius=5",
    }
    results: dict[str, dict[str, Any]] = {}
    for name, path in paths.items():
        results[name] = await _drive(
            args, path, tokens if name != "health" else [], args.connections
        )
        at16 = await _drive(args, path, tokens if name != "health" else [], 16)
        results[name]["p99_ms_at_16"] = at16["p99_ms"]
        results[name]["errors"] += at16["errors"]
    base = results["health"]["rate"]
    print(f"driver={driver} connections={args.connections} duration={args.duration}s", flush=True)
    # me(ref) is the foundation's own member route (token check, rate limits, one SQL read):
    # the floor any authenticated /v1 read starts from on this machine.
    print(f"{'endpoint':<12} {'req/s':>10} {'ratio':>7} {'target':>7} {'p99@16':>9} {'non2xx':>7}")
    for name, r in results.items():
        ratio = r["rate"] / base if base else 0.0
        target = TARGETS.get(name)
        print(
            f"{name:<12} {r['rate']:>10.0f} {ratio:>6.2f}x "
            f"{(f'{target:.2f}x' if target else '-'):>7} {r['p99_ms_at_16']:>7.1f}ms "
            f"{int(r['errors']):>7}",
            flush=True,
        )
    if not args.keep:
        await ctx.redis.delete(key)
    print(f"total {time.monotonic() - started:.0f}s", flush=True)
    return 0
