"""One balance at one instant (issue 9, item 5).

Expiry policy ``days: 1``; 100 points credited at T; at T + 1 day + 30 s (the expiry job has
not run) 50 more are credited. Every answer that shows a balance and every check that spends
must agree on 50: the credit's answer, /v1/me, both ledger views, the debit check, a paid
wheel spin, a check-in make-up, a challenge stake and a reversal.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from service.core.uow import unit_of_work
from tests.test_challenges_api import join, put_challenge
from tests.test_checkins_api import early_member, makeup, put_campaign, sh
from tests.test_foundation_api import assert_error
from tests.test_points_api import adjust, db_balance, me_of, set_expiry
from tests.wheel_helpers import put_wheel, wheel_config

pytestmark = pytest.mark.asyncio

LATER = timedelta(days=1, seconds=30)


async def _expired_then_credited(client, tenant, clock, ext, t):  # type: ignore[no-untyped-def]
    """Credit 100 at t, then 50 at t + 1 day + 30 s; assert the credit answers 50."""
    await set_expiry(client, tenant, mode="days", days=1)
    clock.set(t)
    first = await adjust(client, tenant, ext, 100)
    assert first.status_code == 200 and first.json()["balance"] == 100
    clock.set(t + LATER)
    second = await adjust(client, tenant, ext, 50)
    assert second.status_code == 200, second.text
    assert second.json()["balance"] == 50
    assert second.json()["entry"]["balanceAfter"] == 50


async def test_issue_scenario_every_answer_agrees(tenant, client, ctx, clock):
    mid, _ = await tenant.member("bal-1")
    t = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)
    await _expired_then_credited(client, tenant, clock, "bal-1", t)
    # The member's card at the same instant.
    assert (await me_of(client, tenant, "bal-1"))["balances"]["points"] == 50
    # Both ledger views: the expiry is written before the credit, and each balanceAfter is
    # the running balance of the entries shown.
    _, headers = await tenant.member("bal-1")
    mine = (await client.get("/v1/me/ledger", headers=headers)).json()["items"]
    theirs = (await client.get("/admin/v1/members/bal-1/ledger", headers=tenant.admin)).json()[
        "items"
    ]
    assert mine == theirs
    assert [(e["kind"], e["delta"], e["balanceAfter"]) for e in mine] == [
        ("credit", 50, 50),
        ("expire", -100, 0),
        ("credit", 100, 100),
    ]
    # The debit check: 100 is more than the 50 there are; 50 is exactly enough.
    r = await adjust(client, tenant, "bal-1", -100)
    assert_error(r, 409, "INSUFFICIENT_POINTS")
    assert r.json()["error"]["details"]["balance"] == 50
    r = await adjust(client, tenant, "bal-1", -50)
    assert r.status_code == 200 and r.json()["balance"] == 0
    assert await db_balance(ctx, tenant.id, mid) == 0
    # The expiry job later finds nothing left to write for this member.
    from service.points import service

    await service.expire_due(ctx)
    assert await db_balance(ctx, tenant.id, mid) == 0
    async with ctx.db.connection() as conn:
        expiries = await conn.fetchval(
            "SELECT count(*) FROM ledger_entries WHERE tenant_id=$1 AND member_id=$2 "
            "AND kind='expire'",
            tenant.id,
            mid,
        )
        events = await conn.fetch(
            "SELECT type, payload FROM outbox WHERE tenant_id=$1 AND member_id=$2 "
            "AND type LIKE 'points.%' ORDER BY id",
            tenant.id,
            mid,
        )
    assert expiries == 1
    assert [e["type"] for e in events] == [
        "points.credited",
        "points.expired",
        "points.credited",
        "points.debited",
    ]


async def test_before_the_date_nothing_expires(tenant, client, clock):
    """The boundary: one second before the date the 100 still count."""
    await set_expiry(client, tenant, mode="days", days=1)
    t = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)
    clock.set(t)
    await adjust(client, tenant, "bal-edge", 100)
    clock.set(t + timedelta(days=1) - timedelta(seconds=1))
    r = await adjust(client, tenant, "bal-edge", 50)
    assert r.json()["balance"] == 150
    assert (await me_of(client, tenant, "bal-edge"))["balances"]["points"] == 150
    clock.set(t + timedelta(days=1))  # expires_at <= now: gone
    assert (await me_of(client, tenant, "bal-edge"))["balances"]["points"] == 50


async def test_a_credit_batch_of_several_members_and_currencies(tenant, ctx, clock):
    """apply_credits with many rows (event batches, payouts): each row's balance_after is
    the balance at that instant; growth never expires."""
    from service.points import service

    clock.set(datetime(2026, 11, 23, 4, 0, tzinfo=UTC))
    a, _ = await tenant.member("bal-a")
    b, _ = await tenant.member("bal-b")
    async with unit_of_work(ctx) as uow:
        await service.put_policy(uow, tenant.id, {"expiry": {"mode": "days", "days": 1}})
        await service.apply_credits(
            uow,
            tenant.id,
            [
                service.Credit(a, "points", 100, "x"),
                service.Credit(b, "points", 7, "x"),
                service.Credit(a, "growth", 5, "x"),
            ],
        )
    clock.advance(days=1, seconds=30)
    async with unit_of_work(ctx) as uow:
        out = await service.apply_credits(
            uow,
            tenant.id,
            [
                service.Credit(a, "points", 10, "y"),
                service.Credit(a, "growth", 1, "y"),
                service.Credit(b, "points", 3, "y"),
                service.Credit(a, "points", 20, "y"),
            ],
        )
    assert [(e.member_id, e.currency, e.balance_after) for e in out] == [
        (a, "points", 10),
        (a, "growth", 6),
        (b, "points", 3),
        (a, "points", 30),
    ]
    assert [e.id for e in out] == sorted(e.id for e in out)
    assert await db_balance(ctx, tenant.id, a) == 30
    assert await db_balance(ctx, tenant.id, a, "growth") == 6
    assert await db_balance(ctx, tenant.id, b) == 3


async def test_reversal_answers_the_balance_at_that_instant(tenant, client, ctx, clock):
    await set_expiry(client, tenant, mode="days", days=1)
    t = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)
    clock.set(t)
    await adjust(client, tenant, "bal-rev", 100)
    first = (await adjust(client, tenant, "bal-rev", 30)).json()["entry"]
    clock.set(t + timedelta(hours=12))
    second = (await adjust(client, tenant, "bal-rev", 40)).json()["entry"]
    clock.set(t + LATER)
    # The first credit's lot is past its date: reversing it takes back nothing.
    r = await client.post(
        "/admin/v1/members/bal-rev/points/reversals",
        headers=tenant.admin,
        json={"entryId": first["id"]},
    )
    body = r.json()
    assert r.status_code == 200, r.text
    assert body["entry"]["delta"] == 0 and body["entry"]["shortfall"] == 30
    assert body["balance"] == 40
    r = await client.post(
        "/admin/v1/members/bal-rev/points/reversals",
        headers=tenant.admin,
        json={"entryId": second["id"]},
    )
    assert r.json()["entry"]["delta"] == -40 and r.json()["balance"] == 0
    assert (await me_of(client, tenant, "bal-rev"))["balances"]["points"] == 0
    mid, _ = await tenant.member("bal-rev")
    assert await db_balance(ctx, tenant.id, mid) == 0


async def test_paid_wheel_spin_checks_the_same_balance(tenant, client, ctx, clock):
    await put_wheel(client, tenant, "paid", wheel_config(freeSpinsPerDay=0, costPoints=100))
    mid, _ = await tenant.member("bal-w")
    await _expired_then_credited(client, tenant, clock, "bal-w", clock.now())
    _, h = await tenant.member("bal-w")
    r = await client.post("/v1/wheels/paid/spins", headers=h)
    assert_error(r, 409, "INSUFFICIENT_POINTS")
    assert r.json()["error"]["details"]["balance"] == 50
    assert (await adjust(client, tenant, "bal-w", 50)).json()["balance"] == 100
    r = await client.post("/v1/wheels/paid/spins", headers=h)
    assert r.status_code == 200, r.text
    me = await me_of(client, tenant, "bal-w")
    # What the spin paid out (if it won points) is all there is.
    assert me["balances"]["points"] == await db_balance(ctx, tenant.id, mid)
    assert me["balances"]["points"] in (0, 10)


async def test_checkin_makeup_checks_the_same_balance(tenant, client, ctx, clock):
    await put_campaign(client, tenant, makeup={"perMonth": 2, "costPoints": 100, "windowDays": 7})
    mid = await early_member(tenant, clock, "bal-c")
    await _expired_then_credited(client, tenant, clock, "bal-c", sh(2026, 11, 20, 9))
    r = await makeup(client, tenant, "bal-c", "2026-11-19")
    assert_error(r, 409, "INSUFFICIENT_POINTS")
    assert r.json()["error"]["details"]["balance"] == 50
    await adjust(client, tenant, "bal-c", 50)
    r = await makeup(client, tenant, "bal-c", "2026-11-19")
    assert r.status_code == 200, r.text
    assert (await me_of(client, tenant, "bal-c"))["balances"]["points"] == 0
    assert await db_balance(ctx, tenant.id, mid) == 0


async def test_challenge_stake_checks_the_same_balance(tenant, client, ctx, clock):
    await put_campaign(client, tenant)
    await put_challenge(client, tenant)  # stake 100, joins close 2026-11-23 16:00 UTC
    mid, _ = await tenant.member("bal-s")
    await _expired_then_credited(
        client, tenant, clock, "bal-s", datetime(2026, 11, 22, 4, 0, tzinfo=UTC)
    )
    r = await join(client, tenant, "bal-s")
    assert_error(r, 409, "INSUFFICIENT_POINTS")
    assert r.json()["error"]["details"]["balance"] == 50
    await adjust(client, tenant, "bal-s", 50)
    r = await join(client, tenant, "bal-s")
    assert r.status_code == 200, r.text
    assert r.json()["balanceAfter"] == 0
    assert (await me_of(client, tenant, "bal-s"))["balances"]["points"] == 0
    assert await db_balance(ctx, tenant.id, mid) == 0


async def test_concurrent_credits_write_the_expiry_once(tenant, client, ctx, clock):
    """Thirty credits racing right after the date: one of them writes the expiry, and each
    answer is the balance after its own credit (5, 10, ..., 150), never counting the 100."""
    import asyncio

    mid, _ = await tenant.member("bal-race")
    await set_expiry(client, tenant, mode="days", days=1)
    t = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)
    clock.set(t)
    await adjust(client, tenant, "bal-race", 100)
    clock.set(t + LATER)
    rs = await asyncio.gather(*[adjust(client, tenant, "bal-race", 5) for _ in range(30)])
    assert all(r.status_code == 200 for r in rs)
    assert sorted(r.json()["balance"] for r in rs) == list(range(5, 151, 5))
    assert await db_balance(ctx, tenant.id, mid) == 150
    async with ctx.db.connection() as conn:
        expiries = await conn.fetch(
            "SELECT delta FROM ledger_entries WHERE tenant_id=$1 AND member_id=$2 "
            "AND kind='expire'",
            tenant.id,
            mid,
        )
    assert [r["delta"] for r in expiries] == [-100]
    assert (await me_of(client, tenant, "bal-race"))["balances"]["points"] == 150
