"""Several app processes: two `engage serve` processes on one PostgreSQL and Redis, requests
alternating between them. The races still give exactly the stock, one grant per key and one
check-in per day; a config change made through one is seen by the other; exactly one outbox
dispatcher leads."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from service.core.outbox import DISPATCH_LOCK
from tests.conftest import RUN_ID, new_tenant
from tests.faultkit import Serve, free_port
from tests.test_checkins_api import CAMPAIGN
from tests.wheel_helpers import prize, wheel_config, wheel_id, wins_in_db

pytestmark = pytest.mark.asyncio


@pytest.fixture
async def two_servers(servers, tmp_path: Path):  # type: ignore[no-untyped-def]
    env = {
        "ENGAGE_ENV": "test",
        "ENGAGE_DATABASE_URL": servers["database_url"],
        "ENGAGE_REDIS_URL": servers["redis_url"],
        "ENGAGE_REDIS_PREFIX": f"t{RUN_ID}",
        "ENGAGE_DEV_LOGIN": "true",
        "ENGAGE_LOG_LEVEL": "warning",
        "ENGAGE_LOG_FORMAT": "json",
        "ENGAGE_RATE_IP_PER_MIN": "10000000",
        "ENGAGE_RATE_MEMBER_PER_MIN": "10000000",
        "ENGAGE_OUTBOX_POLL_S": "0.2",
    }
    pair = [
        Serve(
            {**env, "ENGAGE_DATA_DIR": str(tmp_path / f"d{i}")}, free_port(), tmp_path / f"{i}.log"
        )
        for i in range(2)
    ]
    for s in pair:
        s.start()
    try:
        await asyncio.gather(*(s.wait_ready() for s in pair))
        async with (
            httpx.AsyncClient(base_url=pair[0].url, timeout=30) as a,
            httpx.AsyncClient(base_url=pair[1].url, timeout=30) as b,
        ):
            yield a, b
    finally:
        for s in pair:
            s.stop()


async def dispatcher_leaders(ctx) -> int:  # type: ignore[no-untyped-def]
    """Sessions holding the outbox dispatcher's advisory lock in this database."""
    async with ctx.db.connection() as conn:
        return await conn.fetchval(  # type: ignore[no-any-return]
            "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
            "WHERE d.datname = current_database() AND l.locktype = 'advisory' AND l.granted "
            "AND ((l.classid::bigint << 32) | l.objid::bigint) = $1",
            DISPATCH_LOCK,
        )


async def test_two_servers_alternating_keep_races_exact_and_one_dispatcher_leads(
    two_servers, ctx, client
):
    a, b = two_servers
    pick = [a, b]
    tenant = await new_tenant(ctx, client)

    # Exactly one dispatcher leads (each serve runs one and competes for the lock).
    for _ in range(50):
        if await dispatcher_leaders(ctx) == 1:
            break
        await asyncio.sleep(0.2)
    assert await dispatcher_leaders(ctx) == 1

    # Stock: 5 phones, 60 members spinning, alternating servers.
    cfg = wheel_config(
        [prize("phone", "physical", 1000, totalStock=5), prize("thanks", "nothing", 1)]
    )
    r = await a.put("/admin/v1/wheels/duo", headers=tenant.admin, json=cfg)
    assert r.status_code == 200, r.text
    heads = []
    for i in range(60):
        r = await pick[i % 2].post(
            "/v1/auth/wechat", json={"appId": tenant.app_id, "code": f"dev:duo{i}"}
        )
        assert r.status_code == 200, r.text
        heads.append({"Authorization": f"Bearer {r.json()['accessToken']}"})
    spins = await asyncio.gather(
        *(pick[i % 2].post("/v1/wheels/duo/spins", headers=h) for i, h in enumerate(heads))
    )
    assert all(s.status_code == 200 for s in spins), [s.text for s in spins if s.status_code != 200]
    won = [s for s in spins if s.json()["prize"]["key"] == "phone"]
    assert len(won) == 5
    assert await wins_in_db(ctx, await wheel_id(ctx, tenant.id, "duo"), "phone") == 5

    # Double grant: one Idempotency-Key fired 40 times at both servers credits once.
    grants = await asyncio.gather(
        *(
            pick[i % 2].post(
                "/admin/v1/members/duo-grant/points",
                headers={**tenant.admin, "Idempotency-Key": f"grant-{RUN_ID}"},
                json={"currency": "points", "amount": 50, "reason": "duo"},
            )
            for i in range(40)
        )
    )
    assert {g.status_code for g in grants} <= {200, 409}, [g.text for g in grants]
    async with ctx.db.connection() as conn:
        entries = await conn.fetchval(
            "SELECT count(*) FROM ledger_entries WHERE tenant_id = $1 AND reason = 'duo'",
            tenant.id,
        )
    assert entries == 1

    # Check-in: one member tapping 30 times on both servers checks in once.
    r = await b.put("/admin/v1/checkin-campaigns/daily", headers=tenant.admin, json=CAMPAIGN)
    assert r.status_code == 200, r.text
    taps = await asyncio.gather(
        *(pick[i % 2].post("/v1/checkins/daily", headers=heads[0]) for i in range(30))
    )
    assert {t.status_code for t in taps} <= {200, 409}, [t.text for t in taps]
    async with ctx.db.connection() as conn:
        rows = await conn.fetchval("SELECT count(*) FROM checkins WHERE tenant_id = $1", tenant.id)
    assert rows == 1

    # A config change made through one server is seen by the other within a second.
    r = await a.put(
        "/admin/v1/checkin-campaigns/daily",
        headers=tenant.admin,
        json={**CAMPAIGN, "title": "双十一签到"},
    )
    assert r.status_code == 200, r.text
    seen, deadline = None, time.monotonic() + 1.5  # the 1 s cache TTL plus the request itself
    while time.monotonic() < deadline:
        page = await b.get("/v1/checkins/daily", headers=heads[1])
        assert page.status_code == 200, page.text
        seen = page.json().get("title") or page.json().get("campaign", {}).get("title")
        if seen == "双十一签到":
            break
        await asyncio.sleep(0.1)
    assert seen == "双十一签到"
