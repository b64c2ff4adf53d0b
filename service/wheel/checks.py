"""Pre-sale checks of the wheel: the oversell check (a CLI tool). Spins are benchmarked by
`python -m load.bench` (load/bench/)."""

from __future__ import annotations

import asyncio
import secrets
import time
from datetime import timedelta
from typing import Any

from service.core import tenancy
from service.core.context import Context
from service.core.uow import unit_of_work
from service.members import service as members
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
