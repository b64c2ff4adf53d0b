"""Opening a process's servers and context: the public API the CLI, jobs and tools use.

- ``Servers``: resolve the PostgreSQL and Redis URLs, starting embedded servers when unset.
- ``settings_or_exit()``: the settings from the environment, or exit 2 with the reason.
- ``connect(url)``: one asyncpg connection with the JSON codecs the pool uses.
- ``open_context(settings)``: pools, clients, caches and subscribers for one process.
- ``run_with_context(fn)``: ``fn(ctx)`` against the configured (or embedded) servers, migrated.
- ``publish_cache_change(settings, name)``: drop a cache in every serving process.
- ``now()``: the wall clock's now (tools outside a context).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import asyncpg
import httpx

from service.config import Settings, SettingsError, load_settings
from service.core.auth import TokenService
from service.core.cache import Caches
from service.core.clock import Clock, SystemClock
from service.core.context import Context
from service.core.db import Database, create_pool, init_connection
from service.core.keys import Keys
from service.core.outbox import Dispatcher
from service.core.ratelimit import RateLimiter
from service.core.redis import Scripts, create_redis
from service.core.rng import system_rng
from service.core.tenancy import ApiKeyCache
from service.members.wechat import WechatVerifier


class Servers:
    """Resolves the database and Redis URLs, starting embedded servers when they are empty
    (or using those of the live `engage serve` that owns the data folder). ``stop()`` stops
    what was started here. See service.core.ownership."""

    def __init__(self, settings: Settings, *, need_redis: bool, command: str = "") -> None:
        from service.core.ownership import open_servers

        self.settings = settings
        self._set = open_servers(
            settings, need_redis=need_redis, command=command or _command_name()
        )
        self.embedded = self._set.embedded
        self.database_url = self._set.database_url
        self.redis_url = self._set.redis_url
        self.mode = self._set.mode

    def stop(self) -> None:
        self._set.stop()
        self.embedded = None


def _command_name() -> str:
    words = [a for a in sys.argv[1:3] if not a.startswith("-")]
    return " ".join(words) or "engage"


def settings_or_exit() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        print(f"engage: {exc}", file=sys.stderr, flush=True)
        sys.exit(2)


async def connect(url: str) -> asyncpg.Connection:
    conn = await asyncpg.connect(url)
    await init_connection(conn)
    return conn


async def publish_cache_change(settings: Settings, name: str, key: Any = None) -> None:
    """Tell every serving process that the config behind cache ``name`` changed (for tools
    that change config without a context, e.g. ``engage apikey revoke``)."""
    redis = create_redis(settings)
    try:
        await Caches(redis, settings.redis_prefix).changed(name, key)
    finally:
        await redis.aclose()


def now() -> datetime:
    return SystemClock().now()


@asynccontextmanager
async def open_context(
    settings: Settings, *, clock: Clock | None = None, rng: random.Random | None = None
) -> AsyncIterator[Context]:
    """Pools, clients and subscribers for one process: used by the app and by CLI commands.

    While the block runs, the process follows other processes' config changes (the caches'
    watcher, see service.core.cache)."""
    from service.features import all_features

    the_clock = clock or SystemClock()
    features = all_features()
    pool = await create_pool(settings)
    redis = create_redis(settings)
    scripts = Scripts(redis)
    with contextlib.suppress(Exception):
        await scripts.preload(redis)
    dispatcher = Dispatcher()
    for feature in features:
        if feature.subscribe is not None:
            feature.subscribe(dispatcher)
    http_client = httpx.AsyncClient(timeout=settings.wechat_timeout_s)
    caches = Caches(redis, settings.redis_prefix)
    ctx = Context(
        settings=settings,
        db=Database(pool, settings.db_timeout_s),
        redis=redis,
        scripts=scripts,
        keys=Keys(settings.redis_prefix),
        clock=the_clock,
        rng=rng or system_rng(),
        dispatcher=dispatcher,
        limiter=RateLimiter(redis, scripts, settings.redis_prefix, the_clock),
        tokens=TokenService(
            settings.token_secret,
            settings.access_token_ttl_s,
            settings.refresh_token_ttl_s,
            the_clock,
        ),
        api_keys=ApiKeyCache(caches),
        wechat_verifier=WechatVerifier(http_client, settings.wechat_api_base),
        trusted_proxies=frozenset(
            p.strip() for p in settings.trusted_proxies.split(",") if p.strip()
        ),
        http_client=http_client,
        caches=caches,
    )
    try:
        async with caches.watching():
            for feature in features:
                if feature.on_startup is not None:
                    await feature.on_startup(ctx)
            yield ctx
    finally:
        await http_client.aclose()
        await redis.aclose()
        await pool.close()


def run_with_context(fn: Callable[[Context], Awaitable[Any]], *, need_redis: bool = True) -> Any:
    """Run ``fn(ctx)`` with a full Context (pools, clients) against the configured servers,
    starting the embedded ones when no URL is set. Feature CLI commands use this."""
    from service.core.migrate import migrate
    from service.core.ownership import StartupError, startup_errors

    try:
        settings = load_settings()
    except SettingsError as exc:
        raise StartupError(str(exc), code=2) from exc
    servers = Servers(settings, need_redis=need_redis)
    try:
        resolved = load_settings(
            database_url=servers.database_url, redis_url=servers.redis_url or "redis://unused"
        )

        async def go() -> Any:
            with startup_errors():
                await migrate(servers.database_url)
            async with open_context(resolved) as ctx:
                return await fn(ctx)

        return asyncio.run(go())
    finally:
        servers.stop()
