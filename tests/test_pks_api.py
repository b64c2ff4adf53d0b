"""Team PKs end to end: the "done when" run over HTTP with the dev clock, bad input, the live
board against a Python model under concurrent events, switching teams mid-PK, average with a
minimum headcount, settlement exactly once under concurrency, rebuild after Redis is lost."""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from service.app import create_app
from service.core.rng import seeded_rng
from service.pks import service as pks
from service.pks import store
from service.teams import rules as team_rules
from tests.conftest import DEFAULT_NOW, http_client, make_settings, new_tenant
from tests.pk_helpers import add_members, credit_event, deliver, member_ids, put_pk, put_team

pytestmark = pytest.mark.asyncio

ORDER_RULE = {
    "eventType": "order.paid",
    "effect": {"kind": "credit", "currency": "points", "mode": "per_unit", "amount": 1, "unit": 1},
}


def window(hours: float = 24, start: datetime = DEFAULT_NOW) -> dict[str, str]:
    return {
        "startsAt": start.isoformat(),
        "endsAt": (start + timedelta(hours=hours)).isoformat(),
    }


async def two_stores(client, tenant, n: int = 3) -> tuple[list[str], list[str]]:  # type: ignore[no-untyped-def]
    a = [f"a{i}" for i in range(n)]
    b = [f"b{i}" for i in range(n)]
    await put_team(client, tenant, "east", name="东区店")
    await put_team(client, tenant, "west", name="西区店")
    await add_members(client, tenant, "east", a)
    await add_members(client, tenant, "west", b)
    return a, b


# ---------------------------------------------------------------- done when


async def test_done_when_two_stores_a_one_day_pk_settled_with_the_dev_clock(servers):
    """As an operator: two store teams of 3, a 1-day PK on points earned, order events for
    both, the live board changes over HTTP, the clock moves past the end: each member of the
    winning team gets the reward once and a ceremony; the team board shows both teams."""
    app = create_app(make_settings(servers, dev_clock=True), rng=seeded_rng(7), background=False)
    async with http_client(app) as client:
        ctx = app.state.ctx
        tenant = await new_tenant(ctx, client)
        start = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
        r = await client.post(
            "/admin/v1/dev/clock", json={"now": start.isoformat()}, headers=tenant.admin
        )
        assert r.status_code == 200, r.text
        try:
            await _done_when(client, ctx, tenant, start)
        finally:
            await client.post("/admin/v1/dev/clock", json={}, headers=tenant.admin)


