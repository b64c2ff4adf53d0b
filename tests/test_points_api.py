"""The ledger over HTTP: adjustments, concurrency, bad input, history, /v1/me, levels, policy."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from service.core.uow import unit_of_work
from tests.test_foundation_api import assert_error

pytestmark = pytest.mark.asyncio


async def adjust(client, tenant, ext, amount, currency="points", key=None, reason="test"):  # type: ignore[no-untyped-def]
    headers = dict(tenant.admin)
    if key:
        headers["Idempotency-Key"] = key
    return await client.post(
        f"/admin/v1/members/{ext}/points",
        headers=headers,
        json={"currency": currency, "amount": amount, "reason": reason},
    )


async def me_of(client, tenant, ext):  # type: ignore[no-untyped-def]
    """/v1/me with a fresh token (tests move the clock past token lifetimes)."""
    _, headers = await tenant.member(ext)
    r = await client.get("/v1/me", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


async def db_balance(ctx, tenant_id, member_id, currency="points"):  # type: ignore[no-untyped-def]
    async with ctx.db.connection() as conn:
        bal = await conn.fetchval(
            "SELECT balance FROM point_accounts WHERE tenant_id=$1 AND member_id=$2 "
            "AND currency=$3",
            tenant_id,
            member_id,
            currency,
        )
        total = await conn.fetchval(
            "SELECT COALESCE(sum(delta),0) FROM ledger_entries WHERE tenant_id=$1 AND "
            "member_id=$2 AND currency=$3",
            tenant_id,
            member_id,
            currency,
        )
        lots = await conn.fetchval(
            "SELECT COALESCE(sum(remaining),0) FROM point_lots WHERE tenant_id=$1 AND "
            "member_id=$2 AND currency=$3",
            tenant_id,
            member_id,
            currency,
        )
    assert bal == total == lots, (bal, total, lots)
    return bal


async def test_credit_debit_and_me(tenant, client, ctx):
    mid, headers = await tenant.member("m-1")
    r = await adjust(client, tenant, "m-1", 300)
    assert r.status_code == 200, r.text
    assert r.json()["balance"] == 300 and r.json()["entry"]["kind"] == "credit"
    r = await adjust(client, tenant, "m-1", -120, reason="gift.redeem")
    assert r.json()["balance"] == 180 and r.json()["entry"]["delta"] == -120
    me = (await client.get("/v1/me", headers=headers)).json()
    assert me["balances"] == {"points": 180, "growth": 0, "growthEarned": 0}
    assert await db_balance(ctx, tenant.id, mid) == 180
    page = (await client.get("/v1/me/ledger", headers=headers)).json()
    assert [e["delta"] for e in page["items"]] == [-120, 300]


async def test_fifty_concurrent_credits_one_key_make_one_entry(tenant, client, ctx):
    mid, _ = await tenant.member("m-idem")
    rs = await asyncio.gather(
        *[adjust(client, tenant, "m-idem", 100, key="credit-1") for _ in range(50)]
    )
    assert {r.status_code for r in rs} <= {200, 409}
    # Clients retry the in-flight ones; all end with the same entry.
    for r in rs:
        if r.status_code == 409:
            assert r.json()["error"]["code"] == "IDEMPOTENCY_IN_FLIGHT"
    retry = await adjust(client, tenant, "m-idem", 100, key="credit-1")
    assert retry.status_code == 200
    ids = {r.json()["entry"]["id"] for r in [*rs, retry] if r.status_code == 200}
    assert len(ids) == 1
    async with ctx.db.connection() as conn:
        n = await conn.fetchval(
            "SELECT count(*) FROM ledger_entries WHERE tenant_id=$1 AND member_id=$2",
            tenant.id,
            mid,
        )
    assert n == 1
    assert await db_balance(ctx, tenant.id, mid) == 100


async def test_ledger_key_guards_even_without_http_layer(tenant, ctx):
    """Fifty transactions racing with one ledger key (no HTTP idempotency): one entry."""
    from service.points import service

    mid, _ = await tenant.member("m-race")

    async def one():  # type: ignore[no-untyped-def]
        async with unit_of_work(ctx) as uow:
            return await service.credit(
                uow, tenant.id, mid, "points", 7, reason="race", idempotency_key="same"
            )

    entries = await asyncio.gather(*[one() for _ in range(50)])
    assert len({e.id for e in entries}) == 1
    assert sum(not e.replayed for e in entries) == 1
    assert await db_balance(ctx, tenant.id, mid) == 7


async def test_two_hundred_concurrent_debits(tenant, client, ctx):
    mid, _ = await tenant.member("m-spend")
    assert (await adjust(client, tenant, "m-spend", 1000)).status_code == 200
    rs = await asyncio.gather(*[adjust(client, tenant, "m-spend", -10) for _ in range(200)])
    ok = [r for r in rs if r.status_code == 200]
    short = [r for r in rs if r.status_code == 409]
    assert len(ok) == 100 and len(short) == 100
    assert all(r.json()["error"]["code"] == "INSUFFICIENT_POINTS" for r in short)
    assert await db_balance(ctx, tenant.id, mid) == 0


async def test_bad_input_changes_nothing(tenant, client, ctx):
    mid, _ = await tenant.member("m-bad")
    await adjust(client, tenant, "m-bad", 50)
    assert_error(
        await adjust(client, tenant, "m-bad", 10, currency="gold"), 422, "VALIDATION_FAILED"
    )
    assert_error(await adjust(client, tenant, "m-bad", 0), 422, "VALIDATION_FAILED")
    r = await client.post(
        "/admin/v1/members/m-bad/points",
        headers=tenant.admin,
        json={"currency": "points", "amount": 1.5, "reason": "x"},
    )
    assert_error(r, 422, "VALIDATION_FAILED")
    err = assert_error(await adjust(client, tenant, "m-bad", -51), 409, "INSUFFICIENT_POINTS")
    assert err["details"] == {"balance": 50, "requested": 51}
    assert_error(
        await adjust(client, tenant, "m-bad", -5, currency="growth"), 422, "GROWTH_NOT_SPENDABLE"
    )
    assert await db_balance(ctx, tenant.id, mid) == 50
    async with ctx.db.connection() as conn:
        assert (
            await conn.fetchval("SELECT count(*) FROM ledger_entries WHERE member_id=$1", mid) == 1
        )


async def test_unknown_member_policy(tenant, client):
    r = await client.put(
        "/admin/v1/points/policy", headers=tenant.admin, json={"unknownMember": "reject"}
    )
    assert r.status_code == 200, r.text
    assert_error(await adjust(client, tenant, "nobody", 5), 404, "MEMBER_NOT_FOUND")
    got = (await client.get("/admin/v1/points/policy", headers=tenant.admin)).json()
    assert got["unknownMember"] == "reject" and got["expiry"]["mode"] == "never"


async def test_history_pagination_and_currency_filter(tenant, client):
    _, headers = await tenant.member("m-hist")
    for i in range(1, 6):
        await adjust(client, tenant, "m-hist", i)
        await adjust(client, tenant, "m-hist", 10 * i, currency="growth")
    p1 = (await client.get("/v1/me/ledger?currency=points&limit=2", headers=headers)).json()
    assert [e["delta"] for e in p1["items"]] == [5, 4]
    p2 = (
        await client.get(
            f"/v1/me/ledger?currency=points&limit=2&cursor={p1['nextCursor']}", headers=headers
        )
    ).json()
    assert [e["delta"] for e in p2["items"]] == [3, 2]
    p3 = (
        await client.get(
            f"/v1/me/ledger?currency=points&limit=2&cursor={p2['nextCursor']}", headers=headers
        )
    ).json()
    assert [e["delta"] for e in p3["items"]] == [1] and p3["nextCursor"] is None
    assert_error(
        await client.get("/v1/me/ledger?cursor=zzz", headers=headers), 422, "VALIDATION_FAILED"
    )
    admin = (
        await client.get("/admin/v1/members/m-hist/ledger?currency=growth", headers=tenant.admin)
    ).json()
    assert [e["delta"] for e in admin["items"]] == [50, 40, 30, 20, 10]


LADDER = {
    "levels": [
        {"name": "Bronze", "threshold": 0},
        {
            "name": "Silver",
            "threshold": 100,
            "pointsMultiplierPct": 120,
            "privileges": [{"code": "free-ship", "title": "Free shipping"}],
        },
        {"name": "Gold", "threshold": 500, "pointsMultiplierPct": 150},
    ],
}


async def test_levels_config_validation_lists_every_problem(tenant, client):
    bad = {
        "levels": [{"name": "A", "threshold": 5}, {"name": "A", "threshold": 5}],
        "validity": {"mode": "rolling"},
    }
    err = assert_error(
        await client.put("/admin/v1/levels", headers=tenant.admin, json=bad),
        422,
        "VALIDATION_FAILED",
    )
    paths = {p["path"] for p in err["details"]["problems"]}
    assert paths == {
        "levels[0].threshold",
        "levels[1].threshold",
        "levels[1].name",
        "validity.days",
    }
    assert_error(
        await client.get("/admin/v1/levels", headers=tenant.admin), 404, "LEVELS_NOT_CONFIGURED"
    )
    unknown = {"levels": [{"name": "A", "threshold": 0, "colour": "red"}]}
    assert_error(
        await client.put("/admin/v1/levels", headers=tenant.admin, json=unknown),
        422,
        "VALIDATION_FAILED",
    )


async def test_level_up_on_growth_and_me_shows_progress(tenant, client, ctx):
    r = await client.put("/admin/v1/levels", headers=tenant.admin, json=LADDER)
    assert r.status_code == 200 and r.json()["version"] == 1
    _mid, headers = await tenant.member("m-lvl")
    me = (await client.get("/v1/me", headers=headers)).json()
    assert "level" in me, me
    assert me["level"]["name"] == "Bronze" and me["nextLevel"]["growthNeeded"] == 100
    await adjust(client, tenant, "m-lvl", 120, currency="growth")
    me = (await client.get("/v1/me", headers=headers)).json()
    assert me["level"]["name"] == "Silver"
    assert me["level"]["privileges"][0]["code"] == "free-ship"
    assert me["nextLevel"] == {
        "name": "Gold",
        "threshold": 500,
        "growthNeeded": 380,
        "privileges": [],
    }
    await adjust(client, tenant, "m-lvl", 1000, currency="growth")
    me = (await client.get("/v1/me", headers=headers)).json()
    assert me["level"]["name"] == "Gold" and me["nextLevel"] is None
    async with ctx.db.connection() as conn:
        ups = await conn.fetch(
            "SELECT payload FROM outbox WHERE tenant_id=$1 AND type='level.up' ORDER BY id",
            tenant.id,
        )
    assert [(u["payload"]["from"], u["payload"]["to"]) for u in ups] == [(0, 1), (1, 2)]


async def test_rolling_validity_downgrades_one_step_per_window(tenant, client, ctx, clock):
    from service.points import service

    ladder = {**LADDER, "validity": {"mode": "rolling", "days": 30}}
    assert (
        await client.put("/admin/v1/levels", headers=tenant.admin, json=ladder)
    ).status_code == 200
    EXT = "m-roll"
    _mid, _headers = await tenant.member(EXT)
    await adjust(client, tenant, "m-roll", 600, currency="growth")
    me = await me_of(client, tenant, EXT)
    assert me["level"]["name"] == "Gold" and me["level"]["reviewAt"]
    # Window 1 passes with the growth inside it: the level is kept.
    clock.advance(days=30, seconds=1)
    await service.review_levels(ctx)
    assert (await me_of(client, tenant, EXT))["level"]["name"] == "Gold"
    # Window 2 passes with nothing earned: down one step only.
    clock.advance(days=30)
    await service.review_levels(ctx)
    assert (await me_of(client, tenant, EXT))["level"]["name"] == "Silver"
    # Earning 100 in the next window keeps Silver at the next review.
    await adjust(client, tenant, "m-roll", 100, currency="growth")
    clock.advance(days=30)
    await service.review_levels(ctx)
    assert (await me_of(client, tenant, EXT))["level"]["name"] == "Silver"
    clock.advance(days=30)
    await service.review_levels(ctx)
    assert (await me_of(client, tenant, EXT))["level"]["name"] == "Bronze"
    async with ctx.db.connection() as conn:
        downs = await conn.fetchval(
            "SELECT count(*) FROM outbox WHERE tenant_id=$1 AND type='level.down'", tenant.id
        )
    assert downs == 2


async def set_expiry(client, tenant, **expiry):  # type: ignore[no-untyped-def]
    r = await client.put("/admin/v1/points/policy", headers=tenant.admin, json={"expiry": expiry})
    assert r.status_code == 200, r.text


async def test_expiry_end_of_month_in_tenant_time_zone(tenant, client, ctx, clock):
    from service.points import service

    await set_expiry(client, tenant, mode="end_of_month")
    EXT = "m-exp"
    mid, _headers = await tenant.member(EXT)
    # 2026-11-30 23:30 in Shanghai is 15:30 UTC: still November locally.
    clock.set(datetime(2026, 11, 30, 15, 30, tzinfo=UTC))
    await adjust(client, tenant, "m-exp", 40)
    me = await me_of(client, tenant, EXT)
    assert me["expiringSoon"] == {"amount": 40, "at": "2026-11-30T16:00:00Z"}
    # 00:30 on 1 December in Shanghai (16:30 UTC on 30 Nov): December points.
    clock.set(datetime(2026, 11, 30, 16, 30, tzinfo=UTC))
    credited = (await adjust(client, tenant, "m-exp", 60)).json()
    me = await me_of(client, tenant, EXT)
    # The November lot is past its date: not counted, even before the job runs (the credit
    # wrote its expiry first, so the answer and the card agree).
    assert credited["balance"] == 60
    assert me["balances"]["points"] == 60 and me["expiringSoon"] is None
    await service.expire_due(ctx)
    assert await service.expire_due(ctx) == 0  # idempotent
    assert await db_balance(ctx, tenant.id, mid) == 60
    me = await me_of(client, tenant, EXT)
    assert me["balances"]["points"] == 60


async def test_expiry_end_of_next_year_and_fifo_spend(tenant, client, ctx, clock):
    from service.points import service

    await set_expiry(client, tenant, mode="end_of_year", yearsAfter=1)
    mid, _ = await tenant.member("m-year")
    clock.set(datetime(2026, 12, 31, 15, 59, tzinfo=UTC))  # 23:59 local, 31 Dec 2026
    first = (await adjust(client, tenant, "m-year", 30)).json()["entry"]
    clock.set(datetime(2026, 12, 31, 16, 1, tzinfo=UTC))  # 00:01 local, 1 Jan 2027
    second = (await adjust(client, tenant, "m-year", 50)).json()["entry"]
    assert first["expiresAt"] == "2027-12-31T16:00:00Z"
    assert second["expiresAt"] == "2028-12-31T16:00:00Z"
    # A spend takes the earliest-expiring lot first.
    spend = (await adjust(client, tenant, "m-year", -40)).json()["entry"]
    async with ctx.db.connection() as conn:
        alloc = await conn.fetch(
            "SELECT l.entry_id, a.amount FROM lot_allocations a JOIN point_lots l ON "
            "l.id = a.lot_id WHERE a.entry_id = $1 ORDER BY l.id",
            spend["id"],
        )
    assert [(r["entry_id"], r["amount"]) for r in alloc] == [(first["id"], 30), (second["id"], 10)]
    clock.set(datetime(2027, 12, 31, 16, 0, tzinfo=UTC))
    await service.expire_due(ctx)
    assert await db_balance(ctx, tenant.id, mid) == 40  # the first lot was spent entirely
    clock.set(datetime(2028, 12, 31, 16, 0, tzinfo=UTC))
    await service.expire_due(ctx)
    assert await db_balance(ctx, tenant.id, mid) == 0


async def test_a_spend_never_uses_points_past_their_date(tenant, client, ctx, clock):
    await set_expiry(client, tenant, mode="days", days=10)
    mid, _ = await tenant.member("m-due")
    await adjust(client, tenant, "m-due", 100)
    clock.advance(days=10)
    assert_error(await adjust(client, tenant, "m-due", -1), 409, "INSUFFICIENT_POINTS")
    # The expiry job then writes the expiry; nothing double counts.
    from service.points import service

    assert await service.expire_due(ctx) >= 100  # other tests' tenants may have due lots too
    assert await db_balance(ctx, tenant.id, mid) == 0


async def test_reversal_partial_and_refuse(tenant, client, ctx):
    mid, _ = await tenant.member("m-rev")
    credit = (await adjust(client, tenant, "m-rev", 100)).json()["entry"]
    await adjust(client, tenant, "m-rev", -70)
    r = await client.post(
        "/admin/v1/members/m-rev/points/reversals",
        headers=tenant.admin,
        json={"entryId": credit["id"], "reason": "order.refunded"},
    )
    body = r.json()
    assert r.status_code == 200 and body["entry"]["delta"] == -30
    assert body["entry"]["shortfall"] == 70 and body["balance"] == 0
    again = await client.post(
        "/admin/v1/members/m-rev/points/reversals",
        headers=tenant.admin,
        json={"entryId": credit["id"]},
    )
    assert again.json()["entry"]["id"] == body["entry"]["id"] and again.json()["replayed"]
    assert await db_balance(ctx, tenant.id, mid) == 0
    # With the refuse policy, a partly spent credit is not reversed at all.
    await client.put(
        "/admin/v1/points/policy", headers=tenant.admin, json={"reversalShortfall": "refuse"}
    )
    c2 = (await adjust(client, tenant, "m-rev", 50)).json()["entry"]
    await adjust(client, tenant, "m-rev", -1)
    err = assert_error(
        await client.post(
            "/admin/v1/members/m-rev/points/reversals",
            headers=tenant.admin,
            json={"entryId": c2["id"]},
        ),
        409,
        "REVERSAL_SHORTFALL",
    )
    assert err["details"]["available"] == 49
    assert await db_balance(ctx, tenant.id, mid) == 49
    assert_error(
        await client.post(
            "/admin/v1/members/m-rev/points/reversals",
            headers=tenant.admin,
            json={"entryId": 999999999},
        ),
        404,
        "ENTRY_NOT_FOUND",
    )


async def test_other_tenant_cannot_touch_members_or_entries(tenant, other_tenant, client, ctx):
    mid, _ = await tenant.member("shared")
    credit = (await adjust(client, tenant, "shared", 10)).json()["entry"]
    # Tenant B's "shared" is a different member; A's entry is invisible to B.
    await other_tenant.member("shared")
    r = await client.post(
        "/admin/v1/members/shared/points/reversals",
        headers=other_tenant.admin,
        json={"entryId": credit["id"]},
    )
    assert_error(r, 404, "ENTRY_NOT_FOUND")
    b_ledger = (
        await client.get("/admin/v1/members/shared/ledger", headers=other_tenant.admin)
    ).json()
    assert b_ledger["items"] == []
    assert await db_balance(ctx, tenant.id, mid) == 10
