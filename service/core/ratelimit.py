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

Folding (issue 10): a member request pays no round trip of its own for the limits when its
work calls Redis anyway. ``RateLimiter.pending`` builds the check without calling Redis; the
request's first script counts it (a script whose .lua starts with ``--#fold ratelimit`` runs
lib/ratelimit.lua first and its body only when admitted: service/core/redis.py), or its read
pipeline carries it as the first command (``RateCheck.queue``/``execute``); whatever was not
counted is counted on its own on the way out (service.core.http.MemberRequest).

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
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterPipeline
from redis.exceptions import NoScriptError, ResponseError

from service.core.clock import Clock, SystemClock
from service.core.errors import DomainError
from service.core.redis import Scripts

WINDOW_MS = 60_000


class RateCheck:
    """One request's limits, not counted yet: the pending part of a member request.

    Count it exactly once, before the request's work takes anything, in ONE of three ways:

    - folded into the request's own script (one round trip): pass ``rate=check`` to a script
      whose file starts with ``--#fold ratelimit`` (service/core/redis.py)::

          # a write: nothing of the body runs when refused (429 raised by the call)
          reply = await ctx.scripts.checkin_mark(keys=[cal, mk], args=[bit, "0"], rate=rate)

    - first command of the request's read pipeline: ``await check.queue(pipe)``, then the
      read's commands, then ``replies = await check.execute(pipe)`` (raises 429 if refused,
      returns the replies of the read's commands);
    - on its own (``await check.settle()``): what ``RateLimiter.check`` does, and what
      ``service.core.http.MemberRequest`` does when the route's work never reached Redis.

    ``done`` once counted (later calls with ``rate=`` run the body alone, so a retry of the
    same script, e.g. after loading a lost hash, never counts the request twice).
    """

    __slots__ = ("done", "keys", "limiter", "limits")

    def __init__(self, limiter: RateLimiter, tag: str, limits: tuple[tuple[int, str], ...]):
        self.limiter = limiter
        self.limits = limits
        self.keys = [limiter.key(tag, name) for _, name in limits]
        self.done = False

    def take(self) -> tuple[list[str], list[str | int]]:
        """(keys, args) of lib/ratelimit.lua for this request, now; marks the check done."""
        self.done = True
        lim = self.limiter
        now_ms = int(lim.clock.now().timestamp() * 1000)
        args: list[str | int] = [now_ms, WINDOW_MS, f"{lim._tag}{next(lim._seq)}"]
        args += [n for n, _ in self.limits]
        return self.keys, args

    def refused(self, index: int, retry_ms: int) -> DomainError:
        """The 429 of limit ``index`` (1-based): Retry-After in whole seconds, at least 1."""
        return DomainError(
            "RATE_LIMITED",
            details={"limit": self.limits[index - 1][0], "window": "1m"},
            headers={"Retry-After": str(max(1, math.ceil(int(retry_ms) / 1000)))},
        )

    def refusal_of(self, exc: ResponseError) -> Exception:
        """A folded script's error reply ``RATE_LIMITED <i> <ms>`` as the 429; any other error
        unchanged."""
        words = str(exc).split()
        if len(words) == 3 and words[0] == "RATE_LIMITED":
            return self.refused(int(words[1]), int(words[2]))
        return exc

    async def settle(self) -> None:
        """Count the request now, in its own round trip, unless it was counted; 429 if refused."""
        if not self.done:
            await self.limiter.run(self)

    async def queue(self, pipe: Any) -> None:
        """Queue the check as the next (first) command of a read's pipeline (see execute)."""
        lim = self.limiter
        if lim.script.sha is None:
            lim.script.sha = await lim.client.script_load(lim.script.script)
        keys, args = self.take()
        if isinstance(pipe, ClusterPipeline):  # redis-py refuses EVALSHA there (see redis.py)
            pipe.execute_command("EVAL", lim.script.script, len(keys), *keys, *args)
        else:
            pipe.evalsha(lim.script.sha, len(keys), *keys, *args)

    async def execute(self, pipe: Any) -> list[Any]:
        """Run a pipeline whose first command ``queue`` put there: 429 when refused, else
        the other commands' replies (an error among them is raised)."""
        replies = await pipe.execute(raise_on_error=False)
        verdict, rest = replies[0], replies[1:]
        if isinstance(verdict, NoScriptError):  # Redis restarted: count it on its own
            self.limiter.script.sha = None
            self.done = False
            await self.settle()
        elif isinstance(verdict, Exception):
            raise verdict
        elif int(verdict[0]):
            raise self.refused(int(verdict[0]), int(verdict[1]))
        for reply in rest:
            if isinstance(reply, Exception):
                raise reply
        return rest


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

    def pending(self, tag: str, *limits: tuple[int, str]) -> RateCheck:
        """The check of one request against each (per-minute limit, name) under one hash tag,
        not counted yet (no Redis call): count it with ``settle`` or fold it into the
        request's own script or pipeline (see RateCheck)."""
        return RateCheck(self, tag, limits)

    async def check(self, tag: str, *limits: tuple[int, str]) -> None:
        """Count one request against each (per-minute limit, name) under one hash tag, in one
        round trip; raise 429 RATE_LIMITED with Retry-After (nothing counted) if any limit
        already admitted its number of requests in the last 60 s."""
        await self.run(RateCheck(self, tag, limits))

    async def run(self, check: RateCheck) -> None:
        """``check`` in its own round trip (ratelimit.lua); 429 if refused."""
        keys, args = check.take()
        if self.script.sha is None:
            self.script.sha = await self.client.script_load(self.script.script)
        try:
            refused, retry_ms = await self.client.evalsha(self.script.sha, len(keys), *keys, *args)
        except NoScriptError:  # Redis restarted and lost its script cache
            self.script.sha = await self.client.script_load(self.script.script)
            refused, retry_ms = await self.client.evalsha(self.script.sha, len(keys), *keys, *args)
        if int(refused):
            raise check.refused(int(refused), int(retry_ms))

    async def hit(self, per_minute: int, *identifiers: str) -> None:
        """One limit; the identity is the joined identifiers (and the hash tag)."""
        ident = ":".join(identifiers)
        await self.check(ident, (per_minute, "n"))
