"""Pre-sale checks of the wheel: the oversell check and the spin benchmark (CLI tools)."""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import secrets
import shutil
import subprocess
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from service.core import tenancy
from service.core.context import Context
from service.core.uow import unit_of_work
from service.members import service as members
from service.runtime import now as runtime_now
from service.wheel import repository as repo
from service.wheel import service, store
from service.wheel.schemas import PrizeIn, WheelIn


async def oversell_check(
    ctx: Context, *, spins: int = 10_000, stock: int = 100, concurrency: int = 200
) -> dict[str, Any]:
    """``spins`` distinct members spin a scratch wheel whose grand prize has ``stock``; the
    answers, PostgreSQL and Redis must all say exactly ``stock`` wins. Runs in a scratch
    tenant (slug ``oversell-check-*``) whose wheel and Redis keys are removed afterwards."""
    now = ctx.clock.now()
    slug = f"oversell-check-{secrets.token_hex(4)}"
    async with unit_of_work(ctx) as uow:
        tenant = await tenancy.create_tenant(uow.conn, slug, "oversell check (scratch)", now)
        config = WheelIn(
            name="oversell check",
            starts_at=now - timedelta(hours=1),
            ends_at=now + timedelta(days=1),
            state="live",
            free_spins_per_day=1,
            consolation_prize="thanks",
            prizes=[
                PrizeIn(key="grand", name="grand", kind="physical", weight=30, total_stock=stock),
                PrizeIn(key="thanks", name="thanks", kind="nothing", weight=70),
            ],
        )
        await service.put_wheel(uow, tenant.id, "oversell", config)
        ids = await members.resolve_many(uow, tenant.id, [f"m{i}" for i in range(spins)])
    member_ids = list(ids.values())
    t0 = time.perf_counter()
    wins = errors = 0
    first_error = None
    for start in range(0, len(member_ids), concurrency):
        batch = member_ids[start : start + concurrency]
        results = await asyncio.gather(
            *(service.spin_once(ctx, tenant.id, m, "oversell") for m in batch),
            return_exceptions=True,
        )
        for r in results:
            if isinstance(r, BaseException):
                errors += 1
                first_error = first_error or repr(r)
            elif r.prize.key == "grand":
                wins += 1
    elapsed = time.perf_counter() - t0
    async with ctx.db.connection() as conn:
        rt = await service.runtime(ctx, conn, tenant.id, "oversell", fresh=True)
        in_db = (await repo.wins_by_prize(conn, rt.id)).get("grand", 0)
        guard = {r["prize_key"]: r["issued"] for r in await repo.stock_rows(conn, rt.id)}
    counts = await store.counts(ctx, tenant.id, rt.id) or {}
    redis_left = stock - counts.get(store.total_field("grand"), 0)
    await store.drop(ctx, tenant.id, rt.id)
    result = {
        "spins": spins,
        "stock": stock,
        "concurrency": concurrency,
        "winsAnswered": wins,
        "winsInPostgres": in_db,
        "issuedGuard": guard.get("grand"),
        "stockLeftInRedis": redis_left,
        "errors": errors,
        "firstError": first_error,
        "seconds": round(elapsed, 2),
        "spinsPerSecond": round(spins / elapsed, 1),
        "scratchTenant": slug,
    }
    result["ok"] = wins == in_db == guard.get("grand") == stock and redis_left == 0 and errors == 0
    return result


# ----------------------------------------------------------------------------- benchmark

# The transaction a free spin landing on "nothing" runs (repository.lock_member, insert_draw
# with the member's advance, outbox.emit), as pgbench runs it: the reference for HTTP.
PGBENCH_SPIN = """\\set m random(:lo, :hi)
BEGIN;
INSERT INTO wheel_members (tenant_id, wheel_id, member_id, spins, spins_day, free_used_day, \
pity, wins, updated_at) VALUES (:tenant, :wheel, :m, 0, 0, 0, 0, '{}', now()) \
ON CONFLICT (wheel_id, member_id) DO UPDATE SET updated_at = wheel_members.updated_at \
RETURNING id, spins, spins_day, free_used_day \\gset
WITH adv AS (UPDATE wheel_members SET spins = :spins + 1, day = current_date, \
spins_day = :spins_day + 1, free_used_day = :free_used_day + 1, pity = 0, wins = '{}', \
updated_at = now() WHERE id = :id) \
INSERT INTO wheel_draws (spin_id, tenant_id, wheel_id, member_id, spin_no, prize_key, \
slot_index, kind, value, table_version, layout_version, word_index, random_word, \
random_value, weight_total, stock_seen, pity, fallback, free, cost, day, created_at) VALUES \
(gen_random_uuid(), :tenant, :wheel, :m, :spins + 1, 'thanks', 0, 'nothing', 0, 1, 1, 0, \
123456789, 0, 1, '{"remaining": {}, "blocked": [], "pityDue": false, "block": 0}', false, \
false, true, 0, current_date, now()) RETURNING id;
INSERT INTO outbox (txid, tenant_id, event_id, type, member_id, payload, occurred_at) VALUES \
(pg_current_xact_id()::text::bigint, :tenant, gen_random_uuid(), 'wheel.spun', :m, \
'{"wheelKey": "bench", "prizeKey": "thanks", "kind": "nothing", "free": true}', now());
END;
"""

