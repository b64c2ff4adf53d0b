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
    r = await client.put(
        "/admin/v1/leaderboards/inviters",
        headers=tenant.admin,
        json={"metric": "invites", "period": "allTime", "title": "推荐人数"},
    )
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
    board = (await client.get("/v1/leaderboards/inviters", headers=bob)).json()
    assert [(i["score"], i["member"]["maskedNickname"]) for i in board["items"]] == [(1, "小*")]
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
    assert body["code"] == "VALIDATION_FAILED"
    codes = sorted(p["code"] for p in body["details"]["problems"])
    assert codes == ["BADGE_UNKNOWN", "DUPLICATE_KEY", "FIELD_NOT_ASKED"]
    r = await client.get("/admin/v1/rituals", headers=tenant.admin)
    assert r.status_code == 404 and r.json()["error"]["code"] == "RITUAL_NOT_CONFIGURED"
    r = await client.put(
        "/admin/v1/rituals", json={**ritual(), "surprise": 1}, headers=tenant.admin
    )
    assert r.status_code == 422
    assert r.json()["error"]["details"]["problems"][0]["code"] == "UNKNOWN_FIELD"

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


async def test_reserved_numbers_and_manual_assignment(tenant, client, ctx):
    await put_ritual(client, tenant, ritual(steps=[ritual()["steps"][0]]))
    post = "/admin/v1/member-numbers/reservations"
    r = await client.post(post, json={"from": 1, "to": 3, "note": "founders"}, headers=tenant.admin)
    assert r.status_code == 200, r.text
    r = await client.post(post, json={"from": 8888}, headers=tenant.admin)
    assert r.status_code == 200
    r = await client.post(post, json={"from": 3, "to": 5}, headers=tenant.admin)
    assert r.status_code == 409 and r.json()["error"]["code"] == "RESERVATION_CONFLICT"
    r = await client.post(post, json={"from": 9, "to": 7}, headers=tenant.admin)
    assert r.status_code == 422 and r.json()["error"]["code"] == "VALIDATION_FAILED"
    r = await client.post(post, json={"from": 0}, headers=tenant.admin)
    assert r.status_code == 422
    assert r.json()["error"]["details"]["problems"][0]["code"] == "OUT_OF_RANGE"

    _, founder = await tenant.member("founder")
    await tenant.member("late")
    assign = "/admin/v1/members/{}/member-number"
    r = await client.post(assign.format("founder"), json={"number": 2}, headers=tenant.admin)
    assert r.status_code == 200, r.text
    assert r.json() == {"externalId": "founder", "memberNo": 2, "memberNumber": "NO.000002"}
    # A reserved number requested twice: 409, whoever asks.
    for ext in ("late", "founder"):
        r = await client.post(assign.format(ext), json={"number": 2}, headers=tenant.admin)
        assert r.status_code == 409 and r.json()["error"]["code"] == "MEMBER_NUMBER_TAKEN"
    r = await client.post(assign.format("late"), json={"number": 4}, headers=tenant.admin)
    assert r.status_code == 422 and r.json()["error"]["code"] == "MEMBER_NUMBER_NOT_RESERVED"
    r = await client.post(assign.format("founder"), json={"number": 8888}, headers=tenant.admin)
    assert r.status_code == 409 and r.json()["error"]["code"] == "MEMBER_ALREADY_NUMBERED"
    r = await client.post(assign.format("ghost"), json={"number": 1}, headers=tenant.admin)
    assert r.status_code == 404

    # The founder keeps No. 2 through the ritual; the next member gets 4 (1-3 reserved).
    done = await complete(client, founder, ("covenant",))
    assert done["memberNo"] == 2
    newcomer = await tenant.login("newcomer")
    assert (await complete(client, newcomer, ("covenant",)))["memberNo"] == 4
    listing = (await client.get(post, headers=tenant.admin)).json()
    assert listing["nextNumber"] == 5
    assert [(i["from"], i["to"], i["assigned"]) for i in listing["items"]] == [
        (1, 3, 1),
        (8888, 8888, 0),
    ]


