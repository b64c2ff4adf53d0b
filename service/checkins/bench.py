"""`engage bench checkins`: durable check-ins per second over HTTP, next to pgbench running the
same SQL transaction against the same PostgreSQL in the same run (performance.md: >= 0.8x).

The HTTP side is wrk (64 connections) posting check-ins, each with the token of a member who has
not checked in yet, so every request is a real first check-in (a replay would be cheaper). The
reference is pgbench running the statements that transaction runs: the streak row (locked and
advanced in one upsert), the check-in row, the ledger credit (account, idempotency lookup, entry,
balance, lot), and the two outbox events. Run it against a scratch database: it creates a
tenant, a campaign and members there.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

WRK_SCRIPT = r"""
-- Each wrk thread takes every n-th token of the file, so no member checks in twice.
local tokens = {}
local counter = 0
local nextid = 0
function setup(thread)
  thread:set("tid", nextid)
  nextid = nextid + 1
end
function init(args)
  local n = tonumber(args[2])
  local i = 0
  for line in io.lines(args[1]) do
    if i % n == tid then tokens[#tokens + 1] = line end
    i = i + 1
  end
end
function request()
  counter = counter + 1
  local t = tokens[((counter - 1) % #tokens) + 1]
  return wrk.format("POST", nil, {["Authorization"] = "Bearer " .. t}, nil)
end
"""

# The check-in transaction as the service runs it for a member's first check-in (see
# service.check_in and the ledger's apply_credits), with pgbench variables for the member.
# The member ids are far above any real one and random, so each transaction is a first
# check-in like the HTTP side's.
PGBENCH_SCRIPT = """
\\set m random(10000000000, 19000000000)
BEGIN;
INSERT INTO checkin_streaks AS s (tenant_id, campaign_id, member_id, last_day, \
current_streak, longest_streak, total_days, updated_at) VALUES (:t, :c, :m, ':day', 1, 1, 1, \
now()) ON CONFLICT (tenant_id, campaign_id, member_id) DO UPDATE SET current_streak = CASE \
WHEN s.last_day = date ':day' - 1 THEN s.current_streak + 1 ELSE 1 END, longest_streak = \
GREATEST(s.longest_streak, CASE WHEN s.last_day = date ':day' - 1 THEN s.current_streak + 1 \
ELSE 1 END), total_days = s.total_days + 1, last_day = ':day', updated_at = now() \
WHERE s.last_day IS NULL OR s.last_day < ':day' \
RETURNING last_day, current_streak, longest_streak, total_days;
INSERT INTO checkins (tenant_id, campaign_id, member_id, day, kind, streak, reward_points, \
reward_growth, milestone, cost, created_at) VALUES (:t, :c, :m, ':day', 'daily', 1, 10, 0, \
NULL, 0, now()) ON CONFLICT (tenant_id, campaign_id, member_id, day) DO NOTHING RETURNING id;
INSERT INTO point_accounts (tenant_id, member_id, currency, balance, earned_total, updated_at) \
SELECT :t, m, c, 0, 0, now() FROM unnest(ARRAY[:m]::bigint[], ARRAY['points']::text[]) \
AS u(m, c) ON CONFLICT (tenant_id, member_id, currency) DO UPDATE \
SET updated_at = point_accounts.updated_at \
RETURNING member_id, currency, balance, earned_total;
SELECT idempotency_key, id, member_id, currency, kind, delta, balance_after, reason, note, \
source_ref, reverses_entry_id, shortfall, expires_at, created_at FROM ledger_entries \
WHERE tenant_id = :t AND idempotency_key = ANY(ARRAY['checkin:' || :c || ':' || ':day' || ':' \
|| :m || ':points']::text[]);
INSERT INTO ledger_entries (tenant_id, member_id, currency, kind, delta, balance_after, reason, \
note, source_ref, idempotency_key, reverses_entry_id, shortfall, expires_at, created_at) \
VALUES (:t, :m, 'points', 'credit', 10, 10, 'checkin.daily', '', 'checkin:' || :c || ':' || \
':day', 'checkin:' || :c || ':' || ':day' || ':' || :m || ':points', NULL, 0, NULL, now()) \
RETURNING id \\gset e_
UPDATE point_accounts a SET balance = a.balance + 10, earned_total = a.earned_total + 10, \
updated_at = now() WHERE a.tenant_id = :t AND a.member_id = :m AND a.currency = 'points';
INSERT INTO point_lots (tenant_id, member_id, currency, entry_id, amount, remaining, \
expires_at, created_at) VALUES (:t, :m, 'points', :e_id, 10, 10, NULL, now());
INSERT INTO outbox (txid, tenant_id, event_id, type, member_id, payload, occurred_at) \
VALUES (pg_current_xact_id()::text::bigint, :t, gen_random_uuid(), 'points.credited', :m, \
jsonb_build_object('currency', 'points', 'amount', 10, 'entryId', :e_id, 'reason', \
'checkin.daily', 'balance', 10), now());
INSERT INTO outbox (txid, tenant_id, event_id, type, member_id, payload, occurred_at) \
VALUES (pg_current_xact_id()::text::bigint, :t, gen_random_uuid(), 'checkin.done', :m, \
jsonb_build_object('campaign', 'bench', 'date', ':day', 'streak', 1), now());
COMMIT;
"""


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


async def _seed(settings: Any, members: int) -> dict[str, Any]:
    """A tenant with an API key, two live campaigns (HTTP and pgbench) and members with
    tokens. Direct SQL for the members: thousands through the API would take longer than
    the benchmark."""
    import asyncpg
    import msgspec

    from service.checkins import repository as repo
    from service.checkins import rules
    from service.checkins import service as checkins
    from service.checkins.schemas import CampaignIn, RewardIn
    from service.core import tenancy
    from service.core.auth import TokenService
    from service.core.clock import SystemClock
    from service.core.db import init_connection

    now = SystemClock().now()
    slug = "bench" + secrets.token_hex(4)
    conn = await asyncpg.connect(settings.database_url)
    await init_connection(conn)
    try:
        async with conn.transaction():
            tenant = await tenancy.create_tenant(conn, slug, slug, now)
            ids = await conn.fetch(
                "INSERT INTO members (tenant_id, external_id, nickname, avatar_url, created_at) "
                "SELECT $1, 'bench-' || g, '', '', $2 FROM generate_series(1, $3) AS g "
                "RETURNING id",
                tenant.id,
                now,
                members,
            )

            config = msgspec.to_builtins(
                CampaignIn(
                    starts_at=datetime(2020, 1, 1, tzinfo=UTC),
                    state="live",
                    base_reward=RewardIn(points=10),
                )
            )
            start = datetime(2020, 1, 1, tzinfo=UTC)
            http, ref = [
                checkins._campaign(
                    await repo.put_campaign(
                        conn, tenant.id, key, "live", "Asia/Shanghai", start, None, config, now
                    )
                )
                for key in ("bench", "pgbench")
            ]
    finally:
        await conn.close()
    tokens = TokenService(settings.token_secret, 3600, 3600, SystemClock())
    return {
        "tenant_id": tenant.id,
        "campaign_id": http.id,
        "ref_campaign_id": ref.id,
        "day": rules.local_day(now, http.tz).isoformat(),
        "tokens": [tokens.issue(tenant.id, r["id"]).access_token for r in ids],
    }


async def _count(settings: Any, campaign_id: int) -> int:
    import asyncpg

    conn = await asyncpg.connect(settings.database_url)
    try:
        return await conn.fetchval(
            "SELECT count(*) FROM checkins WHERE campaign_id = $1", campaign_id
        )
    finally:
        await conn.close()


def _wait_ready(url: str, timeout: float) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health/ready", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"server at {url} not ready after {timeout}s")


def _parse_wrk(out: str) -> dict[str, Any]:
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    p99 = re.search(r"\s99%\s+([\d.]+\w+)", out)
    return {
        "rps": float(rps.group(1)) if rps else 0.0,
        "requests": int(total.group(1)) if total else 0,
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": errors.group(1).strip() if errors else "",
        "p99": p99.group(1) if p99 else "",
    }


def run(args: argparse.Namespace) -> int:
    from service.config import load_settings

    for tool in ("wrk", "pgbench"):
        if shutil.which(tool) is None:
            _say(f"engage bench: {tool} is not installed")
            return 2
    settings = load_settings()
    if not settings.database_url or not settings.redis_url:
        _say("engage bench: set ENGAGE_DATABASE_URL (a scratch database) and ENGAGE_REDIS_URL")
        return 2
    from service.core.migrate import migrate

    asyncio.run(migrate(settings.database_url))
    expected = int(args.duration * 6000) + 1000  # more tokens than the HTTP side can use
    members = max(args.members or expected, 1000)
    seed = asyncio.run(_seed(settings, members))
    work = Path(tempfile.mkdtemp(prefix="engage-bench-"))
    (work / "tokens.txt").write_text("\n".join(seed["tokens"]) + "\n")
    (work / "checkin.lua").write_text(WRK_SCRIPT)
    (work / "checkin.sql").write_text(PGBENCH_SCRIPT)
    (work / "me.lua").write_text(WRK_SCRIPT.replace('"POST"', '"GET"'))
    server = None
    url = args.url
    try:
        if url is None:
            port = args.port
            url = f"http://127.0.0.1:{port}"
            env = {
                **os.environ,
                "ENGAGE_RATE_IP_PER_MIN": "100000000",
                "ENGAGE_RATE_MEMBER_PER_MIN": "100000",
                "ENGAGE_LOG_LEVEL": "warning",
                "ENGAGE_DB_POOL_MAX": str(args.pool),
            }
            server = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "service.cli",
                    "serve",
                    "--port",
                    str(port),
                    "--workers",
                    str(args.workers),
                ],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            _wait_ready(url, 60)
        target = f"{url}/v1/checkins/bench"
        threads = 2
        _say(f"wrk: {args.connections} connections, {args.duration}s against {target}")
        wrk = subprocess.run(
            [
                "wrk",
                f"-t{threads}",
                f"-c{args.connections}",
                f"-d{args.duration}s",
                "--latency",
                "-s",
                str(work / "checkin.lua"),
                target,
                "--",
                str(work / "tokens.txt"),
                str(threads),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        http = _parse_wrk(wrk.stdout)
        # A third figure, to tell where time goes: an authenticated read that touches no
        # table of ours (token check and rate limits, as every /v1 call), same tokens.
        floor = _parse_wrk(
            subprocess.run(
                [
                    "wrk",
                    f"-t{threads}",
                    f"-c{args.connections}",
                    f"-d{min(5, args.duration)}s",
                    "--latency",
                    "-s",
                    str(work / "me.lua"),
                    f"{url}/v1/me",
                    "--",
                    str(work / "tokens.txt"),
                    str(threads),
                ],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        _say(f"pgbench: {args.pg_clients} clients, {args.duration}s, same transaction")
        pg = subprocess.run(
            [
                "pgbench",
                "-n",
                "-c",
                str(args.pg_clients),
                "-j",
                "2",
                "-T",
                str(args.duration),
                "-D",
                f"t={seed['tenant_id']}",
                "-D",
                f"c={seed['ref_campaign_id']}",
                "-D",
                f"day={seed['day']}",
                "-f",
                str(work / "checkin.sql"),
                settings.database_url,
            ],
            capture_output=True,
            text=True,
        )
        if pg.returncode != 0:
            _say(pg.stdout + pg.stderr)
            return 1
        tps_m = re.search(r"tps = ([\d.]+)", pg.stdout)
        tps = float(tps_m.group(1)) if tps_m else 0.0
        rows = asyncio.run(_count(settings, seed["campaign_id"]))
        ok = http["requests"] - http["non2xx"]
        report = {
            "benchmark": "checkins",
            "http_checkins_per_s": round(http["rps"], 1),
            "http_requests": http["requests"],
            "http_non2xx": http["non2xx"],
            "http_p99": http["p99"],
            "http_socket_errors": http["socket_errors"],
            "rows_written": rows,
            "members_available": members,
            "http_get_me_per_s": round(floor["rps"], 1),
            "pgbench_tps": round(tps, 1),
            "ratio": round(http["rps"] / tps, 3) if tps else None,
            "target_ratio": 0.8,
            "connections": args.connections,
            "server_workers": args.workers if server else None,
            "pool_per_worker": args.pool if server else None,
            "pgbench_clients": args.pg_clients,
        }
        if ok > members:
            report["warning"] = "wrk outran the token file: some requests were replays"
        print(json.dumps(report, indent=2))
        return 0
    finally:
        if server is not None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
        shutil.rmtree(work, ignore_errors=True)


def add_command(bsub: argparse._SubParsersAction) -> None:
    """Adds `engage bench checkins` to the shared `bench` group."""
    p = bsub.add_parser(
        "checkins",
        help="check-ins/s over HTTP next to pgbench running the same transaction",
    )
    p.add_argument("--url", default=None, help="a running server; default: start one")
    p.add_argument("--port", type=int, default=8077, help="port of the server started")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--pool", type=int, default=10, help="PostgreSQL pool per worker")
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--pg-clients", type=int, default=20, help="pgbench clients")
    p.add_argument("--duration", type=int, default=10, help="seconds of each side")
    p.add_argument("--members", type=int, default=None)
    p.set_defaults(fn=run)