async def _done_when(client, ctx, tenant, start: datetime) -> None:  # type: ignore[no-untyped-def]
    r = await client.put("/admin/v1/rules/order-points", headers=tenant.admin, json=ORDER_RULE)
    assert r.status_code == 200, r.text
    a, b = await two_stores(client, tenant)
    await put_pk(
        client,
        tenant,
        "double11",
        name="双十一门店PK",
        teams=["east", "west"],
        metric="points",
        rewards={"winners": {"points": 100}, "mvp": {"points": 50}},
        settleDelaySeconds=0,
        **window(24, start - timedelta(minutes=1)),
    )
    board = await client.put(
        "/admin/v1/leaderboards/stores-daily",
        headers=tenant.admin,
        json={"metric": "points", "period": "daily", "scope": "team", "teamSet": "stores"},
    )
    assert board.status_code == 200, board.text
    _, h_a0 = await tenant.member("a0")

    async def order(ext: str, value: int, n: int) -> None:
        at = (start + timedelta(minutes=n)).isoformat()
        r = await client.post(
            "/admin/v1/events",
            headers=tenant.admin,
            json={
                "eventId": f"o-{ext}-{n}",
                "externalId": ext,
                "type": "order.paid",
                "occurredAt": at,
                "value": value,
            },
        )
        assert r.status_code == 200, r.text

    await client.post("/admin/v1/dev/clock", json={"advanceSeconds": 600}, headers=tenant.admin)
    await order("a0", 30, 1)
    await order("b1", 50, 2)
    await deliver(ctx)
    r = await client.get("/v1/pks/double11", headers=h_a0)
    assert r.status_code == 200, r.text
    live = r.json()
    assert live["state"] == "live" and 0 < live["timeLeftSeconds"] <= 24 * 3600
    assert [(t["key"], t["score"]) for t in live["teams"]] == [("west", 50), ("east", 30)]
    # a sum PK shows each team's size too (two stores of 3), as the client guide's example
    assert [t["headcount"] for t in live["teams"]] == [3, 3]
    assert live["me"] == {"teamKey": "east", "contribution": 30, "rankInTeam": 1}
    await order("a1", 40, 3)
    await order("a2", 10, 4)
    await deliver(ctx)
    live = (await client.get("/v1/pks/double11", headers=h_a0)).json()
    assert [(t["key"], t["score"]) for t in live["teams"]] == [("east", 80), ("west", 50)]
    east = live["teams"][0]
    assert [c["score"] for c in east["topContributors"]] == [40, 30, 10]
    assert live["me"]["rankInTeam"] == 2
    # Past the end: the settlement job (inside serve) settles it.
    await client.post(
        "/admin/v1/dev/clock", json={"advanceSeconds": 25 * 3600}, headers=tenant.admin
    )
    assert await pks.settle_due(ctx) >= 1
    await deliver(ctx)
    _, h_a0 = await tenant.member("a0")  # a day later: a fresh token
    r = await client.get("/v1/pks/double11", headers=h_a0)
    assert r.status_code == 200, r.text
    done = r.json()
    assert done["state"] == "settled" and done["winner"] == "east"
    assert done["teams"][0]["mvp"]["score"] == 40
    ids = await member_ids(ctx, tenant.id, a + b)
    async with ctx.db.connection() as conn:
        rewards = await conn.fetch(
            "SELECT member_id, delta, reason FROM ledger_entries WHERE tenant_id = $1 "
            "AND reason IN ('pk.won', 'pk.mvp') ORDER BY member_id, reason",
            tenant.id,
        )
        ceremonies = await conn.fetch(
            "SELECT member_id FROM ceremonies WHERE tenant_id = $1 AND kind = 'pkWon'", tenant.id
        )
    won = sorted(r["member_id"] for r in rewards if r["reason"] == "pk.won")
    assert won == sorted(ids[x] for x in a)
    assert all(r["delta"] == 100 for r in rewards if r["reason"] == "pk.won")
    mvps = {r["member_id"] for r in rewards if r["reason"] == "pk.mvp"}
    assert mvps == {ids["a1"], ids["b1"]}
    assert sorted(c["member_id"] for c in ceremonies) == sorted(ids[x] for x in a)
    pending = (await client.get("/v1/ceremonies/pending", headers=h_a0)).json()
    assert any(c["kind"] == "pkWon" for g in pending["groups"] for c in g["ceremonies"])
    # The settlement job runs again: nothing more.
    assert await pks.settle_due(ctx) == 0
    r = await client.post("/admin/v1/pks/double11/settle", headers=tenant.admin)
    assert r.status_code == 200 and r.json()["winner"] == "east"
    await deliver(ctx)
    async with ctx.db.connection() as conn:
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM ledger_entries WHERE tenant_id = $1 AND reason = 'pk.won'",
                tenant.id,
            )
            == 3
        )
    team_board = (
        await client.get(
            "/v1/leaderboards/stores-daily",
            params={
                "period": (start + timedelta(minutes=1))
                .astimezone(pk_rules_tz())
                .date()
                .isoformat()
            },
            headers=h_a0,
        )
    ).json()
    assert [(i["team"]["key"], i["score"]) for i in team_board["items"]] == [
        ("east", 80),
        ("west", 50),
    ]


def pk_rules_tz():  # type: ignore[no-untyped-def]
    from zoneinfo import ZoneInfo

    return ZoneInfo("Asia/Shanghai")


# ---------------------------------------------------------------- bad input