async def test_versions_never_reask_unless_the_covenant_changes_and_the_operator_says_so(
    tenant, client, ctx
):
    first = await put_ritual(client, tenant)
    m = await tenant.login("ver-1")
    await complete(client, m)
    # A new step and a new gift: members who completed are not asked again.
    doc = ritual()
    doc["steps"] = [*doc["steps"], {"kind": "custom", "key": "story", "title": "品牌故事"}]
    doc["gift"] = {"points": 500}
    second = await put_ritual(client, tenant, doc)
    assert second["version"] == first["version"] + 1
    same = await put_ritual(client, tenant, doc)
    assert same["version"] == second["version"]  # an identical document is no new version
    view = (await client.get("/v1/ritual", headers=m)).json()
    assert view["status"] == "completed" and view["next"] == "story"
    # The covenant changes without reaskOnCovenantChange: still completed.
    doc["steps"][0] = {**doc["steps"][0], "version": "v2", "text": "新公约"}
    await put_ritual(client, tenant, doc)
    assert (await client.get("/v1/ritual", headers=m)).json()["status"] == "completed"
    # With it: the member accepts the covenant again; no second gift, the same number.
    await put_ritual(client, tenant, {**doc, "reaskOnCovenantChange": True})
    view = (await client.get("/v1/ritual", headers=m)).json()
    assert (view["status"], view["next"]) == ("reacceptRequired", "covenant")
    r = await client.post(
        "/v1/ritual/steps/covenant", json={"accept": True, "covenantVersion": "v2"}, headers=m
    )
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["memberNo"], r.json()["justCompleted"]) == (
        "completed",
        1,
        False,
    )
    assert await balance(client, m) == 100
    # A newcomer gets the current version's gift.
    n = await tenant.login("ver-2")
    for key, body in (
        ("covenant", {"accept": True, "covenantVersion": "v2"}),
        ("profile", {"nickname": "新人"}),
        ("privileges", {}),
    ):
        r = await client.post(f"/v1/ritual/steps/{key}", json=body, headers=n)
        assert r.status_code == 200, r.text
    assert r.json()["status"] == "inProgress" and r.json()["next"] == "story"
    r = await client.post("/v1/ritual/steps/story", json={}, headers=n)
    assert r.json()["justCompleted"] is True and r.json()["memberNo"] == 2
    assert await balance(client, n) == 500


async def test_tenants_are_walled_off(tenant, other_tenant, client, ctx):
    await put_ritual(client, tenant)
    await put_ritual(client, other_tenant, ritual(steps=[ritual()["steps"][0]]))
    a = await tenant.login("wall-a")
    b = await other_tenant.login("wall-b")
    assert (await complete(client, a))["memberNo"] == 1
    assert (await complete(client, b, ("covenant",)))["memberNo"] == 1  # numbers per tenant
    code_a = (await client.get("/v1/me/invitations", headers=a)).json()["code"]
    c = await other_tenant.login("wall-c")
    r = await client.post("/v1/me/inviter", json={"code": code_a}, headers=c)
    assert r.status_code == 422 and r.json()["error"]["details"]["reason"] == "unknown"
    got = (await client.get("/admin/v1/rituals", headers=other_tenant.admin)).json()
    assert [s["key"] for s in got["ritual"]["steps"]] == ["covenant"]
    r = await client.get("/admin/v1/members/wall-a", headers=other_tenant.admin)
    assert r.status_code == 404


async def test_welcome_badge_is_awarded_once_with_the_gift(tenant, client, ctx):
    from tests.badge_helpers import put_badge

    await put_badge(
        client, tenant, "newcomer", name="新会员", criteria=[{"kind": "manual"}], reward={}
    )
    await put_ritual(client, tenant, ritual(gift={"points": 100, "badge": "newcomer"}))
    m = await tenant.login("badge-1")
    await complete(client, m)
    await complete(client, m)  # again: nothing more
    await deliver(ctx)
    mine = (await client.get("/v1/me/badges", headers=m)).json()
    assert [b["key"] for b in mine["badges"]] == ["newcomer"]
    assert (
        await count(
            ctx,
            "SELECT count(*) FROM badge_audit WHERE tenant_id = $1 AND actor = 'ritual'",
            tenant.id,
        )
        == 1
    )
    p = (await client.get("/v1/ceremonies/pending", headers=m)).json()
    kinds = sorted(c["kind"] for g in p["groups"] for c in g["ceremonies"])
    assert kinds == ["badge", "ritual"]
    ritual_ceremony = next(c for g in p["groups"] for c in g["ceremonies"] if c["kind"] == "ritual")
    assert ritual_ceremony["facts"]["memberNumber"] == "NO.000001"


async def test_the_subscription_step_grants_reminder_messages(tenant, client, ctx):
    sub = {
        "kind": "subscription",
        "key": "subscribe",
        "title": "订阅提醒",
        "templateIds": ["tmpl-streak", "tmpl-prize"],
    }
    await put_ritual(client, tenant, ritual(steps=[ritual()["steps"][0], sub]))
    m = await tenant.login("sub-1")
    await complete(client, m, ("covenant",))  # the subscription step is optional
    r = await client.post(
        "/v1/ritual/steps/subscribe",
        json={"acceptedTemplateIds": ["tmpl-streak", "nope"]},
        headers=m,
    )
    assert r.status_code == 422 and r.json()["error"]["code"] == "RITUAL_STEP_INVALID"
    r = await client.post(
        "/v1/ritual/steps/subscribe", json={"acceptedTemplateIds": ["tmpl-streak"]}, headers=m
    )
    assert r.status_code == 200, r.text
    await client.post(
        "/v1/ritual/steps/subscribe", json={"acceptedTemplateIds": ["tmpl-streak"]}, headers=m
    )  # a repeat grants nothing more
    subs = (await client.get("/v1/me/subscriptions", headers=m)).json()
    granted = {t["templateId"]: t["available"] for t in subs["templates"]}
    assert granted == {"tmpl-streak": 1}
