"""The wheel over HTTP: config and validation, spins, bad input, claims, audit, isolation."""

from __future__ import annotations

import asyncio
import hashlib

import pytest

from service.wheel import rules, store
from service.wheel import service as wheel
from tests.test_foundation_api import assert_error
from tests.wheel_helpers import prize, put_wheel, wheel_config, wheel_id, wins_in_db

pytestmark = pytest.mark.asyncio


async def test_operator_creates_wheel_member_spins_and_sees_prize(client, tenant, ctx):
    out = await put_wheel(client, tenant, "w1", wheel_config())
    assert out["version"] == 1 and out["status"] == "open" and out["seed"] is None
    assert len(out["seedCommitment"]) == 64
    mid, h = await tenant.member("alice")
    view = (await client.get("/v1/wheels/w1", headers=h)).json()
    assert view["seedCommitment"] == out["seedCommitment"]
    assert view["freeSpinsLeftToday"] == 1
    assert [p["slotIndex"] for p in view["prizes"]] == [0, 1, 2]
    r = await client.post("/v1/wheels/w1/spins", headers=h)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["spinNo"] == 1 and body["free"] is True and body["layoutVersion"] == 1
    assert body["slotIndex"] == body["prize"]["slotIndex"]
    async with ctx.db.connection() as conn:
        n = await conn.fetchval(
            "SELECT count(*) FROM wheel_draws WHERE tenant_id=$1 AND member_id=$2",
            tenant.id,
            mid,
        )
    assert n == 1


async def _spin(client, h, key="w", idem=None):  # type: ignore[no-untyped-def]
    headers = dict(h)
    if idem:
        headers["Idempotency-Key"] = idem
    return await client.post(f"/v1/wheels/{key}/spins", headers=headers)


async def _draw_count(ctx, tenant_id, key):  # type: ignore[no-untyped-def]
    async with ctx.db.connection() as conn:
        return await conn.fetchval(
            "SELECT count(*) FROM wheel_draws d JOIN wheels w ON w.id = d.wheel_id "
            "WHERE w.tenant_id=$1 AND w.key=$2",
            tenant_id,
            key,
        )


async def test_invalid_config_lists_every_problem_and_changes_nothing(client, tenant):
    await put_wheel(client, tenant, "w", wheel_config())
    bad = wheel_config(
        [prize("a", "points", 0, value=5, totalStock=-3), prize("b", "nothing", 0)],
        consolationPrize=None,
    )
    r = await client.put("/admin/v1/wheels/w", headers=tenant.admin, json=bad)
    err = assert_error(r, 422, "VALIDATION_FAILED")
    paths = {p["path"] for p in err["details"]["problems"]}
    assert {"prizes", "prizes[0].totalStock", "consolationPrize"} <= paths
    got = (await client.get("/admin/v1/wheels/w", headers=tenant.admin)).json()
    assert got["version"] == 1 and [p["key"] for p in got["prizes"]] == ["big", "pts", "thanks"]
    # Unknown fields are refused too (operator input is strict).
    r = await client.put(
        "/admin/v1/wheels/w", headers=tenant.admin, json={**wheel_config(), "colour": "red"}
    )
    assert r.status_code == 422


async def test_versions_and_layout_versions(client, tenant):
    v1 = await put_wheel(client, tenant, "w", wheel_config())
    v2 = await put_wheel(client, tenant, "w", wheel_config(costPoints=5))
    assert (v2["version"], v2["layoutVersion"]) == (2, 1)
    assert v2["seedCommitment"] == v1["seedCommitment"]
    ps = wheel_config()["prizes"]
    v3 = await put_wheel(client, tenant, "w", wheel_config([ps[1], ps[0], ps[2]]))
    assert (v3["version"], v3["layoutVersion"]) == (3, 2)
    stats = {p["key"]: p for p in v3["prizes"]}
    assert stats["big"]["nominalProbabilityPct"] == 1.0
    assert stats["big"]["probabilityAfterStockOutPct"] == 0.0
    assert stats["big"]["remaining"] == 1 and stats["big"]["issued"] == 0
    assert abs(stats["pts"]["probabilityAfterStockOutPct"] - 100 * 30 / 99) < 1e-3


