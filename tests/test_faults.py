"""Faults under load, on real servers over loopback: a serve killed with SIGKILL, Redis keys
flushed mid-run, PostgreSQL unreachable mid-run, Redis restarted. In every case nothing a client
was told succeeded is lost, outages answer 503 DEPENDENCY_UNAVAILABLE, and the service recovers
by itself. Every loop is bounded in count and time."""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path

import httpx
import pytest

from service.app import create_app
from service.core.clock import FixedClock
from service.core.rng import seeded_rng
from tests.conftest import DEFAULT_NOW, RUN_ID, http_client, make_settings, new_tenant
from tests.faultkit import PrivateRedis, Serve, TcpProxy, free_port, listeners
from tests.test_checkins_api import CAMPAIGN
from tests.test_leaderboards import deliver, put_board
from tests.test_redis_lost import wipe_run_keys
from tests.wheel_helpers import prize, put_wheel, wheel_config, wheel_id, wins_in_db

pytestmark = pytest.mark.asyncio

_seq = itertools.count()


async def credit(c: httpx.AsyncClient, tenant, ext: str, key: str) -> httpx.Response:  # type: ignore[no-untyped-def]
    return await c.post(
        f"/admin/v1/members/{ext}/points",
        headers={**tenant.admin, "Idempotency-Key": key},
        json={"currency": "points", "amount": 7, "reason": "fault"},
    )


async def credits_in_db(ctx, tenant_id: int) -> set[str]:  # type: ignore[no-untyped-def]
    async with ctx.db.connection() as conn:
        rows = await conn.fetch(
            "SELECT idempotency_key FROM ledger_entries WHERE tenant_id = $1 AND reason = 'fault'",
            tenant_id,
        )
    # Stored as "manual:<caller>:<Idempotency-Key>".
    return {r["idempotency_key"].rsplit(":", 1)[-1] for r in rows}


def assert_outage_answer(r: httpx.Response) -> None:
    assert r.status_code == 503, r.text
    assert r.json()["error"]["code"] == "DEPENDENCY_UNAVAILABLE", r.text
    assert r.headers.get("Retry-After"), r.headers


class Credits:
    """Concurrent credit loops; remembers which keys were acknowledged (2xx)."""

    def __init__(self, c: httpx.AsyncClient, tenant, members: int = 8) -> None:  # type: ignore[no-untyped-def]
        self.c, self.tenant, self.members = c, tenant, members
        self.acked: set[str] = set()
        self.statuses: list[int] = []
        self.outage: list[httpx.Response] = []
        self.stop = asyncio.Event()

    async def loop(self, worker: int, deadline: float) -> None:
        ext = f"fault{worker % self.members}"
        while not self.stop.is_set() and time.monotonic() < deadline:
            key = f"f{RUN_ID}-{worker}-{next(_seq)}"
            try:
                r = await credit(self.c, self.tenant, ext, key)
            except httpx.HTTPError:
                await asyncio.sleep(0.05)
                continue
            self.statuses.append(r.status_code)
            if 200 <= r.status_code < 300:
                self.acked.add(key)
            elif r.status_code == 503:
                self.outage.append(r)
                await asyncio.sleep(0.05)
            else:
                raise AssertionError(f"unexpected answer {r.status_code}: {r.text}")

    async def run_while(self, fault, workers: int = 8, budget_s: float = 30) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + budget_s
        tasks = [asyncio.create_task(self.loop(w, deadline)) for w in range(workers)]
        try:
            await fault()
        finally:
            self.stop.set()
            await asyncio.gather(*tasks)


def assert_rank(rank: int, score: int, ranked: list[int]) -> None:
    """Equal scores are ordered by who reached them first: the rank lies within the tie."""
    above = sum(1 for s in ranked if s > score)
    assert above < rank <= above + ranked.count(score), (rank, score, ranked)


async def wait_for(pred, timeout_s: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = pred()
        if asyncio.iscoroutine(got):
            got = await got
        if got:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"not within {timeout_s}s: {what}")


# ---------------------------------------------------------------- serve killed with SIGKILL


