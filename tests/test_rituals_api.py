"""The entry ritual over HTTP: definition, the member flow, numbers, gift, invitations."""

from __future__ import annotations

from tests.badge_helpers import count, deliver
from tests.ritual_helpers import balance, complete, put_ritual, ritual

INVITER_RULE = {
    "eventType": "referral.joined",
    "effect": {"kind": "credit", "currency": "points", "amount": 50},
    "conditions": [{"attribute": "role", "op": "eq", "value": "inviter"}],
}


async def test_done_when_two_members_one_invited(tenant, client, ctx):
    """The issue's "done when": a 3-step ritual with a 100-point gift; two members complete it
    over HTTP, one invited by the other: No. 1 and No. 2, one entry ceremony each, the gift
    once, the inviter rewarded once by a referral.joined rule, all in one summary call."""
    await put_ritual(client, tenant)
    r = await client.put("/admin/v1/rules/invite-bonus", headers=tenant.admin, json=INVITER_RULE)
    assert r.status_code == 200, r.text

    alice = await tenant.login("alice")
    view = (await client.get("/v1/ritual", headers=alice)).json()
    assert view["status"] == "notStarted" and view["next"] == "covenant"
    assert [s["key"] for s in view["steps"]] == ["covenant", "profile", "privileges"]
    done = await complete(client, alice)
    assert done["justCompleted"] is True
    assert (done["memberNo"], done["memberNumber"]) == (1, "NO.000001")
    code = (await client.get("/v1/me/invitations", headers=alice)).json()["code"]

    r = await client.post(
        "/v1/auth/wechat",
        json={"appId": tenant.app_id, "code": "dev:bob", "inviteCode": code},
    )
    assert r.status_code == 200, r.text
    assert r.json()["invitation"]["status"] == "recorded"
    bob = {"Authorization": f"Bearer {r.json()['accessToken']}"}
    done = await complete(client, bob)
    assert (done["memberNo"], done["memberNumber"]) == (2, "NO.000002")
    # Completing again changes nothing.
    again = await complete(client, bob)
    assert again["justCompleted"] is False and again["memberNo"] == 2

    await deliver(ctx)
    assert await balance(client, alice) == 150
    assert await balance(client, bob) == 100
    for who in (alice, bob):
        p = (await client.get("/v1/ceremonies/pending", headers=who)).json()
        kinds = [c["kind"] for g in p["groups"] for c in g["ceremonies"]]
        assert kinds == ["ritual"]
    assert (
        await count(
            ctx,
            "SELECT count(*) FROM ceremonies WHERE tenant_id = $1 AND kind = 'ritual'",
            tenant.id,
        )
        == 2
    )
    assert (
        await count(
            ctx,
            "SELECT count(*) FROM ledger_entries WHERE tenant_id = $1 "
            "AND reason = 'ritual:welcome'",
            tenant.id,
        )
        == 2
    )
    inv = (await client.get("/v1/me/invitations", headers=alice)).json()
    assert (inv["invited"], inv["joined"], inv["rewardsPoints"]) == (1, 1, 50)
    assert inv["invitees"][0]["state"] == "joined"
    assert inv["invitees"][0]["maskedNickname"] == "小*"
    me = (await client.get("/v1/me", headers=bob)).json()
    assert (me["memberNo"], me["memberNumber"]) == (2, "NO.000002")
    # One launch call shows it all.
    for who, no, points in ((alice, 1, 150), (bob, 2, 100)):
        s = (await client.get("/v1/me/summary", headers=who)).json()
        assert s["member"]["memberNo"] == no
        assert s["member"]["memberNumber"] == f"NO.00000{no}"
        assert s["balances"]["points"] == points
        assert s["ritual"] == {"status": "completed", "next": None}
        assert s["pendingCeremonies"] == 1


async def test_bad_input(tenant, client, ctx):
    bad = ritual(
        steps=[
            {"kind": "covenant", "key": "a", "title": "x", "text": "t", "version": "1"},
            {"kind": "custom", "key": "a", "title": "y", "required": False},
            {
                "kind": "profile",
                "key": "p",
                "title": "z",
                "fields": ["nickname"],
                "requiredFields": ["phone"],
            },
        ],
        gift={"badge": "nope"},
    )
    r = await client.put("/admin/v1/rituals", json=bad, headers=tenant.admin)
    assert r.status_code == 422, r.text
    body = r.json()["error"]
    assert body["code"] == "RITUAL_CONFIG_INVALID"
    codes = sorted(p["code"] for p in body["details"]["problems"])
    assert codes == ["BADGE_UNKNOWN", "DUPLICATE_KEY", "FIELD_NOT_ASKED"]
    r = await client.get("/admin/v1/rituals", headers=tenant.admin)
    assert r.status_code == 404 and r.json()["error"]["code"] == "RITUAL_NOT_CONFIGURED"
    r = await client.put(
        "/admin/v1/rituals", json={**ritual(), "surprise": 1}, headers=tenant.admin
    )
    assert r.status_code == 400

    await put_ritual(client, tenant)
    m = await tenant.login("eve")
    r = await client.post("/v1/ritual/steps/privileges", json={}, headers=m)
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "RITUAL_STEP_OUT_OF_ORDER"
    assert r.json()["error"]["details"]["next"] == "covenant"
    r = await client.post("/v1/ritual/steps/nope", json={}, headers=m)
    assert r.status_code == 404 and r.json()["error"]["code"] == "RITUAL_STEP_UNKNOWN"
    r = await client.post(
        "/v1/ritual/steps/covenant", json={"accept": True, "covenantVersion": "v0"}, headers=m
    )
    assert r.status_code == 422 and r.json()["error"]["code"] == "RITUAL_STEP_INVALID"
    await complete(client, m, ("covenant",))
    r = await client.post(
        "/v1/ritual/steps/profile", json={"nickname": "E", "phone": "13800138000"}, headers=m
    )
    assert r.status_code == 422 and r.json()["error"]["code"] == "PHONE_CONSENT_REQUIRED"
    r = await client.post(
        "/v1/ritual/steps/profile",
        json={"nickname": "E", "phone": "12345", "phoneConsent": True},
        headers=m,
    )
    assert r.status_code == 422 and r.json()["error"]["code"] == "PHONE_INVALID"
    r = await client.post("/v1/ritual/steps/profile", json={}, headers=m)
    assert r.status_code == 422
    assert r.json()["error"]["details"]["problems"][0]["path"] == "nickname"
    view = (await client.get("/v1/ritual", headers=m)).json()
    assert view["status"] == "inProgress" and view["next"] == "profile"
    r = await client.post(
        "/v1/ritual/steps/profile",
        json={"nickname": "Eve", "phone": "13800138000", "phoneConsent": True},
        headers=m,
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "inProgress"
    # Nothing was granted on the way.
    assert await balance(client, m) == 0