async def test_bad_input_codes(client, tenant, ctx):
    _, h = await tenant.member("bob")
    # Wheel not live: a draft is invisible, an upcoming one refuses spins.
    await put_wheel(client, tenant, "draft", wheel_config(state="draft"))
    err = assert_error(await client.get("/v1/wheels/draft", headers=h), 409, "WHEEL_NOT_LIVE")
    assert err["details"]["status"] == "draft"
    assert_error(await _spin(client, h, "draft"), 409, "WHEEL_NOT_LIVE")
    await put_wheel(client, tenant, "later", wheel_config(startsAt="2026-12-01T00:00:00+08:00"))
    assert_error(await _spin(client, h, "later"), 409, "WHEEL_NOT_LIVE")
    # Ineligible level.
    await put_wheel(client, tenant, "vip", wheel_config(minLevel=2))
    view = (await client.get("/v1/wheels/vip", headers=h)).json()
    assert view["eligible"] is False
    assert_error(await _spin(client, h, "vip"), 403, "WHEEL_LEVEL_TOO_LOW")
    # Not enough points: no draw at all.
    await put_wheel(client, tenant, "paid", wheel_config(freeSpinsPerDay=0, costPoints=50))
    assert_error(await _spin(client, h, "paid"), 409, "INSUFFICIENT_POINTS")
    assert await _draw_count(ctx, tenant.id, "paid") == 0
    # Caps: one free spin a day and no paid spins.
    await put_wheel(client, tenant, "w", wheel_config(maxSpinsPerCampaign=5))
    assert (await _spin(client, h, "w")).status_code == 200
    assert_error(await _spin(client, h, "w"), 409, "WHEEL_NO_SPINS_LEFT")
    await put_wheel(client, tenant, "capped", wheel_config(freeSpinsPerDay=9, maxSpinsPerDay=1))
    assert (await _spin(client, h, "capped")).status_code == 200
    assert_error(await _spin(client, h, "capped"), 409, "WHEEL_CAP_REACHED")
    assert_error(await _spin(client, h, "missing"), 404, "WHEEL_NOT_FOUND")
    for key in ("vip", "later", "draft"):
        assert await _draw_count(ctx, tenant.id, key) == 0


async def test_spin_replays_with_idempotency_key_and_pays_points(client, tenant, ctx):
    await put_wheel(
        client,
        tenant,
        "w",
        wheel_config([prize("pts", "points", 1, value=25), prize("thanks", "nothing", 0)]),
    )
    mid, h = await tenant.member("carol")
    r1 = await _spin(client, h, idem="spin-1")
    r2 = await _spin(client, h, idem="spin-1")
    assert r1.status_code == r2.status_code == 200
    assert r2.headers.get("Idempotent-Replayed") == "true"
    assert r1.json()["replayed"] is False
    assert r2.json() == {**r1.json(), "replayed": True}  # the body says so too, like check-ins
    assert await _draw_count(ctx, tenant.id, "w") == 1
    me = (await client.get("/v1/me", headers=h)).json()
    assert me["balances"]["points"] == 25
    async with ctx.db.connection() as conn:
        types = await conn.fetch(
            "SELECT type FROM outbox WHERE tenant_id=$1 AND member_id=$2 "
            "AND type <> 'member.joined' ORDER BY id",
            tenant.id,
            mid,
        )
    assert [t["type"] for t in types] == ["points.credited", "prize.won", "wheel.spun"]
    prizes = (await client.get("/v1/me/prizes", headers=h)).json()["items"]
    assert [(p["prizeKey"], p["state"], p["value"]) for p in prizes] == [("pts", "issued", 25)]


