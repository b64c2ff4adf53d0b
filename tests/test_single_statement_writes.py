"""The one-statement operator writes (points credit, single brand event) under concurrency.

Each fires the same request (or requests competing for the same counter) many times at once
and counts the effects: balances, ledger entries, lots, cap counters and outbox rows.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.test_events import GROWTH_RULE, ORDER_RULE, ev, put_rule
from tests.test_foundation_api import assert_error
from tests.test_points_api import LADDER, adjust, db_balance

pytestmark = pytest.mark.asyncio


async def _count(ctx, sql, *args):  # type: ignore[no-untyped-def]
    async with ctx.db.connection() as conn:
        return await conn.fetchval(sql, *args)


async def _outbox(ctx, tenant_id, type_, member_id):  # type: ignore[no-untyped-def]
    return await _count(
        ctx,
        "SELECT count(*) FROM outbox WHERE tenant_id=$1 AND type=$2 AND member_id=$3",
        tenant_id,
        type_,
        member_id,
    )


async def test_forty_concurrent_credits_without_key_all_count(tenant, client, ctx):
    mid, _ = await tenant.member("ss-credit")
    rs = await asyncio.gather(*[adjust(client, tenant, "ss-credit", 3) for _ in range(40)])
    assert all(r.status_code == 200 for r in rs), [r.text for r in rs]
    # Each answer carries its own balance: 3, 6, ..., 120 in some order.
    assert sorted(r.json()["balance"] for r in rs) == list(range(3, 121, 3))
    assert await db_balance(ctx, tenant.id, mid) == 120
    assert (
        await _count(
            ctx, "SELECT count(*) FROM ledger_entries WHERE member_id=$1 AND kind='credit'", mid
        )
        == 40
    )
    assert await _count(ctx, "SELECT sum(remaining) FROM point_lots WHERE member_id=$1", mid) == 120
    assert await _outbox(ctx, tenant.id, "points.credited", mid) == 40


async def test_concurrent_credits_and_debits_keep_lots_and_balance_equal(tenant, client, ctx):
    mid, _ = await tenant.member("ss-mixed")
    assert (await adjust(client, tenant, "ss-mixed", 100)).status_code == 200
    rs = await asyncio.gather(
        *[adjust(client, tenant, "ss-mixed", 5 if i % 2 else -30) for i in range(20)]
    )
    ok_debits = sum(1 for i, r in enumerate(rs) if i % 2 == 0 and r.status_code == 200)
    assert all(
        r.json()["error"]["code"] == "INSUFFICIENT_POINTS" for r in rs if r.status_code != 200
    )
    balance = await db_balance(ctx, tenant.id, mid)
    assert balance == 100 + 10 * 5 - 30 * ok_debits >= 0
    assert (
        await _count(ctx, "SELECT sum(remaining) FROM point_lots WHERE member_id=$1", mid)
        == balance
    )
    assert (
        await _count(
            ctx, "SELECT count(*) FROM ledger_entries WHERE member_id=$1 AND kind='debit'", mid
        )
        == ok_debits
        == await _outbox(ctx, tenant.id, "points.debited", mid)
    )


async def test_same_event_thirty_times_at_once_credits_once(tenant, client, ctx):
    await put_rule(client, tenant, "order-points", ORDER_RULE)
    mid, _ = await tenant.member("ss-ev")
    rs = await asyncio.gather(
        *[
            client.post(
                "/admin/v1/events", headers=tenant.admin, json=ev("same-1", "ss-ev", value=7)
            )
            for _ in range(30)
        ]
    )
    assert all(r.status_code == 200 for r in rs), [r.text for r in rs]
    assert sum(r.json()["applied"] for r in rs) == 1
    assert sum(r.json()["duplicates"] for r in rs) == 29
    assert await db_balance(ctx, tenant.id, mid) == 7
    assert await _count(ctx, "SELECT count(*) FROM ledger_entries WHERE member_id=$1", mid) == 1
    assert await _outbox(ctx, tenant.id, "member.event", mid) == 1
    assert await _outbox(ctx, tenant.id, "points.credited", mid) == 1


async def test_same_event_for_an_unknown_member_creates_it_once(tenant, client, ctx):
    await put_rule(client, tenant, "order-points", ORDER_RULE)
    rs = await asyncio.gather(
        *[
            client.post(
                "/admin/v1/events", headers=tenant.admin, json=ev("new-1", "ss-new", value=4)
            )
            for _ in range(20)
        ]
    )
    assert {r.status_code for r in rs} <= {200, 503}, [r.text for r in rs]
    assert sum(r.json()["applied"] for r in rs if r.status_code == 200) == 1
    mid = await _count(
        ctx, "SELECT id FROM members WHERE tenant_id=$1 AND external_id='ss-new'", tenant.id
    )
    assert await db_balance(ctx, tenant.id, mid) == 4
    assert await _outbox(ctx, tenant.id, "member.joined", mid) == 1
    assert await _outbox(ctx, tenant.id, "member.event", mid) == 1


async def test_concurrent_events_share_one_daily_cap(tenant, client, ctx):
    """Twenty different events race for a cap of 100: exactly 100 is credited in all, the
    counter says 100, and every answer's amounts add up to it."""
    await client.put("/admin/v1/levels", headers=tenant.admin, json=LADDER)
    await put_rule(client, tenant, "order-points", {**ORDER_RULE, "capPerMemberPerDay": 100})
    mid, _ = await tenant.member("ss-cap")
    rs = await asyncio.gather(
        *[
            client.post(
                "/admin/v1/events", headers=tenant.admin, json=ev(f"cap-{i}", "ss-cap", value=15)
            )
            for i in range(20)
        ]
    )
    assert all(r.status_code == 200 for r in rs), [r.text for r in rs]
    amounts = [r.json()["results"][0]["effects"][0]["amount"] for r in rs]
    assert sum(amounts) == 100
    assert await db_balance(ctx, tenant.id, mid) == 100
    assert (
        await _count(ctx, "SELECT sum(amount) FROM rule_daily_usage WHERE tenant_id=$1", tenant.id)
        == 100
    )
    assert await _outbox(ctx, tenant.id, "member.event", mid) == 20


