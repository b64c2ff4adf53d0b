"""The process-wide context every route and service receives: settings, pools, clock, RNG."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import redis.asyncio as aioredis

from service.config import Settings
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


@dataclass
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
    # Long-lived clients features need (the WeChat HTTP client, caches); set by the lifespan.
    extras: dict[str, Any] = field(default_factory=dict)
