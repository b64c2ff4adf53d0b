"""Per-member and per-IP rate limits: atomic sliding-window counters in one Redis round trip.

We started with the `limits` library (alisaifee); it is correct, but each limit is its own
round trip, and every client API call checks two (IP and member). The algorithm is the same
sliding-window counter `limits` uses, in service/lua/ratelimit.lua, and a member request checks
its IP and member limits in one script call: one round trip. To keep both counters on one
Redis Cluster slot, a member's IP limit is counted per tenant (the tenant is the hash tag);
requests without a valid token are limited per IP across tenants. Litestar's built-in
middleware is not used: it reads and writes the counter in two steps and trusts
X-Forwarded-For.

Windows follow the wall clock (time.time), not the injected clock: a limit protects the
service in real time, it is no business rule.
"""

from __future__ import annotations

import math
import time

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError

from service.core.errors import DomainError
from service.core.redis import Scripts

WINDOW_MS = 60_000


class RateLimiter:
    def __init__(self, client: aioredis.Redis, scripts: Scripts, prefix: str) -> None:
        self.client = client
        self.script = scripts.ratelimit
        self.prefix = prefix

    async def check(self, tag: str, *limits: tuple[int, str]) -> None:
        """Count one request against each (per-minute limit, name) under one hash tag, in one
        round trip; raise 429 RATE_LIMITED (nothing counted) if any limit is exceeded."""
        now_ms = int(time.time() * 1000)
        window, elapsed = divmod(now_ms, WINDOW_MS)
        keys: list[str] = []
        for _, name in limits:
            base = f"{self.prefix}:rl:{{{tag}}}:{name}:"
            keys += [base + str(window), base + str(window - 1)]
        args = [WINDOW_MS, elapsed, *(limit for limit, _ in limits)]
        if self.script.sha is None:
            self.script.sha = await self.client.script_load(self.script.script)
        try:
            refused, retry_ms = await self.client.evalsha(self.script.sha, len(keys), *keys, *args)
        except NoScriptError:  # Redis restarted and lost its script cache
            self.script.sha = await self.client.script_load(self.script.script)
            refused, retry_ms = await self.client.evalsha(self.script.sha, len(keys), *keys, *args)
        if refused:
            limit = limits[int(refused) - 1][0]
            raise DomainError(
                "RATE_LIMITED",
                details={"limit": limit, "window": "1m"},
                headers={"Retry-After": str(max(1, math.ceil(int(retry_ms) / 1000)))},
            )

    async def hit(self, per_minute: int, *identifiers: str) -> None:
        """One limit; the identity is the joined identifiers (and the hash tag)."""
        ident = ":".join(identifiers)
        await self.check(ident, (per_minute, "n"))
