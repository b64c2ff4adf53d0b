"""The one per-process cache: TTL, single-flight, dropped in every process on a config change.

Every feature that keeps something in memory (a wheel's config, a campaign, a board's top
page, verified API keys) asks ``ctx.caches.get(name, ttl)`` for a ``Cache`` and reads through
it. The caches live on the context (one set per process and per test app), never in module
globals, so nothing has to be reset between tests.

Invalidation across processes: when an operator changes a config, the writer calls
``ctx.caches.changed(name, key)`` after the commit (``uow.after_commit``). That drops the entry
here at once and bumps a version counter in Redis; every process polls that counter every
``POLL_S`` seconds in the background (one GET, off the request path) and, when it moved,
drops the entries named in a short change log, or everything if it fell behind. So a change
made through one process is seen by every other within about ``POLL_S`` (well under a second),
and the TTL bounds staleness even if Redis is unreachable.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from typing import Any, Generic, TypeVar

import msgspec
import redis.asyncio as aioredis
import structlog

log = structlog.get_logger("engage.cache")

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

POLL_S = 0.25
LOG_LENGTH = 256  # changes kept in Redis for pollers to catch up on


class Cache(Generic[K, V]):
    """TTL entries with single-flight loads: concurrent misses of one key share one load.

    ``get(key, load)`` returns the cached value or awaits ``load()`` once for all waiters;
    a failed load is raised to every waiter and not cached. ``drop(key)`` forgets one entry,
    ``clear()`` all; ``put`` stores a value a writer already has.
    """

    def __init__(self, name: str, ttl: float, max_entries: int = 10_000) -> None:
        self.name = name
        self.ttl = ttl
        self.max_entries = max_entries
        self._data: dict[K, tuple[float, V]] = {}
        self._inflight: dict[K, asyncio.Future[V]] = {}
        self._generation = 0  # bumped by drop/clear: a load that started before is not stored
        self.loads = 0

    def peek(self, key: K) -> V | None:
        """The live entry, or None (no load)."""
        hit = self._data.get(key)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        return None

    @property
    def generation(self) -> int:
        """Bumped by every drop/clear: read it before loading, pass it to ``put``."""
        return self._generation

    def put(self, key: K, value: V, generation: int | None = None) -> None:
        """Store ``value``; with ``generation``, only if nothing was dropped since it was read
        (a value loaded before an invalidation is not stored)."""
        if generation is not None and generation != self._generation:
            return
        if len(self._data) >= self.max_entries:
            self._data.clear()
        self._data[key] = (time.monotonic() + self.ttl, value)

    def drop(self, key: K) -> None:
        self._data.pop(key, None)
        self._generation += 1

    def clear(self) -> None:
        self._data.clear()
        self._generation += 1

    async def get(self, key: K, load: Callable[[], Awaitable[V]], *, fresh: bool = False) -> V:
        if not fresh:
            hit = self._data.get(key)
            if hit is not None and hit[0] > time.monotonic():
                return hit[1]
            waiting = self._inflight.get(key)
            if waiting is not None:
                return await asyncio.shield(waiting)
        fut: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        generation = self._generation
        if not fresh:
            self._inflight[key] = fut
        try:
            self.loads += 1
            value = await load()
        except BaseException as exc:
            fut.set_exception(exc)
            fut.exception()  # mark retrieved: waiters re-raise it, nobody else must
            raise
        finally:
            if self._inflight.get(key) is fut:
                del self._inflight[key]
        fut.set_result(value)
        if generation == self._generation:  # not invalidated while loading
            self.put(key, value)
        return value


class Caches:
    """Every cache of one process, and the cross-process invalidation (see module doc)."""

    def __init__(self, redis: aioredis.Redis, prefix: str) -> None:
        self._redis = redis
        self._version_key = f"{prefix}cache:version"
        self._log_key = f"{prefix}cache:changes"
        self._caches: dict[str, Cache[Any, Any]] = {}
        self._seen: int | None = None
        self._origin = secrets.token_hex(6)  # our own changes come back in the log: skip them

    def get(self, name: str, ttl: float, max_entries: int = 10_000) -> Cache[Any, Any]:
        """The process's cache called ``name`` (made on first use with this ``ttl``)."""
        cache = self._caches.get(name)
        if cache is None:
            cache = self._caches[name] = Cache(name, ttl, max_entries)
        return cache

    def clear(self) -> None:
        for cache in self._caches.values():
            cache.clear()

    def _drop_local(self, name: str, key: Any) -> None:
        cache = self._caches.get(name)
        if cache is None:
            return
        if key is None:
            cache.clear()
        else:
            cache.drop(_hashable(key))

    async def changed(self, name: str, key: Any = None) -> None:
        """A config behind cache ``name`` changed (``key`` None: all of it): drop it here now
        and in every other process within ``POLL_S``. Call it after the commit."""
        self._drop_local(name, key)
        entry = msgspec.json.encode([self._origin, name, key])
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.lpush(self._log_key, entry)
                pipe.ltrim(self._log_key, 0, LOG_LENGTH - 1)
                pipe.incr(self._version_key)
                await pipe.execute()
        except Exception as exc:
            # Other processes then see the change when their entry's TTL runs out.
            log.warning("cache change not published", cache=name, error=repr(exc))

    async def poll_once(self) -> None:
        """Apply the changes other processes published since the last poll."""
        # Version and log read atomically (MULTI): the newest ``behind`` entries are the news.
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.get(self._version_key)
            pipe.lrange(self._log_key, 0, LOG_LENGTH - 1)
            raw, changes = await pipe.execute()
        version = int(raw or 0)
        if self._seen is None:
            self._seen = version
            return
        behind = version - self._seen
        if behind <= 0:
            self._seen = version
            return
        if behind > LOG_LENGTH:
            self.clear()
        else:
            for item in changes[:behind]:
                origin, name, key = msgspec.json.decode(item)
                if origin != self._origin:
                    self._drop_local(name, key)
        self._seen = version

    async def watch(self, stop: asyncio.Event, interval_s: float = POLL_S) -> None:
        """Poll for other processes' changes until ``stop`` is set. Never cancelled in the
        middle of a Redis call: the loop only ends between polls."""
        while not stop.is_set():
            try:
                await self.poll_once()
            except Exception as exc:
                log.warning("cache poll failed", error=repr(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval_s)

    @contextlib.asynccontextmanager
    async def watching(self, interval_s: float = POLL_S) -> AsyncIterator[Caches]:
        """Run ``watch`` for the duration of the block."""
        stop = asyncio.Event()
        task = asyncio.create_task(self.watch(stop, interval_s))
        try:
            yield self
        finally:
            stop.set()
            try:
                await asyncio.wait_for(asyncio.shield(task), 5.0)
            except BaseException:
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task


def _hashable(key: Any) -> Any:
    """Keys come back from JSON as lists; cache keys are tuples."""
    if isinstance(key, list):
        return tuple(_hashable(k) for k in key)
    return key
