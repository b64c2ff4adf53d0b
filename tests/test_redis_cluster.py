"""Redis Cluster: the URL scheme, the one-slot rule for script keys, and (when the suite runs
on a cluster, as the CI cluster step does) that the service really speaks to one."""

from __future__ import annotations

import os

import pytest

from service.core.keys import Keys
from service.core.redis import CrossSlotKeys, check_one_slot, cluster_url, is_cluster

pytestmark = pytest.mark.asyncio


def test_cluster_url_schemes():
    assert cluster_url("redis+cluster://127.0.0.1:7000") == ("redis://127.0.0.1:7000", True)
    assert cluster_url("rediss+cluster://h:1/0") == ("rediss://h:1/0", True)
    assert cluster_url("redis://127.0.0.1:6379/0") == ("redis://127.0.0.1:6379/0", False)
    assert cluster_url("redis://127.0.0.1:6379/0", True) == ("redis://127.0.0.1:6379/0", True)
    assert cluster_url("unix:///tmp/r.sock") == ("unix:///tmp/r.sock", False)


def test_script_keys_must_share_one_hash_slot():
    keys = Keys("eng")
    same = [keys.tagged(7, "lb:points", "b", 1, "W48"), keys.tagged(7, "lb:points", "upd")]
    check_one_slot("lb_top", same)
    check_one_slot("checkin_mark", [keys.tenant(7, "ci", 1, "cal"), keys.tenant(7, "ci", 1, "mk")])
    with pytest.raises(CrossSlotKeys):
        check_one_slot(
            "lb_top", [keys.tagged(7, "lb:points", "b"), keys.tagged(8, "lb:points", "b")]
        )
    with pytest.raises(CrossSlotKeys):
        check_one_slot("x", [keys.tenant(7, "a"), keys.global_("b")])


async def test_a_script_called_across_slots_is_refused_before_redis_sees_it(ctx):
    keys = Keys(ctx.keys.prefix)
    with pytest.raises(CrossSlotKeys):
        await ctx.scripts.lb_top(
            keys=[keys.tagged(1, "lb:a", "b"), keys.tagged(2, "lb:a", "upd")],
            args=[b"m", "0", 0, 1],
        )


async def test_the_suite_speaks_to_a_cluster_when_told_to(ctx):
    url = os.environ.get("ENGAGE_TEST_REDIS_URL", "")
    assert is_cluster(ctx.redis) == cluster_url(url)[1]
    if is_cluster(ctx.redis):
        info = await ctx.redis.cluster_info()
        assert info["cluster_state"] == "ok" and int(info["cluster_known_nodes"]) >= 3


@pytest.fixture
def observed(monkeypatch):  # type: ignore[no-untyped-def]
    """The Redis latency observations made by this test's own task (the cache poller and the
    dispatcher observe theirs meanwhile)."""
    import asyncio

    from service.core import redis as core_redis

    seen: list[tuple[object, str]] = []
    observe = core_redis.observe_redis

    def recording(command: str, started: float) -> None:
        seen.append((asyncio.current_task(), command))
        observe(command, started)

    def mine() -> list[str]:
        """Commands observed by the calling task, and forget them."""
        task = asyncio.current_task()
        out = [c for t, c in seen if t is task]
        seen.clear()
        return out

    monkeypatch.setattr(core_redis, "observe_redis", recording)
    return mine


def _calls(ctx, command: str) -> int:  # type: ignore[no-untyped-def]
    """Calls of ``command`` summed over the Redis nodes (INFO commandstats)."""
    from tests.conftest import sync_redis_client

    url = ctx.settings.redis_url
    r = sync_redis_client(url)
    nodes = [n.redis_connection for n in r.get_primaries()] if is_cluster(ctx.redis) else [r]
    total = 0
    for node in nodes:
        if node is None:
            continue
        stat = node.info("commandstats").get(f"cmdstat_{command}", {})
        total += int(stat.get("calls", 0))
    return total


def _script_on(ctx, sha: str) -> dict[str, bool]:  # type: ignore[no-untyped-def]
    """Whether each primary of the suite's cluster has the script."""
    from tests.conftest import sync_redis_client

    r = sync_redis_client(ctx.settings.redis_url)
    return {n.name: bool(n.redis_connection.script_exists(sha)[0]) for n in r.get_primaries()}


