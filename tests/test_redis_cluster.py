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
