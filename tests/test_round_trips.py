"""Round trips of the hot durable writes, counted on the real PostgreSQL and Redis clients.

A counting wrapper around asyncpg's Connection (every statement, BEGIN and COMMIT included) and
redis-py's client (one command, one pipeline or one script call each) measures what ONE request
costs in steady state (warm caches, prepared statements). Each budget below is what the request
costs today: a change that adds a round trip fails here and must say why in the budget.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import asyncpg
import pytest
import redis.asyncio.client as redis_client

from tests.test_checkins_api import CAMPAIGN
from tests.test_events import ORDER_RULE, ev
from tests.wheel_helpers import prize, put_wheel, wheel_config

pytestmark = pytest.mark.asyncio


@dataclass
class Counts:
    pg: list[str] = field(default_factory=list)
    redis: list[str] = field(default_factory=list)


_current: contextvars.ContextVar[Counts | None] = contextvars.ContextVar("rt", default=None)


def _wrap_pg(name: str):  # type: ignore[no-untyped-def]
    original = getattr(asyncpg.Connection, name)

    async def counted(self, query, *args, **kwargs):  # type: ignore[no-untyped-def]
        c = _current.get()
        if c is not None:
            c.pg.append(" ".join(str(query).split())[:60])
        return await original(self, query, *args, **kwargs)

    return original, counted


@contextmanager
def counting(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counts]:
    for name in ("execute", "executemany", "fetch", "fetchrow", "fetchval"):
        _, counted = _wrap_pg(name)
        monkeypatch.setattr(asyncpg.Connection, name, counted)
    command = redis_client.Redis.execute_command
    pipeline_execute = redis_client.Pipeline.execute

    async def counted_command(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        c = _current.get()
        if c is not None and not isinstance(self, redis_client.Pipeline):
            c.redis.append(str(args[0]))
        return await command(self, *args, **kwargs)

    async def counted_pipeline(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        c = _current.get()
        if c is not None:
            c.redis.append(f"pipeline[{len(self.command_stack)}]")
        return await pipeline_execute(self, *args, **kwargs)

    monkeypatch.setattr(redis_client.Redis, "execute_command", counted_command)
    monkeypatch.setattr(redis_client.Pipeline, "execute", counted_pipeline)
    counts = Counts()
    token = _current.set(counts)
    try:
        yield counts
    finally:
        _current.reset(token)


async def _measure(monkeypatch, call, prepare=None):  # type: ignore[no-untyped-def]
    """Counts of ``call(prepare())``, after one warm-up call of the same kind; ``prepare``
    (e.g. making a fresh member) is not counted."""
    for warm_up in (True, False):
        arg = await prepare() if prepare else None
        if warm_up:
            r = await (call(arg) if prepare else call())
            assert r.status_code == 200, r.text
            continue
        with counting(monkeypatch) as counts:
            r = await (call(arg) if prepare else call())
            assert r.status_code == 200, r.text
        monkeypatch.undo()
    return counts


# Today's budgets: (PostgreSQL statements in the request incl. BEGIN/COMMIT, Redis round trips).
# The target is (2, 1); these fail when a change ADDS a round trip.
BUDGETS = {
    "check-in": (2, 1),  # read + one statement; the rate limit folded into the calendar mark
    "free spin": (2, 1),  # read the member; one statement (the draw: one script call)
    "paid spin": (2, 1),  # the same, the ledger's debit and credit inside the statement
    "points credit": (1, 0),  # one statement: member lookup + engage_ledger_post
    "brand event": (1, 0),  # one statement: member, dedupe, caps guard, ledger, member.event
}


async def test_round_trips_of_the_hot_writes(monkeypatch, client, tenant):
    results: dict[str, Counts] = {}

    # check-in: one member, two days (the first warms the campaign cache).
    r = await client.put(
        "/admin/v1/checkin-campaigns/rt",
        headers=tenant.admin,
        json={**CAMPAIGN, "streakRewards": []},
    )
    assert r.status_code == 200, r.text
    n = [0]

    async def new_member():  # type: ignore[no-untyped-def]
        n[0] += 1
        return (await tenant.member(f"rt-checkin-{n[0]}"))[1]

    async def check_in(h):  # type: ignore[no-untyped-def]
        return await client.post("/v1/checkins/rt", headers=h)

    results["check-in"] = await _measure(monkeypatch, check_in, new_member)

    # spins: a free wheel and a paid one (points prize), fresh members each time.
    # One prize (10 points) so every spin wins the same thing whatever the draw.
    only_points = {"prizes": [prize("pts", "points", 1, value=10)], "consolationPrize": "pts"}
    await put_wheel(client, tenant, "rtfree", wheel_config(freeSpinsPerDay=1, **only_points))
    await put_wheel(
        client, tenant, "rtpaid", wheel_config(freeSpinsPerDay=0, costPoints=5, **only_points)
    )
    results["free spin"] = await _measure_fresh(monkeypatch, client, tenant, "rtfree", 0)
    results["paid spin"] = await _measure_fresh(monkeypatch, client, tenant, "rtpaid", 100)

    # a points credit by an operator.
    await tenant.member("rt-credit")

    async def credit():  # type: ignore[no-untyped-def]
        return await client.post(
            "/admin/v1/members/rt-credit/points",
            headers=tenant.admin,
            json={"amount": 5, "currency": "points", "reason": "rt"},
        )

    results["points credit"] = await _measure(monkeypatch, credit)

    # a single brand event that a rule turns into points.
    r = await client.put(
        "/admin/v1/rules/rt-order",
        headers=tenant.admin,
        json=ORDER_RULE,
    )
    assert r.status_code == 200, r.text
    k = [0]

    async def event():  # type: ignore[no-untyped-def]
        k[0] += 1
        return await client.post(
            "/admin/v1/events",
            headers=tenant.admin,
            json=ev(f"rt-{k[0]}", "rt-credit", value=3),
        )

    results["brand event"] = await _measure(monkeypatch, event)

    report = {k: (len(v.pg), len(v.redis)) for k, v in results.items()}
    print("round trips (postgresql, redis):", report)
    for name, c in results.items():
        print(name, c.pg, c.redis)
    for name, (pg_budget, redis_budget) in BUDGETS.items():
        c = results[name]
        assert len(c.pg) <= pg_budget, (name, c.pg)
        assert len(c.redis) <= redis_budget, (name, c.redis)


@contextmanager
def counting_paused() -> Iterator[None]:
    token = _current.set(None)
    try:
        yield
    finally:
        _current.reset(token)


async def _measure_fresh(monkeypatch, client, tenant, key, points):  # type: ignore[no-untyped-def]
    """A spin by a member who never spun (set up outside the count), after one warm-up spin."""

    async def member_with_points(i: int):  # type: ignore[no-untyped-def]
        ext = f"rt-{key}-{i}"
        _, hm = await tenant.member(ext)
        if points:
            r = await client.post(
                f"/admin/v1/members/{ext}/points",
                headers=tenant.admin,
                json={"amount": points, "currency": "points", "reason": "rt"},
            )
            assert r.status_code == 200, r.text
        return hm

    warm = await member_with_points(0)
    r = await client.post(f"/v1/wheels/{key}/spins", headers=warm)
    assert r.status_code == 200, r.text
    hm = await member_with_points(1)
    with counting(monkeypatch) as counts:
        r = await client.post(f"/v1/wheels/{key}/spins", headers=hm)
        assert r.status_code == 200, r.text
    monkeypatch.undo()
    return counts
