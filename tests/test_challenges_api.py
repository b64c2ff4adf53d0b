"""Wager challenges over HTTP: join into escrow, progress, settlement maths on the ledger."""

from __future__ import annotations

import asyncio

import pytest

from tests.test_checkins_api import checkin, put_campaign, sh
from tests.test_foundation_api import assert_error
from tests.test_points_api import adjust, db_balance

pytestmark = pytest.mark.asyncio

CHALLENGE = {
    "campaign": "daily",
    "state": "live",
    "title": "3 天打卡挑战",
    "stake": 100,
    "startDate": "2026-11-24",
    "days": 3,
    "required": 3,
    "joinOpensAt": "2026-11-20T00:00:00+08:00",
    "joinClosesAt": "2026-11-24T00:00:00+08:00",
    "platformCutPct": 10,
}


async def put_challenge(client, tenant, key="c3", **overrides):  # type: ignore[no-untyped-def]
    r = await client.put(
        f"/admin/v1/challenges/{key}", headers=tenant.admin, json={**CHALLENGE, **overrides}
    )
    assert r.status_code == 200, r.text
    return r.json()


async def join(client, tenant, ext, key="c3"):  # type: ignore[no-untyped-def]
    _, headers = await tenant.member(ext)
    return await client.post(f"/v1/challenges/{key}/entries", headers=headers)


async def settle(client, tenant, key="c3", **body):  # type: ignore[no-untyped-def]
    return await client.post(
        f"/admin/v1/challenges/{key}/settle", headers=tenant.admin, json=body or None
    )


