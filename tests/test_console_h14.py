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
