"""Teams over HTTP: definitions, bulk membership, join with the code, leave, one team per set,
capacity under concurrency, history, my teams, tenants walled off."""

from __future__ import annotations

import asyncio

import pytest

from tests.pk_helpers import add_members, member_ids, put_team

pytestmark = pytest.mark.asyncio


async def test_team_definition_and_generated_join_code(client, tenant):
    t = await put_team(client, tenant, "sh-1", name="上海一店", capacity=10)
    assert t["version"] == 1 and t["teamSet"] == "stores" and len(t["joinCode"]) == 8
    again = await put_team(client, tenant, "sh-1", name="上海一店 (新)", capacity=10)
    assert again["version"] == 2 and again["joinCode"] == t["joinCode"]
    r = await client.get("/admin/v1/teams", headers=tenant.admin, params={"teamSet": "stores"})
    assert [x["key"] for x in r.json()["items"]] == ["sh-1"]
    bad = await client.put(
        "/admin/v1/teams/x",
        json={"name": "X", "kind": "shop", "teamSet": "s"},
        headers=tenant.admin,
    )
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "VALIDATION_FAILED"


async def test_second_team_of_a_set_is_409_and_move_keeps_history(client, tenant, ctx):
    await put_team(client, tenant, "a")
    await put_team(client, tenant, "b")
    await put_team(client, tenant, "sq", kind="squad", teamSet="squads")
    await add_members(client, tenant, "a", ["m1", "m2"])
    r = await client.post(
        "/admin/v1/teams/b/members", json={"add": ["m2", "m3"]}, headers=tenant.admin
    )
    assert r.status_code == 409 and r.json()["error"]["code"] == "TEAM_SET_TAKEN"
    assert r.json()["error"]["details"]["members"][0]["team"] == "a"
    # All or nothing: m3 did not join b either.
    b = (await client.get("/admin/v1/teams/b", headers=tenant.admin)).json()
    assert b["memberCount"] == 0
    # A squad is another set: the same member may be in one store and one squad.
    await add_members(client, tenant, "sq", ["m2"])
    moved = await add_members(client, tenant, "b", ["m2"], move=True)
    assert moved["moved"] == ["m2"] and moved["memberCount"] == 1
    hist = (await client.get("/admin/v1/teams/a/members?history=true", headers=tenant.admin)).json()
    ids = await member_ids(ctx, tenant.id, ["m2"])
    stays = [s for s in hist["items"] if s["memberId"] == ids["m2"]]
    assert len(stays) == 1 and stays[0]["leftAt"] is not None
    _, headers = await tenant.member("m2")
    mine = (await client.get("/v1/teams/mine", headers=headers)).json()["items"]
    assert sorted((t["key"], t["teamSet"]) for t in mine) == [("b", "stores"), ("sq", "squads")]


async def test_member_joins_with_the_code_and_leaves(client, tenant):
    t = await put_team(client, tenant, "inv", open=False, joinCode="HELLO123")
    await put_team(client, tenant, "other")
    _, h = await tenant.member("joiner")
    wrong = await client.post("/v1/teams/inv/members", json={"joinCode": "NOPE1"}, headers=h)
    assert wrong.status_code == 403 and wrong.json()["error"]["code"] == "TEAM_JOIN_CODE_INVALID"
    ok = await client.post("/v1/teams/inv/members", json={"joinCode": "hello123"}, headers=h)
    assert ok.status_code == 200 and ok.json()["key"] == "inv" and ok.json()["memberCount"] == 1
    again = await client.post("/v1/teams/inv/members", json={"joinCode": "HELLO123"}, headers=h)
    assert again.status_code == 200 and again.json()["memberCount"] == 1
    second = await client.post(
        "/v1/teams/other/members",
        json={"joinCode": (await _code(client, tenant, "other"))},
        headers=h,
    )
    assert second.status_code == 409 and second.json()["error"]["code"] == "TEAM_SET_TAKEN"
    left = await client.delete("/v1/teams/inv/members/me", headers=h)
    assert left.status_code == 200 and left.json() == {"teamKey": "inv", "left": True}
    assert (await client.get("/v1/teams/mine", headers=h)).json()["items"] == []
    assert t["joinCode"] == "HELLO123"


async def _code(client, tenant, key: str) -> str:  # type: ignore[no-untyped-def]
    return (await client.get(f"/admin/v1/teams/{key}", headers=tenant.admin)).json()["joinCode"]


async def test_a_full_team_is_409_even_when_many_join_at_once(client, tenant, ctx):
    await put_team(client, tenant, "small", open=True, capacity=3)
    heads = [(await tenant.member(f"racer{i}"))[1] for i in range(12)]
    answers = await asyncio.gather(
        *[client.post("/v1/teams/small/members", json={}, headers=h) for h in heads]
    )
    codes = sorted(r.status_code for r in answers)
    assert codes.count(200) == 3
    assert all(r.json()["error"]["code"] == "TEAM_FULL" for r in answers if r.status_code == 409)
    async with ctx.db.connection() as conn:
        n = await conn.fetchval(
            "SELECT count(*) FROM team_memberships m JOIN teams t ON t.id = m.team_id "
            "WHERE t.tenant_id = $1 AND t.key = 'small' AND m.left_at IS NULL",
            tenant.id,
        )
    assert n == 3


async def test_one_member_racing_into_two_teams_of_a_set_joins_one(client, tenant, ctx):
    await put_team(client, tenant, "x", open=True)
    await put_team(client, tenant, "y", open=True)
    _, h = await tenant.member("racer")
    answers = await asyncio.gather(
        *[client.post(f"/v1/teams/{k}/members", json={}, headers=h) for k in ("x", "y") * 10]
    )
    assert {r.status_code for r in answers} <= {200, 409}
    mine = (await client.get("/v1/teams/mine", headers=h)).json()["items"]
    assert len(mine) == 1


async def test_tenants_never_see_each_others_teams(client, tenant, other_tenant):
    await put_team(client, tenant, "private")
    r = await client.get("/admin/v1/teams/private", headers=other_tenant.admin)
    assert r.status_code == 404 and r.json()["error"]["code"] == "TEAM_NOT_FOUND"
    _, h = await other_tenant.member("nosy")
    r = await client.post("/v1/teams/private/members", json={}, headers=h)
    assert r.status_code == 404
