"""Operator lists: every config kind pages the same way; API keys; member lookup."""

from __future__ import annotations

import asyncio

from service.core import tenancy
from service.operator import configs
from tests.conftest import DEFAULT_NOW, new_tenant
from tests.wheel_helpers import put_wheel, wheel_config


async def test_wheels_list_pages_and_filters_by_state(client, tenant, other_tenant) -> None:
    for i in range(5):
        await put_wheel(client, tenant, f"w{i}", wheel_config(state="draft" if i < 2 else "live"))
    await put_wheel(client, other_tenant, "theirs", wheel_config())
    r = await client.get("/admin/v1/wheels?limit=2", headers=tenant.admin)
    assert r.status_code == 200, r.text
    page = r.json()
    assert [i["key"] for i in page["items"]] == ["w4", "w3"]
    assert page["items"][0]["state"] == "open" and page["items"][0]["kind"] == "wheels"
    seen = [i["key"] for i in page["items"]]
    while page["nextCursor"]:
        page = (
            await client.get(
                f"/admin/v1/wheels?limit=2&cursor={page['nextCursor']}", headers=tenant.admin
            )
        ).json()
        seen += [i["key"] for i in page["items"]]
    assert seen == ["w4", "w3", "w2", "w1", "w0"]  # never another tenant's "theirs"
    drafts = (await client.get("/admin/v1/wheels?status=draft", headers=tenant.admin)).json()
    assert [i["key"] for i in drafts["items"]] == ["w1", "w0"]
    same = (await client.get("/admin/v1/configs/wheels?status=draft", headers=tenant.admin)).json()
    assert same == drafts


async def test_list_bad_input_is_one_422_with_every_problem(client, tenant) -> None:
    r = await client.get("/admin/v1/wheels?status=shut&limit=0", headers=tenant.admin)
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["code"] == "VALIDATION_FAILED"
    r = await client.get("/admin/v1/wheels?status=nosuch", headers=tenant.admin)
    assert r.status_code == 422
    assert r.json()["error"]["details"]["problems"][0]["path"] == "status"
    r = await client.get("/admin/v1/wheels?cursor=Zm9v", headers=tenant.admin)
    assert r.status_code == 422
    assert r.json()["error"]["details"]["problems"][0]["path"] == "cursor"


async def test_every_kind_lists_for_an_empty_tenant(client, tenant) -> None:
    for kind in configs.KINDS:
        r = await client.get(f"/admin/v1/configs/{kind}", headers=tenant.admin)
        assert r.status_code == 200, (kind, r.text)
        assert r.json() == {"items": [], "nextCursor": None}


async def test_api_keys_list_last_used_and_revoke(ctx, client, tenant, other_tenant) -> None:
    async with ctx.db.transaction() as conn:
        second, key_id = await tenancy.create_api_key(
            conn, tenant.id, ["reports"], "bi", DEFAULT_NOW
        )
    r = await client.get("/admin/v1/apikeys", headers=tenant.admin)
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [i["name"] for i in items] == ["bi", "test"]
    assert items[0]["prefix"] == f"egk_{key_id}_" and items[0]["scopes"] == ["reports"]
    assert items[0]["lastUsedAt"] is None and items[1]["lastUsedAt"] is not None
    assert "secret" not in r.text and second not in r.text
    # Another tenant cannot revoke it; the tenant can, and the key stops working at once.
    r = await client.post(f"/admin/v1/apikeys/{key_id}/revoke", headers=other_tenant.admin)
    assert r.status_code == 404
    bi = {"Authorization": f"Bearer {second}"}
    assert (await client.get("/admin/v1/wheels/x/draws", headers=bi)).status_code == 404
    r = await client.post(f"/admin/v1/apikeys/{key_id}/revoke", headers=tenant.admin)
    assert r.status_code == 200, r.text
    assert r.json()["items"][0]["revokedAt"] is not None
    r = await client.get("/admin/v1/wheels/x/draws", headers=bi)
    assert r.status_code == 401 and r.json()["error"]["code"] == "API_KEY_INVALID"
    assert (
        await client.post(f"/admin/v1/apikeys/{key_id}/revoke", headers=tenant.admin)
    ).status_code == 404


async def test_concurrent_revokes_revoke_once(ctx, client, tenant) -> None:
    async with ctx.db.transaction() as conn:
        _, key_id = await tenancy.create_api_key(conn, tenant.id, ["reports"], "x", DEFAULT_NOW)
    rs = await asyncio.gather(
        *(client.post(f"/admin/v1/apikeys/{key_id}/revoke", headers=tenant.admin) for _ in range(8))
    )
    assert sorted(r.status_code for r in rs) == [200] + [404] * 7


