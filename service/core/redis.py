"""The Redis client and the Lua scripts, registered once at start-up from service/lua/*.lua.

One Redis or a Redis Cluster: ``redis+cluster://host:port`` (or ``ENGAGE_REDIS_CLUSTER=true``)
gives redis-py's asyncio ``RedisCluster``, which routes each command and script by the hash
slot of its keys. Every script's keys must therefore share one hash tag (see core/keys.py);
:class:`Scripts` checks that on every call, whatever the deployment, so a script that would
fail with CROSSSLOT on a cluster fails in the single-node test suite too.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline
from redis.asyncio.cluster import ClusterPipeline, RedisCluster
from redis.commands.core import AsyncScript
from redis.crc import key_slot
from redis.exceptions import ResponseError

from service.config import Settings
from service.core.metrics import observe_redis

if TYPE_CHECKING:
    from service.core.ratelimit import RateCheck

LUA_DIR = Path(__file__).resolve().parent.parent / "lua"

_CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}


def cluster_url(url: str, cluster: bool = False) -> tuple[str, bool]:
    """(the URL redis-py understands, whether it names a cluster)."""
    scheme, sep, rest = url.partition("://")
    if sep and scheme in _CLUSTER_SCHEMES:
        return f"{_CLUSTER_SCHEMES[scheme]}://{rest}", True
    return url, cluster


class BoundedRedisCluster(RedisCluster):
    """redis-py's asyncio RedisCluster fails a command at once (MaxConnectionsError) when a
    node's connections are all busy; the single-node client waits on a blocking pool instead.
    This one waits too: at most ``concurrency`` commands are in flight, the rest queue."""

    def __init__(self, *args: Any, concurrency: int = 128, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._gate = asyncio.Semaphore(concurrency)

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        async with self._gate:
            started = time.perf_counter()
            try:
                return await super().execute_command(*args, **kwargs)
            finally:
                observe_redis(str(args[0]), started)


class TimedRedis(aioredis.Redis):
    """The single-node client, each call's latency observed (engage_redis_command_seconds)."""

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        started = time.perf_counter()
        try:
            return await super().execute_command(*args, **options)
        finally:
            observe_redis(str(args[0]), started)


def is_cluster(client: object) -> bool:
    return isinstance(client, RedisCluster)


def create_redis(settings: Settings, url: str | None = None) -> aioredis.Redis:
    """A client over a blocking pool: a burst waits for a free connection (up to the Redis
    timeout) instead of failing the moment the pool is exhausted. For a cluster, a
    ``RedisCluster`` (typed as ``Redis``: the commands the service uses are the same)."""
    plain, cluster = cluster_url(url or settings.redis_url, settings.redis_cluster)
    if cluster:
        return cast(
            aioredis.Redis,
            BoundedRedisCluster.from_url(
                plain,
                concurrency=128,
                # Per node; pipelines are not gated, so leave them room beyond the gate.
                max_connections=512,
                socket_timeout=settings.redis_timeout_s,
                socket_connect_timeout=settings.redis_timeout_s,
                health_check_interval=30,
            ),
        )
    pool = aioredis.BlockingConnectionPool.from_url(
        plain,
        max_connections=128,
        timeout=settings.redis_timeout_s,
        socket_timeout=settings.redis_timeout_s,
        socket_connect_timeout=settings.redis_timeout_s,
        health_check_interval=30,
    )
    return TimedRedis(connection_pool=pool)


class CrossSlotKeys(ValueError):
    """A script was called with keys of different Redis Cluster hash slots."""


def check_one_slot(name: str, keys: Sequence[Any]) -> None:
    """Raise unless every key hashes to one cluster slot (their hash tags agree)."""
    if len(keys) > 1:
        slots = {key_slot(k.encode() if isinstance(k, str) else k) for k in keys}
        if len(slots) > 1:
            raise CrossSlotKeys(f"script {name}: keys span hash slots {sorted(slots)}: {keys}")


def one_slot(keys: Sequence[Any]) -> bool:
    """True when every key hashes to one cluster slot."""
    return len({key_slot(k.encode() if isinstance(k, str) else k) for k in keys}) <= 1