WRK_SCRIPT = """
local tokens = {}
for line in io.lines("%s") do tokens[#tokens + 1] = line end
local i = 0
request = function()
  i = i + 1
  local t = tokens[(i %% #tokens) + 1]
  return wrk.format("POST", "/v1/wheels/%s/spins",
    {["Authorization"] = "Bearer " .. t, ["Content-Type"] = "application/json"}, "")
end
"""


def _wrk(args: list[str]) -> dict[str, Any]:
    out = subprocess.run(["wrk", *args], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    return {
        "rps": rps,
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "socketErrors": errors.group(0) if errors else None,
    }


def bench_cli(args: argparse.Namespace) -> int:
    """Spins/s through HTTP (wrk) and the same transaction through pgbench, one run."""
    import httpx

    from service.runtime import connect, settings_or_exit

    for tool in ("wrk", "pgbench"):
        if shutil.which(tool) is None:
            print(json.dumps({"error": f"{tool} is not installed"}))
            return 2
    settings = settings_or_exit()
    if not settings.database_url:
        print(json.dumps({"error": "set ENGAGE_DATABASE_URL to the served database"}))
        return 2
    base = args.url.rstrip("/")
    key = f"bench{secrets.token_hex(3)}"

    async def setup() -> tuple[str, int, int, list[tuple[int, str]]]:
        conn = await connect(settings.database_url)
        try:
            async with conn.transaction():
                t = await tenancy.create_tenant(
                    conn, f"bench-{key}", "bench (scratch)", runtime_now()
                )
                api_key, _ = await tenancy.create_api_key(
                    conn, t.id, ["admin"], "bench", runtime_now()
                )
        finally:
            await conn.close()
        now = runtime_now()
        admin = {"Authorization": f"Bearer {api_key}"}
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            r = await http.put(
                f"/admin/v1/wheels/{key}",
                headers=admin,
                json={
                    "name": "bench",
                    "startsAt": (now - timedelta(hours=1)).isoformat(),
                    "endsAt": (now + timedelta(days=1)).isoformat(),
                    "state": "live",
                    "freeSpinsPerDay": 1_000_000,
                    "consolationPrize": "thanks",
                    "prizes": [{"key": "thanks", "name": "thanks", "kind": "nothing", "weight": 1}],
                },
            )
            r.raise_for_status()
            sem = asyncio.Semaphore(32)

            async def mint(i: int) -> tuple[int, str]:
                async with sem:
                    rr = await http.post(f"/admin/v1/members/b{i}/token", headers=admin)
                    rr.raise_for_status()
                    body = rr.json()
                    return body["member"]["id"], body["accessToken"]

            tokens = await asyncio.gather(*(mint(i) for i in range(args.members)))
            wheel = (await http.get(f"/admin/v1/wheels/{key}", headers=admin)).json()
        conn = await connect(settings.database_url)
        try:
            wid = await conn.fetchval(
                "SELECT id FROM wheels WHERE tenant_id = $1 AND key = $2", t.id, key
            )
        finally:
            await conn.close()
        assert wheel["key"] == key
        return api_key, t.id, wid, tokens

    _, tenant_id, wid, tokens = asyncio.run(setup())
    ids = [m for m, _ in tokens]
    with tempfile.TemporaryDirectory() as tmp:
        tok_file = Path(tmp) / "tokens.txt"
        tok_file.write_text("\n".join(t for _, t in tokens) + "\n")
        lua = Path(tmp) / "spin.lua"
        lua.write_text(WRK_SCRIPT % (tok_file, key))
        sql = Path(tmp) / "spin.sql"
        sql.write_text(PGBENCH_SPIN)
        common = ["-t2", f"-c{args.connections}", f"-d{args.seconds}s", "--latency"]
        health = _wrk([*common, f"{base}/health/live"])
        spin = _wrk([*common, "-s", str(lua), base])
        pg = subprocess.run(
            [
                "pgbench",
                "-n",
                "-j2",
                f"-c{args.pg_clients}",
                f"-T{args.seconds}",
                "-f",
                str(sql),
                "-D",
                f"tenant={tenant_id}",
                "-D",
                f"wheel={wid}",
                "-D",
                f"lo={min(ids)}",
                "-D",
                f"hi={max(ids)}",
                settings.database_url,
            ],
            capture_output=True,
            text=True,
        )
    if pg.returncode != 0:
        print(json.dumps({"error": "pgbench failed", "stderr": pg.stderr[-2000:]}))
        return 1
    tps = float(re.search(r"tps = ([\d.]+)", pg.stdout).group(1))  # type: ignore[union-attr]
    print(
        json.dumps(
            {
                "wheel": key,
                "seconds": args.seconds,
                "connections": args.connections,
                "healthLiveRps": health["rps"],
                "spinRps": spin["rps"],
                "spinNon2xx": spin["non2xx"],
                "spinSocketErrors": spin["socketErrors"],
                "pgbenchClients": args.pg_clients,
                "pgbenchSameTransactionTps": tps,
                "ratioToPgbench": round(spin["rps"] / tps, 3),
                "ratioToHealthLive": round(spin["rps"] / health["rps"], 3),
                "target": ">= 0.8x pgbench (performance.md)",
            }
        )
    )
    return 0