async def test_member_lookup_by_external_id_and_number(ctx, client, tenant, other_tenant) -> None:
    member_id, _ = await tenant.member("alice")
    r = await client.post(
        "/admin/v1/members/alice/points",
        headers=tenant.admin,
        json={"currency": "points", "amount": 25, "reason": "goodwill"},
    )
    assert r.status_code == 200, r.text
    r = await client.get("/admin/v1/members/lookup?externalId=alice", headers=tenant.admin)
    assert r.status_code == 200, r.text
    card = r.json()
    assert card["member"]["balances"]["points"] == 25
    assert card["ledger"][0]["delta"] == 25 and card["prizes"] == []
    number = card["member"]["memberNo"]
    if number is not None:
        r = await client.get(f"/admin/v1/members/lookup?memberNo={number}", headers=tenant.admin)
        assert r.json()["member"]["id"] == member_id
    r = await client.get("/admin/v1/members/lookup?externalId=alice", headers=other_tenant.admin)
    assert r.status_code == 404 and r.json()["error"]["code"] == "MEMBER_NOT_FOUND"
    r = await client.get("/admin/v1/members/lookup", headers=tenant.admin)
    assert r.status_code == 422
    hits = (await client.get("/admin/v1/members/search?q=ali", headers=tenant.admin)).json()
    assert [h["externalId"] for h in hits["items"]] == ["alice"]
    other = (await client.get("/admin/v1/members/search?q=ali", headers=other_tenant.admin)).json()
    assert other["items"] == []


async def test_new_tenant_helper_is_used(ctx, client) -> None:
    t = await new_tenant(ctx, client, scopes=["reports"])
    r = await client.get("/admin/v1/apikeys", headers=t.admin)
    assert r.status_code == 403


async def test_stats_per_day_json_and_csv(ctx, client, tenant, clock) -> None:
    await tenant.member("bob")
    for amount in (30, -10):
        r = await client.post(
            "/admin/v1/members/bob/points",
            headers=tenant.admin,
            json={"currency": "points", "amount": amount, "reason": "manual"},
        )
        assert r.status_code == 200, r.text
    r = await client.get("/admin/v1/stats?days=3", headers=tenant.admin)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["timezone"] == "Asia/Shanghai" and len(body["days"]) == 3
    today = body["days"][-1]
    assert (today["pointsIssued"], today["pointsSpent"], today["newMembers"]) == (30, 10, 1)
    assert body["days"][0]["pointsIssued"] == 0
    for req in (
        client.get("/admin/v1/stats?days=3&format=csv", headers=tenant.admin),
        client.get("/admin/v1/stats?days=3", headers={**tenant.admin, "Accept": "text/csv"}),
    ):
        r = await req
        assert r.headers["content-type"].startswith("text/csv"), r.headers
        lines = r.text.strip().splitlines()
        assert lines[0].startswith("day,checkins,makeups,spins,wins,pointsIssued")
        assert lines[-1].endswith(",30,10,1") and len(lines) == 4
    r = await client.get("/admin/v1/stats?days=0&format=xml", headers=tenant.admin)
    assert r.status_code == 422
    assert {p["path"] for p in r.json()["error"]["details"]["problems"]} == {"days", "format"}


async def test_patch_is_a_merge_patch_checked_like_put(client, tenant) -> None:
    await put_wheel(client, tenant, "pw", wheel_config(state="draft"))
    r = await client.patch(
        "/admin/v1/configs/wheels/pw",
        headers={**tenant.admin, "Content-Type": "application/merge-patch+json"},
        content=b'{"name": "renamed", "freeSpinsPerDay": 3}',
    )
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "renamed" and r.json()["version"] == 2
    cfg = (await client.get("/admin/v1/wheels/pw", headers=tenant.admin)).json()["config"]
    assert cfg["freeSpinsPerDay"] == 3 and cfg["prizes"][0]["key"] == "big"
    # Every problem at once, nothing changed.
    r = await client.patch(
        "/admin/v1/configs/wheels/pw",
        headers=tenant.admin,
        json={"name": "", "freeSpinsPerDay": -1},
    )
    assert r.status_code == 422, r.text
    paths = {p["path"] for p in r.json()["error"]["details"]["problems"]}
    assert {"name", "freeSpinsPerDay"} <= paths
    after = (await client.get("/admin/v1/wheels/pw", headers=tenant.admin)).json()
    assert after["version"] == 2 and after["config"]["name"] == "renamed"
    r = await client.patch(
        "/admin/v1/configs/wheels/nosuch", headers=tenant.admin, json={"name": "x"}
    )
    assert r.status_code == 404


