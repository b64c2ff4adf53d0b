"""`engage bench ledger`: HTTP credits per second next to pgbench running the same SQL."""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import secrets

import asyncpg

from service import benchkit
from service.core import tenancy
from service.core.clock import SystemClock
from service.core.migrate import migrate
from service.runtime import Servers
from service.runtime import settings_or_exit as _settings

# The statements one HTTP credit runs (idempotency record, member lookup, account lock,
# ledger-key check, then entry + lot + balance + outbox event in one statement), as pgbench
# sees them.
PGBENCH_CREDIT = r"""
\set m random(1, :members)
\set mid :first + :m - 1
\set k random(1, 1000000000000)
BEGIN;
SELECT pg_try_advisory_xact_lock(CAST(:k AS bigint));
SELECT fingerprint, status_code, body FROM idempotency_keys WHERE tenant_id = :tenant
  AND caller = 'k:pgbench' AND key = 'pg-' || CAST(:k AS text)
  AND created_at > now() - interval '48 hours';
SELECT external_id, id FROM members WHERE tenant_id = :tenant
  AND external_id = 'bench-' || CAST(:m AS text);
INSERT INTO point_accounts (tenant_id, member_id, currency, balance, earned_total, updated_at)
  VALUES (:tenant, :mid, 'points', 0, 0, now()) ON CONFLICT (tenant_id, member_id, currency)
  DO UPDATE SET updated_at = point_accounts.updated_at RETURNING balance, earned_total;
SELECT id FROM ledger_entries WHERE tenant_id = :tenant
  AND idempotency_key = 'manual:pgbench:pg-' || CAST(:k AS text);
WITH e AS (INSERT INTO ledger_entries (tenant_id, member_id, currency, kind, delta,
  balance_after, reason, note, source_ref, idempotency_key, reverses_entry_id, shortfall,
  expires_at, created_at) VALUES (:tenant, :mid, 'points', 'credit', 10, 0, 'bench', '',
  'manual:pgbench', 'manual:pgbench:pg-' || CAST(:k AS text), NULL, 0, NULL, now())
  RETURNING id, member_id, currency, delta, balance_after, reason, expires_at),
l AS (INSERT INTO point_lots (tenant_id, member_id, currency, entry_id, amount, remaining,
  expires_at, created_at) SELECT :tenant, member_id, currency, id, delta, delta, expires_at,
  now() FROM e),
a AS (UPDATE point_accounts p SET balance = p.balance + t.d, earned_total = p.earned_total + t.d,
  updated_at = now() FROM (SELECT member_id, currency, sum(delta) AS d FROM e
  GROUP BY member_id, currency) t WHERE p.tenant_id = :tenant AND p.member_id = t.member_id
  AND p.currency = t.currency),
o AS (INSERT INTO outbox (txid, tenant_id, event_id, type, member_id, payload, occurred_at)
  SELECT pg_current_xact_id()::text::bigint, :tenant, gen_random_uuid(),
  e.currency || '.credited', e.member_id, jsonb_build_object('currency', e.currency, 'amount',
  e.delta, 'entryId', e.id, 'reason', e.reason, 'balance', e.balance_after), now() FROM e)
SELECT id FROM e;
INSERT INTO idempotency_keys (tenant_id, caller, key, fingerprint, status_code, body,
  created_at) VALUES (:tenant, 'k:pgbench', 'pg-' || CAST(:k AS text), 'x', 200, '\x7b7d', now())
  ON CONFLICT (tenant_id, caller, key) DO UPDATE SET created_at = EXCLUDED.created_at;
END;
"""


async def _prepare(db_url: str, members: int) -> tuple[int, str, int]:
    await migrate(db_url)
    conn = await asyncpg.connect(db_url)
    try:
        now = SystemClock().now()
        async with conn.transaction():
            t = await tenancy.create_tenant(conn, "bench-" + secrets.token_hex(4), "bench", now)
            key, _ = await tenancy.create_api_key(conn, t.id, ["admin"], "bench", now)
            first = await conn.fetchval(
                "INSERT INTO members (tenant_id, external_id, nickname, avatar_url, created_at) "
                "SELECT $1, 'bench-' || g, '', '', $2 FROM generate_series(1, $3) g "
                "ORDER BY g RETURNING id",
                t.id,
                now,
                members,
            )
            first = await conn.fetchval("SELECT min(id) FROM members WHERE tenant_id = $1", t.id)
        return t.id, key, first
    finally:
        await conn.close()


def run(args: argparse.Namespace) -> int:
    settings = _settings()
    servers = Servers(settings, need_redis=True)
    try:
        tenant_id, api_key, first = asyncio.run(_prepare(servers.database_url, args.members))
        env = {
            "ENGAGE_DATABASE_URL": servers.database_url,
            "ENGAGE_REDIS_URL": servers.redis_url,
            "ENGAGE_RATE_IP_PER_MIN": "100000000",
            "ENGAGE_DB_POOL_MAX": str(max(10, args.connections)),
        }
        rng = random.Random(7)
        body_tpl = json.dumps({"currency": "points", "amount": 10, "reason": "bench"}).encode()
        auth = f"Bearer {api_key}"

        def live(_: int) -> bytes:
            return benchkit.request_bytes("GET", "/health/live", {})

        def credit(n: int) -> bytes:
            m = rng.randint(1, args.members)
            return benchkit.request_bytes(
                "POST",
                f"/admin/v1/members/bench-{m}/points",
                {
                    "Authorization": auth,
                    "Content-Type": "application/json",
                    "Idempotency-Key": f"b-{n}-{secrets.token_hex(4)}",
                },
                body_tpl,
            )

        with benchkit.server(env, workers=args.workers) as base:
            benchkit.http_load(base, credit, 2, args.connections)  # warm-up
            live_res = benchkit.http_load(base, live, args.seconds, args.connections)
            credit_res = benchkit.http_load(base, credit, args.seconds, args.connections)
        tps = benchkit.pgbench(
            servers.database_url,
            PGBENCH_CREDIT,
            args.seconds,
            args.connections,
            {"tenant": str(tenant_id), "members": str(args.members), "first": str(first)},
        )
        print(
            f"ledger credits over HTTP: {args.connections} connections, {args.seconds} s each, "
            f"{args.workers} workers; statuses {credit_res.statuses}"
        )
        print(
            benchkit.report(
                [
                    (
                        "POST /admin/v1/members/{id}/points",
                        credit_res.rate,
                        "pgbench same transaction",
                        tps,
                    ),
                    ("GET /health/live", live_res.rate, "-", live_res.rate),
                ]
            )
        )
        print(
            f"credit latency p50 {credit_res.p(0.5):.1f} ms, p99 {credit_res.p(0.99):.1f} ms; "
            f"target ratio >= 0.8x (performance.md)"
        )
        return 0 if credit_res.errors == 0 else 1
    finally:
        servers.stop()


def add_bench(bench: argparse._SubParsersAction) -> None:
    b = bench.add_parser("ledger", help="HTTP point credits vs pgbench of the same transaction")
    b.add_argument("--seconds", type=int, default=10)
    b.add_argument("--connections", type=int, default=16)
    b.add_argument("--workers", type=int, default=2)
    b.add_argument("--members", type=int, default=1000)
    b.set_defaults(fn=run)