async def test_concurrent_growth_events_raise_the_level_once(tenant, client, ctx):
    await client.put("/admin/v1/levels", headers=tenant.admin, json=LADDER)
    await put_rule(client, tenant, "referral-growth", GROWTH_RULE)  # 50 growth each
    mid, _ = await tenant.member("ss-grow")
    rs = await asyncio.gather(
        *[
            client.post(
                "/admin/v1/events",
                headers=tenant.admin,
                json=ev(f"g-{i}", "ss-grow", type_="referral.joined"),
            )
            for i in range(10)
        ]
    )
    assert all(r.status_code == 200 for r in rs), [r.text for r in rs]
    assert await db_balance(ctx, tenant.id, mid, "growth") == 500
    ups = await _outbox(ctx, tenant.id, "level.up", mid)
    level = await _count(
        ctx,
        "SELECT level_index FROM member_levels WHERE tenant_id=$1 AND member_id=$2",
        tenant.id,
        mid,
    )
    assert level == 2 and ups == 2  # 0 -> 1 at 100, 1 -> 2 at 500 (LADDER)


async def test_a_short_debit_changes_nothing(tenant, client, ctx):
    mid, _ = await tenant.member("ss-short")
    await adjust(client, tenant, "ss-short", 10)
    err = assert_error(await adjust(client, tenant, "ss-short", -11), 409, "INSUFFICIENT_POINTS")
    assert err["details"] == {"balance": 10, "requested": 11}
    assert await _count(ctx, "SELECT count(*) FROM ledger_entries WHERE member_id=$1", mid) == 1
    assert await _outbox(ctx, tenant.id, "points.debited", mid) == 0


async def test_round_trips_of_a_capped_event_and_a_debit(monkeypatch, tenant, client):
    """A rule with a daily cap (or a level multiplier while a ladder exists) needs the member's
    state: one read, then the one statement. A debit by hand is one statement."""
    from tests.test_round_trips import _measure

    await client.put("/admin/v1/levels", headers=tenant.admin, json=LADDER)
    await put_rule(client, tenant, "order-points", {**ORDER_RULE, "capPerMemberPerDay": 1000})
    await tenant.member("ss-rt")
    assert (await adjust(client, tenant, "ss-rt", 500)).status_code == 200
    k = [0]

    async def event():  # type: ignore[no-untyped-def]
        k[0] += 1
        return await client.post(
            "/admin/v1/events", headers=tenant.admin, json=ev(f"rt-cap-{k[0]}", "ss-rt", value=2)
        )

    counts = await _measure(monkeypatch, event)
    assert len(counts.pg) == 2 and not counts.redis, counts

    async def debit():  # type: ignore[no-untyped-def]
        return await adjust(client, tenant, "ss-rt", -1)

    counts = await _measure(monkeypatch, debit)
    assert len(counts.pg) == 1 and not counts.redis, counts


async def test_a_failure_after_a_credit_or_event_committed_still_wakes_the_dispatcher(
    monkeypatch, tenant, client, ctx
):
    """The credit's / event's one statement committed (uow.committed()): a failure after it
    (encoding the answer) leaves the entry and its outbox rows, and the after-commit work
    (waking the dispatcher for those rows) still runs."""
    import msgspec

    from service.core.uow import unit_of_work
    from service.events import service as events
    from service.events.schemas import EventIn
    from service.points import operator as ops
    from service.points.schemas import AdjustIn

    await put_rule(client, tenant, "order-points", ORDER_RULE)
    mid, _ = await tenant.member("ss-after")
    wakes: list[int] = []
    monkeypatch.setattr(ctx.dispatcher, "wake", lambda: wakes.append(1))
    with pytest.raises(RuntimeError):
        async with unit_of_work(ctx, single_statement=True) as uow:
            data = AdjustIn(currency="points", amount=7, reason="manual.fix")
            await ops.adjust(uow, tenant.id, "k", "ss-after", data, None)
            raise RuntimeError("encoding failed")
    assert wakes == [1]
    assert await db_balance(ctx, tenant.id, mid) == 7
    event = msgspec.convert(ev("after-1", "ss-after", value=20), EventIn, strict=False)
    with pytest.raises(RuntimeError):
        async with unit_of_work(ctx, single_statement=True) as uow:
            await events.ingest_one(uow, tenant.id, event)
            raise RuntimeError("encoding failed")
    assert wakes == [1, 1]
    assert await _outbox(ctx, tenant.id, "member.event", mid) == 1
    assert await db_balance(ctx, tenant.id, mid) > 7