class SlotCheckedScript:
    """An AsyncScript whose keys are checked to share one hash slot before each call.

    A script whose file starts with ``--#fold ratelimit`` FOLDS a request's rate limit: pass
    the request's pending :class:`~service.core.ratelimit.RateCheck` as ``rate=`` and the
    script counts the member and IP limits first, in the same call (one round trip), and runs
    its own body only when they admit the request; refused, nothing of the body runs and the
    call raises 429 RATE_LIMITED (Retry-After) like ``RateLimiter.check``. Without ``rate``
    (or once the check was counted) the body runs alone. Keys and args are the body's own,
    as documented in its .lua file: the check's keys and args are prepended here.

    Redis Cluster: a script's keys must share one slot. The limit's keys carry the tenant tag
    ``{t<tenant>}``; when the body's keys have another tag (a board, a wheel, a PK) and the
    client is a cluster, the check is made first in its own call (two round trips, still
    before the body). On a single Redis any keys fold into one call. The body's own keys are
    checked to share one slot on every deployment (so the single-node suite catches them).
    """

    def __init__(self, name: str, script: AsyncScript, *, folds: bool, cluster: bool) -> None:
        self.name = name
        self._script = script
        self.folds = folds
        self.cluster = cluster

    @property
    def sha(self) -> Any:
        return self._script.sha

    @sha.setter
    def sha(self, value: Any) -> None:
        self._script.sha = value

    @property
    def script(self) -> Any:
        return self._script.script

    async def __call__(
        self,
        keys: Sequence[Any] | None = None,
        args: Sequence[Any] | None = None,
        client: Any = None,
        rate: RateCheck | None = None,
    ) -> Any:
        keys, args = list(keys or ()), list(args or ())
        check_one_slot(self.name, keys)
        if (
            rate is not None
            and client is not None
            and not rate.done
            and isinstance(client, Pipeline | ClusterPipeline)
        ):
            # A refusal would only surface at execute: put the check first with rate.queue.
            raise TypeError(f"{self.name}: in a pipeline, use rate.queue(pipe) and rate.execute")
        folded = None
        if self.folds:
            if (
                rate is not None
                and not rate.done
                and (not self.cluster or one_slot([*rate.keys, *keys]))
            ):
                folded = rate
                rate_keys, rate_args = rate.take()
                keys, args = [*rate_keys, *keys], [len(rate_keys), *rate_args, *args]
            else:
                if rate is not None:
                    await rate.settle()  # a cluster, other slots: the check's own call first
                args = [0, *args]
        elif rate is not None:
            await rate.settle()
        if isinstance(client, ClusterPipeline):
            # redis-py refuses EVALSHA in a cluster pipeline; EVAL is queued like any command
            # (routed by its keys' slot) and cannot miss a script cache after a restart.
            # (Queued only: awaiting a ClusterPipeline re-initializes it and drops the queue.)
            client.execute_command("EVAL", self.script, len(keys), *keys, *args)
            return client
        if folded is None:
            return await self._script(keys=keys, args=args, client=client)
        try:
            return await self._script(keys=keys, args=args, client=client)
        except ResponseError as exc:
            raise folded.refusal_of(exc) from None


FOLD_MARK = "--#fold ratelimit"
INCLUDE = "--#include "


def _included(text: str) -> str:
    """``--#include lib/x.lua`` lines replaced by that file (relative to service/lua)."""
    out = []
    for line in text.splitlines():
        if line.startswith(INCLUDE):
            out.append((LUA_DIR / line[len(INCLUDE) :].strip()).read_text())
        else:
            out.append(line)
    return "\n".join(out) + "\n"


def script_text(path: Path) -> tuple[str, bool]:
    """(the script Redis runs, whether it folds the rate limit). A folding script's body is
    wrapped in a function called after lib/ratelimit.lua admitted the request:

    KEYS = the check's n sorted sets, then the body's keys; ARGV[1] = n (0: no check),
    ARGV[2 .. 4 + n] = the check's now, window, id and n limits (absent when n = 0), then the
    body's args. A refusal is the error reply ``RATE_LIMITED <i> <retry_after_ms>``.
    """
    text = _included(path.read_text())
    if not text.startswith(FOLD_MARK):
        return text, False
    lib = (LUA_DIR / "lib" / "ratelimit.lua").read_text()
    composed = f"""{lib}
local function engage_body(KEYS, ARGV)
{text}
end
local n = tonumber(ARGV[1])
local a = 1
if n > 0 then
  local refused = engage_rate_limit(KEYS, ARGV, 0, 1, n)
  if refused then
    return redis.error_reply('RATE_LIMITED ' .. refused[1] .. ' ' .. refused[2])
  end
  a = 4 + n
end
local body_keys, body_argv = {{}}, {{}}
for i = n + 1, #KEYS do
  body_keys[#body_keys + 1] = KEYS[i]
end
for i = a + 1, #ARGV do
  body_argv[#body_argv + 1] = ARGV[i]
end
return engage_body(body_keys, body_argv)
"""
    return composed, True


class Scripts:
    """Every .lua file in service/lua becomes an attribute named after the file."""

    def __init__(self, client: aioredis.Redis) -> None:
        self._scripts: dict[str, SlotCheckedScript] = {}
        cluster = is_cluster(client)
        for path in sorted(LUA_DIR.glob("*.lua")):
            text, folds = script_text(path)
            self._scripts[path.stem] = SlotCheckedScript(
                path.stem, client.register_script(text), folds=folds, cluster=cluster
            )

    def __getattr__(self, name: str) -> SlotCheckedScript:
        try:
            return self._scripts[name]
        except KeyError:
            raise AttributeError(f"no Lua script named {name}") from None

    async def preload(self, client: aioredis.Redis) -> None:
        """Load every script so the first call is an EVALSHA hit."""
        for script in self._scripts.values():
            # On a cluster, SCRIPT LOAD goes to every primary.
            script.sha = await client.script_load(script.script)
