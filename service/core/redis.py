"""The Redis client and the Lua scripts, registered once at start-up from service/lua/*.lua."""

from __future__ import annotations

from pathlib import Path

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript

from service.config import Settings

LUA_DIR = Path(__file__).resolve().parent.parent / "lua"


def create_redis(settings: Settings, url: str | None = None) -> aioredis.Redis:
    """A client over a blocking pool: a burst waits for a free connection (up to the Redis
    timeout) instead of failing the moment the pool is exhausted."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url or settings.redis_url,
        max_connections=128,
        timeout=settings.redis_timeout_s,
        socket_timeout=settings.redis_timeout_s,
        socket_connect_timeout=settings.redis_timeout_s,
        health_check_interval=30,
    )
    return aioredis.Redis(connection_pool=pool)


class Scripts:
    """Every .lua file in service/lua becomes an attribute named after the file."""

    def __init__(self, client: aioredis.Redis) -> None:
        self._scripts: dict[str, AsyncScript] = {}
        for path in sorted(LUA_DIR.glob("*.lua")):
            self._scripts[path.stem] = client.register_script(path.read_text())

    def __getattr__(self, name: str) -> AsyncScript:
        try:
            return self._scripts[name]
        except KeyError:
            raise AttributeError(f"no Lua script named {name}") from None

    async def preload(self, client: aioredis.Redis) -> None:
        """Load every script so the first call is an EVALSHA hit."""
        for script in self._scripts.values():
            script.sha = await client.script_load(script.script)