async def test_coupon_pool_issues_each_code_once(client, tenant, ctx):
    await put_wheel(
        client,
        tenant,
        "cp",
        wheel_config(
            [prize("coupon", "coupon", 1), prize("thanks", "nothing", 0)],
            freeSpinsPerDay=5,
        ),
    )
    r = await client.post(
        "/admin/v1/wheels/cp/prizes/coupon/codes",
        headers=tenant.admin,
        json={"codes": ["A1", "A2", "A3", "A2"]},
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"added": 3, "duplicates": 1, "codes": 3, "codesLeft": 3}
    hs = [(await tenant.member(f"cp{i}"))[1] for i in range(5)]
    rs = await asyncio.gather(*(_spin(client, h, "cp") for h in hs))
    got = [r.json()["prize"] for r in rs]
    codes = [p["couponCode"] for p in got if p["key"] == "coupon"]
    # Three codes: three coupons, each a different code; the pool ran dry for the rest.
    assert sorted(codes) == ["A1", "A2", "A3"]
    assert sum(p["key"] == "thanks" for p in got) == 2
    stats = (await client.get("/admin/v1/wheels/cp", headers=tenant.admin)).json()["prizes"]
    assert stats[0]["couponCodesLeft"] == 0
    r = await client.post(
        "/admin/v1/wheels/cp/prizes/thanks/codes", headers=tenant.admin, json={"codes": ["x"]}
    )
    assert_error(r, 404, "PRIZE_NOT_FOUND")


