"""Console fixes from a newcomer's trial: members without an externalId, sign-out, API keys,
create-over-existing, wheel problems in one round, ship uploads, winners CSV."""

from __future__ import annotations

import csv
import io
import re

import httpx

from tests.test_console import browser_like, csrf_of, sign_in

__all__ = ["browser_like"]


async def test_member_without_external_id_opens_by_id_and_number(
    ctx, browser_like, client, tenant
) -> None:
    await tenant.login("wx-openid-only")
    async with ctx.db.connection() as conn:
        mid = await conn.fetchval(
            "SELECT id FROM members WHERE tenant_id = $1 AND external_id IS NULL", tenant.id
        )
        await conn.execute("UPDATE members SET member_no = 2 WHERE id = $1", mid)
    assert (await sign_in(browser_like, tenant.api_key)).status_code == 303
    for q in ("000002", "NO.000002", "no.2"):
        page = await browser_like.get("/console/members", params={"q": q})
        assert f'href="/console/members?member={mid}"' in page.text, q
        assert "externalId=None" not in page.text
    page = await browser_like.get(f"/console/members?member={mid}")
    assert 'id="member-card"' in page.text and "MEMBER_NOT_FOUND" not in page.text
    assert "NO.000002" in page.text
    nonce = re.search(r'name="nonce" value="([^"]+)"', page.text).group(1)
    data = {
        "_csrf": csrf_of(page.text),
        "nonce": nonce,
        "memberId": str(mid),
        "amount": "25",
        "reason": "活动补偿",
    }
    r = await browser_like.post("/console/members/credit", data=data)
    assert r.status_code == 303 and r.headers["location"] == f"/console/members?member={mid}"
    page = await browser_like.get(r.headers["location"])
    assert '<b id="member-points">25</b>' in page.text and "活动补偿" in page.text
    async with ctx.db.connection() as conn:
        total = await conn.fetchval(
            "SELECT sum(delta) FROM ledger_entries WHERE tenant_id = $1 AND member_id = $2",
            tenant.id,
            mid,
        )
    assert total == 25
    # Another tenant's member id does not open.
    page = await browser_like.get(f"/console/members?member={mid + 10_000_000}")
    assert "MEMBER_NOT_FOUND" in page.text


async def test_reason_is_free_text_in_the_api(client, tenant) -> None:
    await tenant.member("dora")
    body = {"currency": "points", "amount": 5, "reason": "活动补偿"}
    r = await client.post("/admin/v1/members/dora/points", json=body, headers=tenant.admin)
    assert r.status_code in (200, 201), r.text
    assert r.json()["entry"]["reason"] == "活动补偿"
    for bad in ("a\nb", "   ", "x" * 65, ""):
        r = await client.post(
            "/admin/v1/members/dora/points",
            json={**body, "reason": bad, "amount": 6},
            headers=tenant.admin,
        )
        assert r.status_code == 422, bad
        assert r.json()["error"]["details"]["problems"][0]["path"] == "reason"


def _wheel_form(csrf: str, **over: str) -> dict[str, str]:
    form = {
        "_csrf": csrf,
        "new": "1",
        "key": "spring",
        "name": "春季转盘",
        "startsAt": "2026-11-01T00:00:00+08:00",
        "endsAt": "2026-12-01T00:00:00+08:00",
        "state": "draft",
        "freeSpinsPerDay": "1",
        "outOfStock": "redraw",
        "consolationPrize": "thanks",
        "prizes[0].key": "pts",
        "prizes[0].name": "积分",
        "prizes[0].kind": "points",
        "prizes[0].weight": "10",
        "prizes[0].value": "5",
        "prizes[1].key": "thanks",
        "prizes[1].name": "谢谢参与",
        "prizes[1].kind": "nothing",
        "prizes[1].weight": "90",
    }
    form.update(over)
    return form


async def test_wheel_form_lists_shape_and_rule_problems_in_one_round(
    browser_like, client, tenant
) -> None:
    assert (await sign_in(browser_like, tenant.api_key)).status_code == 303
    csrf = csrf_of((await browser_like.get("/console/wheels/new")).text)
    form = _wheel_form(
        csrf,
        key="Bad Key!",
        name="",
        endsAt="2026-10-01T00:00:00+08:00",  # before the start
        consolationPrize="ghost",
        **{"prizes[0].value": "", "prizes[1].key": "pts", "prizes[1].weight": "lots"},
    )
    r = await browser_like.post("/console/wheels", data=form)
    assert r.status_code == 422
    for path in ("key", "name", "endsAt", "consolationPrize", "prizes[0].value"):
        assert f'data-path="{path}"' in r.text, path
    assert 'data-path="prizes[1].weight"' in r.text
    assert 'value="Bad Key!"' in r.text  # the key typed is kept
    assert 'value="lots"' in r.text
    assert (await client.get("/admin/v1/wheels", headers=tenant.admin)).json()["items"] == []


