"""The one cache helper: single-flight, TTL, and a config change made through one app instance
seen by another within a second (two apps sharing PostgreSQL and Redis, each with its own
in-memory caches, exactly as two `engage serve` processes)."""

from __future__ import annotations

import asyncio
import time

import pytest

from service.app import create_app
from service.core.cache import Cache
from service.core.rng import seeded_rng
from service.wheel.service import RUNTIME_CACHE
from tests.conftest import http_client, make_settings
from tests.wheel_helpers import put_wheel, wheel_config

pytestmark = pytest.mark.asyncio


async def test_concurrent_misses_share_one_load_and_failures_are_not_cached():
    cache: Cache[str, int] = Cache("t", ttl=60)
    calls = 0

    async def load() -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.02)
        return 7

    assert await asyncio.gather(*(cache.get("k", load) for _ in range(50))) == [7] * 50
    assert calls == 1

    async def boom() -> int:
        raise RuntimeError("down")

    for _ in range(2):
        with pytest.raises(RuntimeError):
            await cache.get("x", boom)
    assert cache.peek("x") is None


async def test_an_entry_dropped_while_loading_is_not_stored():
    cache: Cache[str, int] = Cache("t", ttl=60)
    gate = asyncio.Event()

    async def slow() -> int:
        await gate.wait()
        return 1  # read before the change: must not be kept

    task = asyncio.create_task(cache.get("k", slow))
    await asyncio.sleep(0)
    cache.drop("k")
    gate.set()
    assert await task == 1
    assert cache.peek("k") is None


async def test_a_config_change_through_one_app_reaches_another_within_a_second(
    servers, clock, client, tenant
):
    other = create_app(make_settings(servers), clock=clock, rng=seeded_rng(7), background=False)
    async with http_client(other) as client_b:
        ctx_b = other.state.ctx
        # B would otherwise keep the wheel for a minute: only the invalidation can refresh it.
        ctx_b.caches.get(RUNTIME_CACHE, 60.0).ttl = 60.0
        await put_wheel(client, tenant, "shared", wheel_config(freeSpinsPerDay=1))
        _, h = await tenant.member("cache-m")
        first = await client_b.get("/v1/wheels/shared", headers=h)
        assert first.json()["freeSpinsLeftToday"] == 1  # now cached in B
        await put_wheel(client, tenant, "shared", wheel_config(freeSpinsPerDay=3))  # through A
        started = time.monotonic()
        seen = None
        while time.monotonic() - started < 1.0:
            seen = (await client_b.get("/v1/wheels/shared", headers=h)).json()
            if seen["freeSpinsLeftToday"] == 3:
                break
            await asyncio.sleep(0.05)
        assert seen is not None and seen["freeSpinsLeftToday"] == 3, seen