async def test_bad_pks_are_422_with_every_problem_and_nothing_saved(client, tenant):
    await put_team(client, tenant, "one")
    await put_team(client, tenant, "sq", kind="squad", teamSet="squads")
    r = await client.put(
        "/admin/v1/pks/bad",
        headers=tenant.admin,
        json={"name": "x", "teams": ["one", "ghost"], "metric": "stars", **window(-1)},
    )
    assert r.status_code == 422, r.text
    body = r.json()["error"]
    assert body["code"] == "VALIDATION_FAILED"
    got = {(p["path"], p["code"]) for p in body["details"]["problems"]}
    assert {
        ("teams[1]", "TEAM_UNKNOWN"),
        ("teams", "TEAMS_TOO_FEW"),
        ("endsAt", "WINDOW_EMPTY"),
        ("metric", "METRIC_INVALID"),
    } <= got
    mixed = await client.put(
        "/admin/v1/pks/mixed",
        headers=tenant.admin,
        json={"name": "x", "teams": ["one", "sq"], "metric": "points", **window()},
    )
    assert {p["code"] for p in mixed.json()["error"]["details"]["problems"]} == {"TEAMS_MIXED_SETS"}
    assert (await client.get("/admin/v1/pks/bad", headers=tenant.admin)).status_code == 404


async def test_overlapping_pks_of_the_same_teams_are_422_when_forbidden(client, tenant):
    await two_stores(client, tenant, 1)
    await put_pk(
        client,
        tenant,
        "first",
        name="1",
        teams=["east", "west"],
        metric="points",
        allowOverlap=False,
        **window(24),
    )
    r = await client.put(
        "/admin/v1/pks/second",
        headers=tenant.admin,
        json={
            "name": "2",
            "teamSet": "stores",
            "metric": "checkins",
            **window(24, DEFAULT_NOW + timedelta(hours=12)),
        },
    )
    assert r.status_code == 422
    [p] = r.json()["error"]["details"]["problems"]
    assert p["code"] == "PK_OVERLAP" and "first" in p["problem"]
    # After the first one's window: fine.
    await put_pk(
        client,
        tenant,
        "second",
        name="2",
        teamSet="stores",
        metric="checkins",
        **window(24, DEFAULT_NOW + timedelta(hours=24)),
    )


async def test_settle_before_the_end_is_409_and_twice_is_the_first_result(
    client, tenant, ctx, clock
):
    a, b = await two_stores(client, tenant, 1)
    await put_pk(
        client,
        tenant,
        "pk",
        name="pk",
        teams=["east", "west"],
        metric="points",
        rewards={"winners": {"points": 5}},
        **window(1),
    )
    ids = await member_ids(ctx, tenant.id, a + b)
    await credit_event(ctx, tenant.id, ids["b0"], 9, DEFAULT_NOW + timedelta(minutes=1))
    await deliver(ctx)
    early = await client.post("/admin/v1/pks/pk/settle", headers=tenant.admin)
    assert early.status_code == 409 and early.json()["error"]["code"] == "PK_NOT_ENDED"
    clock.advance(hours=2)
    first = await client.post("/admin/v1/pks/pk/settle", headers=tenant.admin)
    second = await client.post("/admin/v1/pks/pk/settle", headers=tenant.admin)
    assert first.status_code == second.status_code == 200
    f, s = first.json(), second.json()
    assert f["winner"] == s["winner"] == "west"
    assert f == s and f["rewardedMembers"] == 1
    put_again = await client.put(
        "/admin/v1/pks/pk",
        headers=tenant.admin,
        json={"name": "pk", "teams": ["east", "west"], "metric": "points", **window(1)},
    )
    assert put_again.status_code == 409 and put_again.json()["error"]["code"] == "PK_SETTLED"


# ---------------------------------------------------------------- live scores vs a model