async def test_a_pipeline_sends_scripts_as_evalsha_and_reloads_them_per_node(ctx, observed):
    """A script queued in a pipeline goes as EVALSHA (never its body); a node that has not got
    it answers NOSCRIPT, gets SCRIPT LOAD, and only its calls are sent again. On a cluster the
    keys below fall on every primary, and only those nodes load the script."""
    import secrets

    from service.core.redis import SlotCheckedScript

    # A script no Redis has seen (a fresh body): every node answers NOSCRIPT the first time.
    body = f"-- {secrets.token_hex(8)}\nredis.call('SET', KEYS[1], ARGV[1]) return ARGV[1]"
    script = SlotCheckedScript(
        "probe", ctx.redis.register_script(body), folds=False, cluster=is_cluster(ctx.redis)
    )
    keys = [f"{ctx.keys.prefix}:{{probe{i}}}:k" for i in range(12)]
    on_cluster = is_cluster(ctx.redis)
    evals = _calls(ctx, "eval") if on_cluster else 0

    async with ctx.redis.pipeline(transaction=False) as pipe:
        for i, key in enumerate(keys):
            await script(keys=[key], args=[f"v{i}"], client=pipe)
        # Queued as the digest, never the body (both deployments).
        queued = (
            [c.args for c in pipe._execution_strategy._command_queue]
            if on_cluster
            else [args for args, _ in pipe.command_stack]
        )
        assert [a[:2] for a in queued] == [("EVALSHA", script.sha)] * 12
        replies = await pipe.execute()
    # First round trip refused by NOSCRIPT, then one re-send: two round trips, observed as
    # such (SCRIPT LOAD between them, on the one server or once per node that refused).
    loads = len(owners := {ctx.redis.get_node_from_key(k).name for k in keys}) if on_cluster else 1
    assert observed() == ["PIPELINE", *["SCRIPT LOAD"] * loads, "PIPELINE"]
    assert replies == [f"v{i}".encode() for i in range(12)]
    assert [await ctx.redis.get(k) for k in keys] == [f"v{i}".encode() for i in range(12)]
    observed()

    # Now every node that holds one of the keys has it: one round trip.
    async with ctx.redis.pipeline(transaction=False) as pipe:
        for key in keys:
            await script(keys=[key], args=["w"], client=pipe)
        assert await pipe.execute() == [b"w"] * 12
    assert observed() == ["PIPELINE"]
    if on_cluster:
        assert _calls(ctx, "eval") == evals  # the body never travelled as EVAL
        assert len(owners) == 3 and set(_script_on(ctx, script.sha).values()) == {True}
        # Per node: a script whose calls all land on one node is loaded there only.
        one = SlotCheckedScript(
            "probe_one",
            ctx.redis.register_script(body + " -- one"),
            folds=False,
            cluster=True,
        )
        node = ctx.redis.get_node_from_key(keys[0]).name
        mine = [k for k in keys if ctx.redis.get_node_from_key(k).name == node]
        async with ctx.redis.pipeline(transaction=False) as pipe:
            for key in mine:
                await one(keys=[key], args=["z"], client=pipe)
            assert await pipe.execute() == [b"z"] * len(mine)
        assert {n for n, has in _script_on(ctx, one.sha).items() if has} == {node}
    for key in keys:
        await ctx.redis.delete(key)


async def test_a_transaction_is_one_multi_observation_and_sends_a_script_whole(ctx, observed):
    """In MULTI a script goes as EVAL: a NOSCRIPT inside the block would commit the rest."""
    import secrets

    from service.core.redis import SlotCheckedScript

    body = f"-- {secrets.token_hex(8)}\nreturn redis.call('INCR', KEYS[1])"
    script = SlotCheckedScript(
        "probe_multi", ctx.redis.register_script(body), folds=False, cluster=is_cluster(ctx.redis)
    )
    key = f"{ctx.keys.prefix}:{{probe-multi}}:n"
    async with ctx.redis.pipeline(transaction=True) as pipe:
        await script(keys=[key], client=pipe)
        pipe.incr(key)
        assert await pipe.execute() == [1, 2]
    assert observed() == ["MULTI"]
    await ctx.redis.delete(key)


@pytest.mark.skipif(
    not cluster_url(os.environ.get("ENGAGE_TEST_REDIS_URL", ""))[1],
    reason="needs the suite on a Redis Cluster (the CI cluster step)",
)
async def test_service_pipelines_recover_after_every_node_lost_its_scripts(ctx, tenant):
    """A restarted or failed-over node has an empty script cache: the service's own pipelined
    scripts (the calendar rebuild here) load them again on the node and succeed."""
    from datetime import date

    from service.checkins import store
    from tests.conftest import sync_redis_client

    r = sync_redis_client(ctx.settings.redis_url)
    for node in r.get_primaries():  # this suite's own cluster
        node.redis_connection.script_flush()
    evals = _calls(ctx, "eval")
    epoch = date(2026, 11, 1)
    items = [(m, bytes([m % 256]) * 4, b"") for m in range(1, 41)]
    await store.seed_many(ctx, tenant.id, 9001, epoch, items)
    for m, cal, _ in items:
        assert await store.read(ctx, tenant.id, 9001, epoch, m) == (cal, b"")
    assert _calls(ctx, "eval") == evals
    await store.delete_campaign(ctx, tenant.id, 9001)