async def test_done_when_big_prize_claimed_shipped_and_every_draw_verified(
    client, tenant, other_tenant, ctx, clock
):
    """The issue's acceptance: a big prize of stock 1 and small prizes; members spin over
    HTTP until it is gone; claim it, ship it; end the wheel; verify every draw."""
    cfg = wheel_config(
        [
            prize("phone", "physical", 5, totalStock=1, name="手机", imageUrl="https://x/p.png"),
            prize("p10", "points", 30, value=10),
            prize("g5", "growth", 15, value=5),
            prize("thanks", "nothing", 50),
        ],
        freeSpinsPerDay=3,
        showStock=True,
    )
    await put_wheel(client, tenant, "sale", cfg)
    winner = None
    spun = 0
    for i in range(200):
        mid, h = await tenant.member(f"fan{i}")
        for _ in range(3):
            r = await _spin(client, h, "sale")
            assert r.status_code == 200, r.text
            spun += 1
            if r.json()["prize"]["key"] == "phone":
                assert winner is None
                winner = (mid, h, r.json()["prize"]["awardId"])
        if winner and i > 20:
            break
    assert winner is not None
    view = (await client.get("/v1/wheels/sale", headers=winner[1])).json()
    assert view["prizes"][0]["remaining"] == 0 and view["prizes"][1]["remaining"] is None
    admin = (await client.get("/admin/v1/wheels/sale", headers=tenant.admin)).json()
    assert admin["prizes"][0]["remaining"] == 0 and admin["prizes"][0]["issued"] == 1
    assert admin["prizes"][0]["remainingInRedis"] == 0 and admin["spins"] == spun

    mid, h, award_id = winner
    prizes = (await client.get("/v1/me/prizes", headers=h)).json()["items"]
    phone = next(p for p in prizes if p["prizeKey"] == "phone")
    assert phone["state"] == "won" and phone["id"] == award_id
    claim = {
        "name": "张三",
        "phone": "13800138000",
        "address": {"province": "广东省", "city": "深圳市", "detail": "南山区科技园 8 号"},
    }
    # Malformed address: 422, and still unclaimed.
    bad = {**claim, "address": {"province": "广东省", "city": "", "detail": "x"}}
    r = await client.post(f"/v1/me/prizes/{award_id}/claim", headers=h, json=bad)
    assert r.status_code == 422, r.text
    r = await client.post(
        f"/v1/me/prizes/{award_id}/claim", headers=h, json={**claim, "phone": "12345"}
    )
    assert r.status_code == 422
    # Someone else's prize, or another tenant's member: 404.
    _, other_h = await tenant.member("not-the-winner")
    r = await client.post(f"/v1/me/prizes/{award_id}/claim", headers=other_h, json=claim)
    assert_error(r, 404, "PRIZE_NOT_FOUND")
    _, foreign_h = await other_tenant.member("fan0")
    r = await client.post(f"/v1/me/prizes/{award_id}/claim", headers=foreign_h, json=claim)
    assert_error(r, 404, "PRIZE_NOT_FOUND")
    # Shipping before the claim is refused.
    ship = {"carrier": "SF", "trackingNo": "SF123"}
    r = await client.post(
        f"/admin/v1/wheels/sale/awards/{award_id}/ship", headers=tenant.admin, json=ship
    )
    assert_error(r, 409, "PRIZE_NOT_SHIPPABLE")
    r = await client.post(f"/v1/me/prizes/{award_id}/claim", headers=h, json=claim)
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "claimed" and r.json()["contact"]["phone"] == "138****8000"
    r = await client.post(f"/v1/me/prizes/{award_id}/claim", headers=h, json=claim)
    assert_error(r, 409, "PRIZE_NOT_CLAIMABLE")
    # The export masks; the shipping read shows the address; another tenant sees nothing.
    listed = (
        await client.get("/admin/v1/wheels/sale/awards?status=claimed", headers=tenant.admin)
    ).json()["items"]
    assert len(listed) == 1 and listed[0]["contact"]["name"] == "张*"
    assert "科技园" not in str(listed)
    full = (
        await client.get(f"/admin/v1/wheels/sale/awards/{award_id}", headers=tenant.admin)
    ).json()
    assert full["contact"]["address"]["detail"] == "南山区科技园 8 号"
    r = await client.get(f"/admin/v1/wheels/sale/awards/{award_id}", headers=other_tenant.admin)
    assert_error(r, 404, "WHEEL_NOT_FOUND")
    r = await client.post(
        f"/admin/v1/wheels/sale/awards/{award_id}/ship", headers=tenant.admin, json=ship
    )
    assert r.status_code == 200 and r.json()["state"] == "shipped"
    prizes = (await client.get("/v1/me/prizes", headers=h)).json()["items"]
    assert next(p for p in prizes if p["prizeKey"] == "phone")["state"] == "shipped"

    # Before the end the seed is secret; the operator ends the wheel, the seed is revealed.
    draws = (await client.get("/admin/v1/wheels/sale/draws", headers=tenant.admin)).json()
    assert draws["seed"] is None
    await put_wheel(client, tenant, "sale", {**cfg, "state": "ended"})
    view = (await client.get("/v1/wheels/sale", headers=h)).json()
    assert view["status"] == "ended" and view["seed"] is not None
    seed = bytes.fromhex(view["seed"])
    assert hashlib.sha256(seed).hexdigest() == view["seedCommitment"]
    # Anyone can recompute every draw from the audit log and the seed, with the rules alone.
    items, cursor = [], None
    while True:
        page = (
            await client.get(
                "/admin/v1/wheels/sale/draws",
                headers=tenant.admin,
                params={"limit": 100, **({"cursor": cursor} if cursor else {})},
            )
        ).json()
        for d in page["items"]:
            table = rules.table_from_config(page["tables"][str(d["tableVersion"])])
            assert (
                rules.verify_draw(
                    table,
                    seed,
                    d["memberId"],
                    d["spinNo"],
                    d["stockSeen"],
                    d["prizeKey"],
                    d["randomValue"],
                    d["weightTotal"],
                )
                == []
            ), d
            items.append(d)
        cursor = page["nextCursor"]
        if not cursor:
            break
    assert len(items) == spun
    report = await wheel.verify(ctx, tenant.id, "sale")
    assert report.ok and report.draws == spun and report.revealed
    # A tampered log entry is caught.
    async with ctx.db.connection() as conn:
        await conn.execute(
            "UPDATE wheel_draws SET prize_key='phone' WHERE id=$1",
            # Any draw that did not win the phone (which one won depends on the RNG's state).
            next(d["id"] for d in items if d["prizeKey"] != "phone"),
        )
    assert not (await wheel.verify(ctx, tenant.id, "sale")).ok
    # An ended wheel (public seed) cannot be reopened.
    r = await client.put("/admin/v1/wheels/sale", headers=tenant.admin, json=cfg)
    assert_error(r, 422, "VALIDATION_FAILED")
    assert_error(await _spin(client, h, "sale"), 409, "WHEEL_NOT_LIVE")


