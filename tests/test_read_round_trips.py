"""Round trips of the hot member reads, counted like the writes (tests/test_round_trips.py:
the same counting wrapper on the real asyncpg connection and redis-py client, plus the
commands a pipeline sends on its own, e.g. SCRIPT EXISTS): one request in steady state (warm
caches), the rate limit included. A change that adds a round trip fails here."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import redis.asyncio.client as redis_client

from tests.test_leaderboards import deliver, emit, put_board
from tests.test_pks_api import put_pk, two_stores, window
from tests.test_round_trips import Counts, _current, counting

pytestmark = pytest.mark.asyncio

# (PostgreSQL statements, Redis round trips) of one warm request, the rate limit included.
BUDGETS = {
    "board top 100 + my rank": (0, 1),  # top page cached in process; my rank + limit: 1 script
    "around-me": (0, 1),
    "/v1/me": (1, 1),  # one read-model statement (service/me/repository.py)
    "/v1/me/summary": (1, 1),  # the same, with every kind of live campaign
    "pk scoreboard": (0, 1),  # per-PK part cached; my place + limit: 1 script
}


@contextmanager
def counting_all(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counts]:
    """``counting`` plus what a pipeline sends outside its batch (SCRIPT EXISTS/LOAD)."""
    immediate = redis_client.Pipeline.immediate_execute_command

    async def counted_immediate(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        c = _current.get()
        if c is not None:
            c.redis.append(f"pipeline immediate {args[0]}")
        return await immediate(self, *args, **kwargs)

    monkeypatch.setattr(redis_client.Pipeline, "immediate_execute_command", counted_immediate)
    with counting(monkeypatch) as counts:
        yield counts


async def _warm_count(monkeypatch, call) -> Counts:  # type: ignore[no-untyped-def]
    r = await call()
    assert r.status_code == 200, r.text
    with counting_all(monkeypatch) as counts:
        r = await call()
        assert r.status_code == 200, r.text
    monkeypatch.undo()
    return counts


async def test_round_trips_of_the_hot_reads(monkeypatch, client, tenant, ctx, clock):
    results: dict[str, Counts] = {}
    await put_board(client, tenant, "rt", period="allTime")
    ids = []
    for i in range(30):
        mid, h = await tenant.member(f"rt-board-{i}")
        ids.append(mid)
        await emit(ctx, tenant.id, mid, 10 + i, clock.now())
    await deliver(ctx)

    async def top():  # type: ignore[no-untyped-def]
        return await client.get("/v1/leaderboards/rt?limit=100", headers=h)

    results["board top 100 + my rank"] = await _warm_count(monkeypatch, top)
    body = (await top()).json()
    assert len(body["items"]) == 30 and body["me"]["rank"] == 1

    async def around():  # type: ignore[no-untyped-def]
        return await client.get("/v1/leaderboards/rt/around-me?radius=5", headers=h)

    results["around-me"] = await _warm_count(monkeypatch, around)

    async def me():  # type: ignore[no-untyped-def]
        return await client.get("/v1/me", headers=h)

    results["/v1/me"] = await _warm_count(monkeypatch, me)

    async def summary():  # type: ignore[no-untyped-def]
        return await client.get("/v1/me/summary", headers=h)

    results["/v1/me/summary"] = await _warm_count(monkeypatch, summary)

    await two_stores(client, tenant, 2)
    await put_pk(
        client, tenant, "rt", name="rt", teams=["east", "west"], metric="points", **window(5)
    )
    _, hp = await tenant.member("a0")

    async def pk():  # type: ignore[no-untyped-def]
        return await client.get("/v1/pks/rt", headers=hp)

    results["pk scoreboard"] = await _warm_count(monkeypatch, pk)

    report = {k: (len(v.pg), len(v.redis)) for k, v in results.items()}
    print("read round trips (postgresql, redis):", report)
    for name, c in results.items():
        print(name, c.pg, c.redis)
    for name, (pg_budget, redis_budget) in BUDGETS.items():
        c = results[name]
        assert len(c.pg) <= pg_budget, (name, c.pg)
        assert len(c.redis) <= redis_budget, (name, c.redis)


async def test_a_rate_limited_summary_runs_no_postgresql_statement(
    monkeypatch, servers, ctx, tenant, clock
):
    """/v1/me and /v1/me/summary make no Redis call of their own: the limits are counted on
    entering (MemberRequest(fold=False)), so a refused request costs one Redis round trip and
    no PostgreSQL statement (the read-model statement is the expensive part)."""
    from service.app import create_app
    from tests.conftest import http_client, make_settings
    from tests.test_foundation_api import assert_error

    app = create_app(make_settings(servers, rate_member_per_min=2), clock=clock, background=False)
    async with http_client(app) as c:
        _, headers = await tenant.member("rl-summary")
        assert (await c.get("/v1/me/summary", headers=headers)).status_code == 200
        assert (await c.get("/v1/me", headers=headers)).status_code == 200
        with counting_all(monkeypatch) as counts:
            refused = await c.get("/v1/me/summary", headers=headers)
            refused_me = await c.get("/v1/me", headers=headers)
        monkeypatch.undo()
    assert_error(refused, 429, "RATE_LIMITED")
    assert_error(refused_me, 429, "RATE_LIMITED")
    assert counts.pg == [], counts.pg
    assert len(counts.redis) == 2, counts.redis  # one limit script per request
