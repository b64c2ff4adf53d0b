"""Per-member and per-IP rate limits: exact sliding windows in one Redis round trip.

Promise: a limit of N per minute admits at most N requests in ANY 60-second interval,
wherever it starts (measured on the injected clock), and admits the N-th as long as fewer
than N were admitted in the 60 seconds before it. The earlier sliding-window counter (the
`limits` library's algorithm) weighs the previous minute's count and let up to 12 of a limit
of 10 through around a minute boundary (issue 9, item 7).

Algorithm: a sliding log (service/lua/ratelimit.lua). Each limit is a Redis sorted set of
the admission times of the last window; a request trims what left the window, counts, and is
admitted only if every limit has room, then is recorded in all of them: one EVALSHA for the
member and IP limits together. Memory: one entry per admitted request per limit, kept for a
window, so at most N entries per identity (a listpack of ~20 bytes an entry up to 128
entries, a skiplist of ~80 bytes an entry beyond); with both limits counted, about 2 x the
admitted requests of the last minute x that size across the service (e.g. 10,000 requests
a second: ~600,000 x 2 x 80 B, about 100 MB at worst). Refused requests store nothing.

Keys share the hash tag (Redis Cluster safe): a member's IP limit is counted per tenant (the
tenant is the hash tag); requests without a valid token are limited per IP across tenants.
Litestar's built-in middleware is not used: it reads and writes the counter in two steps and
trusts X-Forwarded-For.

Time comes from the injected clock (tests pin it; the dev clock moves it). Each request's
log entry needs an id unique within its key: this process's random tag and a counter (not
business randomness: it never changes an answer).
"""

from __future__ import annotations

import itertools
import math
import secrets

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError

from service.core.clock import Clock, SystemClock
from service.core.errors import DomainError
from service.core.redis import Scripts

WINDOW_MS = 60_000


class RateLimiter:
    def __init__(
        self,
        client: aioredis.Redis,
        scripts: Scripts,
        prefix: str,
        clock: Clock | None = None,
    ) -> None:
        self.client = client
        self.script = scripts.ratelimit
        self.prefix = prefix
        self.clock = clock or SystemClock()
        self._tag = secrets.token_hex(4)
        self._seq = itertools.count()

    def key(self, tag: str, name: str) -> str:
        """The sorted set of one limit: ``<prefix>:rl:{<tag>}:<name>``."""
        return f"{self.prefix}:rl:{{{tag}}}:{name}"

    async def check(self, tag: str, *limits: tuple[int, str]) -> None:
        """Count one request against each (per-minute limit, name) under one hash tag, in one
        round trip; raise 429 RATE_LIMITED with Retry-After (nothing counted) if any limit
        already admitted its number of requests in the last 60 s."""
        now_ms = int(self.clock.now().timestamp() * 1000)
        keys = [self.key(tag, name) for _, name in limits]
        args: list[str | int] = [
            now_ms,
            WINDOW_MS,
            f"{self._tag}{next(self._seq)}",
            *(n for n, _ in limits),
        ]
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
