"""Per-member and per-IP rate limits: the `limits` library's atomic sliding-window Lua scripts.

We use `limits` (alisaifee) rather than Litestar's built-in middleware, which reads and writes the
counter in two steps and trusts X-Forwarded-For. The storage shares our redis-py connection pool.
"""

from __future__ import annotations

import math
import time

import redis.asyncio as aioredis
from limits import RateLimitItemPerMinute
from limits.aio.storage import RedisStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter

from service.core.errors import DomainError


class RateLimiter:
    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        storage = RedisStorage(
            "async+redis://localhost:6379",  # unused: the pool below is used
            implementation="redispy",
            key_prefix=f"{prefix}:rl",
            connection_pool=client.connection_pool,
        )
        self._limiter = SlidingWindowCounterRateLimiter(storage)
        self._items: dict[int, RateLimitItemPerMinute] = {}

    def _item(self, per_minute: int) -> RateLimitItemPerMinute:
        item = self._items.get(per_minute)
        if item is None:
            item = self._items[per_minute] = RateLimitItemPerMinute(per_minute)
        return item

    async def hit(self, per_minute: int, *identifiers: str) -> None:
        """Count one request; raise 429 RATE_LIMITED with Retry-After when over the limit."""
        item = self._item(per_minute)
        if await self._limiter.hit(item, *identifiers):
            return
        stats = await self._limiter.get_window_stats(item, *identifiers)
        retry = max(1, math.ceil(stats.reset_time - time.time()))
        raise DomainError(
            "RATE_LIMITED",
            details={"limit": per_minute, "window": "1m"},
            headers={"Retry-After": str(retry)},
        )
