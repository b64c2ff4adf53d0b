"""Per-member and per-IP rate limits: atomic sliding-window counters in one Redis round trip.

We started with the `limits` library (alisaifee); it is correct, but each limit is its own
round trip, and every client API call checks two (IP and member). The algorithm is the same
sliding-window counter `limits` uses, in service/lua/ratelimit.lua; both checks go out in one
pipeline, so a member request pays one round trip. Litestar's built-in middleware is not used:
it reads and writes the counter in two steps and trusts X-Forwarded-For.

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

    def _keys(self, ident: str, window: int) -> tuple[str, str]:
        # The identity is the hash tag: both windows of one limit live on one cluster slot.
        base = f"{self.prefix}:rl:{{{ident}}}:"
        return base + str(window), base + str(window - 1)

    async def check(self, *limits: tuple[int, str]) -> None:
        """Count one request against each (per-minute limit, identity); raise 429 on the first
        limit exceeded. All limits are checked in one round trip."""
        now_ms = int(time.time() * 1000)
        window, elapsed = divmod(now_ms, WINDOW_MS)
        calls = [(limit, self._keys(ident, window)) for limit, ident in limits]
        if self.script.sha is None:
            self.script.sha = await self.client.script_load(self.script.script)
        try:
            results = await self._run(calls, elapsed)
        except NoScriptError:  # Redis restarted and lost its script cache
            self.script.sha = await self.client.script_load(self.script.script)
            results = await self._run(calls, elapsed)
        for (limit, _), (allowed, retry_ms) in zip(calls, results, strict=True):
            if not allowed:
                raise DomainError(
                    "RATE_LIMITED",
                    details={"limit": limit, "window": "1m"},
                    headers={"Retry-After": str(max(1, math.ceil(int(retry_ms) / 1000)))},
                )

    async def _run(self, calls: list[tuple[int, tuple[str, str]]], elapsed: int) -> list:
        pipe = self.client.pipeline(transaction=False)
        for limit, (cur, prev) in calls:
            pipe.evalsha(self.script.sha, 2, cur, prev, limit, WINDOW_MS, elapsed)
        return await pipe.execute()

    async def hit(self, per_minute: int, *identifiers: str) -> None:
        """One limit; the identity is the joined identifiers."""
        await self.check((per_minute, ":".join(identifiers)))
