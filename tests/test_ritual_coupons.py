"""The ritual's welcome coupon from a wheel's coupon pool: one code per member once, distinct
codes under concurrent completions, an empty pool leaves the rest of the gift granted and the
coupon owed (with a ``coupon.owed`` event), and the public hand-out is once per member per
source under concurrency."""

from __future__ import annotations

import asyncio

import pytest

from service.core.uow import unit_of_work
from service.wheel import coupons
from tests.ritual_helpers import COVENANT, put_ritual, ritual
from tests.test_rituals_race import patient  # noqa: F401  (fixture)
from tests.wheel_helpers import prize, put_wheel, wheel_config

pytestmark = pytest.mark.asyncio

ACCEPT = {"accept": True, "covenantVersion": "v1"}


async def coupon_wheel(client, tenant, codes: int) -> None:  # type: ignore[no-untyped-def]
    await put_wheel(
        client,
        tenant,
        "lucky",
        wheel_config(
            [prize("cp", "coupon", 1), prize("thanks", "nothing", 99)],
        ),
    )
    if codes:
        r = await client.post(
            "/admin/v1/wheels/lucky/prizes/cp/codes",
            headers=tenant.admin,
            json={"codes": [f"CODE-{i:03d}" for i in range(codes)]},
        )
        assert r.status_code == 200, r.text


async def test_gift_coupon_must_name_a_coupon_pool(client, tenant):
    await coupon_wheel(client, tenant, 0)
    r = await client.put(
        "/admin/v1/rituals",
        headers=tenant.admin,
        json=ritual(gift={"points": 1, "coupon": {"wheel": "nope", "prize": "cp"}}),
    )
    assert r.status_code == 422
    got = {(p["path"], p["code"]) for p in r.json()["error"]["details"]["problems"]}
    assert got == {("gift.coupon.wheel", "WHEEL_UNKNOWN")}
    r = await client.put(
        "/admin/v1/rituals",
        headers=tenant.admin,
        json=ritual(gift={"coupon": {"wheel": "lucky", "prize": "thanks"}}),
    )
    assert {(p["path"], p["code"]) for p in r.json()["error"]["details"]["problems"]} == {
        ("gift.coupon.prize", "COUPON_PRIZE_UNKNOWN")
    }


async def test_concurrent_completions_take_distinct_codes_and_the_rest_is_owed(
    client,
    tenant,
    ctx,
    patient,  # noqa: F811
):
    await coupon_wheel(client, tenant, 20)
    await put_ritual(
        client,
        tenant,
        ritual(steps=[COVENANT], gift={"points": 100, "coupon": {"wheel": "lucky", "prize": "cp"}}),
    )
    heads = [await tenant.login(f"cp-{i}") for i in range(30)]

    async def finish(h: dict[str, str]) -> dict:
        r = await patient.post("/v1/ritual/steps/covenant", json=ACCEPT, headers=h)
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    # Every member completes twice at once (two devices): the gift and the coupon once each.
    bodies = await asyncio.gather(*(finish(h) for h in heads + heads))
    first = {b["memberNo"]: b["gift"]["coupon"] for b in bodies}
    assert len(first) == 30
    async with ctx.db.connection() as conn:
        grants = await conn.fetch(
            "SELECT member_id, state, code, reason FROM coupon_grants WHERE tenant_id = $1",
            tenant.id,
        )
        issued_codes = await conn.fetch(
            "SELECT code, member_id FROM wheel_coupon_codes WHERE tenant_id = $1 "
            "AND member_id IS NOT NULL",
            tenant.id,
        )
        credits = await conn.fetchval(
            "SELECT count(*) FROM ledger_entries WHERE tenant_id = $1 "
            "AND reason = 'ritual:welcome'",
            tenant.id,
        )
        owed_events = await conn.fetchval(
            "SELECT count(*) FROM outbox WHERE tenant_id = $1 AND type = 'coupon.owed'", tenant.id
        )
    assert len(grants) == 30 and len({g["member_id"] for g in grants}) == 30
    issued = [g for g in grants if g["state"] == "issued"]
    owed = [g for g in grants if g["state"] == "owed"]
    assert len(issued) == 20 and len(owed) == 10
    assert len({g["code"] for g in issued}) == 20  # never one code twice
    assert {(r["code"], r["member_id"]) for r in issued_codes} == {
        (g["code"], g["member_id"]) for g in issued
    }
    assert all(g["reason"] == "poolEmpty" and g["code"] is None for g in owed)
    assert owed_events == 10
    assert credits == 30  # the points of the gift: every member once, owed coupon or not
    # The member sees the outcome in the ritual.
    for h in heads[:3]:
        view = (await client.get("/v1/ritual", headers=h)).json()
        c = view["gift"]["coupon"]
        assert c["wheel"] == "lucky" and c["state"] in ("issued", "owed")
        assert (c["code"] is not None) == (c["state"] == "issued")


async def test_hand_out_is_once_per_member_per_source_under_concurrency(client, tenant, ctx):
    await coupon_wheel(client, tenant, 5)
    mid, _ = await tenant.member("solo")

    async def grant(source: str) -> coupons.Grant:
        async with unit_of_work(ctx) as uow:
            return await coupons.hand_out(uow, tenant.id, mid, "lucky", "cp", source)

    got = await asyncio.gather(*(grant("s1") for _ in range(10)))
    assert len({g.code for g in got}) == 1 and sum(g.new for g in got) == 1
    assert got[0].state == "issued" and got[0].code is not None
    other = await grant("s2")  # another source: another code
    assert other.new and other.code not in (None, got[0].code)
    async with ctx.db.connection() as conn:
        taken = await conn.fetchval(
            "SELECT count(*) FROM wheel_coupon_codes WHERE tenant_id = $1 AND member_id = $2",
            tenant.id,
            mid,
        )
    assert taken == 2
    # A pool that went away: owed with its reason, nothing raised.
    gone = await grant_unknown(ctx, tenant.id, mid)
    assert (gone.state, gone.reason, gone.code) == ("owed", "poolUnknown", None)


async def grant_unknown(ctx, tenant_id: int, mid: int) -> coupons.Grant:  # type: ignore[no-untyped-def]
    async with unit_of_work(ctx) as uow:
        return await coupons.hand_out(uow, tenant_id, mid, "ghost", "cp", "s3")