async def test_new_forms_never_overwrite_an_existing_key(browser_like, client, tenant) -> None:
    assert (await sign_in(browser_like, tenant.api_key)).status_code == 303
    csrf = csrf_of((await browser_like.get("/console/wheels/new")).text)
    assert (await browser_like.post("/console/wheels", data=_wheel_form(csrf))).status_code == 303
    again = _wheel_form(csrf, name="覆盖")
    r = await browser_like.post("/console/wheels", data=again)
    assert r.status_code == 422 and "exists already" in r.text
    assert "/console/wheels/spring" in r.text
    view = (await client.get("/admin/v1/wheels/spring", headers=tenant.admin)).json()
    assert view["config"]["name"] == "春季转盘"
    # Saving the opened wheel (no "new" flag) still works.
    r = await browser_like.post("/console/wheels", data={**again, "new": ""})
    assert r.status_code == 303
    # Every kind of the JSON editor: a new form with a taken key is refused.
    team = '{"name": "东区", "kind": "store", "teamSet": "stores", "open": true}'
    page = await browser_like.get("/console/c/teams/edit")
    assert 'name="new" value="1"' in page.text
    data = {"_csrf": csrf_of(page.text), "new": "1", "key": "east", "config": team}
    assert (await browser_like.post("/console/c/teams/edit", data=data)).status_code == 303
    r = await browser_like.post(
        "/console/c/teams/edit", data={**data, "config": team.replace("东区", "西区")}
    )
    assert r.status_code == 422 and "exists already" in r.text
    assert "/console/c/teams/edit?key=east" in r.text
    got = (await client.get("/admin/v1/teams/east", headers=tenant.admin)).json()
    assert got["name"] == "东区"
    page = await browser_like.get("/console/c/teams/edit?key=east")
    assert 'name="new" value="1"' not in page.text


CLAIM = {
    "name": "张三",
    "phone": "13800138000",
    "address": {"province": "广东省", "city": "深圳市", "detail": "南山区科技园 8 号"},
}


async def _claimed_awards(client, tenant, n: int) -> list[int]:  # type: ignore[no-untyped-def]
    from tests.wheel_helpers import prize, put_wheel, wheel_config

    cfg = wheel_config(
        [prize("gift", "physical", 1, name="礼盒"), prize("thanks", "nothing", 0)],
        consolationPrize="thanks",
    )
    await put_wheel(client, tenant, "ship", cfg)
    ids = []
    for i in range(n):
        _, h = await tenant.member(f"winner{i}")
        r = await client.post("/v1/wheels/ship/spins", headers=h)
        assert r.status_code == 200, r.text
        award_id = r.json()["prize"]["awardId"]
        r = await client.post(f"/v1/me/prizes/{award_id}/claim", headers=h, json=CLAIM)
        assert r.status_code == 200, r.text
        ids.append(award_id)
    return ids


async def _states(ctx, ids: list[int]) -> list[str]:  # type: ignore[no-untyped-def]
    async with ctx.db.connection() as conn:
        rows = await conn.fetch(
            "SELECT state FROM wheel_awards WHERE id = ANY($1::bigint[]) ORDER BY id", ids
        )
    return [r["state"] for r in rows]


async def test_ship_upload_is_all_or_nothing_with_readable_lines(
    ctx, browser_like, client, tenant
) -> None:
    a, b = await _claimed_awards(client, tenant, 2)
    assert (await sign_in(browser_like, tenant.api_key)).status_code == 303
    csrf = csrf_of((await browser_like.get("/console/prizes?wheel=ship")).text)

    async def upload(body: bytes, name: str = "s.csv") -> httpx.Response:
        return await browser_like.post(
            "/console/prizes/ship/ship-upload",
            data={"_csrf": csrf},
            files={"file": (name, body, "text/csv")},
        )

    bad = f"awardId,carrier,trackingNo\n{a},SF,SF1\nabc,SF\n{b},,\n999999,SF,X\n".encode()
    r = await upload(bad)
    assert r.status_code == 422 and 'id="upload-error"' in r.text
    for line in ("line 3", "line 4"):
        assert line in r.text
    for python in ("invalid literal", "Traceback", "IndexError", "{'"):
        assert python not in r.text
    assert await _states(ctx, [a, b]) == ["claimed", "claimed"]
    # Lines that parse but one award cannot ship: still nothing applied.
    r = await upload(f"{a},SF,SF1\n999999,SF,X\n".encode())
    assert r.status_code == 422 and "line 2" in r.text and "奖品不存在" in r.text
    assert await _states(ctx, [a, b]) == ["claimed", "claimed"]
    r = await upload(f"{a},SF,SF1\n{b},EMS,E2\n".encode())
    assert r.status_code == 303
    assert await _states(ctx, [a, b]) == ["shipped", "shipped"]
    # Too large for the server's body limit: the console's page, not a JSON error.
    r = await upload(b"1,a,b\n" * 1_000_000)
    assert r.status_code == 413 and 'id="upload-error"' in r.text
    assert r.headers["content-type"].startswith("text/html")