async def test_concurrent_events_from_both_teams_equal_a_python_model(client, tenant, ctx, clock):
    """Events from members of both teams arrive concurrently; one member switches teams in
    the middle of the PK. Team totals (Redis, read over HTTP, and PostgreSQL) equal a model
    that counts each event for the team the member was in when it happened."""
    a, b = await two_stores(client, tenant, 3)
    await put_pk(
        client, tenant, "live", name="live", teams=["east", "west"], metric="points", **window(10)
    )
    ids = await member_ids(ctx, tenant.id, a + b)
    rng = random.Random(5)
    switch_at = DEFAULT_NOW + timedelta(hours=5)
    stays: dict[int, list[team_rules.Stay]] = {}
    async with ctx.db.connection() as conn:
        team_id = {
            r["key"]: r["id"]
            for r in await conn.fetch("SELECT id, key FROM teams WHERE tenant_id = $1", tenant.id)
        }
    for x in a:
        stays[ids[x]] = [(team_id["east"], DEFAULT_NOW, None)]
    for x in b:
        stays[ids[x]] = [(team_id["west"], DEFAULT_NOW, None)]
    mover = ids["a0"]
    events = []
    for _ in range(240):
        m = ids[rng.choice(a + b)]
        at = DEFAULT_NOW + timedelta(seconds=rng.randrange(0, 10 * 3600))
        events.append((m, rng.randrange(1, 50), at))
    before = [x for x in events if x[2] < switch_at]
    after = [x for x in events if x[2] >= switch_at]
    # The events of the first half happen, the member switches at switch_at, then the rest;
    # the switch is also delivered between events that are concurrent with it.
    clock.set(switch_at)
    await asyncio.gather(*[credit_event(ctx, tenant.id, m, amt, at) for m, amt, at in before])
    await add_members(client, tenant, "west", ["a0"], move=True)
    stays[mover] = [(team_id["east"], DEFAULT_NOW, switch_at), (team_id["west"], switch_at, None)]
    await asyncio.gather(*[credit_event(ctx, tenant.id, m, amt, at) for m, amt, at in after])
    await deliver(ctx)
    model: dict[int, int] = defaultdict(int)
    per_member: dict[tuple[int, int], int] = defaultdict(int)
    for m, amt, at in events:
        t = team_rules.team_at(stays[m], at)
        if t is not None:
            model[t] += amt
            per_member[(t, m)] += amt
    _, h = await tenant.member("a0")
    live = (await client.get("/v1/pks/live", headers=h)).json()
    got = {t["key"]: t["total"] for t in live["teams"]}
    assert got == {"east": model[team_id["east"]], "west": model[team_id["west"]]}
    assert live["me"]["teamKey"] == "west"
    assert live["me"]["contribution"] == per_member[(team_id["west"], mover)]
    async with ctx.db.connection() as conn:
        pg = {
            r["team_id"]: r["total"]
            for r in await conn.fetch(
                "SELECT s.team_id, s.total FROM pk_team_scores s JOIN pks p ON p.id = s.pk_id "
                "WHERE p.tenant_id = $1",
                tenant.id,
            )
        }
        contrib = {
            (r["team_id"], r["member_id"]): r["score"]
            for r in await conn.fetch(
                "SELECT c.team_id, c.member_id, c.score FROM pk_contributions c "
                "WHERE c.tenant_id = $1",
                tenant.id,
            )
        }
    assert pg == dict(model)
    assert contrib == dict(per_member)
    # The mover counted for east only before the switch, for west only after.
    assert (team_id["east"], mover) in contrib and (team_id["west"], mover) in contrib
    # A redelivery counts nothing twice.
    async with ctx.db.connection() as conn:
        rows = await conn.fetch(
            "SELECT id, txid, event_id, tenant_id, type, member_id, payload, occurred_at "
            "FROM outbox WHERE tenant_id = $1 AND type = 'points.credited'",
            tenant.id,
        )
    from service.core.outbox import event_of

    await pks.on_events(ctx, [event_of(r) for r in rows])
    again = (await client.get("/v1/pks/live", headers=h)).json()
    assert {t["key"]: t["total"] for t in again["teams"]} == got


async def test_average_with_unequal_sizes_and_the_minimum_headcount(client, tenant, ctx):
    await put_team(client, tenant, "solo")
    await put_team(client, tenant, "trio")
    await put_team(client, tenant, "big")
    await add_members(client, tenant, "solo", ["s0"])
    await add_members(client, tenant, "trio", ["t0", "t1", "t2"])
    await add_members(client, tenant, "big", [f"g{i}" for i in range(5)])
    ids = await member_ids(ctx, tenant.id, ["s0", "t0", "t1", "t2", "g0"])
    for key, min_head in (("avg3", 3), ("avg1", 1)):
        await put_pk(
            client,
            tenant,
            key,
            name=key,
            teamSet="stores",
            metric="points",
            aggregation="average",
            minHeadcount=min_head,
            **window(5),
        )
    at = DEFAULT_NOW + timedelta(minutes=1)
    await credit_event(ctx, tenant.id, ids["s0"], 90, at)
    for m in ("t0", "t1", "t2"):
        await credit_event(ctx, tenant.id, ids[m], 40, at)
    await credit_event(ctx, tenant.id, ids["g0"], 150, at)
    await deliver(ctx)
    _, h = await tenant.member("t0")
    three = (await client.get("/v1/pks/avg3", headers=h)).json()
    # solo is divided by 3 (the minimum), trio by 3, big by its 5 members.
    assert [(t["key"], t["score"], t["headcount"]) for t in three["teams"]] == [
        ("trio", 40.0, 3),
        ("solo", 30.0, 1),
        ("big", 30.0, 5),
    ]
    one = (await client.get("/v1/pks/avg1", headers=h)).json()
    assert [(t["key"], t["score"]) for t in one["teams"]] == [
        ("solo", 90.0),
        ("trio", 40.0),
        ("big", 30.0),
    ]