async def test_serve_killed_with_sigkill_keeps_every_acknowledged_credit_and_restarts(
    servers, ctx, client, tmp_path: Path
):
    tenant = await new_tenant(ctx, client)
    port = free_port()
    env = {
        "ENGAGE_ENV": "test",
        "ENGAGE_DATABASE_URL": servers["database_url"],
        "ENGAGE_REDIS_URL": servers["redis_url"],
        "ENGAGE_REDIS_PREFIX": f"t{RUN_ID}",
        "ENGAGE_DATA_DIR": str(tmp_path / "data"),
        "ENGAGE_LOG_LEVEL": "warning",
        "ENGAGE_LOG_FORMAT": "json",
        "ENGAGE_RATE_IP_PER_MIN": "10000000",
        "ENGAGE_RATE_MEMBER_PER_MIN": "10000000",
    }
    serve = Serve(env, port, tmp_path / "serve.log")
    serve.start()
    try:
        await serve.wait_ready()
        async with httpx.AsyncClient(base_url=serve.url, timeout=10) as c:
            load = Credits(c, tenant)

            async def kill_after_some_acks() -> None:
                await wait_for(lambda: len(load.acked) >= 40, 60, "40 credits acknowledged")
                serve.kill_parent()
                await asyncio.sleep(0.5)  # requests in flight now fail or were answered

            await load.run_while(kill_after_some_acks, budget_s=70)
        assert len(load.acked) >= 40
        # Every credit a client was told succeeded is in PostgreSQL.
        assert load.acked <= await credits_in_db(ctx, tenant.id)

        # The workers die with the killed serve: nothing answers on the port any more.
        async def port_released() -> bool:
            return not listeners(port)

        await wait_for(port_released, 15, f"no listener left on {port} after SIGKILL")

        # A restart on the same folder and port serves again, with one listener.
        serve.start()
        await serve.wait_ready()
        assert len(listeners(port)) == 1, listeners(port)
        async with httpx.AsyncClient(base_url=serve.url, timeout=10) as c:
            r = await credit(c, tenant, "fault0", f"after-{RUN_ID}")
            assert r.status_code == 200, r.text
    finally:
        serve.stop()


# ---------------------------------------------------------------- Redis keys flushed mid-run


async def test_redis_flushed_mid_run_boards_calendars_and_stock_equal_postgresql(
    ctx, client, tenant
):
    await put_board(client, tenant, "fall", period="allTime")
    r = await client.put("/admin/v1/checkin-campaigns/daily", headers=tenant.admin, json=CAMPAIGN)
    assert r.status_code == 200, r.text
    await put_wheel(
        client,
        tenant,
        "fw",
        wheel_config(
            [prize("big", "physical", 50, totalStock=10), prize("thanks", "nothing", 50)],
            freeSpinsPerDay=3,
        ),
    )
    members = [f"fm{i}" for i in range(24)]
    heads = {m: (await tenant.member(m))[1] for m in members}
    answers: list[httpx.Response] = []

    async def member_run(i: int, m: str) -> None:
        answers.append(await client.post("/v1/checkins/daily", headers=heads[m]))
        for n in range(3):
            answers.append(await client.post("/v1/wheels/fw/spins", headers=heads[m]))
            answers.append(await credit(client, tenant, m, f"fl-{RUN_ID}-{m}-{n}"))
            await asyncio.sleep(0.01 * (i % 3))
        answers.append(await client.post("/v1/checkins/daily", headers=heads[m]))

    async def flusher() -> None:
        for _ in range(3):
            await asyncio.sleep(0.15)
            await wipe_run_keys(ctx)
            ctx.caches.clear()

    await asyncio.gather(flusher(), *(member_run(i, m) for i, m in enumerate(members)))
    # Flushed mid-run: nothing fails (a spin that used up the stock is a 200 with the
    # consolation; a repeated check-in replays or answers 409), nothing answers 5xx.
    assert all(a.status_code < 500 for a in answers), [
        a.text for a in answers if a.status_code >= 500
    ]
    await wipe_run_keys(ctx)  # and once more after the run: every view rebuilds on its own
    ctx.caches.clear()
    await deliver(ctx)

    async with ctx.db.connection() as conn:
        earned = {
            r["external_id"]: r["earned"]
            for r in await conn.fetch(
                "SELECT m.external_id, sum(l.delta) AS earned FROM ledger_entries l "
                "JOIN members m ON m.id = l.member_id WHERE l.tenant_id = $1 AND l.delta > 0 "
                "AND l.currency = 'points' GROUP BY m.external_id",
                tenant.id,
            )
        }
        checked = await conn.fetchval(
            "SELECT count(DISTINCT member_id) FROM checkins WHERE tenant_id = $1", tenant.id
        )
        twice = await conn.fetchval(
            "SELECT count(*) FROM (SELECT member_id, day FROM checkins WHERE tenant_id = $1 "
            "GROUP BY member_id, day HAVING count(*) > 1) d",
            tenant.id,
        )
    assert checked == len(members) and twice == 0
    # Boards equal PostgreSQL: each member's score and rank.
    ranked = sorted(earned.values(), reverse=True)
    for m in members[:6]:
        r = await client.get("/v1/leaderboards/fall", headers=heads[m], params={"limit": 50})
        assert r.status_code == 200, r.text
        me = r.json()["me"]
        assert me["score"] == earned[m]
        assert_rank(me["rank"], earned[m], ranked)
        assert [i["score"] for i in r.json()["items"]] == ranked
    # Calendars equal PostgreSQL.
    for m in members[:6]:
        r = await client.get("/v1/checkins/daily", headers=heads[m])
        assert r.status_code == 200 and r.json()["checkedInToday"] is True, r.text
    # Stock equals PostgreSQL and was never oversold.
    wid = await wheel_id(ctx, tenant.id, "fw")
    won = await wins_in_db(ctx, wid, "big")
    assert won <= 10
    r = await client.get("/admin/v1/wheels/fw", headers=tenant.admin)
    big = next(p for p in r.json()["prizes"] if p["key"] == "big")
    assert big["remaining"] == 10 - won


