"""The process-wide context every route, service and job receives.

It names everything a feature may use: settings, the PostgreSQL pool, Redis and its scripts,
key naming, the injected clock and RNG, the outbox dispatcher, the rate limiter, token and API
key verification, the WeChat verifier, the trusted proxies and the process's caches. It is
built once per process by ``service.runtime.open_context`` (the app's lifespan and the CLI).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx
import redis.asyncio as aioredis

from service.config import Settings
from service.core.auth import TokenService
from service.core.cache import Caches
from service.core.clock import Clock
from service.core.db import Database
from service.core.keys import Keys
from service.core.redis import Scripts

# How long a process may serve a configuration (campaign, wheel, board, points policy) from its
# own memory. Several app processes share one PostgreSQL: a change made through one is seen by
# every other within this time (tests/test_two_servers.py). One PostgreSQL read per config per
# process per second is negligible next to the traffic it saves.
CONFIG_CACHE_TTL_S = 1.0

if TYPE_CHECKING:
    from service.core.outbox import Dispatcher
    from service.core.ratelimit import RateLimiter
    from service.core.tenancy import ApiKeyCache
    from service.members.wechat import Verifier


@dataclass(slots=True)
class Context:
    settings: Settings
    db: Database
    redis: aioredis.Redis
    scripts: Scripts
    keys: Keys
    clock: Clock
    rng: random.Random
    dispatcher: Dispatcher
    limiter: RateLimiter
    tokens: TokenService  # member access/refresh tokens (HS256 JWT)
    api_keys: ApiKeyCache  # operator API keys, verified and cached for a few seconds
    wechat_verifier: Verifier  # code2session against WeChat's API
    trusted_proxies: frozenset[str]  # peers whose X-Forwarded-For is believed
    http_client: httpx.AsyncClient  # the process's outbound HTTP client
    caches: Caches  # every in-memory cache, invalidated across processes on config changes
    # Retry back-off timing only (service.core.retry), never an answer: not ``rng``, which
    # tests pin to make answers reproducible. Tests may replace it to see the waits.
    jitter: random.Random = field(default_factory=random.Random)