async def test_winners_csv_has_number_nickname_and_shipping_fields(
    ctx, browser_like, client, tenant
) -> None:
    (a,) = await _claimed_awards(client, tenant, 1)
    async with ctx.db.connection() as conn:
        await conn.execute(
            "UPDATE members SET member_no = 7, nickname = '小明' WHERE tenant_id = $1 "
            "AND external_id = 'winner0'",
            tenant.id,
        )
    r = await client.get("/admin/v1/winners.csv?wheel=ship", headers=tenant.admin)
    assert r.status_code == 200
    rows = list(csv.DictReader(io.StringIO(r.text.lstrip("\ufeff"))))
    assert len(rows) == 1
    row = rows[0]
    assert row["awardId"] == str(a) and row["memberNumber"] == "NO.000007"
    assert row["nickname"] == "小明" and row["externalId"] == "winner0"
    assert row["shipName"] == "张三" and row["shipPhone"] == "13800138000"
    assert row["province"] == "广东省" and row["city"] == "深圳市"
    assert row["address"] == "南山区科技园 8 号"
    assert (await sign_in(browser_like, tenant.api_key)).status_code == 303
    text = (await browser_like.get("/console/prizes/ship/winners.csv")).text
    assert "13800138000" in text and "NO.000007" in text


async def test_sign_out_ends_the_session_server_side(browser_like, tenant) -> None:
    assert (await sign_in(browser_like, tenant.api_key)).status_code == 303
    page = await browser_like.get("/console")
    assert page.status_code == 200
    old = browser_like.cookies.get("engage_console")
    assert old
    r = await browser_like.post("/console/logout", data={"_csrf": csrf_of(page.text)})
    assert r.status_code == 303
    # The old cookie, replayed: refused (not only forgotten by the browser).
    browser_like.cookies.set("engage_console", old)
    r = await browser_like.get("/console")
    assert r.status_code == 303 and r.headers["location"] == "/console/login"
    r = await browser_like.post("/console/members/credit", data={"_csrf": "x"})
    assert r.status_code == 303
    # Signing in again gives a fresh session that works.
    browser_like.cookies.clear()
    assert (await sign_in(browser_like, tenant.api_key)).status_code == 303
    assert (await browser_like.get("/console")).status_code == 200


async def test_api_keys_created_and_revoked_from_the_console(
    ctx, browser_like, client, tenant
) -> None:
    assert (await sign_in(browser_like, tenant.api_key)).status_code == 303
    page = await browser_like.get("/console/apikeys")
    assert 'id="new-key-form"' in page.text
    csrf = csrf_of(page.text)
    # Without the CSRF token: refused, nothing created.
    r = await browser_like.post("/console/apikeys", data={"name": "pos", "scopes": "events"})
    assert r.status_code == 403
    r = await browser_like.post("/console/apikeys", data={"_csrf": csrf, "name": "", "scopes": []})
    assert r.status_code == 422 and 'data-path="name"' in r.text and 'data-path="scopes"' in r.text
    r = await browser_like.post(
        "/console/apikeys",
        data={"_csrf": csrf, "name": "门店 POS", "scopes": ["events", "members"]},
    )
    assert r.status_code == 200 and r.headers.get("cache-control") == "no-store"
    secret = re.search(r'id="new-key-secret">([^<]+)<', r.text).group(1)
    # The new key works on the API with its scopes, and only those.
    assert (await client.get("/admin/v1/apikeys", headers=tenant.admin)).status_code == 200
    mine = {"Authorization": f"Bearer {secret}"}
    assert (await client.get("/admin/v1/apikeys", headers=mine)).status_code == 403
    keys = (await client.get("/admin/v1/apikeys", headers=tenant.admin)).json()["items"]
    new = next(k for k in keys if k["name"] == "门店 POS")
    assert sorted(new["scopes"]) == ["events", "members"]
    assert (await client.post("/admin/v1/members/pos1/token", headers=mine)).status_code == 200
    # Revoked from the console (CSRF-checked): the key stops working.
    r = await browser_like.post(f"/console/apikeys/{new['keyId']}/revoke", data={})
    assert r.status_code == 403
    r = await browser_like.post(f"/console/apikeys/{new['keyId']}/revoke", data={"_csrf": csrf})
    assert r.status_code == 303
    assert (await client.post("/admin/v1/members/pos2/token", headers=mine)).status_code == 401
    keys = (await client.get("/admin/v1/apikeys", headers=tenant.admin)).json()["items"]
    assert next(k for k in keys if k["keyId"] == new["keyId"])["revokedAt"] is not None