async def test_copy_archive_pause_resume(client, tenant, other_tenant) -> None:
    await put_wheel(client, tenant, "src", wheel_config(state="live"))
    r = await client.post(
        "/admin/v1/configs/wheels/src/copy", headers=tenant.admin, json={"newKey": "src-2"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "draft" and r.json()["key"] == "src-2"
    r = await client.post(
        "/admin/v1/configs/wheels/src/copy", headers=tenant.admin, json={"newKey": "src-2"}
    )
    assert r.status_code == 409
    r = await client.post(
        "/admin/v1/configs/wheels/src/copy", headers=other_tenant.admin, json={"newKey": "x"}
    )
    assert r.status_code == 404
    r = await client.post("/admin/v1/configs/wheels/src/archive", headers=tenant.admin)
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "ended"
    rule = {
        "eventType": "purchase",
        "effect": {"kind": "credit", "currency": "points", "amount": 5},
    }
    r = await client.put("/admin/v1/rules/buy", headers=tenant.admin, json=rule)
    assert r.status_code == 200, r.text
    r = await client.post("/admin/v1/configs/rules/buy/pause", headers=tenant.admin)
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "paused"
    listed = (
        await client.get("/admin/v1/configs/rules?status=paused", headers=tenant.admin)
    ).json()
    assert [i["key"] for i in listed["items"]] == ["buy"]
    r = await client.post("/admin/v1/configs/rules/buy/resume", headers=tenant.admin)
    assert r.json()["state"] == "live"
    # Actions a kind does not have are not routes.
    assert (
        await client.post("/admin/v1/configs/rules/buy/archive", headers=tenant.admin)
    ).status_code in (
        404,
        405,
    )


async def test_winners_csv_names_members_by_external_id(client, tenant, other_tenant) -> None:
    from tests.wheel_helpers import prize

    await put_wheel(
        client,
        tenant,
        "allwin",
        wheel_config([prize("pts", "points", 1, value=5)], consolationPrize="pts"),
    )
    _, headers = await tenant.member("dora")
    assert (await client.post("/v1/wheels/allwin/spins", headers=headers)).status_code == 200
    r = await client.get("/admin/v1/winners.csv?wheel=allwin", headers=tenant.admin)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    lines = r.text.strip().splitlines()
    assert len(lines) == 2 and ",dora,pts," in lines[1]
    r = await client.get("/admin/v1/winners.csv?wheel=allwin", headers=other_tenant.admin)
    assert r.status_code == 404


async def test_webhooks_list_without_their_secret(ctx, client, tenant) -> None:
    async with ctx.db.connection() as conn:
        await conn.execute(
            "INSERT INTO webhooks (tenant_id, key, url, event_types, secret, description, "
            "enabled, consecutive_failures, created_at, updated_at) VALUES ($1, 'crm', "
            "'https://example.com/hook', '[\"prize.won\"]'::jsonb, 'whsec_c2VjcmV0', 'CRM', "
            "true, 0, $2, $2)",
            tenant.id,
            DEFAULT_NOW,
        )
    r = await client.get("/admin/v1/configs/webhooks", headers=tenant.admin)
    assert r.status_code == 200, r.text
    page = r.json()
    assert [i["key"] for i in page["items"]] == ["crm"]
    assert page["items"][0]["state"] == "enabled" and page["items"][0]["name"] == "CRM"
    assert "whsec_" not in r.text and "secret" not in page["items"][0]["config"]


async def test_wheel_versions_newest_first(client, tenant, other_tenant) -> None:
    await put_wheel(client, tenant, "vw", wheel_config(state="draft"))
    await put_wheel(client, tenant, "vw", wheel_config(state="draft", name="second"))
    r = await client.get("/admin/v1/configs/wheels/vw/versions", headers=tenant.admin)
    assert r.status_code == 200, r.text
    assert [(v["version"], v["config"]["name"]) for v in r.json()["items"]] == [
        (2, "second"),
        (1, "Lucky wheel 幸运大转盘"),
    ]
    r = await client.get("/admin/v1/configs/wheels/vw/versions", headers=other_tenant.admin)
    assert r.status_code == 404