# ---------------------------------------------------------------- settlement and rebuild


async def test_settlement_by_job_and_operators_at_once_rewards_once(client, tenant, ctx, clock):
    a, b = await two_stores(client, tenant, 3)
    await put_pk(
        client,
        tenant,
        "race",
        name="race",
        teams=["east", "west"],
        metric="points",
        rewards={"winners": {"points": 10, "growth": 2}, "mvp": {"points": 7}},
        settleDelaySeconds=0,
        **window(1),
    )
    ids = await member_ids(ctx, tenant.id, a + b)
    await credit_event(ctx, tenant.id, ids["a1"], 20, DEFAULT_NOW + timedelta(minutes=1))
    await credit_event(ctx, tenant.id, ids["b2"], 5, DEFAULT_NOW + timedelta(minutes=2))
    await deliver(ctx)
    clock.advance(hours=2)
    answers = await asyncio.gather(
        pks.settle_due(ctx),
        *[client.post("/admin/v1/pks/race/settle", headers=tenant.admin) for _ in range(15)],
        pks.settle_due(ctx),
    )
    https = [x for x in answers if not isinstance(x, int)]
    assert all(r.status_code == 200 and r.json()["winner"] == "east" for r in https)
    assert len({r.json()["settledAt"] for r in https}) == 1
    await deliver(ctx)
    async with ctx.db.connection() as conn:
        rows = await conn.fetch(
            "SELECT member_id, currency, delta, reason FROM ledger_entries WHERE tenant_id = $1 "
            "AND reason LIKE 'pk.%'",
            tenant.id,
        )
        results = await conn.fetchval(
            "SELECT count(*) FROM pk_results r JOIN pks p ON p.id = r.pk_id WHERE p.tenant_id = $1",
            tenant.id,
        )
        won_events = await conn.fetchval(
            "SELECT count(*) FROM outbox WHERE tenant_id = $1 AND type = 'pk.won'", tenant.id
        )
    assert results == 2 and won_events == 3
    won = sorted((r["member_id"], r["currency"]) for r in rows if r["reason"] == "pk.won")
    assert won == sorted((ids[x], c) for x in a for c in ("growth", "points"))
    mvp = sorted(r["member_id"] for r in rows if r["reason"] == "pk.mvp")
    assert mvp == sorted([ids["a1"], ids["b2"]])