# ---------------------------------------------------------------- PostgreSQL unreachable


async def test_postgresql_unreachable_mid_run_answers_503_recovers_and_loses_nothing(
    servers, ctx, client
):
    from urllib.parse import urlsplit, urlunsplit

    tenant = await new_tenant(ctx, client)
    parts = urlsplit(servers["database_url"])
    proxy = TcpProxy(parts.port or 5432)
    await proxy.start()
    via_proxy = urlunsplit(
        (parts.scheme, f"{parts.username or 'postgres'}@127.0.0.1:{proxy.port}", parts.path, "", "")
    )
    app = create_app(
        make_settings(servers, database_url=via_proxy, db_timeout_s=1.0, db_pool_max=10),
        clock=FixedClock(DEFAULT_NOW),
        rng=seeded_rng(5),
        background=False,
    )
    try:
        async with http_client(app) as c:
            load = Credits(c, tenant)

            async def outage() -> None:
                await wait_for(lambda: len(load.acked) >= 20, 30, "20 acks")
                await proxy.cut()
                await wait_for(lambda: len(load.outage) >= 10, 30, "503s")
                # Readiness tells the outage too; liveness does not.
                assert (await c.get("/health/ready")).status_code == 503
                assert (await c.get("/health/live")).status_code == 200
                await proxy.restore()
                before = len(load.acked)
                await wait_for(lambda: len(load.acked) >= before + 20, 30, "recovery")

            await load.run_while(outage, budget_s=60)
            for r in load.outage:
                assert_outage_answer(r)
            assert (await c.get("/health/ready")).status_code == 200
    finally:
        await proxy.close()
    assert set(load.statuses) <= {200, 201, 503}
    assert load.acked <= await credits_in_db(ctx, tenant.id)


# ---------------------------------------------------------------- Redis restarted


async def test_redis_restarted_mid_run_answers_503_recovers_and_boards_equal_postgresql(
    servers, ctx, client, tmp_path: Path
):
    tenant = await new_tenant(ctx, client)
    redis = PrivateRedis(tmp_path)
    redis.start()
    app = create_app(
        make_settings(servers, redis_url=redis.url, redis_timeout_s=0.5),
        clock=FixedClock(DEFAULT_NOW),
        rng=seeded_rng(6),
        background=False,
    )
    try:
        async with http_client(app) as c:
            actx = app.state.ctx
            await put_board(c, tenant, "rr", period="allTime")
            _, h = await tenant.member("fault0")
            load = Credits(c, tenant)

            async def restart() -> None:
                await wait_for(lambda: len(load.acked) >= 20, 30, "20 acks")
                redis.stop()
                # A member route needs Redis (limits, views): it answers 503 during the outage.
                r = await c.get("/v1/leaderboards/rr", headers=h)
                assert_outage_answer(r)
                await asyncio.sleep(0.5)
                redis.start()  # empty: no persistence
                before = len(load.acked)
                await wait_for(lambda: len(load.acked) >= before + 20, 30, "recovery")

            await load.run_while(restart, budget_s=60)
            for r in load.outage:
                assert_outage_answer(r)
            assert set(load.statuses) <= {200, 201, 503}
            assert load.acked <= await credits_in_db(ctx, tenant.id)
            await deliver(actx)
            actx.caches.clear()
            async with ctx.db.connection() as conn:
                earned = {
                    r["external_id"]: r["earned"]
                    for r in await conn.fetch(
                        "SELECT m.external_id, sum(l.delta) AS earned FROM ledger_entries l "
                        "JOIN members m ON m.id = l.member_id WHERE l.tenant_id = $1 "
                        "AND l.delta > 0 GROUP BY m.external_id",
                        tenant.id,
                    )
                }
            r = await c.get("/v1/leaderboards/rr", headers=h)
            assert r.status_code == 200, r.text
            ranked = sorted(earned.values(), reverse=True)
            assert r.json()["me"]["score"] == earned["fault0"]
            assert_rank(r.json()["me"]["rank"], earned["fault0"], ranked)
            assert [i["score"] for i in r.json()["items"]] == ranked
    finally:
        redis.stop()
