"""Console fixes from a newcomer's trial: members without an externalId, sign-out, API keys,
create-over-existing, wheel problems in one round, ship uploads, winners CSV."""

from __future__ import annotations

import re

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