async def test_rebuild_after_redis_is_lost_equals_postgresql(client, tenant, ctx):
    a, b = await two_stores(client, tenant, 3)
    await put_pk(
        client, tenant, "lost", name="lost", teams=["east", "west"], metric="points", **window(5)
    )
    ids = await member_ids(ctx, tenant.id, a + b)
    for i, x in enumerate(a + b):
        await credit_event(ctx, tenant.id, ids[x], 10 + i, DEFAULT_NOW + timedelta(minutes=i))
    await deliver(ctx)
    _, h = await tenant.member("b2")
    before = (await client.get("/v1/pks/lost", headers=h)).json()
    spec = await pks.spec_of(ctx, tenant.id, "lost")
    keys = [
        store.totals_key(ctx, tenant.id, spec.id),
        store.meta_key(ctx, tenant.id, spec.id),
        *[store.contrib_key(ctx, tenant.id, spec.id, t) for t in spec.team_ids],
    ]
    # Redis lost the PK (only this PK's keys: other sessions share the server).
    await ctx.redis.delete(*keys)
    # Events while it is lost are kept in PostgreSQL and skipped in Redis.
    await credit_event(ctx, tenant.id, ids["a0"], 100, DEFAULT_NOW + timedelta(hours=1))
    await deliver(ctx)
    assert not await ctx.redis.exists(keys[1])
    n = pks.rebuilt_on_read
    after = (await client.get("/v1/pks/lost", headers=h)).json()
    assert pks.rebuilt_on_read == n + 1
    totals = {t["key"]: t["total"] for t in after["teams"]}
    assert totals["east"] == {t["key"]: t["total"] for t in before["teams"]}["east"] + 100
    assert after["me"] == before["me"]
    # `engage rebuild` gives the same view as PostgreSQL.
    await ctx.redis.delete(*keys)
    await pks.rebuild(ctx)
    async with ctx.db.connection() as conn:
        pg = {
            r["team_id"]: r["total"]
            for r in await conn.fetch(
                "SELECT team_id, total FROM pk_team_scores WHERE pk_id = $1", spec.id
            )
        }
        contrib = await conn.fetch(
            "SELECT team_id, member_id, score FROM pk_contributions WHERE pk_id = $1", spec.id
        )
    redis_totals = {
        int(m): int(s) for m, s in await ctx.redis.zrange(keys[0], 0, -1, withscores=True)
    }
    assert redis_totals == pg
    for c in contrib:
        enc = await ctx.redis.zscore(
            store.contrib_key(ctx, tenant.id, spec.id, c["team_id"]),
            pks.boards.entry_bytes(c["member_id"]),
        )
        assert pks.boards.rank_decode(enc) == c["score"]


async def test_a_broken_pk_is_parked_and_the_other_keeps_counting(client, tenant, ctx):
    a, b = await two_stores(client, tenant, 1)
    await put_pk(
        client, tenant, "good", name="g", teams=["east", "west"], metric="points", **window(5)
    )
    await put_pk(
        client, tenant, "broken", name="b", teams=["east", "west"], metric="points", **window(5)
    )
    async with ctx.db.transaction() as conn:
        await conn.execute(
            "UPDATE pks SET config = config - 'metric' WHERE tenant_id = $1 AND key = 'broken'",
            tenant.id,
        )
    ids = await member_ids(ctx, tenant.id, a + b)
    await credit_event(ctx, tenant.id, ids["a0"], 12, DEFAULT_NOW + timedelta(minutes=1))
    await deliver(ctx)
    _, h = await tenant.member("a0")
    good = (await client.get("/v1/pks/good", headers=h)).json()
    assert good["teams"][0]["total"] == 12
    ctx.caches.clear()
    r = await client.get("/v1/pks/broken", headers=h)
    assert r.status_code == 409 and r.json()["error"]["code"] == "PK_PARKED"
    # A member gets the fixed sentence, never the stored (internal) reason.
    assert r.json()["error"]["details"]["reason"] == pks.MEMBER_PARKED_REASON
    admin = (await client.get("/admin/v1/pks/broken", headers=tenant.admin)).json()
    assert admin["state"] == "parked" and "metric" in admin["parkedReason"]
    # The operator corrects it: it resumes and catches up the event it missed.
    await put_pk(
        client, tenant, "broken", name="b", teams=["east", "west"], metric="points", **window(5)
    )
    await deliver(ctx)
    ctx.caches.clear()
    fixed = (await client.get("/v1/pks/broken", headers=h)).json()
    assert fixed["teams"][0]["total"] == 12


async def test_one_redis_round_trip_per_live_read(client, tenant, ctx):
    await two_stores(client, tenant, 1)
    await put_pk(
        client, tenant, "rt", name="rt", teams=["east", "west"], metric="points", **window(5)
    )
    _, h = await tenant.member("a0")
    assert (await client.get("/v1/pks/rt", headers=h)).status_code == 200
    calls = []
    real = ctx.redis.execute_command

    limiter = ctx.scripts.ratelimit.sha

    async def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        # The rate limiter's one call per request is the request's, not the read's.
        if not (args[0] == "EVALSHA" and args[1] == limiter):
            calls.append(args[0] if args[0] != "EVALSHA" else args[1])
        return await real(*args, **kwargs)

    ctx.redis.execute_command = counting
    try:
        assert (await client.get("/v1/pks/rt", headers=h)).status_code == 200
    finally:
        ctx.redis.execute_command = real
    assert calls == [ctx.scripts.pk_read.sha]