async def test_tenant_isolation(client, tenant, other_tenant, ctx):
    await put_wheel(client, tenant, "w", wheel_config())
    _, foreign = await other_tenant.member("x")
    assert_error(await client.get("/v1/wheels/w", headers=foreign), 404, "WHEEL_NOT_FOUND")
    assert_error(await _spin(client, foreign, "w"), 404, "WHEEL_NOT_FOUND")
    for path in ("/admin/v1/wheels/w", "/admin/v1/wheels/w/draws", "/admin/v1/wheels/w/awards"):
        assert_error(await client.get(path, headers=other_tenant.admin), 404, "WHEEL_NOT_FOUND")
    r = await client.post(
        "/admin/v1/wheels/w/simulate", headers=other_tenant.admin, json={"draws": 10}
    )
    assert_error(r, 404, "WHEEL_NOT_FOUND")
    # The same key in another tenant is another wheel with its own seed.
    mine = (await client.get("/admin/v1/wheels/w", headers=tenant.admin)).json()
    theirs = await put_wheel(client, other_tenant, "w", wheel_config())
    assert theirs["seedCommitment"] != mine["seedCommitment"] and theirs["spins"] == 0
    assert await _draw_count(ctx, other_tenant.id, "w") == 0


async def test_simulate_and_rebuild(client, tenant, ctx):
    await put_wheel(
        client,
        tenant,
        "sim",
        wheel_config(
            [
                prize("big", "physical", 100, totalStock=3),
                prize("pts", "points", 400, value=1),
                prize("thanks", "nothing", 500),
            ]
        ),
    )
    r = await client.post(
        "/admin/v1/wheels/sim/simulate", headers=tenant.admin, json={"draws": 5000}
    )
    assert r.status_code == 200, r.text
    got = {i["key"]: i["count"] for i in r.json()["items"]}
    assert got["big"] == 3 and sum(got.values()) == 5000
    # Once the 3 big prizes are gone (redraw), pts is 400 / 900 = 44.4%: about 0.7 points of
    # standard deviation at 5000 draws, so the bound allows several either side.
    assert 0.40 < got["pts"] / 5000 < 0.49
    wid = await wheel_id(ctx, tenant.id, "sim")
    for i in range(12):
        _, h = await tenant.member(f"sim{i}")
        assert (await _spin(client, h, "sim")).status_code == 200
    won = await wins_in_db(ctx, wid, "big")
    await store.drop(ctx, tenant.id, wid)
    assert await store.counts(ctx, tenant.id, wid) is None
    report = await wheel.rebuild(ctx)
    assert report["wheels"] >= 1
    assert (await store.counts(ctx, tenant.id, wid))["i:big"] == won  # type: ignore[index]


async def test_per_member_cap_makes_the_prize_unavailable_to_that_member(client, tenant, ctx):
    await put_wheel(
        client,
        tenant,
        "cap1",
        wheel_config(
            [prize("mug", "physical", 1000, perMemberCap=1), prize("thanks", "nothing", 1)],
            freeSpinsPerDay=6,
        ),
    )
    _, h = await tenant.member("collector")
    got = [(await _spin(client, h, "cap1")).json()["prize"]["key"] for _ in range(6)]
    assert got.count("mug") == 1 and got[0] == "mug"
    assert (await wheel.verify(ctx, tenant.id, "cap1")).ok