async def my_list(client, tenant, ext):  # type: ignore[no-untyped-def]
    _, headers = await tenant.member(ext)
    r = await client.get("/v1/challenges", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


async def ledger_count(ctx, tenant_id):  # type: ignore[no-untyped-def]
    async with ctx.db.connection() as conn:
        return await conn.fetchval(
            "SELECT count(*) FROM ledger_entries WHERE tenant_id = $1", tenant_id
        )


async def setup(client, tenant, members, points=500, **overrides):  # type: ignore[no-untyped-def]
    await put_campaign(client, tenant)
    await put_challenge(client, tenant, **overrides)
    ids = {}
    for ext in members:
        ids[ext], _ = await tenant.member(ext)
        if points:
            assert (await adjust(client, tenant, ext, points)).status_code == 200
    return ids


async def test_join_finish_and_settle(tenant, client, ctx, clock):
    ids = await setup(client, tenant, ["a", "b", "c"])
    for ext in ("a", "b", "c"):
        r = await join(client, tenant, ext)
        assert r.status_code == 200, r.text
        assert r.json()["stake"] == 100 and r.json()["replayed"] is False
    again = await join(client, tenant, "a")
    assert again.status_code == 200 and again.json()["replayed"] is True
    assert await db_balance(ctx, tenant.id, ids["a"]) == 400
    admin = (await client.get("/admin/v1/challenges/c3", headers=tenant.admin)).json()
    assert (admin["entrants"], admin["escrow"], admin["stakedTotal"]) == (3, 300, 300)
    lst = await my_list(client, tenant, "a")
    assert [c["key"] for c in lst["joined"]] == ["c3"] and lst["open"] == []
    # a checks in all three days, b two of them, c never.
    for day in (24, 25, 26):
        clock.set(sh(2026, 11, day, 9))
        await checkin(client, tenant, "a")
        if day != 25:
            await checkin(client, tenant, "b")
    progress = (await my_list(client, tenant, "b"))["joined"][0]["me"]["progress"]
    assert progress == {
        "checkedDays": 2,
        "required": 3,
        "days": 3,
        "daysElapsed": 2,
        "daysLeft": 1,
        "finished": False,
        "stillPossible": False,
    }
    assert_error(await settle(client, tenant), 409, "CHALLENGE_NOT_ENDED")
    clock.set(sh(2026, 11, 27, 0, 0, 1))
    r = await settle(client, tenant)
    assert r.status_code == 200, r.text
    s = r.json()
    assert (s["outcome"], s["winners"], s["paidOut"], s["platformCut"]) == ("split", 1, 280, 20)
    assert s["stakedTotal"] == s["paidOut"] + s["platformCut"]
    # a: 500 - 100 + 280 + 3 check-ins (10, 10, 30); b: 400 + 20; c: 400.
    assert await db_balance(ctx, tenant.id, ids["a"]) == 500 - 100 + 280 + 50
    assert await db_balance(ctx, tenant.id, ids["b"]) == 400 + 20
    assert await db_balance(ctx, tenant.id, ids["c"]) == 400
    entries_before = await ledger_count(ctx, tenant.id)
    r2 = await settle(client, tenant)
    assert r2.status_code == 200 and r2.json()["replayed"] is True
    assert {k: v for k, v in r2.json().items() if k != "replayed"} == {
        k: v for k, v in s.items() if k != "replayed"
    }
    assert await ledger_count(ctx, tenant.id) == entries_before
    admin = (await client.get("/admin/v1/challenges/c3", headers=tenant.admin)).json()
    assert admin["escrow"] == 0 and admin["status"] == "settled"
    fin = (await my_list(client, tenant, "a"))["finished"][0]["me"]
    assert (fin["status"], fin["payout"]) == ("won", 280)
    assert (await my_list(client, tenant, "c"))["finished"][0]["me"]["status"] == "lost"
    async with ctx.db.connection() as conn:
        events = await conn.fetch(
            "SELECT type, member_id, payload FROM outbox WHERE tenant_id = $1 "
            "AND type LIKE 'challenge.%' ORDER BY id",
            tenant.id,
        )
    types = [(e["type"], e["member_id"]) for e in events]
    assert types.count(("challenge.joined", ids["a"])) == 1
    assert ("challenge.won", ids["a"]) in types and ("challenge.lost", ids["c"]) in types
    # The put after settlement is refused: the terms are history.
    r = await client.put("/admin/v1/challenges/c3", headers=tenant.admin, json=CHALLENGE)
    assert_error(r, 409, "CHALLENGE_SETTLED")


async def test_join_refusals_change_nothing(tenant, client, ctx, clock):
    ids = await setup(client, tenant, ["j1", "j2"], maxEntrants=1)
    await tenant.member("poor")
    assert (await join(client, tenant, "j1")).status_code == 200
    assert_error(await join(client, tenant, "j2"), 409, "CHALLENGE_FULL")
    await put_challenge(client, tenant, "c4", maxEntrants=None)
    assert_error(await join(client, tenant, "poor", "c4"), 409, "INSUFFICIENT_POINTS")
    assert_error(await join(client, tenant, "j2", "nope"), 404, "CHALLENGE_NOT_FOUND")
    await put_challenge(client, tenant, "draft", state="draft")
    err = assert_error(await join(client, tenant, "j2", "draft"), 409, "CHALLENGE_CLOSED")
    assert err["details"]["status"] == "draft"  # a draft answers its state, not 404
    clock.set(sh(2026, 11, 24, 0, 0, 0))
    assert_error(await join(client, tenant, "j2", "c4"), 409, "CHALLENGE_CLOSED")
    assert await db_balance(ctx, tenant.id, ids["j2"]) == 500
    async with ctx.db.connection() as conn:
        n = await conn.fetchval(
            "SELECT count(*) FROM challenge_entries WHERE tenant_id = $1", tenant.id
        )
        escrow = await conn.fetchval(
            "SELECT sum(escrow) FROM challenges WHERE tenant_id = $1", tenant.id
        )
    assert n == 1 and escrow == 100


async def test_concurrent_joins_respect_the_cap_and_one_entry_per_member(
    tenant, client, ctx, patient
):
    exts = [f"r{i}" for i in range(12)]
    ids = await setup(client, tenant, exts, maxEntrants=5)
    tokens = {ext: (await tenant.member(ext))[1] for ext in exts}
    # (All 36 queue on the challenge's row: through the patient app.)
    rs = await asyncio.gather(
        *[
            patient.client.post("/v1/challenges/c3/entries", headers=tokens[ext])
            for ext in exts
            for _ in range(3)
        ]
    )
    assert {r.status_code for r in rs} <= {200, 409}
    async with ctx.db.connection() as conn:
        members = await conn.fetch(
            "SELECT member_id FROM challenge_entries WHERE tenant_id = $1", tenant.id
        )
        row = await conn.fetchrow(
            "SELECT entrants, escrow FROM challenges WHERE tenant_id = $1", tenant.id
        )
    assert len(members) == 5 == len({m["member_id"] for m in members})
    assert (row["entrants"], row["escrow"]) == (5, 500)
    total = sum([await db_balance(ctx, tenant.id, ids[e]) for e in exts])
    assert total == 12 * 500 - 500


async def test_nobody_finishes_refund_or_tenant(tenant, client, ctx, clock):
    ids = await setup(client, tenant, ["n1", "n2"])
    await put_challenge(client, tenant, "keep", noWinner="tenant")
    for ext in ("n1", "n2"):
        assert (await join(client, tenant, ext)).status_code == 200
        assert (await join(client, tenant, ext, "keep")).status_code == 200
    clock.set(sh(2026, 11, 28, 9))
    from service.challenges import service

    assert await service.settle_due(ctx) >= 2  # the periodic job (other tests' ones too)
    assert await service.settle_due(ctx) == 0
    refund = (await client.get("/admin/v1/challenges/c3", headers=tenant.admin)).json()
    kept = (await client.get("/admin/v1/challenges/keep", headers=tenant.admin)).json()
    assert (refund["outcome"], refund["paidOut"], refund["platformCut"]) == ("refund", 200, 0)
    assert (kept["outcome"], kept["paidOut"], kept["platformCut"]) == ("to_tenant", 0, 200)
    for ext in ("n1", "n2"):
        assert await db_balance(ctx, tenant.id, ids[ext]) == 400
    assert (await my_list(client, tenant, "n1"))["finished"][0]["me"]["status"] in {
        "refunded",
        "lost",
    }


async def test_cancellation_refunds_everyone(tenant, client, ctx):
    ids = await setup(client, tenant, ["x1", "x2"])
    for ext in ("x1", "x2"):
        await join(client, tenant, ext)
    r = await settle(client, tenant, cancel=True)
    assert r.status_code == 200, r.text
    assert (r.json()["outcome"], r.json()["paidOut"]) == ("cancelled", 200)
    for ext in ("x1", "x2"):
        assert await db_balance(ctx, tenant.id, ids[ext]) == 500
    assert (await settle(client, tenant, cancel=True)).json()["replayed"] is True
    assert await db_balance(ctx, tenant.id, ids["x1"]) == 500


async def test_cancel_by_put_refunds(tenant, client, ctx):
    ids = await setup(client, tenant, ["p1"])
    await join(client, tenant, "p1")
    out = await put_challenge(client, tenant, state="cancelled")
    assert out["status"] == "cancelled" and out["escrow"] == 0 and out["paidOut"] == 100
    assert await db_balance(ctx, tenant.id, ids["p1"]) == 500


async def test_bad_challenge_config(tenant, client):
    await put_campaign(client, tenant)
    bad = {
        **CHALLENGE,
        "campaign": "nope",
        "required": 5,
        "joinClosesAt": "2026-11-19T00:00:00+08:00",
    }
    r = await client.put("/admin/v1/challenges/bad", headers=tenant.admin, json=bad)
    codes = {p["code"] for p in assert_error(r, 422, "VALIDATION_FAILED")["details"]["problems"]}
    assert codes == {"CAMPAIGN_NOT_FOUND", "REQUIRED_TOO_HIGH", "WINDOW_EMPTY"}
    late = {**CHALLENGE, "joinClosesAt": "2026-11-25T00:00:00+08:00"}
    r = await client.put("/admin/v1/challenges/bad", headers=tenant.admin, json=late)
    codes = {p["code"] for p in assert_error(r, 422, "VALIDATION_FAILED")["details"]["problems"]}
    assert codes == {"JOIN_AFTER_START"}
    assert_error(
        await client.get("/admin/v1/challenges/bad", headers=tenant.admin),
        404,
        "CHALLENGE_NOT_FOUND",
    )


async def test_terms_lock_once_joined(tenant, client):
    await setup(client, tenant, ["t1"])
    await join(client, tenant, "t1")
    r = await client.put(
        "/admin/v1/challenges/c3", headers=tenant.admin, json={**CHALLENGE, "stake": 1}
    )
    codes = {p["code"] for p in assert_error(r, 422, "VALIDATION_FAILED")["details"]["problems"]}
    assert codes == {"TERMS_LOCKED"}
    assert (await put_challenge(client, tenant, title="renamed"))["version"] == 2


async def test_challenges_are_walled_off(tenant, other_tenant, client):
    await setup(client, tenant, ["w1"])
    await tenant.member("w1")
    _, other = await other_tenant.member("w1")
    r = await client.post("/v1/challenges/c3/entries", headers=other)
    assert_error(r, 404, "CHALLENGE_NOT_FOUND")
    assert (await client.get("/v1/challenges", headers=other)).json() == {
        "open": [],
        "joined": [],
        "finished": [],
    }
    assert_error(await settle(client, other_tenant), 404, "CHALLENGE_NOT_FOUND")
    assert [c["key"] for c in (await my_list(client, tenant, "w1"))["open"]] == ["c3"]
